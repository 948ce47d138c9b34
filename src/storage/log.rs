//! The Raft log and vote in redb.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, Vote};
use redb::{ReadableDatabase, ReadableTable};

use super::{
    blocking, io_err, read_err, read_meta, redb_err, write_meta, NodeId, StorageError, TypeConfig,
    KEY_COMMITTED, KEY_PURGED, KEY_VOTE, LOG, META,
};

#[derive(Clone)]
pub struct LogStore {
    db: Arc<redb::Database>,
}

impl LogStore {
    pub fn new(db: Arc<redb::Database>) -> Self {
        LogStore { db }
    }
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
        out.push(serde_json::from_slice(v.value()).map_err(redb_err)?);
    }
    Ok(out)
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
        blocking(move || read_range(&db, start, end))
            .await
            .map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(
        &mut self,
    ) -> Result<LogState<TypeConfig>, openraft::StorageError<NodeId>> {
        let db = self.db.clone();
        blocking(move || {
            let purged: Option<LogId<NodeId>> = read_meta(&db, KEY_PURGED)?;
            let txn = db.begin_read().map_err(redb_err)?;
            let table = txn.open_table(LOG).map_err(redb_err)?;
            let last = match table.last().map_err(redb_err)? {
                Some((_, v)) => {
                    let e: Entry<TypeConfig> =
                        serde_json::from_slice(v.value()).map_err(redb_err)?;
                    Some(e.log_id)
                }
                None => purged,
            };
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: last,
            })
        })
        .await
        .map_err(read_err)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(
        &mut self,
        vote: &Vote<NodeId>,
    ) -> Result<(), openraft::StorageError<NodeId>> {
        let db = self.db.clone();
        let vote = *vote;
        blocking(move || write_meta(&db, KEY_VOTE, &vote))
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
    // up to it before serving, instead of waiting for a new leader.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), openraft::StorageError<NodeId>> {
        let db = self.db.clone();
        blocking(move || write_meta(&db, KEY_COMMITTED, &committed))
            .await
            .map_err(io_err)
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
        for e in entries {
            let bytes = serde_json::to_vec(&e).map_err(|err| io_err(redb_err(err)))?;
            encoded.push((e.log_id.index, bytes));
        }
        let db = self.db.clone();
        // One transaction, one fsync, for the whole batch.
        let res = blocking(move || {
            let txn = db.begin_write().map_err(redb_err)?;
            {
                let mut table = txn.open_table(LOG).map_err(redb_err)?;
                for (i, b) in &encoded {
                    table.insert(*i, b.as_slice()).map_err(redb_err)?;
                }
            }
            txn.commit().map_err(redb_err)
        })
        .await;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(io_err(e))
            }
        }
    }

    async fn truncate(
        &mut self,
        log_id: LogId<NodeId>,
    ) -> Result<(), openraft::StorageError<NodeId>> {
        let db = self.db.clone();
        blocking(move || remove_range(&db, log_id.index.., None))
            .await
            .map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), openraft::StorageError<NodeId>> {
        let db = self.db.clone();
        blocking(move || remove_range(&db, 0..=log_id.index, Some(log_id)))
            .await
            .map_err(io_err)
    }
}

/// Deletes a range of entries, recording the purge point in the same
/// transaction so a crash cannot leave a gap with no marker.
fn remove_range(
    db: &redb::Database,
    range: impl RangeBounds<u64> + Clone,
    purged: Option<LogId<NodeId>>,
) -> Result<(), StorageError> {
    let txn = db.begin_write().map_err(redb_err)?;
    {
        let mut table = txn.open_table(LOG).map_err(redb_err)?;
        let keys: Vec<u64> = table
            .range(range)
            .map_err(redb_err)?
            .filter_map(|r| r.ok().map(|(k, _)| k.value()))
            .collect();
        for k in keys {
            table.remove(k).map_err(redb_err)?;
        }
        if let Some(p) = purged {
            let bytes = serde_json::to_vec(&p).map_err(redb_err)?;
            let mut meta = txn.open_table(META).map_err(redb_err)?;
            meta.insert(KEY_PURGED, bytes.as_slice())
                .map_err(redb_err)?;
        }
    }
    txn.commit().map_err(redb_err)
}
