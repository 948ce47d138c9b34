//! `/v1/health/*`: service/<name> (`passing`, `tag`, `node-meta`, `near`),
//! node/<node>, checks/<service>, state/<state>, over the stored check
//! statuses.

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};

use super::catalog::{answer, serve};
use super::error::ApiError;
use super::params::Params;
use super::routes::{get, Decision::*, Route};
use super::ApiState;
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
/// `node-meta` and `near` it applies to the answer.
pub(crate) struct ServiceArgs {
    pub query: Query,
    pub meta: Vec<(String, String)>,
    pub near: Option<String>,
}

pub(crate) fn service_args(p: &Params, name: String, agent_node: &str) -> ServiceArgs {
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
    // Without network coordinates, `near` can only tell the named node
    // (or this agent's, for `_agent`) from the rest: it comes first.
    let near = p.get("near").map(|n| {
        if n == "_agent" {
            agent_node.to_string()
        } else {
            n.to_string()
        }
    });
    ServiceArgs { query, meta, near }
}

async fn service(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let ServiceArgs {
        query: q,
        meta,
        near,
    } = service_args(&p, name.into_inner(), &state.config.node_name);
    let opts = p.query_options(&state.config)?;
    let mut resp = state.read(opts, q).await?;
    if let QueryResult::CheckServiceNodes(list) = &mut resp.result {
        list.retain(|c| meta.iter().all(|(k, v)| c.node.meta.get(k) == Some(v)));
        if let Some(n) = near {
            list.sort_by_key(|c| c.node.node != n);
        }
    }
    answer(&req, resp)
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
