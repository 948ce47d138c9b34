//! Gossip key rotation on a running cluster, with the built binary:
//! three servers and a client with `encrypt`; `meridian keyring`
//! installs a key everywhere, makes it primary, removes the old one;
//! the pool keeps gossiping, a new member with only the new key joins,
//! and a restarted member comes back with the new key from its
//! `serf/local.keyring` (ignoring its stale `-encrypt`). The HTTP shape
//! and the refusals are checked with curl.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{stderr, stdout, three_servers_with, wait_for, TestAgent, BIN};
use serde_json::Value;

fn keygen() -> String {
    let out = Command::new(BIN).arg("keygen").output().expect("keygen");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn keyring_file(dir: &Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("serf").join(name))
        .unwrap_or_else(|e| panic!("{name} in {}: {e}", dir.display()));
    serde_json::from_str(&text).expect("a JSON array of keys")
}

/// `curl -s -X METHOD` with an optional body: (status, body).
fn curl(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-m", "20", "-X", method, "-w", "\n%{http_code}", url]);
    if let Some(b) = body {
        c.args(["-d", b]);
    }
    let out = c.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn alive_members(a: &TestAgent) -> usize {
    reqwest::blocking::get(a.url("/v1/agent/members"))
        .and_then(|r| r.json::<Vec<Value>>())
        .map(|m| m.iter().filter(|m| m["Status"] == 1).count())
        .unwrap_or(0)
}

/// The pools of a list: (WAN, LAN).
fn list(a: &TestAgent) -> (Value, Value) {
    let (code, body) = curl("GET", &a.url("/v1/operator/keyring"), None);
    assert_eq!(code, 200, "{body}");
    let pools: Vec<Value> = serde_json::from_str(&body).expect("json");
    assert_eq!(pools.len(), 2, "{body}");
    let wan = pools
        .iter()
        .find(|p| p["WAN"] == true)
        .expect("a WAN pool")
        .clone();
    let lan = pools
        .iter()
        .find(|p| p["WAN"] == false)
        .expect("a LAN pool")
        .clone();
    (wan, lan)
}

#[test]
fn keys_rotate_across_servers_and_clients_and_outlive_a_restart() {
    let (old, new) = (keygen(), keygen());
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let servers = three_servers_with(&dirs[..3], &["-encrypt", &old]);
    let seed = format!("127.0.0.1:{}", servers[0].serf_lan);
    // Servers of one datacenter meet in the WAN pool by an explicit join.
    for s in &servers[1..] {
        let wan = format!("127.0.0.1:{}", servers[0].serf_wan);
        let (code, body) = curl("PUT", &s.url(&format!("/v1/agent/join/{wan}?wan=1")), None);
        assert_eq!(code, 200, "{body}");
    }
    let mut client = TestAgent::client_with(dirs[3].path(), &seed, &["-encrypt", &old]);
    wait_for("four live LAN members", 20, || alive_members(&client) == 4);
    wait_for("three live WAN members", 20, || {
        reqwest::blocking::get(servers[0].url("/v1/agent/members?wan=1"))
            .and_then(|r| r.json::<Vec<Value>>())
            .is_ok_and(|m| m.iter().filter(|m| m["Status"] == 1).count() == 3)
    });
    // `encrypt` with no keyring file yet writes one.
    assert_eq!(
        keyring_file(dirs[3].path(), "local.keyring"),
        vec![old.clone()]
    );
    assert_eq!(
        keyring_file(dirs[0].path(), "remote.keyring"),
        vec![old.clone()]
    );

    let s = &servers[0];
    let out = s.cli(&["keyring", "-install", &new]);
    assert!(
        out.status.success(),
        "install: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("==> Installing new gossip encryption key..."));
    let (wan, lan) = list(s);
    assert_eq!(lan["NumNodes"], 4, "{lan}");
    assert_eq!(lan["Keys"][&new], 4, "{lan}");
    assert_eq!(lan["Keys"][&old], 4, "{lan}");
    assert_eq!(lan["PrimaryKeys"][&old], 4, "{lan}");
    assert_eq!(lan["Datacenter"], "dc1");
    assert_eq!(wan["NumNodes"], 3, "{wan}");
    assert_eq!(wan["Keys"][&new], 3, "{wan}");
    let out = s.cli(&["keyring", "-list"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.starts_with("==> Gathering installed encryption keys...\n"),
        "{text}"
    );
    for line in [
        "\nWAN:\n",
        "\ndc1 (LAN):\n",
        &format!("  {new} [4/4]\n"),
        &format!("  {new} [3/3]\n"),
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }

    // The primary cannot go: every member refuses, and says why.
    let out = s.cli(&["keyring", "-remove", &old]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Removing the primary key is not allowed"),
        "{}",
        stderr(&out)
    );
    let body = format!(r#"{{"Key": "{old}"}}"#);
    let (code, text) = curl("DELETE", &s.url("/v1/operator/keyring"), Some(&body));
    assert_eq!(code, 500, "{text}");
    assert!(
        text.contains("dc1 (LAN) error: 4/4 nodes reported failure"),
        "{text}"
    );
    assert!(
        text.contains("WAN error: 3/3 nodes reported failure"),
        "{text}"
    );
    // A key that is no key is refused before it reaches anyone.
    let (code, text) = curl(
        "POST",
        &s.url("/v1/operator/keyring"),
        Some(r#"{"Key": "AAAA"}"#),
    );
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("Invalid key"), "{text}");
    let (code, text) = curl(
        "PUT",
        &s.url("/v1/operator/keyring?local-only=true"),
        Some(&body),
    );
    assert_eq!(code, 400, "{text}");
    // Only servers hold both pools, as in Consul.
    let (code, text) = curl("GET", &client.url("/v1/operator/keyring"), None);
    assert_eq!(
        (code, text.as_str()),
        (500, "keyring operations must run against a server node")
    );

    // Use through a follower, with relayed answers.
    let out = servers[2].cli(&["keyring", "-use", &new, "-relay-factor", "2"]);
    assert!(
        out.status.success(),
        "use: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let (wan, lan) = list(s);
    assert_eq!(lan["PrimaryKeys"][&new], 4, "{lan}");
    assert_eq!(wan["PrimaryKeys"][&new], 3, "{wan}");
    let out = s.cli(&["keyring", "-remove", &old]);
    assert!(
        out.status.success(),
        "remove: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let (wan, lan) = list(s);
    assert_eq!(lan["Keys"].as_object().map(|k| k.len()), Some(1), "{lan}");
    assert_eq!(lan["Keys"][&new], 4, "{lan}");
    assert_eq!(wan["Keys"][&new], 3, "{wan}");
    let out = s.cli(&["keyring", "-list", "-local-only"]);
    assert!(!stdout(&out).contains("WAN:"), "{}", stdout(&out));
    assert_eq!(
        keyring_file(dirs[3].path(), "local.keyring"),
        vec![new.clone()]
    );
    assert_eq!(
        keyring_file(dirs[1].path(), "remote.keyring"),
        vec![new.clone()]
    );

    // Gossip goes on under the new key alone: longer than failure
    // detection takes, every member stays alive, and a write reaches
    // the client's reads.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(alive_members(&client), 4);
    assert_eq!(alive_members(&servers[1]), 4);
    let (code, _) = curl("PUT", &s.url("/v1/kv/rotated"), Some("yes"));
    assert_eq!(code, 200);
    wait_for("the client reads the write", 10, || {
        curl("GET", &client.url("/v1/kv/rotated?raw"), None) == (200, "yes".into())
    });
    // A newcomer with only the new key joins.
    let newcomer = TestAgent::client_with(dirs[4].path(), &seed, &["-encrypt", &new]);
    wait_for("five live members", 20, || alive_members(&servers[1]) == 5);

    // A restart keeps the rotation: its local.keyring wins over the stale
    // `-encrypt` it is started with again, and it rejoins.
    client.restart();
    assert!(
        client
            .log_text()
            .contains("WARNING: LAN keyring exists but -encrypt given, using keyring"),
        "{}",
        client.log_tail()
    );
    wait_for("the restarted client is back", 20, || {
        alive_members(&client) == 5 && alive_members(&newcomer) == 5
    });
    wait_for("the restarted client reads", 10, || {
        curl("GET", &client.url("/v1/kv/rotated?raw"), None) == (200, "yes".into())
    });
    let (_, lan) = list(s);
    assert_eq!(lan["Keys"][&new], 5, "{lan}");
}

/// Consul's list covers the LAN pool of every datacenter: a rotation
/// asked of dc1 reaches dc2's LAN pool through dc2's server, and
/// `-local-only` keeps to dc1's.
#[test]
fn a_rotation_reaches_every_datacenters_lan_pool() {
    let (old, new) = (keygen(), keygen());
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dc1 = TestAgent::server_with(dirs[0].path(), &["-datacenter", "dc1", "-encrypt", &old]);
    let wan = format!("127.0.0.1:{}", dc1.serf_wan);
    let dc2 = TestAgent::server_with(
        dirs[1].path(),
        &[
            "-datacenter",
            "dc2",
            "-encrypt",
            &old,
            "-retry-join-wan",
            &wan,
        ],
    );
    let lan2 = format!("127.0.0.1:{}", dc2.serf_lan);
    let client2 = TestAgent::client_with(
        dirs[2].path(),
        &lan2,
        &["-datacenter", "dc2", "-encrypt", &old],
    );
    wait_for("dc2 known to dc1", 20, || {
        reqwest::blocking::get(dc1.url("/v1/catalog/datacenters"))
            .and_then(|r| r.json::<Vec<String>>())
            .is_ok_and(|d| d.len() == 2)
    });
    wait_for("dc2's client in its pool", 20, || {
        alive_members(&client2) == 2
    });

    let out = dc1.cli(&["keyring", "-install", &new]);
    assert!(
        out.status.success(),
        "install: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let (code, body) = curl("GET", &dc1.url("/v1/operator/keyring"), None);
    assert_eq!(code, 200, "{body}");
    let pools: Vec<Value> = serde_json::from_str(&body).expect("json");
    let pool = |wan: bool, dc: &str| {
        pools
            .iter()
            .find(|p| p["WAN"] == wan && p["Datacenter"] == dc)
            .unwrap_or_else(|| panic!("no pool WAN={wan} {dc} in {body}"))
    };
    assert_eq!(pools.len(), 3, "{body}");
    assert_eq!(pool(true, "dc1")["Keys"][&new], 2, "{body}");
    assert_eq!(pool(false, "dc1")["Keys"][&new], 1, "{body}");
    assert_eq!(pool(false, "dc2")["Keys"][&new], 2, "{body}");
    assert_eq!(pool(false, "dc2")["NumNodes"], 2, "{body}");
    assert_eq!(
        keyring_file(dirs[2].path(), "local.keyring"),
        vec![old.clone(), new.clone()]
    );

    let (code, body) = curl("GET", &dc1.url("/v1/operator/keyring?local-only=1"), None);
    assert_eq!(code, 200, "{body}");
    let pools: Vec<Value> = serde_json::from_str(&body).expect("json");
    assert_eq!(pools.len(), 1, "{body}");
    assert_eq!(
        (&pools[0]["WAN"], &pools[0]["Datacenter"]),
        (&Value::Bool(false), &Value::from("dc1"))
    );
}
