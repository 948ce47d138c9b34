//! `/v1/operator/keyring`: list (GET), install (POST), use (PUT) and
//! remove (DELETE) gossip encryption keys on the WAN pool and the LAN
//! pool of every datacenter, answered per pool in Consul's shape. A pool
//! where a member refused or did not answer turns the whole answer into
//! Consul's multi-error text (500).

use actix_web::http::Method;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::params::{decode, json as json_resp, read_body, Params};
use super::routes::{delete, get, put, route, Decision::*, Need, Route};
use super::ApiState;
use crate::acl::{Access, Resource};
use crate::actors::node::keyring::KeyringOperation;
use crate::lan::keyring::parse_key;
use crate::lan::MAX_RELAY_FACTOR;
use crate::structs::keyring::{KeyOp, PoolKeys};

const PATH: &str = "/v1/operator/keyring";

pub fn routes() -> Vec<Route> {
    let read = || Agent(Need::global(Resource::Keyring, Access::Read));
    let write = || Agent(Need::global(Resource::Keyring, Access::Write));
    vec![
        get(PATH, read(), |r| r.to(keyring)),
        route(Method::POST, PATH, write(), |r| r.to(keyring)),
        put(PATH, write(), |r| r.to(keyring)),
        delete(PATH, write(), |r| r.to(keyring)),
    ]
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct KeyBody {
    #[serde(default)]
    key: String,
}

/// Go's `strconv.ParseBool`, which Consul reads `local-only` with.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `?relay-factor=` and `?local-only=` with Consul's checks and texts.
pub(crate) fn options(p: &Params, list: bool) -> Result<(u8, bool), ApiError> {
    let relay = match p.get("relay-factor").filter(|v| !v.is_empty()) {
        None => 0,
        Some(v) => {
            let n: i64 = v
                .parse()
                .map_err(|e| ApiError::bad_request(format!("Error parsing relay factor: {e}")))?;
            u8::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_RELAY_FACTOR)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid relay-factor: Relay factor must be in range: [0, {MAX_RELAY_FACTOR}]"
                    ))
                })?
        }
    };
    let local_only = match p.get("local-only").filter(|v| !v.is_empty()) {
        None => false,
        Some(v) => {
            let local = parse_bool(v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Error parsing local-only: strconv.ParseBool: parsing \"{v}\": invalid syntax"
                ))
            })?;
            if local && !list {
                return Err(ApiError::bad_request(
                    "Invalid use of local-only: local-only can only be set for list requests",
                ));
            }
            local
        }
    };
    Ok((relay, local_only))
}

/// The key a write names, refused before it reaches any member.
async fn key_of(req: &HttpRequest, payload: Payload) -> Result<String, ApiError> {
    let body = read_body(req, payload, 64 * 1024).await?;
    let b: KeyBody = if body.is_empty() {
        KeyBody::default()
    } else {
        decode(&body)?
    };
    if b.key.is_empty() {
        return Err(ApiError::bad_request(
            "Request decode failed: the body must name the key: {\"Key\": \"<base64>\"}",
        ));
    }
    parse_key(&b.key).map_err(|e| ApiError::bad_request(format!("Invalid key: {e}")))?;
    Ok(b.key)
}

async fn keyring(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let list = req.method() == Method::GET;
    let (relay_factor, local_only) = options(&p, list)?;
    let op = match *req.method() {
        Method::GET => KeyOp::List,
        Method::POST => KeyOp::Install(key_of(&req, payload).await?),
        Method::PUT => KeyOp::Use(key_of(&req, payload).await?),
        _ => KeyOp::Remove(key_of(&req, payload).await?),
    };
    let pools = state
        .ask(KeyringOperation {
            op,
            relay_factor,
            local_only,
            token: state.router.token_or_default(p.token()),
        })
        .await??;
    if let Some(e) = errors(&pools) {
        return Err(ApiError::internal(e));
    }
    if !list {
        return Ok(HttpResponse::Ok().finish());
    }
    let body: Vec<serde_json::Value> = pools
        .iter()
        .map(|p| {
            json!({
                "WAN": p.wan,
                "Datacenter": p.datacenter,
                "Segment": "",
                "Partition": "",
                "Keys": p.tally.keys,
                "PrimaryKeys": p.tally.primary_keys,
                "NumNodes": p.tally.num_nodes,
                "Messages": p.tally.messages,
            })
        })
        .collect();
    Ok(json_resp(&req, &body))
}

/// Consul's answer when a pool failed: each pool's error and each
/// member's message, in go-multierror's layout.
fn errors(pools: &[PoolKeys]) -> Option<String> {
    let mut errs = Vec::new();
    for p in pools {
        let Some(e) = p.tally.error() else { continue };
        let pool = if p.wan {
            "WAN".to_string()
        } else {
            format!("{} (LAN)", p.datacenter)
        };
        errs.push(format!("{pool} error: {e}"));
        for (node, msg) in &p.tally.messages {
            errs.push(format!("{node}: {msg}"));
        }
    }
    if errs.is_empty() {
        return None;
    }
    let head = if errs.len() == 1 {
        "1 error occurred:".to_string()
    } else {
        format!("{} errors occurred:", errs.len())
    };
    let items: String = errs.iter().map(|e| format!("\n\t* {e}")).collect();
    Some(format!("{head}{items}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::keyring::KeyTally;

    #[test]
    fn a_failed_pool_reads_as_consuls_multierror() {
        let ok = PoolKeys {
            wan: true,
            datacenter: "dc1".into(),
            tally: KeyTally {
                num_nodes: 1,
                num_resp: 1,
                ..KeyTally::default()
            },
        };
        assert_eq!(errors(std::slice::from_ref(&ok)), None);
        let mut bad = ok.clone();
        bad.wan = false;
        bad.tally.num_err = 1;
        bad.tally.messages.insert(
            "n1".into(),
            "Removing the primary key is not allowed".into(),
        );
        assert_eq!(
            errors(&[ok, bad]).as_deref(),
            Some("2 errors occurred:\n\t* dc1 (LAN) error: 1/1 nodes reported failure\n\t* n1: Removing the primary key is not allowed\n\n")
        );
    }

    #[test]
    fn local_only_is_for_lists_and_relay_factor_is_bounded() {
        let params = |q: &str| {
            Params::from(
                &actix_web::test::TestRequest::get()
                    .uri(&format!("/x?{q}"))
                    .to_http_request(),
            )
            .unwrap()
        };
        assert_eq!(
            options(&params("relay-factor=3&local-only=true"), true).unwrap(),
            (3, true)
        );
        assert!(options(&params("local-only=true"), false)
            .unwrap_err()
            .body
            .contains("local-only can only be set for list requests"));
        assert!(options(&params("relay-factor=6"), true)
            .unwrap_err()
            .body
            .contains("Relay factor must be in range: [0, 5]"));
        assert!(options(&params("relay-factor=x"), true)
            .unwrap_err()
            .body
            .starts_with("Error parsing relay factor"));
        assert_eq!(options(&params(""), false).unwrap(), (0, false));
    }
}
