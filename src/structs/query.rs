//! Reads: one [`Query`] per read endpoint and what it answers. Plain data,
//! so that a read is the same value whether it is served here, by the
//! leader or by another datacenter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
}
