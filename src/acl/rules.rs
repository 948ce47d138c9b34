//! Parsed rules: what one policy's rules text says, as plain data
//! ([`Rules`], [`Rule`]), a rule set with the policy name it came from
//! ([`NamedRules`]), the mapping between rule keywords and resources, and
//! the way back to HCL text ([`Rules::to_hcl`]).
//!
//! Parsing lives in `parse.rs`; nothing here decides access. Duplicate
//! rules are kept as written: merging them is the authorizer's job, since
//! it has to merge across policies with the same precedence anyway.

use std::fmt::Write as _;

use super::access::{AccessLevel, Resource};
use super::error::RulesError;

/// One rule for a named resource: `key_prefix "db/" { policy = "deny" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// A named resource (never `Intention`, which has no keyword).
    pub resource: Resource,
    /// `key_prefix` rather than `key`: the rule covers every name that
    /// starts with `name`.
    pub prefix: bool,
    pub name: String,
    pub policy: AccessLevel,
    /// `intentions = "…"`, only on service rules. When absent the
    /// intention permission follows `policy` (read or write give intention
    /// read, deny gives deny), as in Consul.
    pub intentions: Option<AccessLevel>,
}

impl Rule {
    pub fn new(
        resource: Resource,
        prefix: bool,
        name: impl Into<String>,
        policy: AccessLevel,
    ) -> Rule {
        Rule {
            resource,
            prefix,
            name: name.into(),
            policy,
            intentions: None,
        }
    }

    /// The rule's keyword in rules text (`key_prefix`).
    pub fn keyword(&self) -> &'static str {
        rule_keyword(self.resource, self.prefix).unwrap_or("unknown")
    }
}

/// Everything one rules text grants. The single-valued resources are
/// fields; the named ones are [`Rule`]s in the order they were written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rules {
    pub acl: Option<AccessLevel>,
    pub keyring: Option<AccessLevel>,
    pub operator: Option<AccessLevel>,
    pub mesh: Option<AccessLevel>,
    pub peering: Option<AccessLevel>,
    pub rules: Vec<Rule>,
}

impl Rules {
    /// Parses Consul rules text, HCL or JSON (JSON when the first
    /// non-blank character is `{`, as Consul's HCL library decides).
    pub fn parse(text: &str) -> Result<Rules, RulesError> {
        super::parse::parse_rules(text)
    }

    pub fn is_empty(&self) -> bool {
        *self == Rules::default()
    }

    /// The value of a single-valued resource (`operator = "read"`); `None`
    /// for named resources and for values the rules do not set.
    pub fn plain(&self, resource: Resource) -> Option<AccessLevel> {
        match resource {
            Resource::Acl => self.acl,
            Resource::Keyring => self.keyring,
            Resource::Operator => self.operator,
            Resource::Mesh => self.mesh,
            Resource::Peering => self.peering,
            _ => None,
        }
    }

    /// The field behind a single-valued resource, for builders; `None` for
    /// named resources.
    pub fn plain_mut(&mut self, resource: Resource) -> Option<&mut Option<AccessLevel>> {
        match resource {
            Resource::Acl => Some(&mut self.acl),
            Resource::Keyring => Some(&mut self.keyring),
            Resource::Operator => Some(&mut self.operator),
            Resource::Mesh => Some(&mut self.mesh),
            Resource::Peering => Some(&mut self.peering),
            _ => None,
        }
    }

    /// Adds a rule; returns `self` so rule sets read like rules text.
    pub fn with(mut self, rule: Rule) -> Rules {
        self.rules.push(rule);
        self
    }

    /// Renders the rules as HCL that [`Rules::parse`] reads back to the same
    /// value: single values first, in Consul's order, then the rules as
    /// written. Names are escaped, so any name survives the round trip.
    pub fn to_hcl(&self) -> String {
        let mut out = String::new();
        for resource in PLAIN_ORDER {
            if let Some(level) = self.plain(resource) {
                let _ = writeln!(out, "{} = \"{}\"", resource.as_str(), level);
            }
        }
        for rule in &self.rules {
            let _ = writeln!(out, "{} {} {{", rule.keyword(), hcl_quote(&rule.name));
            let _ = writeln!(out, "  policy = \"{}\"", rule.policy);
            if let Some(intentions) = rule.intentions {
                let _ = writeln!(out, "  intentions = \"{}\"", intentions);
            }
            out.push_str("}\n");
        }
        out
    }
}

/// One policy's rules under the name explanations will show
/// (`in policy "ops"`). Compiling takes a list of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRules {
    pub name: String,
    pub rules: Rules,
}

impl NamedRules {
    pub fn new(name: impl Into<String>, rules: Rules) -> NamedRules {
        NamedRules {
            name: name.into(),
            rules,
        }
    }

    pub fn parse(name: impl Into<String>, text: &str) -> Result<NamedRules, RulesError> {
        Ok(NamedRules::new(name, Rules::parse(text)?))
    }
}

/// The single-valued resources in the order Consul's builtin policies
/// write them.
pub(crate) const PLAIN_ORDER: [Resource; 5] = [
    Resource::Acl,
    Resource::Keyring,
    Resource::Operator,
    Resource::Mesh,
    Resource::Peering,
];

/// The rule keywords for named resources, exact and prefix form.
const KEYWORDS: [(Resource, &str, &str); 7] = [
    (Resource::Agent, "agent", "agent_prefix"),
    (Resource::Event, "event", "event_prefix"),
    (Resource::Key, "key", "key_prefix"),
    (Resource::Node, "node", "node_prefix"),
    (Resource::Query, "query", "query_prefix"),
    (Resource::Service, "service", "service_prefix"),
    (Resource::Session, "session", "session_prefix"),
];

/// The keyword for a named rule (`Key`, prefix → `key_prefix`); `None` for
/// resources that have no named rules.
pub fn rule_keyword(resource: Resource, prefix: bool) -> Option<&'static str> {
    KEYWORDS
        .iter()
        .find(|(r, _, _)| *r == resource)
        .map(|(_, exact, pre)| if prefix { *pre } else { *exact })
}

/// The resource and prefix flag a named-rule keyword stands for.
pub fn parse_rule_keyword(keyword: &str) -> Option<(Resource, bool)> {
    KEYWORDS.iter().find_map(|(r, exact, pre)| {
        if keyword == *exact {
            Some((*r, false))
        } else if keyword == *pre {
            Some((*r, true))
        } else {
            None
        }
    })
}

/// The single-valued resource a top-level keyword stands for (`operator`).
pub fn parse_plain_keyword(keyword: &str) -> Option<Resource> {
    PLAIN_ORDER.into_iter().find(|r| r.as_str() == keyword)
}

/// An HCL string literal for `s`: quotes, backslashes and control
/// characters escaped, and `${`/`%{` doubled so they stay literal text.
pub(crate) fn hcl_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
