//! The request path's data: what a read or write asks for, and what it
//! answers, independent of whether it is served locally, by the leader or
//! by another datacenter.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::command::{Command, CommandResult};
use super::query::{Query, QueryResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Consistency {
    /// Served by the leader from its state, without a quorum round.
    #[default]
    Default,
    /// Served by any server from its local state.
    Stale,
    /// The leader confirms its leadership with a quorum first.
    Consistent,
}

impl Consistency {
    /// The value of `X-Consul-Effective-Consistency`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Consistency::Default => "leader",
            Consistency::Stale => "stale",
            Consistency::Consistent => "consistent",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct QueryOptions {
    /// Target datacenter; `None` = the agent's own.
    pub dc: Option<String>,
    pub consistency: Consistency,
    /// Blocking query: wait until the result's index exceeds this (0 = no wait).
    pub min_index: u64,
    /// How long a blocking query may wait (already clamped and jittered).
    pub max_wait: Duration,
    /// The caller's ACL token (its secret), decided on the server that
    /// serves the request; `None` = the anonymous token.
    #[serde(default)]
    pub token: Option<String>,
    /// Consul's `?near=`: list answers sorted by estimated round trip
    /// from this node's coordinate (already resolved from `_agent`, and
    /// set only for a read of the caller's own datacenter, whose
    /// coordinates these are).
    #[serde(default)]
    pub near: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadRequest {
    pub opts: QueryOptions,
    pub query: Query,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct QueryMeta {
    /// Never 0: Consul reports 1 instead so that clients cannot spin.
    pub index: u64,
    pub known_leader: bool,
    pub last_contact_ms: u64,
    pub consistency: Consistency,
    /// ACLs dropped entries the token may not read (Consul's
    /// `X-Consul-Results-Filtered-By-ACLs`).
    #[serde(default)]
    pub results_filtered: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadResponse {
    pub meta: QueryMeta,
    pub result: QueryResult,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteRequest {
    pub dc: Option<String>,
    pub command: Command,
    /// The caller's ACL token, as for reads.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteResponse {
    /// The Raft index of the write.
    pub index: u64,
    pub result: CommandResult,
}

/// Why a request could not be served. The texts are Consul's: clients
/// match on them.
#[derive(Debug, Clone, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestError {
    #[error("No cluster leader")]
    NoLeader,
    #[error("No path to datacenter")]
    NoPathToDatacenter,
    #[error("No known Consul servers")]
    NoServers,
    #[error("Not ready to serve consistent reads")]
    NotReadyForConsistentReads,
    /// The state store refused the write (e.g. a check for an unknown service).
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Internal(String),
    #[error("agent is shutting down")]
    ShuttingDown,
    /// The entry was not committed in time; it may still commit later.
    #[error("timed out enqueuing operation")]
    Timeout,
    /// The leader lost its quorum with the entry in flight; it may still commit.
    #[error("leadership lost while committing log")]
    LeadershipLost,
    /// The token lacks a permission: Consul's full text, naming the rule
    /// or default policy that decided (see `acl::PermissionDenied`).
    #[error("{0}")]
    PermissionDenied(String),
    /// The request's secret names no token, or an expired one.
    #[error("ACL not found")]
    AclNotFound,
    /// A write to a key this datacenter replicates from another
    /// (Meridian's `replication` block): the text names the source.
    #[error("{0}")]
    Replicated(String),
}
