//! The Raft log and vote in redb, written by one ordered writer thread.
//!
//! Every mutation (append, truncate, purge, vote, committed marker) goes to
//! the writer in the order openraft issues it. The writer takes everything
//! queued, applies it in order in one redb transaction, commits once (one
//! fsync for the whole batch) and only then acknowledges: appends through
//! openraft's `LogFlushed` callback, the rest through a reply channel. So
//! an entry counts toward a quorum only once it is on disk, and concurrent
//! clients share fsyncs instead of queueing behind one each.
//!
//! Entries appended but not yet committed stay in `pending`, which reads
//! consult first: openraft may read an entry (to replicate it) before it
//! is durable here.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{mpsc, Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, Vote};
use redb::{ReadableDatabase, ReadableTable};
use tokio::sync::oneshot;

use super::{
    blocking, io_err, read_err, read_meta, redb_err, NodeId, StorageError, TypeConfig,
    KEY_COMMITTED, KEY_PURGED, KEY_VOTE, LOG, META,
};

type Pending = Arc<Mutex<BTreeMap<u64, Entry<TypeConfig>>>>;

enum Op {
    Append {
        entries: Vec<(LogId<NodeId>, Vec<u8>)>,
        done: LogFlushed<TypeConfig>,
    },
    /// Delete entries in `from..` (truncate) or `..=upto` (purge, recording the marker).
    Truncate {
        from: u64,
        done: oneshot::Sender<Result<(), String>>,
    },
    Purge {
        upto: LogId<NodeId>,
        done: oneshot::Sender<Result<(), String>>,
    },
    Meta {
        key: &'static str,
        value: Vec<u8>,
        done: oneshot::Sender<Result<(), String>>,
    },
}

#[derive(Clone)]
pub struct LogStore {
    db: Arc<redb::Database>,
    writer: mpsc::Sender<Op>,
    pending: Pending,
}

fn lock(p: &Pending) -> std::sync::MutexGuard<'_, BTreeMap<u64, Entry<TypeConfig>>> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogStore {
    pub fn new(db: Arc<redb::Database>) -> Self {
        let (tx, rx) = mpsc::channel();
        let pending: Pending = Arc::default();
        let (wdb, wpending) = (db.clone(), pending.clone());
        // The thread ends when the last LogStore (sender) is dropped.
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer(wdb, rx, wpending))
            .map_err(|e| tracing::error!(error = %e, "cannot start the Raft log writer"))
            .ok();
        LogStore {
            db,
            writer: tx,
            pending,
        }
    }

    async fn submit(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Op,
    ) -> Result<(), StorageError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(make(tx))
            .map_err(|_| StorageError::Redb("the Raft log writer has stopped".into()))?;
        rx.await
            .map_err(|_| StorageError::Redb("the Raft log writer has stopped".into()))?
            .map_err(StorageError::Redb)
    }
}

/// Applies queued operations in order, one transaction and one fsync per batch.
fn writer(db: Arc<redb::Database>, rx: mpsc::Receiver<Op>, pending: Pending) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let result = write_batch(&db, &batch).map_err(|e| e.to_string());
        for op in batch {
            match op {
                Op::Append { entries, done } => {
                    if result.is_ok() {
                        // Durable now: drop from pending unless a truncate
                        // already replaced it with another entry.
                        let mut p = lock(&pending);
                        for (id, _) in &entries {
                            if p.get(&id.index).is_some_and(|e| e.log_id == *id) {
                                p.remove(&id.index);
                            }
                        }
                    }
                    done.log_io_completed(result.clone().map_err(std::io::Error::other));
                }
                Op::Truncate { done, .. } | Op::Purge { done, .. } | Op::Meta { done, .. } => {
                    let _ = done.send(result.clone());
                }
            }
        }
    }
}

fn write_batch(db: &redb::Database, batch: &[Op]) -> Result<(), StorageError> {
    let mut txn = db.begin_write().map_err(redb_err)?;
    // A batch of nothing but committed-index hints need not reach the disk
    // now: the next durable commit carries it, and losing it is harmless.
    if batch.iter().all(|op| {
        matches!(
            op,
            Op::Meta {
                key: KEY_COMMITTED,
                ..
            }
        )
    }) {
        txn.set_durability(redb::Durability::None)
            .map_err(redb_err)?;
    }
    {
        let mut log = txn.open_table(LOG).map_err(redb_err)?;
        let mut meta = txn.open_table(META).map_err(redb_err)?;
        for op in batch {
            match op {
                Op::Append { entries, .. } => {
                    for (id, bytes) in entries {
                        log.insert(id.index, bytes.as_slice()).map_err(redb_err)?;
                    }
                }
                Op::Truncate { from, .. } => remove(&mut log, *from..)?,
                Op::Purge { upto, .. } => {
                    remove(&mut log, ..=upto.index)?;
                    let bytes = serde_json::to_vec(upto).map_err(redb_err)?;
                    meta.insert(KEY_PURGED, bytes.as_slice())
                        .map_err(redb_err)?;
                }
                Op::Meta { key, value, .. } => {
                    meta.insert(*key, value.as_slice()).map_err(redb_err)?;
                }
            }
        }
    }
    txn.commit().map_err(redb_err)
}

fn remove(
    log: &mut redb::Table<u64, &[u8]>,
    range: impl RangeBounds<u64>,
) -> Result<(), StorageError> {
    let keys: Vec<u64> = log
        .range(range)
        .map_err(redb_err)?
        .filter_map(|r| r.ok().map(|(k, _)| k.value()))
        .collect();
    for k in keys {
        log.remove(k).map_err(redb_err)?;
    }
    Ok(())
}

fn read_range(
    db: &redb::Database,
    start: u64,
    end: Bound<u64>,
) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
    let txn = db.begin_read().map_err(redb_err)?;
    let table = txn.open_table(LOG).map_err(redb_err)?;
    let iter = match end {
        Bound::Included(e) => table.range(start..=e),
        Bound::Excluded(e) => table.range(start..e),
        Bound::Unbounded => table.range(start..),
    }
    .map_err(redb_err)?;
    let mut out = Vec::new();
    for item in iter {
        let (_, v) = item.map_err(redb_err)?;
        out.push(decode_entry(v.value())?);
    }
    Ok(out)
}

/// Log entries are MessagePack: compact, and values stay byte strings
/// (JSON spelled every value byte as a number, which made replication
/// catch-up slow enough to time out).
fn encode_entry(e: &Entry<TypeConfig>) -> Result<Vec<u8>, StorageError> {
    rmp_serde::to_vec_named(e).map_err(redb_err)
}

/// Reads MessagePack entries, and JSON ones written by earlier versions
/// (a JSON entry starts with `{`, which no MessagePack map does).
fn decode_entry(bytes: &[u8]) -> Result<Entry<TypeConfig>, StorageError> {
    if bytes.first() == Some(&b'{') {
        serde_json::from_slice(bytes).map_err(redb_err)
    } else {
        rmp_serde::from_slice(bytes).map_err(redb_err)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, openraft::StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = range.end_bound().cloned();
        let db = self.db.clone();
        let stored = blocking(move || read_range(&db, start, end))
            .await
            .map_err(read_err)?;
        // Pending entries are newer than anything stored at their index.
        let mut merged: BTreeMap<u64, Entry<TypeConfig>> =
            stored.into_iter().map(|e| (e.log_id.index, e)).collect();
        for (i, e) in lock(&self.pending).range((Bound::Included(start), end)) {
            merged.insert(*i, e.clone());
        }
        Ok(merged.into_values().collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(
        &mut self,
    ) -> Result<LogState<TypeConfig>, openraft::StorageError<NodeId>> {
        let db = self.db.clone();
        let (purged, stored_last) = blocking(move || {
            let purged: Option<LogId<NodeId>> = read_meta(&db, KEY_PURGED)?;
            let txn = db.begin_read().map_err(redb_err)?;
            let table = txn.open_table(LOG).map_err(redb_err)?;
            let last = match table.last().map_err(redb_err)? {
                Some((_, v)) => Some(decode_entry(v.value())?.log_id),
                None => None,
            };
            Ok((purged, last))
        })
        .await
        .map_err(read_err)?;
        let pending_last = lock(&self.pending).values().next_back().map(|e| e.log_id);
        let last = pending_last.max(stored_last).or(purged);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(
        &mut self,
        vote: &Vote<NodeId>,
    ) -> Result<(), openraft::StorageError<NodeId>> {
        let value = serde_json::to_vec(vote).map_err(|e| io_err(redb_err(e)))?;
        self.submit(|done| Op::Meta {
            key: KEY_VOTE,
            value,
            done,
        })
        .await
        .map_err(io_err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, openraft::StorageError<NodeId>> {
        let db = self.db.clone();
        blocking(move || read_meta(&db, KEY_VOTE))
            .await
            .map_err(read_err)
    }

    // Saving the committed index lets a restarted server re-apply its log
    // up to it before serving. It is only a hint (a lost one means less is
    // re-applied at start), so it rides along with the next batch instead
    // of costing openraft's core loop an fsync of its own on every commit.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), openraft::StorageError<NodeId>> {
        let value = serde_json::to_vec(&committed).map_err(|e| io_err(redb_err(e)))?;
        let (done, _) = oneshot::channel();
        self.writer
            .send(Op::Meta {
                key: KEY_COMMITTED,
                value,
                done,
            })
            .map_err(|_| io_err(StorageError::Redb("the Raft log writer has stopped".into())))
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<NodeId>>, openraft::StorageError<NodeId>> {
        let db = self.db.clone();
        blocking(move || Ok(read_meta::<Option<LogId<NodeId>>>(&db, KEY_COMMITTED)?.flatten()))
            .await
            .map_err(read_err)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), openraft::StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut encoded = Vec::new();
        {
            let mut p = lock(&self.pending);
            for e in entries {
                let bytes = encode_entry(&e).map_err(io_err)?;
                encoded.push((e.log_id, bytes));
                p.insert(e.log_id.index, e);
            }
        }
        // Returns at once; the writer calls back once the batch is on disk.
        self.writer
            .send(Op::Append {
                entries: encoded,
                done: callback,
            })
            .map_err(|_| io_err(StorageError::Redb("the Raft log writer has stopped".into())))
    }

    async fn truncate(
        &mut self,
        log_id: LogId<NodeId>,
    ) -> Result<(), openraft::StorageError<NodeId>> {
        lock(&self.pending).retain(|i, _| *i < log_id.index);
        self.submit(|done| Op::Truncate {
            from: log_id.index,
            done,
        })
        .await
        .map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), openraft::StorageError<NodeId>> {
        lock(&self.pending).retain(|i, _| *i > log_id.index);
        self.submit(|done| Op::Purge { upto: log_id, done })
            .await
            .map_err(io_err)
    }
}
