//! `/v1/acl/*`: bootstrap, tokens, policies, roles and the replication
//! status (Consul's `agent/acl_endpoint.go`). Handlers only shape
//! requests: IDs, times and
//! the bootstrap token are made here, before Raft, so every server applies
//! the same write; the state store makes the checks and words refusals.
//! Deciding requests by their token is not done here. `object.rs` holds
//! the handlers policies and roles share.

mod object;
mod policy;
mod replication;
mod role;
pub(crate) mod token;

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::params::{decode, json, json_with, read_body, read_response, Params};
use super::routes::{put, Decision, Route};
use super::ApiState;
use crate::structs::acl::{AclLink, AclToken, GLOBAL_MANAGEMENT_POLICY_ID};
use crate::structs::query::{Query, QueryResult};
use crate::structs::{Command, CommandResult, QueryMeta};

/// ACL bodies are small; Consul bounds them as it bounds other writes.
const MAX_BODY: usize = super::catalog::MAX_BODY;

/// The operator's file that allows one more bootstrap (Consul's name).
const BOOTSTRAP_RESET_FILE: &str = "acl-bootstrap-reset";

const BOOTSTRAP_DESCRIPTION: &str = "Bootstrap Token (Global Management)";

pub fn routes() -> Vec<Route> {
    let mut t = vec![put("/v1/acl/bootstrap", Decision::Bootstrap, |r| {
        r.to(bootstrap)
    })];
    t.extend(token::routes());
    t.extend(policy::routes());
    t.extend(role::routes());
    t.extend(replication::routes());
    t
}

/// Consul answers every ACL endpoint this way while ACLs are off.
fn require_enabled(state: &ApiState) -> Result<(), ApiError> {
    if state.config.acl.enabled {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            body: "ACL support disabled".into(),
        })
    }
}

/// Consul's `acl.ErrNotFound`, which its HTTP layer answers with 403
/// where an endpoint passes it on as is (cloning a missing token).
fn acl_not_found() -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        body: "ACL not found".into(),
    }
}

/// A read of a token, policy or role that is not there: Consul's 404 with
/// its `ACLResourceNotExistError` text.
fn not_exist(kind: &str) -> ApiError {
    ApiError::not_found(format!("Requested {kind} does not exist: ACL not found"))
}

/// A delete of something that is not there (Consul's texts, 404).
fn delete_missing(kind: &str) -> ApiError {
    ApiError::not_found(format!("Cannot find {kind} to delete"))
}

/// The request's body decoded, or the default for an empty body (Consul's
/// clients may send none, e.g. to clone or bootstrap).
async fn body_or_default<T: serde::de::DeserializeOwned + Default>(
    req: &HttpRequest,
    payload: Payload,
) -> Result<T, ApiError> {
    let body = read_body(req, payload, MAX_BODY).await?;
    decode_or_default(&body)
}

fn decode_or_default<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        decode(body)
    }
}

/// A token body as create and update read it (their checks need the
/// store), a policy or role body read and checked as they check it before
/// anything reaches the store: the fuzz targets' way in.
pub(crate) fn check_bodies(body: &[u8]) -> [Result<(), ApiError>; 3] {
    use object::AclObject;
    [
        decode_or_default::<AclToken>(body).map(drop),
        decode_or_default::<crate::structs::acl::AclPolicy>(body).and_then(|p| p.check()),
        decode_or_default::<crate::structs::acl::AclRole>(body).and_then(|r| r.check()),
    ]
}

/// An update's ID: the URL's, which a body may repeat but not contradict
/// (`mismatch` is Consul's refusal).
fn url_id(body_id: &mut String, url_id: String, mismatch: &'static str) -> Result<(), ApiError> {
    if body_id.is_empty() {
        *body_id = url_id;
    } else if *body_id != url_id {
        return Err(ApiError::bad_request(mismatch));
    }
    Ok(())
}

/// A new random ID for a token, policy or role.
fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Consul accepts only UUIDs as caller-chosen token IDs.
fn check_uuid(value: &str, what: &str) -> Result<(), ApiError> {
    uuid::Uuid::parse_str(value)
        .map(drop)
        .map_err(|_| ApiError::bad_request(format!("Invalid Token: {what} is not a valid UUID")))
}

/// Runs an ACL write; a refusal by the state store is invalid input (400
/// with its text).
async fn write(state: &ApiState, p: &Params, command: Command) -> Result<CommandResult, ApiError> {
    match state.write(p.dc(), p.token(), command).await?.result {
        CommandResult::Rejected(text) => Err(ApiError::bad_request(text)),
        other => Ok(other),
    }
}

fn unexpected<T>(what: impl std::fmt::Debug) -> Result<T, ApiError> {
    Err(ApiError::internal(format!("unexpected result {what:?}")))
}

/// Runs an ACL read with the request's query options.
async fn read(
    req: &HttpRequest,
    state: &ApiState,
    query: Query,
) -> Result<(QueryMeta, QueryResult), ApiError> {
    let p = Params::from(req)?;
    let resp = state.read(p.query_options(&state.config)?, query).await?;
    Ok((resp.meta, resp.result))
}

/// A read's answer with Consul's read headers.
fn answer<T: Serialize>(req: &HttpRequest, meta: &QueryMeta, value: &T) -> HttpResponse {
    json_with(read_response(StatusCode::OK, meta), req, value)
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct BootstrapBody {
    bootstrap_secret: String,
}

/// What bootstrap answers: the token, plus the legacy `ID` (its secret)
/// Consul still sends.
#[derive(Serialize)]
struct BootstrapAnswer {
    #[serde(rename = "ID")]
    id: String,
    #[serde(flatten)]
    token: AclToken,
}

/// The reset index an operator wrote to `<data-dir>/acl-bootstrap-reset`,
/// if any. As in Consul, an unreadable number is ignored.
fn reset_index(state: &ApiState) -> Option<(std::path::PathBuf, u64)> {
    let path = state.config.data_dir.as_ref()?.join(BOOTSTRAP_RESET_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    match text.trim().parse::<u64>() {
        Ok(index) => Some((path, index)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "failed to parse bootstrap reset index");
            None
        }
    }
}

async fn bootstrap(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let p = Params::from(&req)?;
    let body: BootstrapBody = body_or_default(&req, payload).await?;
    let secret = if body.bootstrap_secret.is_empty() {
        new_id()
    } else {
        check_uuid(&body.bootstrap_secret, "SecretID")?;
        body.bootstrap_secret
    };
    let token = AclToken {
        accessor_id: new_id(),
        secret_id: secret,
        description: BOOTSTRAP_DESCRIPTION.into(),
        policies: vec![AclLink::new(GLOBAL_MANAGEMENT_POLICY_ID, "")],
        create_time: chrono::Utc::now(),
        ..Default::default()
    };
    let reset = reset_index(&state);
    let command = Command::AclBootstrap {
        token,
        reset_index: reset.as_ref().map(|(_, i)| *i),
    };
    match state.write(p.dc(), p.token(), command).await?.result {
        CommandResult::AclToken(token) => {
            // The reset is good for one bootstrap (Consul removes the file).
            if let Some((path, _)) = reset {
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "failed to remove bootstrap reset file");
                }
            }
            let token = *token;
            Ok(json(
                &req,
                &BootstrapAnswer {
                    id: token.secret_id.clone(),
                    token,
                },
            ))
        }
        CommandResult::Rejected(text) if text.starts_with("ACL bootstrap no longer allowed") => {
            Err(ApiError {
                status: StatusCode::FORBIDDEN,
                body: format!("Permission denied: {text}"),
            })
        }
        CommandResult::Rejected(text) => Err(ApiError::internal(text)),
        other => unexpected(other),
    }
}
