//! Explanations and refusals: how each kind of decision reads, and the
//! Consul-worded `Permission denied` message built from it.

use std::sync::Arc;

use crate::acl::{
    permission_denied_message, Access, AccessLevel, DecidedBy, Decision, DefaultPolicy,
    PermissionDenied, Resource, RuleField, ANONYMOUS_TOKEN_ID,
};

fn rule(
    kind: &'static str,
    name: Option<&str>,
    field: RuleField,
    access: AccessLevel,
    policy: &str,
) -> DecidedBy {
    DecidedBy::Rule {
        kind,
        name: name.map(Arc::from),
        field,
        access,
        policy: Arc::from(policy),
    }
}

#[test]
fn acl_decision_explanations() {
    let cases: &[(bool, DecidedBy, &str)] = &[
        (
            false,
            rule(
                "key_prefix",
                Some("db/"),
                RuleField::Policy,
                AccessLevel::Deny,
                "ops",
            ),
            r#"denied by rule key_prefix "db/" policy "deny" in policy "ops""#,
        ),
        (
            true,
            rule(
                "key",
                Some("a \"quoted\" key"),
                RuleField::Policy,
                AccessLevel::Write,
                "p",
            ),
            r#"allowed by rule key "a \"quoted\" key" policy "write" in policy "p""#,
        ),
        (
            true,
            rule(
                "operator",
                None,
                RuleField::Policy,
                AccessLevel::Read,
                "ops",
            ),
            r#"allowed by rule operator = "read" in policy "ops""#,
        ),
        (
            false,
            rule(
                "service",
                Some("web"),
                RuleField::Intentions,
                AccessLevel::Deny,
                "p",
            ),
            r#"denied by rule service "web" intentions "deny" in policy "p""#,
        ),
        (
            true,
            rule(
                "service_prefix",
                Some(""),
                RuleField::IntentionsFromPolicy(AccessLevel::Write),
                AccessLevel::Read,
                "p",
            ),
            r#"allowed by rule service_prefix "" policy "write" (so intentions "read") in policy "p""#,
        ),
        (
            false,
            DecidedBy::Default {
                policy: DefaultPolicy::Deny,
            },
            r#"denied by default_policy "deny""#,
        ),
        (
            true,
            DecidedBy::Default {
                policy: DefaultPolicy::Allow,
            },
            r#"allowed by default_policy "allow""#,
        ),
        (
            false,
            DecidedBy::AclNeedsRule,
            r#"denied by no acl rule (default_policy "allow" never grants acl access)"#,
        ),
        (
            true,
            DecidedBy::KeyListNotEnforced,
            "allowed by enable_key_list_policy off (listed keys are filtered by key:read)",
        ),
    ];
    for (allowed, by, expected) in cases {
        let decision = Decision {
            allowed: *allowed,
            by: by.clone(),
        };
        assert_eq!(decision.to_string(), *expected);
        // The reason alone is the text after "allowed by " / "denied by ".
        let reason = expected.split_once(" by ").map(|(_, r)| r);
        assert_eq!(Some(by.to_string().as_str()), reason);
    }
}

#[test]
fn acl_decision_permission_denied_messages() {
    let by_rule = Decision {
        allowed: false,
        by: rule(
            "key_prefix",
            Some("db/"),
            RuleField::Policy,
            AccessLevel::Deny,
            "ops",
        ),
    };
    let by_default = Decision {
        allowed: false,
        by: DecidedBy::Default {
            policy: DefaultPolicy::Deny,
        },
    };
    let accessor = "6a1253d2-1785-24fd-91c2-f8e78c745511";
    let cases: &[(&str, Resource, Access, &str, &Decision, &str)] = &[
        (
            accessor,
            Resource::Key,
            Access::Write,
            "db/x",
            &by_rule,
            "Permission denied: token with AccessorID '6a1253d2-1785-24fd-91c2-f8e78c745511' lacks \
             permission 'key:write' on \"db/x\", denied by rule key_prefix \"db/\" policy \"deny\" in policy \"ops\"",
        ),
        (
            accessor,
            Resource::Operator,
            Access::Read,
            "",
            &by_default,
            "Permission denied: token with AccessorID '6a1253d2-1785-24fd-91c2-f8e78c745511' lacks \
             permission 'operator:read', denied by default_policy \"deny\"",
        ),
        (
            ANONYMOUS_TOKEN_ID,
            Resource::Service,
            Access::Read,
            "web",
            &by_default,
            "Permission denied: anonymous token lacks permission 'service:read' on \"web\", denied by \
             default_policy \"deny\". The anonymous token is used implicitly when a request does not \
             specify a token.",
        ),
        (
            accessor,
            Resource::Key,
            Access::List,
            "app/",
            &by_default,
            "Permission denied: token with AccessorID '6a1253d2-1785-24fd-91c2-f8e78c745511' lacks \
             permission 'key:list' on \"app/\", denied by default_policy \"deny\"",
        ),
    ];
    for (accessor, resource, access, name, decision, expected) in cases {
        assert_eq!(
            permission_denied_message(accessor, *resource, *access, name, decision),
            *expected
        );
        let refused = (*decision)
            .clone()
            .require(accessor, *resource, *access, name);
        match refused {
            Ok(()) => panic!("{expected} should be refused"),
            Err(e) => {
                assert_eq!(e.to_string(), *expected);
                assert_eq!(&e.decision, *decision);
            }
        }
    }
}

#[test]
fn acl_decision_require_passes_allowed() {
    let allowed = Decision {
        allowed: true,
        by: DecidedBy::Default {
            policy: DefaultPolicy::Allow,
        },
    };
    assert_eq!(
        allowed.require("id", Resource::Key, Access::Write, "k"),
        Ok(())
    );
    let e = PermissionDenied {
        accessor_id: "id".to_string(),
        resource: Resource::Acl,
        access: Access::Write,
        name: String::new(),
        decision: Decision {
            allowed: false,
            by: DecidedBy::AclNeedsRule,
        },
    };
    assert_eq!(
        e.to_string(),
        "Permission denied: token with AccessorID 'id' lacks permission 'acl:write', denied by no acl \
         rule (default_policy \"allow\" never grants acl access)"
    );
}
