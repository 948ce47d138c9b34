//! The register workload against three servers of the built binary while
//! the leader (or, with no leader, a random server) is SIGKILLed and
//! restarted, or SIGSTOPped and continued, on a schedule drawn from a
//! printed seed. `?consistent` reads, writes and CAS must be linearizable;
//! what default-mode reads give is reported, not asserted.
//!
//! `MERIDIAN_FAULT_SEED=<n>[,<n>...]` replays seeds, `MERIDIAN_FAULT_SECS`
//! sets each run's length (CI: a fixed seed list, short runs). A failing
//! run's history is written under `target/fault-histories/`.

mod common;
mod fault {
    pub mod checker;
    pub mod register;
    pub mod schedule;
}

use std::time::{Duration, Instant};

use common::*;
use fault::checker::{self, Kind, Op, Outcome, Verdict};
use fault::register::{self, Recorder};
use fault::schedule::{self, Fault, FaultKind, Summary};

const CI_SEEDS: &[u64] = &[7, 19];
const CI_SECS: u64 = 12;
const CLIENTS: usize = 6;
const KEYS: usize = 3;
/// Search steps per key before the checker gives up without a verdict.
const BUDGET: u64 = 5_000_000;

#[test]
fn register_is_linearizable_under_leader_kills_and_pauses() {
    let secs = schedule::env_secs(CI_SECS);
    for seed in schedule::env_seeds(CI_SEEDS) {
        run(seed, secs);
    }
}

fn run(seed: u64, secs: u64) {
    eprintln!("=== register workload: seed {seed}, {secs} s (replay: MERIDIAN_FAULT_SEED={seed} MERIDIAN_FAULT_SECS={secs})");
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = three_servers(&dirs);
    let addrs: Vec<String> = servers.iter().map(|s| s.http.clone()).collect();
    let keys: Vec<String> = (0..KEYS).map(|k| format!("lin-{seed}-{k}")).collect();
    let start = Instant::now();
    let rec = Recorder::new(start);
    let until = start + Duration::from_secs(secs);
    let faults = std::thread::scope(|s| {
        for p in 0..CLIENTS {
            let (addrs, keys, rec) = (&addrs, &keys, &rec);
            s.spawn(move || register::client(p, seed, addrs, keys, until, rec));
        }
        schedule::faults_guarded(
            seed,
            &mut servers,
            until,
            &rec,
            &[FaultKind::Kill, FaultKind::Stop],
        )
    });
    let ops = rec.ops.into_inner().unwrap();
    let default_reads = rec.default_reads.into_inner().unwrap();

    let verdict = checker::check(&ops, BUDGET);
    let writes: Vec<Op> = ops
        .iter()
        .filter(|o| o.kind != Kind::Read)
        .cloned()
        .collect();
    let mut default_history = writes.clone();
    default_history.extend(default_reads.iter().cloned());
    match checker::check(&default_history, BUDGET) {
        Verdict::Linearizable => eprintln!("default-mode reads: linearizable in this run"),
        Verdict::Violation(v) => eprintln!("default-mode reads: NOT linearizable:\n{v}"),
        Verdict::Undecided { key, steps } => {
            eprintln!("default-mode reads: undecided (key {key}, {steps} steps)")
        }
    }
    let mut summary = summary(seed, secs, &ops, &default_reads);
    match register::worst_staleness(&writes, &default_reads) {
        Some((ms, r)) => {
            summary
                .figures
                .insert("worst_default_read_staleness_ms".into(), ms);
            eprintln!(
            "default-mode reads: worst stale read {ms:.1} ms after a newer write was acknowledged: {r}"
        )
        }
        None => eprintln!("default-mode reads: none older than an acknowledged write"),
    }
    let failure = match verdict {
        Verdict::Linearizable => None,
        Verdict::Violation(v) => Some(format!("?consistent history not linearizable:\n{v}")),
        Verdict::Undecided { key, steps } => {
            Some(format!("no verdict on key {key} within {steps} steps"))
        }
    };
    if let Some(why) = &failure {
        summary.verdict = why.lines().next().unwrap_or_default().to_string();
        summary.history = Some(save(seed, secs, &ops, &default_reads, &faults));
    }
    let acked: Vec<(u64, u64)> = writes
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
        .filter_map(|o| Some((o.invoke, o.complete?)))
        .collect();
    summary.print(&faults, &acked);
    match failure {
        None => eprintln!("?consistent: linearizable (seed {seed})"),
        Some(why) => panic!(
            "seed {seed}: {why} (history: {})",
            summary.history.unwrap_or_default()
        ),
    }
}

/// Operations by kind and outcome.
fn summary(seed: u64, secs: u64, ops: &[Op], default_reads: &[Op]) -> Summary {
    let mut summary = Summary::new("register", seed, secs);
    let tagged = ops
        .iter()
        .map(|o| (o, false))
        .chain(default_reads.iter().map(|o| (o, true)));
    for (o, default_mode) in tagged {
        let kind = match &o.kind {
            Kind::Read if default_mode => "read(default)",
            Kind::Read => "read(consistent)",
            Kind::Write(_) => "write",
            Kind::Cas(..) => "cas",
        };
        let outcome = match o.outcome {
            Outcome::Ok(_) => "ok",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        };
        summary.op(kind, outcome);
    }
    summary
}

/// Writes the run as JSON for replay and study; returns its path.
fn save(seed: u64, secs: u64, ops: &[Op], default_reads: &[Op], faults: &[Fault]) -> String {
    let body = serde_json::json!({
        "workload": "register",
        "seed": seed,
        "secs": secs,
        "faults": faults,
        "ops": ops,
        "default_reads": default_reads,
    });
    schedule::save("register", seed, &body)
}
