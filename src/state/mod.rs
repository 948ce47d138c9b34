//! The state store: the replicated tables of one datacenter (KV, nodes,
//! services, checks, sessions, ACL objects, prepared queries, network
//! coordinates) with their indexes and
//! watches.
//!
//! Pure data-structure code: no I/O, no async. Every write takes the Raft
//! index that produced it; every row keeps `CreateIndex`/`ModifyIndex`; the
//! `indexes` table keeps the highest index per table and per service/node
//! name, so a read can answer `X-Consul-Index` for exactly what it covers
//! (deletes included). Reads may register a waiter for the rows they
//! touched, which is how blocking queries sleep without polling.
//!
//! Writes arrive as [`command::Command`]s (one per Raft entry); reads as
//! [`query::Query`]s. Both are plain data so that later forwarding to other
//! servers and datacenters can ship them unchanged.

pub mod acl;
pub mod catalog;
pub mod command;
pub mod coordinate;
pub mod kv;
pub mod prepared_query;
pub mod query;
pub mod session;
pub use crate::structs::catalog as structs;
pub use crate::structs::snapshot::StoreSnapshot;
pub mod txn;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use structs::{DirEntry, HealthCheck, Node, NodeService};

/// Table sizes, for telemetry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Usage {
    pub nodes: usize,
    /// Distinct service names.
    pub services: usize,
    pub service_instances: usize,
    pub kv_entries: usize,
    pub sessions: usize,
    pub checks_passing: usize,
    pub checks_warning: usize,
    pub checks_critical: usize,
}
use watch::{Waiter, WatchKey, Watches};

/// Table names in the index table.
pub(crate) const T_KVS: &str = "kvs";
pub(crate) const T_NODES: &str = "nodes";
pub(crate) const T_SERVICES: &str = "services";
pub(crate) const T_CHECKS: &str = "checks";
pub const T_SESSIONS: &str = "sessions";
pub(crate) const T_ACL_TOKENS: &str = "acl-tokens";
pub(crate) const T_ACL_POLICIES: &str = "acl-policies";
pub(crate) const T_ACL_ROLES: &str = "acl-roles";
pub(crate) const T_PREPARED_QUERIES: &str = "prepared-queries";
pub(crate) const T_COORDINATES: &str = "coordinates";

#[derive(Default)]
pub struct StateStore {
    kvs: BTreeMap<String, DirEntry>,
    /// Index at which a key was deleted, so that a recursive read's index
    /// still moves forward when its newest key goes away.
    tombstones: BTreeMap<String, u64>,
    /// Highest index among reaped tombstones (see [`StateStore::kv_reap_tombstones`]).
    kv_reaped_index: u64,
    /// Highest index any tombstone was made at (reaped or not): the
    /// leader's GC learns from it that deletes happened, without a scan.
    kv_tombstone_max: u64,
    /// The index of the last snapshot restore through Raft: changed-key
    /// reads cannot start below it (the keys it dropped left no tombstone).
    kv_restored_index: u64,
    /// The keys with a TTL: key → (`ModifyIndex`, TTL); derived from `kvs`.
    kv_ttl: BTreeMap<String, (u64, std::time::Duration)>,
    /// Counts changes to `kv_ttl` (see [`StateStore::kv_ttl_version`]).
    kv_ttl_version: u64,
    nodes: BTreeMap<String, Node>,
    /// (node, service id) → instance.
    services: BTreeMap<(String, String), NodeService>,
    /// (node, check id) → check.
    checks: BTreeMap<(String, String), HealthCheck>,
    /// service name → instances; derived from `services`.
    by_service_name: BTreeMap<String, BTreeSet<(String, String)>>,
    indexes: BTreeMap<String, u64>,
    /// Highest Raft index applied (writes, and entries with no table change).
    last_index: u64,
    /// Behind its own lock so that reads, which register watches, can
    /// share the store (`&self`) while only writes take it exclusively.
    watches: Mutex<Watches>,
    sessions: BTreeMap<String, session::Session>,
    /// Keys whose lock-delay runs (this server's clock; not replicated).
    lock_delays: std::collections::HashMap<String, tokio::time::Instant>,
    acl: acl::AclTables,
    /// ID → prepared query.
    prepared_queries: BTreeMap<String, prepared_query::PreparedQuery>,
    /// (node, segment) → the node's LAN coordinate.
    coordinates: BTreeMap<(String, String), crate::structs::coordinate::Coordinate>,
    /// Blocking queries waiting on this store now (not replicated).
    blocking: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl StateStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// Records that Raft applied `index` even if no table changed (blank
    /// and membership entries), so indexes never go backwards.
    pub fn note_index(&mut self, index: u64) {
        self.last_index = self.last_index.max(index);
    }

    /// The gauge of blocking queries waiting on this store: each holds
    /// one count while it sleeps (see `actors::raft::blocking_query`).
    pub fn blocking_gauge(&self) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
        self.blocking.clone()
    }

    pub fn blocking_queries(&self) -> usize {
        self.blocking.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How much the tables hold (Consul's `state.*` usage gauges).
    pub fn usage(&self) -> Usage {
        let mut u = Usage {
            nodes: self.nodes.len(),
            services: self.by_service_name.len(),
            service_instances: self.services.len(),
            kv_entries: self.kvs.len(),
            sessions: self.sessions.len(),
            ..Usage::default()
        };
        for c in self.checks.values() {
            match c.status {
                structs::HealthStatus::Passing => u.checks_passing += 1,
                structs::HealthStatus::Warning => u.checks_warning += 1,
                _ => u.checks_critical += 1,
            }
        }
        u
    }

    pub fn table_index(&self, name: &str) -> u64 {
        self.indexes.get(name).copied().unwrap_or(0)
    }

    fn bump(&mut self, name: &str, index: u64) {
        let e = self.indexes.entry(name.to_string()).or_insert(0);
        *e = (*e).max(index);
        self.last_index = self.last_index.max(index);
    }

    fn fire(&mut self, key: WatchKey) {
        self.watches
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .fire(&key);
    }

    /// Registers `waiter` on `key`. Reads hold the store shared while they
    /// register, and writes fire holding it exclusively, so no change can
    /// slip between a read and its registration.
    pub(crate) fn watch(&self, waiter: Option<&Waiter>, key: WatchKey) {
        if let Some(w) = waiter {
            self.watches
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .register(key, w);
        }
    }

    pub fn snapshot(&self) -> StoreSnapshot {
        let mut snap = StoreSnapshot {
            kvs: self.kvs.values().cloned().collect(),
            tombstones: self.tombstones.clone(),
            kv_reaped_index: self.kv_reaped_index,
            kv_restored_index: self.kv_restored_index,
            nodes: self.nodes.values().cloned().collect(),
            services: self
                .services
                .iter()
                .map(|((n, _), s)| (n.clone(), s.clone()))
                .collect(),
            checks: self.checks.values().cloned().collect(),
            sessions: self.sessions.values().cloned().collect(),
            prepared_queries: self.prepared_queries.values().cloned().collect(),
            indexes: self.indexes.clone(),
            last_index: self.last_index,
            coordinates: self.coordinate_rows_all(),
            ..Default::default()
        };
        self.acl.snapshot_into(&mut snap);
        snap
    }

    /// Replaces every table with the snapshot's and wakes every blocked
    /// query (their indexes may now mean something else).
    pub fn restore(&mut self, mut snap: StoreSnapshot) {
        let mut watches = std::mem::take(self.watches.get_mut().unwrap_or_else(|e| e.into_inner()));
        // Queries blocked now still count, and still decrement this one.
        let blocking = self.blocking.clone();
        // Kept counting, so the leader's TTL timers see the restore as a
        // change even when the rebuilt index has as many entries.
        let ttl_version = self.kv_ttl_version;
        *self = StateStore::default();
        self.blocking = blocking;
        self.kv_ttl_version = ttl_version;
        self.acl = acl::AclTables::restore_from(&mut snap);
        for e in snap.kvs {
            self.kvs.insert(e.key.clone(), e);
        }
        self.kv_tombstone_max = snap.tombstones.values().copied().max().unwrap_or(0);
        self.tombstones = snap.tombstones;
        self.kv_reaped_index = snap.kv_reaped_index;
        self.kv_restored_index = snap.kv_restored_index;
        self.kv_ttl_rebuild();
        for n in snap.nodes {
            self.nodes.insert(n.node.clone(), n);
        }
        for (node, s) in snap.services {
            self.by_service_name
                .entry(s.service.clone())
                .or_default()
                .insert((node.clone(), s.id.clone()));
            self.services.insert((node, s.id.clone()), s);
        }
        for c in snap.checks {
            self.checks.insert((c.node.clone(), c.check_id.clone()), c);
        }
        for c in snap.coordinates {
            self.coordinates.insert((c.node, c.segment), c.coord);
        }
        for se in snap.sessions {
            self.sessions.insert(se.id.clone(), se);
        }
        for q in snap.prepared_queries {
            self.prepared_queries.insert(q.id.clone(), q);
        }
        self.indexes = snap.indexes;
        self.last_index = snap.last_index;
        watches.fire_all();
        self.watches = Mutex::new(watches);
    }

    /// A restore that Raft applied at `index`: the snapshot's tables, with
    /// every table index moved up to `index` so that blocking queries of
    /// the old state wake and see the new one as a change.
    pub fn restore_at(&mut self, index: u64, snap: StoreSnapshot) {
        self.restore(snap);
        self.kv_restored_index = index;
        for t in [
            T_KVS,
            T_NODES,
            T_SERVICES,
            T_CHECKS,
            T_SESSIONS,
            T_ACL_TOKENS,
            T_ACL_POLICIES,
            T_ACL_ROLES,
            T_PREPARED_QUERIES,
            T_COORDINATES,
        ] {
            self.bump(t, index);
        }
        for v in self.indexes.values_mut() {
            *v = (*v).max(index);
        }
        self.last_index = self.last_index.max(index);
    }
}

#[cfg(test)]
mod kv_ext_tests;
#[cfg(test)]
mod tests;
