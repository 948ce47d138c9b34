//! Three servers started as a tutorial starts them (built binary,
//! `-bootstrap-expect 3`, `-join`): one leader, replication, and a new
//! leader after the old one is SIGKILLed. Durations are printed; only
//! the failover across leader kills has a bound (2 s), for the stall it
//! once had.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn three_servers_bootstrap_replicate_and_survive_a_leader_kill() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = three_servers(&dirs);
    let seed = format!("127.0.0.1:{}", servers[0].serf_lan);
    // One server initializes the set; three initializing at once stood
    // for election together and split term 1's votes about one time in six.
    let initialized = servers
        .iter()
        .filter(|s| s.log_text().contains("found 3 servers: bootstrapping"))
        .count();
    assert_eq!(initialized, 1, "servers that initialized Raft");
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
    // A follower: its stale reads say how long since the leader was heard
    // from, and the operator view it serves is the leader's (every
    // server's progress known).
    let li = leader_index(&servers).expect("a leader");
    let f = (li + 1) % 3;
    let r = reqwest::blocking::get(servers[f].url("/v1/kv/k1?stale")).unwrap();
    let contact: u64 = r.headers()["X-Consul-LastContact"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(contact < 5000, "last contact {contact} ms");
    assert_eq!(r.headers()["X-Consul-KnownLeader"], "true");
    wait_for(
        "every server's index in the follower's operator view",
        10,
        || {
            servers[f].get_json("/v1/operator/raft/configuration")["Servers"]
                .as_array()
                .is_some_and(|a| {
                    a.len() == 3 && a.iter().all(|s| s["LastIndex"].as_u64() > Some(0))
                })
        },
    );

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

    // An operator removes the dead server from Raft through a follower
    // (forwarded to the leader); a wrong address is named in the error.
    let now_leading = leader_index(&servers);
    let follower = rest
        .iter()
        .copied()
        .find(|i| Some(*i) != now_leading)
        .unwrap_or(rest[1]);
    let out = servers[follower].cli(&[
        "operator",
        "raft",
        "remove-peer",
        &format!("-address={old}"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("Removed peer with address \"{old}\"\n")
    );
    wait_for("two voters left", 10, || {
        servers[rest[0]]
            .get_json("/v1/status/peers")
            .as_array()
            .is_some_and(|a| a.len() == 2)
    });
    let out = servers[follower].cli(&["operator", "raft", "remove-peer", "-address=10.9.9.9:8300"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("address \"10.9.9.9:8300\" was not found in the Raft configuration"),
        "{}",
        stderr(&out)
    );

    // The killed server restarts, is added back as a voter and catches up.
    servers[li].restart_no_wait();
    wait_for("three voters again", 30, || {
        servers[rest[0]]
            .get_json("/v1/status/peers")
            .as_array()
            .is_some_and(|a| a.len() == 3)
    });
    wait_for("restarted server catches up", 30, || {
        reqwest::blocking::get(servers[li].url("/v1/kv/k2?stale&raw"))
            .and_then(|r| r.text())
            .is_ok_and(|t| t == "after")
    });
}

/// What one writer knows about its own key: each item `n` is appended
/// with a CAS on the key's ModifyIndex, only after item `n - 1` is in.
struct Writer {
    key: String,
    acked: Vec<u64>,
    /// Items whose write answered with an error or no answer: they may or
    /// may not have been applied.
    uncertain: Vec<u64>,
    next: u64,
}

/// `(ModifyIndex, items)` of a writer's key, from whichever server answers.
fn read_items(
    http: &reqwest::blocking::Client,
    urls: &[String],
    key: &str,
    attempt: usize,
) -> Option<(u64, Vec<u64>)> {
    let url = &urls[attempt % urls.len()];
    let r = http
        .get(format!("{url}/v1/kv/{key}"))
        .timeout(Duration::from_secs(3))
        .send()
        .ok()?;
    if r.status() == 404 {
        return Some((0, Vec::new()));
    }
    let v: serde_json::Value = r.json().ok()?;
    let entry = &v[0];
    let index = entry["ModifyIndex"].as_u64()?;
    let raw = base64_decode(entry["Value"].as_str().unwrap_or(""));
    let items = String::from_utf8(raw)
        .ok()?
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    Some((index, items))
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

impl Writer {
    /// One step: read the key, append the next item with a CAS.
    fn step(&mut self, http: &reqwest::blocking::Client, urls: &[String], attempt: usize) {
        let Some((index, items)) = read_items(http, urls, &self.key, attempt) else {
            return;
        };
        if items.contains(&self.next) {
            // An uncertain write was applied after all.
            self.next += 1;
            return;
        }
        let mut value: Vec<String> = items.iter().map(u64::to_string).collect();
        value.push(self.next.to_string());
        let url = &urls[attempt % urls.len()];
        let r = http
            .put(format!("{url}/v1/kv/{}?cas={index}", self.key))
            .body(value.join(","))
            .timeout(Duration::from_secs(10))
            .send()
            .and_then(|r| r.text());
        match r.as_deref() {
            Ok("true") => {
                self.acked.push(self.next);
                self.next += 1;
            }
            // CAS lost: an earlier uncertain write of this item got in
            // first; the next read tells.
            Ok("false") => {}
            _ => self.uncertain.push(self.next),
        }
    }
}

#[test]
fn concurrent_writers_lose_nothing_across_ten_leader_kills() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // Snapshots every 128 entries, 32 kept: a restarted server is further
    // behind than the log that is kept, so it catches up through
    // InstallSnapshot, and kills land among snapshots and purges.
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("small-snapshots.json");
    std::fs::write(
        &conf,
        r#"{"raft_snapshot_threshold": 128, "raft_snapshot_interval": "10ms", "raft_trailing_logs": 32}"#,
    )
    .unwrap();
    let mut servers = three_servers_with(&dirs, &["-config-file", conf.to_str().unwrap()]);
    let urls: Vec<String> = servers.iter().map(|s| s.url("")).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let last_ack = std::sync::Arc::new(std::sync::Mutex::new(Instant::now()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (urls, stop, last_ack) = (urls.clone(), stop.clone(), last_ack.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let mut writer = Writer {
                    key: format!("history/w{w}"),
                    acked: Vec::new(),
                    uncertain: Vec::new(),
                    next: 0,
                };
                let mut attempt = w;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let before = writer.acked.len();
                    writer.step(&http, &urls, attempt);
                    if writer.acked.len() > before {
                        *last_ack.lock().unwrap() = Instant::now();
                    } else {
                        // Try another server after any failure.
                        attempt += 1;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                writer
            })
        })
        .collect();

    let mut failovers = Vec::new();
    for kill in 0..10 {
        std::thread::sleep(Duration::from_millis(1500));
        let mut li = None;
        wait_for("a leader to kill", 30, || {
            li = leader_index(&servers);
            li.is_some()
        });
        let li = li.unwrap();
        servers[li].kill();
        let killed_at = Instant::now();
        while *last_ack.lock().unwrap() < killed_at {
            if killed_at.elapsed() > Duration::from_secs(30) {
                for (i, s) in servers.iter().enumerate() {
                    eprintln!("--- server {i} (killed: {})\n{}", i == li, s.log_tail());
                }
                if std::env::var("HOLD_ON_FAILURE").is_ok() {
                    eprintln!("HOLDING for inspection");
                    std::thread::sleep(Duration::from_secs(300));
                }
                panic!("writes did not resume within 30 s of kill {}", kill + 1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = *last_ack.lock().unwrap() - killed_at;
        eprintln!(
            "kill {}: leader SIGKILL to next acknowledged write {took:?}",
            kill + 1
        );
        failovers.push(took);
        servers[li].restart_no_wait();
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writers: Vec<Writer> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    failovers.sort();
    eprintln!(
        "failover over {} kills: median {:?}, max {:?}",
        failovers.len(),
        failovers[failovers.len() / 2],
        failovers[failovers.len() - 1]
    );
    // One or two kills in five once took ~5.4 s: a restarted old leader
    // leads its old term for a moment and took a write; its entry got no
    // answer, and when it next won an election, writes queued behind that
    // entry until the 7 s commit timeout.
    assert!(
        failovers[failovers.len() - 1] < Duration::from_secs(2),
        "a failover took {:?}: {failovers:?}",
        failovers[failovers.len() - 1]
    );
    let logs: Vec<String> = servers.iter().map(|s| s.log_text()).collect();
    let count = |what: &str| logs.iter().map(|l| l.matches(what).count()).sum::<usize>();
    let (built, installed) = (
        count("Raft snapshot built"),
        count("Raft snapshot installed"),
    );
    eprintln!("snapshots built {built}, installed from a leader {installed}");
    assert!(built > 0, "the run never crossed a snapshot");

    // Every server ends with the same history, and each key's history is
    // exactly 0..=k: every acknowledged item once, in order, nothing invented.
    let http = reqwest::blocking::Client::new();
    for w in &writers {
        let mut finals = Vec::new();
        for (i, s) in servers.iter().enumerate() {
            let mut got = None;
            wait_for("the final history on every server", 30, || {
                got = read_items(&http, &[s.url("")], &format!("{}?stale", w.key), 0)
                    .filter(|(_, items)| items.last() >= w.acked.last());
                got.is_some()
            });
            let (_, items) = got.unwrap();
            let expected: Vec<u64> = (0..items.len() as u64).collect();
            assert_eq!(
                items, expected,
                "{} on server {i}: gaps or duplicates",
                w.key
            );
            for a in &w.acked {
                assert!(items.contains(a), "{}: acknowledged item {a} lost", w.key);
            }
            // Anything beyond the last acknowledged item was an uncertain write.
            for extra in items.iter().filter(|n| **n >= w.next) {
                assert!(
                    w.uncertain.contains(extra),
                    "{}: item {extra} never sent",
                    w.key
                );
            }
            finals.push(items);
        }
        assert!(
            finals.windows(2).all(|p| p[0] == p[1]),
            "{}: servers disagree",
            w.key
        );
        eprintln!(
            "{}: {} items, {} acknowledged, {} uncertain",
            w.key,
            finals[0].len(),
            w.acked.len(),
            w.uncertain.len()
        );
    }
}

/// One PUT, with how long its answer took and what it was.
fn timed_put(url: &str, body: &str) -> (Duration, Result<(u16, String), String>) {
    let started = Instant::now();
    let r = reqwest::blocking::Client::new()
        .put(url)
        .body(body.to_string())
        .timeout(Duration::from_secs(20))
        .send()
        .and_then(|r| Ok((r.status().as_u16(), r.text()?)))
        .map_err(|e| e.to_string());
    (started.elapsed(), r)
}

#[test]
fn losing_quorum_fails_writes_fast_keeps_stale_reads_and_recovers() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = three_servers(&dirs);
    let li = leader_index(&servers).expect("a leader");
    let (_, r) = timed_put(&servers[li].url("/v1/kv/q"), "before");
    assert_eq!(r, Ok((200, "true".into())));
    for s in &servers {
        wait_for("q replicated", 10, || {
            reqwest::blocking::get(s.url("/v1/kv/q?stale&raw"))
                .and_then(|r| r.text())
                .is_ok_and(|t| t == "before")
        });
    }

    // Both followers die: the leader is left without a quorum.
    for i in (0..3).filter(|i| *i != li) {
        servers[i].kill();
    }
    let lost_at = Instant::now();
    let url = servers[li].url("/v1/kv/q");
    // Every write answers with an error (a hung one would hit the client's
    // own 20 s timeout and fail `expect`); once the leader's lease has run
    // out, it no longer claims to lead and writes say why. Durations are
    // printed, not asserted.
    let mut seen = Vec::new();
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(attempts <= 200, "never `No cluster leader`: {seen:?}");
        let (took, r) = timed_put(&url, "during");
        let (status, body) = r.expect("an answer, not a dropped connection");
        assert_eq!(status, 500, "write without quorum: {body}");
        if seen.last() != Some(&body) {
            eprintln!(
                "write without quorum, {:?} after the loss: {status} {body:?} in {took:?}",
                lost_at.elapsed()
            );
            seen.push(body.clone());
        }
        if body.trim() == "No cluster leader" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(servers[li].get_json("/v1/status/leader"), "");
    let (took, r) = timed_put(&url, "again");
    assert_eq!(
        r.map(|(_, b)| b.trim().to_string()),
        Ok("No cluster leader".into())
    );
    eprintln!("a write once the lease is gone answers in {took:?}");

    // Stale reads still answer from the surviving server; default reads say why not.
    let stale = reqwest::blocking::get(servers[li].url("/v1/kv/q?stale&raw")).unwrap();
    assert_eq!(stale.text().unwrap(), "before");
    let default = reqwest::blocking::get(servers[li].url("/v1/kv/q")).unwrap();
    assert_eq!(default.status(), 500);
    assert_eq!(default.text().unwrap().trim(), "No cluster leader");
    assert_eq!(servers[li].get_json("/v1/status/leader"), "");

    // The followers come back: a leader again, writes succeed, nothing lost.
    for i in (0..3).filter(|i| *i != li) {
        servers[i].restart_no_wait();
    }
    let back = Instant::now();
    wait_for("writes succeed once quorum is back", 30, || {
        timed_put(&url, "after").1 == Ok((200, "true".into()))
    });
    eprintln!(
        "quorum back to first acknowledged write: {:?}",
        back.elapsed()
    );
    for s in &servers {
        wait_for("the last write everywhere", 20, || {
            reqwest::blocking::get(s.url("/v1/kv/q?stale&raw"))
                .and_then(|r| r.text())
                .is_ok_and(|t| t == "after")
        });
    }
}

fn members_of(a: &TestAgent) -> Vec<(String, String)> {
    stdout(&a.cli(&["members"]))
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            Some((cols.first()?.to_string(), cols.get(2)?.to_string()))
        })
        .collect()
}

fn serf_health(a: &TestAgent, node: &str) -> Option<String> {
    let checks = reqwest::blocking::get(a.url(&format!("/v1/health/node/{node}?stale")))
        .ok()?
        .json::<serde_json::Value>()
        .ok()?;
    checks
        .as_array()?
        .iter()
        .find(|c| c["CheckID"] == "serfHealth")
        .and_then(|c| c["Status"].as_str().map(String::from))
}

/// The tutorial's cluster: two servers and a client on their own loopback
/// addresses with default ports, `-bootstrap-expect 2`, `-rejoin`,
/// `-config-dir`, gossip encrypted with a key from `meridian keygen`.
#[test]
fn tutorial_cluster_on_default_ports_with_rejoin_and_force_leave() {
    let key = {
        let out = std::process::Command::new(BIN)
            .arg("keygen")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let conf: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    std::fs::write(
        conf[2].path().join("web.json"),
        r#"{"service": {"name": "web", "port": 80}}"#,
    )
    .unwrap();
    let ip = |i: usize| format!("127.0.0.{}", 11 + i);
    let args = |i: usize, join: bool| -> Vec<String> {
        let mut a: Vec<String> = vec![
            format!("-data-dir={}", dirs[i].path().display()),
            format!("-node=n{}", i + 1),
            format!("-bind={}", ip(i)),
            format!("-client={}", ip(i)),
            format!("-config-dir={}", conf[i].path().display()),
            "-rejoin".into(),
            "-encrypt".into(),
            key.clone(),
            "-retry-interval=1s".into(),
        ];
        if i < 2 {
            a.extend(["-server".into(), "-bootstrap-expect".into(), "2".into()]);
        }
        if join {
            a.extend(["-join".into(), ip(0)]);
        }
        a
    };
    let start = |i: usize| {
        let a = args(i, true);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        TestAgent::with_args(&a, &format!("{}:8500", ip(i)), &format!("n{}", i + 1))
    };
    let started = Instant::now();
    let mut agents: Vec<TestAgent> = (0..3).map(start).collect();
    wait_for("one leader seen by all three agents", 30, || {
        let l = leader(&agents[0]);
        !l.is_empty() && agents.iter().all(|a| leader(a) == l)
    });
    eprintln!(
        "start to a leader seen by all three: {:?}",
        started.elapsed()
    );
    let l = leader(&agents[2]);
    assert!(
        l == format!("{}:8300", ip(0)) || l == format!("{}:8300", ip(1)),
        "{l}"
    );
    wait_for("members lists all three alive", 20, || {
        let m = members_of(&agents[2]);
        m.len() == 3 && m.iter().all(|(_, s)| s == "alive")
    });
    wait_for("catalog nodes lists all three", 20, || {
        stdout(&agents[0].cli(&["catalog", "nodes"]))
            .lines()
            .count()
            == 4
    });
    // A write on the client is read on both servers; its file service is in the catalog.
    let http = reqwest::blocking::Client::new();
    let put = http
        .put(agents[2].url("/v1/kv/tutorial"))
        .body("hello")
        .send()
        .unwrap();
    assert_eq!(put.text().unwrap(), "true");
    for s in &agents[..2] {
        wait_for("the client's write on both servers", 10, || {
            reqwest::blocking::get(s.url("/v1/kv/tutorial?stale&raw"))
                .and_then(|r| r.text())
                .is_ok_and(|t| t == "hello")
        });
    }
    wait_for("the client's service in the catalog", 10, || {
        agents[0]
            .get_json("/v1/catalog/service/web")
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });

    // The client is killed: failed in members, serfHealth critical.
    let snapshot = dirs[2].path().join("serf").join("local.snapshot");
    wait_for(
        "the client's member snapshot lists both servers",
        10,
        || {
            std::fs::read_to_string(&snapshot)
                .is_ok_and(|s| s.contains("127.0.0.11:8301") && s.contains("127.0.0.12:8301"))
        },
    );
    agents[2].kill();
    let killed = Instant::now();
    wait_for("the killed client seen as failed", 20, || {
        members_of(&agents[0])
            .iter()
            .any(|(n, s)| n == "n3" && s == "failed")
    });
    let failed_after = killed.elapsed();
    wait_for("serfHealth critical for the killed client", 20, || {
        serf_health(&agents[0], "n3").as_deref() == Some("critical")
    });
    eprintln!(
        "client SIGKILL to failed in members: {failed_after:?}; to critical serfHealth: {:?}",
        killed.elapsed()
    );

    // Restarted without -join, it rejoins the members it knew.
    let no_join = args(2, false);
    let no_join: Vec<&str> = no_join.iter().map(String::as_str).collect();
    agents[2].restart_with(&no_join);
    let t = Instant::now();
    while !members_of(&agents[0])
        .iter()
        .any(|(n, s)| n == "n3" && s == "alive")
    {
        if t.elapsed() > Duration::from_secs(20) {
            panic!(
                "the restarted client is not alive again without -join:\n{}\n--- n1:\n{}",
                agents[2].log_tail(),
                agents[0].log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for("serfHealth passing again", 20, || {
        serf_health(&agents[0], "n3").as_deref() == Some("passing")
    });

    // Killed again and force-left: left everywhere and out of the catalog.
    agents[2].kill();
    wait_for("failed again", 20, || {
        members_of(&agents[0])
            .iter()
            .any(|(n, s)| n == "n3" && s == "failed")
    });
    let out = agents[1].cli(&["force-leave", "n3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for s in &agents[..2] {
        wait_for("n3 left on both servers", 10, || {
            members_of(s)
                .iter()
                .any(|(n, st)| n == "n3" && st == "left")
        });
    }
    wait_for("n3 out of the catalog", 10, || {
        agents[0].get_json("/v1/catalog/node/n3").is_null()
    });
    let out = agents[1].cli(&["force-leave", "nobody"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("No node found with name 'nobody'"),
        "{}",
        stderr(&out)
    );
}

/// A 10 s TTL session with no renewal is invalidated within 20 s (2×TTL),
/// also when the leader is killed in between, and the lock it held is
/// released; a renewed one lives on.
#[test]
fn a_ttl_session_expires_within_twice_its_ttl_across_a_leader_change() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = three_servers(&dirs);
    let http = reqwest::blocking::Client::new();
    let create = |s: &TestAgent| -> String {
        let v: serde_json::Value = http
            .put(s.url("/v1/session/create"))
            .body(r#"{"Name": "ttl", "TTL": "10s", "LockDelay": "0s"}"#)
            .send()
            .and_then(|r| r.json())
            .unwrap();
        v["ID"].as_str().unwrap().to_string()
    };
    // A session needs its node in the catalog, which the leader's
    // reconcile writes a moment after it is elected ("Missing node
    // registration" before, seen under load).
    wait_for("three nodes in the catalog", 20, || {
        servers[0]
            .get_json("/v1/catalog/nodes")
            .as_array()
            .is_some_and(|a| a.len() == 3)
    });
    let li = leader_index(&servers).expect("a leader");
    let f = (li + 1) % 3;
    let lapsed = create(&servers[f]);
    let renewed = create(&servers[f]);
    let created = Instant::now();
    let r = http
        .put(servers[f].url(&format!("/v1/kv/ttl-lock?acquire={lapsed}")))
        .body("held")
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), "true");

    // The leader dies 3 s in; the new one starts the timers afresh.
    std::thread::sleep(Duration::from_secs(3));
    servers[li].kill();
    let alive = f;
    let gone = |id: &str| {
        http.get(servers[alive].url(&format!("/v1/session/info/{id}?stale")))
            .send()
            .and_then(|r| r.text())
            .is_ok_and(|t| t == "[]")
    };
    while !gone(&lapsed) {
        assert!(
            created.elapsed() < Duration::from_secs(20),
            "the session outlived twice its TTL"
        );
        // Keep the other one alive (through whichever server answers).
        let _ = http
            .put(servers[alive].url(&format!("/v1/session/renew/{renewed}")))
            .send();
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "10 s TTL session with a leader kill at 3 s invalidated after {:?}",
        created.elapsed()
    );
    let e = servers[alive].get_json("/v1/kv/ttl-lock?stale");
    assert!(e[0].get("Session").is_none(), "the lock was released: {e}");
    assert!(!gone(&renewed), "the renewed session lives on");
}

/// Each server snapshots at its own phase of `raft_snapshot_threshold`,
/// so the log purges that follow a snapshot do not land on every server
/// at once (they all snapshotted at the same index before).
#[test]
fn servers_snapshot_at_different_indexes() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("small-snapshots.json");
    std::fs::write(
        &conf,
        r#"{"raft_snapshot_threshold": 128, "raft_snapshot_interval": "10ms", "raft_trailing_logs": 32}"#,
    )
    .unwrap();
    let servers = three_servers_with(&dirs, &["-config-file", conf.to_str().unwrap()]);
    let snapshot_index = |s: &TestAgent| -> u64 {
        s.get_json("/v1/agent/self")["Stats"]["raft"]["last_snapshot_index"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let http = reqwest::blocking::Client::new();
    // Four threshold's worth of entries, one at a time so that each is
    // its own Raft entry.
    for n in 0..512 {
        // Not a failover test: a write refused while leadership settles
        // is sent again.
        wait_for("a write", 10, || {
            http.put(servers[n % 3].url(&format!("/v1/kv/spread/{n}")))
                .body("x")
                .send()
                .is_ok_and(|r| r.status() == 200)
        });
    }
    let mut indexes = Vec::new();
    wait_for("every server to have snapshotted", 20, || {
        indexes = servers.iter().map(snapshot_index).collect();
        indexes.iter().all(|i| *i > 0)
    });
    eprintln!("last snapshot index per server: {indexes:?}");
    let mut distinct = indexes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        3,
        "servers snapshotted at the same index: {indexes:?}"
    );
}
