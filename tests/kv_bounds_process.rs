//! What idle KV state costs a server, on the built binary: deleted keys'
//! tombstones are reaped once older than the tombstone TTL, through Raft,
//! across a restart and a snapshot, without any read's index going back;
//! and thousands of waiting blocking queries stay within a stated memory
//! bound and all wake on one write.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The TTL the tombstone test runs with (Consul's is 15 min).
const TTL: Duration = Duration::from_secs(4);

fn stat(a: &TestAgent, name: &str) -> u64 {
    a.get_json("/v1/agent/self")["Stats"]["consul"][name]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Stats.consul.{name} missing"))
}

fn raft_stat(a: &TestAgent, name: &str) -> u64 {
    a.get_json("/v1/agent/self")["Stats"]["raft"][name]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Stats.raft.{name} missing"))
}

/// `X-Consul-Index` and status of a GET.
fn index_of(a: &TestAgent, path: &str) -> (u64, u16) {
    let r = reqwest::blocking::get(a.url(path)).unwrap();
    let idx = r.headers()["X-Consul-Index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    (idx, r.status().as_u16())
}

/// A write and the index it got (the key's `ModifyIndex`).
fn put(a: &TestAgent, key: &str) -> u64 {
    let c = reqwest::blocking::Client::new();
    let r = c.put(a.url(&format!("/v1/kv/{key}"))).body("v").send();
    assert_eq!(r.unwrap().text().unwrap(), "true");
    a.get_json(&format!("/v1/kv/{key}"))[0]["ModifyIndex"]
        .as_u64()
        .unwrap()
}

/// A delete and the index it got (the table's index right after).
fn delete(a: &TestAgent, path: &str) -> u64 {
    let c = reqwest::blocking::Client::new();
    let r = c.delete(a.url(&format!("/v1/kv/{path}"))).send();
    assert_eq!(r.unwrap().text().unwrap(), "true");
    index_of(a, "/v1/kv/no-such-key-ever").0
}

#[test]
fn tombstones_are_reaped_after_the_ttl_through_raft_and_indexes_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("small-snapshots.json");
    std::fs::write(
        &conf,
        r#"{"raft_snapshot_threshold": 16, "raft_snapshot_interval": "10ms", "raft_trailing_logs": 4}"#,
    )
    .unwrap();
    let ttl = format!("{}s", TTL.as_secs());
    let mut a = TestAgent::server_with_env(
        &dir.path().join("data"),
        &["-config-file", conf.to_str().unwrap()],
        &[("MERIDIAN_TOMBSTONE_TTL", &ttl)],
    );
    put(&a, "mix/old");
    put(&a, "mix/gone");
    put(&a, "dir/a");
    put(&a, "dir/b");
    let mix_deleted = delete(&a, "mix/gone");
    let dir_deleted = delete(&a, "dir/?recurse");
    assert_eq!(stat(&a, "kv_tombstones"), 3);
    assert_eq!(index_of(&a, "/v1/kv/dir/?recurse"), (dir_deleted, 404));
    assert_eq!(index_of(&a, "/v1/kv/mix/?recurse").0, mix_deleted);

    // A restart keeps them (log replay), and the new leader gives them a
    // whole TTL from its election, as Consul's does.
    a.restart();
    let restarted = Instant::now();
    assert_eq!(stat(&a, "kv_tombstones"), 3);
    assert_eq!(index_of(&a, "/v1/kv/dir/?recurse"), (dir_deleted, 404));

    // A watcher of the deleted prefix holds the delete's index: the reap
    // must not wake it (nothing it reads changes) nor answer lower.
    let watch_url = a.url(&format!("/v1/kv/dir/?recurse&index={dir_deleted}&wait=60s"));
    let watcher = std::thread::spawn(move || {
        let r = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap()
            .get(watch_url)
            .send()
            .unwrap();
        let idx: u64 = r.headers()["X-Consul-Index"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        (idx, Instant::now())
    });

    std::thread::sleep(TTL / 2);
    assert_eq!(stat(&a, "kv_tombstones"), 3, "reaped before the TTL");
    wait_for("tombstones reaped", 30, || stat(&a, "kv_tombstones") == 0);
    let reaped_after = restarted.elapsed();
    assert!(
        reaped_after >= TTL - Duration::from_millis(500),
        "reaped {reaped_after:?} after the restart, TTL {TTL:?}"
    );
    let log = a.log_text();
    assert!(!log.contains("reaping KV tombstones failed"), "{log}");

    // Whatever a snapshot taken from here on holds comes after the reap.
    let applied_at_reap = raft_stat(&a, "applied_index");
    // mix/ now holds only `mix/old`, older than its delete: its index
    // must not fall back below the delete's.
    assert!(index_of(&a, "/v1/kv/mix/?recurse").0 >= mix_deleted);
    assert!(index_of(&a, "/v1/kv/mix/?keys").0 >= mix_deleted);
    assert_eq!(index_of(&a, "/v1/kv/dir/?recurse"), (dir_deleted, 404));

    std::thread::sleep(Duration::from_millis(500));
    assert!(!watcher.is_finished(), "the reap woke a watcher");
    let written_at = Instant::now();
    let new_dir = put(&a, "dir/c");
    let (woke_with, woke_at) = watcher.join().unwrap();
    assert_eq!(
        woke_with, new_dir,
        "the watcher sees the write after the reap"
    );
    assert!(woke_at >= written_at);

    // A snapshot taken after the reap, then a restart from it: still no
    // tombstones, and the reaped floor still holds mix/ up.
    for i in 0.. {
        if raft_stat(&a, "last_snapshot_index") > applied_at_reap {
            break;
        }
        assert!(i < 100, "no snapshot after 100 writes");
        put(&a, &format!("filler/{i}"));
    }
    a.restart();
    assert_eq!(stat(&a, "kv_tombstones"), 0);
    assert!(index_of(&a, "/v1/kv/mix/?recurse").0 >= mix_deleted);
    assert_eq!(index_of(&a, "/v1/kv/dir/?recurse").0, new_dir);
}

#[test]
fn every_server_drops_the_same_tombstones() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ttl = format!("{}s", TTL.as_secs());
    let servers = three_servers_with_env(&dirs, &[], &[("MERIDIAN_TOMBSTONE_TTL", &ttl)]);
    let leader = leader_index(&servers).expect("a leader");
    let l = &servers[leader];
    for i in 0..5 {
        put(l, &format!("gone/{i}"));
    }
    put(l, "kept");
    delete(l, "gone/?recurse");
    // Followers apply the deletes from the log: the same tombstones.
    for s in &servers {
        wait_for("the deletes replicated", 10, || {
            stat(s, "kv_tombstones") == 5
        });
    }
    // Only the leader's reap entry can remove them from a follower.
    for s in &servers {
        wait_for("tombstones reaped on every server", 30, || {
            stat(s, "kv_tombstones") == 0
        });
    }
    assert_eq!(stat(l, "kv_tombstones"), 0);
}

/// The stated bound on what one waiting blocking query costs its server,
/// its HTTP/1.1 connection included (RSS growth per watcher; the
/// measurements behind it are in BENCHMARKS.md, "Blocking queries").
const BYTES_PER_WATCHER: u64 = 32 * 1024;

/// `meridian bench -workload watchers` against `a`, as a user runs it;
/// its JSON report.
fn watchers_bench(
    a: &TestAgent,
    dir: &std::path::Path,
    n: usize,
    keys: usize,
    value_size: usize,
) -> serde_json::Value {
    let json = dir.join(format!("watchers-{n}-{keys}.json"));
    let pid = a.pid().unwrap().to_string();
    let (n, keys, size) = (n.to_string(), keys.to_string(), value_size.to_string());
    let out = std::process::Command::new(BIN)
        .args(["bench", "-workload", "watchers", "-c", &n, "-keys", &keys])
        .args(["-value-size", &size])
        .args(["-addr", &a.http, "-pids", &pid, "-timeout", "90s", "-json"])
        .arg(&json)
        .output()
        .unwrap();
    eprintln!("{}", stdout(&out));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
}

#[test]
fn five_thousand_waiting_queries_fit_the_bound_and_one_write_wakes_them_all() {
    let dir = tempfile::tempdir().unwrap();
    // One client, 5,000 connections: over Consul's 200 per client.
    let conf = dir.path().join("conns.json");
    std::fs::write(&conf, r#"{"limits": {"http_max_conns_per_client": 12000}}"#).unwrap();
    let a = TestAgent::server_with(
        &dir.path().join("data"),
        &["-config-file", conf.to_str().unwrap()],
    );
    // One key each, then all on one key whose value (32 KiB) a waiting
    // query must not keep a copy of.
    for (n, keys, value) in [(5000, 5000, 128), (5000, 1, 32 * 1024)] {
        let r = watchers_bench(&a, dir.path(), n, keys, value);
        assert_eq!(r["woken"], n, "{r}");
        let per = r["bytes_per_watcher"].as_u64().unwrap();
        assert!(
            per <= BYTES_PER_WATCHER,
            "{per} B per waiting query on {keys} key(s), bound {BYTES_PER_WATCHER}: {r}"
        );
        assert!(r["wake"]["max_ms"].as_f64().unwrap() < 30_000.0, "{r}");
        wait_for("no query left waiting", 30, || {
            stat(&a, "queries_blocking") == 0
        });
    }
}
