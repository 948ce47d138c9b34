//! KV specifics: `list` with `enable_key_list_policy` on and off, and
//! recursive writes (`key_write_prefix`).

use super::common::{assert_checks, compile, ALLOW, DENY, DENY_LIST};
use crate::acl::{Access, AuthorizerConfig, DefaultPolicy, Resource};

use Access::{List, Read, Write};
use Resource::Key;

#[test]
fn acl_authz_key_list_policy() {
    let rules = r#"
key_prefix "" { policy = "read" }
key_prefix "l/" { policy = "list" }
key_prefix "w/" { policy = "write" }
key_prefix "d/" { policy = "deny" }
"#;
    let on = compile(&[("p", rules)], DENY_LIST);
    assert_checks(
        &on,
        &[
            (
                Key,
                List,
                "x",
                r#"denied by rule key_prefix "" policy "read" in policy "p""#,
            ),
            (
                Key,
                List,
                "l/a",
                r#"allowed by rule key_prefix "l/" policy "list" in policy "p""#,
            ),
            (
                Key,
                Read,
                "l/a",
                r#"allowed by rule key_prefix "l/" policy "list" in policy "p""#,
            ),
            (
                Key,
                Write,
                "l/a",
                r#"denied by rule key_prefix "l/" policy "list" in policy "p""#,
            ),
            (
                Key,
                List,
                "w/",
                r#"allowed by rule key_prefix "w/" policy "write" in policy "p""#,
            ),
            (
                Key,
                List,
                "d/",
                r#"denied by rule key_prefix "d/" policy "deny" in policy "p""#,
            ),
        ],
    );
    let off = compile(&[("p", rules)], DENY);
    let not_enforced =
        "allowed by enable_key_list_policy off (listed keys are filtered by key:read)";
    assert_checks(
        &off,
        &[
            (Key, List, "x", not_enforced),
            (Key, List, "d/", not_enforced),
            (
                Key,
                Read,
                "d/a",
                r#"denied by rule key_prefix "d/" policy "deny" in policy "p""#,
            ),
            (
                Key,
                Read,
                "l/a",
                r#"allowed by rule key_prefix "l/" policy "list" in policy "p""#,
            ),
        ],
    );
    // No matching rule: the default policy, whatever the option.
    let allow_list = AuthorizerConfig {
        default_policy: DefaultPolicy::Allow,
        enable_key_list_policy: true,
    };
    assert_checks(
        &compile(&[], allow_list),
        &[(Key, List, "x", r#"allowed by default_policy "allow""#)],
    );
    assert_checks(
        &compile(&[], DENY_LIST),
        &[(Key, List, "x", r#"denied by default_policy "deny""#)],
    );
}

#[test]
fn acl_authz_key_write_prefix() {
    let authz = compile(
        &[(
            "p",
            r#"
key_prefix "" { policy = "write" }
key_prefix "app/" { policy = "write" }
key "app/locked" { policy = "read" }
key_prefix "ro/" { policy = "read" }
key_prefix "mixed/" { policy = "write" }
key_prefix "mixed/ro/" { policy = "deny" }
"#,
        )],
        DENY,
    );
    let cases = [
        (
            "app/",
            r#"denied by rule key "app/locked" policy "read" in policy "p""#,
        ),
        (
            "other/",
            r#"allowed by rule key_prefix "" policy "write" in policy "p""#,
        ),
        (
            "ro/x",
            r#"denied by rule key_prefix "ro/" policy "read" in policy "p""#,
        ),
        (
            "mixed/",
            r#"denied by rule key_prefix "mixed/ro/" policy "deny" in policy "p""#,
        ),
        (
            "mixed/rw/",
            r#"allowed by rule key_prefix "mixed/" policy "write" in policy "p""#,
        ),
        (
            "",
            r#"denied by rule key "app/locked" policy "read" in policy "p""#,
        ),
    ];
    for (prefix, expected) in cases {
        assert_eq!(
            authz.key_write_prefix(prefix).to_string(),
            expected,
            "{prefix:?}"
        );
    }
    // No covering prefix rule: a denying rule underneath still refuses,
    // otherwise the default decides.
    let exact_only = compile(&[("p", r#"key "a/b" { policy = "deny" }"#)], ALLOW);
    assert_eq!(
        exact_only.key_write_prefix("a/").to_string(),
        r#"denied by rule key "a/b" policy "deny" in policy "p""#
    );
    assert_eq!(
        exact_only.key_write_prefix("b/").to_string(),
        r#"allowed by default_policy "allow""#
    );
    assert_eq!(
        compile(&[], DENY).key_write_prefix("a/").to_string(),
        r#"denied by default_policy "deny""#
    );
}
