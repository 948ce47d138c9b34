//! The service-mesh reads (`/v1/catalog/connect/<s>`,
//! `/v1/health/connect/<s>`, `/v1/health/ingress/<s>`) answered as a
//! Consul without Connect answers them. Meridian keeps no Connect-native
//! services, no sidecar proxies' destinations and no ingress gateways, so
//! no instance can serve `<s>` over the mesh: the answer is an empty list.
//! It still comes from a real read of `<s>` in the catalog, so that its
//! index headers, `?index=` blocking and the ACL decision are those of
//! the service's own endpoint, as clients (Nomad, Envoy bootstraps,
//! consul-template) that poll these endpoints expect.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::params::{json_with, read_response, Params};
use super::routes::{get, Decision::*, Route};
use super::ApiState;
use crate::structs::query::Query;

pub fn routes() -> Vec<Route> {
    vec![
        get("/v1/catalog/connect/{service}", RequestPathFiltered, |r| {
            r.to(catalog_connect)
        }),
        get("/v1/health/connect/{service}", RequestPathFiltered, |r| {
            r.to(health_connect)
        }),
        get("/v1/health/ingress/{service}", RequestPathFiltered, |r| {
            r.to(health_ingress)
        }),
    ]
}

/// Reads `query` for its headers and answers no instance.
async fn none_over_the_mesh(
    req: &HttpRequest,
    state: &ApiState,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(req)?;
    let resp = state.read(p.query_options(&state.config)?, query).await?;
    let none: Vec<serde_json::Value> = Vec::new();
    Ok(json_with(
        read_response(StatusCode::OK, &resp.meta),
        req,
        &none,
    ))
}

async fn catalog_connect(
    req: HttpRequest,
    state: web::Data<ApiState>,
    service: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tags = Params::from(&req)?.all("tag");
    let name = service.into_inner();
    none_over_the_mesh(&req, &state, Query::CatalogService { name, tags }).await
}

async fn health_connect(
    req: HttpRequest,
    state: web::Data<ApiState>,
    service: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    health_read(req, state, service.into_inner()).await
}

async fn health_ingress(
    req: HttpRequest,
    state: web::Data<ApiState>,
    service: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    health_read(req, state, service.into_inner()).await
}

async fn health_read(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: String,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let query = Query::HealthService {
        name,
        tags: p.all("tag"),
        passing: p.has("passing"),
    };
    none_over_the_mesh(&req, &state, query).await
}
