//! The txn workload: `ACCOUNTS` keys hold balances that clients move
//! between with `/v1/txn` transactions of two `cas` verbs (the indexes
//! from a read just before), so the total never changes if transactions
//! are all or nothing. Readers read every balance in one transaction of
//! `get` verbs and in one `?recurse&consistent` read of the prefix; a read
//! whose balances do not add up to the total saw part of a transfer.
//! At the end the total holds and every balance is non-negative.
//!
//! A 200 is a committed transfer, a 409 (a `cas` failed: rolled back) and
//! a 4xx or refused connection a certainly not applied one, anything else
//! unknown (it may still commit): unknown transfers do not matter to the
//! invariant, which is why it is the check.

#![allow(dead_code)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::register::{self, Recorder};
use super::schedule::{self, Cluster, FaultKind, Tally};

const ACCOUNTS: usize = 4;
const START_BALANCE: i64 = 100;
const TRANSFERRERS: usize = 4;
const READERS: usize = 2;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// (key, balance, ModifyIndex) of each account, in key order.
type Balances = Vec<(String, i64, u64)>;

fn parse_entries(entries: &[serde_json::Value]) -> Option<Balances> {
    let mut out = Vec::new();
    for e in entries {
        let key = e["Key"].as_str()?.to_string();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(e["Value"].as_str()?)
            .ok()?;
        let balance: i64 = String::from_utf8(raw).ok()?.parse().ok()?;
        out.push((key, balance, e["ModifyIndex"].as_u64()?));
    }
    out.sort();
    Some(out)
}

/// Every balance in one transaction of `get`s.
fn read_txn(http: &reqwest::blocking::Client, server: &str, keys: &[String]) -> Option<Balances> {
    let ops: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::json!({"KV": {"Verb": "get", "Key": k}}))
        .collect();
    let r = http
        .put(format!("http://{server}/v1/txn?consistent"))
        .json(&ops)
        .send()
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let body: serde_json::Value = r.json().ok()?;
    let entries: Vec<serde_json::Value> = body["Results"]
        .as_array()?
        .iter()
        .map(|r| r["KV"].clone())
        .collect();
    parse_entries(&entries)
}

/// Every balance in one `?recurse&consistent` read.
fn read_prefix(http: &reqwest::blocking::Client, server: &str, prefix: &str) -> Option<Balances> {
    let r = http
        .get(format!("http://{server}/v1/kv/{prefix}?recurse&consistent"))
        .send()
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let entries: Vec<serde_json::Value> = r.json().ok()?;
    parse_entries(&entries)
}

/// The outcome of a transfer as the module doc classifies it.
fn transfer(
    http: &reqwest::blocking::Client,
    server: &str,
    from: &(String, i64, u64),
    to: &(String, i64, u64),
    amount: i64,
) -> &'static str {
    let op = |(key, balance, index): &(String, i64, u64), delta: i64| {
        serde_json::json!({"KV": {"Verb": "cas", "Key": key, "Index": index,
            "Value": b64(&(balance + delta).to_string())}})
    };
    let body = vec![op(from, -amount), op(to, amount)];
    match http
        .put(format!("http://{server}/v1/txn"))
        .json(&body)
        .send()
    {
        Err(e) if e.is_connect() => "fail",
        Err(_) => "unknown",
        Ok(r) => match r.status().as_u16() {
            200 => "ok",
            409 => "fail",
            400..=499 => "fail",
            _ => "unknown",
        },
    }
}

/// A read whose balances did not add up (or went negative).
#[derive(Debug, Clone, serde::Serialize)]
struct BadRead {
    how: &'static str,
    at: u64,
    balances: Balances,
}

struct Shared<'a> {
    seed: u64,
    servers: &'a [String],
    keys: &'a [String],
    prefix: &'a str,
    deadline: Instant,
    rec: &'a Recorder,
    tally: Tally,
    acked: Mutex<Vec<(u64, u64)>>,
    bad: Mutex<Vec<BadRead>>,
}

fn total() -> i64 {
    START_BALANCE * ACCOUNTS as i64
}

fn intact(b: &Balances) -> bool {
    b.len() == ACCOUNTS
        && b.iter().map(|x| x.1).sum::<i64>() == total()
        && b.iter().all(|x| x.1 >= 0)
}

fn client(process: usize, sh: &Shared) {
    let mut rng = StdRng::seed_from_u64(sh.seed.wrapping_mul(1000).wrapping_add(process as u64));
    let http = schedule::http(register::CALL_TIMEOUT);
    let reader = process >= TRANSFERRERS;
    while Instant::now() < sh.deadline {
        let server = &sh.servers[rng.gen_range(0..sh.servers.len())];
        let prefix_read = reader && rng.gen_bool(0.5);
        let (how, got) = if prefix_read {
            ("read(recurse)", read_prefix(&http, server, sh.prefix))
        } else {
            ("read(txn get)", read_txn(&http, server, sh.keys))
        };
        let Some(balances) = got else {
            sh.tally.add(how, "unknown");
            std::thread::sleep(Duration::from_millis(rng.gen_range(20..60)));
            continue;
        };
        sh.tally.add(how, "ok");
        if !intact(&balances) {
            sh.bad
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(BadRead {
                    how,
                    at: sh.rec.now(),
                    balances: balances.clone(),
                });
        }
        if reader || balances.len() != ACCOUNTS {
            continue;
        }
        let i = rng.gen_range(0..ACCOUNTS);
        let j = (i + rng.gen_range(1..ACCOUNTS)) % ACCOUNTS;
        if balances[i].1 <= 0 {
            continue;
        }
        let amount = rng.gen_range(1..=balances[i].1.min(20));
        let invoke = sh.rec.now();
        let outcome = transfer(&http, server, &balances[i], &balances[j], amount);
        sh.tally.add("txn(transfer)", outcome);
        if outcome == "ok" {
            let done = sh.rec.now();
            sh.acked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((invoke, done));
        } else {
            std::thread::sleep(Duration::from_millis(rng.gen_range(5..30)));
        }
    }
}

pub fn run(seed: u64, secs: u64) {
    eprintln!("=== txn workload: seed {seed}, {secs} s (replay: MERIDIAN_FAULT_SEED={seed} MERIDIAN_FAULT_SECS={secs})");
    let (_dirs, mut cluster) = Cluster::for_workload(&[FaultKind::Kill, FaultKind::Stop]);
    let addrs = cluster.addrs();
    let prefix = format!("txn-{seed}/");
    let keys: Vec<String> = (0..ACCOUNTS).map(|i| format!("{prefix}a{i}")).collect();
    let init: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| serde_json::json!({"KV": {"Verb": "set", "Key": k, "Value": b64(&START_BALANCE.to_string())}}))
        .collect();
    let r = reqwest::blocking::Client::new()
        .put(format!("http://{}/v1/txn", addrs[0]))
        .json(&init)
        .send()
        .expect("initial balances");
    assert!(r.status().is_success(), "initial balances: {}", r.status());

    let start = Instant::now();
    let rec = Recorder::new(start);
    let sh = Shared {
        seed,
        servers: &addrs,
        keys: &keys,
        prefix: &prefix,
        deadline: start + Duration::from_secs(secs),
        rec: &rec,
        tally: Tally::default(),
        acked: Mutex::new(Vec::new()),
        bad: Mutex::new(Vec::new()),
    };
    let faults = schedule::run_under_faults(
        seed,
        &mut cluster,
        sh.deadline,
        &rec,
        TRANSFERRERS + READERS,
        |p| client(p, &sh),
    );
    let http = schedule::http(Duration::from_secs(3));
    let last = schedule::settled(&addrs, 30, |s| read_txn(&http, s, &keys));
    let bad = sh.bad.into_inner().unwrap_or_else(|e| e.into_inner());
    let acked = sh.acked.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut summary = sh.tally.into_summary("txn", seed, secs);
    summary
        .figures
        .insert("partial_reads".into(), bad.len() as f64);
    summary
        .figures
        .insert("transfers_acked".into(), acked.len() as f64);
    let balances: Vec<i64> = last.iter().map(|b| b.1).collect();
    eprintln!(
        "txn: final balances {balances:?} (total {}, expected {}); {} reads that did not add up",
        balances.iter().sum::<i64>(),
        total(),
        bad.len()
    );
    let ok = bad.is_empty() && intact(&last);
    if !ok {
        summary.verdict = format!(
            "{} partial reads (first: {:?}); final {balances:?}",
            bad.len(),
            bad.first()
        );
        summary.history = Some(schedule::save(
            "txn",
            seed,
            &serde_json::json!({
                "workload": "txn", "seed": seed, "secs": secs, "faults": faults,
                "bad_reads": bad, "final": last,
            }),
        ));
    }
    let mut acked = acked;
    acked.extend(rec.probe_acked());
    summary.print(&faults, &acked);
    assert!(
        !acked.is_empty(),
        "seed {seed}: no transfer was acknowledged in {secs} s"
    );
    assert!(
        ok,
        "seed {seed}: transactions not all or nothing: {} (history: {})",
        summary.verdict,
        summary.history.unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balances(values: &[i64]) -> Balances {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("a{i}"), *v, 1))
            .collect()
    }

    #[test]
    fn a_read_is_intact_only_with_every_account_the_total_and_no_debt() {
        assert!(intact(&balances(&[100, 100, 100, 100])));
        assert!(intact(&balances(&[0, 250, 50, 100])));
        // Half a transfer: taken from one account, not yet given.
        assert!(!intact(&balances(&[90, 100, 100, 100])));
        assert!(!intact(&balances(&[-10, 110, 100, 200])));
        assert!(!intact(&balances(&[200, 200])));
    }
}
