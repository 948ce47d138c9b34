//! Prepared queries over HTTP against the built binary: create, list,
//! read, update, delete with Consul's validation texts; execution with
//! health, tag and limit filtering; templates through `/explain`; a query
//! bound to a session goes with it; and queries survive a restart.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn call(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, String) {
    let mut r = reqwest::blocking::Client::new()
        .request(method, url)
        .timeout(Duration::from_secs(30));
    if let Some(b) = body {
        r = r.body(b.to_string());
    }
    let r = r.send().expect("an answer");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

fn post(a: &TestAgent, path: &str, body: Value) -> (u16, String) {
    call(reqwest::Method::POST, &a.url(path), Some(body))
}

fn put(a: &TestAgent, path: &str, body: Value) -> (u16, String) {
    call(reqwest::Method::PUT, &a.url(path), Some(body))
}

fn get(a: &TestAgent, path: &str) -> (u16, String) {
    call(reqwest::Method::GET, &a.url(path), None)
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn register(a: &TestAgent, node: &str, addr: &str, tags: &[&str], status: &str) {
    let body = json!({
        "Node": node, "Address": addr,
        "Service": {"ID": "web", "Service": "web", "Tags": tags, "Port": 80},
        "Check": {"CheckID": "web-alive", "Name": "alive", "ServiceID": "web", "Status": status},
    });
    assert_eq!(put(a, "/v1/catalog/register", body).0, 200);
}

fn nodes_of(exec: &Value) -> Vec<String> {
    let mut v: Vec<String> = exec["Nodes"]
        .as_array()
        .expect("Nodes")
        .iter()
        .map(|n| n["Node"]["Node"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn create_read_update_execute_explain_delete() {
    let a = TestAgent::dev(&[]);
    register(&a, "n1", "10.0.0.1", &["primary"], "passing");
    register(&a, "n2", "10.0.0.2", &[], "warning");
    register(&a, "n3", "10.0.0.3", &[], "critical");

    // Consul's texts for bad definitions, before anything is written.
    let (code, body) = post(&a, "/v1/query", json!({"Name": "x"}));
    assert_eq!(
        (code, body.as_str()),
        (400, "Must provide a Service name to query")
    );
    let (code, body) = post(
        &a,
        "/v1/query",
        json!({"Service": {"Service": "web", "Failover": {"NearestN": -1}}}),
    );
    assert_eq!(
        (code, body.as_str()),
        (400, "Bad NearestN '-1', must be >= 0")
    );
    let (code, body) = post(
        &a,
        "/v1/query",
        json!({"Service": {"Service": "web"}, "DNS": {"TTL": "soon"}}),
    );
    assert_eq!(code, 400);
    assert!(body.starts_with("Bad DNS TTL 'soon'"), "{body}");

    // Field names in any case, as Consul's decoder takes them.
    let (code, body) = post(
        &a,
        "/v1/query",
        json!({"name": "webq", "service": {"service": "web"}, "dns": {"ttl": "10s"}}),
    );
    assert_eq!(code, 200, "{body}");
    let id = json_of(&body)["ID"].as_str().expect("ID").to_string();
    let (code, body) = post(
        &a,
        "/v1/query",
        json!({"Name": "webq", "Service": {"Service": "web"}}),
    );
    assert_eq!(
        (code, body.as_str()),
        (400, "name 'webq' aliases an existing query name")
    );

    let list = json_of(&get(&a, "/v1/query").1);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let (code, body) = get(&a, &format!("/v1/query/{id}"));
    assert_eq!(code, 200);
    let one = json_of(&body);
    assert_eq!(one[0]["ID"], id.as_str());
    assert_eq!(one[0]["Name"], "webq");
    assert_eq!(one[0]["DNS"]["TTL"], "10s");
    let (code, body) = get(&a, "/v1/query/00000000-0000-4000-8000-000000000000");
    assert_eq!((code, body.as_str()), (404, "Query not found"));

    // Critical instances left out, warning ones kept.
    let exec = json_of(&get(&a, "/v1/query/webq/execute").1);
    assert_eq!(nodes_of(&exec), vec!["n1", "n2"]);
    assert_eq!(exec["Service"], "web");
    assert_eq!(exec["Datacenter"], "dc1");
    assert_eq!(exec["Failovers"], 0);
    assert_eq!(exec["DNS"]["TTL"], "10s");
    let by_id = json_of(&get(&a, &format!("/v1/query/{id}/execute?limit=1&near=n2")).1);
    assert_eq!(nodes_of(&by_id), vec!["n2"]);
    assert_eq!(get(&a, "/v1/query/webq/execute?limit=many").0, 400);
    let (code, body) = get(&a, "/v1/query/nothing/execute");
    assert_eq!((code, body.as_str()), (404, "Query not found"));

    // Update: tags with `!`, only passing.
    let upd = json!({"Name": "webq", "Service": {"Service": "web", "Tags": ["!primary"]}});
    assert_eq!(put(&a, &format!("/v1/query/{id}"), upd).0, 200);
    let exec = json_of(&get(&a, "/v1/query/webq/execute").1);
    assert_eq!(nodes_of(&exec), vec!["n2"]);
    let upd = json!({"Name": "webq", "Service": {"Service": "web", "OnlyPassing": true}});
    assert_eq!(put(&a, &format!("/v1/query/{id}"), upd).0, 200);
    assert_eq!(
        nodes_of(&json_of(&get(&a, "/v1/query/webq/execute").1)),
        vec!["n1"]
    );
    let missing = json!({"Service": {"Service": "web"}});
    let (code, body) = put(
        &a,
        "/v1/query/00000000-0000-4000-8000-000000000000",
        missing,
    );
    assert_eq!(code, 400);
    assert!(
        body.starts_with("Cannot modify non-existent prepared query"),
        "{body}"
    );

    // A template: the longest prefix wins, `${match(1)}` from its regexp.
    let tmpl = json!({
        "Name": "geo-",
        "Template": {"Type": "name_prefix_match", "Regexp": "^geo-(.*)$"},
        "Service": {"Service": "${match(1)}", "Tags": ["${name.suffix}"]},
    });
    assert_eq!(post(&a, "/v1/query", tmpl).0, 200);
    let explained = json_of(&get(&a, "/v1/query/geo-web/explain").1);
    assert_eq!(explained["Query"]["Service"]["Service"], "web");
    assert_eq!(explained["Query"]["Service"]["Tags"], json!(["web"]));
    assert_eq!(explained["Query"]["Name"], "geo-");
    let bad = json!({"Name": "t", "Template": {"Type": "other"}, "Service": {"Service": "x"}});
    let (code, body) = post(&a, "/v1/query", bad);
    assert_eq!((code, body.as_str()), (400, "Bad Template.Type 'other'"));

    assert_eq!(
        call(
            reqwest::Method::DELETE,
            &a.url(&format!("/v1/query/{id}")),
            None
        )
        .0,
        200
    );
    assert_eq!(get(&a, &format!("/v1/query/{id}")).0, 404);
}

#[test]
fn a_query_bound_to_a_session_goes_with_it() {
    let a = TestAgent::dev(&[]);
    let (code, body) = put(&a, "/v1/session/create", json!({}));
    assert_eq!(code, 200, "{body}");
    let session = json_of(&body)["ID"].as_str().expect("ID").to_string();
    let q = json!({"Name": "bound", "Session": "nope", "Service": {"Service": "web"}});
    let (code, body) = post(&a, "/v1/query", q);
    assert_eq!((code, body.as_str()), (400, "invalid session \"nope\""));
    let q = json!({"Name": "bound", "Session": session, "Service": {"Service": "web"}});
    let (code, body) = post(&a, "/v1/query", q);
    assert_eq!(code, 200, "{body}");
    let id = json_of(&body)["ID"].as_str().expect("ID").to_string();
    assert_eq!(get(&a, &format!("/v1/query/{id}")).0, 200);
    assert_eq!(
        put(&a, &format!("/v1/session/destroy/{session}"), json!({})).0,
        200
    );
    assert_eq!(get(&a, &format!("/v1/query/{id}")).0, 404);
}

#[test]
fn queries_survive_a_restart() {
    let dir = tempfile::tempdir().expect("a directory");
    let mut a = TestAgent::server(dir.path());
    let q = json!({"Name": "kept", "Service": {"Service": "web", "Failover": {"NearestN": 2}}});
    let (code, body) = post(&a, "/v1/query", q);
    assert_eq!(code, 200, "{body}");
    let id = json_of(&body)["ID"].as_str().expect("ID").to_string();
    a.restart();
    let back = json_of(&get(&a, &format!("/v1/query/{id}")).1);
    assert_eq!(back[0]["Name"], "kept");
    assert_eq!(back[0]["Service"]["Failover"]["NearestN"], 2);
}
