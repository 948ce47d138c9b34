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
    pub mod schedule;
}

use std::time::{Duration, Instant};

use common::*;
use fault::checker::{self, Kind, Op, Outcome, Verdict};
use fault::diskfs::LoopFs;
use fault::netns::Net;
use fault::register::{self, Recorder};
use fault::schedule::{
    self, env_secs, env_seeds, faults_guarded, paths, voters, Cluster, Fault, FaultKind,
};

const CI_SEEDS: &[u64] = &[7, 19];
const CI_SECS: u64 = 12;
/// The partition run's CI seed and length: about ten faults of five kinds.
const CI_NETNS_SEEDS: &[u64] = &[23];
const CI_NETNS_SECS: u64 = 30;
const CLIENTS: usize = 6;
const KEYS: usize = 3;
/// Search steps per key before the checker gives up without a verdict.
const BUDGET: u64 = 5_000_000;

#[test]
fn register_is_linearizable_under_leader_kills_and_pauses() {
    let secs = env_secs(CI_SECS);
    for seed in env_seeds(CI_SEEDS) {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let cluster = Cluster::loopback(&dirs, &[FaultKind::Kill, FaultKind::Stop]);
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

/// A voter removed and brought back (`FaultKind::Remove`) over and over;
/// the run ends with three voters again.
#[test]
fn register_is_linearizable_under_voter_removal() {
    let secs = env_secs(20);
    for seed in env_seeds(&[31]) {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let cluster = Cluster::loopback(&dirs, &[FaultKind::Remove]);
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
            fs,
            ..Cluster::loopback(&dirs, &[FaultKind::DiskFull])
        };
        run(seed, secs, cluster);
    }
}

/// What a server may be armed with in the failpoint run
/// (`MERIDIAN_FAILPOINTS`), by name: `{n}` is filled with the hit at
/// which a log point fires (each start counts afresh, so a server fails
/// again every `n` log batches). The snapshot points fire by chance, not
/// on a count: a restarted server that needs a snapshot gets one on
/// every start, and one that always crashed installing it would never
/// catch up.
const FAILPOINT_MODES: &[(&str, &str)] = &[
    ("append-error", "raft_log_append=error@{n}"),
    ("before-fsync-crash", "raft_log_before_fsync=crash@{n}"),
    ("before-fsync-panic", "raft_log_before_fsync=panic@{n}"),
    ("after-fsync-crash", "raft_log_after_fsync=crash@{n}"),
    ("after-fsync-error", "raft_log_after_fsync=error@{n}"),
    ("snapshot-write-crash", "snapshot_write=crash@20%"),
    ("snapshot-write-error", "snapshot_write=error@20%"),
    ("snapshot-install-crash", "snapshot_install=crash@20%"),
    ("snapshot-install-error", "snapshot_install=error@20%"),
    (
        "snapshot-install-saved-crash",
        "snapshot_install_saved=crash@20%",
    ),
    ("fsync-delay", "raft_log_before_fsync=delay:400@2%"),
];

/// The CI run's arming, server by server: a crash between the append and
/// its fsync, a crash after the fsync before the acknowledgement, an
/// error on the append; each with one snapshot point.
const CI_FAILPOINTS: &[&str] = &[
    "before-fsync-crash+snapshot-install-crash",
    "after-fsync-crash+snapshot-write-crash",
    "append-error+snapshot-install-saved-crash",
];

/// A server's `MERIDIAN_FAILPOINTS` from mode names joined by `+`.
fn failpoint_spec(modes: &str, n: u64) -> String {
    modes
        .split('+')
        .map(|m| {
            let (_, spec) = FAILPOINT_MODES
                .iter()
                .find(|(name, _)| *name == m.trim())
                .unwrap_or_else(|| {
                    panic!(
                        "unknown failpoint mode {m:?} (known: {:?})",
                        FAILPOINT_MODES.iter().map(|(n, _)| n).collect::<Vec<_>>()
                    )
                });
            spec.replace("{n}", &n.to_string())
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// The storage failpoints (`src/failpoint.rs`) armed in three servers
/// whose snapshots come every 32 entries: each server fails at its own
/// points (`MERIDIAN_FAILPOINTS_RUN=<modes>,<modes>,<modes>`, modes from
/// `FAILPOINT_MODES` joined by `+`; `MERIDIAN_FAILPOINT_N` the log
/// batch a log point fires at, default 300). The harness restarts every
/// server that goes down. A crash must be the failpoint's own SIGKILL;
/// an error or panic must end in exit 1 with "Raft storage failed" (a
/// server that goes on after its storage failed is a defect). The
/// register history must stay linearizable and every acknowledged write
/// must be on every server at the end.
#[test]
fn register_is_linearizable_when_storage_fails_at_failpoints() {
    // A spec it cannot honour stops the agent before it binds anything
    // (every port 0 all the same, should that break).
    let mut probe = std::process::Command::new(agent_bin())
        .args(["agent", "-dev"])
        .args(["-http-port", "0", "-dns-port", "0", "-server-port", "0"])
        .args(["-serf-lan-port", "0", "-serf-wan-port", "0"])
        .env("MERIDIAN_FAILPOINTS", "no_such_point=error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run meridian");
    let deadline = Instant::now() + Duration::from_secs(10);
    while probe.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = probe.kill();
    let probe = probe.wait_with_output().expect("meridian's output");
    let said = String::from_utf8_lossy(&probe.stderr).to_string()
        + &String::from_utf8_lossy(&probe.stdout);
    if said.contains("release build") {
        eprintln!("skipped: a release build has no failpoints");
        return;
    }
    assert!(
        probe.status.code() == Some(1) && said.contains("no_such_point"),
        "an unknown failpoint is refused, naming it ({}): {said}",
        probe.status
    );
    let runs: Vec<String> = match std::env::var("MERIDIAN_FAILPOINTS_RUN") {
        Ok(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Err(_) => CI_FAILPOINTS.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(
        runs.len(),
        3,
        "MERIDIAN_FAILPOINTS_RUN names three servers' modes"
    );
    let n: u64 = std::env::var("MERIDIAN_FAILPOINT_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let secs = env_secs(20);
    for seed in env_seeds(&[61]) {
        let specs: Vec<String> = runs.iter().map(|m| failpoint_spec(m, n)).collect();
        eprintln!("failpoints per server: {specs:?}");
        let prefixes: Vec<Vec<String>> = specs
            .iter()
            .map(|spec| {
                // No MERIDIAN_FAILPOINTS_SEED: each start of a server
                // draws its chances afresh (with one seed every start
                // would repeat the same draws).
                vec!["env".into(), format!("MERIDIAN_FAILPOINTS={spec}")]
            })
            .collect();
        let conf_dir = tempfile::tempdir().unwrap();
        let conf = conf_dir.path().join("small-snapshots.json");
        // Snapshots every 32 entries, 4 kept: a server down for a moment
        // is past the log the leader keeps and gets a snapshot, and
        // snapshots are built several times a second.
        std::fs::write(
            &conf,
            r#"{"raft_snapshot_threshold": 32, "raft_snapshot_interval": "10ms", "raft_trailing_logs": 4}"#,
        )
        .unwrap();
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let conf = conf.display().to_string();
        let servers = three_servers_in(&dirs, &["-config-file", &conf], &prefixes, &[]);
        let cluster = Cluster {
            servers,
            net: None,
            kinds: vec![FaultKind::Failpoint],
            dirs: paths(&dirs),
            fs: Vec::new(),
            default_reads_fresh: true,
        };
        run_with(seed, secs, cluster, failpoint_exits);
    }
}

/// How many times `needle` is in `text`.
fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// The fault driver of the failpoint run: until `until`, restarts every
/// server that went down and records it as a fault, with what took it
/// down and whether that was as it must be.
fn failpoint_exits(seed: u64, cluster: &mut Cluster, until: Instant, rec: &Recorder) -> Vec<Fault> {
    use std::os::unix::process::ExitStatusExt;
    let servers = &mut cluster.servers;
    let n = servers.len();
    let mut faults = Vec::new();
    // Per server: failpoint firings, storage-failure messages and panics
    // already accounted for, and since when an error or panic firing has
    // gone without the exit it must end in.
    let mut fired = vec![0usize; n];
    let mut failed = vec![0usize; n];
    let mut panics = vec![0usize; n];
    let mut awaiting_exit: Vec<Option<Instant>> = vec![None; n];
    let mut leader = leader_index(servers);
    let mut leader_checked = Instant::now();
    while Instant::now() < until {
        if leader_checked.elapsed() > Duration::from_millis(300) {
            leader = leader_index(servers).or(leader);
            leader_checked = Instant::now();
        }
        for i in 0..n {
            let log = servers[i].log_text();
            let new_fired: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("failpoint fired"))
                .skip(fired[i])
                .collect();
            if new_fired
                .iter()
                .any(|l| l.contains("Error") || l.contains("Panic"))
                && awaiting_exit[i].is_none()
            {
                awaiting_exit[i] = Some(Instant::now());
            }
            let Some(status) = servers[i].exit_status() else {
                if awaiting_exit[i].is_some_and(|t| t.elapsed() > Duration::from_secs(10)) {
                    let d = format!(
                        "server {i} still runs 10 s after a failpoint failed its storage ({:?})",
                        new_fired.last()
                    );
                    eprintln!("seed {seed}: DEFECT: {d}");
                    faults.push(failpoint_fault(
                        i,
                        leader == Some(i),
                        rec.now(),
                        rec.now(),
                        d.clone(),
                        Some(d),
                    ));
                    awaiting_exit[i] = None;
                    fired[i] += new_fired.len();
                }
                continue;
            };
            let at = rec.now();
            let last = new_fired
                .last()
                .map(|l| l.chars().take(300).collect::<String>())
                .unwrap_or_default();
            let now_failed = count(&log, "Raft storage failed");
            let now_panics = count(&log, "panicked");
            let crashed = status.signal() == Some(libc::SIGKILL);
            let defect = if new_fired.is_empty() {
                Some(format!(
                    "server {i} exited ({status}) with no failpoint fired"
                ))
            } else if crashed {
                (!last.contains("Crash") && !log.contains("crash (hit")).then(|| {
                    format!("server {i} was SIGKILLed, not by its crash failpoint: {last}")
                })
            } else if status.code() == Some(1) && now_failed > failed[i] {
                None
            } else {
                Some(format!(
                    "server {i} exited ({status}) without saying its storage failed: {last}"
                ))
            };
            let how = if crashed {
                "crash".to_string()
            } else if now_panics > panics[i] {
                format!("panic, then {status}")
            } else {
                format!("{status}")
            };
            let point = [
                "raft_log_append",
                "raft_log_before_fsync",
                "raft_log_after_fsync",
                "snapshot_write",
                "snapshot_install_saved",
                "snapshot_install",
            ]
            .into_iter()
            .find(|p| last.contains(p))
            .unwrap_or("none");
            fired[i] += new_fired.len();
            failed[i] = now_failed;
            panics[i] = now_panics;
            awaiting_exit[i] = None;
            if let Some(d) = &defect {
                eprintln!("seed {seed}: DEFECT: {d}");
            }
            let restarted = servers[i].try_restart_no_wait();
            let note = format!(
                "{point}: {how}; restarted: {}",
                match &restarted {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("down again at once ({})", e.lines().next().unwrap_or("")),
                }
            );
            eprintln!(
                "seed {seed}: server {i} (leader: {}) down at {:.2} s: {note}",
                leader == Some(i),
                at as f64 / 1e9
            );
            faults.push(failpoint_fault(
                i,
                leader == Some(i),
                at,
                rec.now(),
                note,
                defect,
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Up for the final checks, with every failpoint off (a server still
    // armed could take itself down while the checks wait for it): each
    // server is restarted without them, whether it went down last or not.
    for (i, s) in servers.iter_mut().enumerate() {
        s.set_prefix(Vec::new());
        let was = if s.exit_status().is_some() {
            "down"
        } else {
            "up"
        };
        eprintln!("seed {seed}: server {i} {was} at the end: restarted without failpoints");
        if let Err(e) = s.try_restart_no_wait() {
            panic!("server {i} does not start again without failpoints: {e}");
        }
    }
    faults
}

fn failpoint_fault(
    server: usize,
    was_leader: bool,
    at: u64,
    healed: u64,
    note: String,
    defect: Option<String>,
) -> Fault {
    Fault {
        kind: FaultKind::Failpoint,
        server,
        was_leader,
        minority: Vec::new(),
        at,
        healed,
        leader_after: None,
        note,
        defect,
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
                let servers = three_servers_in(&dirs, &[], &prefixes, &[]);
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

fn run(seed: u64, secs: u64, cluster: Cluster) {
    run_with(seed, secs, cluster, faults_guarded);
}

/// `run` with the faults coming from `driver` (the seeded schedule, or
/// the servers' own failpoints), which returns at `until` with every
/// server up.
fn run_with(
    seed: u64,
    secs: u64,
    mut cluster: Cluster,
    driver: impl FnOnce(u64, &mut Cluster, Instant, &Recorder) -> Vec<Fault> + Send,
) {
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
    // A full disk needs large values to fill it; crashes at failpoints
    // are checked with many small ones (each acknowledged one must
    // survive them).
    let bulk = if !cluster.fs.is_empty() {
        Some(Bulk {
            bytes: 64 << 10,
            // About 0.6 MB/s: the full server's log grows past any slack in
            // its file while the disk is full, and the 64 MiB filesystem
            // (log, state, both copies) lasts a 30 s run.
            every: Duration::from_millis(100),
        })
    } else if cluster.kinds.contains(&FaultKind::Failpoint) {
        Some(Bulk {
            bytes: 16,
            every: Duration::from_millis(20),
        })
    } else {
        None
    };
    let (faults, bulk_acked) = std::thread::scope(|s| {
        for p in 0..CLIENTS {
            let (addrs, keys, rec) = (&addrs, &keys, &rec);
            s.spawn(move || register::client(p, seed, addrs, keys, until, rec));
        }
        let addrs = &addrs;
        let bulk = bulk.map(|b| s.spawn(move || bulk_writer(seed, addrs, until, b)));
        let faults = driver(seed, &mut cluster, until, &rec);
        (faults, bulk.map(|b| b.join().unwrap()).unwrap_or_default())
    });
    // A removed, full or crashed server is back: every server holds
    // every acknowledged write, and the cluster has its three voters.
    if let Some(b) = bulk {
        converged(&cluster.servers, &keys, &bulk_acked, b.bytes, &rec);
    } else if cluster.kinds.contains(&FaultKind::Remove) {
        converged(&cluster.servers, &keys, &[], 0, &rec);
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
    let failure = match verdict {
        Verdict::Linearizable => {
            eprintln!("?consistent: linearizable (seed {seed})");
            // The leader lease: no server answers a default read from its
            // own state unless it leads within its lease, under any of
            // these faults.
            stale.first().filter(|_| cluster.default_reads_fresh).map(|(ms, r)| format!(
                "{} default-mode reads older than an acknowledged write (the first {ms:.1} ms after it: {r})",
                stale.len()
            ))
        }
        Verdict::Violation(v) => Some(format!("?consistent history not linearizable:\n{v}")),
        Verdict::Undecided { key, steps } => {
            Some(format!("no verdict on key {key} within {steps} steps"))
        }
    };
    // What a server under a fault did that it must not (a full disk:
    // panicked, or kept serving after its storage failed).
    let failure = faults.iter().find_map(|f| f.defect.clone()).or(failure);
    let mut summary = summary(seed, secs, &ops, &default_reads);
    summary
        .figures
        .insert("stale_default_reads".into(), stale.len() as f64);
    if let Some((ms, _)) = stale.iter().max_by(|a, b| a.0.total_cmp(&b.0)) {
        summary
            .figures
            .insert("worst_default_read_staleness_ms".into(), *ms);
    }
    if let Some(why) = &failure {
        summary.verdict = why.lines().next().unwrap_or_default().to_string();
        let history = save(seed, secs, &ops, &default_reads, &faults);
        // The servers' logs beside the history: what each did is most of
        // what a failing run can still say.
        for (i, s) in cluster.servers.iter().enumerate() {
            let path = format!("{}.server{i}.log", history.trim_end_matches(".json"));
            let _ = std::fs::write(&path, s.log_text());
        }
        summary.history = Some(history);
    }
    let acked: Vec<(u64, u64)> = writes
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Ok(_)))
        .filter_map(|o| Some((o.invoke, o.complete?)))
        .collect();
    summary.line(&faults, &acked);
    if let Some(why) = failure {
        panic!(
            "seed {seed}: {why} (history: {})",
            summary.history.unwrap_or_default()
        );
    }
}

/// Operations by kind and outcome, for the summary line.
fn summary(seed: u64, secs: u64, ops: &[Op], default_reads: &[Op]) -> schedule::Summary {
    let mut summary = schedule::Summary::new("register", seed, secs);
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
        summary.op(kind, outcome_name(&o.outcome));
    }
    summary
}

/// What the bulk writer sends: values of `bytes`, one every `every`.
#[derive(Clone, Copy)]
struct Bulk {
    bytes: usize,
    every: Duration,
}

/// Values, each under a key of its own, sent to any server until `until`
/// (large ones: a Raft log of small writes grows too slowly to fill a
/// disk). The keys whose write was acknowledged.
fn bulk_writer(seed: u64, addrs: &[String], until: Instant, b: Bulk) -> Vec<String> {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let body = "x".repeat(b.bytes);
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
        std::thread::sleep(b.every);
    }
    acked
}

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
/// (`?stale`); every acknowledged bulk key, its value `bulk_bytes` long,
/// on every server.
fn converged(
    servers: &[TestAgent],
    keys: &[String],
    bulk: &[String],
    bulk_bytes: usize,
    rec: &Recorder,
) {
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
    // Every bulk key is `bulk-<seed>-<n>`: one listing per server.
    let prefix = bulk
        .first()
        .and_then(|k| k.rsplit_once('-'))
        .map(|(p, _)| format!("{p}-"));
    for (i, s) in servers.iter().enumerate() {
        let Some(prefix) = &prefix else { break };
        let mut missing: Vec<&String> = bulk.iter().collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !missing.is_empty() {
            let held = bulk_values(&s.url(&format!("/v1/kv/{prefix}?recurse&stale")));
            missing.retain(|k| held.get(k.as_str()) != Some(&bulk_bytes));
            if missing.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server {i} lacks {} acknowledged values 20 s after the run (the first: {:?}); log tail:\n{}",
                missing.len(),
                &missing[..missing.len().min(5)],
                s.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    eprintln!(
        "converged: 3 voters, every server serves the last value of {} keys and {} acknowledged large values ({:?} after the run)",
        keys.len(),
        bulk.len(),
        started.elapsed()
    );
}

/// Each key under a `?recurse` URL with its value's length (empty when
/// there is no answer).
fn bulk_values(url: &str) -> std::collections::HashMap<String, usize> {
    use base64::Engine;
    let entries: Vec<serde_json::Value> = reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .ok()
        .filter(|r| r.status().is_success())
        .and_then(|r| r.json().ok())
        .unwrap_or_default();
    entries
        .iter()
        .filter_map(|e| {
            let raw = e["Value"].as_str().unwrap_or("");
            let len = base64::engine::general_purpose::STANDARD
                .decode(raw)
                .ok()?
                .len();
            Some((e["Key"].as_str()?.to_string(), len))
        })
        .collect()
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
