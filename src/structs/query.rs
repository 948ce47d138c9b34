//! Reads: one [`Query`] per read endpoint and what it answers. Plain data,
//! so that a read is the same value whether it is served here, by the
//! leader or by another datacenter.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::acl::{
    AclPolicy, AclPolicyListStub, AclRole, AclToken, AclTokenListStub, ResolvedAclToken,
};
use super::catalog::{
    CheckServiceNode, DirEntry, HealthCheck, HealthStatus, Node, NodeServices, ServiceNode,
};
use super::session::Session;
use super::snapshot::StoreSnapshot;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Query {
    KvGet {
        key: String,
    },
    KvList {
        prefix: String,
    },
    KvKeys {
        prefix: String,
        separator: Option<String>,
    },
    CatalogNodes,
    CatalogServices,
    CatalogService {
        name: String,
        tags: Vec<String>,
    },
    CatalogNode {
        node: String,
    },
    HealthService {
        name: String,
        tags: Vec<String>,
        passing: bool,
    },
    HealthNode {
        node: String,
    },
    HealthChecks {
        service: String,
    },
    HealthState {
        state: HealthStatus,
    },
    SessionInfo {
        id: String,
    },
    /// Every session, or one node's.
    SessionList {
        node: Option<String>,
    },
    /// Every table at once (`/v1/snapshot`).
    Snapshot,
    /// One token by AccessorID, expired or not (the caller decides).
    AclTokenRead {
        accessor_id: String,
    },
    /// One token by SecretID (`/v1/acl/token/self`).
    AclTokenBySecret {
        secret_id: String,
    },
    /// Every token, or those linking a policy ID, a role ID or having a
    /// service identity for a service (Consul's `?policy=`, `?role=`,
    /// `?servicename=`); filters given together must all match.
    AclTokenList {
        policy: Option<String>,
        role: Option<String>,
        service_name: Option<String>,
    },
    AclPolicyRead {
        id: String,
    },
    AclPolicyByName {
        name: String,
    },
    AclPolicyList,
    AclRoleRead {
        id: String,
    },
    AclRoleByName {
        name: String,
    },
    /// Every role, or those linking a policy ID (`?policy=`).
    AclRoleList {
        policy: Option<String>,
    },
    /// The index ACLs were bootstrapped at, if they were: what a refused
    /// bootstrap reports as its reset index.
    AclBootstrapState,
    /// A request's secret resolved for authorization (the empty secret is
    /// the anonymous token's); a token expired as of `now` resolves to
    /// nothing.
    AclResolve {
        secret: String,
        now: DateTime<Utc>,
    },
    /// Whole policies by ID, those that exist (Consul's
    /// `ACL.PolicyBatchRead`, which replication fetches changes with).
    AclPolicyBatch {
        ids: Vec<String>,
    },
    /// Whole tokens by AccessorID, secrets included, those that exist
    /// (Consul's `ACL.TokenBatchRead`, for token replication).
    AclTokenBatch {
        accessor_ids: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum QueryResult {
    Sessions(Vec<Session>),
    Entry(Option<DirEntry>),
    Entries(Vec<DirEntry>),
    Keys(Vec<String>),
    Nodes(Vec<Node>),
    Services(BTreeMap<String, Vec<String>>),
    ServiceNodes(Vec<ServiceNode>),
    NodeServices(Option<NodeServices>),
    CheckServiceNodes(Vec<CheckServiceNode>),
    Checks(Vec<HealthCheck>),
    Snapshot(Box<StoreSnapshot>),
    AclToken(Option<Box<AclToken>>),
    AclTokens(Vec<AclTokenListStub>),
    AclPolicy(Option<Box<AclPolicy>>),
    AclPolicies(Vec<AclPolicyListStub>),
    AclRole(Option<Box<AclRole>>),
    AclRoles(Vec<AclRole>),
    /// `Some(index)` once bootstrapped.
    AclBootstrap(Option<u64>),
    AclResolved(Option<Box<ResolvedAclToken>>),
    AclPolicyBatch(Vec<AclPolicy>),
    AclTokenBatch(Vec<AclToken>),
}
