//! Raft entries: one [`Command`] per replicated write, and what applying
//! it answers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::acl::{AclPolicy, AclRole, AclToken};
use super::acl_replication::AclReplicationBatch;
use super::catalog::{DeregisterRequest, RegisterRequest};
use super::coordinate::CoordinateEntry;
use super::prepared_query::PreparedQuery;
use super::session::Session;
use super::snapshot::StoreSnapshot;
use super::txn::{KvOp, TxnOp, TxnOutcome};

// A command is built once and moved into a Raft entry; boxing the large
// registration would cost an allocation on the most frequent write.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    KvSet {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
        /// Meridian extension: the key's TTL (`30s`); `None` clears it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<String>,
    },
    KvCas {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
        cas: u64,
        /// Meridian extension: the key's TTL (`30s`); `None` clears it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<String>,
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
    /// Meridian extension, sent only by the leader's KV TTL timers:
    /// deletes `key` if it still has a TTL and its `ModifyIndex` is
    /// `modify_index` (a rewrite since the timer started wins). Answers
    /// `Bool(deleted)`.
    KvExpire {
        key: String,
        modify_index: u64,
    },
    Register(RegisterRequest),
    Deregister(DeregisterRequest),
    KvLock {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
        session: String,
        /// Meridian extension: the key's TTL (`30s`); `None` clears it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<String>,
    },
    KvUnlock {
        key: String,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
        flags: u64,
        session: String,
        /// Meridian extension: the key's TTL (`30s`); `None` clears it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<String>,
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
    /// The leader's first write after it wins: stores the builtin policies
    /// (or brings their rules up to this binary's) and the anonymous token
    /// (created at `now`, the leader's clock). Answers `Bool(changed)`.
    AclInitialize {
        now: DateTime<Utc>,
    },
    /// `/v1/acl/bootstrap`: stores the first management token, which the
    /// leader built (IDs, `CreateTime`, the global-management link). Once
    /// done, refused unless `reset_index` is the index it was done at (the
    /// operator's `acl-bootstrap-reset` file).
    AclBootstrap {
        token: AclToken,
        reset_index: Option<u64>,
    },
    /// Creates (`create`: the AccessorID and SecretID must be new) or
    /// updates (the token must exist; its SecretID, `Local` and expiry
    /// can't change) a token. Links may name policies and roles by ID or
    /// by name; every one must exist.
    AclTokenSet {
        token: AclToken,
        create: bool,
    },
    AclTokenDelete {
        accessor_id: String,
    },
    /// Creates (`create`: the ID must be new) or updates a policy. Names
    /// are unique; the builtin policies keep their rules.
    AclPolicySet {
        policy: AclPolicy,
        create: bool,
    },
    /// Links to a deleted policy stay in tokens and roles; reads drop them.
    AclPolicyDelete {
        id: String,
    },
    AclRoleSet {
        role: AclRole,
        create: bool,
    },
    AclRoleDelete {
        id: String,
    },
    /// Deletes every token whose `ExpirationTime` is before `now`, the
    /// leader's clock (never read in `apply`, so every server agrees).
    /// Answers `AclTokensReaped` with their AccessorIDs.
    AclTokensReapExpired {
        now: DateTime<Utc>,
        /// Only `Local` tokens: a secondary datacenter leaves the global
        /// ones to the primary, which reaps them (replication then
        /// deletes them here).
        #[serde(default)]
        local_only: bool,
    },
    /// A secondary's replication round from the primary datacenter
    /// (Consul's `ACLPolicyBatchSet`/`...Delete` and friends, as one
    /// entry): stores the primary's objects as they are there and deletes
    /// what it no longer has. Answers `Bool(changed)`.
    AclReplicate(Box<AclReplicationBatch>),
    /// Drops the KV tombstones (deleted keys' indexes) at or below
    /// `reap_index`: Consul's `TombstoneRequest` with its reap op, which
    /// the leader sends once the deletes are older than the tombstone TTL.
    /// Answers `Bool(any reaped)`.
    KvReapTombstones {
        reap_index: u64,
    },
    /// Creates (`create`: the ID, made by the HTTP layer, must be new) or
    /// replaces a prepared query, already validated. Answers `Done`, or
    /// `Rejected` with Consul's text (name taken, unknown session, ...).
    PreparedQuerySet {
        query: Box<PreparedQuery>,
        create: bool,
    },
    /// Answers `Bool(existed)`.
    PreparedQueryDelete {
        id: String,
    },
    /// Nodes' coordinates as the servers gathered them (Consul's
    /// `CoordinateBatchUpdate`): rows for unknown nodes and invalid
    /// coordinates are dropped. Answers `Bool(any stored)`.
    CoordinateBatchUpdate(Vec<CoordinateEntry>),
}

/// What a write answers: `Bool` for KV verbs (`true`/`false` bodies) and
/// deletes (whether something was there), `Done` for catalog writes, the
/// stored object for ACL writes, `Rejected` when the state store refused
/// (for ACL writes, with Consul's error text).
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
    /// The token, policy or role as stored (links resolved to IDs and
    /// current names).
    AclToken(Box<AclToken>),
    AclPolicy(Box<AclPolicy>),
    AclRole(Box<AclRole>),
    /// AccessorIDs of the tokens an `AclTokensReapExpired` deleted.
    AclTokensReaped(Vec<String>),
}
