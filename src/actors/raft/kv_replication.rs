//! Declared KV replication (Meridian's own, hashicorp/consul#6869, the
//! part of consul-replicate people run it for): with a `replication`
//! block, the leader of this datacenter follows the block's prefixes in
//! the source datacenter and applies what changed through its own Raft,
//! so the copy is in snapshots, survives restarts and is read locally
//! while the source cannot be reached. Keys under the prefixes refuse
//! local writes (the router asks [`refusal`]); the copier writes through
//! the Raft actor directly, past that check.
//!
//! One task per prefix, started when this server becomes the leader and
//! stopped when it no longer is (as `acl_replication.rs`). Each round is a
//! blocking recursive read of the prefix in the source (`min_index` = the
//! source's index of the last round, so a round starts as soon as the
//! source applied a change there), a diff with the local copy (value and
//! flags; sessions and TTLs are the source's business: its deletes come
//! through as deletes) and one batch of sets and deletes. Failures back
//! off from 250 ms to 10 s. The status (per prefix: the source index
//! reached, the last success and error) is for `/v1/agent/self` and the
//! `kv.replication.lag_seconds` gauge.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;
use thiserror::Error;

use super::acl_replication::RemoteReads;
use super::{RaftActor, RaftWrite, SharedStore};
use crate::config::KvReplication;
use crate::storage::fsm::read;
use crate::structs::catalog::DirEntry;
use crate::structs::query::{Query, QueryResult};
use crate::structs::{
    Command, CommandResult, Consistency, QueryOptions, ReadRequest, RequestError,
};

/// How long one blocking read waits in the source before a round runs
/// anyway (and finds nothing to do).
const BLOCKING_WAIT: Duration = Duration::from_secs(60);

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

static LAG: crate::metrics::Static<crate::metrics::Gauge> =
    crate::metrics::gauge("kv.replication.lag_seconds");

/// Why a write was refused: it would change a key this datacenter copies
/// from another. `None` for any write that touches no replicated key.
pub fn refusal(r: Option<&KvReplication>, command: &Command) -> Option<RequestError> {
    let r = r?;
    let refuse = |key: &str, prefix: &str| {
        Some(RequestError::Replicated(format!(
            "key {key:?} is under {prefix:?}, which this datacenter replicates from datacenter \
             {:?} (replication.prefixes); write it in {:?}",
            r.source, r.source
        )))
    };
    let key = |key: &str| r.covering(key).and_then(|p| refuse(key, p));
    match command {
        Command::KvSet { key: k, .. }
        | Command::KvCas { key: k, .. }
        | Command::KvDelete { key: k }
        | Command::KvDeleteCas { key: k, .. }
        | Command::KvLock { key: k, .. }
        | Command::KvUnlock { key: k, .. } => key(k),
        Command::KvDeleteTree { prefix } => r.overlapping(prefix).and_then(|p| refuse(prefix, p)),
        Command::Txn(ops) => ops.iter().find_map(|op| kv_op(r, op, &refuse)),
        Command::TxnOps(ops) => ops.iter().find_map(|op| match op {
            crate::structs::txn::TxnOp::Kv(op) => kv_op(r, op, &refuse),
            _ => None,
        }),
        Command::Batch(cmds) => cmds.iter().find_map(|c| refusal(Some(r), c)),
        _ => None,
    }
}

fn kv_op(
    r: &KvReplication,
    op: &crate::structs::txn::KvOp,
    refuse: &dyn Fn(&str, &str) -> Option<RequestError>,
) -> Option<RequestError> {
    // Reads in a transaction are fine; `delete-tree` reaches a whole tree.
    match op.verb.as_str() {
        "get" | "get-tree" | "check-index" | "check-session" | "check-not-exists" => None,
        "delete-tree" => r.overlapping(&op.key).and_then(|p| refuse(&op.key, p)),
        _ => r.covering(&op.key).and_then(|p| refuse(&op.key, p)),
    }
}

/// One prefix's progress.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PrefixStatus {
    pub prefix: String,
    /// The source's index the copy has reached.
    pub replicated_index: u64,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<DateTime<Utc>>,
    pub last_error_message: String,
}

/// What `/v1/agent/self` shows under `Meridian.Replication`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KvReplicationStatus {
    pub source_datacenter: String,
    /// This server leads and its tasks run (followers show `false`).
    pub running: bool,
    pub prefixes: Vec<PrefixStatus>,
    /// How far behind the copy may be: 0 while every prefix's last round
    /// succeeded (its blocking read is waiting on the source), else the
    /// time since the oldest failing prefix last succeeded.
    pub lag_ms: u64,
}

/// The status, written by the tasks and read by the request path.
#[derive(Clone, Default)]
pub struct KvReplicationHandle(Arc<Mutex<KvReplicationStatus>>);

impl KvReplicationHandle {
    pub fn get(&self) -> KvReplicationStatus {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        s.lag_ms = lag(&s, Utc::now()).as_millis() as u64;
        s
    }

    fn update(&self, prefix: &str, f: impl FnOnce(&mut PrefixStatus)) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = s.prefixes.iter_mut().find(|p| p.prefix == prefix) {
            f(p);
        }
        LAG.get().set(lag(&s, Utc::now()).as_secs_f64());
    }
}

fn lag(s: &KvReplicationStatus, now: DateTime<Utc>) -> Duration {
    s.prefixes
        .iter()
        .filter(|p| p.last_error > p.last_success)
        .map(|p| match p.last_success {
            Some(ok) => (now - ok).to_std().unwrap_or_default(),
            // Never in sync yet: behind since it began failing.
            None => p
                .last_error
                .map(|e| (now - e).to_std().unwrap_or_default())
                .unwrap_or_default(),
        })
        .max()
        .unwrap_or_default()
}

/// The leader's copy tasks.
#[derive(Default)]
pub(super) struct KvCopy {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl KvCopy {
    pub(super) fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

#[derive(Debug, Error)]
enum CopyError {
    #[error("{0}")]
    Remote(RequestError),
    #[error("applying the changes failed: {0}")]
    Apply(String),
    #[error("the source answered with an unexpected result")]
    Unexpected,
}

/// What every task of one leadership term shares.
#[derive(Clone)]
struct Copier {
    source: String,
    token: Option<String>,
    reads: RemoteReads,
    store: SharedStore,
    actor: Addr<RaftActor>,
    status: KvReplicationHandle,
}

impl RaftActor {
    /// Starts or stops the copy tasks to match leadership; runs on the
    /// actor's one-second tick.
    pub(super) fn kv_replication_tick(&mut self, ctx: &mut Context<Self>) {
        let Some(r) = self.config.replication.clone() else {
            return;
        };
        let want = self.status().is_leader;
        let running = !self.kv_copy.tasks.is_empty();
        if want == running {
            return;
        }
        if !want {
            tracing::info!(source = %r.source, "stopping KV replication");
            self.kv_copy.stop();
            self.kv_replication
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .running = false;
            return;
        }
        let Some(reads) = self.replication.reads.clone() else {
            return;
        };
        tracing::info!(source = %r.source, prefixes = ?r.prefixes, "starting KV replication");
        *self
            .kv_replication
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = KvReplicationStatus {
            source_datacenter: r.source.clone(),
            running: true,
            prefixes: r
                .prefixes
                .iter()
                .map(|p| PrefixStatus {
                    prefix: p.clone(),
                    ..Default::default()
                })
                .collect(),
            lag_ms: 0,
        };
        let copier = Copier {
            source: r.source.clone(),
            token: r.token.clone(),
            reads,
            store: self.store.clone(),
            actor: ctx.address(),
            status: self.kv_replication.clone(),
        };
        for prefix in r.prefixes {
            let c = copier.clone();
            self.kv_copy
                .tasks
                .push(actix::spawn(async move { c.run(prefix).await }));
        }
    }
}

impl Copier {
    /// Rounds until aborted.
    async fn run(self, prefix: String) {
        let mut since = 0;
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.round(&prefix, since).await {
                Ok(index) => {
                    // An index that went back (the source restored a
                    // snapshot, or is a new cluster) starts over in full.
                    since = if index < since { 0 } else { index };
                    backoff = MIN_BACKOFF;
                    self.status.update(&prefix, |p| {
                        p.replicated_index = index;
                        p.last_success = Some(Utc::now());
                    });
                }
                Err(e) => {
                    tracing::warn!(%prefix, source = %self.source, error = %e, retry_in = ?backoff, "KV replication round failed");
                    self.status.update(&prefix, |p| {
                        p.last_error = Some(Utc::now());
                        p.last_error_message = e.to_string();
                    });
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One round: waits for the source's prefix to pass `since`, then
    /// brings the local copy to it. The source's index it reached.
    async fn round(&self, prefix: &str, since: u64) -> Result<u64, CopyError> {
        let req = ReadRequest {
            opts: QueryOptions {
                dc: Some(self.source.clone()),
                // Any server of the source may answer: the next round
                // catches up with whatever a lagging one missed.
                consistency: Consistency::Stale,
                min_index: since,
                max_wait: BLOCKING_WAIT,
                token: self.token.clone(),
                near: None,
            },
            query: Query::KvList {
                prefix: prefix.to_string(),
            },
        };
        let resp = (self.reads)(req).await.map_err(CopyError::Remote)?;
        let index = resp.meta.index;
        let QueryResult::Entries(remote) = resp.result else {
            return Err(CopyError::Unexpected);
        };
        let local = read(&self.store).kv_list(prefix, None).1;
        let changes = diff(&local, remote);
        if !changes.is_empty() {
            let n = changes.len();
            let resp = self
                .actor
                .send(RaftWrite(Command::Batch(changes)))
                .await
                .map_err(|e| CopyError::Apply(e.to_string()))?
                .map_err(|e| CopyError::Apply(e.to_string()))?;
            if let CommandResult::Rejected(text) = resp.result {
                return Err(CopyError::Apply(text));
            }
            tracing::debug!(%prefix, changes = n, index, "replicated KV changes");
        }
        Ok(index)
    }
}

/// The writes that make `local` equal `remote` (both one prefix's
/// entries): a set for each key new or different in value or flags, a
/// delete for each key gone, in key order.
fn diff(local: &[DirEntry], remote: Vec<DirEntry>) -> Vec<Command> {
    let mut local: BTreeMap<&str, &DirEntry> = local.iter().map(|e| (e.key.as_str(), e)).collect();
    let mut out = Vec::new();
    for e in remote {
        let same = local
            .remove(e.key.as_str())
            .is_some_and(|l| l.value == e.value && l.flags == e.flags);
        if !same {
            out.push(Command::KvSet {
                key: e.key,
                value: e.value,
                flags: e.flags,
                ttl: None,
            });
        }
    }
    out.extend(
        local
            .into_keys()
            .map(|k| Command::KvDelete { key: k.to_string() }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str, flags: u64) -> DirEntry {
        DirEntry {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            flags,
            ..Default::default()
        }
    }

    #[test]
    fn the_diff_sets_what_is_new_or_changed_and_deletes_what_is_gone() {
        let local = vec![
            entry("p/a", "1", 0),
            entry("p/b", "2", 0),
            entry("p/c", "3", 0),
        ];
        let remote = vec![
            entry("p/a", "1", 0),
            entry("p/b", "2", 7),
            entry("p/d", "4", 0),
        ];
        let keys: Vec<String> = diff(&local, remote)
            .into_iter()
            .map(|c| match c {
                Command::KvSet { key, .. } => format!("set {key}"),
                Command::KvDelete { key } => format!("delete {key}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(keys, ["set p/b", "set p/d", "delete p/c"]);
        assert!(diff(&local, local.clone()).is_empty());
    }

    #[test]
    fn writes_under_a_replicated_prefix_are_refused_naming_the_source() {
        let op = |verb: &str, key: &str| crate::structs::txn::KvOp {
            verb: verb.into(),
            key: key.into(),
            value: vec![],
            flags: 0,
            index: 0,
            session: String::new(),
            ttl: None,
        };
        let r = KvReplication {
            source: "dc1".into(),
            prefixes: vec!["config/global/".into()],
            token: None,
            declared_in: "r.hcl".into(),
        };
        let config = Some(&r);
        let set = |key: &str| Command::KvSet {
            key: key.into(),
            value: vec![],
            flags: 0,
            ttl: None,
        };
        let e = refusal(config, &set("config/global/x")).expect("refused");
        assert!(e.to_string().contains("\"dc1\""), "{e}");
        assert!(refusal(config, &set("config/local/x")).is_none());
        let tree = Command::KvDeleteTree {
            prefix: "config/".into(),
        };
        assert!(refusal(config, &tree).is_some(), "reaches into the prefix");
        let txn = Command::Txn(vec![op("set", "config/global/y")]);
        assert!(refusal(config, &txn).is_some());
        let read = Command::Txn(vec![op("get", "config/global/y")]);
        assert!(refusal(config, &read).is_none());
        assert!(refusal(None, &set("config/global/x")).is_none());
    }
}
