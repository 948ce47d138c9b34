//! `PUT /v1/txn`: KV operations applied all or nothing through one Raft
//! entry, in Consul's request and answer shapes (409 with `Errors` when an
//! operation fails, nothing written then).

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::params::{decode, json_with, read_body, Params};
use super::ApiState;
use crate::state::command::{Command, CommandResult};
use crate::state::txn::{KvOp, TxnOutcome};

/// Consul's cap on operations in one transaction.
pub const MAX_OPS: usize = 64;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(super::endpoint("/v1/txn", "PUT", web::put().to(txn)));
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TxnOp {
    #[serde(rename = "KV")]
    kv: Option<KvBody>,
    node: Option<serde_json::Value>,
    service: Option<serde_json::Value>,
    check: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct KvBody {
    verb: String,
    key: String,
    value: Option<String>,
    flags: u64,
    index: u64,
    session: String,
}

async fn txn(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let body = read_body(&req, payload, super::catalog::MAX_BODY).await?;
    let ops: Vec<TxnOp> = decode(&body)?;
    if ops.len() > MAX_OPS {
        return Err(ApiError::too_large(format!(
            "Transaction contains too many operations ({} > {MAX_OPS})",
            ops.len()
        )));
    }
    let mut kv_ops = Vec::with_capacity(ops.len());
    for (i, op) in ops.into_iter().enumerate() {
        if op.node.is_some() || op.service.is_some() || op.check.is_some() {
            return Err(ApiError::bad_request(format!(
                "Operation {i}: only KV operations are supported in transactions so far"
            )));
        }
        let kv = op
            .kv
            .ok_or_else(|| ApiError::bad_request(format!("Operation {i}: missing KV operation")))?;
        let value = match kv.value.as_deref() {
            None | Some("") => Vec::new(),
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| ApiError::bad_request(format!("Operation {i}: KV.Value: {e}")))?,
        };
        if kv.key.is_empty() && kv.verb != "get-tree" && kv.verb != "delete-tree" {
            return Err(ApiError::bad_request(format!("Operation {i}: missing key")));
        }
        kv_ops.push(KvOp {
            verb: kv.verb,
            key: kv.key,
            value,
            flags: kv.flags,
            index: kv.index,
            session: kv.session,
        });
    }
    match state.write(p.dc(), Command::Txn(kv_ops)).await?.result {
        CommandResult::Txn(TxnOutcome::Results(results)) => {
            let results: Vec<serde_json::Value> = results
                .into_iter()
                .flatten()
                .map(|e| json!({ "KV": e }))
                .collect();
            Ok(json_with(
                HttpResponse::Ok(),
                &req,
                &json!({ "Results": results, "Errors": null }),
            ))
        }
        CommandResult::Txn(TxnOutcome::Errors(errors)) => {
            let errors: Vec<serde_json::Value> = errors
                .into_iter()
                .map(|(i, what)| json!({ "OpIndex": i, "What": what }))
                .collect();
            Ok(json_with(
                HttpResponse::build(StatusCode::CONFLICT),
                &req,
                &json!({ "Results": null, "Errors": errors }),
            ))
        }
        other => Err(ApiError::internal(format!("unexpected result {other:?}"))),
    }
}
