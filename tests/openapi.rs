//! The OpenAPI description an agent serves at `/v1/openapi.json`, held to
//! the route table the app registers (`meridian::route_table::table()`):
//! every route (method and path) is documented, every documented
//! operation is a route, and the description is whole (every path
//! parameter declared, every `$ref` resolved, each operation's answers
//! listed). A route added without its description, or a description left
//! behind by a removed route, fails here by name.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

use common::TestAgent;

/// actix's pattern as an OpenAPI path: `{key:.*}` and `{name:.+}` are one
/// parameter each (their values may hold `/`, which the description says).
fn openapi_path(actix: &str) -> String {
    let mut out = String::new();
    let mut rest = actix;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed placeholder") + start;
        let inner = &rest[start + 1..end];
        out.push('{');
        out.push_str(inner.split(':').next().unwrap());
        out.push('}');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Every (METHOD, path) the description documents.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("unresolved $ref {r}")),
        None => v,
    }
}

fn served_description() -> (TestAgent, Value) {
    let agent = TestAgent::dev(&[]);
    let doc = agent.get_json("/v1/openapi.json");
    (agent, doc)
}

#[test]
fn every_route_is_documented_and_every_documented_operation_is_a_route() {
    let (_agent, doc) = served_description();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    let routes: BTreeSet<(String, String)> = meridian::route_table::table()
        .iter()
        .map(|r| (r.method.as_str().to_string(), openapi_path(r.path)))
        .collect();
    let ops = documented(&doc);
    let undocumented: Vec<_> = routes.difference(&ops).collect();
    let not_routes: Vec<_> = ops.difference(&routes).collect();
    assert!(
        undocumented.is_empty() && not_routes.is_empty(),
        "routes missing from src/http/openapi.json: {undocumented:?}; \
         documented operations that are no route: {not_routes:?}"
    );
    assert_eq!(ops.len(), routes.len());
    eprintln!("{} operations documented, one per route", ops.len());
}

#[test]
fn the_description_is_whole() {
    let (_agent, doc) = served_description();
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let placeholders: BTreeSet<&str> = path
            .split('{')
            .skip(1)
            .map(|s| s.split('}').next().unwrap())
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let params: Vec<&Value> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().map(|p| resolve(&doc, p)).collect())
                .unwrap_or_default();
            let in_path: BTreeSet<&str> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            if in_path != placeholders {
                problems.push(format!(
                    "{method} {path}: path parameters {in_path:?}, placeholders {placeholders:?}"
                ));
            }
            let responses = op["responses"].as_object().unwrap();
            for code in ["200", "405"] {
                if !responses.contains_key(code) {
                    problems.push(format!("{method} {path}: no {code} answer"));
                }
            }
            if op["summary"].as_str().unwrap_or("").is_empty() {
                problems.push(format!("{method} {path}: no summary"));
            }
        }
    }
    // Every `$ref` anywhere names something the document has.
    let mut stack = vec![&doc];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    if doc.pointer(r.trim_start_matches('#')).is_none() {
                        problems.push(format!("unresolved $ref {r}"));
                    }
                }
                stack.extend(m.values());
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_path_mapping_keeps_one_parameter_per_placeholder() {
    assert_eq!(openapi_path("/v1/kv/{key:.*}"), "/v1/kv/{key}");
    assert_eq!(
        openapi_path("/v1/acl/policy/name/{name:.+}"),
        "/v1/acl/policy/name/{name}"
    );
    assert_eq!(
        openapi_path("/v1/acl/token/{id}/clone"),
        "/v1/acl/token/{id}/clone"
    );
}

/// `method path` with `body`: the status and text.
fn send(agent: &TestAgent, method: &str, path: &str, body: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .request(method.parse().unwrap(), agent.url(path))
        .body(body.to_string())
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// Bad input that schemathesis drew answers 400 with the state store's
/// text, not 500 (Consul answers these 500 with the same text).
#[test]
fn writes_the_state_store_refuses_are_bad_requests() {
    let agent = TestAgent::dev(&[]);
    let cases = [
        (
            "PUT",
            "/v1/catalog/register",
            r#"{"Node": "n1", "Address": "127.0.0.2", "Checks": [{"Name": "c", "ServiceID": "nope"}]}"#,
            "Unknown service ID 'nope'",
        ),
        (
            "PUT",
            "/v1/kv/locked?acquire=00000000-0000-0000-0000-000000000000",
            "v",
            "invalid session",
        ),
        (
            "PUT",
            "/v1/kv/locked?acquire=not-a-uuid",
            "v",
            "invalid session",
        ),
        (
            "PUT",
            "/v1/session/create",
            r#"{"NodeChecks": ["no-such-check"]}"#,
            "Missing check 'no-such-check' registration",
        ),
    ];
    for (method, path, body, text) in cases {
        let (status, answer) = send(&agent, method, path, body);
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert!(answer.contains(text), "{method} {path}: {answer}");
    }
    // Nothing was half-written by the refused registration.
    assert_eq!(
        agent.get_json("/v1/catalog/node/n1"),
        serde_json::Value::Null
    );
}

#[test]
fn token_lists_with_two_filters_are_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("acl.hcl");
    std::fs::write(
        &conf,
        "acl {\n  enabled = true\n  default_policy = \"allow\"\n}\n",
    )
    .unwrap();
    let agent = TestAgent::dev(&["-config-file", conf.to_str().unwrap()]);
    let (status, answer) = send(&agent, "GET", "/v1/acl/tokens?policy=a&role=b", "");
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("can only filter by one of"), "{answer}");
}

/// A check registered with a tiny interval (schemathesis draws `1ns`
/// freely) runs at most once a second, Consul's `checks.MinInterval`,
/// instead of probing in a busy loop.
#[test]
fn a_check_interval_below_a_second_is_raised_to_one() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counter = {
        let (accepted, stop) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok(_) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
                }
            }
        })
    };
    let agent = TestAgent::dev(&[]);
    let body = format!(r#"{{"Name": "fast", "TCP": "127.0.0.1:{port}", "Interval": "1ms"}}"#);
    let (status, answer) = send(&agent, "PUT", "/v1/agent/check/register", &body);
    assert_eq!(status, 200, "{answer}");
    let shown = agent.get_json("/v1/agent/checks");
    assert_eq!(shown["fast"]["Definition"]["Interval"], "1s", "{shown}");
    let start = std::time::Instant::now();
    let before = accepted.load(Ordering::Relaxed);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let probes = accepted.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    counter.join().unwrap();
    eprintln!("{probes} probes in {:?}", start.elapsed());
    // Once a second is 3 or 4 probes in 3 s; a 1 ms interval would be
    // hundreds or more.
    assert!((1..=5).contains(&probes), "{probes} probes in 3 s");
}
