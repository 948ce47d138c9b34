//! HTTP API tests against an in-process dev agent on ephemeral loopback
//! ports, checked with a plain HTTP client as any Consul client would.

use std::time::{Duration, Instant};

use meridian::config::RuntimeConfig;
use serde_json::Value;

struct Api {
    base: String,
    client: reqwest::Client,
}

async fn dev_agent() -> Api {
    dev_agent_with(|_| {}).await
}

/// A dev agent whose config `tweak` adjusts first.
async fn dev_agent_with(tweak: impl FnOnce(&mut RuntimeConfig)) -> Api {
    let mut cfg = RuntimeConfig {
        dev: true,
        server: true,
        bootstrap: true,
        node_name: "test-node".into(),
        node_id: uuid::Uuid::new_v4().to_string(),
        bind_addr: [127, 0, 0, 1].into(),
        ports: meridian::config::Ports {
            http: Some(0),
            dns: None,
            server: None,
            serf_lan: None,
            serf_wan: None,
            https: None,
        },
        ..Default::default()
    };
    tweak(&mut cfg);
    let h = meridian::agent::start(cfg, None)
        .await
        .expect("agent starts");
    let api = Api {
        base: format!("http://{}", h.http_addrs[0]),
        client: reqwest::Client::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // Ready once there is a leader and it has registered this agent
        // (Consul's testrpc.WaitForTestAgent waits for the same).
        let r = api
            .client
            .get(api.url("/v1/health/node/test-node"))
            .send()
            .await;
        if let Ok(r) = r {
            if r.text()
                .await
                .map(|t| t.contains("serfHealth"))
                .unwrap_or(false)
            {
                break;
            }
        }
        assert!(Instant::now() < deadline, "agent not ready within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
    async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        let (s, h) = (r.status().as_u16(), r.headers().clone());
        (s, h, r.text().await.expect("body"))
    }
    async fn put(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let r = self
            .client
            .put(self.url(path))
            .body(body)
            .send()
            .await
            .expect("request");
        (r.status().as_u16(), r.text().await.expect("body"))
    }
    async fn delete(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .delete(self.url(path))
            .send()
            .await
            .expect("request");
        (r.status().as_u16(), r.text().await.expect("body"))
    }
}

fn index(h: &reqwest::header::HeaderMap) -> u64 {
    h.get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("X-Consul-Index")
}

#[actix_rt::test]
async fn kv_put_get_delete_with_consul_shapes() {
    let api = dev_agent().await;
    assert_eq!(
        api.put("/v1/kv/web/config?flags=42", "hello").await,
        (200, "true".into())
    );
    let (s, h, body) = api.get("/v1/kv/web/config").await;
    assert_eq!(s, 200);
    assert!(index(&h) > 0);
    assert_eq!(h.get("X-Consul-KnownLeader").unwrap(), "true");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["Key"], "web/config");
    assert_eq!(v[0]["Value"], "aGVsbG8=");
    assert_eq!(v[0]["Flags"], 42);
    assert_eq!(v[0]["LockIndex"], 0);
    assert!(v[0]["CreateIndex"].as_u64().unwrap() > 0);
    let (_, _, raw) = api.get("/v1/kv/web/config?raw").await;
    assert_eq!(raw, "hello");

    api.put("/v1/kv/web/sub/a", "1").await;
    api.put("/v1/kv/web/sub/b", "2").await;
    let (_, _, keys) = api.get("/v1/kv/web/?keys&separator=/").await;
    assert_eq!(
        serde_json::from_str::<Value>(&keys).unwrap(),
        serde_json::json!(["web/config", "web/sub/"])
    );
    let (_, _, all) = api.get("/v1/kv/web?recurse").await;
    assert_eq!(
        serde_json::from_str::<Value>(&all)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // CAS: 0 creates only if absent; N must match ModifyIndex.
    assert_eq!(api.put("/v1/kv/web/config?cas=0", "x").await.1, "false");
    let modify = v[0]["ModifyIndex"].as_u64().unwrap();
    assert_eq!(
        api.put(&format!("/v1/kv/web/config?cas={}", modify + 1000), "x")
            .await
            .1,
        "false"
    );
    assert_eq!(
        api.put(&format!("/v1/kv/web/config?cas={modify}"), "x")
            .await
            .1,
        "true"
    );

    assert_eq!(
        api.delete("/v1/kv/web/sub?recurse").await,
        (200, "true".into())
    );
    let (s, h, body) = api.get("/v1/kv/web/sub/a").await;
    assert_eq!((s, body.as_str()), (404, ""));
    assert!(index(&h) > 0, "404s carry X-Consul-Index");
}

#[actix_rt::test]
async fn blocking_query_wakes_on_its_key_only() {
    let api = dev_agent().await;
    api.put("/v1/kv/watched", "v1").await;
    api.put("/v1/kv/other", "o1").await;
    let (_, h, _) = api.get("/v1/kv/watched").await;
    let idx = index(&h);

    let url = api.url(&format!("/v1/kv/watched?index={idx}&wait=3s"));
    let client = api.client.clone();
    let waiter = tokio::spawn(async move {
        let t = Instant::now();
        let r = client.get(url).send().await.unwrap();
        let i = index(r.headers());
        (t.elapsed(), i, r.text().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A write elsewhere must not wake it...
    api.put("/v1/kv/other", "o2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "woke for a write to another key");
    // ...a write to the key must.
    api.put("/v1/kv/watched", "v2").await;
    let (_, new_idx, body) = waiter.await.unwrap();
    assert!(new_idx > idx);
    assert!(body.contains("djI="), "returns the new value: {body}");
}

#[actix_rt::test]
async fn catalog_and_health_show_the_agent_and_registered_services() {
    let api = dev_agent().await;
    let reg = r#"{"Node":"ext1","Address":"10.1.2.3","Service":{"Service":"db","Port":5432,"Tags":["primary"]},"Check":{"CheckID":"db-ok","Name":"db","Status":"passing","ServiceID":"db"}}"#;
    assert_eq!(
        api.put("/v1/catalog/register", reg).await,
        (200, "true".into())
    );
    let (_, _, svcs) = api.get("/v1/catalog/services").await;
    let svcs: Value = serde_json::from_str(&svcs).unwrap();
    assert_eq!(svcs["db"], serde_json::json!(["primary"]));
    assert_eq!(svcs["consul"], serde_json::json!([]));
    let (_, _, nodes) = api.get("/v1/catalog/service/db?tag=primary").await;
    let nodes: Value = serde_json::from_str(&nodes).unwrap();
    assert_eq!(nodes[0]["ServiceAddress"], "");
    assert_eq!(nodes[0]["Address"], "10.1.2.3");
    assert_eq!(nodes[0]["ServicePort"], 5432);
    let (_, _, none) = api.get("/v1/catalog/service/db?tag=replica").await;
    assert_eq!(none, "[]");
    let (_, _, health) = api.get("/v1/health/service/db?passing").await;
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health[0]["Checks"][0]["CheckID"], "db-ok");
    // The agent registered itself with serfHealth.
    let (_, _, checks) = api.get("/v1/health/node/test-node").await;
    assert!(checks.contains("serfHealth"), "{checks}");
    let (_, _, dcs) = api.get("/v1/catalog/datacenters").await;
    assert_eq!(dcs, r#"["dc1"]"#);
}

#[actix_rt::test]
async fn agent_service_register_reaches_the_catalog() {
    let api = dev_agent().await;
    let body =
        r#"{"name":"web","port":8080,"tags":["v1"],"check":{"ttl":"30s"},"meta":{"Some_Key":"x"}}"#;
    assert_eq!(api.put("/v1/agent/service/register", body).await.0, 200);
    let (_, _, local) = api.get("/v1/agent/services").await;
    let local: Value = serde_json::from_str(&local).unwrap();
    assert_eq!(local["web"]["Port"], 8080);
    assert_eq!(
        local["web"]["Meta"]["Some_Key"], "x",
        "user map keys are kept verbatim"
    );
    let (_, _, cat) = api.get("/v1/catalog/service/web").await;
    let cat: Value = serde_json::from_str(&cat).unwrap();
    assert_eq!(cat[0]["Node"], "test-node");
    let (_, _, checks) = api.get("/v1/agent/checks").await;
    assert!(checks.contains("service:web"), "{checks}");
    assert_eq!(api.put("/v1/agent/service/deregister/web", "").await.0, 200);
    let (s, body) = api.put("/v1/agent/service/deregister/web", "").await;
    assert_eq!(s, 404);
    assert!(body.contains("Unknown service ID"), "{body}");
}

#[actix_rt::test]
async fn bad_input_gets_clear_errors_and_loses_nothing() {
    let api = dev_agent().await;
    api.put("/v1/kv/keep", "safe").await;
    let big = vec![b'x'; 512 * 1024 + 1];
    let (s, body) = api.put("/v1/kv/big", big).await;
    assert_eq!(s, 413, "{body}");
    assert!(body.contains("too large"), "{body}");
    assert_eq!(api.get("/v1/kv/big").await.0, 404);
    for (path, want) in [
        ("/v1/kv/keep?index=abc", "Invalid index"),
        ("/v1/kv/keep?index=1&wait=forever", "Invalid wait time"),
        ("/v1/kv/keep?stale&consistent", "conflicting semantics"),
    ] {
        let (s, _, body) = api.get(path).await;
        assert_eq!(s, 400, "{path}");
        assert!(body.contains(want), "{path}: {body}");
    }
    let (s, body) = api.put("/v1/kv/keep?cas=nope", "x").await;
    assert_eq!((s, body.contains("Invalid cas")), (400, true), "{body}");
    let (s, body) = api.put("/v1/kv/keep?flags=-1", "x").await;
    assert_eq!((s, body.contains("Invalid flags")), (400, true), "{body}");
    let (s, body) = api.put("/v1/catalog/register", "{not json").await;
    assert_eq!(s, 400);
    assert!(body.contains("Request decode failed"), "{body}");
    let (s, body) = api
        .put(
            "/v1/catalog/register",
            r#"{"Node":"n","Address":"a","Service":{"Service":"s","Port":"eighty"}}"#,
        )
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("Service.Port"), "names the field: {body}");
    let (s, body) = api.put("/v1/kv/../etc/passwd", "x").await;
    assert!(s == 400 || s == 404, "{s} {body}");
    let (s, _, body) = api.get("/v1/nonsense").await;
    assert_eq!(s, 404);
    assert!(body.contains("Invalid URL path"));
    let r = api
        .client
        .patch(api.url("/v1/kv/keep"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let r = api
        .client
        .post(api.url("/v1/catalog/nodes"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["Allow"], "OPTIONS,GET");
    assert_eq!(r.text().await.unwrap(), "method POST not allowed");
    // Everything written before is intact.
    let (_, _, raw) = api.get("/v1/kv/keep?raw").await;
    assert_eq!(raw, "safe");
}

/// The value of the gauge `name` in a `/v1/agent/metrics` JSON summary.
fn gauge(summary: &Value, name: &str) -> Option<f64> {
    summary["Gauges"]
        .as_array()?
        .iter()
        .find(|g| g["Name"] == name)
        .and_then(|g| g["Value"].as_f64())
}

#[actix_rt::test]
async fn agent_metrics_report_real_figures_in_both_formats() {
    let api = dev_agent_with(|c| {
        c.telemetry.prometheus_retention_time = Duration::from_secs(60);
    })
    .await;
    for i in 0..3 {
        assert_eq!(api.put(&format!("/v1/kv/m/{i}"), "v").await.0, 200);
    }
    let host = hostname::get().unwrap().to_string_lossy().into_owned();

    // A blocking query waits on the KV store while the gauge is read.
    let (_, h, _) = api.get("/v1/kv/m/0").await;
    let wait = format!("/v1/kv/m/0?index={}&wait=5s", index(&h));
    let client = api.client.clone();
    let url = api.url(&wait);
    let blocked = tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) });
    let blocking = format!("consul.{host}.rpc.queries_blocking");
    let deadline = Instant::now() + Duration::from_secs(5);
    let summary = loop {
        let (s, h, body) = api.get("/v1/agent/metrics").await;
        assert_eq!(s, 200, "{body}");
        assert!(h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let v: Value = serde_json::from_str(&body).unwrap();
        if gauge(&v, &blocking) == Some(1.0) || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(gauge(&summary, &blocking), Some(1.0), "{summary}");
    // Gauges carry the host name (telemetry.disable_hostname is false).
    assert_eq!(
        gauge(&summary, &format!("consul.{host}.state.kv_entries")),
        Some(3.0)
    );
    assert!(gauge(&summary, &format!("consul.{host}.state.nodes")) >= Some(1.0));
    assert!(gauge(&summary, &format!("consul.{host}.raft.last_index")) > Some(0.0));
    api.put("/v1/kv/m/0", "w").await;
    assert_eq!(blocked.await.unwrap().unwrap(), 200);

    let (s, h, text) = api.get("/v1/agent/metrics?format=prometheus").await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(
        h["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let value = |series: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    };
    assert!(value("consul_kvs_apply_count") >= Some(4.0), "{text}");
    assert!(value("consul_raft_apply") >= Some(4.0), "{text}");
    assert!(value("consul_raft_state_leader") >= Some(1.0), "{text}");
    assert!(
        value("consul_api_http_count{method=\"PUT\",path=\"v1_kv_\"}") >= Some(4.0),
        "{text}"
    );
    assert!(
        value("consul_http_PUT_v1_kv___count") >= Some(4.0),
        "{text}"
    );
    assert!(value("process_resident_memory_bytes") > Some(0.0), "{text}");
    assert!(
        text.contains("# TYPE consul_raft_commitTime summary\n"),
        "{text}"
    );
}
