//! The register workload against a cluster of the built binary while
//! servers fail on a schedule drawn from a printed seed: the leader (or,
//! with no leader, a random server) SIGKILLed and restarted, or SIGSTOPped
//! and continued; and, with each server in its own network namespace
//! (`fault::netns`), the leader isolated, the servers cut into a majority
//! and a minority (the leader on either side), or a ring where each sees
//! only its neighbours; every fault healed after a while.
//! `?consistent` reads, writes and CAS must be linearizable. Default-mode
//! reads must never return a value older than an acknowledged write where
//! the leader lease promises it (every fault kind here: a server answers a
//! default read only as a leader within its lease); how stale they are is
//! reported as well.
//!
//! `MERIDIAN_FAULT_SEED=<n>[,<n>...]` replays seeds, `MERIDIAN_FAULT_SECS`
//! sets each run's length (CI: a fixed seed list, short runs),
//! `MERIDIAN_FAULT_KINDS=isolate,halves,ring,kill,stop` the partition
//! run's fault kinds, `MERIDIAN_FAULT_SERVERS` its cluster size (5).
//! A failing run's history is written under `target/fault-histories/`.

mod common;
mod fault {
    pub mod checker;
    pub mod netns;
    pub mod register;
}

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use common::*;
use fault::checker::{self, Kind, Op, Outcome, Verdict};
use fault::netns::Net;
use fault::register::{self, Recorder};

const CI_SEEDS: &[u64] = &[7, 19];
const CI_SECS: u64 = 12;
/// The partition run's CI seed and length: about ten faults of five kinds.
const CI_NETNS_SEEDS: &[u64] = &[23];
const CI_NETNS_SECS: u64 = 30;
const CLIENTS: usize = 6;
const KEYS: usize = 3;
/// Search steps per key before the checker gives up without a verdict.
const BUDGET: u64 = 5_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
enum FaultKind {
    Kill,
    Stop,
    /// The leader (or a random server) cut off from every other server.
    Isolate,
    /// A minority (`(n-1)/2` servers) cut off from the rest; the leader on
    /// the minority side half the time.
    Halves,
    /// Each server reaches only its two neighbours (a no-op below 5).
    Ring,
}

impl FaultKind {
    fn parse(s: &str) -> Option<FaultKind> {
        Some(match s {
            "kill" => FaultKind::Kill,
            "stop" => FaultKind::Stop,
            "isolate" => FaultKind::Isolate,
            "halves" => FaultKind::Halves,
            "ring" => FaultKind::Ring,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, serde::Serialize)]
struct Fault {
    kind: FaultKind,
    /// The server killed, paused or isolated (the leader if there was one).
    server: usize,
    was_leader: bool,
    /// The servers cut off from the majority (partitions; the ring has none).
    minority: Vec<usize>,
    /// ns since the run began: when the fault was in force (the process
    /// gone or stopped, every rule of the partition added), and its end
    /// (restart / SIGCONT / heal).
    at: u64,
    healed: u64,
}

/// Where the servers run.
struct Cluster {
    servers: Vec<TestAgent>,
    /// The namespaces (partition faults), or none (loopback: kills and
    /// pauses only). Declared after `servers`: they are dropped first.
    net: Option<Net>,
    kinds: Vec<FaultKind>,
}

fn env_seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("MERIDIAN_FAULT_SEED") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => default.to_vec(),
    }
}

fn env_secs(default: u64) -> u64 {
    std::env::var("MERIDIAN_FAULT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn register_is_linearizable_under_leader_kills_and_pauses() {
    let secs = env_secs(CI_SECS);
    for seed in env_seeds(CI_SEEDS) {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let cluster = Cluster {
            servers: three_servers(&dirs),
            net: None,
            kinds: vec![FaultKind::Kill, FaultKind::Stop],
        };
        run(seed, secs, cluster);
    }
}

#[test]
fn register_is_linearizable_under_partitions() {
    if let Some(why) = Net::available() {
        eprintln!("skipped: network namespaces unavailable ({why})");
        return;
    }
    let secs = env_secs(CI_NETNS_SECS);
    let n: usize = std::env::var("MERIDIAN_FAULT_SERVERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let kinds: Vec<FaultKind> = match std::env::var("MERIDIAN_FAULT_KINDS") {
        Ok(s) => s
            .split(',')
            .filter_map(|k| FaultKind::parse(k.trim()))
            .collect(),
        Err(_) => vec![
            FaultKind::Isolate,
            FaultKind::Halves,
            FaultKind::Ring,
            FaultKind::Kill,
            FaultKind::Stop,
        ],
    };
    assert!(
        !kinds.is_empty(),
        "MERIDIAN_FAULT_KINDS names no fault kind"
    );
    for seed in env_seeds(CI_NETNS_SEEDS) {
        let net = Net::new(n);
        let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let servers = net.servers(&dirs, &[]);
        let cluster = Cluster {
            servers,
            net: Some(net),
            kinds: kinds.clone(),
        };
        run(seed, secs, cluster);
    }
}

/// Injects a fault every 1.5–3 s, for 1–2.5 s, until `until`. The loopback
/// run draws as it always has (its seeds replay the same schedule).
fn faults(seed: u64, cluster: &mut Cluster, until: Instant, rec: &Recorder) -> Vec<Fault> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut done = Vec::new();
    let n = cluster.servers.len();
    // Partition runs go through the kinds in a seeded order, each once
    // before any twice: a short run still sees every kind.
    let mut order = cluster.kinds.clone();
    if cluster.net.is_some() {
        order.shuffle(&mut rng);
    }
    loop {
        std::thread::sleep(Duration::from_millis(rng.gen_range(1500..3000)));
        let down_for = Duration::from_millis(rng.gen_range(1000..2500));
        if Instant::now() + down_for >= until {
            return done;
        }
        let leader = leader_index(&cluster.servers);
        let server = leader.unwrap_or_else(|| rng.gen_range(0..n));
        let kind = match &cluster.net {
            None if rng.gen_bool(0.5) => FaultKind::Kill,
            None => FaultKind::Stop,
            Some(_) => order[done.len() % order.len()],
        };
        let minority: Vec<usize> = match kind {
            FaultKind::Isolate => vec![server],
            FaultKind::Halves => {
                let mut others: Vec<usize> = (0..n).filter(|&i| i != server).collect();
                others.shuffle(&mut rng);
                let size = (n - 1) / 2;
                if rng.gen_bool(0.5) {
                    others.truncate(size - 1);
                    others.push(server);
                } else {
                    others.truncate(size);
                }
                others.sort_unstable();
                others
            }
            _ => Vec::new(),
        };
        let servers = &mut cluster.servers;
        match (kind, &cluster.net) {
            (FaultKind::Kill, _) => servers[server].kill(),
            (FaultKind::Stop, _) => servers[server].signal_no_wait(libc::SIGSTOP),
            (FaultKind::Ring, Some(net)) => net.ring(),
            (_, Some(net)) => {
                let majority: Vec<usize> = (0..n).filter(|i| !minority.contains(i)).collect();
                net.partition(&minority, &majority);
            }
            (_, None) => unreachable!("partitions are drawn only with namespaces"),
        }
        // The fault is in force from here: a partition's rules take tens
        // of ms to add, and writes sent meanwhile may still commit.
        let at = rec.now();
        std::thread::sleep(down_for);
        let healed = rec.now();
        match (kind, &cluster.net) {
            // Waits until it answers HTTP again (same ports, same data).
            (FaultKind::Kill, _) => servers[server].restart_no_wait(),
            (FaultKind::Stop, _) => servers[server].signal_no_wait(libc::SIGCONT),
            (_, Some(net)) => net.heal(),
            (_, None) => {}
        }
        eprintln!(
            "seed {seed}: {kind:?} server {server} (leader: {}) minority {minority:?} at {:.2} s for {down_for:?}",
            leader.is_some(),
            at as f64 / 1e9
        );
        done.push(Fault {
            kind,
            server,
            was_leader: leader.is_some(),
            minority,
            at,
            healed,
        });
    }
}

fn run(seed: u64, secs: u64, mut cluster: Cluster) {
    let n = cluster.servers.len();
    eprintln!(
        "=== register workload: seed {seed}, {secs} s, {n} servers, faults {:?} (replay: MERIDIAN_FAULT_SEED={seed} MERIDIAN_FAULT_SECS={secs})",
        cluster.kinds
    );
    let addrs: Vec<String> = cluster.servers.iter().map(|s| s.http.clone()).collect();
    let keys: Vec<String> = (0..KEYS).map(|k| format!("lin-{seed}-{k}")).collect();
    let start = Instant::now();
    let rec = Recorder::new(start);
    let until = start + Duration::from_secs(secs);
    let faults = std::thread::scope(|s| {
        for p in 0..CLIENTS {
            let (addrs, keys, rec) = (&addrs, &keys, &rec);
            s.spawn(move || register::client(p, seed, addrs, keys, until, rec));
        }
        faults_guarded(seed, &mut cluster, until, &rec)
    });
    let ops = rec.ops.into_inner().unwrap();
    let default_reads = rec.default_reads.into_inner().unwrap();
    let writes: Vec<Op> = ops
        .iter()
        .filter(|o| o.kind != Kind::Read)
        .cloned()
        .collect();
    let stale = register::stale_reads(&writes, &default_reads);
    report(&ops, &default_reads, &faults, &stale, n);

    let verdict = checker::check(&ops, BUDGET);
    let mut default_history = writes.clone();
    default_history.extend(default_reads.iter().cloned());
    match checker::check(&default_history, BUDGET) {
        Verdict::Linearizable => eprintln!("default-mode reads: linearizable in this run"),
        Verdict::Violation(v) => eprintln!("default-mode reads: NOT linearizable:\n{v}"),
        Verdict::Undecided { key, steps } => {
            eprintln!("default-mode reads: undecided (key {key}, {steps} steps)")
        }
    }
    match stale.iter().max_by(|a, b| a.0.total_cmp(&b.0)) {
        Some((ms, r)) => eprintln!(
            "default-mode reads: {} older than an acknowledged write, the worst {ms:.1} ms after it: {r}",
            stale.len()
        ),
        None => eprintln!("default-mode reads: none older than an acknowledged write"),
    }
    let fail = |what: String| -> ! {
        let path = save(seed, secs, &ops, &default_reads, &faults);
        panic!("seed {seed}: {what} (history: {path})");
    };
    match verdict {
        Verdict::Linearizable => eprintln!("?consistent: linearizable (seed {seed})"),
        Verdict::Violation(v) => fail(format!("?consistent history not linearizable:\n{v}")),
        Verdict::Undecided { key, steps } => {
            fail(format!("no verdict on key {key} within {steps} steps"))
        }
    }
    // The leader lease: no server answers a default read from its own
    // state unless it leads within its lease, under any of these faults.
    if let Some((ms, r)) = stale.first() {
        fail(format!(
            "{} default-mode reads older than an acknowledged write (the first {ms:.1} ms after it: {r})",
            stale.len()
        ));
    }
}

/// `faults`, then every server running and reachable again (continued if
/// paused, partitions healed), so the cluster is whole when it is torn
/// down.
fn faults_guarded(seed: u64, cluster: &mut Cluster, until: Instant, rec: &Recorder) -> Vec<Fault> {
    let done = faults(seed, cluster, until, rec);
    for s in cluster.servers.iter() {
        s.signal_no_wait(libc::SIGCONT);
    }
    if let Some(net) = &cluster.net {
        net.heal();
    }
    let left = until.saturating_duration_since(Instant::now());
    std::thread::sleep(left);
    done
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Ok(_) => "ok",
        Outcome::Fail => "fail",
        Outcome::Unknown => "unknown",
    }
}

fn report(ops: &[Op], default_reads: &[Op], faults: &[Fault], stale: &[(f64, Op)], n: usize) {
    let mut counts: std::collections::BTreeMap<(String, String), usize> = Default::default();
    let tagged = ops
        .iter()
        .map(|o| (o, false))
        .chain(default_reads.iter().map(|o| (o, true)));
    let mut by_server = vec![[0usize; 3]; n];
    for (o, default_mode) in tagged {
        let kind = match &o.kind {
            Kind::Read if default_mode => "read(default)",
            Kind::Read => "read(consistent)",
            Kind::Write(_) => "write",
            Kind::Cas(..) => "cas",
        };
        *counts
            .entry((kind.into(), outcome_name(&o.outcome).into()))
            .or_default() += 1;
        let column = match o.outcome {
            Outcome::Ok(_) => 0,
            Outcome::Fail => 1,
            Outcome::Unknown => 2,
        };
        if let Some(row) = by_server.get_mut(o.server) {
            row[column] += 1;
        }
    }
    for ((k, o), n) in &counts {
        eprintln!("  {k:<17} {o:<8} {n}");
    }
    for (i, [ok, fail, unknown]) in by_server.iter().enumerate() {
        eprintln!("  via server {i}: {ok} ok, {fail} fail, {unknown} unknown");
    }
    let mut per_kind: std::collections::BTreeMap<String, usize> = Default::default();
    for f in faults {
        *per_kind.entry(format!("{:?}", f.kind)).or_default() += 1;
    }
    eprintln!(
        "faults: {} {per_kind:?}; {} of the leader",
        faults.len(),
        faults.iter().filter(|f| f.was_leader).count()
    );
    let acked_writes: Vec<&Op> = ops
        .iter()
        .filter(|o| o.kind != Kind::Read && matches!(o.outcome, Outcome::Ok(_)))
        .collect();
    // The first write sent after `t` and acknowledged (one already in
    // flight may be acknowledged by the old leader): ms after `t`.
    let next_ack = |t: u64| {
        acked_writes
            .iter()
            .filter(|o| o.invoke > t)
            .filter_map(|o| o.complete.filter(|&c| c > t))
            .min()
            .map(|c| (c - t) as f64 / 1e6)
    };
    let ms = |x: Option<f64>| x.map_or("none".into(), |v| format!("{v:.0} ms"));
    let mut resumed: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for (k, f) in faults.iter().enumerate() {
        // This fault's window: until the next one begins.
        let end = faults.get(k + 1).map_or(u64::MAX, |g| g.at);
        let window = |o: &&(f64, Op)| o.1.invoke >= f.at && o.1.invoke < end;
        let stale_here: Vec<&(f64, Op)> = stale.iter().filter(window).collect();
        let worst = stale_here
            .iter()
            .map(|s| s.0)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let mut stale_servers: Vec<usize> = stale_here.iter().map(|s| s.1.server).collect();
        stale_servers.sort_unstable();
        stale_servers.dedup();
        // Writes that did not go through in the second after the heal
        // (a returning server deposing a healthy leader shows here).
        // (A CAS whose compare failed is an answer, not a failure.)
        let after_heal = ops
            .iter()
            .filter(|o| o.invoke >= f.healed && o.invoke < (f.healed + 1_000_000_000).min(end))
            .filter(|o| match o.kind {
                Kind::Read => false,
                Kind::Write(_) => !matches!(o.outcome, Outcome::Ok(_)),
                Kind::Cas(..) => o.outcome == Outcome::Unknown,
            })
            .count();
        let resume = next_ack(f.at);
        if let Some(r) = resume {
            resumed.entry(format!("{:?}", f.kind)).or_default().push(r);
        }
        eprintln!(
            "  {:?} server {} (leader: {}) minority {:?} at {:.2} s for {:.2} s: next acknowledged write after {}; \
             stale default reads {} (worst {}, via servers {stale_servers:?}); after heal: next ack {}, {after_heal} writes not ok in 1 s",
            f.kind,
            f.server,
            f.was_leader,
            f.minority,
            f.at as f64 / 1e9,
            (f.healed - f.at) as f64 / 1e9,
            ms(resume),
            stale_here.len(),
            ms(worst),
            ms(next_ack(f.healed)),
        );
    }
    for (kind, mut v) in resumed {
        v.sort_by(f64::total_cmp);
        eprintln!(
            "  {kind}: writes resumed after a median {:.0} ms, max {:.0} ms over {} faults",
            v[v.len() / 2],
            v[v.len() - 1],
            v.len()
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
