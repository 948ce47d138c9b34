//! `/v1/health/*`: service/<name> (`passing`, `tag`), node/<node>,
//! checks/<service>, state/<state>, over the stored check statuses.

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};

use super::catalog::serve;
use super::error::ApiError;
use super::params::Params;
use super::ApiState;
use crate::state::query::Query;
use crate::state::structs::HealthStatus;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(super::endpoint(
        "/v1/health/service/{name}",
        "GET",
        web::get().to(service),
    ))
    .service(super::endpoint(
        "/v1/health/node/{node}",
        "GET",
        web::get().to(node),
    ))
    .service(super::endpoint(
        "/v1/health/checks/{service}",
        "GET",
        web::get().to(checks),
    ))
    .service(super::endpoint(
        "/v1/health/state/{state}",
        "GET",
        web::get().to(state_),
    ));
}

async fn service(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let q = Query::HealthService {
        name: name.into_inner(),
        tags: p.all("tag"),
        passing: p.has("passing"),
    };
    serve(&req, &state, q).await
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
