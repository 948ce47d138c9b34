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
