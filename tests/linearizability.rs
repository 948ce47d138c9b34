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
}

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::*;
use fault::checker::{self, Kind, Op, Outcome, Verdict};
use fault::register::{self, Recorder};

const CI_SEEDS: &[u64] = &[7, 19];
const CI_SECS: u64 = 12;
const CLIENTS: usize = 6;
const KEYS: usize = 3;
/// Search steps per key before the checker gives up without a verdict.
const BUDGET: u64 = 5_000_000;

#[derive(Debug, Clone, Copy, serde::Serialize)]
enum FaultKind {
    Kill,
    Stop,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Fault {
    kind: FaultKind,
    server: usize,
    was_leader: bool,
    /// ns since the run began: the fault, and its end (restart / SIGCONT).
    at: u64,
    healed: u64,
}

fn env_seeds() -> Vec<u64> {
    match std::env::var("MERIDIAN_FAULT_SEED") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => CI_SEEDS.to_vec(),
    }
}

fn env_secs() -> u64 {
    std::env::var("MERIDIAN_FAULT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CI_SECS)
}

#[test]
fn register_is_linearizable_under_leader_kills_and_pauses() {
    let secs = env_secs();
    for seed in env_seeds() {
        run(seed, secs);
    }
}

/// Kills or pauses a server every 1.5–3 s, for 1–2.5 s, until `until`.
fn faults(seed: u64, servers: &mut [TestAgent], until: Instant, rec: &Recorder) -> Vec<Fault> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut done = Vec::new();
    loop {
        std::thread::sleep(Duration::from_millis(rng.gen_range(1500..3000)));
        let down_for = Duration::from_millis(rng.gen_range(1000..2500));
        if Instant::now() + down_for >= until {
            return done;
        }
        let leader = leader_index(servers);
        let server = leader.unwrap_or_else(|| rng.gen_range(0..servers.len()));
        let kind = if rng.gen_bool(0.5) {
            FaultKind::Kill
        } else {
            FaultKind::Stop
        };
        let at = rec.now();
        match kind {
            FaultKind::Kill => servers[server].kill(),
            FaultKind::Stop => servers[server].signal_no_wait(libc::SIGSTOP),
        }
        std::thread::sleep(down_for);
        let healed = rec.now();
        match kind {
            // Waits until it answers HTTP again (same ports, same data).
            FaultKind::Kill => servers[server].restart_no_wait(),
            FaultKind::Stop => servers[server].signal_no_wait(libc::SIGCONT),
        }
        eprintln!(
            "seed {seed}: {kind:?} server {server} (leader: {}) at {:.2} s for {down_for:?}",
            leader.is_some(),
            at as f64 / 1e9
        );
        done.push(Fault {
            kind,
            server,
            was_leader: leader.is_some(),
            at,
            healed,
        });
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
        faults_guarded(seed, &mut servers, until, &rec)
    });
    let ops = rec.ops.into_inner().unwrap();
    let default_reads = rec.default_reads.into_inner().unwrap();
    report(&ops, &default_reads, &faults);

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
    match register::worst_staleness(&writes, &default_reads) {
        Some((ms, r)) => eprintln!(
            "default-mode reads: worst stale read {ms:.1} ms after a newer write was acknowledged: {r}"
        ),
        None => eprintln!("default-mode reads: none older than an acknowledged write"),
    }
    match verdict {
        Verdict::Linearizable => eprintln!("?consistent: linearizable (seed {seed})"),
        Verdict::Violation(v) => {
            let path = save(seed, secs, &ops, &default_reads, &faults);
            panic!("seed {seed}: ?consistent history not linearizable (history: {path}):\n{v}");
        }
        Verdict::Undecided { key, steps } => {
            let path = save(seed, secs, &ops, &default_reads, &faults);
            panic!("seed {seed}: no verdict on key {key} within {steps} steps (history: {path})");
        }
    }
}

/// `faults`, then every server running again (continued if paused), so
/// the cluster is whole when it is torn down.
fn faults_guarded(
    seed: u64,
    servers: &mut [TestAgent],
    until: Instant,
    rec: &Recorder,
) -> Vec<Fault> {
    let done = faults(seed, servers, until, rec);
    for s in servers.iter() {
        s.signal_no_wait(libc::SIGCONT);
    }
    let left = until.saturating_duration_since(Instant::now());
    std::thread::sleep(left);
    done
}

fn report(ops: &[Op], default_reads: &[Op], faults: &[Fault]) {
    let mut counts: std::collections::BTreeMap<(String, String), usize> = Default::default();
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
        *counts.entry((kind.into(), outcome.into())).or_default() += 1;
    }
    for ((k, o), n) in &counts {
        eprintln!("  {k:<17} {o:<8} {n}");
    }
    let kills = faults
        .iter()
        .filter(|f| matches!(f.kind, FaultKind::Kill))
        .count();
    eprintln!(
        "faults: {} ({kills} SIGKILL+restart, {} SIGSTOP+SIGCONT; {} of the leader)",
        faults.len(),
        faults.len() - kills,
        faults.iter().filter(|f| f.was_leader).count()
    );
    for f in faults {
        // The first write sent after the fault began and acknowledged (one
        // already in flight may be acknowledged by the old leader).
        let next_ack = ops
            .iter()
            .filter(|o| o.kind != Kind::Read && matches!(o.outcome, Outcome::Ok(_)))
            .filter(|o| o.invoke > f.at)
            .filter_map(|o| o.complete.filter(|&c| c > f.at))
            .min();
        eprintln!(
            "  {:?} server {} (leader: {}) at {:.2} s, healed after {:.2} s: next acknowledged write after {}",
            f.kind,
            f.server,
            f.was_leader,
            f.at as f64 / 1e9,
            (f.healed - f.at) as f64 / 1e9,
            next_ack.map_or("none".into(), |t| format!("{:.0} ms", (t - f.at) as f64 / 1e6)),
        );
    }
}

/// Writes the run as JSON for replay and study; returns its path.
fn save(seed: u64, secs: u64, ops: &[Op], default_reads: &[Op], faults: &[Fault]) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fault-histories");
    let _ = std::fs::create_dir_all(&dir);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let path = dir.join(format!("register-seed{seed}-{stamp}.json"));
    let body = serde_json::json!({
        "workload": "register",
        "seed": seed,
        "secs": secs,
        "faults": faults,
        "ops": ops,
        "default_reads": default_reads,
    });
    match std::fs::write(&path, serde_json::to_vec_pretty(&body).unwrap_or_default()) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not written: {e})"),
    }
}
