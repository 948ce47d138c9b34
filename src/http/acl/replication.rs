//! `GET /v1/acl/replication`: the ACL replication status of a datacenter,
//! as its leader keeps it. Consul requires no permission for it beyond
//! ACLs being on.

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};

use super::require_enabled;
use crate::http::error::ApiError;
use crate::http::params::{json, Params};
use crate::http::routes::{get, Decision, Route};
use crate::http::ApiState;
use crate::structs::rpc::{AclReplicationArgs, Hop};

pub fn routes() -> Vec<Route> {
    vec![get("/v1/acl/replication", Decision::Open, |r| r.to(status))]
}

async fn status(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let p = Params::from(&req)?;
    let args = AclReplicationArgs { dc: p.dc() };
    let status = state.router.acl_replication(args, Hop::Route).await?;
    Ok(json(&req, &status))
}
