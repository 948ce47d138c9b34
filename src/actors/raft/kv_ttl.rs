//! The leader's KV TTL timers (a Meridian extension, built as the session
//! TTL timers in `session_ttl.rs` are): a key written with `?ttl=` is
//! deleted through Raft once its TTL passes without a rewrite.
//!
//! The TTL is part of the stored entry, so it is replicated and in every
//! snapshot; the clock is not. Each timer belongs to one write (the key's
//! `ModifyIndex` when the timer started) and the expiry it sends,
//! `KvExpire`, deletes only if the key still has that `ModifyIndex`: a
//! rewrite that lands first wins, and restarts the clock (with a TTL) or
//! stops it (without). A new leader cannot know how long its predecessor
//! had been counting, so it starts every timer afresh: a key lives at
//! most about twice its TTL across a leadership change, as a session does.
//! Timers read tokio's clock, so tests can pause and advance it.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use super::RaftActor;
use crate::storage::fsm::read;
use crate::structs::Command;

/// How long an expiry that did not land waits before it is sent again.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(super) struct KvTtlTimers {
    /// Key → the `ModifyIndex` its timer was started for, and when it
    /// expires unless rewritten.
    deadlines: HashMap<String, (u64, Instant)>,
    /// Led at the last pass (a new leader starts every timer afresh).
    led: bool,
    /// The store's TTL-key version at the last pass.
    seen: Option<u64>,
}

impl KvTtlTimers {
    /// One pass: follows the store's TTL keys (`ttl_keys`, read only when
    /// `version` moved) and returns the (key, `ModifyIndex`) pairs whose
    /// TTL has passed. Pure, so the rules are tested without a cluster.
    fn step(
        &mut self,
        leads: bool,
        version: u64,
        ttl_keys: impl FnOnce() -> Vec<(String, u64, Duration)>,
        now: Instant,
    ) -> Vec<(String, u64)> {
        if !leads {
            self.deadlines.clear();
            self.led = false;
            self.seen = None;
            return Vec::new();
        }
        if !self.led {
            self.deadlines.clear();
            self.seen = None;
            self.led = true;
        }
        if self.seen != Some(version) {
            self.seen = Some(version);
            let keys = ttl_keys();
            let live: std::collections::HashSet<&str> =
                keys.iter().map(|(k, _, _)| k.as_str()).collect();
            self.deadlines.retain(|k, _| live.contains(k.as_str()));
            for (key, modify_index, ttl) in keys {
                match self.deadlines.get(&key) {
                    // The same write: its clock keeps running.
                    Some((m, _)) if *m == modify_index => {}
                    // New, or rewritten since: a whole TTL from now.
                    _ => {
                        self.deadlines.insert(key, (modify_index, now + ttl));
                    }
                }
            }
        }
        let expired: Vec<(String, u64)> = self
            .deadlines
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(k, (m, _))| (k.clone(), *m))
            .collect();
        for (key, m) in &expired {
            // Sent again later unless the delete lands (the rescan that
            // follows it drops the timer).
            self.deadlines.insert(key.clone(), (*m, now + RETRY));
        }
        expired
    }
}

impl RaftActor {
    /// One pass of the leader's KV TTL timers.
    pub(super) fn expire_kv_ttls(&mut self, ctx: &mut Context<Self>) {
        let leads = self.status().is_leader;
        let version = read(&self.store).kv_ttl_version();
        let store = self.store.clone();
        let expired = self.kv_ttls.step(
            leads,
            version,
            || {
                read(&store)
                    .kv_ttl_keys()
                    .iter()
                    .map(|(k, (m, ttl))| (k.clone(), *m, *ttl))
                    .collect()
            },
            Instant::now(),
        );
        for (key, modify_index) in expired {
            tracing::info!(%key, modify_index, "KV TTL expired: deleting");
            let write = self.write(
                Command::KvExpire {
                    key: key.clone(),
                    modify_index,
                },
                ctx,
            );
            actix::spawn(async move {
                if let Err(e) = write.await {
                    tracing::warn!(error = %e, %key, "KV TTL expiry failed; retrying");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &[(&str, u64, u64)]) -> Vec<(String, u64, Duration)> {
        v.iter()
            .map(|(k, m, s)| (k.to_string(), *m, Duration::from_secs(*s)))
            .collect()
    }

    #[test]
    fn a_key_expires_after_its_ttl_and_a_rewrite_restarts_the_clock() {
        let mut t = KvTtlTimers::default();
        let t0 = Instant::now();
        let s = |n: u64| Duration::from_secs(n);
        assert!(t
            .step(true, 1, || keys(&[("a", 5, 10), ("b", 6, 10)]), t0)
            .is_empty());
        // b is rewritten at 8s (a new ModifyIndex): its clock restarts.
        assert!(t
            .step(true, 2, || keys(&[("a", 5, 10), ("b", 9, 10)]), t0 + s(8))
            .is_empty());
        assert_eq!(
            t.step(true, 2, || unreachable!(), t0 + s(10)),
            vec![("a".to_string(), 5)]
        );
        // Not sent again until the retry delay has passed.
        assert!(t.step(true, 2, || unreachable!(), t0 + s(10)).is_empty());
        // The expiry landed: a is gone from the store.
        assert!(t
            .step(true, 3, || keys(&[("b", 9, 10)]), t0 + s(11))
            .is_empty());
        assert_eq!(
            t.step(true, 3, || unreachable!(), t0 + s(18)),
            vec![("b".to_string(), 9)]
        );
    }

    #[test]
    fn a_rewrite_without_ttl_stops_the_clock() {
        let mut t = KvTtlTimers::default();
        let t0 = Instant::now();
        t.step(true, 1, || keys(&[("a", 5, 2)]), t0);
        assert!(t
            .step(true, 2, Vec::new, t0 + Duration::from_secs(1))
            .is_empty());
        assert!(t
            .step(true, 2, Vec::new, t0 + Duration::from_secs(5))
            .is_empty());
    }

    #[test]
    fn a_new_leader_starts_every_clock_afresh() {
        let mut t = KvTtlTimers::default();
        let t0 = Instant::now();
        let s = |n: u64| Duration::from_secs(n);
        t.step(true, 1, || keys(&[("a", 5, 10)]), t0);
        // Leadership lost at 9s and won back at 12s: a whole TTL from then.
        assert!(t.step(false, 1, || unreachable!(), t0 + s(9)).is_empty());
        assert!(t
            .step(true, 1, || keys(&[("a", 5, 10)]), t0 + s(12))
            .is_empty());
        assert!(t.step(true, 1, || unreachable!(), t0 + s(21)).is_empty());
        assert_eq!(
            t.step(true, 1, || unreachable!(), t0 + s(22)),
            vec![("a".to_string(), 5)]
        );
    }
}
