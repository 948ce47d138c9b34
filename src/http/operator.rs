//! `/v1/operator/raft/configuration`: the Raft servers, named from the
//! catalog (each server registers the `consul` service on its RPC port).

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use super::params::{json as json_resp, Params};
use super::ApiState;
use crate::rpc::{Consistency, QueryOptions, RequestError};
use crate::state::query::{Query, QueryResult};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(super::endpoint(
        "/v1/operator/raft/configuration",
        "GET",
        web::get().to(configuration),
    ));
}

async fn configuration(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let raft = super::status::raft_status(&req, &state).await?;
    if raft.leader_addr.is_none() && !p.has("stale") {
        return Err(RequestError::NoLeader.into());
    }
    let opts = QueryOptions {
        consistency: Consistency::Stale,
        ..Default::default()
    };
    let servers = match state
        .read(
            opts,
            Query::CatalogService {
                name: "consul".into(),
                tags: vec![],
            },
        )
        .await?
        .result
    {
        QueryResult::ServiceNodes(n) => n,
        _ => Vec::new(),
    };
    let named = |addr: &str| {
        servers.iter().find(|s| {
            format!(
                "{}:{}",
                if s.service_address.is_empty() {
                    &s.address
                } else {
                    &s.service_address
                },
                s.service_port
            ) == addr
        })
    };
    let list: Vec<serde_json::Value> = raft
        .servers
        .iter()
        .map(|s| {
            let node = named(&s.addr);
            json!({
                "ID": node.map(|n| n.id.clone()).unwrap_or_else(|| s.id.to_string()),
                "Node": node.map(|n| n.node.clone()).unwrap_or_default(),
                "Address": s.addr,
                "Leader": s.leader,
                "Voter": s.voter,
                "ProtocolVersion": "3",
                "LastIndex": s.last_index.unwrap_or(0),
            })
        })
        .collect();
    Ok(json_resp(
        &req,
        &json!({ "Servers": list, "Index": raft.applied_index }),
    ))
}
