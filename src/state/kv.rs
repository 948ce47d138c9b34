//! The KV table: set, check-and-set, delete, delete-tree, and reads by key,
//! prefix and key listing with a separator.

use super::structs::DirEntry;
use super::watch::{Waiter, WatchKey};
use super::{StateStore, T_KVS};

impl StateStore {
    /// Stores `value` under `key`. An existing entry keeps its
    /// `CreateIndex`, `LockIndex` and lock holder: a plain write ignores
    /// locks, as in Consul.
    pub fn kv_set(&mut self, index: u64, key: &str, value: Vec<u8>, flags: u64) -> bool {
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
        };
        self.kvs.insert(key.to_string(), entry);
        self.tombstones.remove(key);
        self.kv_changed(index, key);
        true
    }

    /// Writes only if the entry's `ModifyIndex` equals `cas`; `cas == 0`
    /// writes only if the key does not exist.
    pub fn kv_cas(&mut self, index: u64, key: &str, value: Vec<u8>, flags: u64, cas: u64) -> bool {
        let current = self.kvs.get(key).map(|e| e.modify_index);
        let ok = match (cas, current) {
            (0, None) => true,
            (0, Some(_)) => false,
            (n, Some(m)) => n == m,
            (_, None) => false,
        };
        if ok {
            self.kv_set(index, key, value, flags);
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

    pub(crate) fn kv_changed(&mut self, index: u64, key: &str) {
        self.bump(T_KVS, index);
        self.fire(WatchKey::Key(key.to_string()));
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
