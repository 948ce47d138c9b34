//! The Raft log's entries as append-only segment files under
//! `<data-dir>/raft/wal` (in memory with `-dev`), as etcd's WAL and
//! hashicorp's raft-wal keep them.
//!
//! Why not redb, which holds the vote and the markers: a redb commit
//! copies the B-tree pages it touches and writes them where they fall, so
//! one entry cost ~8 page writes and an fdatasync of scattered pages
//! (0.33 ms p50 here, against 0.12-0.16 ms for one appended record), plus
//! ~0.2 ms of the log writer's CPU, on every server and in series on the
//! write path (leader, then follower).
//!
//! A segment is a run of records, each `[payload length u32][crc32 of
//! index and payload u32][index u64][payload]`; the payload is the encoded
//! entry. The entries of all segments are one contiguous run of indexes:
//! openraft appends right after the last entry, truncates a suffix and
//! purges a prefix. So a truncate cuts the file at the entry's offset
//! (and deletes later segments), and a purge deletes whole segments whose
//! entries are all purged (the entries below the purge marker in the
//! first segment left are never read).
//!
//! At open the segments are read in order and every record's checksum
//! and index checked. A bad record at the end of the last segment is a
//! write the crash cut short (never acknowledged: acks follow the
//! fdatasync) and is cut off; anywhere else it is corruption, and the
//! server refuses to start naming the file and offset.
//!
//! One thread writes (the log writer); readers take the positions under
//! a short lock and read the files without it.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use openraft::LogId;

use super::{NodeId, StorageError};

/// A new segment starts once the active one reaches this size.
const SEGMENT_BYTES: u64 = 64 << 20;
const HEADER: usize = 16;

/// One segment's bytes: a file, or a buffer with `-dev`.
#[derive(Clone)]
enum Bytes {
    Disk(Arc<File>),
    Mem(Arc<RwLock<Vec<u8>>>),
}

impl Bytes {
    fn write_at(&self, buf: &[u8], off: u64) -> std::io::Result<()> {
        match self {
            Bytes::Disk(f) => f.write_all_at(buf, off),
            Bytes::Mem(m) => {
                let mut v = m.write().unwrap_or_else(|e| e.into_inner());
                let off = off as usize;
                v.truncate(off);
                v.extend_from_slice(buf);
                Ok(())
            }
        }
    }

    fn read_at(&self, len: usize, off: u64) -> std::io::Result<Vec<u8>> {
        match self {
            Bytes::Disk(f) => {
                let mut buf = vec![0; len];
                f.read_exact_at(&mut buf, off)?;
                Ok(buf)
            }
            Bytes::Mem(m) => {
                let v = m.read().unwrap_or_else(|e| e.into_inner());
                let off = off as usize;
                v.get(off..off + len).map(<[u8]>::to_vec).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "short read")
                })
            }
        }
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        match self {
            Bytes::Disk(f) => f.set_len(len),
            Bytes::Mem(m) => {
                m.write()
                    .unwrap_or_else(|e| e.into_inner())
                    .truncate(len as usize);
                Ok(())
            }
        }
    }

    fn sync(&self) -> std::io::Result<()> {
        match self {
            Bytes::Disk(f) => f.sync_data(),
            Bytes::Mem(_) => Ok(()),
        }
    }
}

struct Segment {
    bytes: Bytes,
    /// Where the next record goes.
    len: u64,
    /// The file, for messages (empty with `-dev`).
    path: PathBuf,
}

/// Where one entry is.
#[derive(Clone, Copy)]
struct Slot {
    id: LogId<NodeId>,
    /// The segment's key: the index its name carries.
    seg: u64,
    off: u64,
    len: u32,
}

#[derive(Default)]
struct Inner {
    /// By the index each segment was created for; the last is the active one.
    segments: BTreeMap<u64, Segment>,
    /// Every entry held, oldest first, contiguous indexes.
    slots: VecDeque<Slot>,
    /// The active (last) segment has writes not yet synced. Only it can:
    /// a segment is synced before the next one is created.
    dirty: bool,
    /// Set by a failed write: the file may hold a partial record, so
    /// nothing more is written (openraft stops on the error anyway).
    failed: bool,
}

pub struct Wal {
    dir: Option<PathBuf>,
    inner: Mutex<Inner>,
    /// [`SEGMENT_BYTES`], smaller in tests.
    segment_bytes: u64,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StorageError {
    StorageError::Redb(format!("Raft log {what} {}: {e}", path.display()))
}

fn checksum(index: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&index.to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.wal")
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("directory sync", dir, e))
}

/// One record parsed from a segment's bytes.
struct Parsed<'a> {
    index: u64,
    payload: &'a [u8],
    next: usize,
}

/// The record at `off`, or None if the bytes there are not a whole,
/// intact record.
fn parse(buf: &[u8], off: usize) -> Option<Parsed<'_>> {
    let head = buf.get(off..off + HEADER)?;
    let len = u32::from_le_bytes(head[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(head[4..8].try_into().ok()?);
    let index = u64::from_le_bytes(head[8..16].try_into().ok()?);
    let payload = buf.get(off + HEADER..off + HEADER + len)?;
    (checksum(index, payload) == crc).then_some(Parsed {
        index,
        payload,
        next: off + HEADER + len,
    })
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Wal {
    /// Opens the segments under `dir` (created if missing), or an empty
    /// log in memory. `id_of` decodes an entry's payload to its log id.
    pub fn open(
        dir: Option<&Path>,
        id_of: impl Fn(&[u8]) -> Result<LogId<NodeId>, StorageError>,
    ) -> Result<Wal, StorageError> {
        let Some(dir) = dir else {
            return Ok(Wal {
                dir: None,
                inner: Mutex::default(),
                segment_bytes: SEGMENT_BYTES,
            });
        };
        std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
        let mut names = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| io("directory read", dir, e))? {
            let e = e.map_err(|e| io("directory read", dir, e))?;
            let name = e.file_name();
            let Some(first) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".wal"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            names.push(first);
        }
        names.sort_unstable();
        let mut inner = Inner::default();
        let count = names.len();
        for (n, first) in names.into_iter().enumerate() {
            let path = dir.join(segment_name(first));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io("open", &path, e))?;
            let buf = std::fs::read(&path).map_err(|e| io("read", &path, e))?;
            let last_segment = n + 1 == count;
            let mut off = 0;
            while off < buf.len() {
                let Some(rec) = parse(&buf, off) else { break };
                let expected = inner.slots.back().map(|s| s.id.index + 1);
                if expected.is_some_and(|x| x != rec.index) {
                    // Segments before a gap hold only purged entries
                    // (purges delete oldest first, and a crash may undo
                    // some deletions): they are dropped; the purge
                    // marker says whether that is all they held.
                    if off == 0 && inner.slots.back().is_some_and(|s| s.id.index < rec.index) {
                        tracing::warn!(
                            segment = %path.display(),
                            "Raft log segments before this one do not lead up to it; dropping them"
                        );
                        drop_segments(dir, &mut inner)?;
                    } else {
                        return Err(StorageError::Redb(format!(
                            "Raft log {} is corrupt at offset {off}: entry {} where {} was due",
                            path.display(),
                            rec.index,
                            expected.unwrap_or_default()
                        )));
                    }
                }
                let id = id_of(rec.payload).map_err(|e| {
                    StorageError::Redb(format!("Raft log {} at offset {off}: {e}", path.display()))
                })?;
                inner.slots.push_back(Slot {
                    id,
                    seg: first,
                    off: off as u64,
                    len: rec.payload.len() as u32,
                });
                off = rec.next;
            }
            if off < buf.len() {
                if !last_segment {
                    return Err(StorageError::Redb(format!(
                        "Raft log {} is corrupt at offset {off} (a bad record before the last segment)",
                        path.display()
                    )));
                }
                tracing::warn!(
                    segment = %path.display(),
                    offset = off,
                    cut = buf.len() - off,
                    "the Raft log ends in a record a crash cut short; cutting it off"
                );
                file.set_len(off as u64)
                    .and_then(|_| file.sync_data())
                    .map_err(|e| io("truncate", &path, e))?;
            }
            inner.segments.insert(
                first,
                Segment {
                    bytes: Bytes::Disk(Arc::new(file)),
                    len: off as u64,
                    path,
                },
            );
        }
        Ok(Wal {
            dir: Some(dir.to_path_buf()),
            inner: Mutex::new(inner),
            segment_bytes: SEGMENT_BYTES,
        })
    }

    /// The newest entry held.
    pub fn last(&self) -> Option<LogId<NodeId>> {
        lock(&self.inner).slots.back().map(|s| s.id)
    }

    /// The oldest entry held.
    pub fn first(&self) -> Option<LogId<NodeId>> {
        lock(&self.inner).slots.front().map(|s| s.id)
    }

    pub fn is_empty(&self) -> bool {
        lock(&self.inner).slots.is_empty()
    }

    /// The id of the entry held at `index`.
    pub fn id_at(&self, index: u64) -> Option<LogId<NodeId>> {
        let inner = lock(&self.inner);
        slot_at(&inner, index).map(|s| s.id)
    }

    /// Writes `entries` (id, encoded) after the last one, without syncing.
    pub fn append(&self, entries: &[(LogId<NodeId>, Vec<u8>)]) -> Result<(), StorageError> {
        if entries.is_empty() {
            return Ok(());
        }
        let (mut active, mut next, failed, empty) = {
            let inner = lock(&self.inner);
            (
                inner
                    .segments
                    .iter()
                    .next_back()
                    .map(|(k, s)| (*k, s.bytes.clone(), s.len)),
                inner.slots.back().map(|s| s.id.index + 1),
                inner.failed,
                inner.slots.is_empty(),
            )
        };
        if failed {
            return Err(StorageError::Redb(
                "the Raft log stopped writing after an earlier failure".into(),
            ));
        }
        if empty {
            // Whatever the segments hold is purged or truncated away, and
            // the next entry need not follow it (after a snapshot install):
            // a fresh start keeps every segment a contiguous run.
            self.clear()?;
            active = None;
        }
        let mut buf = Vec::new();
        let mut slots = Vec::with_capacity(entries.len());
        for (id, payload) in entries {
            if let Some(n) = next.filter(|n| *n != id.index) {
                return Err(StorageError::Redb(format!(
                    "Raft log append at {} where {n} was due",
                    id.index
                )));
            }
            let (seg, bytes, at) = match active.take() {
                Some((s, b, at)) if at + (buf.len() as u64) < self.segment_bytes => (s, b, at),
                full => {
                    // The records so far go to the full segment, the rest
                    // to a new one named after the entry it starts with.
                    if let Some((s, b, at)) = full {
                        self.write(&b, s, &buf, at)?;
                        // Synced before the next segment exists, so that a
                        // torn record can only ever be in the last segment.
                        b.sync().map_err(|e| self.fail(e, "sync"))?;
                    }
                    buf.clear();
                    (id.index, self.create(id.index)?, 0)
                }
            };
            slots.push(Slot {
                id: *id,
                seg,
                off: at + buf.len() as u64,
                len: u32::try_from(payload.len()).map_err(|_| {
                    StorageError::Redb(format!("Raft log entry {} is over 4 GiB", id.index))
                })?,
            });
            buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            buf.extend_from_slice(&checksum(id.index, payload).to_le_bytes());
            buf.extend_from_slice(&id.index.to_le_bytes());
            buf.extend_from_slice(payload);
            active = Some((seg, bytes, at));
            next = Some(id.index + 1);
        }
        if let Some((s, b, at)) = &active {
            self.write(b, *s, &buf, *at)?;
        }
        lock(&self.inner).slots.extend(slots);
        Ok(())
    }

    /// Deletes every segment.
    fn clear(&self) -> Result<(), StorageError> {
        let gone = {
            let mut inner = lock(&self.inner);
            inner.dirty = false;
            inner.slots.clear();
            std::mem::take(&mut inner.segments)
        };
        self.remove(gone.into_values().collect())
    }

    /// Deletes segments taken out of the map, durably.
    fn remove(&self, gone: Vec<Segment>) -> Result<(), StorageError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        if gone.is_empty() {
            return Ok(());
        }
        for s in &gone {
            std::fs::remove_file(&s.path).map_err(|e| io("remove", &s.path, e))?;
        }
        sync_dir(dir)
    }

    fn write(&self, bytes: &Bytes, seg: u64, buf: &[u8], at: u64) -> Result<(), StorageError> {
        if buf.is_empty() {
            return Ok(());
        }
        bytes.write_at(buf, at).map_err(|e| self.fail(e, "write"))?;
        let mut inner = lock(&self.inner);
        if let Some(s) = inner.segments.get_mut(&seg) {
            s.len = at + buf.len() as u64;
        }
        inner.dirty = true;
        Ok(())
    }

    fn fail(&self, e: std::io::Error, what: &str) -> StorageError {
        lock(&self.inner).failed = true;
        StorageError::Redb(format!("Raft log {what}: {e}"))
    }

    /// A new, empty segment for entries from `first` on.
    fn create(&self, first: u64) -> Result<Bytes, StorageError> {
        let (bytes, path) = match &self.dir {
            None => (Bytes::Mem(Arc::default()), PathBuf::new()),
            Some(dir) => {
                let path = dir.join(segment_name(first));
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(|e| io("create", &path, e))?;
                // The new name must survive a crash with what is written in it.
                sync_dir(dir)?;
                (Bytes::Disk(Arc::new(file)), path)
            }
        };
        lock(&self.inner).segments.insert(
            first,
            Segment {
                bytes: bytes.clone(),
                len: 0,
                path,
            },
        );
        Ok(bytes)
    }

    /// Makes everything written so far durable.
    pub fn sync(&self) -> Result<(), StorageError> {
        let active = {
            let mut inner = lock(&self.inner);
            if !std::mem::take(&mut inner.dirty) {
                return Ok(());
            }
            inner.segments.values().next_back().map(|s| s.bytes.clone())
        };
        if let Some(b) = active {
            b.sync().map_err(|e| self.fail(e, "sync"))?;
        }
        Ok(())
    }

    /// Deletes the entries from `from` on, durably before it returns: a
    /// cut that a crash undid could put old entries back after new ones.
    pub fn truncate(&self, from: u64) -> Result<(), StorageError> {
        let (cut, gone) = {
            let mut inner = lock(&self.inner);
            let Some(first) = inner.slots.front().map(|s| s.id.index) else {
                return Ok(());
            };
            let Some(pos) = position(&inner, from.max(first)) else {
                return Ok(());
            };
            let slot = inner.slots[pos];
            inner.slots.truncate(pos);
            let gone: Vec<Segment> = {
                let later: Vec<u64> = inner
                    .segments
                    .range(slot.seg + 1..)
                    .map(|(k, _)| *k)
                    .collect();
                later
                    .into_iter()
                    .filter_map(|k| inner.segments.remove(&k))
                    .collect()
            };
            let seg = inner.segments.get_mut(&slot.seg);
            let cut = seg.map(|s| {
                s.len = slot.off;
                (s.bytes.clone(), slot.off)
            });
            (cut, gone)
        };
        self.remove(gone)?;
        if let Some((bytes, off)) = cut {
            bytes
                .set_len(off)
                .and_then(|_| bytes.sync())
                .map_err(|e| self.fail(e, "truncate"))?;
        }
        Ok(())
    }

    /// Forgets the entries up to `upto` and deletes the segments that
    /// held only those (never the active one).
    pub fn purge(&self, upto: u64) -> Result<(), StorageError> {
        let gone: Vec<Segment> = {
            let mut inner = lock(&self.inner);
            while inner.slots.front().is_some_and(|s| s.id.index <= upto) {
                inner.slots.pop_front();
            }
            // A segment is done with when the next one starts at or below
            // upto + 1 (its entries all end before that).
            if inner.slots.is_empty() {
                // Nothing held is live: every segment goes.
                drop(inner);
                return self.clear();
            }
            let keys: Vec<u64> = inner.segments.keys().copied().collect();
            let mut gone = Vec::new();
            for pair in keys.windows(2) {
                if pair[1] <= upto + 1 {
                    if let Some(s) = inner.segments.remove(&pair[0]) {
                        gone.push(s);
                    }
                }
            }
            gone
        };
        self.remove(gone)
    }

    /// The encoded entries in `start..=end` that are held, in order.
    pub fn read(&self, start: u64, end: Option<u64>) -> Result<Vec<Vec<u8>>, StorageError> {
        let wanted: Vec<(Bytes, Slot)> = {
            let inner = lock(&self.inner);
            let Some(first) = inner.slots.front().map(|s| s.id.index) else {
                return Ok(Vec::new());
            };
            let from = start.max(first);
            let Some(pos) = position(&inner, from) else {
                return Ok(Vec::new());
            };
            inner
                .slots
                .range(pos..)
                .take_while(|s| end.is_none_or(|e| s.id.index <= e))
                .filter_map(|s| inner.segments.get(&s.seg).map(|g| (g.bytes.clone(), *s)))
                .collect()
        };
        let mut out = Vec::with_capacity(wanted.len());
        for (bytes, slot) in wanted {
            let raw = bytes
                .read_at(HEADER + slot.len as usize, slot.off)
                .map_err(|e| {
                    StorageError::Redb(format!("Raft log read of entry {}: {e}", slot.id.index))
                })?;
            let rec = parse(&raw, 0)
                .filter(|r| r.index == slot.id.index)
                .ok_or_else(|| {
                    StorageError::Redb(format!(
                        "Raft log entry {} does not read back intact",
                        slot.id.index
                    ))
                })?;
            out.push(rec.payload.to_vec());
        }
        Ok(out)
    }
}

/// The slot of `index` within the deque.
fn position(inner: &Inner, index: u64) -> Option<usize> {
    let first = inner.slots.front()?.id.index;
    let pos = usize::try_from(index.checked_sub(first)?).ok()?;
    (pos < inner.slots.len()).then_some(pos)
}

fn slot_at(inner: &Inner, index: u64) -> Option<Slot> {
    position(inner, index).map(|p| inner.slots[p])
}

/// Deletes every segment read so far (see the gap case in `open`).
fn drop_segments(dir: &Path, inner: &mut Inner) -> Result<(), StorageError> {
    for (_, s) in std::mem::take(&mut inner.segments) {
        std::fs::remove_file(&s.path).map_err(|e| io("remove", &s.path, e))?;
    }
    inner.slots.clear();
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::raft::TypeConfig;
    use openraft::{CommittedLeaderId, Entry, EntryPayload};

    fn id_of(b: &[u8]) -> Result<LogId<NodeId>, StorageError> {
        Ok(crate::storage::log::decode_entry(b)?.log_id)
    }

    fn entries(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<(LogId<NodeId>, Vec<u8>)> {
        indexes
            .map(|i| {
                let e: Entry<TypeConfig> = Entry {
                    log_id: LogId::new(CommittedLeaderId::new(term, 1), i),
                    payload: EntryPayload::Blank,
                };
                let mut bytes = rmp_serde::to_vec_named(&e).expect("encodes");
                // Padding makes a few entries fill a small segment.
                bytes.resize(bytes.len() + 200, 0xc0);
                (e.log_id, bytes)
            })
            .collect()
    }

    fn open(dir: &Path) -> Wal {
        let mut w = Wal::open(Some(dir), id_of).expect("opens");
        w.segment_bytes = 1024;
        w
    }

    fn indexes(w: &Wal, from: u64) -> Vec<(u64, u64)> {
        w.read(from, None)
            .expect("reads")
            .iter()
            .map(|b| {
                id_of(b)
                    .map(|id| (id.index, id.leader_id.term))
                    .expect("decodes")
            })
            .collect()
    }

    fn segments(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("lists")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        v.sort();
        v
    }

    /// A WAL in `dir` holding 1..=batches*per, appended `per` at a time.
    fn filled(dir: &Path, batches: u64, per: u64) -> Wal {
        let w = open(dir);
        for i in 0..batches {
            w.append(&entries(1, i * per + 1..=i * per + per))
                .expect("appends");
        }
        w.sync().expect("syncs");
        w
    }

    #[test]
    fn entries_survive_a_reopen_across_segments_and_a_torn_tail_is_cut() {
        let d = tempfile::tempdir().expect("tempdir");
        let w = filled(d.path(), 10, 3);
        assert!(segments(d.path()).len() > 3, "{:?}", segments(d.path()));
        assert_eq!(w.read(5, Some(7)).expect("reads").len(), 3);
        drop(w);

        // A crash mid-write leaves part of a record at the end.
        let last = d.path().join(segments(d.path()).last().expect("a segment"));
        let mut tail = std::fs::read(&last).expect("reads");
        let good = tail.len();
        tail.extend_from_slice(&entries(1, 31..=31)[0].1[..40]);
        std::fs::write(&last, &tail).expect("writes");

        let w = open(d.path());
        assert_eq!(indexes(&w, 0), (1..=30).map(|i| (i, 1)).collect::<Vec<_>>());
        assert_eq!(std::fs::metadata(&last).expect("stat").len() as usize, good);
        // And the log goes on from there.
        w.append(&entries(1, 31..=32)).expect("appends");
        assert!(w.append(&entries(1, 40..=40)).is_err(), "a gap is refused");
        assert_eq!(w.last().map(|l| l.index), Some(32));
    }

    #[test]
    fn a_bad_record_before_the_last_segment_refuses_to_open() {
        let d = tempfile::tempdir().expect("tempdir");
        let w = filled(d.path(), 6, 2);
        drop(w);
        let first = d.path().join(&segments(d.path())[0]);
        let mut b = std::fs::read(&first).expect("reads");
        b[HEADER + 3] ^= 0xff;
        std::fs::write(&first, &b).expect("writes");
        let err = Wal::open(Some(d.path()), id_of)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains(&first.display().to_string()) && err.contains("offset 0"),
            "{err}"
        );
    }

    #[test]
    fn truncate_and_purge_leave_a_contiguous_log_after_a_reopen() {
        let d = tempfile::tempdir().expect("tempdir");
        let w = filled(d.path(), 10, 3);
        let before = segments(d.path()).len();
        // A conflict: entries from 8 on are replaced by term 2's.
        w.truncate(8).expect("truncates");
        assert!(segments(d.path()).len() < before);
        w.append(&entries(2, 8..=12)).expect("appends");
        w.sync().expect("syncs");
        drop(w);
        let w = open(d.path());
        let got = indexes(&w, 0);
        assert_eq!(got.len(), 12);
        assert_eq!(got[6], (7, 1));
        assert_eq!(got[7..], (8..=12).map(|i| (i, 2)).collect::<Vec<_>>()[..]);

        // A purge deletes the segments wholly below it, and reads skip
        // what is left below it.
        w.purge(9).expect("purges");
        assert_eq!(w.first().map(|l| l.index), Some(10));
        assert_eq!(indexes(&w, 0).first(), Some(&(10, 2)));
        let kept = segments(d.path());
        drop(w);
        let w = open(d.path());
        assert_eq!(segments(d.path()), kept);
        // Reopened, the segment's purged records are back until the
        // marker is applied again (the store does that at start).
        w.purge(9).expect("purges");
        assert_eq!(w.first().map(|l| l.index), Some(10));

        // Purging everything (a snapshot installed past the log) and
        // going on at a later index.
        w.purge(100).expect("purges");
        assert!(w.is_empty());
        assert!(segments(d.path()).is_empty());
        w.append(&entries(3, 101..=102)).expect("appends");
        w.sync().expect("syncs");
        drop(w);
        let w = open(d.path());
        assert_eq!(indexes(&w, 0), vec![(101, 3), (102, 3)]);
        assert_eq!(w.id_at(101).map(|l| l.leader_id.term), Some(3));
        assert_eq!(w.id_at(100), None);
    }

    #[test]
    fn in_memory_it_behaves_the_same() {
        let w = Wal::open(None, id_of).expect("opens");
        w.append(&entries(1, 1..=5)).expect("appends");
        w.truncate(4).expect("truncates");
        w.append(&entries(2, 4..=6)).expect("appends");
        w.purge(2).expect("purges");
        assert_eq!(indexes(&w, 0), vec![(3, 1), (4, 2), (5, 2), (6, 2)]);
        // A hole is refused (openraft never leaves one; a bug that did
        // would otherwise read back as a log that skips an index).
        let err = w.append(&entries(2, 8..=8)).expect_err("refused");
        assert!(
            err.to_string().contains("append at 8 where 7 was due"),
            "{err}"
        );
        assert_eq!(w.last().map(|l| l.index), Some(6));
    }
}
