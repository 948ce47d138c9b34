//! `/v1/operator/raft/configuration`: the Raft servers, named from the
//! catalog (each server registers the `consul` service on its RPC port).

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use super::params::{json as json_resp, Params};
use super::routes::{delete, get, Decision::*, Need, Route};
use super::ApiState;
use crate::acl::{Access, Resource};
use crate::state::query::{Query, QueryResult};
use crate::structs::rpc::{Hop, PeerRef, RemovePeerArgs};
use crate::structs::{Consistency, QueryOptions, RequestError};

pub fn routes() -> Vec<Route> {
    vec![
        get(
            "/v1/operator/raft/configuration",
            Agent(Need::global(Resource::Operator, Access::Read)),
            |r| r.to(configuration),
        ),
        delete("/v1/operator/raft/peer", RequestPath, |r| r.to(remove_peer)),
    ]
}

/// The one of `?id=` and `?address=` a removal names.
pub(crate) fn peer_ref(p: &Params) -> Result<PeerRef, ApiError> {
    match (p.get("id"), p.get("address")) {
        (Some(id), None) if !id.is_empty() => Ok(PeerRef::Id(id.to_string())),
        (None, Some(a)) if !a.is_empty() => Ok(PeerRef::Address(a.to_string())),
        _ => Err(ApiError::bad_request(
            "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove",
        )),
    }
}

/// `DELETE /v1/operator/raft/peer?id=|address=`: served by the leader
/// of the datacenter (`?dc=`).
async fn remove_peer(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let which = peer_ref(&p)?;
    let args = RemovePeerArgs {
        dc: p.dc(),
        peer: which,
        token: state.router.token_or_default(p.token()),
    };
    state.router.remove_peer(args, Hop::Route).await?;
    Ok(HttpResponse::Ok().finish())
}

async fn configuration(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let raft = state.status(p.dc(), !p.has("stale")).await?;
    if raft.leader_addr.is_none() && !p.has("stale") {
        return Err(RequestError::NoLeader.into());
    }
    let opts = QueryOptions {
        dc: p.dc(),
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
