//! The KV Meridian extensions on three servers started as a user starts
//! them: TTL keys (gone on every server after their TTL, kept while
//! rewritten, gone within twice their TTL across a SIGKILLed leader) and
//! changed-key reads and watches over 1,000 keys.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{json, Value};

fn put(http: &reqwest::blocking::Client, s: &TestAgent, path: &str, body: &str) -> (u16, String) {
    let r = http
        .put(s.url(path))
        .body(body.to_string())
        .send()
        .expect("PUT");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

/// Whether `key` is still there as this server's own state says.
fn present(http: &reqwest::blocking::Client, s: &TestAgent, key: &str) -> bool {
    http.get(s.url(&format!("/v1/kv/{key}?stale")))
        .send()
        .map(|r| r.status().as_u16() == 200)
        .unwrap_or(true)
}

#[test]
fn ttl_keys_expire_on_every_server_unless_rewritten_and_across_a_leader_kill() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = three_servers(&dirs);
    let http = reqwest::blocking::Client::new();
    let s0 = &servers[0];

    // Bounds, named in the answer.
    for bad in ["500ms", "25h", "soon"] {
        let (status, body) = put(&http, s0, &format!("/v1/kv/t/bad?ttl={bad}"), "v");
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("ttl"), "{bad}: {body}");
    }
    let (status, body) = put(
        &http,
        s0,
        "/v1/txn",
        r#"[{"KV":{"Verb":"set","Key":"t/bad","Value":"dg==","TTL":"1ms"}}]"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("TTL"), "{body}");

    let started = Instant::now();
    assert_eq!(
        put(&http, s0, "/v1/kv/t/gone?ttl=3s", "v"),
        (200, "true".into())
    );
    assert_eq!(
        put(&http, s0, "/v1/kv/t/kept?ttl=3s", "v"),
        (200, "true".into())
    );
    // Through the CLI and a transaction too.
    let out = servers[1].cli(&["kv", "put", "-ttl=3s", "t/cli", "v"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (status, body) = put(
        &http,
        s0,
        "/v1/txn",
        r#"[{"KV":{"Verb":"set","Key":"t/txn","Value":"dg==","TTL":"3s"}}]"#,
    );
    assert_eq!(status, 200, "{body}");
    // A TTL key that loses its TTL in a rewrite stays.
    assert_eq!(
        put(&http, s0, "/v1/kv/t/cleared?ttl=3s", "v"),
        (200, "true".into())
    );
    assert_eq!(
        put(&http, s0, "/v1/kv/t/cleared", "v2"),
        (200, "true".into())
    );

    let e = s0.get_json("/v1/kv/t/gone");
    assert_eq!(e[0]["TTL"], "3s", "{e}");
    assert!(s0.get_json("/v1/kv/t/cleared")[0].get("TTL").is_none());

    // t/kept is rewritten every second for 5 s: it outlives its TTL.
    while started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(
            put(&http, s0, "/v1/kv/t/kept?ttl=3s", "v"),
            (200, "true".into())
        );
    }
    for s in &servers {
        assert!(present(&http, s, "t/kept"), "rewritten before expiry: kept");
        assert!(present(&http, s, "t/cleared"), "no TTL any more: kept");
    }
    wait_for("the unrewritten TTL keys gone on every server", 10, || {
        servers.iter().all(|s| {
            ["t/gone", "t/cli", "t/txn"]
                .iter()
                .all(|k| !present(&http, s, k))
        })
    });
    eprintln!("3 s TTL keys gone everywhere after {:?}", started.elapsed());
    // Left alone now, t/kept goes too.
    wait_for("t/kept gone once no longer rewritten", 10, || {
        servers.iter().all(|s| !present(&http, s, "t/kept"))
    });

    // Across a leader kill: a 10 s key is gone within 20 s.
    let li = leader_index(&servers).expect("a leader");
    let alive = (li + 1) % 3;
    assert_eq!(
        put(&http, &servers[alive], "/v1/kv/t/failover?ttl=10s", "v"),
        (200, "true".into())
    );
    let written = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    servers[li].kill();
    while present(&http, &servers[alive], "t/failover") {
        assert!(
            written.elapsed() < Duration::from_secs(20),
            "the key outlived twice its TTL across the leader kill"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "10 s TTL key with a leader kill at 3 s deleted after {:?}",
        written.elapsed()
    );
    let other = 3 - li - alive;
    wait_for("gone on the other survivor too", 10, || {
        !present(&http, &servers[other], "t/failover")
    });
}

#[test]
fn a_changed_key_read_and_watch_over_1000_keys_see_exactly_the_changes() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let servers = three_servers(&dirs);
    let http = reqwest::blocking::Client::new();
    let v = base64::engine::general_purpose::STANDARD.encode("v");
    for chunk in (0..1000).collect::<Vec<u32>>().chunks(64) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"KV": {"Verb": "set", "Key": format!("w/{i:04}"), "Value": v}}))
            .collect();
        let (status, body) = put(
            &http,
            &servers[0],
            "/v1/txn",
            &Value::Array(ops).to_string(),
        );
        assert_eq!(status, 200, "{body}");
    }
    let r = http
        .get(servers[1].url("/v1/kv/w/?recurse"))
        .send()
        .unwrap();
    let index: u64 = r.headers()["X-Consul-Index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(r.json::<Value>().unwrap().as_array().unwrap().len(), 1000);

    // A changes-only watch, through the CLI: one file per handler run.
    let out_dir = tempfile::tempdir().unwrap();
    let handler = format!("cat > {}/$CONSUL_INDEX.json", out_dir.path().display());
    let mut watch = std::process::Command::new(agent_bin())
        .args([
            "watch",
            "-type",
            "keyprefix",
            "-prefix",
            "w/",
            "-changes-only",
            &handler,
        ])
        .env("MERIDIAN_HTTP_ADDR", &servers[2].http)
        .env_remove("CONSUL_HTTP_ADDR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let runs = |dir: &std::path::Path| -> Vec<(u64, Value)> {
        let mut v: Vec<(u64, Value)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let i = e.path().file_stem()?.to_str()?.parse().ok()?;
                let body = std::fs::read(e.path()).ok()?;
                Some((i, serde_json::from_slice(&body).ok()?))
            })
            .collect();
        v.sort_by_key(|(i, _)| *i);
        v
    };
    wait_for("the watch's first run, the whole prefix", 30, || {
        runs(out_dir.path())
            .first()
            .is_some_and(|(_, v)| v.as_array().map(Vec::len) == Some(1000))
    });

    // Two writes and a delete, in one transaction (one index), and a
    // write outside the prefix.
    let ops = json!([
        {"KV": {"Verb": "set", "Key": "w/0007", "Value": base64::engine::general_purpose::STANDARD.encode("new")}},
        {"KV": {"Verb": "set", "Key": "w/1000", "Value": v}},
        {"KV": {"Verb": "delete", "Key": "w/0500"}},
    ]);
    assert_eq!(put(&http, &servers[0], "/v1/txn", &ops.to_string()).0, 200);
    assert_eq!(put(&http, &servers[0], "/v1/kv/other", "x").0, 200);

    let r = http
        .get(servers[1].url(&format!("/v1/kv/w/?recurse&changes&index={index}")))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let rows: Value = r.json().unwrap();
    let rows = rows.as_array().unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r["Key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["w/0007", "w/0500", "w/1000"], "{rows:?}");
    assert_eq!(rows[1]["Deleted"], true);
    assert!(rows[0].get("Deleted").is_none());
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(rows[0]["Value"].as_str().unwrap())
            .unwrap(),
        b"new"
    );

    wait_for("the watch's second run, the changes only", 30, || {
        runs(out_dir.path()).len() >= 2
    });
    let all = runs(out_dir.path());
    let second = all[1].1.as_array().unwrap();
    let keys: Vec<&str> = second.iter().map(|r| r["Key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["w/0007", "w/0500", "w/1000"], "{second:?}");
    assert_eq!(second[1]["Deleted"], true);
    assert_eq!(all.len(), 2, "the write outside the prefix ran nothing");

    // Parameter errors name the parameter.
    let r = http
        .get(servers[0].url("/v1/kv/w/?changes&index=1"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().contains("changes"));
    let r = http
        .get(servers[0].url("/v1/kv/w/?recurse&changes"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().contains("index"));

    let _ = watch.kill();
    let _ = watch.wait();
}

/// With tombstones reaped after 1 s, a changed-key read from before the
/// reap is refused: 409, the floor in a header, and a text that says
/// what to do.
#[test]
fn a_changed_key_read_older_than_the_reaped_tombstones_is_a_409() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestAgent::server_with_env(dir.path(), &[], &[("MERIDIAN_TOMBSTONE_TTL", "1s")]);
    let http = reqwest::blocking::Client::new();
    for k in ["r/a", "r/b", "r/c"] {
        assert_eq!(put(&http, &s, &format!("/v1/kv/{k}"), "v").0, 200);
    }
    let r = http.get(s.url("/v1/kv/r/?recurse")).send().unwrap();
    let index: u64 = r.headers()["X-Consul-Index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        http.delete(s.url("/v1/kv/r/b"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    wait_for("the tombstone reaped", 20, || {
        let r = http
            .get(s.url(&format!("/v1/kv/r/?recurse&changes&index={index}")))
            .send()
            .unwrap();
        r.status().as_u16() == 409
            && r.headers().contains_key("X-Meridian-Changes-Floor")
            && r.text().unwrap().contains("read the prefix in full")
    });
}
