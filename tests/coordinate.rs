//! `/v1/coordinate/*` and `?near=` against one server, with coordinates
//! placed by hand through `PUT /v1/coordinate/update` (on a line, so the
//! expected order is plain), as any Consul client would send them.

mod common;

use std::time::{Duration, Instant};

use common::{stdout, wait_for, TestAgent};
use serde_json::{json, Value};

fn coord(x: f64) -> Value {
    json!({"Vec": [x, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "Error": 0.2, "Adjustment": 0.0, "Height": 1e-5})
}

fn put(a: &TestAgent, path: &str, body: Value) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .put(a.url(path))
        .body(body.to_string())
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn get(a: &TestAgent, path: &str) -> (u16, Option<String>, Value) {
    let r = reqwest::blocking::Client::new()
        .get(a.url(path))
        .timeout(Duration::from_secs(20))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let index = r
        .headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = r.json().unwrap_or(Value::Null);
    (status, index, body)
}

fn nodes(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n["Node"].as_str().unwrap())
        .collect()
}

/// Places on a line (seconds): `near=b` should answer b, a, c, d.
const PLACES: [(&str, f64); 4] = [("a", 0.0), ("b", 0.002), ("c", 0.010), ("d", 0.030)];

fn agent_with_nodes() -> (tempfile::TempDir, TestAgent) {
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::server_with_env(
        dir.path(),
        &[],
        &[("MERIDIAN_COORDINATE_UPDATE_PERIOD", "100ms")],
    );
    for (n, _) in PLACES {
        let (s, body) = put(
            &agent,
            "/v1/catalog/register",
            json!({"Node": n, "Address": "10.0.0.1",
                   "Service": {"Service": "web", "Port": 80},
                   "Check": {"CheckID": "c", "Name": "c", "Status": "passing", "ServiceID": "web"}}),
        );
        assert_eq!(s, 200, "{body}");
    }
    for (n, x) in PLACES {
        let (s, body) = put(
            &agent,
            "/v1/coordinate/update",
            json!({"Node": n, "Segment": "", "Coord": coord(x)}),
        );
        assert_eq!(s, 200, "{body}");
    }
    wait_for("the leader's batch", 20, || {
        get(&agent, "/v1/coordinate/nodes")
            .2
            .as_array()
            .is_some_and(|a| a.len() == PLACES.len())
    });
    (dir, agent)
}

#[test]
fn updates_are_stored_read_back_and_sort_near_reads() {
    let (_dir, agent) = agent_with_nodes();
    let (s, index, all) = get(&agent, "/v1/coordinate/nodes");
    assert_eq!(s, 200);
    assert!(index.is_some());
    assert_eq!(nodes(&all), vec!["a", "b", "c", "d"]);
    assert_eq!(all[2]["Coord"], coord(0.010));
    assert_eq!(all[2]["Segment"], "");

    let (s, _, one) = get(&agent, "/v1/coordinate/node/c");
    assert_eq!(s, 200);
    assert_eq!(nodes(&one), vec!["c"]);
    let (s, _, _) = get(&agent, "/v1/coordinate/node/nobody");
    assert_eq!(s, 404);

    // Nearest first; the server's own node (alone in its pool, it has
    // measured nothing, so sent nothing) has no coordinate: last.
    let (_, _, cat) = get(&agent, "/v1/catalog/nodes?near=b");
    let order = nodes(&cat);
    assert_eq!(&order[..4], &["b", "a", "c", "d"]);
    assert_eq!(order[4], agent.node);
    let (_, _, svc) = get(&agent, "/v1/catalog/service/web?near=d");
    assert_eq!(nodes(&svc), vec!["d", "c", "b", "a"]);
    let (_, _, h) = get(&agent, "/v1/health/service/web?near=c");
    let hn: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Node"]["Node"].as_str().unwrap())
        .collect();
    assert_eq!(hn, vec!["c", "b", "a", "d"]);
    let (_, _, checks) = get(&agent, "/v1/health/checks/web?near=a");
    assert_eq!(nodes(&checks), vec!["a", "b", "c", "d"]);
    let (_, _, state) = get(&agent, "/v1/health/state/passing?near=d");
    let sn = nodes(&state);
    assert_eq!(&sn[..4], &["d", "c", "b", "a"], "{sn:?}");
    // A node without a coordinate sorts nothing.
    let (_, _, plain) = get(&agent, &format!("/v1/catalog/nodes?near={}", agent.node));
    let (_, _, unsorted) = get(&agent, "/v1/catalog/nodes");
    assert_eq!(nodes(&plain), nodes(&unsorted));

    // `meridian rtt`: |0.010 - 0.002| s plus both heights (10 µs each).
    let out = agent.cli(&["rtt", "b", "c"]);
    assert_eq!(
        stdout(&out),
        "Estimated b <-> c rtt: 8.020 ms (using LAN coordinates)\n",
        "{}",
        common::stderr(&out)
    );
    let out = agent.cli(&["rtt", "b", "nobody"]);
    assert!(!out.status.success());
    assert!(common::stderr(&out).contains("Could not find a coordinate for node \"nobody\""));
}

#[test]
fn a_blocking_read_wakes_on_a_batch_and_a_node_takes_its_coordinate_along() {
    let (_dir, agent) = agent_with_nodes();
    let (_, index, _) = get(&agent, "/v1/coordinate/nodes");
    let index = index.unwrap();
    let waiter = {
        let url = agent.url(&format!("/v1/coordinate/nodes?index={index}&wait=15s"));
        std::thread::spawn(move || {
            let started = Instant::now();
            let r = reqwest::blocking::Client::new()
                .get(url)
                .timeout(Duration::from_secs(30))
                .send()
                .unwrap();
            let i = r.headers()["X-Consul-Index"].to_str().unwrap().to_string();
            (started.elapsed(), i, r.json::<Value>().unwrap())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (s, _) = put(
        &agent,
        "/v1/coordinate/update",
        json!({"Node": "d", "Coord": coord(0.040)}),
    );
    assert_eq!(s, 200);
    let (took, new_index, body) = waiter.join().unwrap();
    assert!(took < Duration::from_secs(14), "woke after {took:?}");
    assert_ne!(new_index, index);
    assert_eq!(body[3]["Coord"], coord(0.040));

    // An update for a node the catalog does not know is dropped.
    put(
        &agent,
        "/v1/coordinate/update",
        json!({"Node": "ghost", "Coord": coord(1.0)}),
    );
    // Deregistering a node deletes its coordinate.
    let (s, _) = put(&agent, "/v1/catalog/deregister", json!({"Node": "c"}));
    assert_eq!(s, 200);
    wait_for("c's coordinate gone", 10, || {
        nodes(&get(&agent, "/v1/coordinate/nodes").2) == vec!["a", "b", "d"]
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        nodes(&get(&agent, "/v1/coordinate/nodes").2),
        vec!["a", "b", "d"]
    );
}

#[test]
fn bad_updates_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::server(dir.path());
    for (body, field) in [
        (json!({"Coord": coord(0.0)}), "Node"),
        (json!({"Node": "x"}), "Coord"),
        (
            json!({"Node": "x", "Coord": {"Vec": [0.0, 1.0], "Error": 0.2, "Adjustment": 0.0, "Height": 1e-5}}),
            "Coord.Vec",
        ),
        (
            json!({"Node": "x", "Coord": {"Vec": "no", "Error": 0.2, "Adjustment": 0.0, "Height": 1e-5}}),
            "Coord.Vec",
        ),
    ] {
        let (s, text) = put(&agent, "/v1/coordinate/update", body.clone());
        assert_eq!(s, 400, "{body}: {text}");
        assert!(text.contains(field), "{body}: {text}");
    }
    // A number too large for a float is not a coordinate (JSON has no NaN).
    let r = reqwest::blocking::Client::new()
        .put(agent.url("/v1/coordinate/update"))
        .body(r#"{"Node":"x","Coord":{"Vec":[1e999,0,0,0,0,0,0,0],"Error":0.2,"Adjustment":0,"Height":1e-5}}"#)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[test]
fn datacenters_show_the_wan_coordinates_and_disable_coordinates_turns_them_off() {
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::server(dir.path());
    let (s, _, dcs) = get(&agent, "/v1/coordinate/datacenters");
    assert_eq!(s, 200);
    assert_eq!(dcs[0]["Datacenter"], "dc1");
    assert_eq!(dcs[0]["AreaID"], "wan");
    assert_eq!(
        dcs[0]["Coordinates"][0]["Node"],
        format!("{}.dc1", agent.node)
    );
    assert_eq!(
        dcs[0]["Coordinates"][0]["Coord"]["Vec"]
            .as_array()
            .map(Vec::len),
        Some(8)
    );
    assert_eq!(get(&agent, "/v1/catalog/datacenters").2, json!(["dc1"]));
    drop(agent);

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("off.json");
    std::fs::write(&conf, r#"{"disable_coordinates": true}"#).unwrap();
    let data = tempfile::tempdir().unwrap();
    let agent = TestAgent::server_with(data.path(), &["-config-file", conf.to_str().unwrap()]);
    for path in ["/v1/coordinate/datacenters", "/v1/coordinate/nodes"] {
        let r = reqwest::blocking::get(agent.url(path)).unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path}");
        assert_eq!(r.text().unwrap(), "Coordinate support disabled");
    }
}
