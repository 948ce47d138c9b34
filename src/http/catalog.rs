//! `/v1/catalog/*`: register, deregister, datacenters, nodes, services,
//! service/<name> (with `tag`), node/<node>.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};

use super::error::ApiError;
use super::fan_out::per_dc;
use super::params::{decode, json, json_with, read_body, read_response, Params};
use super::routes::{get, put, Decision::*, Route};
use super::ApiState;
use crate::filter::{schema, Filter, Schema};
use crate::state::command::Command;
use crate::state::query::{Query, QueryResult};
use crate::state::structs::{DeregisterRequest, NodeService, RegisterRequest, ServiceNode};
use crate::structs::ReadResponse;

/// Request bodies beyond this are refused (Consul's txn/kv limits are 512 KiB).
pub(crate) const MAX_BODY: usize = 512 * 1024;

pub fn routes() -> Vec<Route> {
    vec![
        put("/v1/catalog/register", RequestPath, |r| r.to(register)),
        put("/v1/catalog/deregister", RequestPath, |r| r.to(deregister)),
        get("/v1/catalog/datacenters", Open, |r| r.to(datacenters)),
        get("/v1/catalog/nodes", RequestPathFiltered, |r| r.to(nodes)),
        get("/v1/catalog/services", RequestPathFiltered, |r| {
            r.to(services)
        }),
        get("/v1/catalog/service/{name}", RequestPathFiltered, |r| {
            r.to(service)
        }),
        get("/v1/catalog/node/{node}", RequestPathFiltered, |r| {
            r.to(node)
        }),
        get(
            "/v1/catalog/node-services/{node}",
            RequestPathFiltered,
            |r| r.to(node_services),
        ),
    ]
}

/// Encodes a read's result with its headers.
pub(crate) fn answer(req: &HttpRequest, resp: ReadResponse) -> Result<HttpResponse, ApiError> {
    let b = read_response(StatusCode::OK, &resp.meta);
    Ok(match resp.result {
        QueryResult::Nodes(v) => json_with(b, req, &v),
        QueryResult::Services(v) => json_with(b, req, &v),
        QueryResult::ServiceList(v) => json_with(b, req, &by_name(v)),
        QueryResult::ServiceNodes(v) => json_with(b, req, &v),
        QueryResult::NodeServices(v) => json_with(b, req, &v),
        QueryResult::CheckServiceNodes(v) => json_with(b, req, &v),
        // No route asks DNS's read; encoded all the same, not refused.
        QueryResult::DnsInstances { instances, .. } => json_with(b, req, &instances),
        QueryResult::Checks(v) => json_with(b, req, &v),
        QueryResult::Entries(v) => json_with(b, req, &v),
        QueryResult::Keys(v) => json_with(b, req, &v),
        QueryResult::KvChanges(v) => json_with(b, req, &v),
        QueryResult::Entry(v) => json_with(b, req, &v),
        QueryResult::Sessions(v) => json_with(b, req, &v),
        QueryResult::Snapshot(v) => json_with(b, req, &v),
        QueryResult::AclToken(v) => json_with(b, req, &v),
        QueryResult::AclTokens(v) => json_with(b, req, &v),
        QueryResult::AclPolicy(v) => json_with(b, req, &v),
        QueryResult::AclPolicies(v) => json_with(b, req, &v),
        QueryResult::AclRole(v) => json_with(b, req, &v),
        QueryResult::AclRoles(v) => json_with(b, req, &v),
        QueryResult::AclBootstrap(v) => json_with(b, req, &v),
        QueryResult::AclResolved(v) => json_with(b, req, &v),
        QueryResult::AclPolicyBatch(v) => json_with(b, req, &v),
        QueryResult::AclTokenBatch(v) => json_with(b, req, &v),
        QueryResult::PreparedQueries(v) => json_with(b, req, &v),
        QueryResult::PreparedQuery(v) => json_with(b, req, &v.into_iter().collect::<Vec<_>>()),
        QueryResult::PreparedQueryExecuted(v) => {
            json_with(b, req, &v.as_deref().map(|r| r.response()))
        }
        QueryResult::Coordinates(v) => json_with(b, req, &v),
    })
}

/// A read of `query` with the request's options, filter and `?peer=`;
/// with `?dc=*`, of every datacenter (`fan_out.rs`).
pub(crate) async fn serve(
    req: &HttpRequest,
    state: &ApiState,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    per_dc(req, state, |p| serve_with(req, state, p, query.clone())).await
}

async fn serve_with(
    req: &HttpRequest,
    state: &ApiState,
    p: Params,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let filter = match schema_of(&query) {
        Some(schema) => p.filter(schema)?,
        None => None,
    };
    let opts = p.query_options(&state.config)?;
    let mut resp = state.read(opts, query).await?;
    if let Some(f) = &filter {
        apply_filter(&mut resp.result, f);
    }
    no_peer_entries(&p, &mut resp.result);
    answer(req, resp)
}

/// The element type `?filter=` applies to for each read that takes one
/// (Consul's list endpoints).
pub(crate) fn schema_of(query: &Query) -> Option<&'static Schema> {
    Some(match query {
        Query::CatalogNodes => &schema::NODE,
        Query::CatalogServices | Query::CatalogServiceList | Query::CatalogService { .. } => {
            &schema::SERVICE_NODE
        }
        Query::CatalogNode { .. } => &schema::NODE_SERVICE,
        Query::HealthService { .. } => &schema::CHECK_SERVICE_NODE,
        Query::HealthNode { .. } | Query::HealthChecks { .. } | Query::HealthState { .. } => {
            &schema::HEALTH_CHECK
        }
        _ => return None,
    })
}

/// Keeps the elements `f` matches. It runs after the ACL filter (the read
/// has been through it) and leaves the index alone: a blocking client
/// wakes on the same changes, filtered or not, as in Consul.
pub(crate) fn apply_filter(result: &mut QueryResult, f: &Filter) {
    match result {
        QueryResult::Nodes(v) => f.retain(v),
        QueryResult::ServiceNodes(v) | QueryResult::ServiceList(v) => f.retain(v),
        QueryResult::CheckServiceNodes(v) => f.retain(v),
        QueryResult::Checks(v) => f.retain(v),
        QueryResult::NodeServices(Some(ns)) => ns.services.retain(|_, s| f.keeps(s)),
        _ => {}
    }
}

/// `?peer=`: entries imported from a cluster peer. Meridian has no
/// peerings, so a named peer has none (the headers are the local read's,
/// as Consul's are for a peer it knows nothing of yet).
pub(crate) fn no_peer_entries(p: &Params, result: &mut QueryResult) {
    if p.get("peer").is_none_or(|peer| peer.is_empty()) {
        return;
    }
    match result {
        QueryResult::Nodes(v) => v.clear(),
        QueryResult::Services(v) => v.clear(),
        QueryResult::ServiceNodes(v) => v.clear(),
        QueryResult::NodeServices(v) => *v = None,
        QueryResult::CheckServiceNodes(v) => v.clear(),
        QueryResult::Checks(v) => v.clear(),
        _ => {}
    }
}

/// `/v1/catalog/services`' shape: each name with the union of its
/// instances' tags, sorted.
fn by_name(rows: Vec<ServiceNode>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rows {
        out.entry(r.service_name)
            .or_default()
            .extend(r.service_tags);
    }
    out.into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect()
}

async fn register(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let body = read_body(&req, payload, MAX_BODY).await?;
    let mut r: RegisterRequest = decode(&body)?;
    if r.node.is_empty() {
        return Err(ApiError::bad_request("Missing node name"));
    }
    if r.address.is_empty() && !r.skip_node_update {
        return Err(ApiError::bad_request("Missing node address"));
    }
    if let Some(s) = &mut r.service {
        if s.service.is_empty() {
            return Err(ApiError::bad_request("Missing service name"));
        }
        if s.id.is_empty() {
            s.id = s.service.clone();
        }
    }
    // The node lands in `?dc=`, else the body's `Datacenter`, else this
    // one, and its row says where it landed.
    let dc = p
        .dc()
        .or_else(|| (!r.datacenter.is_empty()).then(|| r.datacenter.clone()))
        .unwrap_or_else(|| state.config.datacenter.clone());
    r.datacenter = dc.clone();
    let resp = state
        .write(Some(dc), p.token(), Command::Register(r))
        .await?;
    super::kv::bool_response(&req, resp.result)
}

async fn deregister(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let body = read_body(&req, payload, MAX_BODY).await?;
    let r: DeregisterRequest = decode(&body)?;
    if r.node.is_empty() {
        return Err(ApiError::bad_request("Missing node name"));
    }
    let dc = p
        .dc()
        .or_else(|| (!r.datacenter.is_empty()).then(|| r.datacenter.clone()));
    let resp = state.write(dc, p.token(), Command::Deregister(r)).await?;
    super::kv::bool_response(&req, resp.result)
}

/// Every known datacenter, nearest first (this one first).
async fn datacenters(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let dcs = state.router.datacenters().await?;
    Ok(json(&req, &dcs))
}

async fn nodes(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    serve(&req, &state, Query::CatalogNodes).await
}

/// With `?filter=`, the instances are filtered before they are grouped by
/// name (a name stays if any instance matches), as Consul does.
async fn services(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    // The parameters parsed once, by `per_dc`, and the query chosen from
    // them (the same for every datacenter of a `?dc=*` read).
    per_dc(&req, &state, |p| {
        let query = if p.get("filter").is_some_and(|f| !f.is_empty()) {
            Query::CatalogServiceList
        } else {
            Query::CatalogServices
        };
        serve_with(&req, &state, p, query)
    })
    .await
}

async fn service(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tags = Params::from(&req)?.all("tag");
    serve(
        &req,
        &state,
        Query::CatalogService {
            name: name.into_inner(),
            tags,
        },
    )
    .await
}

async fn node(
    req: HttpRequest,
    state: web::Data<ApiState>,
    node: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve(
        &req,
        &state,
        Query::CatalogNode {
            node: node.into_inner(),
        },
    )
    .await
}

/// Consul's `/v1/catalog/node-services/<node>` (1.7+): the node's services
/// as a list rather than a map by ID; `?filter=` applies to the services.
/// An unknown node is `"Node": null` with no services, as in Consul.
async fn node_services(
    req: HttpRequest,
    state: web::Data<ApiState>,
    node: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let node = node.into_inner();
    per_dc(&req, &state, |p| {
        node_services_with(&req, &state, p, node.clone())
    })
    .await
}

async fn node_services_with(
    req: &HttpRequest,
    state: &ApiState,
    p: Params,
    node: String,
) -> Result<HttpResponse, ApiError> {
    let filter = p.filter(&schema::NODE_SERVICE)?;
    let opts = p.query_options(&state.config)?;
    let query = Query::CatalogNode { node };
    let mut resp = state.read(opts, query).await?;
    no_peer_entries(&p, &mut resp.result);
    let b = read_response(StatusCode::OK, &resp.meta);
    let body = match resp.result {
        QueryResult::NodeServices(Some(ns)) => {
            let mut services: Vec<NodeService> = ns.services.into_values().collect();
            if let Some(f) = &filter {
                f.retain(&mut services);
            }
            serde_json::json!({"Node": ns.node, "Services": services})
        }
        _ => serde_json::json!({"Node": null, "Services": []}),
    };
    Ok(json_with(b, req, &body))
}
