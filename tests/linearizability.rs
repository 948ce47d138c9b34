//! The register workload against a cluster of the built binary while
//! servers fail on a schedule drawn from a printed seed: the leader (or,
//! with no leader, a random server) SIGKILLed and restarted, or SIGSTOPped
//! and continued; and, with each server in its own network namespace
//! (`fault::netns`), the leader isolated, the servers cut into a majority
//! and a minority (the leader on either side), or a ring where each sees
//! only its neighbours; every fault healed after a while. Three more runs:
//! a voter removed from the Raft configuration and brought back with an
//! empty data directory; server 0's data directory on a small ext4
//! (`fault::diskfs`) that fills up; servers under libfaketime (an offset
//! and a fast clock) while the leader is isolated, killed or paused.
//! `?consistent` reads, writes and CAS must be linearizable. Default-mode
//! reads must never return a value older than an acknowledged write where
//! the leader lease promises it (every fault kind here: a server answers a
//! default read only as a leader within its lease); how stale they are is
//! reported as well.
//!
//! `MERIDIAN_FAULT_SEED=<n>[,<n>...]` replays seeds, `MERIDIAN_FAULT_SECS`
//! sets each run's length (CI: a fixed seed list, short runs),
//! `MERIDIAN_FAULT_KINDS=isolate,halves,ring,kill,stop` the partition
//! run's fault kinds, `MERIDIAN_FAULT_SERVERS` its cluster size (5),
//! `MERIDIAN_FAULT_SKEW` the clock-skew run's FAKETIME per server
//! (comma-separated, empty for none).
//! A failing run's history is written under `target/fault-histories/`.

mod common;
mod fault {
    pub mod checker;
    pub mod diskfs;
    pub mod netns;
    pub mod register;
}

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use common::*;
use fault::checker::{self, Kind, Op, Outcome, Verdict};
use fault::diskfs::LoopFs;
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
    /// A voter (the leader half the time) killed and removed from the Raft
    /// configuration; at the heal it starts again with an empty data
    /// directory and joins, as Consul's docs say to bring a removed server
    /// back.
    Remove,
    /// The leader's filesystem (each server's is one of [`Cluster::fs`])
    /// filled up; at the heal the space is freed and the server restarted.
    DiskFull,
}

impl FaultKind {
    fn parse(s: &str) -> Option<FaultKind> {
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
    /// What the server under the fault did (a full disk: did it exit,
    /// what it logged).
    note: String,
    /// What the server did that it must not (the run fails on it).
    defect: Option<String>,
}

/// Where the servers run.
struct Cluster {
    servers: Vec<TestAgent>,
    /// The namespaces (partition faults), or none (loopback: kills and
    /// pauses only). Declared after `servers`: they are dropped first.
    net: Option<Net>,
    kinds: Vec<FaultKind>,
    /// Each server's data directory (a removed server comes back empty).
    dirs: Vec<std::path::PathBuf>,
    /// Each server's filesystem when they can fill up (`DiskFull`), or
    /// none. After `servers`: unmounted once they are gone.
    fs: Vec<LoopFs>,
    /// Whether a default-mode read older than an acknowledged write fails
    /// the run (else it is reported): false where the lease's assumptions
    /// are broken on purpose (clock rates apart by more than its margin).
    default_reads_fresh: bool,
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
            dirs: paths(&dirs),
            fs: Vec::new(),
            default_reads_fresh: true,
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
            dirs: paths(&dirs),
            fs: Vec::new(),
            default_reads_fresh: true,
        };
        run(seed, secs, cluster);
    }
}

fn paths(dirs: &[tempfile::TempDir]) -> Vec<std::path::PathBuf> {
    dirs.iter().map(|d| d.path().to_path_buf()).collect()
}

/// A voter removed and brought back (`FaultKind::Remove`) over and over;
/// the run ends with three voters again.
#[test]
fn register_is_linearizable_under_voter_removal() {
    let secs = env_secs(20);
    for seed in env_seeds(&[31]) {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let cluster = Cluster {
            servers: three_servers(&dirs),
            net: None,
            kinds: vec![FaultKind::Remove],
            dirs: paths(&dirs),
            fs: Vec::new(),
            default_reads_fresh: true,
        };
        run(seed, secs, cluster);
    }
}

/// Each server's data directory on a small ext4 of its own; the leader's
/// (or, with none, a random server's) fills up
/// (`FaultKind::DiskFull`) while the clients and a writer of large values
/// keep the log growing. Every acknowledged large value must be on every
/// server at the end, the restarted full one included.
#[test]
fn register_is_linearizable_when_a_disk_fills_up() {
    if let Some(why) = LoopFs::available() {
        eprintln!("skipped: no loop-mounted filesystem ({why})");
        return;
    }
    let secs = env_secs(CI_SECS);
    for seed in env_seeds(&[41]) {
        let fs: Vec<LoopFs> = (0..3).map(|_| LoopFs::new(64)).collect();
        let dirs: Vec<tempfile::TempDir> = fs
            .iter()
            .map(|f| tempfile::tempdir_in(f.path()).unwrap())
            .collect();
        let cluster = Cluster {
            servers: three_servers(&dirs),
            net: None,
            kinds: vec![FaultKind::DiskFull],
            dirs: paths(&dirs),
            fs,
            default_reads_fresh: true,
        };
        run(seed, secs, cluster);
    }
}

/// libfaketime's library (Debian's `libfaketime`).
const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Kills and pauses (the loopback schedule) while servers run with
/// skewed clocks: by default server 1's wall clock 30 s ahead and server
/// 2's clocks running 1.5 times fast (`MERIDIAN_FAULT_SKEW=<spec>,<spec>,
/// <spec>`, libfaketime's FAKETIME per server, empty for none). Monotonic
/// time is faked too (libfaketime's default, FAKETIME_DONT_FAKE_MONOTONIC
/// =0): Rust's Instant, and so every Raft timer and the lease, runs at the
/// skewed rate. A rate needs an offset before it (`+0 x1.5`): a bare `x1.5`
/// scales only sleeps, not the clocks.
#[test]
fn register_is_linearizable_with_skewed_clocks() {
    if !std::path::Path::new(FAKETIME_LIB).exists() {
        eprintln!("skipped: {FAKETIME_LIB} missing (Debian package faketime)");
        return;
    }
    let skews: Vec<String> = match std::env::var("MERIDIAN_FAULT_SKEW") {
        Ok(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Err(_) => vec!["".into(), "+30s".into(), "+0 x1.5".into()],
    };
    let prefixes: Vec<Vec<String>> = skews
        .iter()
        .map(|spec| match spec.as_str() {
            "" => Vec::new(),
            spec => vec![
                "env".into(),
                format!("LD_PRELOAD={FAKETIME_LIB}"),
                format!("FAKETIME={spec}"),
                "FAKETIME_DONT_FAKE_MONOTONIC=0".into(),
            ],
        })
        .collect();
    // The lease allows for clocks whose rates differ by 10% (the drift
    // margin in src/actors/raft/timing.rs); past that a default read may
    // be stale and is reported, not failed on.
    let within_margin = skews.iter().all(|spec| {
        spec.split_whitespace()
            .filter_map(|w| w.strip_prefix('x'))
            .all(|r| r.parse::<f64>().is_ok_and(|r| (r - 1.0).abs() <= 0.1))
    });
    eprintln!(
        "clock skew per server (libfaketime FAKETIME): {skews:?}; rates within the lease's drift margin: {within_margin}"
    );
    let secs = env_secs(CI_SECS);
    for seed in env_seeds(&[53]) {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        // With namespaces the leader is isolated too: a live leader cut
        // off while the others' clocks run fast is where a lease would
        // outlast the election that replaces it.
        let (servers, net, kinds) = match Net::available() {
            None => {
                let net = Net::new(3);
                let servers = net.servers_wrapped(&dirs, &[], &prefixes);
                let kinds = vec![FaultKind::Isolate, FaultKind::Kill, FaultKind::Stop];
                (servers, Some(net), kinds)
            }
            Some(why) => {
                eprintln!("no namespaces ({why}): kills and pauses only");
                let servers = three_servers_in(&dirs, &[], &prefixes);
                (servers, None, vec![FaultKind::Kill, FaultKind::Stop])
            }
        };
        for (i, s) in servers.iter().enumerate() {
            let maps = std::fs::read_to_string(format!("/proc/{}/maps", s.pid().unwrap_or(0)))
                .unwrap_or_default();
            assert_eq!(
                maps.contains("libfaketime"),
                !prefixes[i].is_empty(),
                "server {i}: libfaketime preloaded only where a skew is set"
            );
        }
        let cluster = Cluster {
            servers,
            net,
            kinds,
            dirs: paths(&dirs),
            fs: Vec::new(),
            default_reads_fresh: within_margin,
        };
        run(seed, secs, cluster);
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
fn voters(server: &TestAgent) -> usize {
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
        let loopback = cluster.net.is_none() && cluster.kinds == [FaultKind::Kill, FaultKind::Stop];
        let kind = match &cluster.net {
            None if loopback && rng.gen_bool(0.5) => FaultKind::Kill,
            None if loopback => FaultKind::Stop,
            _ => order[done.len() % order.len()],
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
            note,
            defect,
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
    let filling = !cluster.fs.is_empty();
    let (faults, bulk) = std::thread::scope(|s| {
        for p in 0..CLIENTS {
            let (addrs, keys, rec) = (&addrs, &keys, &rec);
            s.spawn(move || register::client(p, seed, addrs, keys, until, rec));
        }
        let bulk = filling.then(|| s.spawn(|| bulk_writer(seed, &addrs, until)));
        let faults = faults_guarded(seed, &mut cluster, until, &rec);
        (faults, bulk.map(|b| b.join().unwrap()).unwrap_or_default())
    });
    // A removed or full server is back: every server holds every
    // acknowledged write, and the cluster has its three voters.
    if cluster
        .kinds
        .iter()
        .any(|k| matches!(k, FaultKind::Remove | FaultKind::DiskFull))
    {
        converged(&cluster.servers, &keys, &bulk, &rec);
    }
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
    if let Some(d) = faults.iter().find_map(|f| f.defect.clone()) {
        fail(d);
    }
    // The leader lease: no server answers a default read from its own
    // state unless it leads within its lease, under any of these faults.
    if let Some((ms, r)) = stale.first().filter(|_| cluster.default_reads_fresh) {
        fail(format!(
            "{} default-mode reads older than an acknowledged write (the first {ms:.1} ms after it: {r})",
            stale.len()
        ));
    }
}

/// Large values, each under a key of its own, sent to any server until
/// `until`: a Raft log of small writes grows too slowly to fill a disk.
/// The keys whose write was acknowledged.
fn bulk_writer(seed: u64, addrs: &[String], until: Instant) -> Vec<String> {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let body = "x".repeat(BULK_BYTES);
    let mut acked = Vec::new();
    let mut n = 0usize;
    while Instant::now() < until {
        n += 1;
        let key = format!("bulk-{seed}-{n}");
        let url = format!("http://{}/v1/kv/{key}", addrs[n % addrs.len()]);
        let ok = http
            .put(url)
            .body(body.clone())
            .send()
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.text().ok())
            .is_some_and(|t| t.trim() == "true");
        if ok {
            acked.push(key);
        }
        // About 0.6 MB/s: the full server's log grows past any slack in
        // its file while the disk is full, and the 64 MiB filesystem
        // (log, state, both copies) lasts a 30 s run.
        std::thread::sleep(Duration::from_millis(100));
    }
    acked
}

const BULK_BYTES: usize = 64 << 10;

/// The value under `key` as `url` returns it (`None`: absent), or no
/// answer.
fn get_value(url: &str) -> Option<Option<String>> {
    use base64::Engine;
    let r = reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .ok()?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Some(None);
    }
    let v: serde_json::Value = r.error_for_status().ok()?.json().ok()?;
    let raw = v[0]["Value"].as_str().unwrap_or("");
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    Some(Some(String::from_utf8(bytes).ok()?))
}

/// After the run: three voters seen by every server; each register key's
/// `?consistent` value (added to the history, so the checker holds it to
/// the acknowledged writes) served by every server from its own state
/// (`?stale`); every acknowledged bulk key on every server.
fn converged(servers: &[TestAgent], keys: &[String], bulk: &[String], rec: &Recorder) {
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !servers.iter().all(|s| voters(s) == 3) {
        if Instant::now() > deadline {
            let logs: Vec<String> = servers
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    format!(
                        "--- server {i}: {} voters; log tail:\n{}",
                        voters(s),
                        s.log_tail()
                    )
                })
                .collect();
            panic!("not three voters 30 s after the run:\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for key in keys {
        let invoke = rec.now();
        let mut value = None;
        wait_for(&format!("a ?consistent read of {key}"), 20, || {
            value = servers
                .iter()
                .find_map(|s| get_value(&s.url(&format!("/v1/kv/{key}?consistent"))));
            value.is_some()
        });
        let value = value.unwrap();
        rec.ops.lock().unwrap().push(Op {
            process: CLIENTS,
            server: 0,
            key: key.clone(),
            kind: Kind::Read,
            invoke,
            complete: Some(rec.now()),
            outcome: Outcome::Ok(value.clone()),
        });
        for (i, s) in servers.iter().enumerate() {
            wait_for(
                &format!("server {i} serving {key}'s last value"),
                20,
                || get_value(&s.url(&format!("/v1/kv/{key}?stale"))) == Some(value.clone()),
            );
        }
    }
    for (i, s) in servers.iter().enumerate() {
        for key in bulk {
            wait_for(
                &format!("server {i} holding acknowledged {key}"),
                20,
                || {
                    get_value(&s.url(&format!("/v1/kv/{key}?stale")))
                        .flatten()
                        .is_some_and(|v| v.len() == BULK_BYTES)
                },
            );
        }
    }
    eprintln!(
        "converged: 3 voters, every server serves the last value of {} keys and {} acknowledged large values ({:?} after the run)",
        keys.len(),
        bulk.len(),
        started.elapsed()
    );
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
             stale default reads {} (worst {}, via servers {stale_servers:?}); after heal: next ack {}, {after_heal} writes not ok in 1 s {}",
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
            f.note,
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
