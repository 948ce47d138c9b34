//! The checks the agent's own handlers make against what a request names
//! (Consul's `vetServiceRegister`, `vetServiceUpdate`, `vetCheckUpdate`
//! and the list filters of `agent_endpoint.go`), with the authorizer
//! [`crate::actors::node::Router::access`] gives on servers and client
//! agents alike. Unknown services and checks are 404 before any check, as
//! in Consul.

use actix_web::{HttpRequest, HttpResponseBuilder};

use super::error::ApiError;
use super::params::Params;
use super::ApiState;
use crate::acl::{Access as Perm, Resource};
use crate::actors::node::{Access, GetLocalState, LocalState};
use crate::structs::catalog::HealthCheck;

/// The caller's authorizer (its token, else the agent's default, else
/// anonymous).
pub(super) async fn access(req: &HttpRequest, state: &ApiState) -> Result<Access, ApiError> {
    let token = Params::from(req)?.token();
    Ok(state.router.access(token).await?)
}

pub(super) async fn local_state(state: &ApiState) -> Result<LocalState, ApiError> {
    state.ask(GetLocalState).await
}

/// `service:<access>` on the service registered here as `id`.
pub(super) async fn on_service(
    state: &ApiState,
    a: &Access,
    id: &str,
    access: Perm,
) -> Result<(), ApiError> {
    let local = local_state(state).await?;
    let s = local.services.get(id).ok_or_else(|| {
        ApiError::not_found(format!(
            "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
        ))
    })?;
    Ok(a.require(Resource::Service, access, &s.service)?)
}

/// What reading or writing a check needs: `service:<access>` of its
/// service, else `node:<access>` on this node.
pub(super) fn on_check(
    state: &ApiState,
    a: &Access,
    check: &HealthCheck,
    access: Perm,
) -> Result<(), ApiError> {
    let r = if check.service_name.is_empty() {
        a.require(Resource::Node, access, &state.config.node_name)
    } else {
        a.require(Resource::Service, access, &check.service_name)
    };
    Ok(r?)
}

/// `vetCheckUpdate`: writing the check registered here as `id`.
pub(super) async fn on_check_id(state: &ApiState, a: &Access, id: &str) -> Result<(), ApiError> {
    let local = local_state(state).await?;
    let c = local
        .checks
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("Unknown check ID {id:?}")))?;
    on_check(state, a, c, Perm::Write)
}

/// Writing a new check for `service_id` (empty: a node check): the
/// service must exist here, else 400 with Consul's text.
pub(super) async fn on_new_check(
    state: &ApiState,
    a: &Access,
    service_id: &str,
) -> Result<(), ApiError> {
    if service_id.is_empty() {
        return Ok(a.require(Resource::Node, Perm::Write, &state.config.node_name)?);
    }
    let local = local_state(state).await?;
    let s = local
        .services
        .get(service_id)
        .ok_or_else(|| ApiError::bad_request(format!("ServiceID {service_id:?} does not exist")))?;
    Ok(a.require(Resource::Service, Perm::Write, &s.service)?)
}

/// `X-Consul-Results-Filtered-By-ACLs: true` when a list lost entries.
pub(super) fn filtered_header(b: &mut HttpResponseBuilder, filtered: bool) {
    if filtered {
        b.insert_header(("X-Consul-Results-Filtered-By-ACLs", "true"));
    }
}
