//! Reads: one [`Query`] per read endpoint, answered by [`execute`] against
//! the state store with the index that covers exactly what was read.
//!
//! Queries are plain data so that the request path can run them locally,
//! on the leader, or (later) in another datacenter without change.

pub use crate::structs::query::{Query, QueryResult};

use super::watch::Waiter;
use super::StateStore;

/// Runs `q`, registering `waiter` on every row it reads. Returns the index
/// that a blocking query compares with the client's `?index`.
pub fn execute(store: &StateStore, q: &Query, waiter: Option<&Waiter>) -> (u64, QueryResult) {
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
