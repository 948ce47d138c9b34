//! A larger compile: 20 policies of 5 rules each, checked per team.

use super::common::{assert_checks, DENY};
use crate::acl::{Access, Authorizer, NamedRules, Resource};

use Access::{Read, Write};
use Resource::{Key, Node, Service, Session};

/// 20 policies of 5 rules each, some sharing rules, checked per team.
#[test]
fn acl_authz_twenty_policies_of_five_rules() {
    let texts: Vec<(String, String)> = (0..20)
        .map(|i| {
            let text = format!(
                r#"
key_prefix "team{i}/" {{ policy = "write" }}
key "team{i}/locked" {{ policy = "deny" }}
service "svc-{i}" {{ policy = "write" }}
node_prefix "rack{i}-" {{ policy = "read" }}
session_prefix "" {{ policy = "read" }}
"#
            );
            (format!("team-{i:02}"), text)
        })
        .collect();
    let named: Vec<NamedRules> = texts
        .iter()
        .map(
            |(name, text)| match NamedRules::parse(name.as_str(), text) {
                Ok(n) => n,
                Err(e) => panic!("{name}: {e}"),
            },
        )
        .collect();
    assert!(named.iter().all(|n| n.rules.rules.len() == 5));
    let authz = Authorizer::compile(&named, DENY);
    for i in 0..20 {
        let policy = format!("team-{i:02}");
        let rows: Vec<(Resource, Access, String, String)> = vec![
            (
                Key,
                Write,
                format!("team{i}/x"),
                format!(
                    r#"allowed by rule key_prefix "team{i}/" policy "write" in policy "{policy}""#
                ),
            ),
            (
                Key,
                Read,
                format!("team{i}/locked"),
                format!(
                    r#"denied by rule key "team{i}/locked" policy "deny" in policy "{policy}""#
                ),
            ),
            (
                Service,
                Write,
                format!("svc-{i}"),
                format!(r#"allowed by rule service "svc-{i}" policy "write" in policy "{policy}""#),
            ),
            (
                Node,
                Read,
                format!("rack{i}-n1"),
                format!(
                    r#"allowed by rule node_prefix "rack{i}-" policy "read" in policy "{policy}""#
                ),
            ),
            (
                Node,
                Write,
                format!("rack{i}-n1"),
                format!(
                    r#"denied by rule node_prefix "rack{i}-" policy "read" in policy "{policy}""#
                ),
            ),
            (
                Session,
                Write,
                format!("rack{i}-n1"),
                r#"denied by rule session_prefix "" policy "read" in policy "team-00""#.to_string(),
            ),
        ];
        for (resource, access, name, expected) in rows {
            assert_eq!(authz.check(resource, access, &name).to_string(), expected);
        }
    }
    assert_checks(
        &authz,
        &[
            (Key, Read, "team20/x", r#"denied by default_policy "deny""#),
            (
                Service,
                Read,
                "svc-20",
                r#"denied by default_policy "deny""#,
            ),
            (Node, Read, "rack-n1", r#"denied by default_policy "deny""#),
        ],
    );
    assert_eq!(
        authz.key_write_prefix("team3/").to_string(),
        r#"denied by rule key "team3/locked" policy "deny" in policy "team-03""#
    );
    assert!(authz.check_any(Service, Write).allowed);
}
