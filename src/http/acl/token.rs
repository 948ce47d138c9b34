//! `/v1/acl/token*` and `/v1/acl/tokens`: create, read (by AccessorID or
//! the caller's own secret), update, clone, delete and list.

use std::time::Duration;

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use super::{
    acl_not_found, answer, body_or_default, check_uuid, delete_missing, new_id, not_exist, read,
    require_enabled, unexpected, url_id, write,
};
use crate::config::duration::format_go_duration;
use crate::http::error::ApiError;
use crate::http::params::{json, Params};
use crate::http::routes::{self as rt, Decision::*};
use crate::http::ApiState;
use crate::structs::acl::AclToken;
use crate::structs::go_json::go_zero_time;
use crate::structs::query::{Query, QueryResult};
use crate::structs::{Command, CommandResult};

pub fn routes() -> Vec<rt::Route> {
    vec![
        rt::put("/v1/acl/token", RequestPath, |r| r.to(create)),
        rt::get("/v1/acl/token/self", TokenSelf, |r| r.to(self_token)),
        rt::put("/v1/acl/token/{id}/clone", RequestPath, |r| r.to(clone)),
        rt::get("/v1/acl/token/{id}", RequestPath, |r| r.to(get)),
        rt::put("/v1/acl/token/{id}", RequestPath, |r| r.to(update)),
        rt::delete("/v1/acl/token/{id}", RequestPath, |r| r.to(delete)),
        rt::get("/v1/acl/tokens", RequestPath, |r| r.to(list)),
    ]
}

/// A stored token the API shows: an expired one is as good as gone.
fn live(token: Option<Box<AclToken>>) -> Option<Box<AclToken>> {
    token.filter(|t| !t.is_expired(chrono::Utc::now()))
}

/// Consul's default bounds on a new token's lifetime
/// (`acl_token_min_expiration_ttl`, `acl_token_max_expiration_ttl`).
const MIN_EXPIRATION_TTL: Duration = Duration::from_secs(60);
const MAX_EXPIRATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// A new token expires between one minute and a day after its creation,
/// as Consul's servers require (with their texts). Conflicting or
/// backwards expiries are left to the state store, which words those.
fn check_lifetime(token: &AclToken) -> Result<(), ApiError> {
    let at = token.expiration_time.filter(|t| *t != go_zero_time());
    let expires_in = match (token.expiration_ttl, at) {
        (Some(ttl), None) => ttl,
        (None, Some(at)) => match (at - token.create_time).to_std() {
            Ok(d) => d,
            Err(_) => return Ok(()),
        },
        _ => return Ok(()),
    };
    let (bound, word) = if expires_in > MAX_EXPIRATION_TTL {
        (MAX_EXPIRATION_TTL, "more")
    } else if expires_in < MIN_EXPIRATION_TTL {
        (MIN_EXPIRATION_TTL, "less")
    } else {
        return Ok(());
    };
    Err(ApiError::bad_request(format!(
        "ExpirationTime cannot be {word} than {} in the future (was {})",
        format_go_duration(bound),
        format_go_duration(expires_in)
    )))
}

async fn write_token(
    state: &ApiState,
    p: &Params,
    token: AclToken,
    create: bool,
) -> Result<AclToken, ApiError> {
    match write(state, p, Command::AclTokenSet { token, create }).await? {
        CommandResult::AclToken(t) => Ok(*t),
        other => unexpected(other),
    }
}

async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let p = Params::from(&req)?;
    let mut token: AclToken = body_or_default(&req, payload).await?;
    for (id, what) in [
        (&mut token.accessor_id, "AccessorID"),
        (&mut token.secret_id, "SecretID"),
    ] {
        if id.is_empty() {
            *id = new_id();
        } else {
            check_uuid(id, what)?;
        }
    }
    token.create_time = chrono::Utc::now();
    check_lifetime(&token)?;
    let token = write_token(&state, &p, token, true).await?;
    Ok(json(&req, &token))
}

async fn get(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let query = Query::AclTokenRead {
        accessor_id: id.into_inner(),
    };
    match read(&req, &state, query).await? {
        (meta, QueryResult::AclToken(t)) => {
            let t = live(t).ok_or_else(|| not_exist("token"))?;
            Ok(answer(&req, &meta, &t))
        }
        (_, other) => unexpected(other),
    }
}

/// The caller's own token, found by the secret it sent (or the agent's
/// default token, as Consul falls back to it).
async fn self_token(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let p = Params::from(&req)?;
    let secret = p
        .token()
        .unwrap_or_else(|| state.config.acl.tokens.default.clone());
    let missing = || ApiError::not_found("Supplied token does not exist");
    if secret.is_empty() {
        return Err(missing());
    }
    match read(&req, &state, Query::AclTokenBySecret { secret_id: secret }).await? {
        (meta, QueryResult::AclToken(t)) => {
            let t = live(t).ok_or_else(missing)?;
            Ok(answer(&req, &meta, &t))
        }
        (_, other) => unexpected(other),
    }
}

async fn update(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let p = Params::from(&req)?;
    let id = id.into_inner();
    let mut token: AclToken = body_or_default(&req, payload).await?;
    let mismatch = "Token Accessor ID in URL and payload do not match";
    url_id(&mut token.accessor_id, id, mismatch)?;
    let token = write_token(&state, &p, token, false).await?;
    Ok(json(&req, &token))
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CloneBody {
    description: String,
}

/// A new token (new AccessorID and SecretID) with the links, identities,
/// locality and expiry of an existing one; its description unless the
/// body gives one.
async fn clone(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let p = Params::from(&req)?;
    let body: CloneBody = body_or_default(&req, payload).await?;
    let query = Query::AclTokenRead {
        accessor_id: id.into_inner(),
    };
    let source = match read(&req, &state, query).await? {
        (_, QueryResult::AclToken(t)) => live(t).ok_or_else(acl_not_found)?,
        (_, other) => return unexpected(other),
    };
    let description = if body.description.is_empty() {
        source.description.clone()
    } else {
        body.description
    };
    let token = AclToken {
        accessor_id: new_id(),
        secret_id: new_id(),
        description,
        policies: source.policies.clone(),
        roles: source.roles.clone(),
        service_identities: source.service_identities.clone(),
        node_identities: source.node_identities.clone(),
        local: source.local,
        expiration_time: source.expiration_time,
        create_time: chrono::Utc::now(),
        ..Default::default()
    };
    check_lifetime(&token)?;
    let token = write_token(&state, &p, token, true).await?;
    Ok(json(&req, &token))
}

async fn delete(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let p = Params::from(&req)?;
    let command = Command::AclTokenDelete {
        accessor_id: id.into_inner(),
    };
    match write(&state, &p, command).await? {
        CommandResult::Bool(true) => Ok(json(&req, &true)),
        CommandResult::Bool(false) => Err(delete_missing("token")),
        other => unexpected(other),
    }
}

/// Consul's state store lists by one filter at a time.
const ONE_FILTER: &str =
    "can only filter by one of policy, role, serviceName, or methodName at a time";

/// `GET /v1/acl/tokens`' filters, one at most; the flag says that none
/// can match (tokens made by an auth method, which never exist here).
pub(crate) fn list_query(p: &Params) -> Result<(Query, bool), ApiError> {
    let filter = |name: &str| p.get(name).filter(|v| !v.is_empty()).map(str::to_string);
    let (policy, role, service_name) = (filter("policy"), filter("role"), filter("servicename"));
    let auth_method = filter("authmethod");
    let given = [&policy, &role, &service_name, &auth_method]
        .iter()
        .filter(|f| f.is_some())
        .count();
    if given > 1 {
        // Consul's state store answers this 500; it is the request's fault.
        return Err(ApiError::bad_request(ONE_FILTER));
    }
    // No auth method exists here, so no token was made by one; the read
    // still runs for its index and headers.
    let none_match = auth_method.is_some();
    let query = Query::AclTokenList {
        policy,
        role,
        service_name,
    };
    Ok((query, none_match))
}

async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    require_enabled(&state)?;
    let p = Params::from(&req)?;
    let (query, none_match) = list_query(&p)?;
    match read(&req, &state, query).await? {
        (meta, QueryResult::AclTokens(mut stubs)) => {
            let now = chrono::Utc::now();
            stubs.retain(|s| !none_match && s.expiration_time.is_none_or(|t| t >= now));
            Ok(answer(&req, &meta, &stubs))
        }
        (_, other) => unexpected(other),
    }
}
