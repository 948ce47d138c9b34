//! The agent's own endpoints under ACLs, in process: Consul's permissions
//! for `/v1/agent/*` on a server, the agent's tokens set at run time, the
//! agent recovery token, and a client agent that resolves tokens through
//! its server and applies its `down_policy` when none answers.

mod common;

use std::path::Path;
use std::time::Duration;

use meridian::agent::AgentHandle;
use meridian::config::{AclConfig, AclDownPolicy, RuntimeConfig};
use serde_json::{json, Value};

use common::acl_http::{deny_config, Api};

/// A dev server under `acl` with server RPC on an ephemeral port (its
/// clients ask it over RPC), once its management token works.
async fn server(acl: AclConfig, root: &str, data_dir: &Path) -> (AgentHandle, Api) {
    let mut cfg = common::inproc::dev_config(acl, data_dir);
    cfg.ports.server = Some(0);
    let (h, base) = common::inproc::start_dev(cfg).await;
    let api = Api::new(base);
    api.until_token(root).await;
    (h, api)
}

/// A client agent (no store, no gossip) whose one server is `rpc`.
async fn client(name: &str, acl: AclConfig, rpc: &str) -> (AgentHandle, Api) {
    let cfg = RuntimeConfig {
        server: false,
        acl,
        ..common::inproc::loopback_config(name)
    };
    let h = meridian::agent::start(cfg, None)
        .await
        .expect("client starts");
    h.router.set_server("server", Some(rpc.to_string()));
    let api = Api::new(format!("http://{}", h.http_addrs[0]));
    (h, api)
}

/// A token of `rules`, made with the management token: its secret.
async fn token(api: &Api, root: &str, name: &str, rules: &str) -> String {
    let p = json!({"Name": name, "Rules": rules});
    api.put("/v1/acl/policy", p, Some(root)).await.json();
    let t = json!({"Policies": [{"Name": name}]});
    let t = api.put("/v1/acl/token", t, Some(root)).await.json();
    t["SecretID"].as_str().unwrap().to_string()
}

fn service(name: &str) -> Value {
    json!({"ID": name, "Name": name, "Check": {"CheckID": format!("{name}-ttl"), "TTL": "10m"}})
}

#[actix_rt::test]
async fn agent_endpoints_follow_consuls_permissions_and_tokens_change_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    let root = uuid::Uuid::new_v4().to_string();
    let mut acl = deny_config(&root);
    acl.enable_token_persistence = true;
    acl.tokens.agent_recovery = "recover-me".into();
    let (_h, api) = server(acl, &root, dir.path()).await;
    let b = &api;

    let web = token(
        b,
        &root,
        "web",
        "service \"web\" { policy = \"write\" }\nnode_prefix \"\" { policy = \"read\" }",
    )
    .await;
    let agent_reader = token(
        b,
        &root,
        "self",
        "agent \"test-node\" { policy = \"read\" }",
    )
    .await;

    // Registering needs service:write on the service.
    let reg = "/v1/agent/service/register";
    b.put(reg, service("web"), Some(&web)).await.json_ok();
    let db = b.put(reg, service("db"), Some(&web)).await;
    db.denied("'service:write' on \"db\", denied by default_policy \"deny\"");
    b.put(reg, service("db"), Some(&root)).await.json_ok();

    // Lists are filtered to what the token may read, and say so.
    let services = b.get("/v1/agent/services", Some(&web)).await;
    assert!(services.filtered);
    let ids: Vec<String> = services
        .json()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(ids, ["web"]);
    let checks = b.get("/v1/agent/checks", Some(&web)).await;
    assert!(checks.filtered);
    let ids: Vec<String> = checks.json().as_object().unwrap().keys().cloned().collect();
    assert_eq!(ids, ["web-ttl"]);
    let all = b.get("/v1/agent/services", Some(&root)).await;
    assert!(!all.filtered);
    assert_eq!(all.json().as_object().unwrap().len(), 2);

    // One service: service:read; its checks: service:write of its service.
    b.get("/v1/agent/service/db", Some(&web))
        .await
        .denied("'service:read' on \"db\"");
    b.put("/v1/agent/check/pass/db-ttl", (), Some(&web))
        .await
        .denied("'service:write' on \"db\"");
    b.put("/v1/agent/check/pass/web-ttl", (), Some(&web))
        .await
        .json_ok();
    b.put("/v1/agent/service/deregister/db", (), Some(&web))
        .await
        .denied("'service:write' on \"db\"");
    // A node check and node maintenance: node:write on this node.
    let node_check = json!({"ID": "disk", "Name": "disk", "TTL": "10m"});
    b.put("/v1/agent/check/register", node_check, Some(&web))
        .await
        .denied("'node:write' on \"test-node\"");
    b.put("/v1/agent/maintenance?enable=false", (), Some(&web))
        .await
        .denied("'node:write' on \"test-node\"");

    // agent:read for self, node:read for members.
    b.get("/v1/agent/self", Some(&web))
        .await
        .denied("'agent:read' on \"test-node\"");
    b.get("/v1/agent/self", Some(&agent_reader)).await.json_ok();
    let members = b.get("/v1/agent/members", Some(&web)).await;
    assert!(!members.filtered);
    assert_eq!(members.json().as_array().unwrap().len(), 1);
    let members = b.get("/v1/agent/members", Some(&agent_reader)).await;
    assert!(members.filtered);
    assert_eq!(members.json(), json!([]));
    // Reload and leave need agent:write; force-leave operator:write.
    b.put("/v1/agent/reload", (), Some(&agent_reader))
        .await
        .denied("'agent:write' on \"test-node\"");
    b.put("/v1/agent/force-leave/x", (), Some(&web))
        .await
        .denied("'operator:write'");

    // The recovery token: agent endpoints only, on this agent only.
    b.get("/v1/agent/self", Some("recover-me")).await.json_ok();
    let kv = b.get("/v1/kv/x", Some("recover-me")).await;
    assert_eq!((kv.status, kv.body.as_str()), (403, "ACL not found"));

    // The default token: acl:write to set, in force at once, persisted.
    let set_default = |t: &str| json!({"Token": t});
    b.put("/v1/agent/token/default", set_default(&web), Some(&web))
        .await
        .denied("'acl:write'");
    b.put(reg, service("web"), None)
        .await
        .denied("anonymous token");
    b.put("/v1/agent/token/acl_token", set_default(&web), Some(&root))
        .await
        .json_ok();
    b.put(reg, service("web"), None).await.json_ok();
    let persisted = std::fs::read_to_string(dir.path().join("acl-tokens.json")).unwrap();
    let persisted: Value = serde_json::from_str(&persisted).unwrap();
    assert_eq!(persisted["default"], json!(web));
    let unknown = b
        .put("/v1/agent/token/bogus", set_default("x"), Some(&root))
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}

#[actix_rt::test]
async fn a_client_agent_asks_its_server_and_applies_its_down_policy() {
    let dir = tempfile::tempdir().unwrap();
    let root = uuid::Uuid::new_v4().to_string();
    let (s, sbase) = server(deny_config(&root), &root, dir.path()).await;
    let rpc = s.rpc_addr.expect("server RPC").to_string();
    let web = token(
        &sbase,
        &root,
        "web",
        "service \"web\" { policy = \"write\" }",
    )
    .await;
    let events = token(
        &sbase,
        &root,
        "ev",
        "event_prefix \"\" { policy = \"write\" }",
    )
    .await;
    // Never shown to a client before its server goes away.
    let fresh = token(
        &sbase,
        &root,
        "fresh",
        "service \"web\" { policy = \"write\" }",
    )
    .await;

    let ttl = Duration::from_millis(300);
    let client_acl = |down: AclDownPolicy| {
        let mut acl = AclConfig {
            down_policy: down,
            token_ttl: ttl,
            ..deny_config("")
        };
        acl.tokens.agent_recovery = "recover-me".into();
        acl
    };
    let mut clients = Vec::new();
    for (name, down) in [
        ("c-extend", AclDownPolicy::ExtendCache),
        ("c-async", AclDownPolicy::AsyncCache),
        ("c-deny", AclDownPolicy::Deny),
        ("c-allow", AclDownPolicy::Allow),
    ] {
        clients.push((down, client(name, client_acl(down), &rpc).await));
    }
    let reg = "/v1/agent/service/register";
    for (_, (_, c)) in &clients {
        // Decided on the client with what its server resolved.
        c.put(reg, service("web"), Some(&web)).await.json_ok();
        c.put(reg, service("db"), Some(&web))
            .await
            .denied("'service:write' on \"db\"");
        c.put(reg, service("web"), None)
            .await
            .denied("anonymous token");
        let unknown = c.put(reg, service("web"), Some("no-such-secret")).await;
        assert_eq!(
            (unknown.status, unknown.body.as_str()),
            (403, "ACL not found")
        );
        // The client's own user events: event:write.
        c.put("/v1/event/fire/deploy", (), None)
            .await
            .denied("'event:write' on \"deploy\"");
        let fired = c.put("/v1/event/fire/deploy", (), Some(&events)).await;
        assert_ne!(fired.status, 403, "{}", fired.body);
    }

    // No server answers any more, and the cached entries are past their TTL.
    for (_, (h, _)) in &clients {
        h.router.set_server("server", Some("127.0.0.1:1".into()));
    }
    tokio::time::sleep(ttl * 2).await;
    for (down, (_, c)) in &clients {
        // The recovery token needs no server, whatever the down policy.
        let me = c.get("/v1/agent/self", Some("recover-me")).await;
        assert_eq!(me.status, 200, "{down}: {}", me.body);
        c.put(reg, service("web"), Some("recover-me"))
            .await
            .denied("'service:write' on \"web\"");
        let cached = c.put(reg, service("web"), Some(&web)).await;
        let never_seen = c.put(reg, service("web"), Some(&fresh)).await;
        match down {
            AclDownPolicy::ExtendCache | AclDownPolicy::AsyncCache => {
                assert_eq!(cached.status, 200, "{down}: {}", cached.body);
                never_seen.denied("acl.down_policy");
            }
            AclDownPolicy::Deny => {
                cached.denied("acl.down_policy deny");
                never_seen.denied("acl.down_policy deny");
            }
            AclDownPolicy::Allow => {
                assert_eq!(cached.status, 200, "{down}: {}", cached.body);
                assert_eq!(never_seen.status, 200, "{down}: {}", never_seen.body);
            }
        }
    }

    // The server is back and the token is gone: async-cache answers from
    // its (expired) entry once while it refreshes, then knows; the others
    // ask at once.
    let accessor = sbase.get("/v1/acl/token/self", Some(&web)).await.json()["AccessorID"]
        .as_str()
        .unwrap()
        .to_string();
    let del = format!("/v1/acl/token/{accessor}");
    sbase.delete(&del, Some(&root)).await.json_ok();
    for (_, (h, _)) in &clients {
        h.router.set_server("server", Some(rpc.clone()));
    }
    tokio::time::sleep(ttl * 2).await;
    for (down, (_, c)) in &clients {
        let first = c.put(reg, service("web"), Some(&web)).await;
        if *down == AclDownPolicy::AsyncCache {
            assert_eq!(
                first.status, 200,
                "{down}: served from the cache: {}",
                first.body
            );
            common::inproc::until("the background refresh", || async {
                c.put(reg, service("web"), Some(&web)).await.status == 403
            })
            .await;
        } else {
            assert_eq!(
                (first.status, first.body.as_str()),
                (403, "ACL not found"),
                "{down}"
            );
        }
    }
}
