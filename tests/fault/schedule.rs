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

use super::diskfs::LoopFs;
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
    /// A voter (the leader half the time) killed and removed from the Raft
    /// configuration; at the heal it starts again with an empty data
    /// directory and joins, as Consul's docs say to bring a removed server
    /// back.
    Remove,
    /// The leader's filesystem (each server's is one of [`Cluster::fs`])
    /// filled up; at the heal the space is freed and the server restarted.
    DiskFull,
    /// The server took itself down at one of its storage failpoints
    /// (`MERIDIAN_FAILPOINTS`): not drawn by [`faults`]; the failpoint run
    /// watches for the exits and restarts the server.
    Failpoint,
}

impl FaultKind {
    pub fn parse(s: &str) -> Option<FaultKind> {
        Some(match s {
            "kill" => FaultKind::Kill,
            "stop" => FaultKind::Stop,
            "isolate" => FaultKind::Isolate,
            "halves" => FaultKind::Halves,
            "ring" => FaultKind::Ring,
            "remove" => FaultKind::Remove,
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
    /// What the server under the fault did (a full disk: did it exit,
    /// what it logged).
    pub note: String,
    /// What the server did that it must not (the run fails on it).
    pub defect: Option<String>,
}

/// Where the servers run.
pub struct Cluster {
    pub servers: Vec<TestAgent>,
    /// The namespaces (partition faults), or none (loopback: kills and
    /// pauses only). Declared after `servers`: they are dropped first.
    pub net: Option<Net>,
    pub kinds: Vec<FaultKind>,
    /// Each server's data directory (a removed server comes back empty).
    pub dirs: Vec<std::path::PathBuf>,
    /// Each server's filesystem when they can fill up (`DiskFull`), or
    /// none. After `servers`: unmounted once they are gone.
    pub fs: Vec<LoopFs>,
    /// Whether a default-mode read older than an acknowledged write fails
    /// the run (else it is reported): false where the lease's assumptions
    /// are broken on purpose (clock rates apart by more than its margin).
    pub default_reads_fresh: bool,
}

impl Cluster {
    /// Three servers on loopback, faults among `kinds` (kills, pauses).
    pub fn loopback(dirs: &[tempfile::TempDir], kinds: &[FaultKind]) -> Cluster {
        Cluster {
            servers: three_servers(dirs),
            net: None,
            kinds: kinds.to_vec(),
            dirs: paths(dirs),
            fs: Vec::new(),
            default_reads_fresh: true,
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
            dirs: paths(&dirs),
            fs: Vec::new(),
            default_reads_fresh: true,
        };
        (dirs, cluster)
    }

    /// Every server's HTTP address.
    pub fn addrs(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.http.clone()).collect()
    }
}

/// The paths of temporary data directories.
pub fn paths(dirs: &[tempfile::TempDir]) -> Vec<std::path::PathBuf> {
    dirs.iter().map(|d| d.path().to_path_buf()).collect()
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
        let server = match kind {
            // A follower half the time: removing the leader also makes
            // it step down first.
            FaultKind::Remove if rng.gen_bool(0.5) => {
                let others: Vec<usize> = (0..n).filter(|&i| Some(i) != leader).collect();
                others[rng.gen_range(0..others.len())]
            }
            _ => server,
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
            (FaultKind::Remove, _) => {
                servers[server].kill();
                // Consul's procedure removes a server once gossip calls it
                // failed; every other removal (the first included) does not
                // wait: the leader's reconcile then adds the dead server
                // back as a learner, whose entry the rejoining server must
                // not end up answering for.
                let other = &servers[(server + 1) % n];
                let gone = done.len() % 2 == 1
                    && wait_until(15, || serf_failed(other, &servers[server].node));
                let removed = remove_peer(servers, server);
                eprintln!(
                    "seed {seed}: server {server} failed in gossip: {gone}, removed: {removed}, voters now {}",
                    voters(other)
                );
            }
            (FaultKind::DiskFull, _) => {
                let fs = &cluster.fs[server];
                eprintln!("seed {seed}: ballast took {} KiB", fs.fill() >> 10);
            }
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
        let mut note = String::new();
        let mut defect = None;
        match (kind, &cluster.net) {
            (FaultKind::Remove, _) => {
                let dir = &cluster.dirs[server];
                let _ = std::fs::remove_dir_all(dir);
                std::fs::create_dir_all(dir).expect("data dir");
                servers[server].restart_no_wait();
                let other = (server + 1) % n;
                let join = format!("127.0.0.1:{}", servers[other].serf_lan);
                let joined = reqwest::blocking::Client::new()
                    .put(servers[server].url(&format!("/v1/agent/join/{join}")))
                    .send()
                    .is_ok_and(|r| r.status().is_success());
                note = format!("rejoined: {joined}");
            }
            (FaultKind::DiskFull, _) => {
                let (what, wrong) = disk_full_check(&mut servers[server]);
                note = what;
                if let Some(d) = &wrong {
                    eprintln!("seed {seed}: DEFECT: {d}");
                }
                defect = wrong;
                cluster.fs[server].free();
                servers[server].restart_no_wait();
            }
            // Waits until it answers HTTP again (same ports, same data).
            (FaultKind::Kill, _) => servers[server].restart_no_wait(),
            (FaultKind::Stop, _) => servers[server].signal_no_wait(libc::SIGCONT),
            (_, Some(net)) => net.heal(),
            (_, None) => {}
        }
        eprintln!(
            "seed {seed}: {kind:?} server {server} (leader: {}) minority {minority:?} at {:.2} s for {down_for:?} {note}",
            leader == Some(server),
            at as f64 / 1e9
        );
        done.push(Fault {
            kind,
            server,
            was_leader: leader == Some(server),
            minority,
            at,
            healed,
            leader_after: None,
            note,
            defect,
        });
    }
}

/// Removes server `i` from the Raft configuration through another server
/// (the request is forwarded to the leader); retried while leadership
/// moves. Whether it went through.
fn remove_peer(servers: &[TestAgent], i: usize) -> bool {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let addr = format!("127.0.0.1:{}", servers[i].server_port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for (j, s) in servers.iter().enumerate() {
            if j == i {
                continue;
            }
            let url = s.url(&format!("/v1/operator/raft/peer?address={addr}"));
            if http
                .delete(url)
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Polls `check` for up to `secs`; whether it came to hold.
fn wait_until(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// Whether `observer`'s catalog has `node`'s serfHealth critical.
fn serf_failed(observer: &TestAgent, node: &str) -> bool {
    reqwest::blocking::get(observer.url(&format!("/v1/health/node/{node}?stale")))
        .and_then(|r| r.json::<serde_json::Value>())
        .ok()
        .and_then(|v| {
            v.as_array()?
                .iter()
                .find(|c| c["CheckID"] == "serfHealth")
                .map(|c| c["Status"] == "critical")
        })
        .unwrap_or(false)
}

/// The servers in the Raft configuration that vote, as `server` sees it.
pub fn voters(server: &TestAgent) -> usize {
    reqwest::blocking::get(server.url("/v1/operator/raft/configuration"))
        .and_then(|r| r.json::<serde_json::Value>())
        .ok()
        .and_then(|v| {
            v["Servers"]
                .as_array()
                .map(|a| a.iter().filter(|s| s["Voter"] == true).count())
        })
        .unwrap_or(0)
}

/// The full server's state while its disk is full, for the report, and
/// what is wrong with it: it must not panic, and a server whose Raft
/// storage failed must exit saying so, not keep serving a state that no
/// longer advances.
fn disk_full_check(s: &mut TestAgent) -> (String, Option<String>) {
    let log = s.log_text();
    let no_space = log
        .lines()
        .rev()
        .find(|l| l.contains("os error 28") || l.to_lowercase().contains("no space"))
        .map(|l| l.chars().take(400).collect::<String>());
    let storage_failed = log.contains("Raft storage failed");
    let panics = log.matches("panicked").count();
    let exited = s.exit_status();
    let note = format!(
        "process: {}; panics in its log: {panics}; last no-space line: {}",
        match exited {
            Some(st) => format!("exited ({st})"),
            None => "running".into(),
        },
        no_space.as_deref().unwrap_or("none")
    );
    let defect = if panics > 0 {
        Some(format!("the full server panicked: {note}"))
    } else if no_space.is_some() && exited.is_none() {
        Some(format!(
            "the full server failed to write and kept running: {note}"
        ))
    } else if exited.is_some_and(|st| st.success() || !storage_failed) {
        Some(format!(
            "the full server exited without saying its storage failed: {note}"
        ))
    } else {
        None
    };
    (note, defect)
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

/// How often each prober writes.
const PROBE_EVERY: Duration = Duration::from_millis(50);

/// The recovery probe of server `server`: a small write of its own key
/// through that server every `PROBE_EVERY` until `until`, each
/// acknowledged one recorded in `rec.probe`. One prober per server, so a
/// stopped or killed server holds up only its own prober; recovery is
/// then measured by the cluster taking writes again, not by when a
/// workload happens to write next (lock acquires wait for the lock to
/// be free and the lock-delay to pass: measured with them, a leader
/// pause "took" up to 3 s where the register clients, on the same
/// schedule, saw writes resume in 1.6 s at most).
fn probe(seed: u64, server: usize, addr: &str, until: Instant, rec: &Recorder) {
    let http = http(Duration::from_millis(500));
    let url = format!("http://{addr}/v1/kv/recovery-probe-{seed}/{server}");
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let invoke = rec.now();
        let ok = http
            .put(&url)
            .body(n.to_string())
            .send()
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.text().ok())
            .is_some_and(|t| t.trim() == "true");
        if ok {
            let done = rec.now();
            rec.probe
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((invoke, done));
        }
        std::thread::sleep(PROBE_EVERY);
    }
}

/// `clients` threads running `client(process)` beside the fault schedule
/// and the recovery probes until `until`; returns once all of them and
/// the schedule are done. Recovery (fault → next acknowledged write) is
/// read from the probes' writes and the workload's alike.
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
    let addrs = cluster.addrs();
    std::thread::scope(|s| {
        for p in 0..clients {
            let client = &client;
            s.spawn(move || client(p));
        }
        for (i, addr) in addrs.iter().enumerate() {
            s.spawn(move || probe(seed, i, addr, until, rec));
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
