//! `/v1/status/leader` and `/v1/status/peers`.

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};

use super::error::ApiError;
use super::params::{json, Params};
use super::ApiState;
use crate::actors::node::ServerStatus;
use crate::rpc::RequestError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(super::endpoint(
        "/v1/status/leader",
        "GET",
        web::get().to(leader),
    ))
    .service(super::endpoint(
        "/v1/status/peers",
        "GET",
        web::get().to(peers),
    ));
}

/// This server's Raft view, for a request about its own datacenter.
pub(crate) async fn raft_status(
    req: &HttpRequest,
    state: &ApiState,
) -> Result<crate::actors::raft::RaftStatus, ApiError> {
    own_or_leader_status(req, state, false).await
}

/// With `leader`, the leader's view (as Consul forwards operator reads).
pub(crate) async fn own_or_leader_status(
    req: &HttpRequest,
    state: &ApiState,
    leader: bool,
) -> Result<crate::actors::raft::RaftStatus, ApiError> {
    if let Some(dc) = Params::from(req)?.dc() {
        if dc != state.config.datacenter {
            return Err(RequestError::NoPathToDatacenter.into());
        }
    }
    Ok(state
        .node
        .send(ServerStatus { leader })
        .await
        .map_err(|_| RequestError::ShuttingDown)??)
}

async fn leader(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let s = raft_status(&req, &state).await?;
    Ok(json(&req, &s.leader_addr.unwrap_or_default()))
}

async fn peers(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let s = raft_status(&req, &state).await?;
    Ok(json(&req, &s.peers))
}
