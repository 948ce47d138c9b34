//! The words every ACL decision is made of: what a rule grants
//! ([`AccessLevel`]), what a request needs ([`Access`]), what it is about
//! ([`Resource`]), and what happens when no rule matches
//! ([`DefaultPolicy`]). Spelled as Consul spells them, because they end up
//! in rules text and in `Permission denied` messages clients match on.

use std::fmt;

/// A rule's disposition (`policy = "write"`): what a matching rule grants.
///
/// `List` only exists for `key`/`key_prefix` rules; the parser refuses it
/// anywhere else, as Consul does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessLevel {
    Deny,
    Read,
    List,
    Write,
}

impl AccessLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Deny => "deny",
            AccessLevel::Read => "read",
            AccessLevel::List => "list",
            AccessLevel::Write => "write",
        }
    }

    /// Consul lower-cases the value before matching (`AccessLevelFromString`),
    /// so `"READ"` is a valid disposition too.
    pub fn parse(value: &str) -> Option<AccessLevel> {
        match value.to_ascii_lowercase().as_str() {
            "deny" => Some(AccessLevel::Deny),
            "read" => Some(AccessLevel::Read),
            "list" => Some(AccessLevel::List),
            "write" => Some(AccessLevel::Write),
            _ => None,
        }
    }

    /// Rank when several policies of one token set the same rule: Consul's
    /// `takesPrecedenceOver` puts deny first (an explicit deny anywhere wins),
    /// then write over list over read (the broadest grant wins).
    fn rank(self) -> u8 {
        match self {
            AccessLevel::Read => 0,
            AccessLevel::List => 1,
            AccessLevel::Write => 2,
            AccessLevel::Deny => 3,
        }
    }

    /// Whether `self` replaces `other` when both set the same rule. Ties keep
    /// the first, so an explanation names the first policy that set it.
    pub fn takes_precedence_over(self, other: AccessLevel) -> bool {
        self.rank() > other.rank()
    }

    /// Whether a matching rule with this disposition lets `access` through:
    /// write covers everything, list covers list and read, read only read.
    pub fn grants(self, access: Access) -> bool {
        match self {
            AccessLevel::Write => true,
            AccessLevel::List => matches!(access, Access::List | Access::Read),
            AccessLevel::Read => access == Access::Read,
            AccessLevel::Deny => false,
        }
    }
}

impl fmt::Display for AccessLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request needs on a resource. `List` is the KV listing check
/// (`?keys`, `?recurse`), which only differs from `Read` when the authorizer
/// was compiled with `enable_key_list_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    List,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::List => "list",
            Access::Write => "write",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource a permission is about, named as in Consul's
/// `lacks permission 'key:write'`.
///
/// Named resources (agent, event, intention, key, node, query, service,
/// session) are checked against a name through exact and prefix rules;
/// the others (acl, keyring, mesh, operator, peering) take one value per
/// policy. `Intention` has no rule keyword of its own: its rules come from
/// the `intentions` field (or the `policy`) of service rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Acl,
    Agent,
    Event,
    Intention,
    Key,
    Keyring,
    Mesh,
    Node,
    Operator,
    Peering,
    Query,
    Service,
    Session,
}

impl Resource {
    pub const ALL: [Resource; 13] = [
        Resource::Acl,
        Resource::Agent,
        Resource::Event,
        Resource::Intention,
        Resource::Key,
        Resource::Keyring,
        Resource::Mesh,
        Resource::Node,
        Resource::Operator,
        Resource::Peering,
        Resource::Query,
        Resource::Service,
        Resource::Session,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Acl => "acl",
            Resource::Agent => "agent",
            Resource::Event => "event",
            Resource::Intention => "intention",
            Resource::Key => "key",
            Resource::Keyring => "keyring",
            Resource::Mesh => "mesh",
            Resource::Node => "node",
            Resource::Operator => "operator",
            Resource::Peering => "peering",
            Resource::Query => "query",
            Resource::Service => "service",
            Resource::Session => "session",
        }
    }

    /// Whether rules for this resource carry a name (`key "a/b" { … }`)
    /// rather than a single value (`operator = "read"`).
    pub fn is_named(self) -> bool {
        !matches!(
            self,
            Resource::Acl
                | Resource::Keyring
                | Resource::Mesh
                | Resource::Operator
                | Resource::Peering
        )
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `acl.default_policy`: the answer when no rule of the token matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DefaultPolicy {
    Allow,
    /// Consul's default since 1.4's new ACL system; the safe one.
    #[default]
    Deny,
}

impl DefaultPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultPolicy::Allow => "allow",
            DefaultPolicy::Deny => "deny",
        }
    }

    pub fn parse(value: &str) -> Option<DefaultPolicy> {
        match value {
            "allow" => Some(DefaultPolicy::Allow),
            "deny" => Some(DefaultPolicy::Deny),
            _ => None,
        }
    }
}

impl fmt::Display for DefaultPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
