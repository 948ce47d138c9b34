//! Per-service ACL tokens in anti-entropy, with the real binary under
//! `default_policy = "deny"`: a service from a config file syncs with
//! `acl.tokens.config_file_service_registration`, one registered over
//! HTTP with the token it came with (service:write alone, no node:write),
//! through a full anti-entropy pass too, while the agent token (node:write
//! only) keeps the node row; a service whose token is deleted stops
//! syncing, says so in the log, and holds back no other.

mod common;

use std::time::Duration;

use common::{wait_for, TestAgent};
use serde_json::{json, Value};

const ROOT: &str = "6b3a1f5e-2d4c-4e8a-9f10-0a1b2c3d4e01";
const AGENT: &str = "6b3a1f5e-2d4c-4e8a-9f10-0a1b2c3d4e02";
const FILE: &str = "6b3a1f5e-2d4c-4e8a-9f10-0a1b2c3d4e03";

fn call(a: &TestAgent, method: &str, path: &str, body: Value, token: &str) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = reqwest::blocking::Client::new()
        .request(method, a.url(path))
        .header("X-Consul-Token", token)
        .timeout(Duration::from_secs(10));
    if !body.is_null() {
        r = r.body(body.to_string());
    }
    match r.send() {
        Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

fn ok_json(a: &TestAgent, method: &str, path: &str, body: Value, token: &str) -> Value {
    let (status, text) = call(a, method, path, body, token);
    assert_eq!(status, 200, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A policy of `rules` and a token of it (with `secret` when given): the
/// token as the API returns it.
fn token(a: &TestAgent, name: &str, rules: &str, secret: Option<&str>) -> Value {
    let p = json!({"Name": name, "Rules": rules});
    ok_json(a, "PUT", "/v1/acl/policy", p, ROOT);
    let mut t = json!({"Policies": [{"Name": name}]});
    if let Some(s) = secret {
        t["SecretID"] = json!(s);
    }
    ok_json(a, "PUT", "/v1/acl/token", t, ROOT)
}

/// Whether `service` is in the catalog, as management sees it.
fn in_catalog(a: &TestAgent, service: &str) -> bool {
    let path = format!("/v1/catalog/service/{service}");
    let (status, text) = call(a, "GET", &path, Value::Null, ROOT);
    status == 200
        && serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.as_array().map(|l| !l.is_empty()))
            .unwrap_or(false)
}

/// The catalog's status of check `id`, as management sees it.
fn catalog_status(a: &TestAgent, service: &str, id: &str) -> String {
    let v = ok_json(
        a,
        "GET",
        &format!("/v1/health/checks/{service}"),
        Value::Null,
        ROOT,
    );
    v.as_array()
        .and_then(|l| l.iter().find(|c| c["CheckID"] == id))
        .and_then(|c| c["Status"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn services_sync_with_their_own_tokens_under_default_deny() {
    let conf = tempfile::tempdir().unwrap();
    let hcl = conf.path().join("acl.hcl");
    std::fs::write(
        &hcl,
        format!(
            r#"
acl {{
  enabled = true
  default_policy = "deny"
  tokens {{
    initial_management = "{ROOT}"
    agent = "{AGENT}"
    config_file_service_registration = "{FILE}"
  }}
}}
service {{
  name = "filesvc"
  port = 7000
}}
"#
        ),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let agent = TestAgent::acl_server_with(data.path(), &["-config-file", hcl.to_str().unwrap()]);
    wait_for("the management token", 30, || {
        call(&agent, "GET", "/v1/acl/token/self", Value::Null, ROOT).0 == 200
    });
    let node = agent.node.clone();

    // The agent token may write its node and nothing else; each service
    // token its service and nothing else (no node:write).
    let node_rules = format!("node \"{node}\" {{ policy = \"write\" }}");
    token(&agent, "agent", &node_rules, Some(AGENT));
    let service_rules = |s: &str| format!("service \"{s}\" {{ policy = \"write\" }}");
    token(&agent, "filesvc", &service_rules("filesvc"), Some(FILE));
    let api = token(&agent, "api", &service_rules("api"), None);
    let api_secret = api["SecretID"].as_str().unwrap().to_string();
    let doomed = token(&agent, "doomed", &service_rules("doomed"), None);
    let doomed_secret = doomed["SecretID"].as_str().unwrap().to_string();
    let doomed_accessor = doomed["AccessorID"].as_str().unwrap().to_string();

    // From the config file, with config_file_service_registration (the
    // agent token could not write it).
    wait_for("filesvc in the catalog", 30, || {
        in_catalog(&agent, "filesvc")
    });

    // Over HTTP, each with the token of its request.
    let register = |body: Value, token: &str| {
        let (status, text) = call(&agent, "PUT", "/v1/agent/service/register", body, token);
        assert_eq!(status, 200, "{text}");
    };
    register(json!({"Name": "api", "Port": 7001}), &api_secret);
    register(
        json!({"Name": "doomed", "Port": 7002, "Check": {"TTL": "60s"}}),
        &doomed_secret,
    );
    assert!(in_catalog(&agent, "api") && in_catalog(&agent, "doomed"));
    assert_eq!(
        catalog_status(&agent, "doomed", "service:doomed"),
        "critical"
    );

    // Drift: api is gone from the catalog, doomed's token is deleted.
    let gone = json!({"Node": node, "ServiceID": "api"});
    ok_json(&agent, "PUT", "/v1/catalog/deregister", gone, ROOT);
    assert!(!in_catalog(&agent, "api"));
    let path = format!("/v1/acl/token/{doomed_accessor}");
    ok_json(&agent, "DELETE", &path, Value::Null, ROOT);

    // doomed's check passes here, but its write is refused: logged, and
    // the catalog keeps the old status.
    let pass = "/v1/agent/check/pass/service:doomed";
    let (status, text) = call(&agent, "PUT", pass, Value::Null, ROOT);
    assert_eq!(status, 200, "{text}");
    wait_for("the blocked sync in the log", 15, || {
        agent.log_text().lines().any(|l| {
            l.contains("catalog sync blocked by ACLs")
                && l.contains("doomed")
                && l.contains("ACL not found")
        })
    });

    // A full anti-entropy pass (a reload runs one) puts api back with
    // its own token, though doomed's write is still refused.
    let (status, text) = call(&agent, "PUT", "/v1/agent/reload", Value::Null, ROOT);
    assert_eq!(status, 200, "{text}");
    wait_for("api back in the catalog", 20, || in_catalog(&agent, "api"));
    assert!(in_catalog(&agent, "filesvc"));
    assert_eq!(
        catalog_status(&agent, "doomed", "service:doomed"),
        "critical"
    );
    let local = ok_json(&agent, "GET", "/v1/agent/checks", Value::Null, ROOT);
    assert_eq!(local["service:doomed"]["Status"], "passing");
    // Said once, not at every retry.
    let said = agent
        .log_text()
        .lines()
        .filter(|l| l.contains("catalog sync blocked by ACLs") && l.contains("doomed"))
        .count();
    assert_eq!(said, 1, "{}", agent.log_text());
}
