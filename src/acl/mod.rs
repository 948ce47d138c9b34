//! Consul's ACL rules language and a compiled authorizer.
//!
//! Pure code: no I/O, no async; of the crate only `structs` (the builtins' definitions). It turns rules
//! text into [`Rules`], a token's policies into an [`Authorizer`], and a
//! permission check into a [`Decision`] that says what decided it, so a
//! 403 can name the rule (or the default policy) that refused.
//!
//! # Using it
//!
//! ```
//! use meridian::acl::{Access, Authorizer, AuthorizerConfig, DefaultPolicy, NamedRules, Resource};
//!
//! // Parse when a policy is written (refuse the write on error) …
//! let ops = NamedRules::parse("ops", r#"
//! key_prefix ""    { policy = "read" }
//! key_prefix "db/" { policy = "deny" }
//! operator = "read"
//! "#).expect("valid rules");
//!
//! // … compile once per token (its policies, its roles' policies and the
//! // synthesized policies of its identities, filtered to this datacenter) …
//! let config = AuthorizerConfig { default_policy: DefaultPolicy::Deny, enable_key_list_policy: false };
//! let authz = Authorizer::compile(&[ops], config);
//!
//! // … and check per request.
//! let decision = authz.check(Resource::Key, Access::Write, "db/x");
//! assert!(!decision.allowed);
//! let refusal = decision.require("6a1253d2-1785-24fd-91c2-f8e78c745511", Resource::Key, Access::Write, "db/x");
//! assert_eq!(
//!     refusal.unwrap_err().to_string(),
//!     "Permission denied: token with AccessorID '6a1253d2-1785-24fd-91c2-f8e78c745511' \
//!      lacks permission 'key:write' on \"db/x\", denied by rule key_prefix \"db/\" \
//!      policy \"deny\" in policy \"ops\"",
//! );
//! ```
//!
//! Which check an endpoint makes is the caller's business, as in Consul's
//! endpoints; the usual ones:
//!
//! - KV: `check(Key, Read|Write, key)`; a recursive delete
//!   [`Authorizer::key_write_prefix`]; a listing `check(Key, List, prefix)`
//!   (always allowed unless `enable_key_list_policy`) and then every
//!   listed key filtered with `check(Key, Read, key)`.
//! - Catalog and health reads filter by `check(Service|Node, Read, name)`;
//!   "all services / all nodes" views use [`Authorizer::check_all`],
//!   "any service writable" [`Authorizer::check_any`].
//! - Intentions: `check(Intention, Read|Write, destination)`; listing all
//!   is `check_any(Intention, Read)`, writing `*` is
//!   `check_all(Intention, Write)`.
//! - Snapshots: `check(Acl, Write, "")`. ACL endpoints: `check(Acl, …)`.
//!   Neither is ever granted by `default_policy = "allow"`.
//! - Management tokens: [`Authorizer::management`].
//!
//! # Semantics (Consul's)
//!
//! - An exact rule (`key "a/b"`) beats prefix rules; among prefix rules the
//!   longest matching one wins; `""` matches everything.
//! - A rule set by several policies of one token merges: deny over write
//!   over list over read. Service `intentions` merge on their own; unset,
//!   intention access follows the service `policy` (read/write → read).
//! - `write` grants read, list and write; `list` grants list and read;
//!   `read` grants read. `list` is only accepted on key rules.
//! - No matching rule → the default policy, except `acl` under "allow".
//!   `mesh` and `peering` fall back to `operator` when unset.
//! - Policies with `Datacenters` that exclude this one must be left out by
//!   the caller before compiling; identities do it themselves
//!   ([`service_identity_policy`], [`node_identity_policy`]).
//!
//! # Files
//!
//! - `access.rs` the vocabulary: [`AccessLevel`], [`Access`],
//!   [`Resource`], [`DefaultPolicy`].
//! - `rules.rs` parsed rules ([`Rules`], [`Rule`], [`NamedRules`]), rule
//!   keywords, and rendering back to HCL.
//! - `parse.rs` the parser's HCL front end and the checks both front ends
//!   share; `parse_json.rs` the JSON front end; `error.rs` [`RulesError`]
//!   with its [`Position`].
//! - `authorizer.rs` merging, compiling and deciding ([`Authorizer`],
//!   [`AuthorizerConfig`]).
//! - `decision.rs` [`Decision`], [`DecidedBy`] and the Consul-worded
//!   [`PermissionDenied`].
//! - `builtin.rs` global-management and builtin/global-read-only.
//! - `identity.rs` service and node identity policies.
//! - `enforce.rs` which permission each request needs ([`Enforcer`]).
//! - `names.rs` policy and identity name validation.
//! - `tests/` unit tests, one file per concern.

mod access;
mod authorizer;
mod builtin;
mod decision;
mod enforce;
mod error;
mod grants;
mod identity;
mod names;
mod parse;
mod parse_json;
mod rules;

#[cfg(test)]
mod tests;

pub use access::{Access, AccessLevel, DefaultPolicy, Resource};
pub use authorizer::{Authorizer, AuthorizerConfig};
pub use builtin::{
    global_management, global_read_only, GLOBAL_MANAGEMENT_DESCRIPTION, GLOBAL_MANAGEMENT_ID,
    GLOBAL_MANAGEMENT_NAME, GLOBAL_MANAGEMENT_RULES, GLOBAL_READ_ONLY_DESCRIPTION,
    GLOBAL_READ_ONLY_ID, GLOBAL_READ_ONLY_NAME, GLOBAL_READ_ONLY_RULES,
};
pub use decision::{
    permission_denied_message, DecidedBy, Decision, PermissionDenied, RuleField, ANONYMOUS_TOKEN_ID,
};
pub use enforce::{Enforcer, Lookup, REDACTED_SECRET};
pub use error::{Position, RulesError, Target};
pub use grants::{GrantedPolicy, TokenGrants};
pub use identity::{
    node_identity_policy, node_identity_rules, node_identity_rules_text, service_identity_policy,
    service_identity_rules, service_identity_rules_text,
};
pub use names::{
    valid_node_identity_name, valid_role_name, valid_service_identity_name, validate_policy_name,
    PolicyNameError,
};
pub use rules::{parse_plain_keyword, parse_rule_keyword, rule_keyword, NamedRules, Rule, Rules};
