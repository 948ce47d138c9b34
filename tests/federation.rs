//! Datacenters federated over the WAN pool, each its own Raft group,
//! started as built binaries: forwarding of KV, catalog and health with
//! `?dc=`, blocking queries across datacenters, unknown and unreachable
//! datacenters, recovery, and no KV replication; and every HTTP endpoint
//! that takes `?dc=`, asked from a server and from a client agent of the
//! other datacenter. Durations are printed.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn get(url: &str) -> (u16, String, Option<String>) {
    let r = reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .expect("an answer");
    let index = r
        .headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    (r.status().as_u16(), r.text().unwrap_or_default(), index)
}

fn put(url: &str, body: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .put(url)
        .body(body.to_string())
        .timeout(Duration::from_secs(30))
        .send()
        .expect("an answer");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

fn delete(url: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .delete(url)
        .timeout(Duration::from_secs(30))
        .send()
        .expect("an answer");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

/// GET with the body as bytes (snapshot archives).
fn get_bytes(url: &str) -> (u16, Vec<u8>) {
    let r = reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .expect("an answer");
    (
        r.status().as_u16(),
        r.bytes().map(|b| b.to_vec()).unwrap_or_default(),
    )
}

fn put_bytes(url: &str, body: Vec<u8>) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .put(url)
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .expect("an answer");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// dc1 and dc2, one server each, joined over the WAN pool (dc2 retries
/// the join every second), and a client agent of dc1.
struct TwoDcs {
    dc1: TestAgent,
    dc2: TestAgent,
    client: TestAgent,
    /// Declared last: dropped after the agents are killed.
    dirs: Vec<tempfile::TempDir>,
}

/// Starts `TwoDcs` and returns once dc1's server and its client both
/// reach dc2 with `?dc=dc2`.
fn two_datacenters() -> TwoDcs {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dc1 = TestAgent::server_with(dirs[0].path(), &["-datacenter", "dc1"]);
    let wan = format!("127.0.0.1:{}", dc1.serf_wan);
    let dc2 = TestAgent::server_with(
        dirs[1].path(),
        &[
            "-datacenter",
            "dc2",
            "-retry-join-wan",
            &wan,
            "-retry-interval-wan",
            "1s",
        ],
    );
    let client = TestAgent::client_with(
        dirs[2].path(),
        &format!("127.0.0.1:{}", dc1.serf_lan),
        &["-datacenter", "dc1"],
    );
    wait_for("dc1's server and client reach dc2", 30, || {
        [&dc1, &client]
            .iter()
            .all(|a| get(&a.url("/v1/catalog/nodes?dc=dc2")).0 == 200)
    });
    TwoDcs {
        dc1,
        dc2,
        client,
        dirs,
    }
}

#[test]
fn three_datacenters_forward_by_dc_and_keep_their_own_data() {
    // `dirs` first: bindings drop in reverse, so the directories outlive the agents.
    let TwoDcs {
        dirs: _dirs,
        dc1,
        mut dc2,
        client,
    } = two_datacenters();
    let wan = format!("127.0.0.1:{}", dc1.serf_wan);
    let dc3_dir = tempfile::tempdir().unwrap();
    let dc3 = TestAgent::server_with(dc3_dir.path(), &["-datacenter", "DC3", "-join-wan", &wan]);

    // Every server sees the three in the WAN pool, as NODE.DC.
    wait_for("three servers in the WAN pool", 20, || {
        let out = stdout(&dc3.cli(&["members", "-wan"]));
        out.lines().skip(1).filter(|l| l.contains("alive")).count() == 3
    });
    let out = stdout(&dc1.cli(&["members", "-wan"]));
    assert!(out.contains(&format!("{}.dc2", dc2.node)), "{out}");
    // Datacenters, nearest first: this one first, from a server and a client.
    wait_for("the client reaches its server", 20, || {
        get(&client.url("/v1/catalog/datacenters")).0 == 200
    });
    for a in [&dc1, &client] {
        let dcs: Vec<String> =
            serde_json::from_str(&get(&a.url("/v1/catalog/datacenters")).1).unwrap();
        assert_eq!(dcs.len(), 3, "{dcs:?}");
        assert_eq!(dcs[0], "dc1");
    }
    assert_eq!(
        stdout(&client.cli(&["catalog", "datacenters"]))
            .lines()
            .count(),
        3
    );

    // KV through a dc1 client lands in dc2 only.
    assert_eq!(
        put(&client.url("/v1/kv/app/where?dc=dc2"), "in-dc2"),
        (200, "true".into())
    );
    assert_eq!(get(&dc2.url("/v1/kv/app/where?raw")).1, "in-dc2");
    assert_eq!(get(&dc1.url("/v1/kv/app/where")).0, 404);
    assert_eq!(get(&dc3.url("/v1/kv/app/where")).0, 404);
    assert_eq!(get(&client.url("/v1/kv/app/where?dc=dc2&raw")).1, "in-dc2");
    // And a dc1 key stays in dc1.
    assert_eq!(put(&dc1.url("/v1/kv/only/dc1"), "x").0, 200);
    assert_eq!(get(&dc2.url("/v1/kv/only/dc1")).0, 404);
    // The CLI's -datacenter flag takes the same path.
    let out = client.cli(&["kv", "get", "-datacenter", "dc2", "app/where"]);
    assert_eq!(stdout(&out).trim(), "in-dc2", "{}", stderr(&out));

    // Catalog and health of dc2, asked from dc1, with dc2's index.
    assert_eq!(
        put(
            &dc2.url("/v1/agent/service/register"),
            r#"{"Name": "web", "Port": 80, "Check": {"TTL": "60s", "Status": "passing"}}"#
        )
        .0,
        200
    );
    let (_, body, _) = get(&client.url("/v1/health/service/web?dc=dc2&passing"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["Node"]["Datacenter"], "dc2", "{body}");
    assert_eq!(v[0]["Service"]["Port"], 80);
    let (_, body, remote_index) = get(&dc1.url("/v1/catalog/services?dc=dc2"));
    assert!(body.contains("web"), "{body}");
    let (_, _, dc2_index) = get(&dc2.url("/v1/catalog/services"));
    assert_eq!(
        remote_index, dc2_index,
        "the remote datacenter's X-Consul-Index"
    );
    assert!(!get(&dc1.url("/v1/catalog/services")).1.contains("web"));

    // A blocking query on dc2's key, from dc1, wakes on dc2's write.
    let (_, _, idx) = get(&client.url("/v1/kv/app/where?dc=dc2"));
    let idx = idx.unwrap();
    let url = client.url(&format!("/v1/kv/app/where?dc=dc2&index={idx}&wait=60s&raw"));
    let waiter = std::thread::spawn(move || {
        let t = Instant::now();
        (get(&url).1, t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(put(&dc2.url("/v1/kv/app/where"), "changed").0, 200);
    let (body, took) = waiter.join().unwrap();
    assert_eq!(body, "changed");
    // Woken by the write, not by its 60 s wait running out (the value
    // alone cannot tell: a timed-out query re-reads it too).
    assert!(took < Duration::from_secs(30), "woke after {took:?}");
    eprintln!("cross-DC blocking query woke {took:?} after it started");

    // Unknown datacenter: at once.
    let t = Instant::now();
    let (code, body, _) = get(&client.url("/v1/kv/x?dc=nowhere"));
    assert_eq!((code, body.trim()), (500, "No path to datacenter"));
    eprintln!("unknown datacenter answered in {:?}", t.elapsed());

    // Latency ?dc=dc2 adds over a local read (1,000 each, from dc1's server).
    let http = reqwest::blocking::Client::new();
    let measure = |path: &str| {
        let mut v: Vec<Duration> = (0..1000)
            .map(|_| {
                let t = Instant::now();
                let r = http.get(dc1.url(path)).send().unwrap();
                assert_eq!(r.status(), 200);
                let _ = r.bytes();
                t.elapsed()
            })
            .collect();
        v.sort();
        (percentile(&v, 0.5), percentile(&v, 0.99))
    };
    let local = measure("/v1/kv/only/dc1");
    let remote = measure("/v1/kv/app/where?dc=dc2");
    eprintln!(
        "KV read over 1,000 requests (debug build): local p50 {:?} p99 {:?}; ?dc=dc2 p50 {:?} p99 {:?}",
        local.0, local.1, remote.0, remote.1
    );

    // dc2 goes away: `No path to datacenter`; it comes back: forwarding resumes.
    dc2.kill();
    let down = Instant::now();
    let mut first_error = None;
    while down.elapsed() < Duration::from_secs(30) {
        let (code, body, _) = get(&dc1.url("/v1/kv/app/where?dc=dc2"));
        if code == 500 {
            assert_eq!(body.trim(), "No path to datacenter");
            first_error = Some(down.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let first_error = first_error.expect("No path to datacenter once dc2 is gone");
    eprintln!("dc2 killed to the first `No path to datacenter`: {first_error:?}");
    dc2.restart();
    let back = Instant::now();
    wait_for("forwarding to dc2 resumes", 30, || {
        get(&dc1.url("/v1/kv/app/where?dc=dc2&raw")).1 == "changed"
    });
    eprintln!(
        "dc2 restarted to the first forwarded answer: {:?}",
        back.elapsed()
    );

    // dc2 frozen (what a partition looks like from dc1: connections open,
    // nothing answers): `No path to datacenter` within the hold timeout
    // plus failure detection, never a hang; thawed, it heals by itself.
    dc2.signal_no_wait(libc::SIGSTOP);
    let cut = Instant::now();
    let mut first_error = None;
    while cut.elapsed() < Duration::from_secs(40) {
        let t = Instant::now();
        let (code, body, _) = get(&dc1.url("/v1/kv/app/where?dc=dc2"));
        assert!(
            t.elapsed() < Duration::from_secs(12),
            "a request hung {:?}",
            t.elapsed()
        );
        if code == 500 {
            assert_eq!(body.trim(), "No path to datacenter");
            first_error = Some(cut.elapsed());
            break;
        }
    }
    let first_error = first_error.expect("No path to datacenter while dc2 is frozen");
    eprintln!("dc2 frozen to the first `No path to datacenter`: {first_error:?}");
    let t = Instant::now();
    let (code, _, _) = get(&dc1.url("/v1/kv/app/where?dc=dc2"));
    eprintln!(
        "while frozen, the next request answers {code} in {:?}",
        t.elapsed()
    );
    // Thawed, it replays what queued up, is told it was declared down,
    // rejoins as a new incarnation, and forwarding heals by itself.
    dc2.signal_no_wait(libc::SIGCONT);
    let thawed = Instant::now();
    wait_for("forwarding heals after the freeze", 30, || {
        get(&dc1.url("/v1/kv/app/where?dc=dc2&raw")).1 == "changed"
    });
    eprintln!(
        "dc2 thawed to the first forwarded answer: {:?}",
        thawed.elapsed()
    );
}

/// GET: status and body (no index).
fn get_text(url: &str) -> (u16, String) {
    let (code, body, _) = get(url);
    (code, body)
}

/// The checks of a test that goes on past a failed one, so that one run
/// names every endpoint that answers wrongly; it fails at the end.
#[derive(Default)]
struct Findings {
    passed: usize,
    failed: Vec<String>,
}

impl Findings {
    fn check(&mut self, what: &str, ok: bool, got: impl std::fmt::Display) {
        if ok {
            self.passed += 1;
        } else {
            let got: String = got.to_string().chars().take(400).collect();
            eprintln!("FAILED {what}: got {got}");
            self.failed.push(format!("{what}: got {got}"));
        }
    }

    /// Exactly this status and (trimmed) body.
    fn is(&mut self, what: &str, (code, body): (u16, String), want: (u16, &str)) {
        let ok = (code, body.trim()) == want;
        self.check(
            what,
            ok,
            format!("{code} {body:?}, want {} {:?}", want.0, want.1),
        );
    }

    /// 200 and a JSON body that `ok` accepts.
    fn json(&mut self, what: &str, (code, body): (u16, String), ok: impl Fn(&Value) -> bool) {
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        self.check(what, code == 200 && ok(&v), format!("{code} {body}"));
    }

    /// Consul's answer for a datacenter nobody knows.
    fn no_path(&mut self, what: &str, (code, body): (u16, String)) {
        self.check(
            &format!("{what} ?dc=nope"),
            code == 500 && body.contains("No path to datacenter"),
            format!("{code} {body:?}, want 500 \"No path to datacenter\""),
        );
    }

    fn finish(self) {
        let total = self.passed + self.failed.len();
        eprintln!("{} of {total} checks passed", self.passed);
        assert!(
            self.failed.is_empty(),
            "{} of {total} checks failed:\n{}",
            self.failed.len(),
            self.failed.join("\n")
        );
    }
}

/// `Node` of every object in a JSON array.
fn nodes_in(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n["Node"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a JSON array holds an object whose `ID` is `id`.
fn has_id(v: &Value, id: &str) -> bool {
    v.as_array()
        .is_some_and(|a| a.iter().any(|s| s["ID"] == id))
}

/// `state.json` out of a snapshot archive (a gzipped tar).
fn snapshot_state(archive: &[u8]) -> Option<String> {
    use std::io::Read;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for e in tar.entries().ok()? {
        let mut e = e.ok()?;
        if e.path().ok()?.to_str() == Some("state.json") {
            let mut s = String::new();
            e.read_to_string(&mut s).ok()?;
            return Some(s);
        }
    }
    None
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Every endpoint that takes `?dc=`, asked of `via` (an agent of dc1)
/// for dc2: the answer must be dc2's, and writes must land in dc2 only.
/// Then the same endpoints for an unknown datacenter. `tag` keeps the
/// names one pass writes apart from the other pass's.
fn every_endpoint_for_dc2(f: &mut Findings, fed: &TwoDcs, via: &TestAgent, tag: &str) {
    let (dc1, dc2) = (&fed.dc1, &fed.dc2);
    let dc2_rpc = format!("127.0.0.1:{}", dc2.server_port);
    let dc1_rpc = format!("127.0.0.1:{}", dc1.server_port);
    let local_nodes = [dc1.node.clone(), fed.client.node.clone()];
    let is_local = |n: &String| local_nodes.contains(n);
    let at = |what: &str| format!("[via dc1 {tag}] {what}");
    let u = |path: &str| via.url(path);

    // KV reads: dc2's keys, which dc1 does not have.
    f.is(
        &at("GET /v1/kv/<key>?dc=dc2&raw"),
        get_text(&u("/v1/kv/fed/only-dc2/a?dc=dc2&raw")),
        (200, "a2"),
    );
    f.json(
        &at("GET /v1/kv/<key>?dc=dc2"),
        get_text(&u("/v1/kv/fed/only-dc2/a?dc=dc2")),
        |v| v[0]["Key"] == "fed/only-dc2/a" && v[0]["Value"] == b64("a2"),
    );
    f.json(
        &at("GET /v1/kv/<prefix>?dc=dc2&recurse"),
        get_text(&u("/v1/kv/fed/only-dc2/?dc=dc2&recurse")),
        |v| {
            let keys: Vec<&str> = v
                .as_array()
                .map(|a| a.iter().filter_map(|e| e["Key"].as_str()).collect())
                .unwrap_or_default();
            keys == ["fed/only-dc2/a", "fed/only-dc2/b"]
        },
    );
    f.json(
        &at("GET /v1/kv/<prefix>?dc=dc2&keys"),
        get_text(&u("/v1/kv/fed/?dc=dc2&keys")),
        |v| {
            let has = |k: &str| v.as_array().is_some_and(|a| a.iter().any(|x| x == k));
            has("fed/only-dc2/a") && !has("fed/only-dc1")
        },
    );
    f.is(
        &at("GET /v1/kv/<key> without ?dc= is dc1's"),
        get_text(&u("/v1/kv/fed/only-dc2/a")),
        (404, ""),
    );

    // KV writes land in dc2 and only there; the same key is also set in
    // dc1 so that a write or delete in the wrong datacenter shows.
    let key = format!("fed/w-{tag}");
    assert_eq!(put(&dc1.url(&format!("/v1/kv/{key}")), "w1").0, 200);
    f.is(
        &at("PUT /v1/kv/<key>?dc=dc2"),
        put(&u(&format!("/v1/kv/{key}?dc=dc2")), "w2"),
        (200, "true"),
    );
    let (in2, in1) = (
        get_text(&dc2.url(&format!("/v1/kv/{key}?raw"))),
        get_text(&dc1.url(&format!("/v1/kv/{key}?raw"))),
    );
    f.check(
        &at("PUT /v1/kv/<key>?dc=dc2 writes dc2's key only"),
        in2.1 == "w2" && in1.1 == "w1",
        format!("dc2 {in2:?}, dc1 {in1:?}"),
    );
    f.is(
        &at("DELETE /v1/kv/<key>?dc=dc2"),
        delete(&u(&format!("/v1/kv/{key}?dc=dc2"))),
        (200, "true"),
    );
    let (in2, in1) = (
        get_text(&dc2.url(&format!("/v1/kv/{key}?raw"))),
        get_text(&dc1.url(&format!("/v1/kv/{key}?raw"))),
    );
    f.check(
        &at("DELETE /v1/kv/<key>?dc=dc2 deletes dc2's key only"),
        in2.0 == 404 && in1.1 == "w1",
        format!("dc2 {in2:?}, dc1 {in1:?}"),
    );
    let tree = format!("fed/tree-{tag}");
    for k in ["x", "y"] {
        assert_eq!(put(&dc2.url(&format!("/v1/kv/{tree}/{k}")), "t").0, 200);
    }
    assert_eq!(put(&dc1.url(&format!("/v1/kv/{tree}/x")), "t").0, 200);
    f.is(
        &at("DELETE /v1/kv/<prefix>?dc=dc2&recurse"),
        delete(&u(&format!("/v1/kv/{tree}/?dc=dc2&recurse"))),
        (200, "true"),
    );
    let (in2, in1) = (
        get_text(&dc2.url(&format!("/v1/kv/{tree}/?recurse"))).0,
        get_text(&dc1.url(&format!("/v1/kv/{tree}/x"))).0,
    );
    f.check(
        &at("DELETE /v1/kv/<prefix>?dc=dc2&recurse deletes dc2's tree only"),
        (in2, in1) == (404, 200),
        format!("dc2 {in2}, dc1 {in1}"),
    );

    // Catalog reads.
    f.json(
        &at("GET /v1/catalog/nodes?dc=dc2"),
        get_text(&u("/v1/catalog/nodes?dc=dc2")),
        |v| {
            let n = nodes_in(v);
            n.contains(&dc2.node)
                && !n.iter().any(is_local)
                && v.as_array()
                    .is_some_and(|a| a.iter().all(|n| n["Datacenter"] == "dc2"))
        },
    );
    f.json(
        &at("GET /v1/catalog/services?dc=dc2"),
        get_text(&u("/v1/catalog/services?dc=dc2")),
        |v| v.get("dc2-web").is_some() && v.get("consul").is_some(),
    );
    f.json(
        &at("GET /v1/catalog/service/<name>?dc=dc2"),
        get_text(&u("/v1/catalog/service/dc2-web?dc=dc2")),
        |v| {
            v.as_array().map(Vec::len) == Some(1)
                && v[0]["Node"] == dc2.node.as_str()
                && v[0]["Datacenter"] == "dc2"
                && v[0]["ServicePort"] == 8080
        },
    );
    f.json(
        &at("GET /v1/catalog/service/consul?dc=dc2 (dc2's server)"),
        get_text(&u("/v1/catalog/service/consul?dc=dc2")),
        |v| nodes_in(v) == [dc2.node.clone()],
    );
    f.json(
        &at("GET /v1/catalog/node/<node>?dc=dc2"),
        get_text(&u(&format!("/v1/catalog/node/{}?dc=dc2", dc2.node))),
        |v| {
            v["Node"]["Node"] == dc2.node.as_str()
                && v["Node"]["Datacenter"] == "dc2"
                && v["Services"].get("dc2-web").is_some()
        },
    );
    // dc1's own node is not in dc2's catalog.
    f.is(
        &at("GET /v1/catalog/node/<dc1's node>?dc=dc2 (none in dc2)"),
        get_text(&u(&format!("/v1/catalog/node/{}?dc=dc2", dc1.node))),
        (200, "null"),
    );

    // Catalog writes, two ways. Consul's own HTTP handlers route register
    // and deregister by the body's `Datacenter` only (they never read
    // `?dc=`); Meridian also takes `?dc=`, and then the node it stores must
    // still say it is in dc2, as a node registered with the body's
    // `Datacenter` does.
    let ext = format!("ext-{tag}");
    let reg = json!({"Node": ext, "Address": "10.1.2.3",
                     "Service": {"Service": format!("ext-svc-{tag}"), "Port": 9}});
    f.is(
        &at("PUT /v1/catalog/register?dc=dc2"),
        put(&u("/v1/catalog/register?dc=dc2"), &reg.to_string()),
        (200, "true"),
    );
    let in2 = get_text(&dc2.url(&format!("/v1/catalog/node/{ext}")));
    f.json(
        &at("PUT /v1/catalog/register?dc=dc2 is in dc2's catalog"),
        in2.clone(),
        |v| v["Node"]["Address"] == "10.1.2.3",
    );
    f.json(
        &at("PUT /v1/catalog/register?dc=dc2 (no Datacenter in the body) makes a dc2 node"),
        in2,
        |v| v["Node"]["Datacenter"] == "dc2",
    );
    let ext_b = format!("extb-{tag}");
    f.is(
        &at("PUT /v1/catalog/register {Datacenter: dc2}"),
        put(
            &u("/v1/catalog/register"),
            &json!({"Datacenter": "dc2", "Node": ext_b, "Address": "10.1.2.4"}).to_string(),
        ),
        (200, "true"),
    );
    let (in2, in1) = (
        get_text(&dc2.url("/v1/catalog/nodes")).1,
        get_text(&dc1.url("/v1/catalog/nodes")).1,
    );
    f.check(
        &at("PUT /v1/catalog/register (both ways) lands in dc2 only"),
        in2.contains(&ext) && in2.contains(&ext_b) && !in1.contains(&ext) && !in1.contains(&ext_b),
        format!("dc2 {in2} / dc1 {in1}"),
    );
    f.json(
        &at("GET /v1/catalog/nodes?dc=dc2 shows the registered nodes"),
        get_text(&u("/v1/catalog/nodes?dc=dc2")),
        |v| {
            let n = nodes_in(v);
            n.contains(&ext) && n.contains(&ext_b)
        },
    );
    f.is(
        &at("PUT /v1/catalog/deregister?dc=dc2"),
        put(
            &u("/v1/catalog/deregister?dc=dc2"),
            &json!({"Node": ext}).to_string(),
        ),
        (200, "true"),
    );
    f.is(
        &at("PUT /v1/catalog/deregister {Datacenter: dc2}"),
        put(
            &u("/v1/catalog/deregister"),
            &json!({"Datacenter": "dc2", "Node": ext_b}).to_string(),
        ),
        (200, "true"),
    );
    let in2 = get_text(&dc2.url("/v1/catalog/nodes")).1;
    f.check(
        &at("PUT /v1/catalog/deregister (both ways) removes them from dc2"),
        !in2.contains(&ext) && !in2.contains(&ext_b) && in2.contains(&dc2.node),
        in2,
    );

    // Health.
    f.json(
        &at("GET /v1/health/service/<name>?dc=dc2"),
        get_text(&u("/v1/health/service/dc2-web?dc=dc2&passing")),
        |v| {
            v.as_array().map(Vec::len) == Some(1)
                && v[0]["Node"]["Node"] == dc2.node.as_str()
                && v[0]["Node"]["Datacenter"] == "dc2"
                && v[0]["Service"]["Port"] == 8080
                && v[0]["Checks"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["CheckID"] == "service:dc2-web"))
        },
    );
    f.json(
        &at("GET /v1/health/node/<node>?dc=dc2"),
        get_text(&u(&format!("/v1/health/node/{}?dc=dc2", dc2.node))),
        |v| {
            v.as_array().is_some_and(|a| {
                a.iter()
                    .any(|c| c["CheckID"] == "serfHealth" && c["Status"] == "passing")
                    && a.iter().all(|c| c["Node"] == dc2.node.as_str())
            })
        },
    );
    f.json(
        &at("GET /v1/health/checks/<service>?dc=dc2"),
        get_text(&u("/v1/health/checks/dc2-web?dc=dc2")),
        |v| {
            v.as_array().map(Vec::len) == Some(1)
                && v[0]["Node"] == dc2.node.as_str()
                && v[0]["ServiceName"] == "dc2-web"
                && v[0]["Status"] == "passing"
        },
    );
    f.json(
        &at("GET /v1/health/state/any?dc=dc2"),
        get_text(&u("/v1/health/state/any?dc=dc2")),
        |v| {
            let n = nodes_in(v);
            n.contains(&dc2.node) && !n.iter().any(is_local)
        },
    );

    // Sessions: made in dc2 (on dc2's server node: a session's node must
    // be in the catalog of its datacenter), read, renewed and destroyed
    // from dc1.
    let (code, body) = put(
        &u("/v1/session/create?dc=dc2"),
        &json!({"Node": dc2.node, "Name": format!("s-{tag}"), "TTL": "30s"}).to_string(),
    );
    let id = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["ID"].as_str().map(String::from));
    f.check(
        &at("PUT /v1/session/create?dc=dc2"),
        code == 200 && id.is_some(),
        format!("{code} {body}"),
    );
    if let Some(id) = id {
        let (in2, in1) = (
            get_text(&dc2.url("/v1/session/list")).1,
            get_text(&dc1.url("/v1/session/list")).1,
        );
        f.check(
            &at("PUT /v1/session/create?dc=dc2 makes it in dc2 only"),
            in2.contains(&id) && !in1.contains(&id),
            format!("dc2 {in2} / dc1 {in1}"),
        );
        f.json(
            &at("GET /v1/session/info/<id>?dc=dc2"),
            get_text(&u(&format!("/v1/session/info/{id}?dc=dc2"))),
            |v| has_id(v, &id) && v[0]["Node"] == dc2.node.as_str(),
        );
        f.json(
            &at("GET /v1/session/list?dc=dc2"),
            get_text(&u("/v1/session/list?dc=dc2")),
            |v| has_id(v, &id),
        );
        f.json(
            &at("GET /v1/session/node/<node>?dc=dc2"),
            get_text(&u(&format!("/v1/session/node/{}?dc=dc2", dc2.node))),
            |v| has_id(v, &id),
        );
        f.json(
            &at("PUT /v1/session/renew/<id>?dc=dc2"),
            put(&u(&format!("/v1/session/renew/{id}?dc=dc2")), ""),
            |v| has_id(v, &id),
        );
        f.is(
            &at("PUT /v1/session/destroy/<id>?dc=dc2"),
            put(&u(&format!("/v1/session/destroy/{id}?dc=dc2")), ""),
            (200, "true"),
        );
        let in2 = get_text(&dc2.url("/v1/session/list")).1;
        f.check(
            &at("PUT /v1/session/destroy/<id>?dc=dc2 removes it from dc2"),
            !in2.contains(&id),
            in2,
        );
    }

    // A transaction: its write lands in dc2, its read sees dc2's data.
    let txn_key = format!("fed/txn-{tag}");
    let ops = json!([
        {"KV": {"Verb": "set", "Key": txn_key, "Value": b64("t2")}},
        {"KV": {"Verb": "get", "Key": "fed/only-dc2/a"}}
    ]);
    f.json(
        &at("PUT /v1/txn?dc=dc2 (reads dc2's key)"),
        put(&u("/v1/txn?dc=dc2"), &ops.to_string()),
        |v| v["Results"][1]["KV"]["Value"] == b64("a2"),
    );
    let (in2, in1) = (
        get_text(&dc2.url(&format!("/v1/kv/{txn_key}?raw"))),
        get_text(&dc1.url(&format!("/v1/kv/{txn_key}"))).0,
    );
    f.check(
        &at("PUT /v1/txn?dc=dc2 writes in dc2 only"),
        in2.1 == "t2" && in1 == 404,
        format!("dc2 {in2:?}, dc1 {in1}"),
    );

    // A user event fired into dc2 reaches dc2's agents, not dc1's.
    let ev = format!("ev-{tag}");
    let (code, body) = put(&u(&format!("/v1/event/fire/{ev}?dc=dc2")), "payload");
    let ev_id = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["ID"].as_str().map(String::from));
    f.check(
        &at("PUT /v1/event/fire/<name>?dc=dc2"),
        code == 200 && ev_id.is_some(),
        format!("{code} {body}"),
    );
    if let Some(ev_id) = ev_id {
        let list = |a: &TestAgent| get_text(&a.url(&format!("/v1/event/list?name={ev}"))).1;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !list(dc2).contains(&ev_id) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let (in2, in1, inc) = (list(dc2), list(dc1), list(&fed.client));
        f.check(
            &at("PUT /v1/event/fire/<name>?dc=dc2 reaches dc2 only"),
            in2.contains(&ev_id) && !in1.contains(&ev_id) && !inc.contains(&ev_id),
            format!("dc2 {in2} / dc1 {in1} / dc1 client {inc}"),
        );
    }
    // `/v1/event/list` is the agent's own view, in Consul too: no `?dc=`.
    f.check(
        &at("GET /v1/event/list?dc=nope is this agent's list (no ?dc=, as in Consul)"),
        get_text(&u("/v1/event/list?dc=nope")).0 == 200,
        format!("{:?}", get_text(&u("/v1/event/list?dc=nope"))),
    );

    // Status and Raft: dc2's leader and servers, not dc1's.
    let dc2_json = format!("\"{dc2_rpc}\"");
    f.is(
        &at("GET /v1/status/leader?dc=dc2"),
        get_text(&u("/v1/status/leader?dc=dc2")),
        (200, &dc2_json),
    );
    f.json(
        &at("GET /v1/status/peers?dc=dc2"),
        get_text(&u("/v1/status/peers?dc=dc2")),
        |v| *v == json!([dc2_rpc]),
    );
    f.is(
        &at("GET /v1/status/leader?dc=dc1 (its own datacenter)"),
        get_text(&u("/v1/status/leader?dc=dc1")),
        (200, &format!("\"{dc1_rpc}\"")),
    );
    f.json(
        &at("GET /v1/operator/raft/configuration?dc=dc2"),
        get_text(&u("/v1/operator/raft/configuration?dc=dc2")),
        |v| {
            v["Servers"].as_array().map(Vec::len) == Some(1)
                && v["Servers"][0]["Node"] == dc2.node.as_str()
                && v["Servers"][0]["Address"] == dc2_rpc.as_str()
                && v["Servers"][0]["Leader"] == true
        },
    );
    f.json(
        &at("GET /v1/operator/raft/configuration?dc=dc2&stale"),
        get_text(&u("/v1/operator/raft/configuration?dc=dc2&stale")),
        |v| {
            v["Servers"][0]["Address"] == dc2_rpc.as_str()
                && v["Servers"][0]["Node"] == dc2.node.as_str()
        },
    );

    // A snapshot of dc2: its keys and nodes, none of dc1's.
    let (code, archive) = get_bytes(&u("/v1/snapshot?dc=dc2"));
    let state = snapshot_state(&archive).unwrap_or_default();
    f.check(
        &at("GET /v1/snapshot?dc=dc2"),
        code == 200
            && state.contains("fed/only-dc2/a")
            && state.contains(&dc2.node)
            && !state.contains("fed/only-dc1")
            && !local_nodes.iter().any(|n| state.contains(n.as_str())),
        format!(
            "{code}, {} bytes, state.json {} bytes{}",
            archive.len(),
            state.len(),
            if code == 200 {
                String::new()
            } else {
                format!(": {}", String::from_utf8_lossy(&archive))
            }
        ),
    );

    // An unknown datacenter, from every endpoint.
    let sid = "b4e7e8ae-1b4c-4a5c-9b8e-2f8b3d3e0c11";
    let nope_node = json!({"Datacenter": "nope", "Node": "n", "Address": "10.9.9.9"}).to_string();
    for (what, answer) in [
        (
            "GET /v1/kv/<key>",
            get_text(&u("/v1/kv/fed/only-dc1?dc=nope")),
        ),
        (
            "GET /v1/kv/<prefix>?recurse",
            get_text(&u("/v1/kv/fed/?dc=nope&recurse")),
        ),
        (
            "GET /v1/kv/<prefix>?keys",
            get_text(&u("/v1/kv/fed/?dc=nope&keys")),
        ),
        ("PUT /v1/kv/<key>", put(&u("/v1/kv/fed/nope?dc=nope"), "x")),
        (
            "DELETE /v1/kv/<key>",
            delete(&u("/v1/kv/fed/only-dc1?dc=nope")),
        ),
        (
            "DELETE /v1/kv/<prefix>?recurse",
            delete(&u("/v1/kv/fed/?dc=nope&recurse")),
        ),
        (
            "GET /v1/catalog/nodes",
            get_text(&u("/v1/catalog/nodes?dc=nope")),
        ),
        (
            "GET /v1/catalog/services",
            get_text(&u("/v1/catalog/services?dc=nope")),
        ),
        (
            "GET /v1/catalog/service/<name>",
            get_text(&u("/v1/catalog/service/consul?dc=nope")),
        ),
        (
            "GET /v1/catalog/node/<node>",
            get_text(&u(&format!("/v1/catalog/node/{}?dc=nope", dc1.node))),
        ),
        (
            "PUT /v1/catalog/register",
            put(
                &u("/v1/catalog/register?dc=nope"),
                r#"{"Node": "n", "Address": "10.9.9.9"}"#,
            ),
        ),
        (
            "PUT /v1/catalog/register {Datacenter}",
            put(&u("/v1/catalog/register"), &nope_node),
        ),
        (
            "PUT /v1/catalog/deregister",
            put(&u("/v1/catalog/deregister?dc=nope"), r#"{"Node": "n"}"#),
        ),
        (
            "PUT /v1/catalog/deregister {Datacenter}",
            put(
                &u("/v1/catalog/deregister"),
                r#"{"Datacenter": "nope", "Node": "n"}"#,
            ),
        ),
        (
            "GET /v1/health/service/<name>",
            get_text(&u("/v1/health/service/consul?dc=nope")),
        ),
        (
            "GET /v1/health/node/<node>",
            get_text(&u(&format!("/v1/health/node/{}?dc=nope", dc1.node))),
        ),
        (
            "GET /v1/health/checks/<service>",
            get_text(&u("/v1/health/checks/consul?dc=nope")),
        ),
        (
            "GET /v1/health/state/any",
            get_text(&u("/v1/health/state/any?dc=nope")),
        ),
        (
            "PUT /v1/session/create",
            put(
                &u("/v1/session/create?dc=nope"),
                &json!({"Node": dc1.node}).to_string(),
            ),
        ),
        (
            "GET /v1/session/info/<id>",
            get_text(&u(&format!("/v1/session/info/{sid}?dc=nope"))),
        ),
        (
            "GET /v1/session/list",
            get_text(&u("/v1/session/list?dc=nope")),
        ),
        (
            "GET /v1/session/node/<node>",
            get_text(&u(&format!("/v1/session/node/{}?dc=nope", dc1.node))),
        ),
        (
            "PUT /v1/session/renew/<id>",
            put(&u(&format!("/v1/session/renew/{sid}?dc=nope")), ""),
        ),
        (
            "PUT /v1/session/destroy/<id>",
            put(&u(&format!("/v1/session/destroy/{sid}?dc=nope")), ""),
        ),
        (
            "PUT /v1/txn",
            put(
                &u("/v1/txn?dc=nope"),
                r#"[{"KV": {"Verb": "get", "Key": "fed/only-dc1"}}]"#,
            ),
        ),
        (
            "PUT /v1/event/fire/<name>",
            put(&u("/v1/event/fire/nope?dc=nope"), ""),
        ),
        (
            "GET /v1/status/leader",
            get_text(&u("/v1/status/leader?dc=nope")),
        ),
        (
            "GET /v1/status/peers",
            get_text(&u("/v1/status/peers?dc=nope")),
        ),
        (
            "GET /v1/operator/raft/configuration",
            get_text(&u("/v1/operator/raft/configuration?dc=nope")),
        ),
        // A peer no Raft group has: harmless wherever it is asked.
        (
            "DELETE /v1/operator/raft/peer",
            delete(&u("/v1/operator/raft/peer?dc=nope&address=127.0.0.1:1")),
        ),
        ("GET /v1/snapshot", {
            let (c, b) = get_bytes(&u("/v1/snapshot?dc=nope"));
            (c, String::from_utf8_lossy(&b).into_owned())
        }),
    ] {
        f.no_path(&at(what), answer);
    }
    // Nothing of that reached dc1 (the KV delete above named a dc1 key).
    f.is(
        &at("?dc=nope changed nothing in dc1"),
        get_text(&dc1.url("/v1/kv/fed/only-dc1?raw")),
        (200, "a1"),
    );
}

/// Every `?dc=` endpoint, asked for dc2 of dc1's server and of dc1's
/// client agent (client -> its server -> WAN -> dc2), must answer with
/// dc2's data (keys, nodes, services, checks, sessions, leader and Raft
/// servers, snapshot) and write only into dc2; asked for a datacenter that
/// does not exist, each answers 500 `No path to datacenter`. It keeps
/// going past a wrong answer and lists every one at the end.
#[test]
fn every_dc_endpoint_answers_for_the_other_datacenter() {
    let started = Instant::now();
    let fed = two_datacenters();
    let (dc1, dc2) = (&fed.dc1, &fed.dc2);
    eprintln!("two datacenters and a client up in {:?}", started.elapsed());
    // Each server leads its own datacenter, at its own RPC address.
    assert_eq!(leader(dc1), format!("127.0.0.1:{}", dc1.server_port));
    assert_eq!(leader(dc2), format!("127.0.0.1:{}", dc2.server_port));

    // What only dc2 has (and only dc1 has), written directly.
    for (k, v) in [("fed/only-dc2/a", "a2"), ("fed/only-dc2/b", "b2")] {
        assert_eq!(put(&dc2.url(&format!("/v1/kv/{k}")), v).0, 200);
    }
    assert_eq!(put(&dc1.url("/v1/kv/fed/only-dc1"), "a1").0, 200);
    assert_eq!(
        put(
            &dc2.url("/v1/agent/service/register"),
            r#"{"Name": "dc2-web", "Port": 8080, "Check": {"TTL": "60s", "Status": "passing"}}"#
        )
        .0,
        200
    );
    wait_for("dc2-web in dc2's catalog, passing", 10, || {
        get_text(&dc2.url("/v1/health/service/dc2-web?passing"))
            .1
            .contains("dc2-web")
    });

    let mut f = Findings::default();
    let t = Instant::now();
    every_endpoint_for_dc2(&mut f, &fed, dc1, "server");
    eprintln!("every endpoint via dc1's server: {:?}", t.elapsed());
    let t = Instant::now();
    every_endpoint_for_dc2(&mut f, &fed, &fed.client, "client");
    eprintln!("every endpoint via dc1's client: {:?}", t.elapsed());

    // A snapshot of dc2 restored into dc2 from dc1: dc2 goes back to it,
    // dc1 keeps its own state.
    let (code, archive) = get_bytes(&dc1.url("/v1/snapshot?dc=dc2"));
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&archive));
    assert_eq!(put(&dc2.url("/v1/kv/fed/after-snapshot"), "x").0, 200);
    f.no_path(
        "PUT /v1/snapshot",
        put_bytes(&dc1.url("/v1/snapshot?dc=nope"), archive.clone()),
    );
    let restored = put_bytes(&dc1.url("/v1/snapshot?dc=dc2"), archive);
    f.is("PUT /v1/snapshot?dc=dc2", restored, (200, ""));
    let deadline = Instant::now() + Duration::from_secs(10);
    while get_text(&dc2.url("/v1/kv/fed/after-snapshot")).0 != 404 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (after, kept) = (
        get_text(&dc2.url("/v1/kv/fed/after-snapshot")).0,
        get_text(&dc2.url("/v1/kv/fed/only-dc2/a?raw")).1,
    );
    f.check(
        "PUT /v1/snapshot?dc=dc2 restores dc2",
        after == 404 && kept == "a2",
        format!("fed/after-snapshot {after}, fed/only-dc2/a {kept:?}"),
    );
    let (own, other) = (
        get_text(&dc1.url("/v1/kv/fed/only-dc1?raw")).1,
        get_text(&dc1.url("/v1/kv/fed/only-dc2/a")).0,
    );
    f.check(
        "PUT /v1/snapshot?dc=dc2 leaves dc1 alone",
        own == "a1" && other == 404,
        format!("fed/only-dc1 {own:?}, fed/only-dc2/a {other}"),
    );
    eprintln!("whole test: {:?}", started.elapsed());
    f.finish();
}
