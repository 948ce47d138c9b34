//! The set workload (Jepsen's etcd "set"): clients add unique items to a
//! set kept as one key's value, each addition a `?consistent` read and a
//! `?cas=<ModifyIndex>` write of the value with the item appended. At the
//! end every acknowledged item must be present exactly once and nothing
//! that was never sent may appear; an item whose write had an unknown
//! outcome may be present or not (both are counted).
//!
//! A CAS refused (`false`) or refused before Raft (4xx, connection
//! refused) certainly did not add the item, which is then tried again in a
//! new CAS; an unknown one is never retried (it may be in), so retries
//! cannot duplicate an item. The set's key changes every `ROTATE` so the
//! value stays small in long runs; the final read takes the whole prefix.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::checker::Outcome;
use super::register::{self, Recorder};
use super::schedule::{self, Cluster, FaultKind, Tally};

const CLIENTS: usize = 5;
const ROTATE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, serde::Serialize)]
struct Add {
    process: usize,
    item: String,
    key: String,
    invoke: u64,
    complete: Option<u64>,
    outcome: Outcome,
}

/// What the final read showed against what was sent.
#[derive(Debug, Default, PartialEq, serde::Serialize)]
pub struct SetCounts {
    pub acked: usize,
    pub lost: Vec<String>,
    pub unexpected: Vec<String>,
    pub duplicated: Vec<String>,
    pub unknown_present: usize,
    pub unknown_absent: usize,
}

/// Compares the items read at the end with the additions made.
fn count(adds: &[Add], final_items: &[String]) -> SetCounts {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for i in final_items {
        *seen.entry(i.as_str()).or_default() += 1;
    }
    let mut c = SetCounts::default();
    // An item retried after a refusal has several adds; what counts is
    // whether one was acknowledged, else whether one was unknown.
    let mut outcome: HashMap<&str, &Outcome> = HashMap::new();
    for a in adds {
        let e = outcome.entry(a.item.as_str()).or_insert(&a.outcome);
        if matches!(a.outcome, Outcome::Ok(_))
            || (a.outcome == Outcome::Unknown && **e == Outcome::Fail)
        {
            *e = &a.outcome;
        }
    }
    for (item, o) in &outcome {
        let present = seen.contains_key(item);
        match o {
            Outcome::Ok(_) => {
                c.acked += 1;
                if !present {
                    c.lost.push(item.to_string());
                }
            }
            Outcome::Unknown if present => c.unknown_present += 1,
            Outcome::Unknown => c.unknown_absent += 1,
            Outcome::Fail if present => c.unexpected.push(item.to_string()),
            Outcome::Fail => {}
        }
    }
    for (item, n) in &seen {
        if !outcome.contains_key(item) {
            c.unexpected.push(item.to_string());
        }
        if *n > 1 {
            c.duplicated.push(item.to_string());
        }
    }
    c.lost.sort();
    c.unexpected.sort();
    c.duplicated.sort();
    c
}

fn items_of(value: &str) -> impl Iterator<Item = String> + '_ {
    value.split(',').filter(|s| !s.is_empty()).map(String::from)
}

struct Shared<'a> {
    seed: u64,
    servers: &'a [String],
    prefix: &'a str,
    deadline: Instant,
    rec: &'a Recorder,
    log: Mutex<Vec<Add>>,
    tally: Tally,
}

/// One client: additions until the deadline.
fn client(process: usize, sh: &Shared) {
    let Shared {
        seed,
        servers,
        prefix,
        deadline,
        rec,
        ref log,
        ref tally,
    } = *sh;
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(process as u64));
    let http = schedule::http(register::CALL_TIMEOUT);
    let mut n = 0u64;
    let mut pending: Option<String> = None;
    let mut answered = true;
    while Instant::now() < deadline {
        // A server that is down refuses at once: pause rather than spin.
        if !answered {
            std::thread::sleep(Duration::from_millis(rng.gen_range(20..60)));
        }
        answered = false;
        let item = pending.take().unwrap_or_else(|| {
            n += 1;
            format!("p{process}-{n}")
        });
        let generation = rec.now() / ROTATE.as_nanos() as u64;
        let key = format!("{prefix}{generation}");
        let server = &servers[rng.gen_range(0..servers.len())];
        let url = format!("http://{server}/v1/kv/{key}");
        let Some(current) = register::read(&http, &format!("{url}?consistent")) else {
            tally.add("read(consistent)", "unknown");
            pending = Some(item);
            continue;
        };
        tally.add("read(consistent)", "ok");
        let (value, index) = current.unwrap_or_default();
        let invoke = rec.now();
        let outcome = register::put(
            &http,
            &format!("{url}?cas={index}"),
            format!("{value}{item},"),
            true,
        );
        let complete = (outcome != Outcome::Unknown).then(|| rec.now());
        tally.add(
            "cas(add)",
            match outcome {
                Outcome::Ok(_) => "ok",
                Outcome::Fail => "fail",
                Outcome::Unknown => "unknown",
            },
        );
        answered = outcome != Outcome::Unknown;
        if outcome == Outcome::Fail {
            pending = Some(item.clone());
        }
        log.lock().unwrap_or_else(|e| e.into_inner()).push(Add {
            process,
            item,
            key,
            invoke,
            complete,
            outcome,
        });
    }
}

/// The whole set: every item under `prefix`, read `?consistent`.
fn read_all(server: &str, prefix: &str) -> Option<Vec<String>> {
    let http = schedule::http(Duration::from_secs(3));
    let r = http
        .get(format!("http://{server}/v1/kv/{prefix}?recurse&consistent"))
        .send()
        .ok()?;
    match r.status().as_u16() {
        404 => Some(Vec::new()),
        200 => {
            let entries: Vec<serde_json::Value> = r.json().ok()?;
            let mut items = Vec::new();
            for e in &entries {
                let one = serde_json::Value::Array(vec![e.clone()]);
                if let Some(Some((v, _))) = register::decode(&one) {
                    items.extend(items_of(&v));
                }
            }
            Some(items)
        }
        _ => None,
    }
}

pub fn run(seed: u64, secs: u64) {
    eprintln!("=== set workload: seed {seed}, {secs} s (replay: MERIDIAN_FAULT_SEED={seed} MERIDIAN_FAULT_SECS={secs})");
    let (_dirs, mut cluster) = Cluster::for_workload(&[FaultKind::Kill, FaultKind::Stop]);
    let addrs = cluster.addrs();
    let prefix = format!("set-{seed}/");
    let start = Instant::now();
    let rec = Recorder::new(start);
    let until = start + Duration::from_secs(secs);
    let sh = Shared {
        seed,
        servers: &addrs,
        prefix: &prefix,
        deadline: until,
        rec: &rec,
        log: Mutex::new(Vec::new()),
        tally: Tally::default(),
    };
    let faults =
        schedule::run_under_faults(seed, &mut cluster, until, &rec, CLIENTS, |p| client(p, &sh));
    let adds = sh.log.into_inner().unwrap_or_else(|e| e.into_inner());
    let tally = sh.tally;
    let final_items = schedule::settled(&addrs, 30, |s| read_all(s, &prefix));
    let c = count(&adds, &final_items);
    let mut summary = tally.into_summary("set", seed, secs);
    let figures: BTreeMap<&str, usize> = [
        ("acked", c.acked),
        ("lost", c.lost.len()),
        ("unexpected", c.unexpected.len()),
        ("duplicated", c.duplicated.len()),
        ("unknown_present", c.unknown_present),
        ("unknown_absent", c.unknown_absent),
    ]
    .into();
    for (k, v) in &figures {
        summary.figures.insert(k.to_string(), *v as f64);
    }
    eprintln!(
        "set: {} items read at the end; acked {}, lost {}, unexpected {}, duplicated {}, unknown present {} / absent {}",
        final_items.len(),
        c.acked,
        c.lost.len(),
        c.unexpected.len(),
        c.duplicated.len(),
        c.unknown_present,
        c.unknown_absent
    );
    let ok = c.lost.is_empty() && c.unexpected.is_empty() && c.duplicated.is_empty();
    if !ok {
        summary.verdict = format!(
            "lost {:?}, unexpected {:?}, duplicated {:?}",
            c.lost, c.unexpected, c.duplicated
        );
        summary.history = Some(schedule::save(
            "set",
            seed,
            &serde_json::json!({
                "workload": "set", "seed": seed, "secs": secs, "faults": faults,
                "adds": adds, "final": final_items, "counts": c,
            }),
        ));
    }
    let acked: Vec<(u64, u64)> = adds
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Ok(_)))
        .filter_map(|a| Some((a.invoke, a.complete?)))
        .collect();
    let mut acked = acked;
    acked.extend(rec.probe_acked());
    summary.print(&faults, &acked);
    assert!(
        c.acked > 0,
        "seed {seed}: no addition was acknowledged in {secs} s"
    );
    assert!(
        ok,
        "seed {seed}: set not intact: {} (history: {})",
        summary.verdict,
        summary.history.unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(item: &str, outcome: Outcome) -> Add {
        Add {
            process: 0,
            item: item.into(),
            key: "k".into(),
            invoke: 0,
            complete: None,
            outcome,
        }
    }

    #[test]
    fn counts_name_lost_unexpected_and_duplicated_items() {
        let adds = vec![
            add("a", Outcome::Ok(None)),
            add("b", Outcome::Ok(None)),
            add("c", Outcome::Fail),
            add("c", Outcome::Ok(None)),
            add("d", Outcome::Unknown),
            add("e", Outcome::Unknown),
            add("f", Outcome::Fail),
        ];
        let seen: Vec<String> = ["a", "a", "c", "d", "f", "zz"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = count(&adds, &seen);
        assert_eq!(c.acked, 3);
        assert_eq!(c.lost, vec!["b"]);
        assert_eq!(c.unexpected, vec!["f", "zz"]);
        assert_eq!(c.duplicated, vec!["a"]);
        assert_eq!((c.unknown_present, c.unknown_absent), (1, 1));
    }
}
