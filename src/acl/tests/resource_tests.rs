//! Checks beyond one name: all/any over a resource, intentions derived
//! from service rules, mesh and peering falling back to operator.

use super::common::{assert_checks, compile, ALLOW, DENY};
use crate::acl::{Access, AccessLevel, Authorizer, DecidedBy, Resource, RuleField};

use Access::{Read, Write};
use Resource::{Intention, Mesh, Node, Operator, Peering, Service};

#[test]
fn acl_authz_check_all_and_any() {
    let p = |text: &'static str| compile(&[("p", text)], DENY);
    let denied_one =
        p("service_prefix \"\" { policy = \"read\" }\nservice \"secret\" { policy = \"deny\" }");
    let granted =
        p("service_prefix \"\" { policy = \"read\" }\nservice \"web\" { policy = \"write\" }");
    let no_catch_all = p(r#"service "web" { policy = "write" }"#);
    let cases: &[(&Authorizer, bool, Resource, Access, &str)] = &[
        (
            &denied_one,
            true,
            Service,
            Read,
            r#"denied by rule service "secret" policy "deny" in policy "p""#,
        ),
        (
            &denied_one,
            false,
            Service,
            Write,
            r#"denied by rule service_prefix "" policy "read" in policy "p""#,
        ),
        (
            &granted,
            true,
            Service,
            Read,
            r#"allowed by rule service_prefix "" policy "read" in policy "p""#,
        ),
        (
            &granted,
            false,
            Service,
            Write,
            r#"allowed by rule service "web" policy "write" in policy "p""#,
        ),
        (
            &no_catch_all,
            true,
            Service,
            Read,
            r#"denied by default_policy "deny""#,
        ),
        (
            &no_catch_all,
            false,
            Service,
            Write,
            r#"allowed by rule service "web" policy "write" in policy "p""#,
        ),
        (
            &no_catch_all,
            false,
            Node,
            Read,
            r#"denied by default_policy "deny""#,
        ),
        (
            &granted,
            true,
            Intention,
            Write,
            r#"denied by rule service_prefix "" policy "read" (so intentions "read") in policy "p""#,
        ),
        (
            &granted,
            false,
            Intention,
            Read,
            r#"allowed by rule service_prefix "" policy "read" (so intentions "read") in policy "p""#,
        ),
    ];
    for (authz, all, resource, access, expected) in cases {
        let decision = if *all {
            authz.check_all(*resource, *access)
        } else {
            authz.check_any(*resource, *access)
        };
        assert_eq!(
            decision.to_string(),
            *expected,
            "all={all} {resource}:{access}"
        );
    }
    let allow = compile(&[(r"p", r#"service "web" { policy = "write" }"#)], ALLOW);
    assert_eq!(
        allow.check_all(Service, Read).to_string(),
        r#"allowed by default_policy "allow""#
    );
    // Single-valued resources have no names: all/any is the plain check.
    assert_eq!(
        compile(&[("p", r#"operator = "read""#)], DENY)
            .check_all(Operator, Read)
            .to_string(),
        r#"allowed by rule operator = "read" in policy "p""#
    );
}

#[test]
fn acl_authz_intentions_follow_service_rules() {
    let authz = compile(
        &[(
            "p",
            r#"
service "web" { policy = "write" }
service "db" { policy = "deny" }
service "api" {
  policy = "read"
  intentions = "write"
}
service_prefix "int-" { policy = "read" }
"#,
        )],
        DENY,
    );
    assert_checks(
        &authz,
        &[
            (
                Intention,
                Read,
                "web",
                r#"allowed by rule service "web" policy "write" (so intentions "read") in policy "p""#,
            ),
            (
                Intention,
                Write,
                "web",
                r#"denied by rule service "web" policy "write" (so intentions "read") in policy "p""#,
            ),
            (
                Intention,
                Read,
                "db",
                r#"denied by rule service "db" policy "deny" (so intentions "deny") in policy "p""#,
            ),
            (
                Intention,
                Write,
                "api",
                r#"allowed by rule service "api" intentions "write" in policy "p""#,
            ),
            (
                Intention,
                Read,
                "int-x",
                r#"allowed by rule service_prefix "int-" policy "read" (so intentions "read") in policy "p""#,
            ),
            (
                Intention,
                Read,
                "other",
                r#"denied by default_policy "deny""#,
            ),
        ],
    );
    let d = authz.check(Intention, Read, "web");
    assert!(matches!(
        d.by,
        DecidedBy::Rule {
            kind: "service",
            field: RuleField::IntentionsFromPolicy(AccessLevel::Write),
            ..
        }
    ));
}

#[test]
fn acl_authz_mesh_and_peering_fall_back_to_operator() {
    let cases: &[(&str, Resource, Access, &str)] = &[
        (
            r#"operator = "write""#,
            Mesh,
            Write,
            r#"allowed by rule operator = "write" in policy "p""#,
        ),
        (
            r#"operator = "write""#,
            Peering,
            Read,
            r#"allowed by rule operator = "write" in policy "p""#,
        ),
        (
            "operator = \"write\"\nmesh = \"read\"",
            Mesh,
            Write,
            r#"denied by rule mesh = "read" in policy "p""#,
        ),
        (
            "operator = \"write\"\nmesh = \"read\"",
            Peering,
            Write,
            r#"allowed by rule operator = "write" in policy "p""#,
        ),
        (
            "operator = \"deny\"\npeering = \"write\"",
            Peering,
            Write,
            r#"allowed by rule peering = "write" in policy "p""#,
        ),
        (
            r#"keyring = "read""#,
            Mesh,
            Read,
            r#"denied by default_policy "deny""#,
        ),
        (
            r#"keyring = "read""#,
            Resource::Keyring,
            Read,
            r#"allowed by rule keyring = "read" in policy "p""#,
        ),
        (
            r#"keyring = "read""#,
            Resource::Keyring,
            Write,
            r#"denied by rule keyring = "read" in policy "p""#,
        ),
    ];
    for (text, resource, access, expected) in cases {
        let authz = compile(&[("p", text)], DENY);
        // Single-valued resources ignore the name.
        for name in ["", "anything"] {
            assert_eq!(
                authz.check(*resource, *access, name).to_string(),
                *expected,
                "{text}"
            );
        }
    }
}
