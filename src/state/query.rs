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
        Query::KvChanges { prefix, since } => {
            let (i, c) = store.kv_changes(prefix, *since, waiter);
            (i, QueryResult::KvChanges(c))
        }
        Query::CatalogNodes => {
            let (i, n) = store.catalog_nodes(waiter);
            (i, QueryResult::Nodes(n))
        }
        Query::CatalogServices => {
            let (i, s) = store.catalog_services(waiter);
            (i, QueryResult::Services(s))
        }
        Query::CatalogServiceList => {
            let (i, s) = store.catalog_service_list(waiter);
            (i, QueryResult::ServiceList(s))
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
        Query::DnsService {
            name,
            tags,
            only_passing,
        } => {
            let (i, instances) = store.dns_service(name, tags, *only_passing, waiter);
            (
                i,
                QueryResult::DnsInstances {
                    service: name.clone(),
                    instances,
                },
            )
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
        Query::AclTokenRead { accessor_id } => {
            let (i, t) = store.acl_token_get(accessor_id, waiter);
            (i, QueryResult::AclToken(t.map(Box::new)))
        }
        Query::AclTokenBySecret { secret_id } => {
            let (i, t) = store.acl_token_get_by_secret(secret_id, waiter);
            (i, QueryResult::AclToken(t.map(Box::new)))
        }
        Query::AclTokenList {
            policy,
            role,
            service_name,
        } => {
            let (i, t) = store.acl_token_list(
                policy.as_deref(),
                role.as_deref(),
                service_name.as_deref(),
                waiter,
            );
            (i, QueryResult::AclTokens(t))
        }
        Query::AclPolicyRead { id } => {
            let (i, p) = store.acl_policy_get(id, waiter);
            (i, QueryResult::AclPolicy(p.map(Box::new)))
        }
        Query::AclPolicyByName { name } => {
            let (i, p) = store.acl_policy_get_by_name(name, waiter);
            (i, QueryResult::AclPolicy(p.map(Box::new)))
        }
        Query::AclPolicyList => {
            let (i, p) = store.acl_policy_list(waiter);
            (i, QueryResult::AclPolicies(p))
        }
        Query::AclRoleRead { id } => {
            let (i, r) = store.acl_role_get(id, waiter);
            (i, QueryResult::AclRole(r.map(Box::new)))
        }
        Query::AclRoleByName { name } => {
            let (i, r) = store.acl_role_get_by_name(name, waiter);
            (i, QueryResult::AclRole(r.map(Box::new)))
        }
        Query::AclRoleList { policy } => {
            let (i, r) = store.acl_role_list(policy.as_deref(), waiter);
            (i, QueryResult::AclRoles(r))
        }
        Query::AclBootstrapState => {
            let (i, b) = store.acl_bootstrap_state(waiter);
            (i, QueryResult::AclBootstrap(b))
        }
        Query::AclResolve { secret, now } => {
            let (i, r) = store.acl_resolve(secret, *now, waiter);
            (i, QueryResult::AclResolved(r.map(Box::new)))
        }
        Query::AclPolicyBatch { ids } => {
            let (i, p) = store.acl_policy_batch(ids, waiter);
            (i, QueryResult::AclPolicyBatch(p))
        }
        Query::AclTokenBatch { accessor_ids } => {
            let (i, t) = store.acl_token_batch(accessor_ids, waiter);
            (i, QueryResult::AclTokenBatch(t))
        }
        Query::PreparedQueryGet { id } => {
            let (i, q) = store.prepared_query_get(id, waiter);
            (i, QueryResult::PreparedQuery(q.map(Box::new)))
        }
        Query::PreparedQueryList => {
            let (i, q) = store.prepared_query_list(waiter);
            (i, QueryResult::PreparedQueries(q))
        }
        Query::PreparedQueryExplain { id_or_name } => {
            let (i, _) = store.prepared_query_list(waiter);
            let q = store.prepared_query_resolve(id_or_name, "");
            (i, QueryResult::PreparedQuery(q.map(Box::new)))
        }
        Query::PreparedQueryExecute { id_or_name, opts } => {
            match store.prepared_query_resolve(id_or_name, &opts.segment) {
                Some(q) => run_prepared(store, q, opts, waiter),
                None => (
                    store.table_index(super::T_PREPARED_QUERIES).max(1),
                    QueryResult::PreparedQueryExecuted(None),
                ),
            }
        }
        Query::PreparedQueryExecuteRemote { query, opts } => {
            run_prepared(store, (**query).clone(), opts, waiter)
        }
        Query::CoordinateNodes => {
            let (i, c) = store.coordinates(waiter);
            (i, QueryResult::Coordinates(c))
        }
        Query::CoordinateNode { node } => {
            let (i, c) = store.coordinate_node(node, waiter);
            (i, QueryResult::Coordinates(c))
        }
    }
}

fn run_prepared(
    store: &StateStore,
    query: crate::structs::prepared_query::PreparedQuery,
    opts: &crate::structs::prepared_query::ExecuteOptions,
    waiter: Option<&Waiter>,
) -> (u64, QueryResult) {
    let (i, nodes) = store.prepared_query_run(&query, opts, waiter);
    let result = crate::structs::prepared_query::ExecuteResult {
        query,
        nodes,
        ..Default::default()
    };
    (
        i,
        QueryResult::PreparedQueryExecuted(Some(Box::new(result))),
    )
}
