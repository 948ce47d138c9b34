//! Coordination tools as users run them, against real agent processes:
//! `meridian lock` contending from two client agents (and the holder's
//! agent killed), the semaphore form, snapshots restored into a fresh
//! cluster, user events spread by gossip with filters, and watches.
//! Durations are printed, not asserted.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn put(a: &TestAgent, path: &str, body: &[u8]) -> String {
    reqwest::blocking::Client::new()
        .put(a.url(path))
        .body(body.to_vec())
        .send()
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("PUT {path}: {e}"))
}

fn lock_process(agent: &TestAgent, args: &[&str]) -> Child {
    Command::new(BIN)
        .arg("lock")
        .args(args)
        .env("MERIDIAN_HTTP_ADDR", &agent.http)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn meridian lock")
}

/// `(what, who, seconds since the epoch)` lines the lock children wrote.
fn marks(log: &Path) -> Vec<(String, String, f64)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((
                it.next()?.to_string(),
                it.next()?.to_string(),
                it.next()?.parse().ok()?,
            ))
        })
        .collect()
}

fn mark(log: &Path, what: &str, who: &str) -> Option<f64> {
    marks(log)
        .into_iter()
        .find(|(w, n, _)| w == what && n == who)
        .map(|(_, _, t)| t)
}

/// A child that records when it starts and when it is told to stop.
fn child_script(log: &Path, who: &str) -> String {
    let log = log.display();
    format!(
        "echo start {who} $(date +%s.%N) >> {log}; \
         trap 'kill $p 2>/dev/null; echo stop {who} $(date +%s.%N) >> {log}; exit 0' TERM; \
         sleep 120 & p=$!; wait $p"
    )
}

fn lock_holder_session(s: &TestAgent, key: &str) -> Option<String> {
    let v = s.get_json(&format!("/v1/kv/{key}?stale"));
    v[0]["Session"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A server and two client agents joined to it (and the data dirs).
fn server_and_two_clients() -> (Vec<tempfile::TempDir>, TestAgent, TestAgent, TestAgent) {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let s = TestAgent::server(dirs[0].path());
    let join = format!("127.0.0.1:{}", s.serf_lan);
    let c1 = TestAgent::client(dirs[1].path(), &join);
    let c2 = TestAgent::client(dirs[2].path(), &join);
    (dirs, s, c1, c2)
}

#[test]
fn lock_changes_hands_after_the_holders_agent_is_killed() {
    let (_dirs, s, mut c1, c2) = server_and_two_clients();
    wait_for("both clients registered with serfHealth", 20, || {
        [&c1, &c2].iter().all(|c| {
            s.get_json(&format!("/v1/health/node/{}", c.node))
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c["Status"] == "passing"))
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("marks");

    let mut a = lock_process(&c1, &["app/leader", &child_script(&log, "A")]);
    wait_for("A runs its command", 20, || {
        mark(&log, "start", "A").is_some()
    });
    let mut b = lock_process(&c2, &["app/leader", &child_script(&log, "B")]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        mark(&log, "start", "B").is_none(),
        "B ran while A held the lock"
    );
    let a_session = lock_holder_session(&s, "app/leader/.lock").expect("A holds the lock");
    let info = s.get_json(&format!("/v1/session/info/{a_session}"));
    assert_eq!(info[0]["Node"], c1.node.as_str());

    // The holder's agent dies: its serfHealth fails, the session is
    // invalidated, the lock-delay (15 s) runs, then B gets the lock.
    let killed = Instant::now();
    c1.kill();
    wait_for("B takes the lock", 60, || {
        mark(&log, "start", "B").is_some()
    });
    let handover = killed.elapsed();
    eprintln!("lock handover after the holder's agent was SIGKILLed: {handover:?} (serfHealth failure + 15 s lock-delay)");

    // A's lock process lost its agent: it stopped its child and gave up.
    let status = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = a.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "A's lock process still runs");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(!status.success(), "losing the lock is a failure exit");
    let a_stop = mark(&log, "stop", "A").expect("A's child was stopped");
    let b_start = mark(&log, "start", "B").unwrap();
    eprintln!(
        "A's child stopped {:.1} s after the kill; B started {:.1} s after A stopped",
        a_stop - (b_start - handover.as_secs_f64()),
        b_start - a_stop
    );
    assert!(a_stop <= b_start, "A and B overlapped: {:?}", marks(&log));
    let b_session = lock_holder_session(&s, "app/leader/.lock").expect("B holds the lock");
    assert_ne!(b_session, a_session);
    let info = s.get_json(&format!("/v1/session/info/{b_session}"));
    assert_eq!(info[0]["Node"], c2.node.as_str());

    // SIGTERM to B's lock process: child stopped, lock and session released.
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe { libc::kill(b.id() as i32, libc::SIGTERM) };
    let _ = b.wait();
    assert!(mark(&log, "stop", "B").is_some());
    assert_eq!(lock_holder_session(&s, "app/leader/.lock"), None);
    assert!(s
        .get_json(&format!("/v1/session/info/{b_session}"))
        .as_array()
        .is_some_and(|a| a.is_empty()));
}

#[test]
fn a_semaphore_admits_n_holders_at_once() {
    let agent = TestAgent::dev(&[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("marks");
    let children: Vec<Child> = (1..=3)
        .map(|i| {
            let script = format!(
                "echo start {i} $(date +%s.%N) >> {l}; sleep 1.5; echo end {i} $(date +%s.%N) >> {l}",
                l = log.display()
            );
            lock_process(&agent, &["-n=2", "jobs/batch", &script])
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let m = marks(&log);
    assert_eq!(m.iter().filter(|(w, _, _)| w == "start").count(), 3);
    // The most that ever ran at once, from the start/end marks in time order.
    let mut events: Vec<(f64, i32)> = m
        .iter()
        .map(|(w, _, t)| (*t, if w == "start" { 1 } else { -1 }))
        .collect();
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0, 0);
    for (_, d) in events {
        now += d;
        most = most.max(now);
    }
    assert_eq!(most, 2, "{m:?}");
    // Every slot was handed back: no holders left, contender keys gone.
    let entries = agent.get_json("/v1/kv/jobs/batch/?recurse");
    assert_eq!(entries.as_array().map(Vec::len), Some(1), "{entries}");
    let raw = entries[0]["Value"].as_str().unwrap();
    let lock: Value = serde_json::from_slice(&b64(raw)).unwrap();
    assert_eq!(lock["Limit"], 2);
    assert_eq!(lock["Holders"], serde_json::json!({}));

    let o = agent.cli(&["lock", "-n=3", "jobs/batch", "true"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Semaphore limit conflict (lock: 2, local: 3)"),
        "{}",
        stderr(&o)
    );
}

fn b64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// A read that may find nothing yet (404, not started): `null` then.
fn try_json(a: &TestAgent, path: &str) -> Value {
    reqwest::blocking::get(a.url(path))
        .and_then(|r| r.json())
        .unwrap_or(Value::Null)
}

/// Everything a snapshot must carry, read so that two clusters compare.
fn state_of(a: &TestAgent, ext_nodes: &[&str]) -> Vec<Value> {
    let mut out = vec![try_json(a, "/v1/kv/?recurse&stale")];
    for n in ext_nodes {
        out.push(try_json(a, &format!("/v1/catalog/node/{n}?stale")));
        out.push(try_json(a, &format!("/v1/health/node/{n}?stale")));
    }
    out.push(try_json(a, "/v1/health/service/db?stale"));
    out
}

#[test]
fn a_snapshot_restores_into_a_new_cluster() {
    let dirs_a: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = three_servers(&dirs_a);
    for i in 0..200u32 {
        let body = if i % 2 == 0 {
            format!("value-{i}").into_bytes()
        } else {
            vec![0, 255, i as u8, 10]
        };
        assert_eq!(
            put(&a[0], &format!("/v1/kv/app/k{i:03}?flags={i}"), &body),
            "true"
        );
    }
    let ext = ["db-1", "db-2"];
    for (i, n) in ext.iter().enumerate() {
        let reg = serde_json::json!({
            "Node": n, "Address": format!("10.0.0.{i}"),
            "Service": {"Service": "db", "Port": 5432, "Tags": ["primary"]},
            "Check": {"CheckID": "db-alive", "Name": "alive", "Status": "passing", "ServiceID": "db"}
        });
        put(&a[0], "/v1/catalog/register", reg.to_string().as_bytes());
    }
    let session: Value = serde_json::from_str(&put(&a[0], "/v1/session/create", b"{}")).unwrap();
    let sid = session["ID"].as_str().unwrap();
    assert_eq!(
        put(&a[0], &format!("/v1/kv/app/lock?acquire={sid}"), b"held"),
        "true"
    );
    let before = state_of(&a[0], &ext);
    assert!(before.iter().all(|v| !v.is_null()), "{before:?}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.snap");
    let file_s = file.display().to_string();
    // Through a follower: the snapshot is the leader's state.
    let follower = &a[(leader_index(&a).expect("a leader") + 1) % 3];
    let o = follower.cli(&["snapshot", "save", &file_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("Saved and verified snapshot to index "));
    let o = a[0].cli(&["snapshot", "inspect", &file_s]);
    assert!(stdout(&o).contains("KVS"), "{}", stdout(&o));
    drop(a);

    let dirs_b: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut b = three_servers(&dirs_b);
    let o = b[1].cli(&["snapshot", "restore", &file_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "Restored snapshot");
    for s in &b {
        wait_for("the restore reaches every server", 10, || {
            state_of(s, &ext) == before
        });
    }
    assert_eq!(
        b[2].get_json(&format!("/v1/session/info/{sid}?stale"))[0]["ID"],
        sid
    );

    // The restore is in the Raft log: a killed server comes back with it.
    b[0].kill();
    b[0].restart_no_wait();
    wait_for("the restarted server has the restored state", 30, || {
        reqwest::blocking::get(b[0].url("/v1/kv/app/k199?stale")).is_ok_and(|r| r.status() == 200)
            && state_of(&b[0], &ext) == before
    });

    // A damaged file is refused and changes nothing.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes.truncate(mid);
    std::fs::write(&file, &bytes).unwrap();
    let o = b[1].cli(&["snapshot", "restore", &file_s]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("400"), "{}", stderr(&o));
    assert_eq!(state_of(&b[1], &ext), before);
}

fn events_on(a: &TestAgent) -> Vec<String> {
    a.get_json("/v1/event/list?name=deploy")
        .as_array()
        .map(|evs| {
            evs.iter()
                .map(|e| String::from_utf8(b64(e["Payload"].as_str().unwrap_or(""))).unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn events_spread_to_every_agent_that_matches_their_filters() {
    let (_dirs, s, c1, c2) = server_and_two_clients();
    wait_for("three members", 20, || {
        s.get_json("/v1/agent/members").as_array().map(Vec::len) == Some(3)
            && c1.get_json("/v1/agent/members").as_array().map(Vec::len) == Some(3)
            && c2.get_json("/v1/agent/members").as_array().map(Vec::len) == Some(3)
    });
    let svc = serde_json::json!({"Name": "web", "Tags": ["blue"], "Port": 80});
    put(
        &c2,
        "/v1/agent/service/register",
        svc.to_string().as_bytes(),
    );

    // A blocking list on the server wakes when the event arrives.
    let index: u64 = reqwest::blocking::get(s.url("/v1/event/list?name=deploy"))
        .unwrap()
        .headers()["X-Consul-Index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let waiter = {
        let url = s.url(&format!(
            "/v1/event/list?name=deploy&index={index}&wait=20s"
        ));
        std::thread::spawn(move || {
            let t = Instant::now();
            let r = reqwest::blocking::get(url).unwrap();
            (t.elapsed(), r.json::<Value>().unwrap())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let fired = Instant::now();
    let o = c1.cli(&["event", "-name", "deploy", "all"]);
    assert!(stdout(&o).starts_with("Event ID: "), "{}", stderr(&o));
    for a in [&s, &c1, &c2] {
        wait_for("the event reaches every agent", 10, || {
            events_on(a) == vec!["all".to_string()]
        });
    }
    eprintln!(
        "event on all three agents {:?} after firing",
        fired.elapsed()
    );
    let (waited, list) = waiter.join().unwrap();
    eprintln!("blocking event list woke after {waited:?}");
    assert_eq!(list[0]["Name"], "deploy");
    assert_eq!(list[0]["Version"], 1);

    // Filters: only the agent running a blue `web` takes the next ones.
    put(&s, "/v1/event/fire/deploy?service=web&tag=blu", b"blue-web");
    let only_c2 = format!("/v1/event/fire/deploy?node=%5E{}%24", c2.node);
    put(&s, &only_c2, b"node-c2");
    wait_for("the filtered events reach c2", 10, || {
        events_on(&c2) == vec!["all", "blue-web", "node-c2"]
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(events_on(&s), vec!["all"]);
    assert_eq!(events_on(&c1), vec!["all"]);

    // Bad filters and oversized payloads are refused before any gossip.
    let r = reqwest::blocking::Client::new()
        .put(s.url("/v1/event/fire/deploy?node=("))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = reqwest::blocking::Client::new()
        .put(s.url("/v1/event/fire/deploy"))
        .body(vec![b'x'; 1000])
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[test]
fn watches_run_their_handlers_on_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let conf = dir.path().join("watch.json");
    let watches = serde_json::json!({"watches": [
        {"type": "key", "key": "cfg/mode",
         "args": ["sh", "-c", format!("cat >> {o}; echo \" index=$CONSUL_INDEX\" >> {o}", o = out.display())]},
    ]});
    std::fs::write(&conf, watches.to_string()).unwrap();
    let agent = TestAgent::dev(&["-config-file", conf.to_str().unwrap()]);
    // The first run sees the key missing (null).
    wait_for("the handler's first run", 10, || {
        std::fs::read_to_string(&out).is_ok_and(|s| s.starts_with("null"))
    });
    put(&agent, "/v1/kv/cfg/mode", b"blue");
    put(&agent, "/v1/kv/cfg/mode", b"green");
    wait_for("the handler saw both writes", 10, || {
        std::fs::read_to_string(&out).is_ok_and(|s| s.matches("\"Key\": \"cfg/mode\"").count() == 2)
    });
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("\"Value\": \"Z3JlZW4=\""), "{text}");

    // The CLI without a handler prints the current value once.
    let o = agent.cli(&["watch", "-type=key", "-key=cfg/mode"]);
    assert!(o.status.success());
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["Value"], "Z3JlZW4=");
    let o = agent.cli(&["watch", "-type=service"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Must specify a single service to watch"));

    // With a handler it runs on each change, the handler's own flags intact.
    let seen = dir.path().join("seen");
    let mut w = Command::new(BIN)
        .args(["watch", "-type=keyprefix", "-prefix=cfg/", "sh", "-c"])
        .arg(format!("echo $CONSUL_INDEX >> {}", seen.display()))
        .env("MERIDIAN_HTTP_ADDR", &agent.http)
        .spawn()
        .unwrap();
    wait_for("the first run", 10, || {
        std::fs::read_to_string(&seen).is_ok_and(|s| s.lines().count() == 1)
    });
    put(&agent, "/v1/kv/cfg/other", b"1");
    wait_for("a run for the change", 10, || {
        std::fs::read_to_string(&seen).is_ok_and(|s| s.lines().count() == 2)
    });
    let _ = w.kill();
    let _ = w.wait();
}
