//! The parser against go-bexpr's own grammar cases (inputs, trees, error
//! texts), and evaluation against Consul's documented examples.

use serde_json::json;

use super::ast::{Expr, Match, Op};
use super::parser::parse;
use super::schema::{self, Schema};
use super::{Filter, FilterError};

fn m(sel: &str, op: Op, value: Option<&str>) -> Expr {
    Expr::Match(Match {
        selector: sel.split('.').map(str::to_string).collect(),
        op,
        value: value.map(str::to_string),
    })
}

fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}

fn ok(input: &str) -> Expr {
    match parse(input) {
        Ok(e) => e,
        Err(e) => panic!("{input:?}: {e}"),
    }
}

fn err(input: &str) -> String {
    match parse(input) {
        Ok(e) => panic!("{input:?} parsed as {e:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_operator_parses_to_its_match() {
    use Op::*;
    assert_eq!(ok("foo == 3"), m("foo", Equal, Some("3")));
    assert_eq!(ok("foo != xyz"), m("foo", NotEqual, Some("xyz")));
    assert_eq!(ok("list is empty"), m("list", IsEmpty, None));
    assert_eq!(ok("list is not empty"), m("list", IsNotEmpty, None));
    assert_eq!(ok("foo in bar"), m("bar", In, Some("foo")));
    assert_eq!(ok("foo not in bar"), m("bar", NotIn, Some("foo")));
    assert_eq!(ok("bar contains foo"), m("bar", In, Some("foo")));
    assert_eq!(ok("bar not contains foo"), m("bar", NotIn, Some("foo")));
    assert_eq!(ok("foo matches bar"), m("foo", Matches, Some("bar")));
    assert_eq!(ok("foo not matches bar"), m("foo", NotMatches, Some("bar")));
    assert_eq!(ok("foo==3"), m("foo", Equal, Some("3")), "no spaces needed");
}

#[test]
fn values_may_be_quoted_either_way_or_be_numbers() {
    use Op::*;
    assert_eq!(ok("foo == \"bar\""), m("foo", Equal, Some("bar")));
    assert_eq!(ok("foo != `bar`"), m("foo", NotEqual, Some("bar")));
    assert_eq!(ok("\"foo\" in bar"), m("bar", In, Some("foo")));
    assert_eq!(ok("`foo` not in bar"), m("bar", NotIn, Some("foo")));
    assert_eq!(ok("foo == 0.2"), m("foo", Equal, Some("0.2")));
    assert_eq!(ok("foo == 11.11"), m("foo", Equal, Some("11.11")));
    assert_eq!(ok("foo == -0.2"), m("foo", Equal, Some("-0.2")));
    assert_eq!(ok("foo == a.b"), m("foo", Equal, Some("a.b")));
    assert_eq!(
        ok(r#"foo == "a\tb\u00e9""#),
        m("foo", Equal, Some("a\tb\u{e9}"))
    );
    assert_eq!(ok(r"foo == `a\tb`"), m("foo", Equal, Some(r"a\tb")));
    assert_eq!(ok(r#"foo == """#), m("foo", Equal, Some("")));
    // A quoted value is the string it spells, never a JSON pointer.
    assert_eq!(ok(r#"foo == "/api""#), m("foo", Equal, Some("/api")));
}

#[test]
fn precedence_is_not_then_and_then_or() {
    use Op::*;
    assert_eq!(
        ok("x in foo and not str == something or list is empty"),
        Expr::Or(vec![
            Expr::And(vec![
                m("foo", In, Some("x")),
                not(m("str", Equal, Some("something")))
            ]),
            m("list", IsEmpty, None),
        ])
    );
    assert_eq!(
        ok("x in foo and not (str == something or list is empty)"),
        Expr::And(vec![
            m("foo", In, Some("x")),
            not(Expr::Or(vec![
                m("str", Equal, Some("something")),
                m("list", IsEmpty, None)
            ])),
        ])
    );
    assert_eq!(ok("not not foo == 3"), m("foo", Equal, Some("3")));
    assert_eq!(ok("not prod in tags"), not(m("tags", In, Some("prod"))));
    assert_eq!(
        ok("port != 80 and port != 8080 and port != 443"),
        Expr::And(vec![
            m("port", NotEqual, Some("80")),
            m("port", NotEqual, Some("8080")),
            m("port", NotEqual, Some("443")),
        ])
    );
}

#[test]
fn the_complex_case_of_go_bexpr_parses_to_its_tree() {
    use Op::*;
    let e = ok("(((foo == 3) and (not ((bar in baz) and (not (one != two))))) or (((next is empty) and (not (foo is not empty))) and (bar not in foo)))");
    assert_eq!(
        e,
        Expr::Or(vec![
            Expr::And(vec![
                m("foo", Equal, Some("3")),
                not(Expr::And(vec![
                    m("baz", In, Some("bar")),
                    not(m("one", NotEqual, Some("two"))),
                ])),
            ]),
            Expr::And(vec![
                Expr::And(vec![
                    m("next", IsEmpty, None),
                    not(m("foo", IsNotEmpty, None)),
                ]),
                m("foo", NotIn, Some("bar")),
            ]),
        ])
    );
}

#[test]
fn whitespace_of_any_kind_is_ignored_between_tokens() {
    use Op::*;
    let ws = "\t\r\n ";
    assert_eq!(
        ok(&format!("{ws} foo {ws} == {ws} x {ws}")),
        m("foo", Equal, Some("x"))
    );
    assert_eq!(
        ok(&format!("{ws} foo {ws} not {ws} in {ws} x {ws}")),
        m("x", NotIn, Some("foo"))
    );
    assert_eq!(
        ok(&format!("{ws} foo {ws} is {ws} not {ws} empty {ws}")),
        m("foo", IsNotEmpty, None)
    );
    assert_eq!(
        ok(&format!("{ws} ( {ws} foo {ws} == {ws} x {ws} ) {ws}")),
        m("foo", Equal, Some("x"))
    );
    assert_eq!(
        ok(&format!("{ws} not {ws} foo {ws} in {ws} x")),
        not(m("x", In, Some("foo")))
    );
}

#[test]
fn selectors_take_dots_indexes_numbers_and_json_pointers() {
    let sel = |e: Expr| match e {
        Expr::Match(m) => m.selector,
        e => panic!("{e:?}"),
    };
    let want: Vec<String> = ["foo", "bar", "meta", "tags", "ENV"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        sel(ok("`environment` in foo.bar[\"meta\"].tags[\t`ENV` ]")),
        want
    );
    assert_eq!(
        sel(ok(r#"environment in foo["bar"]["meta"]["tags"]["ENV"]"#)),
        want
    );
    assert_eq!(sel(ok("environment in foo.bar.meta.tags.ENV")), want);
    assert_eq!(
        sel(ok("environment in foo[\"abc-def ghi åß∂ƒ\"]")),
        vec!["foo".to_string(), "abc-def ghi åß∂ƒ".to_string()]
    );
    assert_eq!(
        sel(ok(r#""/hy-phen/under_score/pi|pe/do.t/ti~1lde" == 3"#)),
        ["hy-phen", "under_score", "pi|pe", "do.t", "ti/lde"].map(String::from)
    );
    assert_eq!(
        sel(ok("Checks.0.Status == passing")),
        ["Checks", "0", "Status"].map(String::from)
    );
}

#[test]
fn errors_say_where_and_why_as_go_bexpr_does() {
    let cases = [
        (
            "foo == \"12x",
            "1:12 (11): rule \"string\": Unterminated string literal",
        ),
        (
            "foo == `12x",
            "1:12 (11): rule \"string\": Unterminated string literal",
        ),
        (
            "foo == 3x",
            "1:9 (8): rule \"number\": Invalid number literal",
        ),
        ("foo[3] == abc", "1:5 (4): rule \"index\": Invalid index"),
        (
            "x in foo[\"abc\"",
            "1:15 (14): rule \"index\": Unclosed index expression",
        ),
        (
            "foo[\"abc\" == 3",
            "1:11 (10): rule \"index\": Unclosed index expression",
        ),
        ("x in 32", "1:6 (5): rule \"match\": Invalid selector"),
        (
            "(foo == 4",
            "1:10 (9): rule \"grouping\": Unmatched parentheses",
        ),
        (
            "32 == 32",
            r#"1:4 (3): no match found, expected: "in", "not" or [ \t\r\n]"#,
        ),
        (
            "32 is empty",
            r#"1:4 (3): no match found, expected: "in", "not" or [ \t\r\n]"#,
        ),
        (
            "x in foo abc",
            r#"1:10 (9): no match found, expected: "and", "or", [ \t\r\n] or EOF"#,
        ),
        (
            "x in foo and ",
            r#"1:14 (13): no match found, expected: "(", "-", "0", "\"", "`", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#,
        ),
        (
            "x in foo or ",
            r#"1:13 (12): no match found, expected: "(", "-", "0", "\"", "`", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#,
        ),
        (
            "x in foo or not ",
            r#"1:17 (16): no match found, expected: "!=", "(", "-", "0", "==", "\"", "`", "contains", "in", "is", "matches", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#,
        ),
        (
            r#""/hy-phen/under_score/pi|pe/do.t/ti~lde/" == 3"#,
            r#"1:43 (42): no match found, expected: "in", "not" or [ \t\r\n]"#,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(err(input), want, "{input:?}");
    }
}

#[test]
fn errors_count_lines_and_characters_not_bytes() {
    let start = r#""(", "-", "0", "\"", "`", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#;
    let cases = [
        (
            "Node == x and\n  åå == \"y",
            format!("2:3 (16): no match found, expected: {start}"),
        ),
        (
            "Node == x and\n  a == \"åå",
            "2:11 (26): rule \"string\": Unterminated string literal".into(),
        ),
        ("", format!("1:1 (0): no match found, expected: {start}")),
        // Consul's answer to an unquoted hyphenated name (its issue 6467).
        (
            "Node == host-name",
            r#"1:13 (12): no match found, expected: ".", "[", [ \t\r\n], [a-zA-Z0-9_] or EOF"#
                .into(),
        ),
        // Word operators need whitespace on both sides.
        (
            "a == 1 and(b == 2)",
            r"1:11 (10): no match found, expected: [ \t\r\n]".into(),
        ),
        (
            r#"a == "\q""#,
            "1:6 (5): rule \"string\": invalid syntax".into(),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(err(input), want, "{input:?}");
    }
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let deep = format!("{}a == 1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(err(&deep).contains("nested deeper"));
    let nots = format!("{}a == 1", "not ".repeat(5000));
    assert!(err(&nots).contains("nested deeper"));
    // Long flat chains are fine: they are lists, not recursion.
    let long = vec!["a == 1"; 20_000].join(" or ");
    assert!(matches!(ok(&long), Expr::Or(v) if v.len() == 20_000));
}

fn health_entry(node: &str, env: &str, tags: &[&str], statuses: &[&str]) -> serde_json::Value {
    json!({
        "Node": {"ID": "", "Node": node, "Address": "10.0.0.1", "Datacenter": "dc1",
                 "TaggedAddresses": {"lan": "10.0.0.1"}, "Meta": {"env": env},
                 "CreateIndex": 5, "ModifyIndex": 6},
        "Service": {"ID": "web-1", "Service": "web", "Tags": tags, "Address": "",
                    "TaggedAddresses": {"lan": {"Address": "10.0.0.1", "Port": 80}},
                    "Meta": {"version": "2"}, "Port": 8080,
                    "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": false,
                    "Kind": "", "CreateIndex": 7, "ModifyIndex": 7},
        "Checks": statuses.iter().enumerate().map(|(i, s)| json!({
            "Node": node, "CheckID": format!("c{i}"), "Name": "", "Status": s, "Notes": "",
            "Output": "", "ServiceID": "web-1", "ServiceName": "web", "ServiceTags": tags,
            "Type": "http", "Definition": {"HTTP": "http://x/health"},
            "CreateIndex": 1, "ModifyIndex": 1})).collect::<Vec<_>>(),
    })
}

fn keeps(schema: &Schema, expr: &str, v: &serde_json::Value) -> bool {
    match Filter::new(expr, schema) {
        Ok(f) => f.matches(v),
        Err(e) => panic!("{expr:?}: {e}"),
    }
}

#[test]
fn evaluation_follows_consuls_documented_examples() {
    let s = &schema::CHECK_SERVICE_NODE;
    let a = health_entry("n1", "prod", &["primary", "v1"], &["passing", "passing"]);
    let b = health_entry("n2", "qa", &["v2"], &["passing", "critical"]);
    let both = |e: &str| (keeps(s, e, &a), keeps(s, e, &b));
    assert_eq!(both("Node.Meta.env == prod"), (true, false));
    assert_eq!(both(r#"Node.Meta["env"] != "prod""#), (false, true));
    assert_eq!(both("primary in Service.Tags"), (true, false));
    assert_eq!(both("Service.Tags contains v2"), (false, true));
    assert_eq!(both("Service.Tags not contains v2"), (true, false));
    assert_eq!(both("Service.Tags is empty"), (false, false));
    // Through a list: any element will do.
    assert_eq!(both("Checks.Status == critical"), (false, true));
    assert_eq!(both("Checks.Status != passing"), (false, true));
    assert_eq!(both("\"critical\" in Checks.Status"), (false, true));
    assert_eq!(both("Checks.0.Status == passing"), (true, true));
    assert_eq!(both("Checks.1.Status == passing"), (true, false));
    assert_eq!(both("Checks.5.Status == passing"), (false, false));
    assert_eq!(both("Checks is not empty"), (true, true));
    // Numbers and booleans compare as the field's type.
    assert_eq!(both("Service.Port == 8080"), (true, true));
    assert_eq!(both("Service.Port == \"0x1f90\""), (true, true));
    assert!(
        Filter::new("Service.Port == 0x1f90", s).is_err(),
        "not a number literal"
    );
    assert_eq!(both("Service.Port != 80"), (true, true));
    assert_eq!(both("Service.EnableTagOverride == false"), (true, true));
    assert_eq!(both("Service.TaggedAddresses.lan.Port == 80"), (true, true));
    assert_eq!(both("Service.Weights.Passing == 1"), (true, true));
    // Regular expressions search, unanchored, as Go's do.
    assert_eq!(both("Node.Node matches \"^n[0-9]$\""), (true, true));
    assert_eq!(both("Node.Node matches 2"), (false, true));
    assert_eq!(both("Node.Node not matches `1$`"), (false, true));
    // `in` on a string is a substring test; on a map, a key test.
    assert_eq!(both("od in Node.Meta.env"), (true, false));
    assert_eq!(both("env in Node.Meta"), (true, true));
    assert_eq!(both("Node.Meta contains nope"), (false, false));
    // A missing key holds nothing.
    assert_eq!(both("Node.Meta.rack == a"), (false, false));
    assert_eq!(both("Node.Meta.rack != a"), (true, true));
    assert_eq!(both("Node.Meta.rack is empty"), (true, true));
    assert_eq!(both("Node.Meta.rack not matches x"), (true, true));
    // Free-form definitions take any selector.
    assert_eq!(both("Checks.Definition.HTTP contains health"), (true, true));
    assert_eq!(both("Checks.Definition.Nope == x"), (false, false));
    // Logic.
    assert_eq!(
        both("Node.Meta.env == prod or (v2 in Service.Tags and not Checks.Status == warning)"),
        (true, true)
    );
    assert_eq!(both("not (Node.Node == n1)"), (false, true));
}

#[test]
fn a_selector_the_element_lacks_is_refused_naming_it() {
    let s = &schema::CHECK_SERVICE_NODE;
    let e = |x: &str| Filter::new(x, s).unwrap_err().to_string();
    assert_eq!(e("Nodes.Meta.env == x"), "Selector \"Nodes\" is not valid");
    assert_eq!(
        e("Service.Nope == x"),
        "Selector \"Service.Nope\" is not valid"
    );
    assert_eq!(
        e("Service.Port.x == 1"),
        "Selector \"Service.Port.x\" is not valid"
    );
    assert_eq!(
        e("Service.Tags == x"),
        "Invalid match operator \"Equal\" for selector \"Service.Tags\""
    );
    assert_eq!(
        e("Service matches x"),
        "Invalid match operator \"Matches\" for selector \"Service\""
    );
    assert_eq!(
        e("Service.Port contains 1"),
        "Invalid match operator \"In\" for selector \"Service.Port\""
    );
    assert!(e("Service.Port == eighty")
        .starts_with("Failed to coerce value \"eighty\" for selector \"Service.Port\""));
    assert!(e("Service.EnableTagOverride == maybe").contains("not a boolean"));
    assert!(e("Node.Node matches \"(\"").starts_with("Failed to compile regular expression \"(\""));
    assert!(matches!(
        Filter::new("Node ==", s).unwrap_err(),
        FilterError::Syntax(_)
    ));
}

#[test]
fn every_endpoint_schema_takes_its_documented_selectors() {
    let cases: [(&Schema, &str); 7] = [
        (&schema::NODE, "Meta.env == prod and TaggedAddresses.wan is not empty and Datacenter == dc1"),
        (&schema::SERVICE_NODE, "ServiceName == web and ServiceTags contains v1 and NodeMeta.env == x and ServicePort == 80 and ServiceWeights.Passing == 1"),
        (&schema::NODE_SERVICE, "Service == web and Tags contains v1 and Meta.x == y and Port == 80"),
        (&schema::HEALTH_CHECK, "Status == passing and ServiceName == web and ServiceTags contains v1 and CheckID != x"),
        (&schema::CHECK_SERVICE_NODE, "Service.Service == web and Node.Node == n1 and Checks.CheckID == serfHealth"),
        (&schema::AGENT_SERVICE, "Service == web and Tags contains v1 and Datacenter == dc1 and Weights.Warning == 1"),
        (&schema::AGENT_MEMBER, "Tags.role == consul and Status == 1 and Name matches \"^s\" and Port == 8301"),
    ];
    for (s, expr) in cases {
        assert!(
            Filter::new(expr, s).is_ok(),
            "{expr}: {:?}",
            Filter::new(expr, s).err()
        );
    }
}

#[test]
fn retain_keeps_the_matching_rows_in_order() {
    use crate::structs::catalog::Node;
    let node = |n: &str, env: &str| Node {
        node: n.into(),
        meta: [("env".to_string(), env.to_string())].into(),
        ..Node::default()
    };
    let mut rows = vec![node("a", "prod"), node("b", "qa"), node("c", "prod")];
    Filter::new("Meta.env == prod", &schema::NODE)
        .unwrap()
        .retain(&mut rows);
    let names: Vec<_> = rows.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(names, ["a", "c"]);
}
