//! `/v1/health/*`: service/<name> (`passing`, `tag`, `node-meta`, `near`),
//! node/<node>, checks/<service>, state/<state>, over the stored check
//! statuses.

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};

use super::catalog::{answer, serve};
use super::error::ApiError;
use super::fan_out::per_dc;
use super::params::Params;
use super::routes::{get, Decision::*, Route};
use super::ApiState;
use crate::filter::schema;
use crate::state::query::{Query, QueryResult};
use crate::state::structs::HealthStatus;

pub fn routes() -> Vec<Route> {
    vec![
        get("/v1/health/service/{name}", RequestPathFiltered, |r| {
            r.to(service)
        }),
        get("/v1/health/node/{node}", RequestPathFiltered, |r| {
            r.to(node)
        }),
        get("/v1/health/checks/{service}", RequestPathFiltered, |r| {
            r.to(checks)
        }),
        get("/v1/health/state/{state}", RequestPathFiltered, |r| {
            r.to(state_)
        }),
    ]
}

/// `/v1/health/service/<name>`'s query string: the read, and the
/// `node-meta` it applies to the answer (`near` travels in the read's
/// options and is applied where the coordinates are).
pub(crate) struct ServiceArgs {
    pub query: Query,
    pub meta: Vec<(String, String)>,
}

pub(crate) fn service_args(p: &Params, name: String) -> ServiceArgs {
    let query = Query::HealthService {
        name,
        tags: p.all("tag"),
        passing: p.has("passing"),
    };
    // `node-meta=key:value`, repeatable: every pair must match.
    let meta = p
        .all("node-meta")
        .into_iter()
        .map(|kv| match kv.split_once(':') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv, String::new()),
        })
        .collect();
    ServiceArgs { query, meta }
}

async fn service(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    per_dc(&req, &state, |p| {
        service_with(&req, &state, p, name.clone())
    })
    .await
}

async fn service_with(
    req: &HttpRequest,
    state: &ApiState,
    p: Params,
    name: String,
) -> Result<HttpResponse, ApiError> {
    let ServiceArgs { query: q, meta } = service_args(&p, name);
    let filter = p.filter(&schema::CHECK_SERVICE_NODE)?;
    let opts = p.query_options(&state.config)?;
    let mut resp = state.read(opts, q).await?;
    super::catalog::no_peer_entries(&p, &mut resp.result);
    if let QueryResult::CheckServiceNodes(list) = &mut resp.result {
        list.retain(|c| meta.iter().all(|(k, v)| c.node.meta.get(k) == Some(v)));
        if let Some(f) = &filter {
            f.retain(list);
        }
    }
    answer(req, resp)
}

async fn node(
    req: HttpRequest,
    state: web::Data<ApiState>,
    node: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve(
        &req,
        &state,
        Query::HealthNode {
            node: node.into_inner(),
        },
    )
    .await
}

async fn checks(
    req: HttpRequest,
    state: web::Data<ApiState>,
    svc: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve(
        &req,
        &state,
        Query::HealthChecks {
            service: svc.into_inner(),
        },
    )
    .await
}

async fn state_(
    req: HttpRequest,
    state: web::Data<ApiState>,
    s: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let st = HealthStatus::parse(&s)
        .ok_or_else(|| ApiError::bad_request(format!("Invalid state: {s}")))?;
    serve(&req, &state, Query::HealthState { state: st }).await
}
