//! Rules text → `Rules`: every resource in HCL and JSON, the accepted
//! variants, rendering back to HCL, and every error with its position.

use crate::acl::{AccessLevel, Position, Resource, Rule, Rules, RulesError};

use AccessLevel::{Deny, List, Read, Write};
use Resource::{Agent, Event, Key, Node, Query, Service, Session};

fn rule(resource: Resource, prefix: bool, name: &str, policy: AccessLevel) -> Rule {
    Rule::new(resource, prefix, name, policy)
}

fn parse(text: &str) -> Rules {
    match Rules::parse(text) {
        Ok(rules) => rules,
        Err(e) => panic!("{text:?} should parse: {e}"),
    }
}

/// Every resource keyword and single value, as the HCL and JSON below
/// both write them.
fn every_resource() -> Rules {
    Rules {
        acl: Some(Write),
        keyring: Some(Read),
        operator: Some(Deny),
        mesh: Some(Read),
        peering: Some(Write),
        rules: vec![
            rule(Agent, false, "a1", Read),
            rule(Agent, true, "a", Write),
            rule(Event, false, "deploy", Write),
            rule(Event, true, "", Read),
            rule(Key, false, "app/config", Deny),
            rule(Key, true, "app/", List),
            rule(Node, false, "n1", Write),
            rule(Node, true, "", Read),
            rule(Query, false, "q", Write),
            rule(Query, true, "", Deny),
            Rule {
                intentions: Some(Deny),
                ..rule(Service, false, "web", Write)
            },
            Rule {
                intentions: Some(Write),
                ..rule(Service, true, "", Read)
            },
            rule(Session, false, "n1", Write),
            rule(Session, true, "", Read),
        ],
    }
}

const EVERY_RESOURCE_HCL: &str = r#"
# single values
acl = "write"
keyring = "read"
operator = "deny"
mesh = "read"
peering = "write"

agent "a1" { policy = "read" }
agent_prefix "a" {
  policy = "write"
}
event "deploy" { policy = "write" }
event_prefix "" { policy = "read" }
key "app/config" { policy = "deny" }
key_prefix "app/" { policy = "list" }
node "n1" { policy = "write" }
node_prefix "" { policy = "read" }
query "q" { policy = "write" }
query_prefix "" { policy = "deny" }
service "web" {
  policy     = "write"
  intentions = "deny"
}
service_prefix "" {
  policy = "read"
  intentions = "write"
}
// sessions
session "n1" { policy = "write" }
session_prefix "" { policy = "read" }
"#;

/// JSON objects come back in key order (serde_json's map is sorted), so
/// this lists the same rules in that order.
const EVERY_RESOURCE_JSON: &str = r#"{
  "acl": "write", "keyring": "read", "operator": "deny", "mesh": "read", "peering": "write",
  "agent": {"a1": {"policy": "read"}},
  "agent_prefix": {"a": {"policy": "write"}},
  "event": {"deploy": {"policy": "write"}},
  "event_prefix": {"": {"policy": "read"}},
  "key": {"app/config": {"policy": "deny"}},
  "key_prefix": {"app/": {"policy": "list"}},
  "node": {"n1": {"policy": "write"}},
  "node_prefix": {"": {"policy": "read"}},
  "query": {"q": {"policy": "write"}},
  "query_prefix": {"": {"policy": "deny"}},
  "service": {"web": {"policy": "write", "intentions": "deny"}},
  "service_prefix": {"": {"policy": "read", "intentions": "write"}},
  "session": {"n1": {"policy": "write"}},
  "session_prefix": {"": {"policy": "read"}}
}"#;

#[test]
fn acl_parse_hcl_every_resource() {
    assert_eq!(parse(EVERY_RESOURCE_HCL), every_resource());
}

#[test]
fn acl_parse_json_every_resource() {
    let mut expected = every_resource();
    expected.rules.sort_by_key(|r| r.keyword());
    assert_eq!(parse(EVERY_RESOURCE_JSON), expected);
}

#[test]
fn acl_parse_accepted_variants() {
    let cases: &[(&str, &str, Rules)] = &[
        ("empty text", "", Rules::default()),
        (
            "blanks and comments",
            "  \n# nothing\n// here\n/* at all */\n",
            Rules::default(),
        ),
        ("empty JSON object", " {} ", Rules::default()),
        (
            "upper case disposition (Consul lower-cases)",
            "key \"a\" { policy = \"READ\" }",
            Rules::default().with(rule(Key, false, "a", Read)),
        ),
        (
            "identifier label",
            "key_prefix foo { policy = \"write\" }",
            Rules::default().with(rule(Key, true, "foo", Write)),
        ),
        (
            "escaped quote in a name",
            r#"key "a\"b" { policy = "read" }"#,
            Rules::default().with(rule(Key, false, "a\"b", Read)),
        ),
        (
            "empty intentions is unset",
            "service \"w\" {\n  policy = \"read\"\n  intentions = \"\"\n}",
            Rules::default().with(rule(Service, false, "w", Read)),
        ),
        (
            "empty single value is unset",
            "operator = \"\"",
            Rules::default(),
        ),
        (
            "duplicate blocks are kept for the merge",
            "key \"a\" { policy = \"read\" }\nkey \"a\" { policy = \"deny\" }",
            Rules::default()
                .with(rule(Key, false, "a", Read))
                .with(rule(Key, false, "a", Deny)),
        ),
        (
            "JSON list of names",
            r#"{"key_prefix": [{"a/": {"policy": "read"}}, {"b/": {"policy": "write"}}]}"#,
            Rules::default()
                .with(rule(Key, true, "a/", Read))
                .with(rule(Key, true, "b/", Write)),
        ),
        (
            "JSON list of blocks under one name",
            r#"{"key": {"a": [{"policy": "read"}, {"policy": "deny"}]}}"#,
            Rules::default()
                .with(rule(Key, false, "a", Read))
                .with(rule(Key, false, "a", Deny)),
        ),
        (
            "JSON after leading blanks",
            "\n  {\"operator\": \"read\"}",
            Rules {
                operator: Some(Read),
                ..Rules::default()
            },
        ),
    ];
    for (what, text, expected) in cases {
        assert_eq!(&parse(text), expected, "{what}");
    }
}

#[test]
fn acl_parse_to_hcl_round_trips() {
    let odd_names = Rules {
        keyring: Some(Write),
        ..Rules::default()
    }
    .with(rule(Key, false, "quote\" and \\ back", Read))
    .with(rule(Key, true, "interp ${x} and %{y}", Write))
    .with(rule(Node, false, "new\nline\ttab \u{1}", Deny))
    .with(rule(Service, true, "ünïcode/", Read))
    .with(rule(Key, true, "", List));
    for rules in [every_resource(), odd_names, Rules::default()] {
        let text = rules.to_hcl();
        assert_eq!(parse(&text), rules, "{text}");
    }
}

#[test]
fn acl_parse_to_hcl_reads_like_rules() {
    let rules = Rules {
        operator: Some(Read),
        ..Rules::default()
    }
    .with(Rule {
        intentions: Some(Deny),
        ..rule(Service, false, "web", Write)
    });
    assert_eq!(
        rules.to_hcl(),
        "operator = \"read\"\nservice \"web\" {\n  policy = \"write\"\n  intentions = \"deny\"\n}\n"
    );
}

/// HCL errors: the whole message, position included. Columns are
/// one-based and count characters.
#[test]
fn acl_parse_hcl_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "key_prefix \"db/\" {\n  policy = \"writ\"\n}\n",
            "Failed to parse ACL rules: line 2, column 12: invalid policy \"writ\" for key_prefix \"db/\"",
        ),
        (
            "keys \"a\" {\n  policy = \"read\"\n}",
            "Failed to parse ACL rules: line 1, column 1: unknown ACL resource \"keys\"",
        ),
        (
            "\noperater = \"read\"",
            "Failed to parse ACL rules: line 2, column 1: unknown ACL resource \"operater\"",
        ),
        (
            "service \"web\" {\n  policy = \"list\"\n}",
            "Failed to parse ACL rules: line 2, column 12: invalid policy \"list\" for service \"web\": \
             list is only valid for key and key_prefix rules",
        ),
        (
            "operator = \"list\"",
            "Failed to parse ACL rules: line 1, column 12: invalid policy \"list\" for operator: \
             list is only valid for key and key_prefix rules",
        ),
        (
            "acl = \"manage\"",
            "Failed to parse ACL rules: line 1, column 7: invalid policy \"manage\" for acl",
        ),
        (
            "key \"a\" {\n}",
            "Failed to parse ACL rules: line 1, column 1: missing policy for key \"a\"",
        ),
        (
            "key \"a\" { policy = \"\" }",
            "Failed to parse ACL rules: line 1, column 20: invalid policy \"\" for key \"a\"",
        ),
        (
            "key \"a\" {\n  polcy = \"read\"\n}",
            "Failed to parse ACL rules: line 2, column 3: unknown field \"polcy\" in key \"a\"",
        ),
        (
            "key \"a\" {\n  policy = \"read\"\n  intentions = \"read\"\n}",
            "Failed to parse ACL rules: line 3, column 3: unknown field \"intentions\" in key \"a\"",
        ),
        (
            "service \"a\" {\n  policy = \"read\"\n  intentions = \"nope\"\n}",
            "Failed to parse ACL rules: line 3, column 16: invalid intentions \"nope\" for service \"a\"",
        ),
        (
            "key \"a\" {\n  policy = \"read\"\n  policy = \"write\"\n}",
            "Failed to parse ACL rules: line 3, column 3: the argument \"policy\" was already set. \
             Each argument can only be defined once",
        ),
        (
            "operator = \"read\"\noperator = \"write\"",
            "Failed to parse ACL rules: line 2, column 1: the argument \"operator\" was already set. \
             Each argument can only be defined once",
        ),
        (
            "operator = read",
            "Failed to parse ACL rules: line 1, column 12: the value of operator must be a string",
        ),
        (
            "key \"a\" {\n  policy = 1\n}",
            "Failed to parse ACL rules: line 2, column 12: policy of key \"a\" must be a string",
        ),
        (
            "operator \"x\" {\n  policy = \"read\"\n}",
            "Failed to parse ACL rules: line 1, column 1: operator takes a single value, like operator = \"read\"",
        ),
        (
            "key = \"read\"",
            "Failed to parse ACL rules: line 1, column 1: key rules are blocks with a name, \
             like key_prefix \"name\" { policy = \"read\" }",
        ),
        (
            "\n\nkey {\n  policy = \"read\"\n}",
            "Failed to parse ACL rules: line 3, column 1: key needs exactly one name, \
             like key_prefix \"name\" { policy = \"read\" } (\"\" for every name)",
        ),
        (
            "node \"a\" \"b\" {\n  policy = \"read\"\n}",
            "Failed to parse ACL rules: line 1, column 1: node needs exactly one name, \
             like key_prefix \"name\" { policy = \"read\" } (\"\" for every name)",
        ),
        (
            "key \"a\" {\n  sentinel {\n  }\n}",
            "Failed to parse ACL rules: line 2, column 3: unknown field \"sentinel\" in key \"a\"",
        ),
        (
            // Columns count characters: "ü" is two bytes but one column.
            "key \"ü\" { policy = \"x\" }",
            "Failed to parse ACL rules: line 1, column 20: invalid policy \"x\" for key \"ü\"",
        ),
    ];
    for (text, expected) in cases {
        match Rules::parse(text) {
            Ok(rules) => panic!("{text:?} should fail, parsed {rules:?}"),
            Err(e) => assert_eq!(&e.to_string(), expected, "{text:?}"),
        }
    }
}

#[test]
fn acl_parse_hcl_syntax_error_has_a_line() {
    let err = match Rules::parse("key \"a\" {\n  policy = \n}\n") {
        Ok(rules) => panic!("parsed {rules:?}"),
        Err(e) => e,
    };
    assert!(matches!(err, RulesError::Syntax { .. }), "{err:?}");
    assert!(
        matches!(err.position(), Position::Line { line: 2 | 3, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("Failed to parse ACL rules: line "),
        "{err}"
    );
}

/// JSON errors name a path, except syntax errors, which serde_json places.
#[test]
fn acl_parse_json_errors() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"key_prefix": {"db/": {"policy": "writ"}}}"#,
            "Failed to parse ACL rules: at key_prefix.\"db/\".policy: invalid policy \"writ\" for key_prefix \"db/\"",
        ),
        (
            r#"{"keys": {}}"#,
            "Failed to parse ACL rules: at keys: unknown ACL resource \"keys\"",
        ),
        (
            r#"{"operator": 1}"#,
            "Failed to parse ACL rules: at operator: the value of operator must be a string",
        ),
        (
            r#"{"operator": "list"}"#,
            "Failed to parse ACL rules: at operator: invalid policy \"list\" for operator: \
             list is only valid for key and key_prefix rules",
        ),
        (
            r#"{"key": {"a": {}}}"#,
            "Failed to parse ACL rules: at key.\"a\": missing policy for key \"a\"",
        ),
        (
            r#"{"key": {"a": {"polcy": "read"}}}"#,
            "Failed to parse ACL rules: at key.\"a\".polcy: unknown field \"polcy\" in key \"a\"",
        ),
        (
            r#"{"node": {"a": {"policy": true}}}"#,
            "Failed to parse ACL rules: at node.\"a\".policy: policy of node \"a\" must be a string",
        ),
        (
            r#"{"key": "read"}"#,
            "Failed to parse ACL rules: at key: key must be an object (or a list of objects)",
        ),
        (
            r#"{"key": {"a": "read"}}"#,
            "Failed to parse ACL rules: at key.\"a\": key.\"a\" must be an object (or a list of objects)",
        ),
        (
            r#"{"service": {"w": {"policy": "read", "intentions": "list"}}}"#,
            "Failed to parse ACL rules: at service.\"w\".intentions: invalid intentions \"list\" for \
             service \"w\": list is only valid for key and key_prefix rules",
        ),
        (
            r#"{"key": }"#,
            "Failed to parse ACL rules: line 1, column 9: expected value",
        ),
    ];
    for (text, expected) in cases {
        match Rules::parse(text) {
            Ok(rules) => panic!("{text:?} should fail, parsed {rules:?}"),
            Err(e) => assert_eq!(&e.to_string(), expected, "{text:?}"),
        }
    }
}

#[test]
fn acl_parse_error_positions_are_typed() {
    let err = match Rules::parse("key \"a\" {\n  policy = \"writ\"\n}") {
        Ok(rules) => panic!("parsed {rules:?}"),
        Err(e) => e,
    };
    assert_eq!(
        err.position(),
        &Position::Line {
            line: 2,
            column: 12
        }
    );
    assert!(matches!(
        &err,
        RulesError::InvalidPolicy { value, field, .. } if value == "writ" && field == "policy"
    ));
}
