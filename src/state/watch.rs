//! Watch registry: how a blocking query learns that a row it read changed.
//!
//! A read registers one `Notify` under the watch keys of the rows it touched
//! (under the same lock as the read, so no change can slip between the read
//! and the registration). A write fires the keys of the rows it changed. A
//! fired waiter is removed; a waiter whose query gave up is dropped lazily.
//! `Notify::notify_one` stores a permit, so a change that lands between the
//! read and the `notified().await` is not lost.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use tokio::sync::Notify;

/// What a read can depend on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WatchKey {
    /// One KV key, present or absent.
    Key(String),
    /// Every key under a prefix (the empty prefix is the whole KV store).
    KeyPrefix(String),
    /// The whole node table (node list, node-level checks).
    Nodes,
    /// The whole service table (service list).
    Services,
    /// The whole check table (health state queries).
    Checks,
    /// One service name: its instances and their checks.
    Service(String),
    /// One node: its row, its services and its checks.
    Node(String),
    /// The session table.
    Sessions,
    /// The ACL token table (and the bootstrap record).
    AclTokens,
    /// The ACL policy table.
    AclPolicies,
    /// The ACL role table.
    AclRoles,
    /// The prepared-query table.
    PreparedQueries,
    /// The coordinate table.
    Coordinates,
}

/// A waiter handed to reads; fires once when any of its keys changes.
pub type Waiter = Arc<Notify>;

#[derive(Default)]
pub struct Watches {
    exact: HashMap<WatchKey, Vec<Weak<Notify>>>,
    /// Prefix waiters, looked up by every prefix of a changed key.
    prefixes: HashMap<String, Vec<Weak<Notify>>>,
    registrations: usize,
}

impl Watches {
    pub fn register(&mut self, key: WatchKey, waiter: &Waiter) {
        let weak = Arc::downgrade(waiter);
        match key {
            WatchKey::KeyPrefix(p) => self.prefixes.entry(p).or_default().push(weak),
            other => self.exact.entry(other).or_default().push(weak),
        }
        self.registrations += 1;
        // Queries that time out leave dead entries behind on keys that never
        // change; sweep them now and then so the maps stay bounded.
        if self.registrations.is_multiple_of(4096) {
            self.sweep();
        }
    }

    pub fn fire(&mut self, key: &WatchKey) {
        if let WatchKey::KeyPrefix(_) = key {
            return;
        }
        if let Some(list) = self.exact.remove(key) {
            wake(list);
        }
        if let WatchKey::Key(k) = key {
            // Every prefix of the changed key, the empty one included.
            let mut bounds: Vec<usize> = k.char_indices().map(|(i, _)| i).collect();
            bounds.push(k.len());
            for end in bounds {
                if let Some(list) = self.prefixes.remove(&k[..end]) {
                    wake(list);
                }
            }
        }
    }

    /// Wakes every waiter: used when the whole state is replaced (restore).
    pub fn fire_all(&mut self) {
        for (_, list) in self.exact.drain() {
            wake(list);
        }
        for (_, list) in self.prefixes.drain() {
            wake(list);
        }
    }

    fn sweep(&mut self) {
        self.exact.retain(|_, l| {
            l.retain(|w| w.strong_count() > 0);
            !l.is_empty()
        });
        self.prefixes.retain(|_, l| {
            l.retain(|w| w.strong_count() > 0);
            !l.is_empty()
        });
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.exact.values().map(Vec::len).sum::<usize>()
            + self.prefixes.values().map(Vec::len).sum::<usize>()
    }
}

fn wake(list: Vec<Weak<Notify>>) {
    for w in list {
        if let Some(n) = w.upgrade() {
            n.notify_one();
        }
    }
}
