//! Helpers the authorizer tests share: the three configurations they
//! compile with, compiling from rules text, and checking rows of
//! (resource, access, name, expected explanation).

use crate::acl::{Access, Authorizer, AuthorizerConfig, DefaultPolicy, NamedRules, Resource};

pub(super) const DENY: AuthorizerConfig = AuthorizerConfig {
    default_policy: DefaultPolicy::Deny,
    enable_key_list_policy: false,
};
pub(super) const ALLOW: AuthorizerConfig = AuthorizerConfig {
    default_policy: DefaultPolicy::Allow,
    enable_key_list_policy: false,
};
pub(super) const DENY_LIST: AuthorizerConfig = AuthorizerConfig {
    default_policy: DefaultPolicy::Deny,
    enable_key_list_policy: true,
};

pub(super) fn compile(policies: &[(&str, &str)], config: AuthorizerConfig) -> Authorizer {
    let named: Vec<NamedRules> = policies
        .iter()
        .map(|(name, text)| match NamedRules::parse(*name, text) {
            Ok(n) => n,
            Err(e) => panic!("policy {name}: {e}"),
        })
        .collect();
    Authorizer::compile(&named, config)
}

/// Checks rows of (resource, access, name, expected decision text).
pub(super) fn assert_checks(authz: &Authorizer, rows: &[(Resource, Access, &str, &str)]) {
    for (resource, access, name, expected) in rows {
        let decision = authz.check(*resource, *access, name);
        assert_eq!(
            decision.to_string(),
            *expected,
            "{resource}:{access} on {name:?}"
        );
        assert_eq!(
            decision.allowed,
            expected.starts_with("allowed"),
            "{expected}"
        );
        assert_eq!(authz.allowed(*resource, *access, name), decision.allowed);
    }
}
