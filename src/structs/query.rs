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
    CheckServiceNode, DirEntry, DnsInstance, HealthCheck, HealthStatus, KvChanges, Node,
    NodeServices, ServiceNode,
};
use super::coordinate::CoordinateEntry;
use super::prepared_query::{ExecuteOptions, ExecuteResult, PreparedQuery};
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
    /// Meridian extension: what changed under `prefix` after `since`
    /// (writes and deletes), from the KV tombstones.
    KvChanges {
        prefix: String,
        since: u64,
    },
    CatalogNodes,
    CatalogServices,
    /// Every service instance, with the index and watch of
    /// `CatalogServices`: what `/v1/catalog/services?filter=` filters
    /// before grouping by name, as Consul does.
    CatalogServiceList,
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
    /// The instances of a service that DNS answers with (not critical;
    /// not warning either when `only_passing`), in the lean shape records
    /// are built from. Same index and watch as `HealthService`.
    DnsService {
        name: String,
        tags: Vec<String>,
        only_passing: bool,
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
    /// One prepared query by ID, as stored.
    PreparedQueryGet {
        id: String,
    },
    PreparedQueryList,
    /// The query an ID or name resolves to, templates rendered
    /// (`/explain`).
    PreparedQueryExplain {
        id_or_name: String,
    },
    /// Resolves and runs a query here; the server that serves it fails
    /// over to other datacenters when nothing here is healthy.
    PreparedQueryExecute {
        id_or_name: String,
        opts: ExecuteOptions,
    },
    /// Runs a query another datacenter resolved (its failover), as given.
    PreparedQueryExecuteRemote {
        query: Box<PreparedQuery>,
        opts: ExecuteOptions,
    },
    /// Every node's LAN coordinate (`/v1/coordinate/nodes`).
    CoordinateNodes,
    /// One node's coordinates (`/v1/coordinate/node/<node>`).
    CoordinateNode {
        node: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum QueryResult {
    Sessions(Vec<Session>),
    Entry(Option<DirEntry>),
    Entries(Vec<DirEntry>),
    Keys(Vec<String>),
    KvChanges(KvChanges),
    Nodes(Vec<Node>),
    Services(BTreeMap<String, Vec<String>>),
    /// Every instance, for grouping by name after `?filter=`; the ACL
    /// filter keeps those of readable services, as for `Services`.
    ServiceList(Vec<ServiceNode>),
    ServiceNodes(Vec<ServiceNode>),
    NodeServices(Option<NodeServices>),
    CheckServiceNodes(Vec<CheckServiceNode>),
    /// `DnsService`'s answer; every instance is of `service`.
    DnsInstances {
        service: String,
        instances: Vec<DnsInstance>,
    },
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
    PreparedQueries(Vec<PreparedQuery>),
    /// `None`: no such query (or, after ACL filtering, not readable).
    PreparedQuery(Option<Box<PreparedQuery>>),
    /// `None`: no such query.
    PreparedQueryExecuted(Option<Box<ExecuteResult>>),
    Coordinates(Vec<CoordinateEntry>),
}
