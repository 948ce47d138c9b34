//! `/v1/query/*`: prepared queries (Consul's `prepared_query_endpoint.go`):
//! create, list, read, update, delete, execute and explain. Definitions
//! are checked here (Consul's texts, 400) before they go through Raft;
//! the ID is made here so every server applies the same one. Execution
//! and its failover to other datacenters happen on the server that serves
//! the read (the router).

use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::catalog::MAX_BODY;
use super::error::ApiError;
use super::params::{json, json_with, read_body, read_response, Params};
use super::routes::{delete, get, put, route, Decision::*, Route};
use super::ApiState;
use crate::state::command::{Command, CommandResult};
use crate::state::query::{Query, QueryResult};
use crate::structs::prepared_query::{
    canonical_keys, ExecuteOptions, PreparedQuery, QUERY_NOT_FOUND,
};
use crate::structs::ReadResponse;

pub fn routes() -> Vec<Route> {
    vec![
        route(Method::POST, "/v1/query", RequestPath, |r| r.to(create)),
        get("/v1/query", RequestPathFiltered, |r| r.to(list)),
        get("/v1/query/{id}/execute", RequestPathFiltered, |r| {
            r.to(execute)
        }),
        get("/v1/query/{id}/explain", RequestPathFiltered, |r| {
            r.to(explain)
        }),
        get("/v1/query/{id}", RequestPathFiltered, |r| r.to(read)),
        put("/v1/query/{id}", RequestPath, |r| r.to(update)),
        delete("/v1/query/{id}", RequestPath, |r| r.to(remove)),
    ]
}

/// A definition from a body: field names in any case (as Consul's
/// decoder takes them), then Consul's checks.
fn definition(body: &[u8]) -> Result<PreparedQuery, ApiError> {
    let mut v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    canonical_keys(&mut v);
    let q: PreparedQuery = serde_path_to_error::deserialize(v).map_err(|e| {
        ApiError::bad_request(format!(
            "Request decode failed: {}: {}",
            e.path(),
            e.inner()
        ))
    })?;
    q.validate().map_err(ApiError::bad_request)?;
    Ok(q)
}

async fn set(
    req: &HttpRequest,
    state: &ApiState,
    payload: Payload,
    id: String,
    create: bool,
) -> Result<(), ApiError> {
    let p = Params::from(req)?;
    let body = read_body(req, payload, MAX_BODY).await?;
    let mut q = definition(&body)?;
    q.id = id;
    q.create_index = 0;
    q.modify_index = 0;
    let cmd = Command::PreparedQuerySet {
        query: Box::new(q),
        create,
    };
    match state.write(p.dc(), p.token(), cmd).await?.result {
        CommandResult::Done => Ok(()),
        CommandResult::Rejected(e) => Err(ApiError::bad_request(e)),
        other => Err(ApiError::internal(format!("unexpected result {other:?}"))),
    }
}

async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    set(&req, &state, payload, id.clone(), true).await?;
    Ok(json(&req, &json!({ "ID": id })))
}

async fn update(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    set(&req, &state, payload, id.into_inner(), false).await?;
    Ok(HttpResponse::Ok().finish())
}

async fn remove(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let cmd = Command::PreparedQueryDelete {
        id: id.into_inner(),
    };
    state.write(p.dc(), p.token(), cmd).await?;
    Ok(HttpResponse::Ok().finish())
}

async fn read_query(
    req: &HttpRequest,
    state: &ApiState,
    query: Query,
) -> Result<(Params, ReadResponse), ApiError> {
    let p = Params::from(req)?;
    let opts = p.query_options(&state.config)?;
    let resp = state.read(opts, query).await?;
    Ok((p, resp))
}

async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let (_, resp) = read_query(&req, &state, Query::PreparedQueryList).await?;
    super::catalog::answer(&req, resp)
}

/// A query the token may not read answers 403, as Consul's (which tells
/// it from an unknown one).
fn one(resp: &ReadResponse) -> Result<&PreparedQuery, ApiError> {
    match &resp.result {
        QueryResult::PreparedQuery(Some(q)) => Ok(q),
        QueryResult::PreparedQuery(None) if resp.meta.results_filtered => {
            Err(crate::structs::RequestError::PermissionDenied("Permission denied".into()).into())
        }
        QueryResult::PreparedQuery(None) => Err(ApiError::not_found(QUERY_NOT_FOUND)),
        other => Err(ApiError::internal(format!("unexpected result {other:?}"))),
    }
}

async fn read(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let q = Query::PreparedQueryGet {
        id: id.into_inner(),
    };
    let (_, resp) = read_query(&req, &state, q).await?;
    let found = one(&resp)?;
    let b = read_response(StatusCode::OK, &resp.meta);
    Ok(json_with(b, &req, &[found]))
}

async fn explain(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let q = Query::PreparedQueryExplain {
        id_or_name: id.into_inner(),
    };
    let (_, resp) = read_query(&req, &state, q).await?;
    let found = one(&resp)?;
    let b = read_response(StatusCode::OK, &resp.meta);
    Ok(json_with(b, &req, &json!({ "Query": found })))
}

async fn execute(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let limit = match p.get("limit") {
        None | Some("") => 0,
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("Bad limit: {l:?} is not a count")))?,
    };
    // Consul takes the caller's address from X-Forwarded-For when a
    // proxy sent it, else from the connection.
    let source_ip = req
        .headers()
        .get("X-Forwarded-For")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string())
        .or_else(|| req.peer_addr().map(|a| a.ip().to_string()))
        .unwrap_or_default();
    let opts = ExecuteOptions {
        limit,
        near: p.get("near").unwrap_or_default().to_string(),
        agent_node: state.config.node_name.clone(),
        source_ip,
        connect: p.has("connect") && p.get("connect") != Some("false"),
        segment: String::new(),
    };
    let q = Query::PreparedQueryExecute {
        id_or_name: id.into_inner(),
        opts,
    };
    let (_, resp) = read_query(&req, &state, q).await?;
    let b = read_response(StatusCode::OK, &resp.meta);
    match &resp.result {
        QueryResult::PreparedQueryExecuted(Some(r)) => Ok(json_with(b, &req, &r.response())),
        QueryResult::PreparedQueryExecuted(None) => Err(ApiError::not_found(QUERY_NOT_FOUND)),
        other => Err(ApiError::internal(format!("unexpected result {other:?}"))),
    }
}
