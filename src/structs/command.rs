//! Raft entries: one [`Command`] per replicated write, and what applying
//! it answers.

use serde::{Deserialize, Serialize};

use super::catalog::{DeregisterRequest, RegisterRequest};
use super::session::Session;
use super::snapshot::StoreSnapshot;
use super::txn::{KvOp, TxnOp, TxnOutcome};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    KvSet {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
    },
    KvCas {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
        cas: u64,
    },
    KvDelete {
        key: String,
    },
    KvDeleteCas {
        key: String,
        cas: u64,
    },
    KvDeleteTree {
        prefix: String,
    },
    Register(RegisterRequest),
    Deregister(DeregisterRequest),
    KvLock {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
        session: String,
    },
    KvUnlock {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
        session: String,
    },
    SessionCreate(Session),
    /// Destroy (the API) or invalidate (the leader's TTL timers).
    SessionDestroy {
        id: String,
    },
    /// Through Raft so that only the leader answers (its TTL timers are
    /// the ones that count); changes nothing.
    SessionRenew {
        id: String,
    },
    /// `/v1/txn` as first logged: KV operations only, all or nothing.
    Txn(Vec<KvOp>),
    /// `/v1/txn` with any verbs, all or nothing.
    TxnOps(Vec<TxnOp>),
    /// `/v1/snapshot` PUT: every table replaced by the snapshot's.
    Restore(Box<StoreSnapshot>),
    /// Writes that arrived together, applied in order under one Raft index
    /// (one entry and one fsync for all of them).
    Batch(Vec<Command>),
}

/// What a write answers: `Bool` for KV verbs (`true`/`false` bodies),
/// `Done` for catalog writes, `Rejected` when the state store refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    Bool(bool),
    Done,
    Rejected(String),
    /// One result per command of a `Batch`, in order.
    Batch(Vec<CommandResult>),
    /// A session after a renew; `None` when it does not exist.
    Session(Option<Session>),
    Txn(TxnOutcome),
}
