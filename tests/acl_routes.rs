//! Every route of the HTTP API, taken from the table the app registers
//! (`meridian::route_table::table()`), against an in-process agent under
//! `default_policy = "deny"`: without a token each route is refused or
//! answers filtered, as its [`Decision`] says; with the management token
//! none is refused. A route added to the table is walked here without
//! further ado (a new path placeholder needs a probe value below, or the
//! walk stops and says so); a route registered outside the table fails
//! `no_route_is_registered_outside_the_table`.

mod common;

use std::collections::HashMap;
use std::path::Path;

use meridian::route_table::{Decision, Route};
use serde_json::{json, Value};

use common::acl_http::{deny_agent, Api};

impl Api {
    /// A fixture write with the management token; it must succeed.
    async fn setup(&self, method: &str, path: &str, body: Value, root: &str) -> Value {
        let a = self.call(method, path, body, Some(root)).await;
        assert_eq!(a.status, 200, "{method} {path}: {}", a.body);
        serde_json::from_str(&a.body).unwrap_or(Value::Null)
    }
}

/// IDs of the objects the probes name, made with the management token.
struct Fixtures {
    ids: HashMap<&'static str, String>,
    snapshot: Vec<u8>,
}

async fn fixtures(api: &Api, root: &str) -> Fixtures {
    let mut ids = HashMap::new();
    api.setup(
        "PUT",
        "/v1/agent/service/register",
        json!({"ID": "probe", "Name": "probe", "Check": {"CheckID": "probe-ttl", "TTL": "10m"}}),
        root,
    )
    .await;
    api.setup("PUT", "/v1/kv/probe/key", json!("v"), root).await;
    let policy = api
        .setup(
            "PUT",
            "/v1/acl/policy",
            json!({"Name": "probe-policy", "Rules": ""}),
            root,
        )
        .await;
    ids.insert("policy", policy["ID"].as_str().unwrap().to_string());
    let role = api
        .setup(
            "PUT",
            "/v1/acl/role",
            json!({"Name": "probe-role", "Policies": [{"Name": "probe-policy"}]}),
            root,
        )
        .await;
    ids.insert("role", role["ID"].as_str().unwrap().to_string());
    let token = api
        .setup(
            "PUT",
            "/v1/acl/token",
            json!({"Policies": [{"Name": "probe-policy"}]}),
            root,
        )
        .await;
    ids.insert("token", token["AccessorID"].as_str().unwrap().to_string());
    for which in ["destroy", "renew"] {
        let s = api
            .setup("PUT", "/v1/session/create", json!({}), root)
            .await;
        ids.insert(which, s["ID"].as_str().unwrap().to_string());
    }
    // Passing, so that a prepared query over it has an instance to
    // filter (critical ones are never in its answer).
    api.setup("PUT", "/v1/agent/check/pass/probe-ttl", Value::Null, root)
        .await;
    for _ in 0..100 {
        let h = api
            .setup("GET", "/v1/health/service/probe?passing", Value::Null, root)
            .await;
        if h.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let query = api
        .setup(
            "POST",
            "/v1/query",
            json!({"Name": "probe-query", "Service": {"Service": "probe"}}),
            root,
        )
        .await;
    ids.insert("query", query["ID"].as_str().unwrap().to_string());
    let snap = api.call("GET", "/v1/snapshot", b"", Some(root)).await;
    assert_eq!(snap.status, 200);
    let snapshot = api
        .client
        .get(format!("{}/v1/snapshot", api.base))
        .header("X-Consul-Token", root)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    Fixtures { ids, snapshot }
}

/// The request a route is probed with: its path with the placeholders
/// filled, and a harmless body. `anonymous` probes come first; the
/// management probe may then change what the next route names (the
/// table's order registers before it deregisters).
fn probe(route: &Route, f: &Fixtures, anonymous: bool) -> (String, Vec<u8>) {
    let m = route.method.as_str();
    let id = |k: &str| f.ids[k].clone();
    let (path, body): (String, Value) = match (m, route.path) {
        ("PUT", "/v1/agent/service/register") => {
            (route.path.into(), json!({"ID": "probe2", "Name": "probe2"}))
        }
        (_, "/v1/agent/service/deregister/{id}") => {
            ("/v1/agent/service/deregister/probe2".into(), Value::Null)
        }
        ("PUT", "/v1/agent/check/register") => (
            route.path.into(),
            json!({"ID": "probe-check2", "Name": "probe-check2", "TTL": "10m"}),
        ),
        (_, "/v1/agent/check/deregister/{id}") => (
            "/v1/agent/check/deregister/probe-check2".into(),
            Value::Null,
        ),
        (_, "/v1/agent/check/update/{id}") => (
            "/v1/agent/check/update/probe-ttl".into(),
            json!({"Status": "passing"}),
        ),
        (_, p) if p.starts_with("/v1/agent/check/") => {
            (p.replace("{id}", "probe-ttl"), Value::Null)
        }
        (_, "/v1/agent/maintenance") => ("/v1/agent/maintenance?enable=false".into(), Value::Null),
        (_, "/v1/agent/service/maintenance/{id}") => (
            "/v1/agent/service/maintenance/probe?enable=false".into(),
            Value::Null,
        ),
        // The monitor streams until the caller hangs up: an unknown level
        // answers at once, after the permission is checked.
        (_, "/v1/agent/monitor") => ("/v1/agent/monitor?loglevel=probe".into(), Value::Null),
        (_, "/v1/agent/join/{addr}") => ("/v1/agent/join/127.0.0.1:1".into(), Value::Null),
        (_, "/v1/agent/force-leave/{node}") => {
            ("/v1/agent/force-leave/no-such-node".into(), Value::Null)
        }
        (_, "/v1/agent/token/{type}") => ("/v1/agent/token/dns".into(), json!({"Token": ""})),
        (_, "/v1/catalog/register") => (
            route.path.into(),
            json!({"Node": "probe-node", "Address": "127.0.0.2"}),
        ),
        (_, "/v1/catalog/deregister") => (route.path.into(), json!({"Node": "probe-node"})),
        (_, "/v1/coordinate/update") => (
            route.path.into(),
            json!({"Node": "test-node", "Coord": {"Vec": vec![0.0; 8], "Error": 1.5, "Adjustment": 0.0, "Height": 1e-5}}),
        ),
        ("POST", "/v1/query") => (
            route.path.into(),
            json!({"Name": "probe-query2", "Service": {"Service": "probe"}}),
        ),
        ("PUT", "/v1/query/{id}") => (
            format!("/v1/query/{}", id("query")),
            json!({"Name": "probe-query", "Service": {"Service": "probe"}}),
        ),
        (_, "/v1/txn") => (
            route.path.into(),
            json!([{"KV": {"Verb": "get", "Key": "probe/key"}}]),
        ),
        (_, "/v1/session/create") => (route.path.into(), json!({})),
        (_, "/v1/session/destroy/{id}") => (
            format!("/v1/session/destroy/{}", id("destroy")),
            Value::Null,
        ),
        (_, "/v1/session/renew/{id}") => {
            (format!("/v1/session/renew/{}", id("renew")), Value::Null)
        }
        ("PUT", "/v1/snapshot") => {
            // A real archive, so that the refusal is the permission's; the
            // management probe gets a broken one and changes nothing.
            let body = if anonymous {
                f.snapshot.clone()
            } else {
                b"not an archive".to_vec()
            };
            return (route.path.into(), body);
        }
        (_, "/v1/operator/raft/peer") => (
            "/v1/operator/raft/peer?address=127.0.0.9:1".into(),
            Value::Null,
        ),
        ("PUT", "/v1/acl/token") => (
            route.path.into(),
            json!({"Policies": [{"Name": "probe-policy"}]}),
        ),
        ("PUT", "/v1/acl/token/{id}") => (
            format!("/v1/acl/token/{}", id("token")),
            json!({"Policies": [{"Name": "probe-policy"}]}),
        ),
        ("PUT", "/v1/acl/policy") => (
            route.path.into(),
            json!({"Name": "probe-policy2", "Rules": ""}),
        ),
        ("PUT", "/v1/acl/policy/{id}") => (
            format!("/v1/acl/policy/{}", id("policy")),
            json!({"Name": "probe-policy", "Rules": ""}),
        ),
        ("PUT", "/v1/acl/role") => (
            route.path.into(),
            json!({"Name": "probe-role2", "Policies": [{"Name": "probe-policy"}]}),
        ),
        ("PUT", "/v1/acl/role/{id}") => (
            format!("/v1/acl/role/{}", id("role")),
            json!({"Name": "probe-role", "Policies": [{"Name": "probe-policy"}]}),
        ),
        (_, p) => {
            let filled = p
                .replace("{key:.*}", "probe/key")
                .replace("{name:.+}", "probe-policy")
                .replace("/v1/acl/role/name/{name}", "/v1/acl/role/name/probe-role")
                .replace(
                    "/v1/acl/token/{id}",
                    &format!("/v1/acl/token/{}", id("token")),
                )
                .replace(
                    "/v1/acl/policy/{id}",
                    &format!("/v1/acl/policy/{}", id("policy")),
                )
                .replace("/v1/acl/role/{id}", &format!("/v1/acl/role/{}", id("role")))
                .replace(
                    "/v1/session/info/{id}",
                    &format!("/v1/session/info/{}", id("renew")),
                )
                .replace("/v1/query/{id}", &format!("/v1/query/{}", id("query")))
                .replace("{name}", "probe")
                .replace("{service}", "probe")
                .replace("{id}", "probe")
                .replace("{node}", "test-node")
                .replace("{state}", "any");
            assert!(
                !filled.contains('{'),
                "no probe for {m} {p}: give it one in tests/acl_routes.rs"
            );
            let body = if p.starts_with("/v1/kv/") && m != "GET" && m != "DELETE" {
                json!("1")
            } else {
                Value::Null
            };
            (filled, body)
        }
    };
    let body = match body {
        Value::Null => Vec::new(),
        Value::String(s) => s.into_bytes(),
        v => v.to_string().into_bytes(),
    };
    (path, body)
}

/// An answer with nothing in it, or nothing but what anyone may see (a
/// prepared query's execution with no nodes names only the query).
fn empty(body: &str) -> bool {
    matches!(body.trim(), "" | "[]" | "{}" | "null")
        || serde_json::from_str::<Value>(body)
            .is_ok_and(|v| v["Nodes"].as_array().is_some_and(|n| n.is_empty()))
}

#[actix_rt::test]
async fn every_route_is_refused_or_filtered_without_a_token_and_served_with_management() {
    let dir = tempfile::tempdir().unwrap();
    let (api, root) = deny_agent(dir.path()).await;
    let f = fixtures(&api, &root).await;

    let mut table = meridian::route_table::table();
    assert!(table.len() > 60, "the table has {} routes", table.len());
    // Leaving stops the agent: last.
    table.sort_by_key(|r| r.path == "/v1/agent/leave");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for route in &table {
        let what = format!("{} {} ({:?})", route.method, route.path, route.decision);
        *seen.entry(decision_class(route.decision)).or_default() += 1;

        let (path, body) = probe(route, &f, true);
        let a = api.call(route.method.as_str(), &path, &body, None).await;
        let denied = a.status == 403 && a.body.starts_with("Permission denied");
        match route.decision {
            Decision::Open => assert_ne!(a.status, 403, "{what}: {}", a.body),
            Decision::Bootstrap => assert!(
                a.status == 403 && a.body.contains("ACL bootstrap no longer allowed"),
                "{what}: {} {}",
                a.status,
                a.body
            ),
            Decision::RequestPath | Decision::Agent(_) | Decision::AgentByRequest => {
                assert!(denied, "{what}: {} {}", a.status, a.body);
                assert!(
                    a.body.contains("anonymous token")
                        && a.body.contains("default_policy \"deny\""),
                    "{what}: the refusal names the token and the default: {}",
                    a.body
                );
            }
            // One prepared query filtered away is Consul's bare 403
            // (`PreparedQuery.Get` and `.Explain` tell it from unknown).
            Decision::RequestPathFiltered
                if route.path.starts_with("/v1/query/") && !route.path.ends_with("/execute") =>
            {
                assert!(
                    a.status == 403 && a.body.trim() == "Permission denied",
                    "{what}: {} {}",
                    a.status,
                    a.body
                )
            }
            Decision::RequestPathFiltered | Decision::AgentFiltered => assert!(
                a.status == 200 && (a.filtered || empty(&a.body)),
                "{what}: {} filtered={} {}",
                a.status,
                a.filtered,
                a.body
            ),
            // No secret, nothing to read but the anonymous token itself.
            Decision::TokenSelf => assert!(
                matches!(a.status, 403 | 404)
                    || (a.status == 200 && a.body.contains("00000000-0000-0000-0000-000000000002")),
                "{what}: {} {}",
                a.status,
                a.body
            ),
        }

        let (path, body) = probe(route, &f, false);
        let a = api
            .call(route.method.as_str(), &path, &body, Some(&root))
            .await;
        if route.decision == Decision::Bootstrap {
            assert_eq!(a.status, 403, "{what}: {}", a.body);
        } else {
            assert_ne!(a.status, 403, "{what} with management: {}", a.body);
            assert!(!a.filtered, "{what}: nothing is filtered for management");
        }
    }
    // Every kind of decision is exercised.
    for class in ["open", "request path", "filtered", "agent", "by request"] {
        assert!(
            seen.contains_key(class),
            "no route decided as {class}: {seen:?}"
        );
    }
}

fn decision_class(d: Decision) -> &'static str {
    match d {
        Decision::Open | Decision::Bootstrap | Decision::TokenSelf => "open",
        Decision::RequestPath => "request path",
        Decision::RequestPathFiltered | Decision::AgentFiltered => "filtered",
        Decision::Agent(_) => "agent",
        Decision::AgentByRequest => "by request",
    }
}

/// The table is the only way in: no file of the HTTP layer registers a
/// route of its own (actix's `resource`, `route`, `service`), so a route
/// cannot skip its decision.
#[test]
fn no_route_is_registered_outside_the_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut files = vec![root.clone()];
    let mut offenders = Vec::new();
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") || p.ends_with("routes.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for needle in [
            "web::resource(",
            "web::scope(",
            "cfg.route(",
            "cfg.service(",
            ".service(",
        ] {
            if text.contains(needle) {
                offenders.push(format!("{}: {needle}", p.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "routes outside the table: {offenders:?}"
    );
}
