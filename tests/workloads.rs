//! The set, watch, lock and txn workloads (see each module's doc in
//! `tests/fault/`) against three servers of the built binary under the
//! register workload's fault schedule (`tests/fault/schedule.rs`: the
//! leader killed and restarted, or paused and continued, from a printed
//! seed). One test per workload with a fixed seed in CI;
//! `MERIDIAN_FAULT_SEED=<n>[,<n>...]` and `MERIDIAN_FAULT_SECS` replay or
//! lengthen them (`scripts/fault-long.sh` runs them all for a while and
//! adds up their `FAULT-SUMMARY` lines). A failing run's history is kept
//! under `target/fault-histories/`.

mod common;
mod fault {
    pub mod checker;
    pub mod diskfs;
    pub mod lock;
    pub mod netns;
    pub mod register;
    pub mod schedule;
    pub mod set;
    pub mod txn;
    pub mod watch;
}

use fault::schedule::{env_secs, env_seeds, FaultKind};

const CI_SECS: u64 = 10;

#[test]
fn set_keeps_every_acknowledged_item_once_under_leader_kills_and_pauses() {
    for seed in env_seeds(&[11]) {
        fault::set::run(seed, env_secs(CI_SECS));
    }
}

#[test]
fn txn_is_all_or_nothing_under_leader_kills_and_pauses() {
    for seed in env_seeds(&[13]) {
        fault::txn::run(seed, env_secs(CI_SECS));
    }
}

#[test]
fn watchers_never_go_back_and_settle_on_the_last_write_under_leader_kills_and_pauses() {
    for seed in env_seeds(&[17]) {
        fault::watch::run(seed, env_secs(CI_SECS));
    }
}

/// Overlapping holders are measured under pauses, not asserted (Jepsen:
/// such locks are unsafe under pauses); the servers must still agree on
/// who holds each lock.
#[test]
fn lock_overlaps_under_leader_kills_and_pauses_are_measured() {
    for seed in env_seeds(&[23]) {
        let r = fault::lock::run(
            seed,
            env_secs(CI_SECS),
            &["0s", "2s", "15s"],
            &[FaultKind::Kill, FaultKind::Stop],
        );
        assert!(
            r.diverged.is_empty(),
            "seed {seed}: servers disagree on a lock: {:?}",
            r.diverged
        );
        assert!(r.overlaps.iter().all(|o| o.holds > 0), "no lock was held");
    }
}

/// Under kills alone a holder's calls fail at once (its server's
/// connections are reset), so it stops believing before the servers have
/// even declared its node failed; with a lock-delay on top, no two
/// clients may hold a lock at once.
#[test]
fn lock_has_one_holder_at_a_time_under_leader_kills_with_a_lock_delay() {
    for seed in env_seeds(&[29]) {
        let r = fault::lock::run(seed, env_secs(CI_SECS), &["0s", "2s"], &[FaultKind::Kill]);
        assert!(
            r.diverged.is_empty(),
            "seed {seed}: servers disagree on a lock: {:?}",
            r.diverged
        );
        let delayed = &r.overlaps[1];
        assert!(delayed.holds > 0, "no lock was held");
        assert_eq!(
            delayed.count, 0,
            "seed {seed}: two holders at once with lock-delay {}: {delayed:?}",
            delayed.lock_delay
        );
    }
}

/// Jepsen's lock finding with the client paused, not the server: each
/// lock client is a process of its own (`tests/fault/lock_client.py`,
/// api.Lock's loop: session with a 10 s TTL, acquire, renew and watch the
/// key while holding), two per lock-delay (0, 2 and 15 s) on different
/// servers. Whichever client holds a lock is SIGSTOPped for
/// `MERIDIAN_LOCK_PAUSE_SECS` (15: past its TTL), then continued; it
/// believes it holds the lock from its acquire until it is running again
/// and notices, while the servers have ended its session at the TTL and,
/// after the lock-delay, given the lock to the other client. The overlaps
/// are measured and printed, not asserted (Consul's locks are advisory;
/// what bounds them is the lock-delay against the pause), except that a
/// lock-delay longer than the pause beyond the TTL must leave none. Too
/// slow for CI (each round is a pause past the TTL): run by
/// `scripts/fault-long.sh`, or with `--ignored`.
#[test]
#[ignore]
fn lock_holders_paused_past_their_session_ttl_overlap_measured() {
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
    let pause: u64 = std::env::var("MERIDIAN_LOCK_PAUSE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let rounds: u64 = std::env::var("MERIDIAN_LOCK_PAUSE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let ttl = 10u64;
    let delays = ["0s", "2s", "15s"];
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let servers = common::three_servers(&dirs);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fault/lock_client.py");
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let run_secs = 3 + rounds * (pause + 13);
    let until = now() + run_secs as f64;
    let out_dir = tempfile::tempdir().unwrap();
    // Two clients per delay; client c of group g is process 2g+c.
    let mut clients: Vec<(usize, std::process::Child, std::path::PathBuf)> = Vec::new();
    for (g, delay) in delays.iter().enumerate() {
        for c in 0..2 {
            let p = 2 * g + c;
            let out = out_dir.path().join(format!("client{p}.out"));
            let child = std::process::Command::new("python3")
                .arg(script)
                .arg(&servers[(g + c) % 3].http)
                .arg(format!("paused-lock/d{delay}"))
                .arg(delay)
                .arg(format!("{ttl}s"))
                .arg(format!("{until}"))
                .arg(format!("p{p}"))
                .stdout(std::fs::File::create(&out).expect("client output file"))
                .spawn()
                .expect("python3 runs the lock client");
            clients.push((p, child, out));
        }
    }
    // The holder of a group's lock: the Name of the session in the key.
    let http = fault::schedule::http(Duration::from_secs(2));
    let holder = |delay: &str| -> Option<usize> {
        let v: serde_json::Value = http
            .get(servers[0].url(&format!("/v1/kv/paused-lock/d{delay}?consistent")))
            .send()
            .ok()?
            .json()
            .ok()?;
        let sid = v[0]["Session"].as_str()?;
        let s: serde_json::Value = http
            .get(servers[0].url(&format!("/v1/session/info/{sid}?consistent")))
            .send()
            .ok()?
            .json()
            .ok()?;
        s[0]["Name"].as_str()?.strip_prefix('p')?.parse().ok()
    };
    let pid_of = |p: usize| clients.iter().find(|c| c.0 == p).map(|c| c.1.id() as i32);
    let mut paused = 0usize;
    std::thread::sleep(Duration::from_secs(3));
    for round in 0..rounds {
        // Every group's holder at once, so the rounds take one pause each
        // (a lock just released or not yet taken is waited for a while).
        let mut stopped: Vec<(String, usize)> = Vec::new();
        let look_until = Instant::now() + Duration::from_secs(5);
        while stopped.len() < delays.len() && Instant::now() < look_until {
            for d in delays {
                if stopped.iter().all(|(x, _)| x != d) {
                    if let Some(p) = holder(d) {
                        stopped.push((d.to_string(), p));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for (_, p) in &stopped {
            if let Some(pid) = pid_of(*p) {
                // SAFETY: kill(2) on our own child's pid.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                paused += 1;
            }
        }
        eprintln!("round {round}: paused holders {stopped:?} for {pause} s");
        std::thread::sleep(Duration::from_secs(pause));
        for (_, p) in &stopped {
            if let Some(pid) = pid_of(*p) {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGCONT) };
            }
        }
        std::thread::sleep(Duration::from_secs(8));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for (_, child, _) in clients.iter_mut() {
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut summary = fault::schedule::Summary::new("lock-paused-clients", 0, run_secs);
    summary
        .figures
        .insert("paused_holders".into(), paused as f64);
    let mut reports = Vec::new();
    for (g, delay) in delays.iter().enumerate() {
        let mut holds = Vec::new();
        for (p, _, out) in clients.iter().filter(|c| c.0 / 2 == g) {
            for line in std::fs::read_to_string(out).unwrap_or_default().lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if let ["hold", start, end, why] = f[..] {
                    let (Ok(s), Ok(e)) = (start.parse::<f64>(), end.parse::<f64>()) else {
                        continue;
                    };
                    if e - s > 5.0 {
                        eprintln!(
                            "  lock-delay {delay}: p{p} believed it held the lock {:.1} s ({why})",
                            e - s
                        );
                    }
                    holds.push((*p, (s * 1e9) as u64, (e * 1e9) as u64));
                }
            }
        }
        let o = fault::lock::overlaps_of(delay, &holds);
        o.report("paused clients", &mut summary.figures);
        reports.push(o);
    }
    summary.line(&[], &[]);
    assert!(paused > 0, "no holder was ever found to pause");
    assert!(
        reports.iter().all(|o| o.holds > 0),
        "a lock was never held: {reports:?}"
    );
    // Invalidated at the TTL, free again after the lock-delay: a delay
    // longer than the pause beyond the TTL outlasts the pause.
    if pause < ttl + 15 {
        assert_eq!(
            reports[2].count, 0,
            "lock-delay 15 s outlasts a {pause} s pause of a 10 s-TTL holder: {:?}",
            reports[2]
        );
    }
}
