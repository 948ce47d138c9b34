//! The watch workload: writers put unique values to a few keys on any
//! server, while watchers, each pinned to one server as a client of its
//! local agent is, follow one key or the whole prefix (`?recurse`) with
//! blocking queries (`?index=N&wait=`). Checked:
//! - `X-Consul-Index` never goes backwards for a watcher in the default
//!   mode (its server kept, restarted or paused alike: a backwards step is
//!   recorded with whether the watcher's server was restarted in between).
//!   A follower forwards default-mode queries to the leader, so a
//!   restarted follower answers with the leader's index, never its own.
//!   Watchers in `?stale` mode (one per server, on the prefix) are
//!   answered from their own server's state: a restarted server may
//!   answer from a state older than the one it answered before the kill
//!   until it has caught up; their backwards steps are counted and
//!   reported, not asserted (Consul tells clients to reset then);
//! - once the faults end and the writers stop, every watcher reaches the
//!   state a `?consistent` read gives (within `SETTLE`), and that state
//!   was written (acknowledged, or unknown) by a writer.
//!
//! A watcher that gets no answer keeps its index and asks again, as
//! Consul's `watch` package does; after a backwards step it starts over
//! from 0, as Consul tells clients to.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::checker::Outcome;
use super::register::{self, Recorder};
use super::schedule::{self, Cluster, Fault, FaultKind, Tally};

const KEYS: usize = 3;
const WRITERS: usize = 3;
const WAIT: Duration = Duration::from_secs(2);
/// How long watchers get to catch up with the final state.
const SETTLE: Duration = Duration::from_secs(15);

/// A key's value, or the prefix's key → value map (absent: no entry).
type State = BTreeMap<String, String>;

/// (key, value, outcome, invoke, complete) of one write.
type Write = (String, String, Outcome, u64, Option<u64>);

#[derive(Debug, Clone, serde::Serialize)]
pub struct Backwards {
    watcher: String,
    stale: bool,
    server: usize,
    from: u64,
    to: u64,
    /// ns: the previous answer and this one.
    prev_at: u64,
    at: u64,
}

struct Watcher {
    name: String,
    server: usize,
    /// The key, or the prefix (with `?recurse`).
    path: String,
    recurse: bool,
    /// `?stale`: answered from its own server's state.
    stale: bool,
}

struct Shared<'a> {
    seed: u64,
    servers: &'a [String],
    prefix: &'a str,
    rec: &'a Recorder,
    tally: Tally,
    writes: Mutex<Vec<Write>>,
    /// Each watcher's state as of its last answer.
    states: Mutex<BTreeMap<String, State>>,
    backwards: Mutex<Vec<Backwards>>,
    /// (server, stale, previous answer, answer) when calls failed between
    /// the two: the watcher's server was down or paused, which is when an
    /// index could go back.
    gaps: Mutex<Vec<(usize, bool, u64, u64)>>,
    stop: AtomicBool,
}

fn writer(process: usize, sh: &Shared, deadline: Instant) {
    let mut rng = StdRng::seed_from_u64(sh.seed.wrapping_mul(1000).wrapping_add(process as u64));
    let http = schedule::http(register::CALL_TIMEOUT);
    let mut n = 0;
    while Instant::now() < deadline {
        n += 1;
        let key = format!("{}k{}", sh.prefix, rng.gen_range(0..KEYS));
        let value = format!("p{process}-{n}");
        let server = &sh.servers[rng.gen_range(0..sh.servers.len())];
        let invoke = sh.rec.now();
        let outcome = register::put(
            &http,
            &format!("http://{server}/v1/kv/{key}"),
            value.clone(),
            false,
        );
        let complete = (outcome != Outcome::Unknown).then(|| sh.rec.now());
        let label = match outcome {
            Outcome::Ok(_) => "ok",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        };
        sh.tally.add("write", label);
        if outcome != Outcome::Ok(None) {
            std::thread::sleep(Duration::from_millis(rng.gen_range(20..60)));
        } else {
            // Watchers should see a value now and then, not only the last.
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..20)));
        }
        sh.writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, value, outcome, invoke, complete));
    }
}

/// One blocking query: the index and the state it returned.
fn block(
    http: &reqwest::blocking::Client,
    server: &str,
    w: &Watcher,
    index: u64,
    consistent: bool,
) -> Option<(u64, State)> {
    let recurse = if w.recurse { "recurse&" } else { "" };
    let mode = match (consistent, w.stale) {
        (true, _) => "consistent&",
        (false, true) => "stale&",
        (false, false) => "",
    };
    let url = format!(
        "http://{server}/v1/kv/{}?{recurse}{mode}index={index}&wait={}ms",
        w.path,
        WAIT.as_millis()
    );
    let r = http.get(url).send().ok()?;
    let status = r.status().as_u16();
    let idx: u64 = r
        .headers()
        .get("X-Consul-Index")?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    let mut state = State::new();
    match status {
        404 => {}
        200 => {
            let entries: Vec<serde_json::Value> = r.json().ok()?;
            for e in entries {
                let one = serde_json::Value::Array(vec![e.clone()]);
                let (v, _) = register::decode(&one)??;
                state.insert(e["Key"].as_str()?.to_string(), v);
            }
        }
        _ => return None,
    }
    Some((idx, state))
}

fn watcher(w: &Watcher, sh: &Shared) {
    // Past `WAIT` and the server's jitter (wait/16), an answer is overdue.
    let http = schedule::http(WAIT + Duration::from_secs(2));
    let server = &sh.servers[w.server];
    let mut index = 0u64;
    let mut prev_at = 0u64;
    let mut missed = false;
    while !sh.stop.load(Ordering::Relaxed) {
        let Some((idx, state)) = block(&http, server, w, index, false) else {
            sh.tally.add("watch", "no answer");
            missed = true;
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let at = sh.rec.now();
        sh.tally.add("watch", "answered");
        if idx < index {
            sh.backwards
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Backwards {
                    watcher: w.name.clone(),
                    stale: w.stale,
                    server: w.server,
                    from: index,
                    to: idx,
                    prev_at,
                    at,
                });
            index = 0;
        } else {
            index = idx;
        }
        if std::mem::take(&mut missed) && prev_at > 0 {
            sh.gaps
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((w.server, w.stale, prev_at, at));
        }
        prev_at = at;
        sh.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(w.name.clone(), state);
    }
}

/// A backwards step with a restart of the watcher's server in between.
fn across_restart(b: &Backwards, faults: &[Fault]) -> bool {
    faults.iter().any(|f| {
        f.kind == FaultKind::Kill && f.server == b.server && f.healed <= b.at && f.at >= b.prev_at
    })
}

pub fn run(seed: u64, secs: u64) {
    eprintln!("=== watch workload: seed {seed}, {secs} s (replay: MERIDIAN_FAULT_SEED={seed} MERIDIAN_FAULT_SECS={secs})");
    let (_dirs, mut cluster) = Cluster::for_workload(&[FaultKind::Kill, FaultKind::Stop]);
    let addrs = cluster.addrs();
    let prefix = format!("watch-{seed}/");
    let mut watchers = Vec::new();
    for server in 0..addrs.len() {
        for k in 0..KEYS {
            watchers.push(Watcher {
                name: format!("s{server}-k{k}"),
                server,
                path: format!("{prefix}k{k}"),
                recurse: false,
                stale: false,
            });
        }
        for stale in [false, true] {
            watchers.push(Watcher {
                name: format!("s{server}-prefix{}", if stale { "-stale" } else { "" }),
                server,
                path: prefix.clone(),
                recurse: true,
                stale,
            });
        }
    }
    let start = Instant::now();
    let rec = Recorder::new(start);
    let until = start + Duration::from_secs(secs);
    let sh = Shared {
        seed,
        servers: &addrs,
        prefix: &prefix,
        rec: &rec,
        tally: Tally::default(),
        writes: Mutex::new(Vec::new()),
        states: Mutex::new(BTreeMap::new()),
        backwards: Mutex::new(Vec::new()),
        gaps: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    };
    let (faults, expected, lagging) = std::thread::scope(|s| {
        for w in &watchers {
            let sh = &sh;
            s.spawn(move || watcher(w, sh));
        }
        let faults = schedule::run_under_faults(seed, &mut cluster, until, &rec, WRITERS, |p| {
            writer(p, &sh, until)
        });
        let http = schedule::http(Duration::from_secs(3));
        let expected: State = schedule::settled(&addrs, 30, |server| {
            let w = Watcher {
                name: String::new(),
                server: 0,
                path: prefix.clone(),
                recurse: true,
                stale: false,
            };
            block(&http, server, &w, 0, true).map(|(_, s)| s)
        });
        // Each watcher's view of the expected state: one key, or all.
        let want = |w: &Watcher| -> State {
            expected
                .iter()
                .filter(|(k, _)| w.recurse || **k == w.path)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let settle_until = Instant::now() + SETTLE;
        let lagging = loop {
            let states = sh.states.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let lagging: Vec<String> = watchers
                .iter()
                .filter(|w| states.get(&w.name) != Some(&want(w)))
                .map(|w| format!("{}: {:?}", w.name, states.get(&w.name)))
                .collect();
            if lagging.is_empty() || Instant::now() > settle_until {
                break lagging;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let settled_in =
            SETTLE.saturating_sub(settle_until.saturating_duration_since(Instant::now()));
        eprintln!("watch: watchers settled on the final state in {settled_in:?}");
        sh.stop.store(true, Ordering::Relaxed);
        (faults, expected, lagging)
    });
    let writes = sh.writes.into_inner().unwrap_or_else(|e| e.into_inner());
    let backwards = sh.backwards.into_inner().unwrap_or_else(|e| e.into_inner());
    let written: HashSet<(&str, &str)> = writes
        .iter()
        .filter(|w| w.2 != Outcome::Fail)
        .map(|w| (w.0.as_str(), w.1.as_str()))
        .collect();
    let never_written: Vec<(&String, &String)> = expected
        .iter()
        .filter(|(k, v)| !written.contains(&(k.as_str(), v.as_str())))
        .collect();
    let restarts = backwards
        .iter()
        .filter(|b| across_restart(b, &faults))
        .count();
    let stale_backwards = backwards.iter().filter(|b| b.stale).count();
    let default_backwards = backwards.len() - stale_backwards;
    // How often the claim was put to the test: a watcher's next answer
    // after its own server was killed and restarted.
    let gaps = sh.gaps.into_inner().unwrap_or_else(|e| e.into_inner());
    let over_restarts = |stale: bool| {
        gaps.iter()
            .filter(|g| g.1 == stale)
            .filter(|&&(server, _, from, to)| {
                faults.iter().any(|f| {
                    f.kind == FaultKind::Kill
                        && f.server == server
                        && f.at >= from
                        && f.healed <= to
                })
            })
            .count()
    };
    let (restarted_default, restarted_stale) = (over_restarts(false), over_restarts(true));
    let mut summary = sh.tally.into_summary("watch", seed, secs);
    summary
        .figures
        .insert("index_backwards".into(), default_backwards as f64);
    summary
        .figures
        .insert("index_backwards_stale".into(), stale_backwards as f64);
    summary.figures.insert(
        "answers_after_own_server_restart".into(),
        restarted_default as f64,
    );
    summary.figures.insert(
        "answers_after_own_server_restart_stale".into(),
        restarted_stale as f64,
    );
    summary
        .figures
        .insert("index_backwards_across_restart".into(), restarts as f64);
    summary
        .figures
        .insert("watchers_not_settled".into(), lagging.len() as f64);
    eprintln!(
        "watch: {} watchers; index went backwards {default_backwards} times in the default mode, {stale_backwards} with ?stale ({restarts} across a restart of the watcher's server); {} watchers not on the final state",
        watchers.len(),
        lagging.len()
    );
    eprintln!(
        "watch: watchers answered again after their own server was restarted {restarted_default} times (default mode), {restarted_stale} (?stale)"
    );
    for b in &backwards {
        eprintln!("  backwards: {b:?}");
    }
    let ok = default_backwards == 0 && lagging.is_empty() && never_written.is_empty();
    if !ok {
        summary.verdict = format!(
            "{default_backwards} backwards steps in the default mode, not settled: {lagging:?}, never written: {never_written:?}"
        );
        summary.history = Some(schedule::save(
            "watch",
            seed,
            &serde_json::json!({
                "workload": "watch", "seed": seed, "secs": secs, "faults": faults,
                "backwards": backwards, "expected": expected, "not_settled": lagging,
            }),
        ));
    }
    let acked: Vec<(u64, u64)> = writes
        .iter()
        .filter(|w| matches!(w.2, Outcome::Ok(_)))
        .filter_map(|w| Some((w.3, w.4?)))
        .collect();
    let mut acked = acked;
    acked.extend(rec.probe_acked());
    summary.print(&faults, &acked);
    assert!(
        !acked.is_empty(),
        "seed {seed}: no write was acknowledged in {secs} s"
    );
    assert!(
        ok,
        "seed {seed}: watch: {} (history: {})",
        summary.verdict,
        summary.history.unwrap_or_default()
    );
}
