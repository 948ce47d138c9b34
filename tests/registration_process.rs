//! Services and checks registered through the API (and `meridian
//! services register`) are the agent's own across restarts, as Consul
//! keeps them under `<data-dir>/services` and `<data-dir>/checks`: tagged
//! addresses, meta, weights and the token come back; a deregistered one
//! does not.

mod common;

use common::{stdout, wait_for, TestAgent};
use serde_json::{json, Value};

fn put(a: &TestAgent, path: &str, body: Value) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .put(a.url(path))
        .json(&body)
        .send()
        .expect("PUT");
    let status = r.status().as_u16();
    (status, r.text().unwrap_or_default())
}

#[test]
fn api_registrations_survive_an_agent_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut a = TestAgent::server(dir.path());
    let web = json!({
        "ID": "web-1", "Name": "web", "Port": 8080, "Address": "10.0.0.5",
        "Tags": ["v1"], "Meta": {"team": "edge"},
        "Weights": {"Passing": 7, "Warning": 3},
        "TaggedAddresses": {
            "lan": {"Address": "10.0.0.5", "Port": 8080},
            "wan_ipv4": {"Address": "198.51.100.5", "Port": 80}
        },
        "Check": {"CheckID": "web-ttl", "TTL": "30s"}
    });
    assert_eq!(put(&a, "/v1/agent/service/register", web).0, 200);
    let (status, body) = put(
        &a,
        "/v1/agent/check/register",
        json!({"Name": "web-tcp", "ServiceID": "web-1", "TCP": "127.0.0.1:1", "Interval": 10_000_000_000u64}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        put(&a, "/v1/agent/service/register", json!({"Name": "gone"})).0,
        200
    );
    assert_eq!(
        put(&a, "/v1/agent/service/deregister/gone", json!(null)).0,
        200
    );
    let out = a.cli(&[
        "services", "register", "-name", "cli-svc", "-port", "9000", "-tag", "t1", "-meta", "k=v",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(stdout(&out).contains("Registered service: cli-svc"));

    a.restart();
    let services = a.get_json("/v1/agent/services");
    let s = &services["web-1"];
    assert_eq!(
        s["TaggedAddresses"]["wan_ipv4"],
        json!({"Address": "198.51.100.5", "Port": 80})
    );
    assert_eq!(
        s["TaggedAddresses"]["lan"],
        json!({"Address": "10.0.0.5", "Port": 8080})
    );
    assert_eq!(s["Meta"], json!({"team": "edge"}));
    assert_eq!(s["Weights"], json!({"Passing": 7, "Warning": 3}));
    assert_eq!(s["Tags"], json!(["v1"]));
    assert_eq!(services["cli-svc"]["Meta"], json!({"k": "v"}));
    assert!(services.get("gone").is_none(), "{services}");
    let checks = a.get_json("/v1/agent/checks");
    assert_eq!(checks["web-ttl"]["ServiceID"], "web-1");
    assert_eq!(checks["web-tcp"]["Interval"], "10s");
    // And the catalog keeps them after the agent's first full sync.
    wait_for("the service in the catalog", 20, || {
        a.get_json("/v1/catalog/service/web")
            .as_array()
            .is_some_and(|l| l.len() == 1 && l[0]["ServiceWeights"]["Passing"] == 7)
    });

    let out = a.cli(&["services", "deregister", "-id", "cli-svc"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    a.restart();
    let services = a.get_json("/v1/agent/services");
    assert!(services.get("cli-svc").is_none() && services.get("web-1").is_some());
}
