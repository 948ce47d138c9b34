//! The agent's check endpoints: register and deregister checks, TTL
//! updates, maintenance mode, and the local health of a service with
//! Consul's status codes (`/v1/agent/health/service/...`).

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::agent::CheckRegistration;
use super::agent_authz as authz;
use super::error::ApiError;
use super::params::{decode, read_body, Params};
use super::routes::{get, put, Decision::*, Need, Route};
use super::ApiState;
use crate::acl::{Access, Resource};
use crate::actors::node::{
    script_checks_allowed, DeregisterCheck, LocalServiceHealth, Maintenance, RegisterCheck,
    ServiceHealth, UpdateTtl,
};
use crate::config::DefinitionToken;
use crate::state::structs::HealthStatus;

pub fn routes() -> Vec<Route> {
    vec![
        put("/v1/agent/check/register", AgentByRequest, |r| {
            r.to(register)
        }),
        put("/v1/agent/check/deregister/{id}", AgentByRequest, |r| {
            r.to(deregister)
        }),
        put("/v1/agent/check/pass/{id}", AgentByRequest, |r| r.to(pass)),
        put("/v1/agent/check/warn/{id}", AgentByRequest, |r| r.to(warn)),
        put("/v1/agent/check/fail/{id}", AgentByRequest, |r| r.to(fail)),
        put("/v1/agent/check/update/{id}", AgentByRequest, |r| {
            r.to(update)
        }),
        put(
            "/v1/agent/maintenance",
            Agent(Need::node(Resource::Node, Access::Write)),
            |r| r.to(node_maintenance),
        ),
        put("/v1/agent/service/maintenance/{id}", AgentByRequest, |r| {
            r.to(service_maintenance)
        }),
        get(
            "/v1/agent/health/service/name/{name}",
            AgentByRequest,
            |r| r.to(health_by_name),
        ),
        get("/v1/agent/health/service/id/{id}", AgentByRequest, |r| {
            r.to(health_by_id)
        }),
    ]
}

/// Script checks from the API need `enable_script_checks`, or
/// `enable_local_script_checks` and a caller on this machine.
pub(super) fn scripts_allowed(req: &HttpRequest, state: &ApiState) -> bool {
    let local = req.peer_addr().is_some_and(|a| a.ip().is_loopback());
    script_checks_allowed(&state.config, local)
}

async fn register(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, super::catalog::MAX_BODY).await?;
    let r: CheckRegistration = decode(&body)?;
    let mut def = r.into_definition("Check")?;
    // Consul's `CheckDefinition.HealthCheck`: no ID, the name is the ID
    // (not `service:<id>`, which a second check of the service would
    // silently replace).
    if def.id.is_empty() {
        def.id = def.name.clone();
    }
    // The check syncs with the token it was registered with.
    def.token = DefinitionToken(Params::from(&req)?.token().unwrap_or_default());
    let access = authz::access(&req, &state).await?;
    authz::on_new_check(&state, &access, &def.service_id).await?;
    let scripts_allowed = scripts_allowed(&req, &state);
    state
        .ask(RegisterCheck {
            def,
            scripts_allowed,
        })
        .await??;
    Ok(HttpResponse::Ok().finish())
}

async fn deregister(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let access = authz::access(&req, &state).await?;
    authz::on_check_id(&state, &access, &id).await?;
    state.ask(DeregisterCheck(id.into_inner())).await??;
    Ok(HttpResponse::Ok().finish())
}

async fn ttl(
    req: &HttpRequest,
    state: &ApiState,
    id: String,
    status: HealthStatus,
    output: String,
) -> Result<HttpResponse, ApiError> {
    let access = authz::access(req, state).await?;
    authz::on_check_id(state, &access, &id).await?;
    state.ask(UpdateTtl { id, status, output }).await??;
    Ok(HttpResponse::Ok().finish())
}

fn note(req: &HttpRequest) -> Result<String, ApiError> {
    Ok(Params::from(req)?.get("note").unwrap_or("").to_string())
}

async fn pass(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    ttl(
        &req,
        &state,
        id.into_inner(),
        HealthStatus::Passing,
        note(&req)?,
    )
    .await
}

async fn warn(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    ttl(
        &req,
        &state,
        id.into_inner(),
        HealthStatus::Warning,
        note(&req)?,
    )
    .await
}

async fn fail(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    ttl(
        &req,
        &state,
        id.into_inner(),
        HealthStatus::Critical,
        note(&req)?,
    )
    .await
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CheckUpdate {
    status: String,
    output: String,
}

async fn update(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, super::catalog::MAX_BODY).await?;
    let u: CheckUpdate = decode(&body)?;
    let status = HealthStatus::parse(&u.status)
        .filter(|s| *s != HealthStatus::Any)
        .ok_or_else(|| ApiError::bad_request(format!("Invalid check status: {:?}", u.status)))?;
    ttl(&req, &state, id.into_inner(), status, u.output).await
}

/// `?enable=true|false` (required) and `?reason=`.
pub(crate) fn maintenance_params(p: &Params) -> Result<(bool, String), ApiError> {
    let enable = match p.get("enable") {
        None | Some("") => return Err(ApiError::bad_request("Missing value for enable")),
        Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid value for enable: {other:?}"
            )))
        }
    };
    Ok((enable, p.get("reason").unwrap_or("").to_string()))
}

async fn node_maintenance(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (enable, reason) = maintenance_params(&Params::from(&req)?)?;
    state
        .ask(Maintenance {
            service: None,
            enable,
            reason,
        })
        .await??;
    Ok(HttpResponse::Ok().finish())
}

async fn service_maintenance(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (enable, reason) = maintenance_params(&Params::from(&req)?)?;
    let access = authz::access(&req, &state).await?;
    authz::on_service(&state, &access, &id, Access::Write).await?;
    state
        .ask(Maintenance {
            service: Some(id.into_inner()),
            enable,
            reason,
        })
        .await??;
    Ok(HttpResponse::Ok().finish())
}

/// 200 passing, 429 warning, 503 critical (Consul's codes).
fn status_code(s: HealthStatus) -> actix_web::http::StatusCode {
    use actix_web::http::StatusCode;
    match s {
        HealthStatus::Passing => StatusCode::OK,
        HealthStatus::Warning => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn health_json(h: &ServiceHealth, dc: &str) -> serde_json::Value {
    json!({
        "AggregatedStatus": h.aggregated.as_str(),
        "Service": super::agent::agent_service_json(&h.service, dc),
        "Checks": h.checks,
    })
}

async fn local_health(state: &ApiState) -> Result<Vec<ServiceHealth>, ApiError> {
    state.ask(LocalServiceHealth).await
}

fn answer(
    req: &HttpRequest,
    status: HealthStatus,
    body: serde_json::Value,
) -> Result<HttpResponse, ApiError> {
    let text = Params::from(req)?.get("format") == Some("text");
    let mut resp = HttpResponse::build(status_code(status));
    Ok(if text {
        resp.content_type("text/plain; charset=utf-8")
            .body(status.as_str().to_string())
    } else {
        resp.content_type("application/json").body(body.to_string())
    })
}

async fn health_by_name(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let access = authz::access(&req, &state).await?;
    access.require(Resource::Service, Access::Read, &name)?;
    let all = local_health(&state).await?;
    let matching: Vec<&ServiceHealth> = all.iter().filter(|h| h.service.service == *name).collect();
    if matching.is_empty() {
        return Err(ApiError::not_found(format!("ServiceName {name} Not Found")));
    }
    let worst = matching
        .iter()
        .map(|h| h.aggregated)
        .max()
        .unwrap_or(HealthStatus::Passing);
    let body: Vec<serde_json::Value> = matching
        .iter()
        .map(|h| health_json(h, &state.config.datacenter))
        .collect();
    answer(&req, worst, json!(body))
}

async fn health_by_id(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let all = local_health(&state).await?;
    let h = all
        .iter()
        .find(|h| h.service.id == *id)
        .ok_or_else(|| ApiError::not_found(format!("ServiceId {id} not found")))?;
    let access = authz::access(&req, &state).await?;
    access.require(Resource::Service, Access::Read, &h.service.service)?;
    answer(&req, h.aggregated, health_json(h, &state.config.datacenter))
}
