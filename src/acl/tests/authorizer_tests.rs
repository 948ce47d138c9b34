//! Compiling and deciding: exact vs prefix, longest prefix, resources
//! kept apart, merging across policies, default policies. Each row checks
//! the verdict and the explanation together.

use super::common::{assert_checks, compile, ALLOW, DENY, DENY_LIST};
use crate::acl::{Access, DecidedBy, DefaultPolicy, Resource};

use Access::{List, Read, Write};
use Resource::{Acl, Intention, Key, Node, Operator, Service, Session};

#[test]
fn acl_authz_exact_beats_prefix_and_longest_prefix_wins() {
    let authz = compile(
        &[(
            "p",
            r#"
key_prefix "" { policy = "read" }
key_prefix "app/" { policy = "write" }
key_prefix "app/secret/" { policy = "deny" }
key "app/secret/ok" { policy = "read" }
key "app" { policy = "deny" }
key_prefix "app" { policy = "list" }
key_prefix "ü" { policy = "write" }
key_prefix "ab" { policy = "deny" }
"#,
        )],
        DENY,
    );
    assert_checks(
        &authz,
        &[
            (
                Key,
                Read,
                "other",
                r#"allowed by rule key_prefix "" policy "read" in policy "p""#,
            ),
            (
                Key,
                Write,
                "other",
                r#"denied by rule key_prefix "" policy "read" in policy "p""#,
            ),
            (
                Key,
                Write,
                "app/x",
                r#"allowed by rule key_prefix "app/" policy "write" in policy "p""#,
            ),
            (
                Key,
                Read,
                "app/secret/x",
                r#"denied by rule key_prefix "app/secret/" policy "deny" in policy "p""#,
            ),
            (
                Key,
                Read,
                "app/secret/ok",
                r#"allowed by rule key "app/secret/ok" policy "read" in policy "p""#,
            ),
            (
                Key,
                Write,
                "app/secret/ok",
                r#"denied by rule key "app/secret/ok" policy "read" in policy "p""#,
            ),
            (
                Key,
                Read,
                "app/secret/ok/deeper",
                r#"denied by rule key_prefix "app/secret/" policy "deny" in policy "p""#,
            ),
            (
                Key,
                Read,
                "app",
                r#"denied by rule key "app" policy "deny" in policy "p""#,
            ),
            (
                Key,
                Read,
                "apple",
                r#"allowed by rule key_prefix "app" policy "list" in policy "p""#,
            ),
            (
                Key,
                Read,
                "ap",
                r#"allowed by rule key_prefix "" policy "read" in policy "p""#,
            ),
            (
                Key,
                Write,
                "üx",
                r#"allowed by rule key_prefix "ü" policy "write" in policy "p""#,
            ),
            // "aü" cut at 2 bytes falls inside "ü": no prefix rule can end there.
            (
                Key,
                Read,
                "aü",
                r#"allowed by rule key_prefix "" policy "read" in policy "p""#,
            ),
            (
                Key,
                Read,
                "abc",
                r#"denied by rule key_prefix "ab" policy "deny" in policy "p""#,
            ),
            (
                Key,
                Read,
                "",
                r#"allowed by rule key_prefix "" policy "read" in policy "p""#,
            ),
        ],
    );
}

#[test]
fn acl_authz_resources_do_not_mix() {
    let authz = compile(
        &[(
            "p",
            "node_prefix \"\" { policy = \"read\" }\nservice \"web\" { policy = \"write\" }\nagent \"web\" { policy = \"read\" }",
        )],
        DENY,
    );
    assert_checks(
        &authz,
        &[
            (Key, Read, "web", r#"denied by default_policy "deny""#),
            (Session, Read, "web", r#"denied by default_policy "deny""#),
            (
                Service,
                Write,
                "web",
                r#"allowed by rule service "web" policy "write" in policy "p""#,
            ),
            (Service, Read, "webx", r#"denied by default_policy "deny""#),
            (
                Resource::Agent,
                Read,
                "web",
                r#"allowed by rule agent "web" policy "read" in policy "p""#,
            ),
            (
                Resource::Agent,
                Read,
                "web2",
                r#"denied by default_policy "deny""#,
            ),
            (
                Node,
                Read,
                "anything",
                r#"allowed by rule node_prefix "" policy "read" in policy "p""#,
            ),
            (
                Resource::Event,
                Write,
                "deploy",
                r#"denied by default_policy "deny""#,
            ),
            (
                Resource::Query,
                Read,
                "q",
                r#"denied by default_policy "deny""#,
            ),
        ],
    );
}

/// (policies as (name, rules text), check, expected explanation).
type MergeCase<'a> = (
    &'a [(&'a str, &'a str)],
    (Resource, Access, &'a str),
    &'a str,
);

#[test]
fn acl_authz_merge_across_policies() {
    // (policies, check, expected): the same rule set by two policies.
    let cases: &[MergeCase] = &[
        (
            &[
                ("A", r#"key "k" { policy = "write" }"#),
                ("B", r#"key "k" { policy = "deny" }"#),
            ],
            (Key, Read, "k"),
            r#"denied by rule key "k" policy "deny" in policy "B""#,
        ),
        (
            &[
                ("A", r#"key "k" { policy = "deny" }"#),
                ("B", r#"key "k" { policy = "write" }"#),
            ],
            (Key, Read, "k"),
            r#"denied by rule key "k" policy "deny" in policy "A""#,
        ),
        (
            &[
                ("A", r#"key "k" { policy = "write" }"#),
                ("B", r#"key "k" { policy = "read" }"#),
            ],
            (Key, Write, "k"),
            r#"allowed by rule key "k" policy "write" in policy "A""#,
        ),
        (
            &[
                ("A", r#"key "k" { policy = "read" }"#),
                ("B", r#"key "k" { policy = "list" }"#),
            ],
            (Key, List, "k"),
            r#"allowed by rule key "k" policy "list" in policy "B""#,
        ),
        (
            &[
                ("A", r#"key "k" { policy = "list" }"#),
                ("B", r#"key "k" { policy = "write" }"#),
            ],
            (Key, Write, "k"),
            r#"allowed by rule key "k" policy "write" in policy "B""#,
        ),
        (
            // Equal values: the first policy is named.
            &[
                ("A", r#"key "k" { policy = "read" }"#),
                ("B", r#"key "k" { policy = "read" }"#),
            ],
            (Key, Read, "k"),
            r#"allowed by rule key "k" policy "read" in policy "A""#,
        ),
        (
            // Within one policy, duplicates merge the same way.
            &[(
                "A",
                "key \"k\" { policy = \"deny\" }\nkey \"k\" { policy = \"write\" }",
            )],
            (Key, Write, "k"),
            r#"denied by rule key "k" policy "deny" in policy "A""#,
        ),
        (
            &[
                ("A", r#"operator = "write""#),
                ("B", r#"operator = "deny""#),
            ],
            (Operator, Read, ""),
            r#"denied by rule operator = "deny" in policy "B""#,
        ),
        (
            &[("A", r#"acl = "read""#), ("B", r#"acl = "write""#)],
            (Acl, Write, ""),
            r#"allowed by rule acl = "write" in policy "B""#,
        ),
        (
            // Exact and prefix rules are different rules: exact wins, no merge.
            &[
                ("A", r#"key_prefix "a/" { policy = "write" }"#),
                ("B", r#"key "a/b" { policy = "deny" }"#),
            ],
            (Key, Write, "a/b"),
            r#"denied by rule key "a/b" policy "deny" in policy "B""#,
        ),
        (
            &[
                ("A", r#"key_prefix "a/" { policy = "write" }"#),
                ("B", r#"key "a/b" { policy = "deny" }"#),
            ],
            (Key, Write, "a/c"),
            r#"allowed by rule key_prefix "a/" policy "write" in policy "A""#,
        ),
        (
            // A deny on a shorter prefix does not beat a longer prefix's grant.
            &[
                ("A", r#"key_prefix "a/" { policy = "deny" }"#),
                ("B", r#"key_prefix "a/b/" { policy = "write" }"#),
            ],
            (Key, Write, "a/b/c"),
            r#"allowed by rule key_prefix "a/b/" policy "write" in policy "B""#,
        ),
        (
            // Service policy and intentions merge on their own.
            &[
                ("A", r#"service "web" { policy = "write" }"#),
                (
                    "B",
                    "service \"web\" {\n policy = \"read\"\n intentions = \"deny\"\n}",
                ),
            ],
            (Intention, Read, "web"),
            r#"denied by rule service "web" intentions "deny" in policy "B""#,
        ),
        (
            &[
                ("A", r#"service "web" { policy = "write" }"#),
                (
                    "B",
                    "service \"web\" {\n policy = \"read\"\n intentions = \"deny\"\n}",
                ),
            ],
            (Service, Write, "web"),
            r#"allowed by rule service "web" policy "write" in policy "A""#,
        ),
    ];
    for (policies, (resource, access, name), expected) in cases {
        let authz = compile(policies, DENY_LIST);
        assert_eq!(
            authz.check(*resource, *access, name).to_string(),
            *expected,
            "{policies:?}"
        );
    }
}

#[test]
fn acl_authz_default_policy() {
    let deny = compile(&[], DENY);
    let allow = compile(&[], ALLOW);
    for resource in Resource::ALL {
        for access in [Read, Write] {
            let d = deny.check(resource, access, "x");
            assert_eq!(
                d.by,
                DecidedBy::Default {
                    policy: DefaultPolicy::Deny
                },
                "{resource}"
            );
            assert!(!d.allowed);
            let a = allow.check(resource, access, "x");
            if resource == Acl {
                // Consul's allow-all authorizer never grants ACL management.
                assert_eq!(a.by, DecidedBy::AclNeedsRule);
                assert!(!a.allowed);
            } else {
                assert_eq!(
                    a.by,
                    DecidedBy::Default {
                        policy: DefaultPolicy::Allow
                    },
                    "{resource}"
                );
                assert!(a.allowed);
            }
        }
    }
    assert_checks(
        &deny,
        &[(Key, Read, "x", r#"denied by default_policy "deny""#)],
    );
    assert_checks(
        &allow,
        &[
            (Key, Write, "x", r#"allowed by default_policy "allow""#),
            (
                Acl,
                Read,
                "",
                r#"denied by no acl rule (default_policy "allow" never grants acl access)"#,
            ),
        ],
    );
    let acl_read = compile(&[("p", r#"acl = "read""#)], ALLOW);
    assert_checks(
        &acl_read,
        &[
            (
                Acl,
                Read,
                "",
                r#"allowed by rule acl = "read" in policy "p""#,
            ),
            (
                Acl,
                Write,
                "",
                r#"denied by rule acl = "read" in policy "p""#,
            ),
            // A rule elsewhere leaves other resources to the default.
            (Key, Write, "k", r#"allowed by default_policy "allow""#),
        ],
    );
}
