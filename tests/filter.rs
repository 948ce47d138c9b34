//! `?filter=` on every list endpoint that takes it, against the built
//! agent: what is kept, the index left alone (blocking clients wake as
//! without a filter), Consul's 400s for bad expressions, and the filter
//! running after the ACL filter. Also the two requests Prometheus'
//! `consul_sd_configs` makes when given a `filter`.

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::acl_http::deny_agent;
use common::TestAgent;

struct Answer {
    status: u16,
    index: Option<u64>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.body);
        serde_json::from_str(&self.body).expect("json")
    }
}

fn get(a: &TestAgent, path: &str, query: &[(&str, &str)]) -> Answer {
    let r = reqwest::blocking::Client::new()
        .get(a.url(path))
        .query(query)
        .timeout(Duration::from_secs(20))
        .send()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    Answer {
        status: r.status().as_u16(),
        index: r
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok()?.parse().ok()),
        body: r.text().unwrap_or_default(),
    }
}

fn filtered(a: &TestAgent, path: &str, expr: &str) -> Value {
    get(a, path, &[("filter", expr)]).json()
}

fn put(a: &TestAgent, path: &str, body: Value) {
    let r = reqwest::blocking::Client::new()
        .put(a.url(path))
        .body(body.to_string())
        .send()
        .unwrap_or_else(|e| panic!("PUT {path}: {e}"));
    let status = r.status().as_u16();
    assert_eq!(status, 200, "PUT {path}: {}", r.text().unwrap_or_default());
}

fn names(list: &Value, field: &str) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            e.pointer(field)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    v.sort();
    v
}

fn keys(map: &Value) -> Vec<String> {
    map.as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

/// n1 (env=prod) runs web (v1, passing); n2 (env=qa) runs web (v2,
/// critical) and db (primary, no check).
fn catalog(a: &TestAgent) {
    for (node, env) in [("n1", "prod"), ("n2", "qa")] {
        put(
            a,
            "/v1/catalog/register",
            json!({"Node": node, "Address": format!("10.0.0.{}", &node[1..]),
                   "NodeMeta": {"env": env}}),
        );
    }
    let web = |node: &str, tag: &str, status: &str| {
        json!({"Node": node, "Address": format!("10.0.0.{}", &node[1..]), "SkipNodeUpdate": true,
               "Service": {"ID": "web", "Service": "web", "Tags": [tag], "Port": 8080,
                           "Meta": {"version": tag}},
               "Check": {"CheckID": "web-check", "Name": "web health", "Status": status,
                         "ServiceID": "web"}})
    };
    put(a, "/v1/catalog/register", web("n1", "v1", "passing"));
    put(a, "/v1/catalog/register", web("n2", "v2", "critical"));
    put(
        a,
        "/v1/catalog/register",
        json!({"Node": "n2", "Address": "10.0.0.2", "SkipNodeUpdate": true,
               "Service": {"ID": "db", "Service": "db", "Tags": ["primary"], "Port": 5432}}),
    );
}

#[test]
fn filter_narrows_each_catalog_and_health_list_and_keeps_the_index() {
    let a = TestAgent::dev(&[]);
    catalog(&a);

    let all = get(&a, "/v1/catalog/nodes", &[]);
    let prod = get(&a, "/v1/catalog/nodes", &[("filter", "Meta.env == prod")]);
    assert_eq!(names(&prod.json(), "/Node"), ["n1"]);
    assert!(names(&all.json(), "/Node").len() >= 2);
    assert_eq!(
        prod.index, all.index,
        "filtering leaves X-Consul-Index alone"
    );
    assert_eq!(
        names(
            &filtered(
                &a,
                "/v1/catalog/nodes",
                "Node matches \"^n[0-9]$\" and Meta.env != prod"
            ),
            "/Node"
        ),
        ["n2"]
    );

    // `/v1/catalog/services` filters instances, then groups by name.
    let svcs = filtered(&a, "/v1/catalog/services", "NodeMeta.env == qa");
    assert_eq!(svcs, json!({"db": ["primary"], "web": ["v2"]}));
    let svcs = filtered(&a, "/v1/catalog/services", "ServiceTags contains v1");
    assert_eq!(svcs, json!({"web": ["v1"]}));
    let all = get(&a, "/v1/catalog/services", &[]);
    let none = get(
        &a,
        "/v1/catalog/services",
        &[("filter", "ServiceName == nothing")],
    );
    assert_eq!(none.json(), json!({}));
    assert_eq!(none.index, all.index);

    let web = filtered(&a, "/v1/catalog/service/web", "ServiceMeta.version == v2");
    assert_eq!(names(&web, "/Node"), ["n2"]);
    let web = filtered(
        &a,
        "/v1/catalog/service/web",
        "ServicePort == 8080 and Address == \"10.0.0.1\"",
    );
    assert_eq!(names(&web, "/Node"), ["n1"]);

    // A node's services, filtered as NodeService rows.
    let n2 = filtered(&a, "/v1/catalog/node/n2", "Service == db");
    assert_eq!(keys(&n2["Services"]), ["db"]);
    assert_eq!(n2["Node"]["Node"], "n2");
    let ns = filtered(&a, "/v1/catalog/node-services/n2", "Tags contains primary");
    assert_eq!(names(&ns["Services"], "/ID"), ["db"]);
    assert_eq!(ns["Node"]["Node"], "n2");
    let ns = get(&a, "/v1/catalog/node-services/n2", &[]).json();
    assert_eq!(names(&ns["Services"], "/ID"), ["db", "web"]);
    let ns = get(&a, "/v1/catalog/node-services/nope", &[]).json();
    assert_eq!(ns, json!({"Node": null, "Services": []}));

    let h = filtered(&a, "/v1/health/service/web", "Checks.Status == critical");
    assert_eq!(names(&h, "/Node/Node"), ["n2"]);
    let h = filtered(&a, "/v1/health/service/web", "\"passing\" in Checks.Status");
    assert_eq!(names(&h, "/Node/Node"), ["n1"]);
    let h = filtered(
        &a,
        "/v1/health/service/web",
        "Service.Tags contains v2 or Node.Meta.env == prod",
    );
    assert_eq!(names(&h, "/Node/Node"), ["n1", "n2"]);

    let c = filtered(&a, "/v1/health/checks/web", "Node == n1");
    assert_eq!(names(&c, "/Node"), ["n1"]);
    let c = filtered(&a, "/v1/health/node/n2", "Status != passing");
    assert_eq!(names(&c, "/CheckID"), ["web-check"]);
    let c = filtered(
        &a,
        "/v1/health/state/any",
        "ServiceName == web and Status == critical",
    );
    assert_eq!(names(&c, "/Node"), ["n2"]);
    let c = filtered(&a, "/v1/health/state/critical", "ServiceTags contains v1");
    assert!(c.as_array().unwrap().is_empty());
}

#[test]
fn filter_narrows_the_agents_own_lists() {
    let a = TestAgent::dev(&[]);
    for (id, tags) in [("api", json!(["blue", "v1"])), ("cache", json!(["green"]))] {
        put(
            &a,
            "/v1/agent/service/register",
            json!({"ID": id, "Name": id, "Tags": tags, "Port": 80, "Meta": {"team": id}}),
        );
    }
    put(
        &a,
        "/v1/agent/check/register",
        json!({"ID": "ttl-1", "Name": "ttl one", "TTL": "30s", "ServiceID": "api"}),
    );

    let s = filtered(&a, "/v1/agent/services", "Tags contains blue");
    assert_eq!(keys(&s), ["api"]);
    let s = filtered(
        &a,
        "/v1/agent/services",
        "Meta.team == cache or Service == nope",
    );
    assert_eq!(keys(&s), ["cache"]);
    let c = filtered(
        &a,
        "/v1/agent/checks",
        "ServiceID == api and Status == critical",
    );
    assert_eq!(keys(&c), ["ttl-1"]);
    let c = filtered(&a, "/v1/agent/checks", "Name == nope");
    assert_eq!(c, json!({}));

    let m = filtered(
        &a,
        "/v1/agent/members",
        &format!("Name == \"{}\" and Status == 1", a.node),
    );
    assert_eq!(names(&m, "/Name"), std::slice::from_ref(&a.node));
    let m = filtered(&a, "/v1/agent/members", "Tags.role == nothing");
    assert!(m.as_array().unwrap().is_empty());
}

#[test]
fn bad_expressions_are_a_400_that_says_where_or_what() {
    let a = TestAgent::dev(&[]);
    let cases = [
        (
            "/v1/catalog/nodes",
            "Meta.env ==",
            "1:12 (11): no match found",
        ),
        (
            "/v1/catalog/nodes",
            "Node == host-name",
            "1:13 (12): no match found",
        ),
        (
            "/v1/catalog/services",
            "ServiceName == \"web",
            "rule \"string\": Unterminated string literal",
        ),
        (
            "/v1/catalog/service/web",
            "Nope == x",
            "Selector \"Nope\" is not valid",
        ),
        (
            "/v1/catalog/node/x",
            "ServiceName == x",
            "Selector \"ServiceName\" is not valid",
        ),
        (
            "/v1/catalog/node-services/x",
            "Tags == x",
            "Invalid match operator \"Equal\"",
        ),
        (
            "/v1/health/service/web",
            "Service.Port == eighty",
            "Failed to coerce value \"eighty\"",
        ),
        (
            "/v1/health/checks/web",
            "ServiceTags == x",
            "Invalid match operator \"Equal\"",
        ),
        (
            "/v1/health/node/x",
            "(Status == passing",
            "rule \"grouping\": Unmatched parentheses",
        ),
        (
            "/v1/health/state/any",
            "Name matches \"(\"",
            "Failed to compile regular expression",
        ),
        (
            "/v1/agent/services",
            "Nope == x",
            "Selector \"Nope\" is not valid",
        ),
        (
            "/v1/agent/checks",
            "x in 32",
            "rule \"match\": Invalid selector",
        ),
        ("/v1/agent/members", "Addr == ", "no match found"),
    ];
    for (path, expr, want) in cases {
        let r = get(&a, path, &[("filter", expr)]);
        assert_eq!(r.status, 400, "{path} {expr}: {}", r.body);
        assert!(
            r.body
                .starts_with("Failed to create boolean expression evaluator: ")
                && r.body.contains(want),
            "{path} {expr}: {}",
            r.body
        );
    }
    // An empty filter is no filter.
    assert_eq!(get(&a, "/v1/catalog/nodes", &[("filter", "")]).status, 200);
}

#[test]
fn a_filtered_blocking_query_wakes_on_any_change_and_answers_filtered() {
    let a = TestAgent::dev(&[]);
    catalog(&a);
    let first = get(&a, "/v1/catalog/nodes", &[("filter", "Meta.env == prod")]);
    let index = first.index.expect("an index").to_string();
    std::thread::scope(|s| {
        let blocked = s.spawn(|| {
            get(
                &a,
                "/v1/catalog/nodes",
                &[
                    ("filter", "Meta.env == prod"),
                    ("index", &index),
                    ("wait", "10s"),
                ],
            )
        });
        // A node the filter leaves out still moves the index, as in Consul.
        std::thread::sleep(Duration::from_millis(200));
        put(
            &a,
            "/v1/catalog/register",
            json!({"Node": "n3", "Address": "10.0.0.3", "NodeMeta": {"env": "qa"}}),
        );
        let woke = blocked.join().expect("blocking request");
        assert!(
            woke.index > first.index,
            "{:?} then {:?}",
            first.index,
            woke.index
        );
        assert_eq!(names(&woke.json(), "/Node"), ["n1"]);
    });
}

/// Prometheus' consul_sd: its `filter` goes with the blocking, stale
/// listing of the catalog's services (evaluated on ServiceNode fields),
/// then each service's health is watched; a filter there is evaluated on
/// the health entries (Node, Service, Checks).
#[test]
fn prometheus_consul_sd_requests_are_answered_filtered() {
    let a = TestAgent::dev(&[]);
    catalog(&a);
    let filter = "Service.Tags contains \"v1\"";
    let svcs = get(
        &a,
        "/v1/catalog/services",
        &[("filter", "ServiceTags contains \"v1\""), ("stale", "")],
    );
    assert_eq!(svcs.json(), json!({"web": ["v1"]}));
    let h = get(
        &a,
        "/v1/health/service/web",
        &[
            ("filter", filter),
            ("stale", ""),
            ("index", "1"),
            ("wait", "1s"),
        ],
    );
    let h = h.json();
    assert_eq!(names(&h, "/Node/Node"), ["n1"]);
    assert_eq!(h[0]["Service"]["Port"], 8080);
}

#[actix_rt::test]
async fn the_filter_runs_on_what_the_token_may_read() {
    let dir = tempfile::tempdir().unwrap();
    let (api, root) = deny_agent(dir.path()).await;
    for (node, env) in [("n1", "prod"), ("n2", "prod")] {
        let r = api
            .put(
                "/v1/catalog/register",
                json!({"Node": node, "Address": "10.0.0.1", "NodeMeta": {"env": env}}),
                Some(&root),
            )
            .await;
        r.json_ok();
    }
    let policy = json!({"Name": "n1", "Rules": "node \"n1\" { policy = \"read\" }"});
    api.put("/v1/acl/policy", policy, Some(&root))
        .await
        .json_ok();
    let token = api
        .put(
            "/v1/acl/token",
            json!({"Policies": [{"Name": "n1"}]}),
            Some(&root),
        )
        .await
        .json();
    let secret = token["SecretID"].as_str().unwrap();
    let q = "/v1/catalog/nodes?filter=Meta.env%20%3D%3D%20prod";
    let seen = api.get(q, Some(secret)).await;
    assert!(seen.filtered, "the ACL filter dropped n2, and says so");
    assert_eq!(names(&seen.json(), "/Node"), ["n1"]);
    let root_seen = api.get(q, Some(&root)).await;
    assert_eq!(names(&root_seen.json(), "/Node"), ["n1", "n2"]);
    // A bad filter is a 400 whatever the token may read.
    let bad = api
        .get("/v1/catalog/nodes?filter=Nope%20%3D%3D%201", Some(secret))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
}
