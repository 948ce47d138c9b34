//! Everything a datacenter's state store holds, as one value: Raft
//! snapshots and `/v1/snapshot` archives carry it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::acl::{AclPolicy, AclRole, AclToken};
use super::catalog::{DirEntry, HealthCheck, Node, NodeService};
use super::coordinate::CoordinateEntry;
use super::prepared_query::PreparedQuery;
use super::session::Session;

/// Everything the store holds, for Raft snapshots and `/v1/snapshot`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StoreSnapshot {
    pub kvs: Vec<DirEntry>,
    pub tombstones: BTreeMap<String, u64>,
    /// The highest index among the tombstones reaped so far: the floor of
    /// every prefix read's index, so that a reap cannot move one back.
    #[serde(default)]
    pub kv_reaped_index: u64,
    /// The index of the last snapshot restore applied through Raft (a
    /// Meridian extension's floor: changed-key reads start at or above it).
    #[serde(default)]
    pub kv_restored_index: u64,
    pub nodes: Vec<Node>,
    /// (node, instance) pairs.
    pub services: Vec<(String, NodeService)>,
    pub checks: Vec<HealthCheck>,
    #[serde(default)]
    pub sessions: Vec<Session>,
    pub indexes: BTreeMap<String, u64>,
    pub last_index: u64,
    /// ACL tables; absent from snapshots taken before ACLs existed.
    #[serde(default)]
    pub acl_tokens: Vec<AclToken>,
    #[serde(default)]
    pub acl_policies: Vec<AclPolicy>,
    #[serde(default)]
    pub acl_roles: Vec<AclRole>,
    /// The index ACLs were bootstrapped at.
    #[serde(default)]
    pub acl_bootstrap_index: Option<u64>,
    /// Absent from snapshots taken before prepared queries existed.
    #[serde(default)]
    pub prepared_queries: Vec<PreparedQuery>,
    /// Network coordinates; absent from snapshots taken before them.
    #[serde(default)]
    pub coordinates: Vec<CoordinateEntry>,
}
