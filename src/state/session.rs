//! Sessions and the KV locks they hold (Consul's `session.go` and the lock
//! verbs of `kvs.go`): create, destroy, look up; `acquire` and `release`;
//! invalidation when a session's node goes away or one of its checks goes
//! critical, with the `release` or `delete` behavior and the lock-delay.
//!
//! The lock-delay is kept in memory with the clock of each server, as
//! Consul does, and is not replicated. It is therefore enforced only
//! before Raft, by the leader ([`StateStore::lock_delay_refusal`], Consul's
//! `kvsPreApply`), never while applying: servers apply an entry at
//! different instants (a restarted one replays its log all at once), so an
//! `acquire` checked against the clock at apply time was accepted by some
//! servers and refused by others, and they disagreed on who held the lock
//! (found by the lock workload, `tests/fault/lock.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

pub use crate::structs::session::{ServiceCheck, Session};

use super::command::{Command, CommandResult};
use super::structs::{DirEntry, HealthStatus};
use super::txn::{KvOp, TxnOp, TxnOutcome};
use super::watch::{Waiter, WatchKey};
use super::{StateStore, T_SESSIONS};

impl Session {
    /// Every check whose going critical invalidates this session.
    fn check_ids(&self) -> impl Iterator<Item = &str> {
        self.node_checks
            .iter()
            .map(String::as_str)
            .chain(self.service_checks.iter().map(|c| c.id.as_str()))
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SessionError {
    #[error("Missing node registration")]
    UnknownNode,
    #[error("Missing check '{0}' registration")]
    UnknownCheck(String),
    #[error("Check '{0}' is in critical state")]
    CriticalCheck(String),
    #[error("Session already exists")]
    Exists,
}

impl StateStore {
    pub fn session_create(&mut self, index: u64, mut s: Session) -> Result<(), SessionError> {
        if self.sessions.contains_key(&s.id) {
            return Err(SessionError::Exists);
        }
        if !self.nodes.contains_key(&s.node) {
            return Err(SessionError::UnknownNode);
        }
        for id in s.check_ids() {
            match self.checks.get(&(s.node.clone(), id.to_string())) {
                None => return Err(SessionError::UnknownCheck(id.to_string())),
                Some(c) if c.status == HealthStatus::Critical => {
                    return Err(SessionError::CriticalCheck(id.to_string()))
                }
                Some(_) => {}
            }
        }
        s.create_index = index;
        s.modify_index = index;
        let node = s.node.clone();
        self.sessions.insert(s.id.clone(), s);
        self.session_changed(index, &node);
        Ok(())
    }

    /// Ends a session: its locks are released (or their keys deleted),
    /// with the lock-delay. True when it existed.
    pub fn session_destroy(&mut self, index: u64, id: &str) -> bool {
        let Some(s) = self.sessions.remove(id) else {
            return false;
        };
        let held: Vec<String> = self
            .kvs
            .values()
            .filter(|e| e.session.as_deref() == Some(id))
            .map(|e| e.key.clone())
            .collect();
        let until = (s.lock_delay > 0).then(|| Instant::now() + Duration::from_nanos(s.lock_delay));
        for key in held {
            if let Some(until) = until {
                self.lock_delays.insert(key.clone(), until);
            }
            if s.behavior == "delete" {
                self.kv_delete(index, &key);
            } else if let Some(mut e) = self.kvs.get(&key).cloned() {
                e.session = None;
                e.modify_index = index;
                self.kvs.insert(key.clone(), e);
                self.kv_changed(index, &key);
            }
        }
        self.session_changed(index, &s.node);
        self.prepared_queries_of_session_gone(index, id);
        true
    }

    /// Sessions on `node` that `check_id` (or, with `None`, the node
    /// itself) backs: what must end when it goes critical or away.
    pub(crate) fn invalidate_sessions(&mut self, index: u64, node: &str, check_id: Option<&str>) {
        let doomed: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.node == node)
            .filter(|s| check_id.is_none_or(|c| s.check_ids().any(|id| id == c)))
            .map(|s| s.id.clone())
            .collect();
        for id in doomed {
            self.session_destroy(index, &id);
        }
    }

    pub fn session_get(&self, id: &str, waiter: Option<&Waiter>) -> (u64, Option<Session>) {
        self.watch(waiter, WatchKey::Sessions);
        (
            self.table_index(T_SESSIONS).max(1),
            self.sessions.get(id).cloned(),
        )
    }

    pub fn session_list(&self, node: Option<&str>, waiter: Option<&Waiter>) -> (u64, Vec<Session>) {
        self.watch(waiter, WatchKey::Sessions);
        let list = self
            .sessions
            .values()
            .filter(|s| node.is_none_or(|n| s.node == n))
            .cloned()
            .collect();
        (self.table_index(T_SESSIONS).max(1), list)
    }

    /// Every session, for the leader's TTL timers.
    pub fn sessions(&self) -> &BTreeMap<String, Session> {
        &self.sessions
    }

    /// What the leader answers instead of writing `command` while it
    /// would take a lock whose lock-delay runs: `false` for `?acquire=`,
    /// a failed transaction for a txn `lock` verb (Consul's words).
    /// `None`: the command goes to Raft.
    pub fn lock_delay_refusal(&self, command: &Command) -> Option<CommandResult> {
        let delayed = |key: &str| {
            self.lock_delays
                .get(key)
                .is_some_and(|until| Instant::now() < *until)
        };
        // The first `lock` of a delayed key, by its index among all the
        // transaction's operations.
        let txn_refusal = |kv_ops: Vec<(usize, &KvOp)>| {
            let (i, op) = kv_ops
                .into_iter()
                .find(|(_, op)| op.verb == "lock" && delayed(&op.key))?;
            Some(CommandResult::Txn(TxnOutcome::Errors(vec![(
                i,
                format!("failed to lock key {:?} due to lock delay", op.key),
            )])))
        };
        match command {
            Command::KvLock { key, .. } if delayed(key) => Some(CommandResult::Bool(false)),
            Command::Txn(ops) => txn_refusal(ops.iter().enumerate().collect()),
            Command::TxnOps(ops) => txn_refusal(
                ops.iter()
                    .enumerate()
                    .filter_map(|(i, o)| match o {
                        TxnOp::Kv(k) => Some((i, k)),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    /// `?acquire=`: takes the lock for `session` (a holder re-acquiring
    /// keeps it and updates the value); refused while another session
    /// holds it. The lock-delay is not looked at here (see the module
    /// doc): the leader refused the command before Raft if it ran.
    pub fn kv_lock(
        &mut self,
        index: u64,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        session: &str,
    ) -> bool {
        self.kv_lock_ttl(index, key, value, flags, session, None)
    }

    /// [`Self::kv_lock`] that sets the entry's TTL, or clears it.
    pub fn kv_lock_ttl(
        &mut self,
        index: u64,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        session: &str,
        ttl: Option<String>,
    ) -> bool {
        if !self.sessions.contains_key(session) {
            return false;
        }
        let existing = self.kvs.get(key).cloned();
        let (create_index, lock_index) = match &existing {
            Some(e) if e.session.as_deref() == Some(session) => (e.create_index, e.lock_index),
            Some(e) if e.session.is_some() => return false,
            Some(e) => (e.create_index, e.lock_index + 1),
            None => (index, 1),
        };
        self.kvs.insert(
            key.to_string(),
            DirEntry {
                lock_index,
                key: key.to_string(),
                flags,
                value,
                session: Some(session.to_string()),
                create_index,
                modify_index: index,
                ttl,
            },
        );
        self.tombstones.remove(key);
        self.kv_changed(index, key);
        true
    }

    /// `?release=`: gives the lock up if `session` holds it.
    pub fn kv_unlock(
        &mut self,
        index: u64,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        session: &str,
    ) -> bool {
        self.kv_unlock_ttl(index, key, value, flags, session, None)
    }

    /// [`Self::kv_unlock`] that sets the entry's TTL, or clears it.
    pub fn kv_unlock_ttl(
        &mut self,
        index: u64,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        session: &str,
        ttl: Option<String>,
    ) -> bool {
        match self.kvs.get(key) {
            Some(e) if e.session.as_deref() == Some(session) => {
                let mut e = e.clone();
                e.session = None;
                e.value = value;
                e.flags = flags;
                e.modify_index = index;
                e.ttl = ttl;
                self.kvs.insert(key.to_string(), e);
                self.kv_changed(index, key);
                true
            }
            _ => false,
        }
    }

    fn session_changed(&mut self, index: u64, _node: &str) {
        self.bump(T_SESSIONS, index);
        self.fire(WatchKey::Sessions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::structs::{HealthCheck, RegisterRequest};

    /// Registers node n1 (again) with its serfHealth at `status`.
    fn serf(s: &mut StateStore, index: u64, status: HealthStatus) {
        s.ensure_registration(
            index,
            &RegisterRequest {
                node: "n1".into(),
                address: "10.0.0.1".into(),
                check: Some(HealthCheck {
                    check_id: "serfHealth".into(),
                    name: "Serf Health Status".into(),
                    status,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .unwrap();
    }

    fn lock(key: &str, session: &str) -> Command {
        Command::KvLock {
            key: key.into(),
            value: Vec::new(),
            flags: 0,
            session: session.into(),
            ttl: None,
        }
    }

    fn store_with_node() -> StateStore {
        let mut s = StateStore::new();
        serf(&mut s, 1, HealthStatus::Passing);
        s
    }

    fn session(id: &str, behavior: &str, delay_ms: u64) -> Session {
        Session {
            id: id.into(),
            node: "n1".into(),
            node_checks: vec!["serfHealth".into()],
            behavior: behavior.into(),
            lock_delay: delay_ms * 1_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn locks_follow_their_session() {
        let mut s = store_with_node();
        s.session_create(2, session("a", "release", 0)).unwrap();
        s.session_create(3, session("b", "release", 0)).unwrap();
        assert!(s.kv_lock(4, "lock", b"a".to_vec(), 0, "a"));
        assert!(!s.kv_lock(5, "lock", b"b".to_vec(), 0, "b"), "held by a");
        assert!(
            s.kv_lock(6, "lock", b"a2".to_vec(), 0, "a"),
            "the holder again"
        );
        let e = s.kvs["lock"].clone();
        assert_eq!((e.lock_index, e.session.as_deref()), (1, Some("a")));
        assert!(!s.kv_unlock(7, "lock", vec![], 0, "b"));
        assert!(s.kv_unlock(8, "lock", b"free".to_vec(), 0, "a"));
        assert!(s.kv_lock(9, "lock", b"b".to_vec(), 0, "b"));
        assert_eq!(s.kvs["lock"].lock_index, 2);
        assert!(
            !s.kv_lock(10, "other", vec![], 0, "nope"),
            "unknown session"
        );
    }

    #[test]
    fn a_critical_check_ends_sessions_with_their_behavior_and_lock_delay() {
        let mut s = store_with_node();
        s.session_create(2, session("rel", "release", 60_000))
            .unwrap();
        s.session_create(3, session("del", "delete", 0)).unwrap();
        assert!(s.kv_lock(4, "k1", b"x".to_vec(), 0, "rel"));
        assert!(s.kv_lock(5, "k2", b"y".to_vec(), 0, "del"));
        serf(&mut s, 6, HealthStatus::Critical);
        assert!(s.sessions.is_empty());
        assert_eq!(s.kvs["k1"].session, None, "released");
        assert!(!s.kvs.contains_key("k2"), "deleted");
        // The lock-delay holds k1 for the next session.
        serf(&mut s, 7, HealthStatus::Passing);
        s.session_create(8, session("next", "release", 0)).unwrap();
        assert!(s.lock_delay_refusal(&lock("k1", "next")).is_some());
        assert!(s.lock_delay_refusal(&lock("k3", "next")).is_none());
        assert!(s.kv_lock(10, "k3", vec![], 0, "next"));
    }

    /// A store where session "a" (15 s lock-delay) held "k" and was
    /// destroyed, and session "b" waits to take it.
    fn lock_released_by_invalidation() -> StateStore {
        let mut s = store_with_node();
        s.session_create(2, session("a", "release", 15_000))
            .unwrap();
        assert!(s.kv_lock(3, "k", vec![], 0, "a"));
        assert!(s.session_destroy(4, "a"));
        s.session_create(5, session("b", "release", 0)).unwrap();
        s
    }

    /// The lock-delay reads tokio's clock: with the clock paused, the test
    /// steps past it instead of sleeping 15 s.
    #[tokio::test(start_paused = true)]
    async fn the_lock_delay_ends_when_the_clock_passes_it() {
        let s = lock_released_by_invalidation();
        let refused = Some(CommandResult::Bool(false));
        assert_eq!(
            s.lock_delay_refusal(&lock("k", "b")),
            refused,
            "within the lock-delay"
        );
        tokio::time::advance(Duration::from_secs(14)).await;
        assert_eq!(
            s.lock_delay_refusal(&lock("k", "b")),
            refused,
            "still within it"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            s.lock_delay_refusal(&lock("k", "b")),
            None,
            "the delay is over"
        );
    }

    /// Applying an acquire never looks at the clock: a server replaying
    /// its log after a restart (the invalidation and the acquire a moment
    /// apart) must end where the leader did, which refused nothing.
    #[tokio::test(start_paused = true)]
    async fn applying_an_acquire_inside_the_lock_delay_takes_the_lock() {
        let mut s = lock_released_by_invalidation();
        assert!(s.kv_lock(6, "k", vec![], 0, "b"));
        assert_eq!(s.kvs["k"].session.as_deref(), Some("b"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_txn_lock_inside_the_lock_delay_is_refused_with_its_index() {
        let mut s = store_with_node();
        s.session_create(2, session("a", "release", 15_000))
            .unwrap();
        assert!(s.kv_lock(3, "k", vec![], 0, "a"));
        assert!(s.session_destroy(4, "a"));
        let op = |verb: &str, key: &str| KvOp {
            verb: verb.into(),
            key: key.into(),
            value: Vec::new(),
            flags: 0,
            index: 0,
            session: "b".into(),
            ttl: None,
        };
        let txn = Command::Txn(vec![op("set", "x"), op("lock", "k")]);
        assert_eq!(
            s.lock_delay_refusal(&txn),
            Some(CommandResult::Txn(TxnOutcome::Errors(vec![(
                1,
                "failed to lock key \"k\" due to lock delay".into()
            )])))
        );
        assert_eq!(
            s.lock_delay_refusal(&Command::Txn(vec![op("lock", "y")])),
            None
        );
    }

    #[test]
    fn sessions_need_a_node_and_healthy_checks() {
        let mut s = store_with_node();
        let mut bad = session("x", "release", 0);
        bad.node = "nope".into();
        assert_eq!(s.session_create(2, bad), Err(SessionError::UnknownNode));
        let mut bad = session("y", "release", 0);
        bad.node_checks = vec!["missing".into()];
        assert_eq!(
            s.session_create(3, bad),
            Err(SessionError::UnknownCheck("missing".into()))
        );
        s.session_create(4, session("z", "release", 0)).unwrap();
        s.deregister(
            5,
            &crate::state::structs::DeregisterRequest {
                node: "n1".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(s.sessions.is_empty(), "the node went away");
    }
}
