//! `PUT /v1/txn`: KV, node, service and check operations applied all or nothing through one Raft
//! entry, in Consul's request and answer shapes (409 with `Errors` when an
//! operation fails, nothing written then).

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::params::{decode, json_with, read_body_for, Params};
use super::routes::{put, Decision, Route};
use super::ApiState;
use crate::state::command::{Command, CommandResult};
use crate::state::structs::{HealthCheck, Node, NodeService};
use crate::state::txn::{KvOp, TxnOp as StateOp, TxnOutcome, TxnResult};

/// Consul's cap on operations in one transaction.
pub const MAX_OPS: usize = 64;

pub fn routes() -> Vec<Route> {
    vec![put("/v1/txn", Decision::RequestPath, |r| r.to(txn))]
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TxnOp {
    #[serde(rename = "KV")]
    kv: Option<KvBody>,
    node: Option<NodeBody>,
    service: Option<ServiceBody>,
    check: Option<CheckBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NodeBody {
    verb: String,
    node: Node,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceBody {
    verb: String,
    node: String,
    service: NodeService,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CheckBody {
    verb: String,
    check: HealthCheck,
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
    /// Meridian extension: the key's TTL (`"30s"`) for `set`, `cas`,
    /// `lock` and `unlock`.
    #[serde(rename = "TTL")]
    ttl: Option<String>,
}

async fn txn(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let body = read_body_for(
        &req,
        payload,
        state.config.txn_max_req_len,
        "txn_max_req_len",
    )
    .await?;
    let txn_ops = parse_ops(&body)?;
    // KV-only transactions keep the entry format older servers read.
    let kv_only: Option<Vec<KvOp>> = txn_ops
        .iter()
        .map(|o| match o {
            StateOp::Kv(k) => Some(k.clone()),
            _ => None,
        })
        .collect();
    let command = match kv_only {
        Some(kv) => Command::Txn(kv),
        None => Command::TxnOps(txn_ops),
    };
    match state.write(p.dc(), p.token(), command).await?.result {
        CommandResult::Txn(TxnOutcome::Results(results)) => {
            let results: Vec<serde_json::Value> = results
                .into_iter()
                .map(|r| match r {
                    TxnResult::Kv(e) => json!({ "KV": e }),
                    TxnResult::Node(n) => json!({ "Node": n }),
                    TxnResult::Service(s) => json!({ "Service": s }),
                    TxnResult::Check(c) => json!({ "Check": c }),
                })
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

/// A transaction's body as the operations it asks for, each checked as
/// Consul checks it before anything is written.
pub(crate) fn parse_ops(body: &[u8]) -> Result<Vec<StateOp>, ApiError> {
    let ops: Vec<TxnOp> = decode(body)?;
    if ops.len() > MAX_OPS {
        return Err(ApiError::too_large(format!(
            "Transaction contains too many operations ({} > {MAX_OPS})",
            ops.len()
        )));
    }
    let mut txn_ops = Vec::with_capacity(ops.len());
    for (i, op) in ops.into_iter().enumerate() {
        let op = match op {
            TxnOp {
                kv: Some(kv),
                node: None,
                service: None,
                check: None,
            } => StateOp::Kv(kv_op(i, kv)?),
            TxnOp {
                kv: None,
                node: Some(n),
                service: None,
                check: None,
            } => StateOp::Node {
                verb: n.verb,
                node: n.node,
            },
            TxnOp {
                kv: None,
                node: None,
                service: Some(s),
                check: None,
            } => {
                if s.node.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "Operation {i}: Service.Node is required"
                    )));
                }
                StateOp::Service {
                    verb: s.verb,
                    node: s.node,
                    service: s.service,
                }
            }
            TxnOp {
                kv: None,
                node: None,
                service: None,
                check: Some(c),
            } => StateOp::Check {
                verb: c.verb,
                check: c.check,
            },
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Operation {i}: exactly one of KV, Node, Service or Check is required"
                )))
            }
        };
        txn_ops.push(op);
    }
    Ok(txn_ops)
}

fn kv_op(i: usize, kv: KvBody) -> Result<KvOp, ApiError> {
    let value = match kv.value.as_deref() {
        None | Some("") => Vec::new(),
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| ApiError::bad_request(format!("Operation {i}: KV.Value: {e}")))?,
    };
    if kv.key.is_empty() && kv.verb != "get-tree" && kv.verb != "delete-tree" {
        return Err(ApiError::bad_request(format!("Operation {i}: missing key")));
    }
    if let Some(ttl) = &kv.ttl {
        if !matches!(kv.verb.as_str(), "set" | "cas" | "lock" | "unlock") {
            return Err(ApiError::bad_request(format!(
                "Operation {i}: KV.TTL is only for set, cas, lock and unlock, not {:?}",
                kv.verb
            )));
        }
        crate::structs::catalog::parse_kv_ttl(ttl)
            .map_err(|e| ApiError::bad_request(format!("Operation {i}: KV.TTL: {e}")))?;
    }
    Ok(KvOp {
        verb: kv.verb,
        key: kv.key,
        value,
        flags: kv.flags,
        index: kv.index,
        session: kv.session,
        ttl: kv.ttl,
    })
}
