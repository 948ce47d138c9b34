//! `/v1/kv/<key>`: get (single, `recurse`, `keys` with `separator`, `raw`),
//! put (`flags`, `cas`), delete (`recurse`, `cas`).
//!
//! Two Meridian extensions (README, "Meridian extensions"): `?ttl=` on a
//! PUT gives the key a time to live, and `?recurse&changes&index=N`
//! answers only what changed under the prefix after N, deletions as
//! `{"Key":..,"Deleted":true,"ModifyIndex":..}`; 409 when N is older
//! than the deletions the servers still remember.

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};

use super::error::ApiError;
use super::params::{json_with, read_body_for, read_response, Params};
use super::routes::{self as rt, Decision::*};
use super::ApiState;
use crate::config::RuntimeConfig;
use crate::state::command::{Command, CommandResult};
use crate::state::query::{Query, QueryResult};
use crate::structs::catalog::{parse_kv_ttl, KvChange, KvChanges};
use crate::structs::QueryOptions;

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

/// A GET's options and read, from its query string and key: checked
/// before anything is read.
pub(crate) fn get_request(
    p: &Params,
    key: &str,
    cfg: &RuntimeConfig,
) -> Result<(QueryOptions, Query), ApiError> {
    validate_key(key)?;
    let opts = p.query_options(cfg)?;
    let query = if p.has("changes") {
        if !p.has("recurse") || p.has("keys") {
            return Err(ApiError::bad_request(
                "Invalid changes: ?changes needs ?recurse (and not ?keys)",
            ));
        }
        if p.get("index").is_none() {
            return Err(ApiError::bad_request(
                "Invalid changes: ?changes needs ?index, the index of the last read",
            ));
        }
        Query::KvChanges {
            prefix: key.to_string(),
            since: opts.min_index,
        }
    } else if p.has("keys") {
        Query::KvKeys {
            prefix: key.to_string(),
            separator: p
                .get("separator")
                .or(p.get("seperator"))
                .map(str::to_string),
        }
    } else if p.has("recurse") {
        Query::KvList {
            prefix: key.to_string(),
        }
    } else if key.is_empty() {
        return Err(ApiError::bad_request("Missing key name"));
    } else {
        Query::KvGet {
            key: key.to_string(),
        }
    };
    Ok((opts, query))
}

async fn get(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let key = key_of(&req);
    super::fan_out::per_dc(&req, &state, |p| get_with(&req, &state, p, &key)).await
}

async fn get_with(
    req: &HttpRequest,
    state: &ApiState,
    p: Params,
    key: &str,
) -> Result<HttpResponse, ApiError> {
    let (opts, query) = get_request(&p, key, &state.config)?;
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
                req,
                &k,
            ))
        }
        QueryResult::Entries(e) => {
            if e.is_empty() {
                return Ok(read_response(StatusCode::NOT_FOUND, &resp.meta).finish());
            }
            Ok(json_with(read_response(found(true), &resp.meta), req, &e))
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
            req,
            &[e],
        )),
        QueryResult::Entry(None) => Ok(read_response(StatusCode::NOT_FOUND, &resp.meta).finish()),
        QueryResult::KvChanges(KvChanges::Since(changes)) => {
            let rows: Vec<serde_json::Value> = changes.into_iter().map(change_json).collect();
            // An empty delta is an answer (nothing changed before the wait
            // ran out), not a missing key: 200 with `[]`.
            Ok(json_with(
                read_response(StatusCode::OK, &resp.meta),
                req,
                &rows,
            ))
        }
        QueryResult::KvChanges(KvChanges::TooOld { floor }) => {
            Ok(read_response(StatusCode::CONFLICT, &resp.meta)
                .insert_header((CHANGES_FLOOR_HEADER, floor.to_string()))
                .content_type("text/plain")
                .body(format!(
                    "Invalid changes: index {} is older than the oldest change this server \
                     remembers ({floor}); read the prefix in full (without ?changes) and \
                     continue from that read's X-Consul-Index",
                    opts_index(&p)
                )))
        }
        other => Err(ApiError::internal(format!("unexpected result {other:?}"))),
    }
}

/// On a changed-keys read's 409: the lowest `index` it would accept.
pub const CHANGES_FLOOR_HEADER: &str = "X-Meridian-Changes-Floor";

fn opts_index(p: &Params) -> &str {
    p.get("index").unwrap_or("0")
}

/// A changed-keys row as JSON: a written entry as Consul shapes it, a
/// deleted one as its key, `"Deleted": true` and the delete's index.
fn change_json(c: KvChange) -> serde_json::Value {
    match c {
        KvChange::Set(e) => serde_json::to_value(e).unwrap_or(serde_json::Value::Null),
        KvChange::Deleted { key, modify_index } => serde_json::json!({
            "Key": key,
            "Deleted": true,
            "ModifyIndex": modify_index,
        }),
    }
}

fn conflicting(p: &Params) -> ApiError {
    ApiError::bad_request(format!("Conflicting flags: {}\n", p.raw()))
}

/// How a PUT writes, from its query string: one of `cas`, `acquire`,
/// `release` at most.
pub(crate) enum PutMode {
    Set,
    Cas(u64),
    Lock(String),
    Unlock(String),
}

/// A PUT's query string and key, checked before its body is read (a bad
/// flag is a 400 even when the body is too large).
pub(crate) struct PutArgs {
    key: String,
    flags: u64,
    mode: PutMode,
    /// `?ttl=` (Meridian extension), already checked.
    ttl: Option<String>,
}

impl PutArgs {
    pub(crate) fn parse(p: &Params, key: String) -> Result<PutArgs, ApiError> {
        if key.is_empty() {
            return Err(ApiError::bad_request("Missing key name"));
        }
        validate_key(&key)?;
        let modes = ["cas", "acquire", "release"]
            .iter()
            .filter(|m| p.get(m).is_some())
            .count();
        if modes > 1 {
            return Err(conflicting(p));
        }
        let flags = p.u64("flags", "flags")?.unwrap_or(0);
        let cas = p.u64("cas", "cas index")?;
        let mode = match (cas, p.get("acquire"), p.get("release")) {
            (_, Some(s), _) => PutMode::Lock(s.to_string()),
            (_, _, Some(s)) => PutMode::Unlock(s.to_string()),
            (Some(cas), None, None) => PutMode::Cas(cas),
            (None, None, None) => PutMode::Set,
        };
        let ttl = match p.get("ttl") {
            None => None,
            Some(t) => {
                parse_kv_ttl(t).map_err(|e| ApiError::bad_request(capitalized(&e.to_string())))?;
                Some(t.to_string())
            }
        };
        Ok(PutArgs {
            key,
            flags,
            mode,
            ttl,
        })
    }

    /// The write, once the body is in. Consul answers a session that is
    /// not a UUID with a 500, and only after reading the body; bad input
    /// is a 400 here (README's "differs from Consul").
    pub(crate) fn command(self, value: Vec<u8>) -> Result<Command, ApiError> {
        let session = |s: String| -> Result<String, ApiError> {
            uuid::Uuid::parse_str(&s)
                .map(|_| s.clone())
                .map_err(|_| ApiError::bad_request(format!("invalid session \"{s}\"")))
        };
        let PutArgs {
            key,
            flags,
            mode,
            ttl,
        } = self;
        Ok(match mode {
            PutMode::Lock(s) => Command::KvLock {
                key,
                value,
                flags,
                session: session(s)?,
                ttl,
            },
            PutMode::Unlock(s) => Command::KvUnlock {
                key,
                value,
                flags,
                session: session(s)?,
                ttl,
            },
            PutMode::Cas(cas) => Command::KvCas {
                key,
                value,
                flags,
                cas,
                ttl,
            },
            PutMode::Set => Command::KvSet {
                key,
                value,
                flags,
                ttl,
            },
        })
    }
}

async fn put(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let args = PutArgs::parse(&p, key_of(&req))?;
    let value = read_body_for(
        &req,
        payload,
        state.config.kv_max_value_size,
        "kv_max_value_size",
    )
    .await?
    .to_vec();
    let command = args.command(value)?;
    let resp = state.write(p.dc(), p.token(), command).await?;
    bool_response(&req, resp.result)
}

/// Consul's 400 texts start with a capital (`Invalid wait time`).
pub(crate) fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A DELETE's write, from its query string and key.
pub(crate) fn delete_command(p: &Params, key: String) -> Result<Command, ApiError> {
    validate_key(&key)?;
    let recurse = p.has("recurse");
    let cas = p.u64("cas", "cas index")?;
    Ok(match (recurse, cas) {
        (true, Some(_)) => return Err(conflicting(p)),
        (true, None) => Command::KvDeleteTree { prefix: key },
        (false, _) if key.is_empty() => return Err(ApiError::bad_request("Missing key name")),
        (false, Some(cas)) => Command::KvDeleteCas { key, cas },
        (false, None) => Command::KvDelete { key },
    })
}

async fn delete(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let command = delete_command(&p, key_of(&req))?;
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
