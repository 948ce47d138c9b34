//! `/v1/kv/<key>`: get (single, `recurse`, `keys` with `separator`, `raw`),
//! put (`flags`, `cas`), delete (`recurse`, `cas`).

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};

use super::error::ApiError;
use super::params::{json_with, read_body_for, read_response, Params};
use super::routes::{self as rt, Decision::*};
use super::ApiState;
use crate::state::command::{Command, CommandResult};
use crate::state::query::{Query, QueryResult};

pub fn routes() -> Vec<rt::Route> {
    let path = "/v1/kv/{key:.*}";
    vec![
        rt::get(path, RequestPath, |r| r.to(get)),
        rt::put(path, RequestPath, |r| r.to(put)),
        rt::route(actix_web::http::Method::POST, path, RequestPath, |r| {
            r.to(put)
        }),
        rt::delete(path, RequestPath, |r| r.to(delete)),
    ]
}

/// Consul 1.22's rule: any key except path traversal and leading or
/// trailing spaces.
fn validate_key(key: &str) -> Result<(), ApiError> {
    let traversal = key.split('/').any(|seg| seg == "..") || key.contains("..\\");
    if traversal {
        return Err(ApiError::bad_request(format!(
            "Invalid key name {key:?}: path traversal is not allowed"
        )));
    }
    if key != key.trim() {
        return Err(ApiError::bad_request(format!(
            "Invalid key name {key:?}: leading or trailing spaces are not allowed"
        )));
    }
    Ok(())
}

fn key_of(req: &HttpRequest) -> String {
    req.match_info().get("key").unwrap_or("").to_string()
}

async fn get(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let key = key_of(&req);
    validate_key(&key)?;
    let opts = p.query_options(&state.config)?;
    let keys = p.has("keys");
    let query = if keys {
        Query::KvKeys {
            prefix: key.clone(),
            separator: p
                .get("separator")
                .or(p.get("seperator"))
                .map(str::to_string),
        }
    } else if p.has("recurse") {
        Query::KvList {
            prefix: key.clone(),
        }
    } else if key.is_empty() {
        return Err(ApiError::bad_request("Missing key name"));
    } else {
        Query::KvGet { key: key.clone() }
    };
    let resp = state.read(opts, query).await?;
    let found = |b: bool| {
        if b {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        }
    };
    match resp.result {
        QueryResult::Keys(k) => {
            if k.is_empty() && !key.is_empty() {
                return Ok(read_response(StatusCode::NOT_FOUND, &resp.meta).finish());
            }
            Ok(json_with(
                read_response(StatusCode::OK, &resp.meta),
                &req,
                &k,
            ))
        }
        QueryResult::Entries(e) => {
            if e.is_empty() {
                return Ok(read_response(StatusCode::NOT_FOUND, &resp.meta).finish());
            }
            Ok(json_with(read_response(found(true), &resp.meta), &req, &e))
        }
        QueryResult::Entry(Some(e)) if p.has("raw") => {
            Ok(read_response(StatusCode::OK, &resp.meta)
                .content_type("text/plain")
                .insert_header(("X-Content-Type-Options", "nosniff"))
                .insert_header(("Content-Security-Policy", "sandbox"))
                .body(e.value))
        }
        QueryResult::Entry(Some(e)) => Ok(json_with(
            read_response(StatusCode::OK, &resp.meta),
            &req,
            &[e],
        )),
        QueryResult::Entry(None) => Ok(read_response(StatusCode::NOT_FOUND, &resp.meta).finish()),
        other => Err(ApiError::internal(format!("unexpected result {other:?}"))),
    }
}

fn conflicting(req: &HttpRequest) -> ApiError {
    ApiError::bad_request(format!("Conflicting flags: {}\n", req.query_string()))
}

async fn put(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let key = key_of(&req);
    if key.is_empty() {
        return Err(ApiError::bad_request("Missing key name"));
    }
    validate_key(&key)?;
    let modes = ["cas", "acquire", "release"]
        .iter()
        .filter(|m| p.get(m).is_some())
        .count();
    if modes > 1 {
        return Err(conflicting(&req));
    }
    let flags = p.u64("flags", "flags")?.unwrap_or(0);
    let cas = p.u64("cas", "cas index")?;
    let value = read_body_for(
        &req,
        payload,
        state.config.kv_max_value_size,
        "kv_max_value_size",
    )
    .await?
    .to_vec();
    let session = |s: &str| -> Result<String, ApiError> {
        uuid::Uuid::parse_str(s)
            .map(|_| s.to_string())
            .map_err(|_| ApiError::bad_request(format!("invalid session \"{s}\"")))
    };
    let command = match (cas, p.get("acquire"), p.get("release")) {
        (_, Some(s), _) => Command::KvLock {
            key,
            value,
            flags,
            session: session(s)?,
        },
        (_, _, Some(s)) => Command::KvUnlock {
            key,
            value,
            flags,
            session: session(s)?,
        },
        (Some(cas), None, None) => Command::KvCas {
            key,
            value,
            flags,
            cas,
        },
        (None, None, None) => Command::KvSet { key, value, flags },
    };
    let resp = state.write(p.dc(), p.token(), command).await?;
    bool_response(&req, resp.result)
}

async fn delete(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let key = key_of(&req);
    validate_key(&key)?;
    let recurse = p.has("recurse");
    let cas = p.u64("cas", "cas index")?;
    let command = match (recurse, cas) {
        (true, Some(_)) => return Err(conflicting(&req)),
        (true, None) => Command::KvDeleteTree { prefix: key },
        (false, _) if key.is_empty() => return Err(ApiError::bad_request("Missing key name")),
        (false, Some(cas)) => Command::KvDeleteCas { key, cas },
        (false, None) => Command::KvDelete { key },
    };
    let resp = state.write(p.dc(), p.token(), command).await?;
    bool_response(&req, resp.result)
}

pub(crate) fn bool_response(req: &HttpRequest, r: CommandResult) -> Result<HttpResponse, ApiError> {
    match r {
        CommandResult::Bool(b) => Ok(super::params::json(req, &b)),
        CommandResult::Done => Ok(super::params::json(req, &true)),
        // The state store refused what the request names (a check for a
        // service that is not registered, a lock for a session that does
        // not exist): bad input, 400 with the store's text. Consul answers
        // these 500; clients match on the text, which is the same.
        CommandResult::Rejected(e) => Err(ApiError::bad_request(e)),
        // Batches are formed inside the Raft actor and never reach a client.
        CommandResult::Batch(_) => Err(ApiError::internal("unexpected batch result")),
        CommandResult::Session(s) => {
            Ok(super::params::json(req, &s.into_iter().collect::<Vec<_>>()))
        }
        CommandResult::Txn(_) => Err(ApiError::internal("unexpected transaction result")),
        // ACL writes answer with their objects, through the ACL endpoints.
        CommandResult::AclToken(_)
        | CommandResult::AclPolicy(_)
        | CommandResult::AclRole(_)
        | CommandResult::AclTokensReaped(_) => Err(ApiError::internal("unexpected ACL result")),
    }
}
