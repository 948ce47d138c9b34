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

/// A full anti-entropy pass is a copy of the local state written out
/// while the agent goes on: what changes meanwhile must not be undone by
/// it. The pass at start is held (failpoint `anti_entropy_pass`) while a
/// service is registered and a TTL check of a config-file service turns
/// passing; once the pass resumes, the catalog still has both (before,
/// the pass removed the service it had not seen, and wrote the check's
/// old status over the new).
#[test]
fn a_full_sync_pass_does_not_undo_changes_made_while_it_ran() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("web.json");
    std::fs::write(
        &conf,
        r#"{"service": {"name": "web", "port": 80, "check": {"id": "web-ttl", "ttl": "10m"}}}"#,
    )
    .expect("config file");
    let started = std::time::Instant::now();
    let a = TestAgent::server_with_env(
        &dir.path().join("data"),
        &["-config-file", conf.to_str().expect("utf-8 path")],
        &[("MERIDIAN_FAILPOINTS", "anti_entropy_pass=delay:8000@once")],
    );
    wait_for("the held pass", 10, || {
        a.log_text().contains("failpoint fired")
    });
    wait_for("a leader", 10, || !common::leader(&a).is_empty());
    assert_eq!(
        put(
            &a,
            "/v1/agent/service/register",
            json!({"Name": "api", "Port": 81})
        )
        .0,
        200
    );
    assert_eq!(put(&a, "/v1/agent/check/pass/web-ttl", json!(null)).0, 200);
    let changed = started.elapsed();
    // Past the held pass, and the writes it held.
    std::thread::sleep(std::time::Duration::from_secs(10).saturating_sub(changed));
    let api = a.get_json("/v1/catalog/service/api");
    assert_eq!(api.as_array().map(Vec::len), Some(1), "{api}");
    let web = a.get_json("/v1/health/service/web?passing");
    assert_eq!(web.as_array().map(Vec::len), Some(1), "{web}");
    assert!(
        changed < std::time::Duration::from_secs(7),
        "the changes came {changed:?} after start, not while the pass was held"
    );
}
