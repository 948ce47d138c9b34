//! Three servers and a client agent, real binaries, under
//! `default_policy = "deny"`: ACLs bootstrapped over HTTP, the client's
//! agent token set at run time through the client, a service registered on
//! the client (from its config file, and over HTTP with a service token)
//! reaching the catalog through anti-entropy with the agent token, the
//! client refusing what carries no token, the agent token persisted
//! across a restart, and, with every server stopped,
//! the client deciding from its cache (`down_policy = "extend-cache"`).

mod common;

use std::time::Duration;

use common::{three_servers_with, wait_for, TestAgent};
use serde_json::{json, Value};

fn call(
    a: &TestAgent,
    method: &str,
    path: &str,
    body: Value,
    token: Option<&str>,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = reqwest::blocking::Client::new()
        .request(method, a.url(path))
        .timeout(Duration::from_secs(10));
    if !body.is_null() {
        r = r.body(body.to_string());
    }
    if let Some(t) = token {
        r = r.header("X-Consul-Token", t);
    }
    match r.send() {
        Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

fn ok_json(a: &TestAgent, method: &str, path: &str, body: Value, token: &str) -> Value {
    let (status, text) = call(a, method, path, body, Some(token));
    assert_eq!(status, 200, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A token of one new policy `name` with `rules`, made with the
/// management token `root`: its secret.
fn policy_token(a: &TestAgent, name: &str, rules: &str, root: &str) -> String {
    let policy = json!({"Name": name, "Rules": rules});
    ok_json(a, "PUT", "/v1/acl/policy", policy, root);
    let token = json!({"Policies": [{"Name": name}]});
    let token = ok_json(a, "PUT", "/v1/acl/token", token, root);
    token["SecretID"].as_str().unwrap().to_string()
}

/// Nodes of `service` in the catalog, as management sees them.
fn catalog_nodes(a: &TestAgent, service: &str, root: &str) -> Vec<String> {
    let (status, text) = call(
        a,
        "GET",
        &format!("/v1/catalog/service/{service}"),
        Value::Null,
        Some(root),
    );
    if status != 200 {
        return Vec::new();
    }
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    v.as_array()
        .map(|l| {
            l.iter()
                .filter_map(|s| s["Node"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_client_under_default_deny_syncs_with_its_agent_token_and_keeps_deciding_without_servers() {
    let conf = tempfile::tempdir().unwrap();
    let server_hcl = conf.path().join("server.hcl");
    std::fs::write(
        &server_hcl,
        "acl {\n  enabled = true\n  default_policy = \"deny\"\n}\n",
    )
    .unwrap();
    let client_hcl = conf.path().join("client.hcl");
    std::fs::write(
        &client_hcl,
        r#"
acl {
  enabled = true
  default_policy = "deny"
  down_policy = "extend-cache"
  token_ttl = "1s"
  enable_token_persistence = true
}
service {
  name = "web"
  port = 8080
}
"#,
    )
    .unwrap();

    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let server_flags = ["-config-file", server_hcl.to_str().unwrap()];
    let mut servers = three_servers_with(&dirs[..3], &server_flags);

    // Bootstrap once the leader has set ACLs up.
    let mut root = String::new();
    wait_for("ACL bootstrap", 30, || {
        let (status, text) = call(&servers[0], "PUT", "/v1/acl/bootstrap", Value::Null, None);
        if status == 200 {
            let v: Value = serde_json::from_str(&text).unwrap();
            root = v["SecretID"].as_str().unwrap().to_string();
        }
        status == 200
    });

    let join = format!("127.0.0.1:{}", servers[0].serf_lan);
    let mut client = TestAgent::client_with(
        dirs[3].path(),
        &join,
        &["-config-file", client_hcl.to_str().unwrap()],
    );
    let node = client.node.clone();

    // The client's agent token: node:write on its node, service:write.
    let rules = format!(
        "node \"{node}\" {{ policy = \"write\" }}\nservice_prefix \"\" {{ policy = \"write\" }}"
    );
    let s = &servers[0];
    let agent_secret = policy_token(s, "client-agent", &rules, &root);
    let api_secret = policy_token(s, "api", "service \"api\" { policy = \"write\" }", &root);

    // Without a token the client refuses; the agent token is set through
    // the client (its management check is resolved by a server).
    let reg = "/v1/agent/service/register";
    let (status, text) = call(&client, "PUT", reg, json!({"Name": "api"}), None);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("'service:write' on \"api\""), "{text}");
    let set = json!({"Token": agent_secret});
    let (status, text) = call(
        &client,
        "PUT",
        "/v1/agent/token/agent",
        set.clone(),
        Some(&api_secret),
    );
    assert_eq!(status, 403, "{text}");
    // Consul's CLI way: `acl set-agent-token` against the client.
    let out = client.cli(&[
        "acl",
        "set-agent-token",
        "-token",
        &root,
        "agent",
        &agent_secret,
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));

    // The config file's service, then one registered over HTTP with a
    // service token, reach the catalog through anti-entropy.
    wait_for(
        "web from the client's config file in the catalog",
        30,
        || catalog_nodes(s, "web", &root).contains(&node),
    );
    let (status, text) = call(
        &client,
        "PUT",
        reg,
        json!({"Name": "api"}),
        Some(&api_secret),
    );
    assert_eq!(status, 200, "{text}");
    wait_for("api in the catalog", 30, || {
        catalog_nodes(s, "api", &root).contains(&node)
    });

    // The agent token set through the API was persisted: after a restart
    // the client's anti-entropy still writes with it.
    let persisted = std::fs::read_to_string(dirs[3].path().join("acl-tokens.json")).unwrap();
    assert!(persisted.contains(&agent_secret), "{persisted}");
    client.restart();
    let (status, text) = call(
        &client,
        "PUT",
        reg,
        json!({"Name": "api", "Port": 81}),
        Some(&api_secret),
    );
    assert_eq!(status, 200, "{text}");
    wait_for("api's new port in the catalog", 30, || {
        let (_, text) = call(
            s,
            "GET",
            "/v1/catalog/service/api",
            Value::Null,
            Some(&root),
        );
        serde_json::from_str::<Value>(&text).is_ok_and(|v| v[0]["ServicePort"] == 81)
    });

    // A token the client resolved, and one it never saw.
    let (status, _) = call(
        &client,
        "GET",
        "/v1/agent/service/api",
        Value::Null,
        Some(&api_secret),
    );
    assert_eq!(status, 200);
    let late_secret = policy_token(s, "late", "service \"api\" { policy = \"write\" }", &root);

    // Every server stops; the cache entries pass their TTL.
    for server in &mut servers {
        server.kill();
    }
    std::thread::sleep(Duration::from_secs(2));
    let (status, text) = call(
        &client,
        "GET",
        "/v1/agent/service/api",
        Value::Null,
        Some(&api_secret),
    );
    assert_eq!(
        status, 200,
        "extend-cache keeps a cached token working: {text}"
    );
    let (status, text) = call(
        &client,
        "PUT",
        reg,
        json!({"Name": "api", "Port": 81}),
        Some(&api_secret),
    );
    assert_eq!(status, 200, "{text}");
    let (status, text) = call(
        &client,
        "GET",
        "/v1/agent/service/api",
        Value::Null,
        Some(&late_secret),
    );
    assert_eq!(status, 403, "a token never cached is denied: {text}");
    assert!(text.contains("acl.down_policy extend-cache"), "{text}");
    let (status, _) = call(&client, "PUT", reg, json!({"Name": "api"}), None);
    assert_eq!(status, 403);
}
