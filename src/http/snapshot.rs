//! `/v1/snapshot`: GET saves the datacenter's state as an archive (read on
//! the leader unless `?stale`), PUT restores one through a single Raft
//! entry, so every server switches to it at the same index.

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};

use super::error::ApiError;
use super::params::{read_body, read_response, Params};
use super::routes::{get, put, Decision::RequestPath, Route};
use super::ApiState;
use crate::state::command::{Command, CommandResult};
use crate::state::query::{Query, QueryResult};

/// The largest archive a restore takes (the HTTP body limit).
const MAX_ARCHIVE: usize = 64 * 1024 * 1024;

pub fn routes() -> Vec<Route> {
    vec![
        get("/v1/snapshot", RequestPath, |r| r.to(save)),
        put("/v1/snapshot", RequestPath, |r| r.to(restore)),
    ]
}

async fn save(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let mut opts = p.query_options(&state.config)?;
    // A snapshot is never a blocking query.
    opts.min_index = 0;
    let term = state.status(p.dc(), false).await.map_or(0, |s| s.term);
    let r = state.read(opts, Query::Snapshot).await?;
    let QueryResult::Snapshot(snap) = r.result else {
        return Err(ApiError::internal("unexpected answer to a snapshot read"));
    };
    let (meta, bytes) =
        crate::snapshot::encode(&snap, term).map_err(|e| ApiError::internal(e.to_string()))?;
    tracing::info!(index = meta.index, bytes = bytes.len(), "snapshot saved");
    Ok(read_response(actix_web::http::StatusCode::OK, &r.meta)
        .content_type("application/x-gzip")
        .body(bytes))
}

async fn restore(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let body = read_body(&req, payload, MAX_ARCHIVE).await?;
    let (meta, snap) =
        crate::snapshot::decode(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let w = state
        .write(p.dc(), p.token(), Command::Restore(Box::new(snap)))
        .await?;
    match w.result {
        CommandResult::Done => {
            tracing::info!(snapshot = %meta.id, at = w.index, "snapshot restored");
            Ok(HttpResponse::Ok().finish())
        }
        CommandResult::Rejected(e) => Err(ApiError::internal(e)),
        other => Err(ApiError::internal(format!("unexpected answer {other:?}"))),
    }
}
