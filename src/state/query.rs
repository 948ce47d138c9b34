//! Reads: one [`Query`] per read endpoint, answered by [`execute`] against
//! the state store with the index that covers exactly what was read.
//!
//! Queries are plain data so that the request path can run them locally,
//! on the leader, or (later) in another datacenter without change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::structs::{
    CheckServiceNode, DirEntry, HealthCheck, HealthStatus, Node, NodeServices, ServiceNode,
};
use super::watch::Waiter;
use super::StateStore;

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
    Sessions(Vec<super::session::Session>),
    Entry(Option<DirEntry>),
    Entries(Vec<DirEntry>),
    Keys(Vec<String>),
    Nodes(Vec<Node>),
    Services(BTreeMap<String, Vec<String>>),
    ServiceNodes(Vec<ServiceNode>),
    NodeServices(Option<NodeServices>),
    CheckServiceNodes(Vec<CheckServiceNode>),
    Checks(Vec<HealthCheck>),
    Snapshot(Box<super::StoreSnapshot>),
}

/// Runs `q`, registering `waiter` on every row it reads. Returns the index
/// that a blocking query compares with the client's `?index`.
pub fn execute(store: &mut StateStore, q: &Query, waiter: Option<&Waiter>) -> (u64, QueryResult) {
    match q {
        Query::KvGet { key } => {
            let (i, e) = store.kv_get(key, waiter);
            (i, QueryResult::Entry(e))
        }
        Query::KvList { prefix } => {
            let (i, e) = store.kv_list(prefix, waiter);
            (i, QueryResult::Entries(e))
        }
        Query::KvKeys { prefix, separator } => {
            let (i, k) = store.kv_keys(prefix, separator.as_deref(), waiter);
            (i, QueryResult::Keys(k))
        }
        Query::CatalogNodes => {
            let (i, n) = store.catalog_nodes(waiter);
            (i, QueryResult::Nodes(n))
        }
        Query::CatalogServices => {
            let (i, s) = store.catalog_services(waiter);
            (i, QueryResult::Services(s))
        }
        Query::CatalogService { name, tags } => {
            let (i, s) = store.catalog_service(name, tags, waiter);
            (i, QueryResult::ServiceNodes(s))
        }
        Query::CatalogNode { node } => {
            let (i, n) = store.catalog_node(node, waiter);
            (i, QueryResult::NodeServices(n))
        }
        Query::HealthService {
            name,
            tags,
            passing,
        } => {
            let (i, s) = store.health_service(name, tags, *passing, waiter);
            (i, QueryResult::CheckServiceNodes(s))
        }
        Query::HealthNode { node } => {
            let (i, c) = store.health_node(node, waiter);
            (i, QueryResult::Checks(c))
        }
        Query::HealthChecks { service } => {
            let (i, c) = store.health_checks(service, waiter);
            (i, QueryResult::Checks(c))
        }
        Query::HealthState { state } => {
            let (i, c) = store.health_state(*state, waiter);
            (i, QueryResult::Checks(c))
        }
        Query::SessionInfo { id } => {
            let (i, s) = store.session_get(id, waiter);
            (i, QueryResult::Sessions(s.into_iter().collect()))
        }
        Query::SessionList { node } => {
            let (i, s) = store.session_list(node.as_deref(), waiter);
            (i, QueryResult::Sessions(s))
        }
        Query::Snapshot => (
            store.last_index(),
            QueryResult::Snapshot(Box::new(store.snapshot())),
        ),
    }
}
