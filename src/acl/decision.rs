//! What an authorizer answers ([`Decision`]) and why ([`DecidedBy`]), and
//! the `Permission denied` error built from a refused decision
//! ([`PermissionDenied`]), worded as Consul's `acl/errors.go` words it with
//! the reason appended, so a 403 says which rule of which policy (or the
//! default policy) refused.

use std::fmt;
use std::sync::Arc;

use thiserror::Error;

use super::access::{Access, AccessLevel, DefaultPolicy, Resource};

/// The accessor ID of Consul's anonymous token, the token of requests that
/// carry none. Refusals for it are worded differently.
pub use crate::structs::acl::ANONYMOUS_TOKEN_ID;

/// Which part of a rule decided: its `policy`, its `intentions`, or (for
/// intentions on a service rule without `intentions`) the intention level
/// Consul derives from its `policy`: read or write give intention read,
/// deny gives deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleField {
    Policy,
    Intentions,
    /// The rule's `policy`, from which the deciding intention level was
    /// derived.
    IntentionsFromPolicy(AccessLevel),
}

/// Why a decision came out the way it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecidedBy {
    /// A rule of one of the token's policies. For rules merged from several
    /// policies, the policy whose value won (the first of equals).
    Rule {
        /// The rule's keyword as written: `key_prefix`, `service`, `operator`.
        kind: &'static str,
        /// The rule's name (`"db/"`); `None` for single-valued resources.
        name: Option<Arc<str>>,
        field: RuleField,
        /// The level that decided (for intentions, after derivation).
        access: AccessLevel,
        /// The policy the rule came from.
        policy: Arc<str>,
    },
    /// No rule matched; `acl.default_policy` answered.
    Default { policy: DefaultPolicy },
    /// No rule matched an `acl` (or snapshot) check under a default policy
    /// of allow, which in Consul never extends to ACL management.
    AclNeedsRule,
    /// A KV listing with `enable_key_list_policy` off: Consul does not
    /// check the prefix then, it filters the listed keys by `key:read`.
    KeyListNotEnforced,
}

impl fmt::Display for DecidedBy {
    /// The reason alone: `rule key_prefix "db/" policy "deny" in policy
    /// "ops"`, `default_policy "deny"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecidedBy::Rule {
                kind,
                name,
                field,
                access,
                policy,
            } => {
                write!(f, "rule {kind}")?;
                match (name, field) {
                    (None, _) => write!(f, " = \"{access}\"")?,
                    (Some(name), RuleField::Policy) => write!(f, " {name:?} policy \"{access}\"")?,
                    (Some(name), RuleField::Intentions) => {
                        write!(f, " {name:?} intentions \"{access}\"")?
                    }
                    (Some(name), RuleField::IntentionsFromPolicy(from)) => write!(
                        f,
                        " {name:?} policy \"{from}\" (so intentions \"{access}\")"
                    )?,
                }
                write!(f, " in policy {policy:?}")
            }
            DecidedBy::Default { policy } => write!(f, "default_policy \"{policy}\""),
            DecidedBy::AclNeedsRule => {
                f.write_str("no acl rule (default_policy \"allow\" never grants acl access)")
            }
            DecidedBy::KeyListNotEnforced => {
                f.write_str("enable_key_list_policy off (listed keys are filtered by key:read)")
            }
        }
    }
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub by: DecidedBy,
}

impl Decision {
    pub(crate) fn new(allowed: bool, by: DecidedBy) -> Decision {
        Decision { allowed, by }
    }

    /// `Ok(())` when allowed, else the Consul-worded refusal for this
    /// token and permission, carrying this decision as its reason.
    pub fn require(
        self,
        accessor_id: &str,
        resource: Resource,
        access: Access,
        name: &str,
    ) -> Result<(), PermissionDenied> {
        if self.allowed {
            Ok(())
        } else {
            Err(PermissionDenied {
                accessor_id: accessor_id.to_string(),
                resource,
                access,
                name: name.to_string(),
                decision: self,
            })
        }
    }
}

impl fmt::Display for Decision {
    /// `denied by rule key_prefix "db/" policy "deny" in policy "ops"`,
    /// `allowed by default_policy "allow"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.allowed { "allowed" } else { "denied" };
        write!(f, "{verb} by {}", self.by)
    }
}

/// A refused permission, displayed as Consul's message plus the reason:
/// `Permission denied: token with AccessorID '<id>' lacks permission
/// 'key:write' on "db/x", denied by rule key_prefix "db/" policy "deny" in
/// policy "ops"`. Clients match on the part before the comma.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct PermissionDenied {
    pub accessor_id: String,
    pub resource: Resource,
    pub access: Access,
    /// The resource's name; empty for single-valued resources (then the
    /// message has no ` on "…"`, as in Consul).
    pub name: String,
    pub decision: Decision,
}

impl fmt::Display for PermissionDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let anonymous = self.accessor_id == ANONYMOUS_TOKEN_ID;
        f.write_str("Permission denied: ")?;
        if anonymous {
            f.write_str("anonymous token")?;
        } else {
            write!(f, "token with AccessorID '{}'", self.accessor_id)?;
        }
        write!(f, " lacks permission '{}:{}'", self.resource, self.access)?;
        // Consul wraps the name in quotes without escaping it.
        if !self.name.is_empty() {
            write!(f, " on \"{}\"", self.name)?;
        }
        write!(f, ", {}", self.decision)?;
        if anonymous {
            f.write_str(
                ". The anonymous token is used implicitly when a request does not specify a token.",
            )?;
        }
        Ok(())
    }
}

/// The message of [`PermissionDenied`] for callers that only want text.
pub fn permission_denied_message(
    accessor_id: &str,
    resource: Resource,
    access: Access,
    name: &str,
    decision: &Decision,
) -> String {
    PermissionDenied {
        accessor_id: accessor_id.to_string(),
        resource,
        access,
        name: name.to_string(),
        decision: decision.clone(),
    }
    .to_string()
}
