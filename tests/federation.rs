//! Datacenters federated over the WAN pool, each its own Raft group,
//! started as built binaries: forwarding of KV, catalog and health with
//! `?dc=`, blocking queries across datacenters, unknown and unreachable
//! datacenters, recovery, and no KV replication. Durations are printed.

mod common;

use std::time::{Duration, Instant};

use common::*;

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
