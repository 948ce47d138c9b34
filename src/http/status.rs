//! `/v1/status/leader` and `/v1/status/peers`, for any datacenter (`?dc=`).

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};

use super::error::ApiError;
use super::params::{json, Params};
use super::routes::{get, Decision::Open, Route};
use super::ApiState;

pub fn routes() -> Vec<Route> {
    vec![
        get("/v1/status/leader", Open, |r| r.to(leader)),
        get("/v1/status/peers", Open, |r| r.to(peers)),
    ]
}

async fn leader(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let s = state.status(Params::from(&req)?.dc(), false).await?;
    Ok(json(&req, &s.leader_addr.unwrap_or_default()))
}

async fn peers(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let s = state.status(Params::from(&req)?.dc(), false).await?;
    Ok(json(&req, &s.peers))
}
