//! The state machine: applies committed entries to the state store, and
//! builds, keeps and installs snapshots of it.
//!
//! The state store itself lives in memory; after a restart it is rebuilt
//! from the last snapshot plus the log (openraft re-applies up to the saved
//! committed index). Snapshots are kept in a redb database of their own
//! (see the storage module for why, and why the log cannot get ahead).

use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StoredMembership,
};
use redb::ReadableDatabase;

use super::{
    blocking, io_err, read_err, redb_err, NodeId, StorageError, TypeConfig, KEY_SNAPSHOT,
    KEY_SNAPSHOT_DATA, META,
};
use crate::state::command::{apply, CommandResult};
use crate::state::{StateStore, StoreSnapshot};

/// The state store shared between the state machine (writer) and readers.
/// The state store, shared by the state machine (the one writer) and
/// every reader. Reads take it shared: a blocking query or a DNS lookup
/// never waits on another read, only on an entry being applied.
pub type SharedStore = Arc<RwLock<StateStore>>;

pub fn new_shared(store: StateStore) -> SharedStore {
    Arc::new(RwLock::new(store))
}

/// Reads the store. A panic elsewhere while holding it must not take
/// every later read down with it, and the store has no invariant a
/// half-applied entry could break (apply is a single synchronous call).
pub fn read(store: &SharedStore) -> RwLockReadGuard<'_, StateStore> {
    store.read().unwrap_or_else(|p| p.into_inner())
}

/// Changes the store (applying entries, restoring snapshots).
pub fn write(store: &SharedStore) -> RwLockWriteGuard<'_, StateStore> {
    store.write().unwrap_or_else(|p| p.into_inner())
}

pub struct StateMachine {
    /// The snapshots' database.
    db: Arc<redb::Database>,
    store: SharedStore,
    point: Arc<std::sync::Mutex<Point>>,
    /// Set while a snapshot builder copies the store (holding it shared
    /// for up to a second): apply then waits for it off the Raft thread.
    copying: Arc<AtomicBool>,
}

/// The last entry applied to the store and the membership then. Changed
/// only while the store's write lock is held, so a snapshot builder that
/// reads it under the read lock names exactly the entries its copy holds
/// (openraft builds in a task of its own while entries go on applying).
#[derive(Clone, Default)]
struct Point {
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

fn point(p: &std::sync::Mutex<Point>) -> std::sync::MutexGuard<'_, Point> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

type Meta = SnapshotMeta<NodeId, BasicNode>;

/// Applies committed entries to the store, under its write lock, moving
/// the applied point with them.
fn apply_entries(
    mut store: RwLockWriteGuard<'_, StateStore>,
    at: &std::sync::Mutex<Point>,
    entries: Vec<Entry<TypeConfig>>,
) -> Vec<CommandResult> {
    let mut results = Vec::with_capacity(entries.len());
    let mut at = point(at);
    for entry in entries {
        let index = entry.log_id.index;
        at.applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Normal(cmd) => results.push(apply(&mut store, index, &cmd)),
            EntryPayload::Blank => {
                store.note_index(index);
                results.push(CommandResult::Done);
            }
            EntryPayload::Membership(m) => {
                store.note_index(index);
                at.membership = StoredMembership::new(Some(entry.log_id), m);
                results.push(CommandResult::Done);
            }
        }
    }
    results
}

fn load_snapshot(db: &redb::Database) -> Result<Option<(Meta, Vec<u8>)>, StorageError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let table = txn.open_table(META).map_err(redb_err)?;
    let meta = match table.get(KEY_SNAPSHOT).map_err(redb_err)? {
        Some(v) => serde_json::from_slice::<Meta>(v.value()).map_err(redb_err)?,
        None => return Ok(None),
    };
    let data = match table.get(KEY_SNAPSHOT_DATA).map_err(redb_err)? {
        Some(v) => v.value().to_vec(),
        None => return Ok(None),
    };
    Ok(Some((meta, data)))
}

fn save_snapshot(db: &redb::Database, meta: &Meta, data: &[u8]) -> Result<(), StorageError> {
    let meta_bytes = serde_json::to_vec(meta).map_err(redb_err)?;
    let txn = db.begin_write().map_err(redb_err)?;
    {
        let mut table = txn.open_table(META).map_err(redb_err)?;
        table
            .insert(KEY_SNAPSHOT, meta_bytes.as_slice())
            .map_err(redb_err)?;
        table.insert(KEY_SNAPSHOT_DATA, data).map_err(redb_err)?;
    }
    txn.commit().map_err(redb_err)
}

/// A snapshot of `bytes` was decoded and restored, starting at `started`.
fn restored(started: std::time::Instant, bytes: usize) {
    let reg = crate::metrics::global();
    reg.summary("raft.fsm.restore").since(started);
    reg.gauge("raft.snapshot.size").set(bytes as f64);
}

impl StateMachine {
    /// Opens the state machine, restoring the last snapshot if there is one.
    pub fn open(stores: &super::Stores, store: SharedStore) -> Result<Self, StorageError> {
        let sm = StateMachine {
            db: stores.snapshots.clone(),
            store,
            point: Arc::default(),
            copying: Arc::default(),
        };
        if let Some((meta, data)) = load_snapshot(&sm.db)? {
            let started = std::time::Instant::now();
            let snap: StoreSnapshot = serde_json::from_slice(&data).map_err(redb_err)?;
            write(&sm.store).restore(snap);
            restored(started, data.len());
            *point(&sm.point) = Point {
                applied: meta.last_log_id,
                membership: meta.last_membership,
            };
        }
        Ok(sm)
    }

    pub fn store(&self) -> SharedStore {
        self.store.clone()
    }
}

impl StateMachine {
    /// Applies the entries on this thread unless a snapshot's copy holds
    /// the store, in which case they come back to be applied elsewhere.
    fn apply_here(
        &self,
        entries: Vec<Entry<TypeConfig>>,
    ) -> Result<Vec<CommandResult>, Vec<Entry<TypeConfig>>> {
        let store = match self.store.try_write() {
            Ok(store) => store,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if !self.copying.load(Ordering::Acquire) => {
                write(&self.store)
            }
            Err(std::sync::TryLockError::WouldBlock) => return Err(entries),
        };
        Ok(apply_entries(store, &self.point, entries))
    }
}

pub struct SnapshotBuilder {
    db: Arc<redb::Database>,
    store: SharedStore,
    point: Arc<std::sync::Mutex<Point>>,
    /// Set while a snapshot builder copies the store (holding it shared
    /// for up to a second): apply then waits for it off the Raft thread.
    copying: Arc<AtomicBool>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(
        &mut self,
    ) -> Result<Snapshot<TypeConfig>, openraft::StorageError<NodeId>> {
        // All of it on a blocking thread: the runtime thread that calls
        // this also drives Raft's core (heartbeats, votes) and the actors,
        // and copying and encoding a million keys there took seconds, long
        // enough for followers to elect another leader mid-load. The copy
        // is taken under the read lock; encoding and the fsync are not.
        let started = std::time::Instant::now();
        let (store, db, at) = (self.store.clone(), self.db.clone(), self.point.clone());
        let copying = self.copying.clone();
        let (meta, data, copied) = blocking(move || {
            let (
                snap,
                Point {
                    applied,
                    membership,
                },
            ) = {
                // Set before the lock is taken, so that whenever the copy
                // holds it, apply knows to wait elsewhere.
                copying.store(true, Ordering::Release);
                let store = read(&store);
                let copy = (store.snapshot(), point(&at).clone());
                drop(store);
                copying.store(false, Ordering::Release);
                copy
            };
            let copied = started.elapsed();
            let data = serde_json::to_vec(&snap).map_err(redb_err)?;
            let snapshot_id = match applied {
                Some(l) => format!("{}-{}-{}", l.leader_id, l.index, snap.last_index),
                None => format!("empty-{}", snap.last_index),
            };
            drop(snap);
            let meta = SnapshotMeta {
                last_log_id: applied,
                last_membership: membership,
                snapshot_id,
            };
            crate::failpoint::hit("snapshot_write")?;
            save_snapshot(&db, &meta, &data)?;
            Ok((meta, data, copied))
        })
        .await
        .map_err(io_err)?;
        let reg = crate::metrics::global();
        reg.summary("raft.snapshot.create").since(started);
        reg.gauge("raft.snapshot.size").set(data.len() as f64);
        tracing::info!(
            id = %meta.snapshot_id,
            bytes = data.len(),
            copy_ms = copied.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "Raft snapshot built"
        );
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>),
        openraft::StorageError<NodeId>,
    > {
        let p = point(&self.point);
        Ok((p.applied, p.membership.clone()))
    }

    async fn apply<I>(
        &mut self,
        entries: I,
    ) -> Result<Vec<CommandResult>, openraft::StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Applied here, on the thread that runs Raft's core: readers hold
        // the store for microseconds. But while a snapshot's copy holds it
        // shared (up to a second at a million keys) the entries wait for
        // it on a blocking thread, so heartbeats and votes go on meanwhile.
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let entries = match self.apply_here(entries) {
            Ok(results) => return Ok(results),
            Err(entries) => entries,
        };
        let (store, at) = (self.store.clone(), self.point.clone());
        let waited = std::time::Instant::now();
        let results = blocking(move || Ok(apply_entries(write(&store), &at, entries)))
            .await
            .map_err(io_err)?;
        // Rare (a few times per snapshot), and the evidence of a stall the
        // Raft thread was spared.
        tracing::info!(
            waited_ms = waited.elapsed().as_millis() as u64,
            "entries applied off the Raft thread (a snapshot's copy held the store)"
        );
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            store: self.store.clone(),
            point: self.point.clone(),
            copying: self.copying.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, openraft::StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), openraft::StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let started = std::time::Instant::now();
        let bytes = data.len();
        let (db, store, at) = (self.db.clone(), self.store.clone(), self.point.clone());
        let m = meta.clone();
        // Decoded, saved and swapped in on a blocking thread, as a snapshot
        // is built (see `build_snapshot`): the runtime thread drives Raft.
        blocking(move || {
            let snap: StoreSnapshot = serde_json::from_slice(&data).map_err(redb_err)?;
            crate::failpoint::hit("snapshot_install")?;
            save_snapshot(&db, &m, &data)?;
            crate::failpoint::hit("snapshot_install_saved")?;
            let mut store = write(&store);
            store.restore(snap);
            *point(&at) = Point {
                applied: m.last_log_id,
                membership: m.last_membership,
            };
            Ok(())
        })
        .await
        .map_err(io_err)?;
        restored(started, bytes);
        tracing::info!(id = %meta.snapshot_id, "Raft snapshot installed from the leader");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, openraft::StorageError<NodeId>> {
        let db = self.db.clone();
        let loaded = blocking(move || load_snapshot(&db))
            .await
            .map_err(read_err)?;
        Ok(loaded.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv_set(index: u64, key: &str) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(crate::state::command::Command::KvSet {
                key: key.into(),
                value: b"v".to_vec(),
                flags: 0,
                ttl: None,
            }),
        }
    }

    /// While a snapshot's copy holds the store, the entries to apply wait
    /// for it without holding the thread that runs Raft's core: a timer
    /// task on the same single-threaded runtime keeps ticking through the
    /// wait, and the entries are applied once the copy lets go.
    #[test]
    fn apply_waits_for_a_snapshot_copy_off_the_raft_thread() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let stores = super::super::open(Some(dir.path())).expect("the Raft store opens");
        let store = new_shared(StateStore::new());
        let mut sm = StateMachine::open(&stores, store.clone()).expect("the state machine opens");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");

        sm.copying.store(true, Ordering::Release);
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let copy = {
            let store = store.clone();
            std::thread::spawn(move || {
                let guard = read(&store);
                held_tx.send(()).expect("the test waits");
                std::thread::sleep(std::time::Duration::from_millis(400));
                drop(guard);
            })
        };
        held_rx.recv().expect("the copy holds the store");
        let ticks = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let results = rt.block_on(async {
            let counted = ticks.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            });
            let results = sm.apply([kv_set(1, "a")]).await.expect("applied");
            ticker.abort();
            results
        });
        copy.join().expect("the copy thread");
        // ~40 ticks in 400 ms; none if apply had blocked the thread.
        let ticks = ticks.load(Ordering::Relaxed);
        assert!(
            ticks >= 5,
            "the runtime ticked {ticks} times during the wait"
        );
        assert_eq!(results.len(), 1);
        assert!(read(&store).kv_get("a", None).1.is_some());
        assert_eq!(point(&sm.point).applied.map(|l| l.index), Some(1));
    }
}
