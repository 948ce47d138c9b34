//! `/v1/catalog/*`: register, deregister, datacenters, nodes, services,
//! service/<name> (with `tag`), node/<node>.

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};

use super::error::ApiError;
use super::params::{decode, json, json_with, read_body, read_response, Params};
use super::routes::{get, put, Decision::*, Route};
use super::ApiState;
use crate::state::command::Command;
use crate::state::query::{Query, QueryResult};
use crate::state::structs::{DeregisterRequest, RegisterRequest};
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
    ]
}

/// Encodes a read's result with its headers.
pub(crate) fn answer(req: &HttpRequest, resp: ReadResponse) -> Result<HttpResponse, ApiError> {
    let b = read_response(StatusCode::OK, &resp.meta);
    Ok(match resp.result {
        QueryResult::Nodes(v) => json_with(b, req, &v),
        QueryResult::Services(v) => json_with(b, req, &v),
        QueryResult::ServiceNodes(v) => json_with(b, req, &v),
        QueryResult::NodeServices(v) => json_with(b, req, &v),
        QueryResult::CheckServiceNodes(v) => json_with(b, req, &v),
        QueryResult::Checks(v) => json_with(b, req, &v),
        QueryResult::Entries(v) => json_with(b, req, &v),
        QueryResult::Keys(v) => json_with(b, req, &v),
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
    })
}

pub(crate) async fn serve(
    req: &HttpRequest,
    state: &ApiState,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(req)?;
    let opts = p.query_options(&state.config)?;
    answer(req, state.read(opts, query).await?)
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

async fn services(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    serve(&req, &state, Query::CatalogServices).await
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
