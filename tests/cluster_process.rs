//! Three servers started as a tutorial starts them (built binary,
//! `-bootstrap-expect 3`, `-join`): one leader, replication, and a new
//! leader after the old one is SIGKILLed. Durations are printed, not
//! asserted.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn leader(a: &TestAgent) -> String {
    reqwest::blocking::get(a.url("/v1/status/leader"))
        .and_then(|r| r.json::<String>())
        .unwrap_or_default()
}

#[test]
fn three_servers_bootstrap_replicate_and_survive_a_leader_kill() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let started = Instant::now();
    let s1 = TestAgent::server_expect(dirs[0].path(), 3, None);
    let seed = format!("127.0.0.1:{}", s1.serf_lan);
    let s2 = TestAgent::server_expect(dirs[1].path(), 3, Some(&seed));
    let s3 = TestAgent::server_expect(dirs[2].path(), 3, Some(&seed));
    let mut servers = vec![s1, s2, s3];
    wait_for("one leader seen by all three", 30, || {
        let l = leader(&servers[0]);
        !l.is_empty() && servers.iter().all(|s| leader(s) == l)
    });
    eprintln!("start to first leader: {:?}", started.elapsed());
    for s in &servers {
        assert_eq!(
            s.get_json("/v1/status/peers").as_array().map(|a| a.len()),
            Some(3)
        );
    }
    wait_for("three nodes in the catalog", 20, || {
        servers[0]
            .get_json("/v1/catalog/nodes")
            .as_array()
            .is_some_and(|a| a.len() == 3)
    });

    // A write on any server is read everywhere.
    let client = reqwest::blocking::Client::new();
    assert_eq!(
        client
            .put(servers[1].url("/v1/kv/k1"))
            .body("v1")
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "true"
    );
    for s in &servers {
        wait_for("k1 replicated", 10, || {
            reqwest::blocking::get(s.url("/v1/kv/k1?stale&raw"))
                .and_then(|r| r.text())
                .is_ok_and(|t| t == "v1")
        });
    }

    // A client agent joins and sends its requests to the servers over RPC:
    // a write on the client is readable on every server, and back.
    let cdir = tempfile::tempdir().unwrap();
    let client_agent = TestAgent::client(cdir.path(), &seed);
    wait_for("the client reaches a server", 20, || {
        client
            .put(client_agent.url("/v1/kv/from-client"))
            .body("c")
            .send()
            .and_then(|r| r.text())
            .is_ok_and(|t| t == "true")
    });
    for s in &servers {
        wait_for("client write replicated", 10, || {
            reqwest::blocking::get(s.url("/v1/kv/from-client?stale&raw"))
                .and_then(|r| r.text())
                .is_ok_and(|t| t == "c")
        });
    }
    assert_eq!(
        reqwest::blocking::get(client_agent.url("/v1/kv/k1?raw"))
            .unwrap()
            .text()
            .unwrap(),
        "v1"
    );
    wait_for("four nodes in the catalog", 20, || {
        servers[0]
            .get_json("/v1/catalog/nodes")
            .as_array()
            .is_some_and(|a| a.len() == 4)
    });
    let members = stdout(&client_agent.cli(&["members"]));
    assert_eq!(members.lines().count(), 5, "{members}");

    // SIGKILL the leader: the other two elect a new one and writes resume.
    let old = leader(&servers[0]);
    let li = servers
        .iter()
        .position(|s| s.get_json("/v1/agent/self")["Stats"]["consul"]["leader"] == "true")
        .expect("a leader");
    servers[li].kill();
    let killed_at = Instant::now();
    let rest: Vec<usize> = (0..3).filter(|i| *i != li).collect();
    let mut acked = None;
    while killed_at.elapsed() < Duration::from_secs(30) {
        let r = client
            .put(servers[rest[0]].url("/v1/kv/k2"))
            .body("after")
            .timeout(Duration::from_secs(2))
            .send();
        if r.and_then(|r| r.text()).is_ok_and(|t| t == "true") {
            acked = Some(killed_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let acked = acked.expect("a write acknowledged after the leader was killed");
    eprintln!("leader SIGKILL to next acknowledged write: {acked:?}");
    let new = leader(&servers[rest[0]]);
    assert!(
        !new.is_empty() && new != old,
        "new leader {new} (old {old})"
    );

    // The killed server restarts and catches up.
    servers[li].restart_no_wait();
    wait_for("restarted server catches up", 30, || {
        reqwest::blocking::get(servers[li].url("/v1/kv/k2?stale&raw"))
            .and_then(|r| r.text())
            .is_ok_and(|t| t == "after")
    });
}
