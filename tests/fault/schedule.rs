//! The fault schedule every workload runs under (moved here from
//! `tests/linearizability.rs` so the register and the other workloads
//! share one), drawn from a printed seed: the leader (or, with no leader,
//! a random server) SIGKILLed and restarted, or SIGSTOPped and continued;
//! and, with each server in its own network namespace (`netns`), the
//! leader isolated, a majority/minority cut or a ring; every fault healed
//! after a while. Also what every workload reports the same
//! way: the faults and recovery times, the `MERIDIAN_FAULT_*` variables,
//! the one-line summary `scripts/fault-long.sh` adds up, and where a
//! failing run's history is kept.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::netns::Net;
use super::register::Recorder;
use crate::common::{leader_index, three_servers, TestAgent};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FaultKind {
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
    pub fn parse(s: &str) -> Option<FaultKind> {
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
pub struct Fault {
    pub kind: FaultKind,
    /// The server killed, paused or isolated (the leader if there was one).
    pub server: usize,
    pub was_leader: bool,
    /// The servers cut off from the majority (partitions; the ring has none).
    pub minority: Vec<usize>,
    /// ns since the run began: when the fault was in force (the process
    /// gone or stopped, every rule of the partition added), and its end
    /// (restart / SIGCONT / heal).
    pub at: u64,
    pub healed: u64,
    /// When every server first named the same leader after the heal
    /// (`None`: not before the next fault or the end).
    pub leader_after: Option<u64>,
}

/// Where the servers run.
pub struct Cluster {
    pub servers: Vec<TestAgent>,
    /// The namespaces (partition faults), or none (loopback: kills and
    /// pauses only). Declared after `servers`: they are dropped first.
    pub net: Option<Net>,
    pub kinds: Vec<FaultKind>,
}

impl Cluster {
    /// Three servers on loopback, faults among `kinds` (kills, pauses).
    pub fn loopback(dirs: &[tempfile::TempDir], kinds: &[FaultKind]) -> Cluster {
        Cluster {
            servers: three_servers(dirs),
            net: None,
            kinds: kinds.to_vec(),
        }
    }

    /// The cluster a workload runs on: three servers on loopback with
    /// `kinds`; or, when `MERIDIAN_FAULT_KINDS` names kinds (`isolate`,
    /// `halves`, `ring`, `kill`, `stop`) and network namespaces are
    /// available, `MERIDIAN_FAULT_SERVERS` (5) servers in namespaces with
    /// those. The data directories come first: dropped after the cluster.
    pub fn for_workload(kinds: &[FaultKind]) -> (Vec<tempfile::TempDir>, Cluster) {
        let from_env: Vec<FaultKind> = std::env::var("MERIDIAN_FAULT_KINDS")
            .map(|s| {
                s.split(',')
                    .filter_map(|k| FaultKind::parse(k.trim()))
                    .collect()
            })
            .unwrap_or_default();
        let partitions = from_env
            .iter()
            .any(|k| !matches!(k, FaultKind::Kill | FaultKind::Stop));
        if from_env.is_empty() || (partitions && Net::available().is_some()) {
            if partitions {
                eprintln!("namespaces unavailable: kills and pauses on loopback instead");
            }
            let dirs: Vec<tempfile::TempDir> =
                (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
            let cluster = Cluster::loopback(&dirs, kinds);
            return (dirs, cluster);
        }
        if !partitions {
            let dirs: Vec<tempfile::TempDir> =
                (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
            let cluster = Cluster::loopback(&dirs, &from_env);
            return (dirs, cluster);
        }
        let n: usize = std::env::var("MERIDIAN_FAULT_SERVERS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5);
        let net = Net::new(n);
        let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let servers = net.servers(&dirs, &[]);
        let cluster = Cluster {
            servers,
            net: Some(net),
            kinds: from_env,
        };
        (dirs, cluster)
    }

    /// Every server's HTTP address.
    pub fn addrs(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.http.clone()).collect()
    }
}

/// `MERIDIAN_FAULT_SEED=<n>[,<n>...]`, else the test's fixed list.
pub fn env_seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("MERIDIAN_FAULT_SEED") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => default.to_vec(),
    }
}

/// `MERIDIAN_FAULT_SECS`, else the test's short CI length.
pub fn env_secs(default: u64) -> u64 {
    std::env::var("MERIDIAN_FAULT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Every server names the same leader (the healed one included).
fn one_leader(servers: &[TestAgent]) -> bool {
    let http = http(Duration::from_millis(500));
    let mut named = servers.iter().map(|s| {
        http.get(s.url("/v1/status/leader"))
            .send()
            .and_then(|r| r.json::<String>())
            .unwrap_or_default()
    });
    let first = named.next().unwrap_or_default();
    !first.is_empty() && named.all(|l| l == first)
}

/// Records in `f` when one leader is seen after its heal, polling until
/// then or `until`.
fn watch_leader(f: &mut Fault, servers: &[TestAgent], rec: &Recorder, until: Instant) {
    while Instant::now() < until && f.leader_after.is_none() {
        if one_leader(servers) {
            f.leader_after = Some(rec.now());
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Injects a fault every 1.5–3 s, for 1–2.5 s, until `until`. The loopback
/// run draws as it always has (its seeds replay the same schedule); a kind
/// drawn there that the cluster does not allow becomes its first kind.
pub fn faults(seed: u64, cluster: &mut Cluster, until: Instant, rec: &Recorder) -> Vec<Fault> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut done: Vec<Fault> = Vec::new();
    let n = cluster.servers.len();
    // Partition runs go through the kinds in a seeded order, each once
    // before any twice: a short run still sees every kind.
    let mut order = cluster.kinds.clone();
    if cluster.net.is_some() {
        order.shuffle(&mut rng);
    }
    loop {
        let gap = Duration::from_millis(rng.gen_range(1500..3000));
        // The previous heal's "→ leader" is measured inside the gap, so
        // measuring it does not move the schedule.
        let gap_end = Instant::now() + gap;
        if let Some(f) = done.last_mut() {
            watch_leader(f, &cluster.servers, rec, gap_end);
        }
        std::thread::sleep(gap_end.saturating_duration_since(Instant::now()));
        let down_for = Duration::from_millis(rng.gen_range(1000..2500));
        if Instant::now() + down_for >= until {
            return done;
        }
        let leader = leader_index(&cluster.servers);
        let server = leader.unwrap_or_else(|| rng.gen_range(0..n));
        let kind = match &cluster.net {
            None => {
                let drawn = if rng.gen_bool(0.5) {
                    FaultKind::Kill
                } else {
                    FaultKind::Stop
                };
                if cluster.kinds.contains(&drawn) {
                    drawn
                } else {
                    cluster.kinds[0]
                }
            }
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
            leader_after: None,
        });
    }
}

/// `faults`, then every server running and reachable again (continued if
/// paused, partitions healed), so the cluster is whole when it is torn
/// down or checked.
pub fn faults_guarded(
    seed: u64,
    cluster: &mut Cluster,
    until: Instant,
    rec: &Recorder,
) -> Vec<Fault> {
    let mut done = faults(seed, cluster, until, rec);
    for s in cluster.servers.iter() {
        s.signal_no_wait(libc::SIGCONT);
    }
    if let Some(net) = &cluster.net {
        net.heal();
    }
    if let Some(f) = done.last_mut() {
        watch_leader(f, &cluster.servers, rec, until);
    }
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    done
}

/// Recovery after one fault: the first write sent after it began and
/// acknowledged (one already in flight may be acknowledged by the old
/// leader), in ms after the fault; and heal → leader seen, in ms.
pub fn recovery(f: &Fault, acked_writes: &[(u64, u64)]) -> (Option<f64>, Option<f64>) {
    let next_ack = acked_writes
        .iter()
        .filter(|&&(invoke, done)| invoke > f.at && done > f.at)
        .map(|&(_, done)| done)
        .min();
    (
        next_ack.map(|t| (t - f.at) as f64 / 1e6),
        f.leader_after
            .map(|t| t.saturating_sub(f.healed) as f64 / 1e6),
    )
}

/// Prints the faults with their recovery times. `acked_writes` are the
/// workload's acknowledged writes as (invoke, complete) ns.
pub fn report_faults(faults: &[Fault], acked_writes: &[(u64, u64)]) {
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    for f in faults {
        *per_kind.entry(format!("{:?}", f.kind)).or_default() += 1;
    }
    eprintln!(
        "faults: {} {per_kind:?}; {} of the leader",
        faults.len(),
        faults.iter().filter(|f| f.was_leader).count()
    );
    let ms = |x: Option<f64>| x.map_or("none".into(), |t| format!("{t:.0} ms"));
    for f in faults {
        let (write, leader) = recovery(f, acked_writes);
        eprintln!(
            "  {:?} server {} (leader: {}) minority {:?} at {:.2} s, healed after {:.2} s: next acknowledged write after {}, leader {} after the heal",
            f.kind,
            f.server,
            f.was_leader,
            f.minority,
            f.at as f64 / 1e9,
            (f.healed - f.at) as f64 / 1e9,
            ms(write),
            ms(leader),
        );
    }
}

/// One run's figures as one `FAULT-SUMMARY {json}` line on stderr, which
/// `scripts/fault-long.sh` adds up across runs and workloads.
pub struct Summary {
    pub workload: &'static str,
    pub seed: u64,
    pub secs: u64,
    /// "kind/outcome" → count.
    pub ops: BTreeMap<String, u64>,
    /// What the checker said ("ok", or why not).
    pub verdict: String,
    /// Workload figures worth adding up (lost items, overlaps...).
    pub figures: BTreeMap<String, f64>,
    pub history: Option<String>,
}

impl Summary {
    pub fn new(workload: &'static str, seed: u64, secs: u64) -> Summary {
        Summary {
            workload,
            seed,
            secs,
            ops: BTreeMap::new(),
            verdict: "ok".into(),
            figures: BTreeMap::new(),
            history: None,
        }
    }

    pub fn op(&mut self, kind: &str, outcome: &str) {
        *self.ops.entry(format!("{kind}/{outcome}")).or_default() += 1;
    }

    /// The operations, the faults with their recovery, and the summary line.
    pub fn print(&self, faults: &[Fault], acked_writes: &[(u64, u64)]) {
        for (k, n) in &self.ops {
            eprintln!("  {k:<28} {n}");
        }
        report_faults(faults, acked_writes);
        self.line(faults, acked_writes);
    }

    /// Only the `FAULT-SUMMARY` line (for a test that reports the rest
    /// its own way).
    pub fn line(&self, faults: &[Fault], acked_writes: &[(u64, u64)]) {
        let recoveries: Vec<serde_json::Value> = faults
            .iter()
            .map(|f| {
                let (write, leader) = recovery(f, acked_writes);
                serde_json::json!({
                    "kind": f.kind, "was_leader": f.was_leader, "minority": f.minority,
                    "kill_to_write_ms": write, "heal_to_leader_ms": leader,
                })
            })
            .collect();
        let line = serde_json::json!({
            "workload": self.workload,
            "seed": self.seed,
            "secs": self.secs,
            "ops": self.ops,
            "verdict": self.verdict,
            "figures": self.figures,
            "faults": recoveries,
            "history": self.history,
        });
        eprintln!("FAULT-SUMMARY {line}");
    }
}

/// Writes a run as JSON under `target/fault-histories/` for replay and
/// study; returns its path (or why it was not written).
pub fn save(workload: &str, seed: u64, body: &serde_json::Value) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fault-histories");
    let _ = std::fs::create_dir_all(&dir);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let path = dir.join(format!("{workload}-seed{seed}-{stamp}.json"));
    match std::fs::write(&path, serde_json::to_vec_pretty(body).unwrap_or_default()) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not written: {e})"),
    }
}

/// Operations by kind and outcome, counted by many client threads.
#[derive(Default)]
pub struct Tally(std::sync::Mutex<BTreeMap<String, u64>>);

impl Tally {
    pub fn add(&self, kind: &str, outcome: &str) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(format!("{kind}/{outcome}")).or_default() += 1;
    }

    pub fn into_summary(self, workload: &'static str, seed: u64, secs: u64) -> Summary {
        let mut s = Summary::new(workload, seed, secs);
        s.ops = self.0.into_inner().unwrap_or_else(|e| e.into_inner());
        s
    }
}

/// A client with `timeout` for every call (and for connecting).
pub fn http(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(1)))
        .build()
        .unwrap_or_else(|_| reqwest::blocking::Client::new())
}

/// `clients` threads running `client(process)` beside the fault schedule
/// until `until`; returns once all of them and the schedule are done.
pub fn run_under_faults(
    seed: u64,
    cluster: &mut Cluster,
    until: Instant,
    rec: &Recorder,
    clients: usize,
    client: impl Fn(usize) + Sync,
) -> Vec<Fault> {
    eprintln!(
        "{} servers{}, faults {:?}",
        cluster.servers.len(),
        if cluster.net.is_some() {
            " in network namespaces"
        } else {
            ""
        },
        cluster.kinds
    );
    std::thread::scope(|s| {
        for p in 0..clients {
            let client = &client;
            s.spawn(move || client(p));
        }
        faults_guarded(seed, cluster, until, rec)
    })
}

/// Calls `read` on each server in turn until one answers or `secs` pass:
/// after the faults, the one read every final check starts from.
pub fn settled<T>(addrs: &[String], secs: u64, mut read: impl FnMut(&str) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    for server in addrs.iter().cycle() {
        if let Some(v) = read(server) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no server answered the final read within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    unreachable!("cycle over a non-empty list")
}
