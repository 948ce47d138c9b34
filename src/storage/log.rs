//! The Raft log (entries in the append-only segments of `storage::wal`)
//! and the vote and markers (in redb), written by one ordered writer thread.
//!
//! Every mutation (append, truncate, purge, vote) goes to the writer in
//! the order openraft issues it; the committed hint, which needs no order,
//! waits in a slot the writer reads when it wakes (see [`Hint`]). The writer takes everything
//! queued and applies it in order: entries to the log's segments, the rest
//! to redb, making one store durable before the other is written whenever
//! the batch switches between them (so a crash keeps a prefix of what was
//! asked, in order). A batch of appends costs one write and one fdatasync,
//! and only then is it acknowledged through openraft's `LogFlushed`
//! callback (the rest through a reply channel). So an entry counts toward
//! a quorum only once it is on disk, and concurrent clients share fsyncs
//! instead of queueing behind one each.
//!
//! Entries appended but not yet durable stay in `pending`, which reads
//! consult first: openraft may read an entry (to replicate it) before it
//! is durable here. Once durable, the newest entries stay in memory a
//! while longer ([`TAIL_ENTRIES`], [`TAIL_BYTES`]; Consul keeps the last
//! 512 in its `LogCache` for the same reason): every write is read back
//! right after its flush, by the leader's replication to each follower and
//! by every server's apply, and a read that has to go to the files goes
//! to a blocking thread and back, two context switches each.
//!
//! A purge (after a snapshot) records how far the log is purged, then
//! deletes the segments that hold only purged entries: no entry is
//! deleted one by one (with redb, deleting the 6,000-16,000 entries a
//! snapshot released held the writer ~1 s on every server, BENCHMARKS.md).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{mpsc, Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, Vote};
use tokio::sync::oneshot;

use super::wal::Wal;
use super::{
    blocking, io_err, read_err, read_meta, redb_err, NodeId, StorageError, TypeConfig,
    KEY_COMMITTED, KEY_PURGED, KEY_SNAPSHOT, KEY_VOTE, META,
};

/// Durable entries kept in memory at most: Consul's `raftLogCacheSize`.
const TAIL_ENTRIES: usize = 512;
/// ... and at most this many encoded bytes, so that large entries (a
/// `/v1/txn` of 4 KiB values) cannot make the tail large.
const TAIL_BYTES: usize = 8 << 20;

/// The log's newest entries in memory: those not yet on disk, and the
/// last durable ones. One lock, so an entry moving from one to the other
/// is always in one of them for a reader.
#[derive(Default)]
struct Tail {
    pending: BTreeMap<u64, Entry<TypeConfig>>,
    /// Durable entries with their encoded size, oldest dropped first.
    durable: BTreeMap<u64, (Entry<TypeConfig>, usize)>,
    durable_bytes: usize,
}

impl Tail {
    /// `entries` are on disk: those still pending as they were written
    /// (not replaced by a truncate meanwhile) move to the durable tail.
    fn flushed(&mut self, entries: &[(LogId<NodeId>, Vec<u8>)]) {
        for (id, bytes) in entries {
            if self.pending.get(&id.index).is_some_and(|e| e.log_id == *id) {
                if let Some(e) = self.pending.remove(&id.index) {
                    self.durable_bytes += bytes.len();
                    if let Some((_, old)) = self.durable.insert(id.index, (e, bytes.len())) {
                        self.durable_bytes -= old;
                    }
                }
            }
        }
        while self.durable.len() > TAIL_ENTRIES || self.durable_bytes > TAIL_BYTES {
            match self.durable.pop_first() {
                Some((_, (_, n))) => self.durable_bytes -= n,
                None => break,
            }
        }
    }

    /// Keeps only the entries `keep` accepts.
    fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        self.pending.retain(|i, _| keep(*i));
        let mut freed = 0;
        self.durable.retain(|i, (_, n)| {
            let k = keep(*i);
            if !k {
                freed += *n;
            }
            k
        });
        self.durable_bytes -= freed;
    }

    /// The entries in `start..end` held here (pending ones over durable
    /// ones), and whether they are all of that range.
    fn range(&self, start: u64, end: Bound<u64>) -> (BTreeMap<u64, Entry<TypeConfig>>, bool) {
        let bounds = (Bound::Included(start), end);
        let mut out: BTreeMap<u64, Entry<TypeConfig>> = self
            .durable
            .range(bounds)
            .map(|(i, (e, _))| (*i, e.clone()))
            .collect();
        out.extend(self.pending.range(bounds).map(|(i, e)| (*i, e.clone())));
        let last = match end {
            Bound::Included(e) => Some(e),
            Bound::Excluded(e) => e.checked_sub(1),
            // How far the log goes is the database's to say.
            Bound::Unbounded => None,
        };
        let whole = last.is_some_and(|last| {
            out.len() as u64 == last.saturating_sub(start).saturating_add(1)
                && out.keys().next() == Some(&start)
                && out.keys().next_back() == Some(&last)
        });
        (out, whole)
    }
}

type Pending = Arc<Mutex<Tail>>;

enum Op {
    Append {
        entries: Vec<(LogId<NodeId>, Vec<u8>)>,
        done: LogFlushed<TypeConfig>,
    },
    /// Deletes entries in `from..`.
    Truncate {
        from: u64,
        done: oneshot::Sender<Result<(), String>>,
    },
    /// Nobody waits for it: losing it in a crash only leaves entries the
    /// snapshot already covers, and the next purge (or the next start)
    /// deletes them.
    Purge { upto: LogId<NodeId> },
    Meta {
        key: &'static str,
        value: Vec<u8>,
        done: oneshot::Sender<Result<(), String>>,
    },
}

/// openraft's committed hint, the newest not yet taken by the writer.
/// Nobody waits for it and losing it is harmless (see `read_committed`),
/// so it is left here rather than sent: a message woke the writer once
/// more per write on every server. The writer takes it when it wakes
/// anyway; it rides with a batch's redb commit, or goes alone at most
/// once a second. Written alone on every commit, it cost a third of the
/// writer's CPU for one client.
type Hint = Arc<Mutex<Option<Option<LogId<NodeId>>>>>;

fn take_hint(h: &Hint) -> Option<Vec<u8>> {
    let taken = h.lock().unwrap_or_else(|e| e.into_inner()).take()?;
    serde_json::to_vec(&taken).ok()
}

#[derive(Clone)]
pub struct LogStore {
    /// The vote and the markers.
    db: Arc<redb::Database>,
    wal: Arc<Wal>,
    /// Read for the last snapshot saved, which bounds purges.
    snapshots: Arc<redb::Database>,
    writer: mpsc::Sender<Op>,
    hint: Hint,
    pending: Pending,
    /// Purged as far as openraft knows, before the writer has recorded it.
    purged: Arc<Mutex<Option<LogId<NodeId>>>>,
}

fn lock(p: &Pending) -> std::sync::MutexGuard<'_, Tail> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogStore {
    pub fn new(stores: &super::Stores) -> Self {
        let (db, snapshots, wal) = (
            stores.log.clone(),
            stores.snapshots.clone(),
            stores.wal.clone(),
        );
        let (tx, rx) = mpsc::channel();
        let pending: Pending = Arc::default();
        let hint: Hint = Arc::default();
        let purged = read_meta::<LogId<NodeId>>(&db, KEY_PURGED).ok().flatten();
        let (wdb, wsnaps, wwal, wpending, whint) = (
            db.clone(),
            snapshots.clone(),
            wal.clone(),
            pending.clone(),
            hint.clone(),
        );
        // The thread ends when the last LogStore (sender) is dropped.
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || writer(wdb, wsnaps, wwal, rx, wpending, whint))
            .map_err(|e| tracing::error!(error = %e, "cannot start the Raft log writer"))
            .ok();
        LogStore {
            db,
            wal,
            snapshots,
            writer: tx,
            hint,
            pending,
            purged: Arc::new(Mutex::new(purged)),
        }
    }

    fn purged(&self) -> Option<LogId<NodeId>> {
        *self.purged.lock().unwrap_or_else(|e| e.into_inner())
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

const SLOW_BATCH: std::time::Duration = std::time::Duration::from_millis(100);

/// The committed hint is written alone this often at most.
const HINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Applies queued operations in order, one write and one fsync per batch.
fn writer(
    db: Arc<redb::Database>,
    snapshots: Arc<redb::Database>,
    wal: Arc<Wal>,
    rx: mpsc::Receiver<Op>,
    pending: Pending,
    shared_hint: Hint,
) {
    // Segments a purge released before a crash go now.
    if let Some(upto) = read_meta::<LogId<NodeId>>(&db, KEY_PURGED).ok().flatten() {
        if let Err(e) = wal.purge(upto.index) {
            tracing::warn!(error = %e, "deleting purged Raft log segments failed");
        }
    }
    // The newest committed hint taken and not yet written, and when one
    // last was written.
    let mut hint: Option<Vec<u8>> = None;
    let mut hint_written = std::time::Instant::now();
    loop {
        let first = match rx.recv_timeout(HINT_EVERY) {
            Ok(op) => op,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(h) = take_hint(&shared_hint) {
                    hint = Some(h);
                }
                write_hint(&db, &mut hint, &mut hint_written);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if let Some(h) = take_hint(&shared_hint) {
            hint = Some(h);
        }
        let started = std::time::Instant::now();
        let result =
            write_batch(&db, &snapshots, &wal, &batch, &mut hint).map_err(|e| e.to_string());
        let took = started.elapsed();
        // A slow batch holds back every follower ack and leader commit
        // behind it: worth seeing when latency spikes are chased.
        if took > SLOW_BATCH {
            tracing::warn!(
                ops = batch.len(),
                ms = took.as_millis() as u64,
                "slow Raft log write"
            );
        }
        for op in batch {
            match op {
                Op::Append { entries, done } => {
                    if result.is_ok() {
                        lock(&pending).flushed(&entries);
                    }
                    done.log_io_completed(result.clone().map_err(std::io::Error::other));
                }
                Op::Truncate { done, .. } | Op::Meta { done, .. } => {
                    let _ = done.send(result.clone());
                }
                Op::Purge { .. } => {}
            }
        }
        if hint.is_some() && hint_written.elapsed() >= HINT_EVERY {
            write_hint(&db, &mut hint, &mut hint_written);
        }
    }
}

/// Records the committed hint in a transaction of its own.
fn write_hint(
    db: &redb::Database,
    hint: &mut Option<Vec<u8>>,
    written_at: &mut std::time::Instant,
) {
    let Some(v) = hint.as_deref() else { return };
    let written = (|| -> Result<(), StorageError> {
        let txn = db.begin_write().map_err(redb_err)?;
        txn.open_table(META)
            .map_err(redb_err)?
            .insert(KEY_COMMITTED, v)
            .map_err(redb_err)?;
        txn.commit().map_err(redb_err)
    })();
    match written {
        Ok(()) => {
            *hint = None;
            *written_at = std::time::Instant::now();
        }
        // Tried again with the next batch or idle pass.
        Err(e) => tracing::warn!(error = %e, "recording the Raft commit hint failed"),
    }
}

/// The last entry of the snapshot saved in `snapshots` (None: no
/// snapshot yet).
fn saved_snapshot(snapshots: &redb::Database) -> Result<Option<LogId<NodeId>>, StorageError> {
    let saved: Option<openraft::SnapshotMeta<NodeId, openraft::BasicNode>> =
        read_meta(snapshots, KEY_SNAPSHOT)?;
    Ok(saved.and_then(|m| m.last_log_id))
}

/// How far the log may be purged toward `upto`: no further than the
/// saved snapshot.
fn purge_bound(
    snapshots: &redb::Database,
    upto: LogId<NodeId>,
) -> Result<Option<LogId<NodeId>>, StorageError> {
    Ok(saved_snapshot(snapshots)?.map(|s| s.min(upto)))
}

/// The saved snapshot's last entry, when it covers everything before
/// `next` (the index an append starts at).
fn snapshot_covering(
    snapshots: &redb::Database,
    next: u64,
) -> Result<Option<LogId<NodeId>>, StorageError> {
    Ok(saved_snapshot(snapshots)?.filter(|l| l.index + 1 >= next))
}

/// One batch's writes to the two stores: whichever is written next, the
/// other is made durable first, so a crash keeps a prefix of the batch.
struct BatchWrite<'a> {
    db: &'a redb::Database,
    wal: &'a Wal,
    /// The open redb transaction.
    txn: Option<redb::WriteTransaction>,
    /// The segments hold writes not yet synced.
    unsynced: bool,
    /// The purge marker in `txn`: the segments below it go once it is
    /// durable.
    purge_to: Option<u64>,
}

impl BatchWrite<'_> {
    fn commit(&mut self) -> Result<(), StorageError> {
        if let Some(t) = self.txn.take() {
            t.commit().map_err(redb_err)?;
        }
        Ok(())
    }

    fn meta(&mut self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        if self.unsynced {
            self.wal.sync()?;
            self.unsynced = false;
        }
        let t = match self.txn.take() {
            Some(t) => t,
            None => self.db.begin_write().map_err(redb_err)?,
        };
        t.open_table(META)
            .map_err(redb_err)?
            .insert(key, value)
            .map_err(redb_err)?;
        self.txn = Some(t);
        Ok(())
    }

    fn append(
        &mut self,
        snapshots: &redb::Database,
        entries: &[(LogId<NodeId>, Vec<u8>)],
    ) -> Result<(), StorageError> {
        // An append past the end follows a snapshot install whose purge
        // was held back (the snapshot was not saved yet when it came, or
        // the server stopped between the save and the purge). The saved
        // snapshot covers the gap: the log is purged up to it first, or
        // the log would have a hole.
        let gap = match (entries.first(), self.wal.last()) {
            (Some((id, _)), Some(last)) if id.index > last.index + 1 => Some(id.index),
            _ => None,
        };
        if let Some(next) = gap {
            if let Some(upto) = snapshot_covering(snapshots, next)? {
                self.mark_purged(upto)?;
            }
        }
        self.commit()?;
        if let Some(upto) = self.purge_to.take() {
            self.wal.purge(upto)?;
        }
        self.wal.append(entries)?;
        self.unsynced = true;
        Ok(())
    }

    fn mark_purged(&mut self, upto: LogId<NodeId>) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(&upto).map_err(redb_err)?;
        self.meta(KEY_PURGED, &bytes)?;
        self.purge_to = self.purge_to.max(Some(upto.index));
        Ok(())
    }
}

fn write_batch(
    db: &redb::Database,
    snapshots: &redb::Database,
    wal: &Wal,
    batch: &[Op],
    hint: &mut Option<Vec<u8>>,
) -> Result<(), StorageError> {
    if batch.iter().any(|op| matches!(op, Op::Append { .. })) {
        crate::failpoint::hit("raft_log_append")?;
    }
    let mut w = BatchWrite {
        db,
        wal,
        txn: None,
        unsynced: false,
        purge_to: None,
    };
    for op in batch {
        match op {
            Op::Append { entries, .. } => w.append(snapshots, entries)?,
            Op::Truncate { from, .. } => {
                w.commit()?;
                // Durable when it returns, with what was appended before.
                wal.truncate(*from)?;
                wal.sync()?;
                w.unsynced = false;
            }
            Op::Purge { upto } => {
                // openraft purges up to a snapshot it is installing
                // without waiting for the install: a crash before the
                // snapshot is saved would leave a log that starts past
                // the last saved snapshot, and a server that cannot
                // start. Never past the snapshot on disk; the rest
                // goes with the next purge, or the next append past the
                // end of the log.
                if let Some(upto) = purge_bound(snapshots, *upto)? {
                    w.mark_purged(upto)?;
                }
            }
            Op::Meta { key, value, .. } => {
                w.meta(key, value)?;
            }
        }
    }
    let BatchWrite {
        txn,
        unsynced,
        purge_to,
        ..
    } = w;
    // A batch of nothing but purges has no waiter to hand an error to
    // (see `Op::Purge`): the fsync failpoints are for batches someone
    // waits on.
    let awaited = batch.iter().any(|op| !matches!(op, Op::Purge { .. }));
    if awaited {
        crate::failpoint::hit("raft_log_before_fsync")?;
    }
    if unsynced {
        wal.sync()?;
    }
    if let Some(t) = txn {
        // The hint rides along with a commit that happens anyway.
        if let Some(v) = hint.as_deref() {
            t.open_table(META)
                .map_err(redb_err)?
                .insert(KEY_COMMITTED, v)
                .map_err(redb_err)?;
        }
        t.commit().map_err(redb_err)?;
        *hint = None;
    }
    // Only once the marker is durable do the entries below it go.
    if let Some(upto) = purge_to {
        wal.purge(upto)?;
    }
    if awaited {
        crate::failpoint::hit("raft_log_after_fsync")?;
    }
    Ok(())
}

fn read_range(
    wal: &Wal,
    start: u64,
    end: Bound<u64>,
) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
    let end = match end {
        Bound::Included(e) => Some(e),
        Bound::Excluded(0) => return Ok(Vec::new()),
        Bound::Excluded(e) => Some(e - 1),
        Bound::Unbounded => None,
    };
    wal.read(start, end)?
        .iter()
        .map(|b| decode_entry(b))
        .collect()
}

/// Log entries are MessagePack: compact, and values stay byte strings
/// (JSON spelled every value byte as a number, which made replication
/// catch-up slow enough to time out).
fn encode_entry(e: &Entry<TypeConfig>) -> Result<Vec<u8>, StorageError> {
    rmp_serde::to_vec_named(e).map_err(redb_err)
}

/// Reads MessagePack entries, and JSON ones written by earlier versions
/// (a JSON entry starts with `{`, which no MessagePack map does).
pub(super) fn decode_entry(bytes: &[u8]) -> Result<Entry<TypeConfig>, StorageError> {
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
        // Purged entries may still be stored (a segment goes once all its
        // entries are purged): never shown.
        let purged = self.purged().map_or(0, |l| l.index + 1);
        let start = start.max(purged);
        let end = range.end_bound().cloned();
        let empty = match end {
            Bound::Included(e) => start > e,
            Bound::Excluded(e) => start >= e,
            Bound::Unbounded => false,
        };
        if empty {
            return Ok(Vec::new());
        }
        // Held entries first, the database after: the writer moves an entry
        // out of `pending` only once its batch is committed, so an entry
        // missing from this copy is already in any read that starts after
        // it. The other order could lose an entry committed between the two
        // reads (in neither). openraft 0.9 reads only flushed entries, but
        // 0.10 applies on followers before the flush and hit this (found
        // porting to 0.10, branch openraft10).
        let (held, whole) = lock(&self.pending).range(start, end);
        if whole {
            return Ok(held.into_values().collect());
        }
        let wal = self.wal.clone();
        let stored = blocking(move || read_range(&wal, start, end))
            .await
            .map_err(read_err)?;
        // Pending entries are newer than anything stored at their index.
        let mut merged: BTreeMap<u64, Entry<TypeConfig>> =
            stored.into_iter().map(|e| (e.log_id.index, e)).collect();
        merged.extend(held);
        Ok(merged.into_values().collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(
        &mut self,
    ) -> Result<LogState<TypeConfig>, openraft::StorageError<NodeId>> {
        let (db, snapshots, wal) = (self.db.clone(), self.snapshots.clone(), self.wal.clone());
        let (purged, stored_last) = blocking(move || {
            // The saved snapshot counts as purged: the state machine starts
            // from it, and entries below it may be gone without the marker
            // saying so (a purge is held back until the snapshot it follows
            // is saved, see `purge_bound`; a conflict truncated entries the
            // snapshot replaced). Reporting them as present would send
            // openraft looking for them.
            let marker: Option<LogId<NodeId>> = read_meta(&db, KEY_PURGED)?;
            let purged = marker.max(saved_snapshot(&snapshots)?);
            Ok((purged, wal.last()))
        })
        .await
        .map_err(read_err)?;
        let purged = purged.max(self.purged());
        let pending_last = lock(&self.pending)
            .pending
            .values()
            .next_back()
            .map(|e| e.log_id);
        let last = pending_last.max(stored_last).max(purged);
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

    /// The vote as stored, but never a committed one: openraft reads the
    /// vote only when it starts, and a server whose stored vote is its own
    /// committed leadership would lead again at once, in its old term,
    /// without an election. It would then not know how far its log was
    /// committed (the committed index is a lazily saved hint), so its
    /// read index (`ensure_linearizable`: the larger of that hint and its
    /// term's first entry) could lie below writes it had acknowledged
    /// before the crash, and a `?consistent` read would return a value
    /// older than an acknowledged write (found by the failpoint run:
    /// leaders crashed between an append and its fsync, restarted within
    /// ~200 ms, and answered such reads in 2 of 2 runs). As in Consul
    /// (hashicorp/raft starts every server as a follower), a restarted
    /// server leads again only by winning an election in a new term; the
    /// vote it cast still stands (uncommitted, it is not given again in
    /// that term).
    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, openraft::StorageError<NodeId>> {
        let db = self.db.clone();
        let vote: Option<Vote<NodeId>> = blocking(move || read_meta(&db, KEY_VOTE))
            .await
            .map_err(read_err)?;
        Ok(vote.map(|v| Vote {
            committed: false,
            ..v
        }))
    }

    // Saving the committed index lets a restarted server re-apply its log
    // up to it before serving. It is only a hint (a lost one means less is
    // re-applied at start), so it rides along with the next batch instead
    // of costing openraft's core loop an fsync of its own on every commit.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), openraft::StorageError<NodeId>> {
        *self.hint.lock().unwrap_or_else(|e| e.into_inner()) = Some(committed);
        Ok(())
    }

    /// The committed hint, if this log can re-apply up to it. openraft
    /// saves it as soon as it learns it, which can be before the entries
    /// or the snapshot that hold it are on disk here: a follower sent a
    /// snapshot records the snapshot's last index as committed, and if it
    /// dies before the snapshot is saved it restarts with an older one
    /// and a log that ends below the hint. openraft would then fail to
    /// start, asking for entries that never reached this server. The hint
    /// stands only when the log holds that very entry (same index and
    /// term: everything before it then matches the leader's) or the purge
    /// marker is past it (a saved snapshot covers it); otherwise nothing
    /// is re-applied at start and the leader brings this server up to
    /// date, as after a lost hint.
    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<NodeId>>, openraft::StorageError<NodeId>> {
        let (db, wal) = (self.db.clone(), self.wal.clone());
        blocking(move || {
            let Some(hint) = read_meta::<Option<LogId<NodeId>>>(&db, KEY_COMMITTED)?.flatten()
            else {
                return Ok(None);
            };
            let purged: Option<LogId<NodeId>> = read_meta(&db, KEY_PURGED)?;
            if purged.is_some_and(|p| p.index >= hint.index) {
                return Ok(Some(hint));
            }
            let held = wal.id_at(hint.index) == Some(hint);
            if !held {
                tracing::warn!(
                    committed = %hint,
                    "the saved commit index is past this server's log; re-applying nothing at start"
                );
            }
            Ok(held.then_some(hint))
        })
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
                p.pending.insert(e.log_id.index, e);
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
        lock(&self.pending).retain(|i| i < log_id.index);
        self.submit(|done| Op::Truncate {
            from: log_id.index,
            done,
        })
        .await
        .map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), openraft::StorageError<NodeId>> {
        lock(&self.pending).retain(|i| i > log_id.index);
        {
            let mut purged = self.purged.lock().unwrap_or_else(|e| e.into_inner());
            *purged = (*purged).max(Some(log_id));
        }
        // Returns at once; the writer records the marker and deletes the
        // entries later (see the module docs).
        self.writer
            .send(Op::Purge { upto: log_id })
            .map_err(|_| io_err(StorageError::Redb("the Raft log writer has stopped".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(term: u64, index: u64) -> (Entry<TypeConfig>, (LogId<NodeId>, Vec<u8>)) {
        let log_id = LogId::new(openraft::CommittedLeaderId::new(term, 1), index);
        let e = Entry {
            log_id,
            payload: openraft::EntryPayload::Blank,
        };
        (e, (log_id, vec![0; 1000]))
    }

    fn appended(
        t: &mut Tail,
        term: u64,
        indexes: std::ops::RangeInclusive<u64>,
    ) -> Vec<(LogId<NodeId>, Vec<u8>)> {
        indexes
            .map(|i| {
                let (e, w) = entry(term, i);
                t.pending.insert(i, e);
                w
            })
            .collect()
    }

    fn batch<'a>(stores: &'a super::super::Stores) -> BatchWrite<'a> {
        BatchWrite {
            db: &stores.log,
            wal: &stores.wal,
            txn: None,
            unsynced: false,
            purge_to: None,
        }
    }

    /// A follower that installed a snapshot past its log (its purge held
    /// back, or the server stopped before it) goes on from the snapshot:
    /// the log is purged to it, not left with a hole.
    #[test]
    fn an_append_past_the_end_goes_on_from_the_saved_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores = super::super::open(Some(dir.path())).expect("opens");
        let old: Vec<_> = (1..=10).map(|i| entry(1, i).1).collect();
        let mut w = batch(&stores);
        w.append(&stores.snapshots, &old).expect("appends");
        stores.wal.sync().expect("syncs");
        let next = [entry(2, 21).1];

        // No snapshot covers 11..=20: refused.
        let err = batch(&stores)
            .append(&stores.snapshots, &next)
            .expect_err("a hole");
        assert!(
            err.to_string().contains("append at 21 where 11 was due"),
            "{err}"
        );

        let snap = openraft::SnapshotMeta::<NodeId, openraft::BasicNode> {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 20)),
            last_membership: Default::default(),
            snapshot_id: "s".into(),
        };
        let txn = stores.snapshots.begin_write().expect("txn");
        txn.open_table(META)
            .expect("meta")
            .insert(
                KEY_SNAPSHOT,
                serde_json::to_vec(&snap).expect("json").as_slice(),
            )
            .expect("insert");
        txn.commit().expect("commit");
        let mut w = batch(&stores);
        w.append(&stores.snapshots, &next).expect("appends");
        stores.wal.sync().expect("syncs");
        assert_eq!(stores.wal.first().map(|l| l.index), Some(21));
        assert_eq!(stores.wal.last().map(|l| l.index), Some(21));
        let marker: Option<LogId<NodeId>> = read_meta(&stores.log, KEY_PURGED).expect("reads");
        assert_eq!(marker.map(|l| l.index), Some(20));
    }

    #[test]
    fn the_tail_answers_whole_ranges_and_stays_bounded() {
        let mut t = Tail::default();
        let first = appended(&mut t, 1, 1..=10);
        // Pending only, then durable: either way the tail answers.
        assert!(t.range(3, Bound::Excluded(8)).1);
        t.flushed(&first);
        assert!(t.pending.is_empty());
        let (got, whole) = t.range(3, Bound::Included(10));
        assert!(whole);
        assert_eq!(
            got.keys().copied().collect::<Vec<_>>(),
            (3..=10).collect::<Vec<_>>()
        );
        // Beyond what it holds, or with no end, the database must be read.
        assert!(!t.range(3, Bound::Included(11)).1);
        assert!(!t.range(3, Bound::Unbounded).1);

        // A truncate drops durable entries too; entries written again at
        // those indexes win, and a flush of the replaced ones moves nothing.
        t.retain(|i| i < 6);
        let again = appended(&mut t, 2, 6..=7);
        t.flushed(&first[5..]);
        assert_eq!(t.pending.len(), 2);
        let (got, whole) = t.range(5, Bound::Included(7));
        assert!(whole);
        assert_eq!(got[&6].log_id.leader_id.term, 2);
        t.flushed(&again);
        assert_eq!(t.durable_bytes, 7 * 1000);

        // Count and bytes both bound it, the oldest going first.
        let many = appended(&mut t, 2, 8..=(8 + TAIL_ENTRIES as u64));
        t.flushed(&many);
        assert_eq!(t.durable.len(), TAIL_ENTRIES);
        assert_eq!(t.durable_bytes, TAIL_ENTRIES * 1000);
        assert!(!t.range(1, Bound::Included(10)).1);
        let big: Vec<_> = appended(&mut t, 2, 600..=609)
            .into_iter()
            .map(|(id, _)| (id, vec![0; TAIL_BYTES / 4]))
            .collect();
        t.flushed(&big);
        assert!(t.durable_bytes <= TAIL_BYTES, "{}", t.durable_bytes);
        assert!(t.range(606, Bound::Included(609)).1);
    }
}
