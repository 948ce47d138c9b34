//! `?dc=*` (Meridian's own; hashicorp/consul#208, #2891): a read asked of
//! every known datacenter at once. Each datacenter's read is the very
//! read `?dc=<name>` would make (same routing, ACL decision, filters and
//! shape), run in parallel, and the answers come back as one JSON object
//! keyed by datacenter name. A datacenter that fails or does not answer
//! within the bound gets an error object in its place
//! (`{"Error": "...", "Status": 500}`) and is named in
//! `X-Meridian-Failed-Datacenters`; the others' `X-Consul-Index` values
//! are in `X-Meridian-Datacenter-Index` (`dc1=12, dc2=40`). One
//! datacenter down never fails the whole request.
//!
//! These reads do not block (each datacenter has its own index to wait
//! on): `?index=` is refused. `?wait=` bounds the whole request instead
//! (default 3 s, at most `max_query_time`).

use std::future::Future;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::params::{json_with, Params};
use super::ApiState;
use crate::config::duration::parse_go_duration;

/// Each datacenter's `X-Consul-Index`, as `dc1=12, dc2=40`.
pub const INDEX_HEADER: &str = "X-Meridian-Datacenter-Index";

/// The datacenters whose entry is an error object, comma-separated.
pub const FAILED_HEADER: &str = "X-Meridian-Failed-Datacenters";

/// The whole request's bound when `?wait=` does not set one: a dead
/// datacenter's breaker opens within about 1.4 s, so this is for one that
/// answers slowly.
const DEFAULT_BOUND: Duration = Duration::from_secs(3);

/// Runs `one` with the request's parameters, or with `?dc=*` once per
/// known datacenter (its parameters naming that datacenter), and answers
/// with what it returned or with every datacenter's answer in one object.
pub(crate) async fn per_dc<F, Fut>(
    req: &HttpRequest,
    state: &ApiState,
    one: F,
) -> Result<HttpResponse, ApiError>
where
    F: Fn(Params) -> Fut,
    Fut: Future<Output = Result<HttpResponse, ApiError>>,
{
    let p = Params::from(req)?;
    if p.get("dc") != Some("*") {
        return one(p).await;
    }
    if p.get("index").is_some() {
        return Err(ApiError::bad_request(
            "Invalid dc: ?dc=* does not block (each datacenter has its own index); \
             ask each datacenter with ?dc=<name>&index=",
        ));
    }
    if p.has("raw") {
        return Err(ApiError::bad_request(
            "Invalid dc: ?dc=* answers JSON keyed by datacenter and cannot be ?raw",
        ));
    }
    let bound = match p.get("wait") {
        Some(w) => parse_go_duration(w).map_err(|_| ApiError::bad_request("Invalid wait time"))?,
        None => DEFAULT_BOUND,
    }
    .min(state.config.max_query_time);
    let dcs = state.router.datacenters().await?;
    let deadline = tokio::time::Instant::now() + bound;
    let answers = futures::future::join_all(dcs.iter().map(|dc| {
        let asked = one(p.with_dc(dc));
        async move {
            match tokio::time::timeout_at(deadline, asked).await {
                Ok(Ok(resp)) => Answer::of(resp).await,
                Ok(Err(e)) => Answer::Failed(e.status, e.body),
                Err(_) => Answer::Failed(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("no answer within {bound:?}"),
                ),
            }
        }
    }))
    .await;

    let mut body = Map::new();
    let (mut indexes, mut failed) = (Vec::new(), Vec::new());
    for (dc, answer) in dcs.into_iter().zip(answers) {
        let value = match answer {
            Answer::Ok { index, value } => {
                indexes.push(format!("{dc}={index}"));
                value
            }
            Answer::Failed(status, text) => {
                failed.push(dc.clone());
                json!({"Error": text.trim(), "Status": status.as_u16()})
            }
        };
        body.insert(dc, value);
    }
    let mut b = HttpResponse::Ok();
    b.insert_header((INDEX_HEADER, indexes.join(", ")));
    if !failed.is_empty() {
        b.insert_header((FAILED_HEADER, failed.join(", ")));
    }
    Ok(json_with(b, req, &Value::Object(body)))
}

/// One datacenter's part of the answer.
enum Answer {
    /// Its JSON (`null` for a 404: a key or node it does not have).
    Ok {
        index: u64,
        value: Value,
    },
    Failed(StatusCode, String),
}

impl Answer {
    async fn of(resp: HttpResponse) -> Answer {
        let status = resp.status();
        let index = resp
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bytes = match actix_web::body::to_bytes(resp.into_body()).await {
            Ok(b) => b,
            Err(e) => return Answer::Failed(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        match status {
            StatusCode::OK => match serde_json::from_slice(&bytes) {
                Ok(value) => Answer::Ok { index, value },
                Err(e) => Answer::Failed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("answer is not JSON: {e}"),
                ),
            },
            StatusCode::NOT_FOUND => Answer::Ok {
                index,
                value: Value::Null,
            },
            other => Answer::Failed(other, String::from_utf8_lossy(&bytes).into_owned()),
        }
    }
}
