//! Raft persistence: the log's entries in append-only segment files
//! (`wal`) and the vote and the committed and purge markers in a redb
//! database under `<data-dir>/raft`, the last snapshot in another redb
//! database beside them (all in memory with `-dev`), plus the state
//! machine that applies entries to the state store.
//!
//! The snapshot has a database of its own because redb admits one write
//! transaction at a time: a snapshot of a million keys (115 MB) saved in
//! the log's database held the log writer, and with it every write's
//! fsync, for 0.8 s, on each server in turn (bench/kv_scale.sh). The log
//! never gets ahead of its snapshot on disk: a purge goes no further than
//! the snapshot saved in the other database, whose save has committed
//! before the purge is asked.
//!
//! Entries were kept in redb's `log` table by earlier versions: they move
//! to the segments when such a data directory is opened (see
//! [`move_old_log`]).
//!
//! Every write runs off the async threads (the log writer's own thread,
//! or tokio's blocking pool): a commit fsyncs, and an fsync on an actor
//! thread stalls everything else that thread serves (measured: DNS under
//! write load fell from 48k to 19k queries/s). Log appends are
//! acknowledged to openraft only after the fsync returns, so an entry
//! counts toward a quorum only once it is on disk.

pub mod fsm;
mod log;
pub mod wal;

use std::path::Path;
use std::sync::Arc;

use thiserror::Error;

pub use fsm::StateMachine;
pub use log::LogStore;

pub use crate::structs::raft::{NodeId, TypeConfig};

pub type Raft = openraft::Raft<TypeConfig>;

const CACHE_BYTES: usize = 32 * 1024 * 1024;

pub(crate) const LOG: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("log");
pub(crate) const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");

pub(crate) const KEY_VOTE: &str = "vote";
pub(crate) const KEY_COMMITTED: &str = "committed";
pub(crate) const KEY_PURGED: &str = "last_purged";
pub(crate) const KEY_SNAPSHOT: &str = "snapshot";
pub(crate) const KEY_SNAPSHOT_DATA: &str = "snapshot_data";

/// A server's Raft stores (module docs).
#[derive(Clone)]
pub struct Stores {
    /// The vote and the markers.
    pub log: Arc<redb::Database>,
    /// The log's entries.
    pub wal: Arc<wal::Wal>,
    pub snapshots: Arc<redb::Database>,
}

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the Raft store at {path}: {source}")]
    Open {
        path: String,
        source: Box<redb::DatabaseError>,
    },
    #[error("Raft store: {0}")]
    Redb(String),
    #[error(transparent)]
    Failpoint(#[from] crate::failpoint::Injected),
}

/// Opens (or creates) the Raft databases: on disk under `dir`, or in
/// memory. A snapshot an earlier version kept in the log's database moves
/// to the snapshots' (saved there before it is removed from the log's).
pub fn open(dir: Option<&Path>) -> Result<Stores, StorageError> {
    let log = open_one(dir, "raft.redb")?;
    let wal = wal::Wal::open(dir.map(|d| d.join("wal")).as_deref(), |b| {
        Ok(log::decode_entry(b)?.log_id)
    })?;
    let stores = Stores {
        log,
        wal: Arc::new(wal),
        snapshots: open_one(dir, "snapshot.redb")?,
    };
    move_old_snapshot(&stores)?;
    move_old_log(&stores)?;
    Ok(stores)
}

/// Moves entries an earlier version kept in redb's `log` table to the
/// segments: written and synced there before they are deleted from redb,
/// so a crash in between leaves them in both, and then the segments,
/// being non-empty, are the log (the table is only emptied).
fn move_old_log(s: &Stores) -> Result<(), StorageError> {
    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
    let count = {
        let txn = s.log.begin_read().map_err(redb_err)?;
        txn.open_table(LOG)
            .map_err(redb_err)?
            .len()
            .map_err(redb_err)?
    };
    if count == 0 {
        return Ok(());
    }
    if s.wal.is_empty() {
        let txn = s.log.begin_read().map_err(redb_err)?;
        let table = txn.open_table(LOG).map_err(redb_err)?;
        let mut batch = Vec::new();
        for item in table.iter().map_err(redb_err)? {
            let (_, v) = item.map_err(redb_err)?;
            let bytes = v.value().to_vec();
            batch.push((log::decode_entry(&bytes)?.log_id, bytes));
            if batch.len() == 1024 {
                s.wal.append(&batch)?;
                batch.clear();
            }
        }
        s.wal.append(&batch)?;
        s.wal.sync()?;
    }
    let txn = s.log.begin_write().map_err(redb_err)?;
    txn.open_table(LOG)
        .map_err(redb_err)?
        .retain(|_, _| false)
        .map_err(redb_err)?;
    txn.commit().map_err(redb_err)?;
    tracing::info!(
        entries = count,
        "the Raft log moved from raft.redb to its segments (raft/wal)"
    );
    Ok(())
}

fn move_old_snapshot(s: &Stores) -> Result<(), StorageError> {
    use redb::ReadableDatabase;
    let old = {
        let txn = s.log.begin_read().map_err(redb_err)?;
        let meta = txn.open_table(META).map_err(redb_err)?;
        let get = |k| -> Result<Option<Vec<u8>>, StorageError> {
            Ok(meta.get(k).map_err(redb_err)?.map(|v| v.value().to_vec()))
        };
        (get(KEY_SNAPSHOT)?, get(KEY_SNAPSHOT_DATA)?)
    };
    let (Some(meta_bytes), Some(data)) = old else {
        return Ok(());
    };
    if read_meta::<serde_json::Value>(&s.snapshots, KEY_SNAPSHOT)?.is_none() {
        let txn = s.snapshots.begin_write().map_err(redb_err)?;
        {
            let mut t = txn.open_table(META).map_err(redb_err)?;
            t.insert(KEY_SNAPSHOT, meta_bytes.as_slice())
                .map_err(redb_err)?;
            t.insert(KEY_SNAPSHOT_DATA, data.as_slice())
                .map_err(redb_err)?;
        }
        txn.commit().map_err(redb_err)?;
    }
    let txn = s.log.begin_write().map_err(redb_err)?;
    {
        let mut t = txn.open_table(META).map_err(redb_err)?;
        t.remove(KEY_SNAPSHOT).map_err(redb_err)?;
        t.remove(KEY_SNAPSHOT_DATA).map_err(redb_err)?;
    }
    txn.commit().map_err(redb_err)?;
    tracing::info!("the Raft snapshot moved to its own database (snapshot.redb)");
    Ok(())
}

fn open_one(dir: Option<&Path>, file: &str) -> Result<Arc<redb::Database>, StorageError> {
    let db = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
            let path = dir.join(file);
            // redb's page cache defaults to 1 GiB; the log is written once
            // and read back rarely, so a small cache keeps a server lean.
            redb::Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create(&path)
                .map_err(|e| StorageError::Open {
                    path: path.display().to_string(),
                    source: Box::new(e),
                })?
        }
        None => redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| StorageError::Open {
                path: "memory".into(),
                source: Box::new(e),
            })?,
    };
    // Create the tables once so that readers never meet a missing table.
    let txn = db.begin_write().map_err(redb_err)?;
    txn.open_table(LOG).map_err(redb_err)?;
    txn.open_table(META).map_err(redb_err)?;
    txn.commit().map_err(redb_err)?;
    Ok(Arc::new(db))
}

pub(crate) fn redb_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::Redb(e.to_string())
}

/// Reads one JSON value from the meta table.
pub(crate) fn read_meta<T: serde::de::DeserializeOwned>(
    db: &redb::Database,
    key: &str,
) -> Result<Option<T>, StorageError> {
    use redb::ReadableDatabase;
    let txn = db.begin_read().map_err(redb_err)?;
    let table = txn.open_table(META).map_err(redb_err)?;
    match table.get(key).map_err(redb_err)? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(v.value())
            .map(Some)
            .map_err(redb_err),
    }
}

/// Runs blocking storage work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Redb(format!("storage task failed: {e}")))?
}

pub(crate) fn io_err(e: StorageError) -> openraft::StorageError<NodeId> {
    openraft::StorageError::IO {
        source: openraft::StorageIOError::write(openraft::AnyError::error(e)),
    }
}

pub(crate) fn read_err(e: StorageError) -> openraft::StorageError<NodeId> {
    openraft::StorageError::IO {
        source: openraft::StorageIOError::read(openraft::AnyError::error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    fn meta_value(db: &redb::Database, key: &str) -> Option<Vec<u8>> {
        let txn = db.begin_read().expect("read");
        let t = txn.open_table(META).expect("meta");
        t.get(key).expect("get").map(|v| v.value().to_vec())
    }

    /// A data directory from before the split: the snapshot sits in the
    /// log's database. Opened now, it is in the snapshots' database alone,
    /// byte for byte, and a second open changes nothing.
    #[test]
    fn a_snapshot_in_the_log_database_moves_to_its_own() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        {
            let old = redb::Database::create(dir.path().join("raft.redb")).expect("old store");
            let txn = old.begin_write().expect("write");
            {
                let mut t = txn.open_table(META).expect("meta");
                t.insert(KEY_SNAPSHOT, br#"{"snapshot_id":"x"}"#.as_slice())
                    .expect("insert");
                t.insert(KEY_SNAPSHOT_DATA, b"state".as_slice())
                    .expect("insert");
            }
            txn.commit().expect("commit");
        }
        for _ in 0..2 {
            let s = open(Some(dir.path())).expect("opens");
            assert_eq!(meta_value(&s.log, KEY_SNAPSHOT), None);
            assert_eq!(meta_value(&s.log, KEY_SNAPSHOT_DATA), None);
            assert_eq!(
                meta_value(&s.snapshots, KEY_SNAPSHOT).as_deref(),
                Some(br#"{"snapshot_id":"x"}"#.as_slice())
            );
            assert_eq!(
                meta_value(&s.snapshots, KEY_SNAPSHOT_DATA).as_deref(),
                Some(b"state".as_slice())
            );
        }
    }

    /// A data directory from before the segments: entries in redb's `log`
    /// table, JSON-encoded ones from older versions among them. Opened
    /// now, the segments hold them all and the table is empty; a second
    /// open changes nothing; and if a crash left them in both (written to
    /// the segments, not yet deleted from the table), the segments win.
    #[test]
    fn entries_in_the_log_table_move_to_the_segments() {
        use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
        use redb::ReadableTableMetadata;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let entry = |i: u64| Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(2, 1), i),
            payload: EntryPayload::Blank,
        };
        let write_old = |from: u64, to: u64| {
            let old = redb::Database::create(dir.path().join("raft.redb")).expect("old store");
            let txn = old.begin_write().expect("write");
            {
                let mut t = txn.open_table(LOG).expect("log");
                for i in from..=to {
                    let bytes = if i % 2 == 0 {
                        serde_json::to_vec(&entry(i)).expect("json")
                    } else {
                        rmp_serde::to_vec_named(&entry(i)).expect("msgpack")
                    };
                    t.insert(i, bytes.as_slice()).expect("insert");
                }
            }
            txn.commit().expect("commit");
        };
        write_old(5, 2000);
        for _ in 0..2 {
            let s = open(Some(dir.path())).expect("opens");
            assert_eq!(s.wal.first().map(|l| l.index), Some(5));
            assert_eq!(s.wal.last(), Some(entry(2000).log_id));
            let txn = s.log.begin_read().expect("read");
            assert_eq!(txn.open_table(LOG).expect("log").len().expect("len"), 0);
            let read = s.wal.read(1000, Some(1001)).expect("reads");
            let ids: Vec<_> = read
                .iter()
                .map(|b| log::decode_entry(b).expect("decodes").log_id.index)
                .collect();
            assert_eq!(ids, vec![1000, 1001]);
        }
        write_old(5, 10);
        let s = open(Some(dir.path())).expect("opens");
        assert_eq!(s.wal.last(), Some(entry(2000).log_id));
    }
}
