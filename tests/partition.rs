//! Partitions of servers in network namespaces (`fault::netns`), and the
//! leader lease behind default-mode reads at the two moments it was seen
//! to fail: an isolated old leader after the majority moved on, and a
//! killed leader just after it restarts. Both must answer a default read
//! only as a leader within its lease: a value older than an acknowledged
//! write is a failure. A leader stopped and continued (SIGSTOP) is held
//! to the same. And a follower cut off and let back must cost the leader
//! nothing: no failed write, no new term.

mod common;
mod fault {
    pub mod netns;
}

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use fault::netns::Net;

fn skip() -> bool {
    match Net::available() {
        Some(why) => {
            eprintln!("skipped: network namespaces unavailable ({why})");
            true
        }
        None => false,
    }
}

/// PUT `value` at `key` through `a`; true once acknowledged. A short
/// timeout: a write that waits on an unreachable leader is retried soon,
/// so the time it is acknowledged is known to within the timeout.
fn put(a: &TestAgent, key: &str, value: &str) -> bool {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .put(a.url(&format!("/v1/kv/{key}")))
        .body(value.to_string())
        .send()
        .and_then(|r| r.text())
        .is_ok_and(|t| t.trim() == "true")
}

/// A default-mode read through `a`: the value, or `None` without a 200.
fn read_default(c: &reqwest::blocking::Client, a: &TestAgent, key: &str) -> Option<String> {
    let r = c.get(a.url(&format!("/v1/kv/{key}?raw"))).send().ok()?;
    if r.status() != 200 {
        return None;
    }
    r.text().ok()
}

/// Reads `key` through `a` in the default mode for `secs`: how many reads
/// answered, and those that answered something other than `want`.
fn default_reads_for(a: &TestAgent, key: &str, want: &str, secs: f64) -> (usize, Vec<String>) {
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let (mut answered, mut wrong) = (0, Vec::new());
    while Instant::now() < until {
        if let Some(v) = read_default(&c, a, key) {
            answered += 1;
            if v != want {
                wrong.push(v);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (answered, wrong)
}

#[test]
fn cuts_follow_the_partition_asked_for_and_nothing_outlives_the_harness() {
    if skip() {
        return;
    }
    let net = Net::new(5);
    let run = net.run();
    assert!(!Net::pieces(run).is_empty(), "the harness made nothing");
    net.ring();
    let mut ring = net.cuts();
    ring.sort_unstable();
    // On the ring 0-1-2-3-4-0 each server drops the two it is not next to.
    let expect: Vec<(usize, usize)> = vec![
        (0, 2),
        (0, 3),
        (1, 3),
        (1, 4),
        (2, 0),
        (2, 4),
        (3, 0),
        (3, 1),
        (4, 1),
        (4, 2),
    ];
    assert_eq!(ring, expect);
    net.heal();
    assert!(net.cuts().is_empty());
    net.partition(&[0, 1], &[2, 3, 4]);
    assert_eq!(net.cuts().len(), 12);
    assert!(net.cuts().contains(&(4, 1)) && !net.cuts().contains(&(0, 1)));
    net.heal();
    net.isolate(3);
    let mut iso = net.cuts();
    iso.sort_unstable();
    assert_eq!(
        iso,
        vec![
            (0, 3),
            (1, 3),
            (2, 3),
            (3, 0),
            (3, 1),
            (3, 2),
            (3, 4),
            (4, 3)
        ]
    );
    drop(net);
    assert_eq!(Net::pieces(run), Vec::<String>::new(), "left behind");

    // A panic inside the test still removes everything.
    let caught = std::panic::catch_unwind(|| {
        let net = Net::new(2);
        net.isolate(0);
        let run = net.run();
        std::panic::panic_any(run);
    });
    let run = *caught
        .expect_err("the closure panics")
        .downcast::<u8>()
        .unwrap();
    assert_eq!(Net::pieces(run), Vec::<String>::new(), "left behind");
}

/// The majority elects a new leader and acknowledges a newer write; the
/// isolated old leader must not answer a default read with the old value
/// (Jepsen's 2014 Consul finding), and writes resume on the majority.
#[test]
fn an_isolated_leader_answers_no_stale_default_read() {
    if skip() {
        return;
    }
    let net = Net::new(3);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let servers = net.servers(&dirs, &[]);
    for round in 0..3 {
        let old = leader_index(&servers).expect("a leader");
        let key = format!("iso-{round}");
        assert!(put(&servers[old], &key, "before"));
        let isolated = Instant::now();
        net.isolate(old);
        let majority: Vec<usize> = (0..3).filter(|&i| i != old).collect();
        // Keep reading through the old leader while the majority moves on.
        let reader = std::thread::scope(|s| {
            let (servers, key) = (&servers, &key);
            let reads = s.spawn(move || {
                let c = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_millis(300))
                    .build()
                    .unwrap();
                let mut last_old = None;
                let until = Instant::now() + Duration::from_secs(4);
                while Instant::now() < until {
                    let sent = Instant::now();
                    if read_default(&c, &servers[old], key).as_deref() == Some("before") {
                        last_old = Some(sent);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                last_old
            });
            let mut acked = None;
            wait_for("a write acknowledged by the majority", 20, || {
                let ok = majority.iter().any(|&i| put(&servers[i], key, "after"));
                if ok {
                    acked = Some(Instant::now());
                }
                ok
            });
            (acked.unwrap(), reads.join().unwrap())
        });
        let (acked, last_old) = reader;
        eprintln!(
            "round {round}: server {old} isolated; majority acknowledged a write after {:?}; \
             the old leader's last default read of the old value was sent {:?} after isolation",
            acked - isolated,
            last_old.map(|t| t - isolated)
        );
        if let Some(t) = last_old {
            assert!(
                t < acked,
                "the isolated old leader answered a default read with the old value {:?} after \
                 the majority acknowledged a newer write",
                t - acked
            );
        }
        // After the lease the old leader answers nothing from its own state.
        let (_, wrong) = default_reads_for(&servers[old], &key, "after", 0.5);
        assert!(wrong.is_empty(), "old leader still serves {wrong:?}");
        net.heal();
        wait_for("one leader again", 30, || {
            let l = leader(&servers[0]);
            !l.is_empty() && servers.iter().all(|s| leader(s) == l)
        });
    }
}

/// A killed leader restarts after the others elected a new leader and
/// acknowledged a newer write: until it hears from that leader it must not
/// answer default reads from its own (older) state.
#[test]
fn a_restarted_leader_answers_no_stale_default_read() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = three_servers(&dirs);
    for round in 0..3 {
        let old = leader_index(&servers).expect("a leader");
        let key = format!("restart-{round}");
        assert!(put(&servers[old], &key, "before"));
        servers[old].kill();
        let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
        wait_for("a write acknowledged by the survivors", 20, || {
            others.iter().any(|&i| put(&servers[i], &key, "after"))
        });
        servers[old].restart_no_wait();
        let (answered, wrong) = default_reads_for(&servers[old], &key, "after", 2.0);
        eprintln!(
            "round {round}: restarted server {old}: {answered} default reads answered, {} with the old value",
            wrong.len()
        );
        assert!(
            wrong.is_empty(),
            "the restarted former leader answered {} default reads with {wrong:?} after a newer write was acknowledged",
            wrong.len()
        );
        wait_for("one leader again", 30, || {
            let l = leader(&servers[0]);
            !l.is_empty() && servers.iter().all(|s| leader(s) == l)
        });
    }
}

/// A leader stopped (SIGSTOP) while the others elect a new leader and
/// acknowledge a newer write, then continued: the reads sent to it while
/// it was stopped are answered once it runs again, before its Raft core
/// has noticed anything, from metrics taken before the stop. None may
/// return the older value.
#[test]
fn a_resumed_leader_answers_no_stale_default_read() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let servers = three_servers(&dirs);
    for round in 0..3 {
        let old = leader_index(&servers).expect("a leader");
        let key = format!("pause-{round}");
        assert!(put(&servers[old], &key, "before"));
        servers[old].signal_no_wait(libc::SIGSTOP);
        let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
        let (stale, answered) = std::thread::scope(|s| {
            wait_for("a write acknowledged by the others", 20, || {
                others.iter().any(|&i| put(&servers[i], &key, "after"))
            });
            // Reads queued at the stopped server, answered after SIGCONT.
            let readers: Vec<_> = (0..8)
                .map(|_| {
                    let (a, key) = (&servers[old], &key);
                    s.spawn(move || {
                        let c = reqwest::blocking::Client::builder()
                            .timeout(Duration::from_secs(5))
                            .build()
                            .unwrap();
                        read_default(&c, a, key)
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(300));
            servers[old].signal_no_wait(libc::SIGCONT);
            let got: Vec<Option<String>> = readers.into_iter().map(|r| r.join().unwrap()).collect();
            let answered = got.iter().flatten().count();
            let stale = got.iter().flatten().filter(|v| *v != "after").count();
            (stale, answered)
        });
        let (later, wrong) = default_reads_for(&servers[old], &key, "after", 1.0);
        eprintln!(
            "round {round}: resumed server {old}: {answered}/8 queued default reads answered, \
             {stale} with the old value; then {later} answered, {} with the old value",
            wrong.len()
        );
        assert_eq!(stale, 0, "queued reads answered with the old value");
        assert!(wrong.is_empty(), "later reads answered with {wrong:?}");
        wait_for("one leader again", 30, || {
            let l = leader(&servers[0]);
            !l.is_empty() && servers.iter().all(|s| leader(s) == l)
        });
    }
}

/// What one write got back.
#[derive(Debug)]
struct Write {
    at: Duration,
    took: Duration,
    /// `Ok` for 200 `true`; otherwise what came back (status and body, or
    /// the transport error: unknown outcome).
    outcome: Result<(), String>,
}

/// Sequential PUTs to `url` (one new key each) until `stop`.
fn steady_writer(url: &str, start: Instant, stop: &AtomicBool) -> Vec<Write> {
    let http = reqwest::blocking::Client::new();
    let mut done = Vec::new();
    for n in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let at = start.elapsed();
        let r = http
            .put(format!("{url}/v1/kv/heal/{n}"))
            .body(n.to_string())
            .timeout(Duration::from_secs(5))
            .send()
            .and_then(|r| Ok((r.status().as_u16(), r.text()?)));
        let outcome = match r {
            Ok((200, body)) if body.trim() == "true" => Ok(()),
            Ok((status, body)) => Err(format!("{status} {}", body.trim())),
            Err(e) => Err(format!("unknown: {e}")),
        };
        done.push(Write {
            at,
            took: start.elapsed() - at,
            outcome,
        });
        std::thread::sleep(Duration::from_millis(10));
    }
    done
}

fn raft_stat(s: &TestAgent, key: &str) -> u64 {
    s.get_json("/v1/agent/self")["Stats"]["raft"][key]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no raft {key} in {}'s stats", s.node))
}

/// A follower cut off from the other servers and let back costs the
/// healthy leader nothing (Pre-Vote, `actors::raft::prevote`). Before it,
/// the follower raised its term with elections it could not win, and on
/// its return the leader saw the higher term and stepped down: 0.4–1.2 s
/// of writes failed with `No cluster leader`.
#[test]
fn a_follower_healed_after_three_seconds_costs_the_leader_nothing() {
    if skip() {
        return;
    }
    let net = Net::new(3);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let servers = net.servers(&dirs, &[]);
    let li = leader_index(&servers).expect("a leader");
    let fi = (li + 1) % 3;
    let leader_addr = leader(&servers[li]);
    let term = raft_stat(&servers[li], "term");

    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let (writes, cut, healed, follower_term) = std::thread::scope(|s| {
        let writer = s.spawn(|| steady_writer(&servers[li].url(""), start, &stop));
        std::thread::sleep(Duration::from_secs(1));
        let cut = start.elapsed();
        net.isolate(fi);
        std::thread::sleep(Duration::from_secs(3));
        // Read before the heal: what the follower did while cut off.
        let follower_term = raft_stat(&servers[fi], "term");
        let healed = start.elapsed();
        net.heal();
        // Long enough for the follower's next election timeout and for
        // the leader to meet its term, had it raised it.
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        (writer.join().unwrap(), cut, healed, follower_term)
    });

    let failed: Vec<&Write> = writes.iter().filter(|w| w.outcome.is_err()).collect();
    let slowest = writes.iter().map(|w| w.took).max().unwrap_or_default();
    let failing = match (failed.first(), failed.last()) {
        (Some(a), Some(b)) => b.at + b.took - a.at,
        _ => Duration::ZERO,
    };
    eprintln!(
        "{} writes: {} failed or unknown (over {failing:?}); slowest {slowest:?}; follower cut at {cut:?}, \
         healed at {healed:?}; terms: leader {term}, follower while cut {follower_term}",
        writes.len(),
        failed.len(),
    );
    for w in &failed {
        eprintln!("  at {:?} after {:?}: {:?}", w.at, w.took, w.outcome);
    }
    assert!(writes.len() > 50, "the writer barely ran: {}", writes.len());
    assert!(
        failed.is_empty(),
        "{} writes failed around the heal",
        failed.len()
    );
    assert_eq!(
        follower_term, term,
        "the cut-off follower raised its term with elections it could not win"
    );
    assert_eq!(leader(&servers[li]), leader_addr, "the leader changed");
    assert_eq!(raft_stat(&servers[li], "term"), term, "a new term began");
    // The follower is back in the cluster: it has the writes made while
    // it was away.
    let want = raft_stat(&servers[li], "last_log_index");
    wait_for("the healed follower to catch up", 10, || {
        raft_stat(&servers[fi], "applied_index") >= want
    });
}
