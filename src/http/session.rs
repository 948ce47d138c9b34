//! `/v1/session/*`: create, destroy, renew, info, node, list (Consul's
//! shapes and texts). The session ID is made here, before Raft, so every
//! server applies the same one.

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::catalog::serve;
use super::error::ApiError;
use super::params::{decode, json, read_body, Params};
use super::routes::{get, put, Decision::*, Route};
use super::ApiState;
use crate::config::duration::parse_go_duration;
use crate::state::command::{Command, CommandResult};
use crate::state::query::Query;
use crate::state::session::{ServiceCheck, Session};

pub fn routes() -> Vec<Route> {
    vec![
        put("/v1/session/create", RequestPath, |r| r.to(create)),
        put("/v1/session/destroy/{id}", RequestPath, |r| r.to(destroy)),
        put("/v1/session/renew/{id}", RequestPath, |r| r.to(renew)),
        get("/v1/session/info/{id}", RequestPathFiltered, |r| r.to(info)),
        get("/v1/session/node/{node}", RequestPathFiltered, |r| {
            r.to(node)
        }),
        get("/v1/session/list", RequestPathFiltered, |r| r.to(list)),
    ]
}

/// `LockDelay` is a Go duration string or a number of nanoseconds; as in
/// Consul, a number under 1000 is taken as seconds (older clients).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Delay {
    Text(String),
    Nanos(u64),
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct CreateBody {
    name: String,
    node: String,
    lock_delay: Option<Delay>,
    behavior: String,
    #[serde(rename = "TTL")]
    ttl: String,
    checks: Option<Vec<String>>,
    node_checks: Option<Vec<String>>,
    service_checks: Vec<ServiceCheck>,
}

const MIN_TTL: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let body = read_body(&req, payload, super::catalog::MAX_BODY).await?;
    let b: CreateBody = if body.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        decode(&body)?
    };
    let lock_delay = match b.lock_delay {
        None => 15_000_000_000,
        Some(Delay::Nanos(n)) if n < 1000 => n * 1_000_000_000,
        Some(Delay::Nanos(n)) => n,
        Some(Delay::Text(t)) => parse_go_duration(&t)
            .map_err(|e| ApiError::bad_request(format!("Request decode failed: LockDelay: {e}")))?
            .as_nanos() as u64,
    };
    let behavior = match b.behavior.as_str() {
        "" | "release" => "release",
        "delete" => "delete",
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid Behavior setting '{other}'"
            )))
        }
    };
    if !b.ttl.is_empty() {
        let ttl = parse_go_duration(&b.ttl)
            .map_err(|e| ApiError::bad_request(format!("Request decode failed: TTL: {e}")))?;
        if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
            return Err(ApiError::bad_request(format!(
                "Invalid Session TTL '{}', must be between [10s=24h0m0s]",
                b.ttl
            )));
        }
    }
    // Consul: `Checks` (older) and `NodeChecks` add up; neither means serfHealth.
    let mut node_checks: Vec<String> = b.checks.clone().unwrap_or_default();
    node_checks.extend(b.node_checks.clone().unwrap_or_default());
    if b.checks.is_none() && b.node_checks.is_none() {
        node_checks.push("serfHealth".into());
    }
    node_checks.dedup();
    let session = Session {
        id: uuid::Uuid::new_v4().to_string(),
        name: b.name,
        node: if b.node.is_empty() {
            state.config.node_name.clone()
        } else {
            b.node
        },
        lock_delay,
        behavior: behavior.into(),
        ttl: b.ttl,
        node_checks,
        service_checks: b.service_checks,
        ..Default::default()
    };
    let id = session.id.clone();
    match state
        .write(p.dc(), p.token(), Command::SessionCreate(session))
        .await?
        .result
    {
        CommandResult::Done => Ok(json(&req, &json!({ "ID": id }))),
        // The node or a check the body names is not registered: bad
        // input (Consul's text; Consul answers it 500).
        CommandResult::Rejected(e) => Err(ApiError::bad_request(e)),
        other => Err(ApiError::internal(format!("unexpected result {other:?}"))),
    }
}

async fn destroy(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    state
        .write(
            p.dc(),
            p.token(),
            Command::SessionDestroy {
                id: id.into_inner(),
            },
        )
        .await?;
    Ok(json(&req, &true))
}

async fn renew(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let id = id.into_inner();
    match state
        .write(p.dc(), p.token(), Command::SessionRenew { id: id.clone() })
        .await?
        .result
    {
        CommandResult::Session(Some(s)) => Ok(json(&req, &[s])),
        CommandResult::Session(None) => {
            Err(ApiError::not_found(format!("Session id '{id}' not found")))
        }
        other => Err(ApiError::internal(format!("unexpected result {other:?}"))),
    }
}

async fn info(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve(
        &req,
        &state,
        Query::SessionInfo {
            id: id.into_inner(),
        },
    )
    .await
}

async fn node(
    req: HttpRequest,
    state: web::Data<ApiState>,
    node: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve(
        &req,
        &state,
        Query::SessionList {
            node: Some(node.into_inner()),
        },
    )
    .await
}

async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    serve(&req, &state, Query::SessionList { node: None }).await
}
