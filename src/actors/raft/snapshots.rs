//! When this server builds its Raft snapshots: every
//! `raft_snapshot_threshold` entries as before, but each server at its own
//! phase. openraft's `LogsSinceLast` made every server snapshot at the
//! same index, so the purge of the log that follows landed on all of them
//! at once; here server `r` of `n` (by its rank among the configuration's
//! ids) snapshots at `r * threshold / n + k * threshold`, and the servers'
//! snapshots and purges are spread evenly over the threshold.
//!
//! And, as Consul's servers do, only at checks `raft_snapshot_interval`
//! to twice that apart: a point reached between checks waits for the
//! next. Without that a fast-growing store was saved every few seconds on
//! every server (a million keys at threshold 1,024: 100-270 MB each time,
//! the disk saturated and followers too slow to answer the leader).

use std::time::Duration;

use openraft::{BasicNode, RaftMetrics};
use rand::Rng;
use tokio::time::Instant;

use crate::storage::{NodeId, Raft};

/// This server's phase: its rank among the configuration's ids (voters
/// and learners) times `threshold / n`.
pub(super) fn offset(m: &RaftMetrics<NodeId, BasicNode>, threshold: u64) -> u64 {
    let membership = m.membership_config.membership();
    let ids: Vec<NodeId> = membership.nodes().map(|(id, _)| *id).collect();
    match ids.iter().position(|id| *id == m.id) {
        Some(rank) => rank as u64 * threshold / ids.len() as u64,
        None => 0,
    }
}

/// The first snapshot point after a snapshot at `last` (0: none): the
/// first `offset + k * threshold` at least half a threshold past it, so
/// that a snapshot installed from the leader at any index is not followed
/// at once by another, and snapshots stay `threshold` apart on average.
pub(super) fn next_point(last: u64, threshold: u64, offset: u64) -> u64 {
    let threshold = threshold.max(1);
    let earliest = last + threshold.div_ceil(2);
    if earliest <= offset {
        return offset.max(1);
    }
    offset + (earliest - offset).div_ceil(threshold) * threshold
}

/// Follows the applied index and asks Raft for a snapshot at each of this
/// server's points (openraft's own policy is off).
pub(super) struct Points {
    threshold: u64,
    interval: Duration,
    next_check: Instant,
    /// The point last asked for: asked once (the build takes a while, and
    /// the metrics change meanwhile).
    asked: Option<u64>,
}

impl Points {
    pub(super) fn new(threshold: u64, interval: Duration) -> Points {
        Points {
            threshold: threshold.max(1),
            interval,
            next_check: Instant::now() + wait(interval),
            asked: None,
        }
    }

    /// When [`Self::check`] is next due.
    pub(super) fn next_check(&self) -> Instant {
        self.next_check
    }

    /// Asks Raft for a snapshot if this server's next point is reached,
    /// and schedules the next check.
    pub(super) async fn check(&mut self, raft: &Raft, m: &RaftMetrics<NodeId, BasicNode>) {
        self.next_check = Instant::now() + wait(self.interval);
        let Some(applied) = m.last_applied.map(|l| l.index) else {
            return;
        };
        let last = m.snapshot.map_or(0, |l| l.index);
        let point = next_point(last, self.threshold, offset(m, self.threshold));
        if applied < point || self.asked == Some(point) {
            return;
        }
        self.asked = Some(point);
        tracing::debug!(applied, point, "snapshot point reached");
        if let Err(e) = raft.trigger().snapshot().await {
            tracing::debug!(error = %e, "snapshot not started: raft stopped");
        }
    }
}

/// Between `interval` and twice it (hashicorp/raft's `randomTimeout`),
/// so that servers started together do not check in step.
fn wait(interval: Duration) -> Duration {
    let ms = interval.as_millis().min(u64::MAX as u128) as u64;
    interval + Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_keep_their_phase_and_spacing() {
        // Three servers, threshold 128: phases 0, 42, 85.
        assert_eq!(next_point(0, 128, 0), 128);
        assert_eq!(next_point(128, 128, 0), 256);
        assert_eq!(next_point(0, 128, 42), 170);
        assert_eq!(next_point(0, 128, 100), 100);
        assert_eq!(next_point(170, 128, 42), 298);
        // Applied entries come in batches: a snapshot a little past its
        // point keeps the phase.
        assert_eq!(next_point(175, 128, 42), 298);
        // A snapshot installed from the leader at another server's phase.
        assert_eq!(next_point(256, 128, 85), 341);
        assert_eq!(next_point(300, 128, 85), 469);
        // Threshold 1 (the smallest): every entry.
        assert_eq!(next_point(0, 1, 0), 1);
        assert_eq!(next_point(7, 1, 0), 8);
    }
}
