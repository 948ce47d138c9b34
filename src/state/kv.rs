//! The KV table: set, check-and-set, delete, delete-tree, and reads by key,
//! prefix and key listing with a separator.
//!
//! Two Meridian extensions live here too. KV TTLs: an entry may carry a
//! TTL, and the store keeps the TTL keys in a small index of their own so
//! that the leader's timers (`actors::raft::kv_ttl`) never walk the whole
//! table; expiry itself is a replicated `KvExpire`, a delete guarded by
//! the `ModifyIndex` the timer was started for. Changed-key reads: what
//! changed under a prefix after an index, deletions from the tombstones,
//! refused as too old once the tombstones that could answer were reaped
//! (or a snapshot restore replaced the table).

use std::time::Duration;

use super::structs::{DirEntry, KvChange, KvChanges};
use super::watch::{Waiter, WatchKey};
use super::{StateStore, T_KVS};

impl StateStore {
    /// Stores `value` under `key`. An existing entry keeps its
    /// `CreateIndex`, `LockIndex` and lock holder: a plain write ignores
    /// locks, as in Consul.
    pub fn kv_set(&mut self, index: u64, key: &str, value: Vec<u8>, flags: u64) -> bool {
        self.kv_set_ttl(index, key, value, flags, None)
    }

    /// [`Self::kv_set`] that also sets the entry's TTL, or clears it
    /// (`None`): every write says what the TTL is from then on.
    pub fn kv_set_ttl(
        &mut self,
        index: u64,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        ttl: Option<String>,
    ) -> bool {
        let (create_index, lock_index, session) = match self.kvs.get(key) {
            Some(e) => (e.create_index, e.lock_index, e.session.clone()),
            None => (index, 0, None),
        };
        let entry = DirEntry {
            lock_index,
            key: key.to_string(),
            flags,
            value,
            session,
            create_index,
            modify_index: index,
            ttl,
        };
        self.kvs.insert(key.to_string(), entry);
        self.tombstones.remove(key);
        self.kv_changed(index, key);
        true
    }

    /// Writes only if the entry's `ModifyIndex` equals `cas`; `cas == 0`
    /// writes only if the key does not exist.
    pub fn kv_cas(&mut self, index: u64, key: &str, value: Vec<u8>, flags: u64, cas: u64) -> bool {
        self.kv_cas_ttl(index, key, value, flags, cas, None)
    }

    /// [`Self::kv_cas`] with the entry's TTL (see [`Self::kv_set_ttl`]).
    pub fn kv_cas_ttl(
        &mut self,
        index: u64,
        key: &str,
        value: Vec<u8>,
        flags: u64,
        cas: u64,
        ttl: Option<String>,
    ) -> bool {
        let current = self.kvs.get(key).map(|e| e.modify_index);
        let ok = match (cas, current) {
            (0, None) => true,
            (0, Some(_)) => false,
            (n, Some(m)) => n == m,
            (_, None) => false,
        };
        if ok {
            self.kv_set_ttl(index, key, value, flags, ttl);
        }
        ok
    }

    pub fn kv_delete(&mut self, index: u64, key: &str) -> bool {
        if self.kvs.remove(key).is_some() {
            self.tombstones.insert(key.to_string(), index);
            self.kv_tombstone_max = self.kv_tombstone_max.max(index);
            self.kv_changed(index, key);
        }
        true
    }

    /// Deletes only if the entry exists with `ModifyIndex == cas`.
    pub fn kv_delete_cas(&mut self, index: u64, key: &str, cas: u64) -> bool {
        match self.kvs.get(key) {
            Some(e) if e.modify_index == cas => self.kv_delete(index, key),
            _ => false,
        }
    }

    pub fn kv_delete_tree(&mut self, index: u64, prefix: &str) -> bool {
        let doomed: Vec<String> = self
            .kvs
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.kv_delete(index, &k);
        }
        true
    }

    /// Deletes `key` for its TTL: only if it still has one and has not
    /// been written since `modify_index`, the write the leader's timer
    /// was started for (a rewrite in between restarted the clock, or
    /// cleared the TTL, and must win).
    pub fn kv_expire(&mut self, index: u64, key: &str, modify_index: u64) -> bool {
        match self.kvs.get(key) {
            Some(e) if e.modify_index == modify_index && e.ttl.is_some() => {
                self.kv_delete(index, key)
            }
            _ => false,
        }
    }

    /// Every change of a KV row goes through here, so the TTL index
    /// follows the table without each writer knowing about it.
    pub(crate) fn kv_changed(&mut self, index: u64, key: &str) {
        self.bump(T_KVS, index);
        self.kv_ttl_track(key);
        self.fire(WatchKey::Key(key.to_string()));
    }

    /// Brings `key`'s place in the TTL index in line with its entry.
    pub(crate) fn kv_ttl_track(&mut self, key: &str) {
        let want = self
            .kvs
            .get(key)
            .and_then(|e| e.ttl().map(|d| (e.modify_index, d)));
        let had = match want {
            Some(v) => self.kv_ttl.insert(key.to_string(), v),
            None => self.kv_ttl.remove(key),
        };
        if had != want {
            self.kv_ttl_version += 1;
        }
    }

    /// Rebuilds the TTL index from the table (after a restore, or a
    /// transaction that put whole tables back).
    pub(crate) fn kv_ttl_rebuild(&mut self) {
        self.kv_ttl = self
            .kvs
            .values()
            .filter_map(|e| Some((e.key.clone(), (e.modify_index, e.ttl()?))))
            .collect();
        self.kv_ttl_version += 1;
    }

    /// The keys with a TTL: key → (`ModifyIndex`, TTL).
    pub fn kv_ttl_keys(&self) -> &std::collections::BTreeMap<String, (u64, Duration)> {
        &self.kv_ttl
    }

    /// Moves whenever [`Self::kv_ttl_keys`] changes (this server's count,
    /// not replicated): the leader re-reads the TTL keys only then.
    pub fn kv_ttl_version(&self) -> u64 {
        self.kv_ttl_version
    }

    /// The oldest index a changed-keys read can start from: below it,
    /// deletions may have left no tombstone (reaped, or the table was
    /// replaced by a snapshot restore).
    pub fn kv_changes_floor(&self) -> u64 {
        self.kv_reaped_index.max(self.kv_restored_index)
    }

    /// What changed under `prefix` after `since`: entries with a higher
    /// `ModifyIndex` and tombstones with a higher index, in key order
    /// (a key is never both: a write removes its tombstone). The index is
    /// [`Self::kv_list`]'s, so a blocking read wakes exactly when a
    /// recursive one would.
    pub fn kv_changes(
        &self,
        prefix: &str,
        since: u64,
        waiter: Option<&Waiter>,
    ) -> (u64, KvChanges) {
        self.watch(waiter, WatchKey::KeyPrefix(prefix.to_string()));
        let mut live = 0;
        let mut changes: Vec<KvChange> = Vec::new();
        for (_, e) in self
            .kvs
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            live = live.max(e.modify_index);
            if e.modify_index > since {
                changes.push(KvChange::Set(e.clone()));
            }
        }
        let index = self.prefix_index(prefix, live);
        let floor = self.kv_changes_floor();
        if since < floor {
            return (index, KvChanges::TooOld { floor });
        }
        changes.extend(
            self.tombstones
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(_, i)| **i > since)
                .map(|(k, i)| KvChange::Deleted {
                    key: k.clone(),
                    modify_index: *i,
                }),
        );
        changes.sort_by(|a, b| a.key().cmp(b.key()));
        (index, KvChanges::Since(changes))
    }

    /// One entry. The index is the entry's `ModifyIndex`, or the table's
    /// when the key is absent (Consul's rule).
    pub fn kv_get(&self, key: &str, waiter: Option<&Waiter>) -> (u64, Option<DirEntry>) {
        self.watch(waiter, WatchKey::Key(key.to_string()));
        match self.kvs.get(key) {
            Some(e) => (e.modify_index, Some(e.clone())),
            None => (self.table_index(T_KVS), None),
        }
    }

    /// Every entry under `prefix`, in key order. The index is the highest
    /// `ModifyIndex` under the prefix, deletions included.
    pub fn kv_list(&self, prefix: &str, waiter: Option<&Waiter>) -> (u64, Vec<DirEntry>) {
        self.watch(waiter, WatchKey::KeyPrefix(prefix.to_string()));
        let entries: Vec<DirEntry> = self
            .kvs
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, e)| e.clone())
            .collect();
        let live = entries.iter().map(|e| e.modify_index).max().unwrap_or(0);
        (self.prefix_index(prefix, live), entries)
    }

    /// Keys under `prefix`; with a separator, each key is cut after the
    /// first separator past the prefix and duplicates are dropped
    /// (`web/sub/a`, `web/sub/b` → `web/sub/`).
    pub fn kv_keys(
        &self,
        prefix: &str,
        separator: Option<&str>,
        waiter: Option<&Waiter>,
    ) -> (u64, Vec<String>) {
        self.watch(waiter, WatchKey::KeyPrefix(prefix.to_string()));
        let mut keys: Vec<String> = Vec::new();
        let mut live = 0;
        for (k, e) in self
            .kvs
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            live = live.max(e.modify_index);
            let cut = match separator.filter(|s| !s.is_empty()) {
                Some(sep) => match k[prefix.len()..].find(sep) {
                    Some(pos) => &k[..prefix.len() + pos + sep.len()],
                    None => k.as_str(),
                },
                None => k.as_str(),
            };
            if keys.last().map(String::as_str) != Some(cut) {
                keys.push(cut.to_string());
            }
        }
        (self.prefix_index(prefix, live), keys)
    }

    /// A prefix read's `X-Consul-Index`: the highest `ModifyIndex` under
    /// the prefix (`live`), deletions included; the table's index when
    /// nothing is or was there. Once tombstones have been reaped their
    /// indexes are floored at the highest reaped one: without it, a
    /// prefix whose newest change was a delete would answer an older
    /// index after the reap (Consul's documented "index went backwards"
    /// case), and a watcher holding the delete's index would then either
    /// spin or miss changes. The floor can move another prefix's index
    /// forward once, which a watcher sees as one spurious wake-up.
    pub(crate) fn prefix_index(&self, prefix: &str, live: u64) -> u64 {
        let dead = self
            .tombstones
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, i)| *i)
            .max()
            .unwrap_or(0);
        match live.max(dead) {
            0 => self.table_index(T_KVS),
            own => own.max(self.kv_reaped_index),
        }
    }

    /// Drops the tombstones at or below `reap_index` (Consul's
    /// `ReapTombstones`); returns how many. No table index moves and no
    /// watcher fires: nothing a read returns changes, only the index of
    /// some prefixes (see [`Self::prefix_index`]), and only upward.
    pub fn kv_reap_tombstones(&mut self, reap_index: u64) -> usize {
        let before = self.tombstones.len();
        let mut highest = self.kv_reaped_index;
        self.tombstones.retain(|_, i| {
            if *i <= reap_index {
                highest = highest.max(*i);
                false
            } else {
                true
            }
        });
        self.kv_reaped_index = highest;
        before - self.tombstones.len()
    }

    /// Tombstones held now.
    pub fn kv_tombstones(&self) -> usize {
        self.tombstones.len()
    }

    /// The highest index a tombstone was ever made at.
    pub fn kv_tombstone_max(&self) -> u64 {
        self.kv_tombstone_max
    }
}
