//! Consul's two builtin policies, `global-management` and
//! `builtin/global-read-only`: their IDs, names and rules text exactly as
//! Consul ships them (`agent/structs/acl.go`), and the same rules as
//! [`Rules`] values built directly, so using them never goes through the
//! parser (a test checks the text parses to the same value).

use super::access::{AccessLevel, Resource};
use super::authorizer::{Authorizer, AuthorizerConfig};
use super::rules::{NamedRules, Rule, Rules};

// One definition of the builtins' IDs, names and text: the state store's
// (`structs::acl`), which stores them.
pub use crate::structs::acl::{
    GLOBAL_MANAGEMENT_POLICY_ID as GLOBAL_MANAGEMENT_ID,
    GLOBAL_MANAGEMENT_POLICY_NAME as GLOBAL_MANAGEMENT_NAME, GLOBAL_MANAGEMENT_RULES,
    GLOBAL_READ_ONLY_POLICY_ID as GLOBAL_READ_ONLY_ID,
    GLOBAL_READ_ONLY_POLICY_NAME as GLOBAL_READ_ONLY_NAME, GLOBAL_READ_ONLY_RULES,
};

pub const GLOBAL_MANAGEMENT_DESCRIPTION: &str = "Builtin Policy that grants unlimited access";
pub const GLOBAL_READ_ONLY_DESCRIPTION: &str =
    "Builtin Policy that grants unlimited read-only access to all components";

/// The rules both builtins have, at one level: every single value, and a
/// catch-all prefix rule on every named resource, in the builtin text's
/// order (service rules also set `intentions`).
fn everything(level: AccessLevel) -> Rules {
    let catch_all = |resource: Resource| Rule::new(resource, true, "", level);
    Rules {
        acl: Some(level),
        keyring: Some(level),
        operator: Some(level),
        mesh: Some(level),
        peering: Some(level),
        rules: vec![
            catch_all(Resource::Agent),
            catch_all(Resource::Event),
            catch_all(Resource::Key),
            catch_all(Resource::Node),
            catch_all(Resource::Query),
            Rule {
                intentions: Some(level),
                ..catch_all(Resource::Service)
            },
            catch_all(Resource::Session),
        ],
    }
}

/// `global-management`: write on everything.
pub fn global_management() -> NamedRules {
    NamedRules::new(GLOBAL_MANAGEMENT_NAME, everything(AccessLevel::Write))
}

/// `builtin/global-read-only`: read on everything. Note it grants `read`,
/// not `list`, on keys, so with `enable_key_list_policy` it cannot list
/// the KV store — as in Consul.
pub fn global_read_only() -> NamedRules {
    NamedRules::new(GLOBAL_READ_ONLY_NAME, everything(AccessLevel::Read))
}

impl Authorizer {
    /// A management token's authorizer: the global-management policy alone.
    /// Everything is allowed whatever the default policy; key listing is
    /// checked (and granted by `key_prefix ""` write) so explanations name
    /// the rule.
    pub fn management() -> Authorizer {
        let config = AuthorizerConfig {
            enable_key_list_policy: true,
            ..AuthorizerConfig::default()
        };
        Authorizer::compile(&[global_management()], config)
    }

    /// The authorizer of a token holding only `builtin/global-read-only`.
    pub fn global_read_only(config: AuthorizerConfig) -> Authorizer {
        Authorizer::compile(&[global_read_only()], config)
    }
}
