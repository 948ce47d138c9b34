//! The leader's KV tombstone GC (Consul's `TombstoneGC` and the leader's
//! `reapTombstones`): a deleted key leaves a tombstone (its delete's
//! index) so that prefix reads and blocking queries see the delete; once
//! a delete is older than the TTL the leader sends a
//! `KvReapTombstones` through Raft, so every server drops the same ones.
//!
//! As in Consul, deletes are batched by expiry time into bins of
//! `granularity`: one Raft entry reaps every tombstone of a bin. The
//! leader learns of deletes from the store's highest tombstone index (a
//! "hint", as Consul's FSM gives its GC) and times them from when it saw
//! them: a tombstone is never reaped sooner than the TTL after its delete,
//! and a new leader, which cannot know how old the tombstones it inherits
//! are, gives them all a full TTL (Consul hints its last index on
//! `establishLeadership`).
//!
//! Consul has no agent configuration key for the TTL (`TombstoneTTL` is a
//! server-internal setting, 15 minutes): here the environment variable
//! [`TTL_ENV`] sets it, for tests and experiments only.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;
use thiserror::Error;
use tokio::time::Instant;

use super::RaftActor;
use crate::storage::fsm::read;
use crate::structs::{Command, CommandResult};

/// Consul's `TombstoneTTL`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// Consul's `TombstoneTTLGranularity`, which is `DEFAULT_TTL / 30`; a
/// shorter TTL keeps that ratio (see [`TombstoneGc::new`]).
pub const DEFAULT_GRANULARITY: Duration = Duration::from_secs(30);
/// Overrides the TTL (a Go duration: `2s`, `15m`). Not a Consul setting.
pub const TTL_ENV: &str = "MERIDIAN_TOMBSTONE_TTL";

#[derive(Debug, Error)]
pub enum GcConfigError {
    #[error("{TTL_ENV}={value:?}: {reason}")]
    BadTtl { value: String, reason: String },
}

pub(super) struct TombstoneGc {
    ttl: Duration,
    granularity: Duration,
    /// Bins are counted in granularities from here.
    origin: Instant,
    /// Expiry bin → the highest tombstone index hinted into it.
    pending: BTreeMap<u64, u64>,
    /// The highest tombstone index hinted this term.
    hinted: u64,
    /// Led at the last tick: a new leader starts over.
    led: bool,
}

impl TombstoneGc {
    /// The GC with `ttl`; the granularity is Consul's 30 s, or a thirtieth
    /// of a shorter TTL (at least 10 ms) so that tests see the TTL, not
    /// the bin size.
    pub(super) fn new(ttl: Duration) -> Self {
        TombstoneGc {
            ttl,
            granularity: (ttl / 30).clamp(Duration::from_millis(10), DEFAULT_GRANULARITY),
            origin: Instant::now(),
            pending: BTreeMap::new(),
            hinted: 0,
            led: false,
        }
    }

    /// The TTL from [`TTL_ENV`], else Consul's.
    pub(super) fn ttl_from_env() -> Result<Duration, GcConfigError> {
        match std::env::var(TTL_ENV) {
            Err(_) => Ok(DEFAULT_TTL),
            Ok(value) => match crate::config::duration::parse_go_duration(&value) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err(GcConfigError::BadTtl {
                    value,
                    reason: "must be positive".into(),
                }),
                Err(e) => Err(GcConfigError::BadTtl {
                    value,
                    reason: e.to_string(),
                }),
            },
        }
    }

    /// How often the leader looks at its bins.
    pub(super) fn tick(&self) -> Duration {
        self.granularity.min(Duration::from_secs(1))
    }

    fn bin_of(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let g = self.granularity.as_nanos().max(1);
        // Rounded up: a bin expires no sooner than everything hinted into it.
        since.div_ceil(g) as u64
    }

    fn bin_end(&self, bin: u64) -> Instant {
        let g = u64::try_from(self.granularity.as_nanos()).unwrap_or(u64::MAX);
        self.origin + Duration::from_nanos(g.saturating_mul(bin))
    }

    /// One tick: hints what was deleted since the last one and returns the
    /// index to reap, if a bin has expired.
    fn step(&mut self, leads: bool, tombstone_max: u64, now: Instant) -> Option<u64> {
        if !leads {
            if self.led {
                self.pending.clear();
                self.hinted = 0;
                self.led = false;
            }
            return None;
        }
        self.led = true;
        if tombstone_max > self.hinted {
            self.hinted = tombstone_max;
            let bin = self.bin_of(now + self.ttl);
            let e = self.pending.entry(bin).or_insert(0);
            *e = (*e).max(tombstone_max);
        }
        let mut reap = None;
        while let Some((&bin, &index)) = self.pending.first_key_value() {
            if self.bin_end(bin) > now {
                break;
            }
            self.pending.remove(&bin);
            reap = reap.max(Some(index));
        }
        reap
    }

    /// A reap that failed is tried again one bin later.
    fn retry(&mut self, index: u64, now: Instant) {
        let bin = self.bin_of(now + self.granularity);
        let e = self.pending.entry(bin).or_insert(0);
        *e = (*e).max(index);
    }
}

impl RaftActor {
    pub(super) fn reap_tombstones(&mut self, ctx: &mut Context<Self>) {
        let leads = self.status().is_leader;
        let max = read(&self.store).kv_tombstone_max();
        let Some(reap_index) = self.tombstones.step(leads, max, Instant::now()) else {
            return;
        };
        let write = self.write(Command::KvReapTombstones { reap_index }, ctx);
        ctx.spawn(write.into_actor(self).map(move |res, act, _| match res {
            Ok(r) => {
                if r.result == CommandResult::Bool(true) {
                    tracing::debug!(reap_index, "reaped KV tombstones");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, reap_index, "reaping KV tombstones failed; retrying");
                act.tombstones.retry(reap_index, Instant::now());
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_is_reaped_only_after_the_ttl_and_in_one_entry_per_bin() {
        let mut gc = TombstoneGc::new(Duration::from_secs(30));
        let t0 = gc.origin;
        assert_eq!(gc.step(true, 5, t0), None);
        // A later delete in the same bin joins it.
        assert_eq!(gc.step(true, 7, t0 + Duration::from_millis(500)), None);
        assert_eq!(gc.step(true, 7, t0 + Duration::from_secs(29)), None);
        assert_eq!(gc.step(true, 7, t0 + Duration::from_secs(31)), Some(7));
        assert_eq!(gc.step(true, 7, t0 + Duration::from_secs(60)), None);
    }

    #[test]
    fn losing_leadership_forgets_the_bins_and_a_new_term_rehints() {
        let mut gc = TombstoneGc::new(Duration::from_secs(10));
        let t0 = gc.origin;
        gc.step(true, 5, t0);
        assert_eq!(gc.step(false, 5, t0 + Duration::from_secs(1)), None);
        // Leading again: the same tombstones get a whole TTL from now.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(gc.step(true, 5, t1), None);
        assert_eq!(gc.step(true, 5, t0 + Duration::from_secs(11)), None);
        assert_eq!(gc.step(true, 5, t1 + Duration::from_secs(11)), Some(5));
    }

    #[test]
    fn a_failed_reap_is_retried() {
        let mut gc = TombstoneGc::new(Duration::from_secs(3));
        let t0 = gc.origin;
        gc.step(true, 9, t0);
        let t1 = t0 + Duration::from_secs(4);
        assert_eq!(gc.step(true, 9, t1), Some(9));
        gc.retry(9, t1);
        assert_eq!(gc.step(true, 9, t1 + Duration::from_secs(1)), Some(9));
    }
}
