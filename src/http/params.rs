//! Shared request handling: query parameters (flags count by presence),
//! query options for blocking and consistency, JSON bodies with Consul's
//! lenient key matching, bounded bodies, and the headers every read carries.

use std::time::Duration;

use actix_web::web::{Bytes, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures::StreamExt;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ApiError;
use crate::config::duration::parse_go_duration;
use crate::config::RuntimeConfig;
use crate::filter::{Filter, Schema};
use crate::structs::{Consistency, QueryMeta, QueryOptions};

/// The query string, decoded (repeated keys are kept: `tag=a&tag=b`),
/// and the caller's ACL token.
#[derive(Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
    token: Option<String>,
    raw: String,
}

impl Params {
    pub fn from(req: &HttpRequest) -> Result<Params, ApiError> {
        Params::parse(req.query_string(), |name| {
            req.headers().get(name).and_then(|v| v.to_str().ok())
        })
    }

    /// A query string as a handler sees it, with `header` answering for the
    /// request's headers: the one parse behind [`Params::from`], apart so
    /// that the fuzz target reaches it without building a request.
    pub fn parse<'h>(
        query: &str,
        header: impl Fn(&str) -> Option<&'h str>,
    ) -> Result<Params, ApiError> {
        let pairs = actix_web::web::Query::<Vec<(String, String)>>::from_query(query)
            .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}")))?
            .into_inner();
        let token = request_token(&pairs, header);
        Ok(Params {
            pairs,
            token,
            raw: query.to_string(),
        })
    }

    /// The query string as it came, for the errors that quote it.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The caller's ACL token, where Consul looks for it.
    pub fn token(&self) -> Option<String> {
        self.token.clone()
    }

    /// Consul's flags count by presence: `?recurse`, `?recurse=true`, `?keys=True`.
    pub fn has(&self, name: &str) -> bool {
        self.pairs
            .iter()
            .any(|(k, v)| k == name && !v.eq_ignore_ascii_case("false"))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn u64(&self, name: &str, what: &str) -> Result<Option<u64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("Invalid {what}"))),
        }
    }

    /// `?filter=`, checked against the fields of the answer's elements
    /// before anything is read (so a bad one is a 400 at once, not after a
    /// blocking wait); none when absent or empty, as in Consul.
    pub fn filter(&self, schema: &Schema) -> Result<Option<Filter>, ApiError> {
        match self.get("filter").filter(|f| !f.is_empty()) {
            None => Ok(None),
            Some(text) => Filter::new(text, schema).map(Some).map_err(|e| {
                ApiError::bad_request(format!(
                    "Failed to create boolean expression evaluator: {e}"
                ))
            }),
        }
    }

    /// These parameters with `?dc=` naming `dc` (one datacenter's part of
    /// a `?dc=*` read).
    pub fn with_dc(&self, dc: &str) -> Params {
        let mut p = self.clone();
        p.pairs.retain(|(k, _)| k != "dc");
        p.pairs.push(("dc".into(), dc.to_string()));
        p
    }

    pub fn dc(&self) -> Option<String> {
        self.get("dc").filter(|d| !d.is_empty()).map(str::to_string)
    }

    /// Blocking and consistency options, with Consul's defaults, clamp and
    /// jitter (a random extra of up to wait/16 spreads wake-ups).
    pub fn query_options(&self, cfg: &RuntimeConfig) -> Result<QueryOptions, ApiError> {
        let stale = self.has("stale");
        let consistent = self.has("consistent");
        if stale && consistent {
            return Err(ApiError::bad_request(
                "Cannot specify ?stale with ?consistent, conflicting semantics.",
            ));
        }
        let min_index = self.u64("index", "index")?.unwrap_or(0);
        let mut wait = match self.get("wait") {
            Some(w) => {
                parse_go_duration(w).map_err(|_| ApiError::bad_request("Invalid wait time"))?
            }
            None => cfg.default_query_time,
        };
        if wait.is_zero() {
            wait = cfg.default_query_time;
        }
        wait = wait.min(cfg.max_query_time);
        let jitter_ms = (wait.as_millis() / 16) as u64;
        if jitter_ms > 0 {
            wait += Duration::from_millis(rand::thread_rng().gen_range(0..jitter_ms));
        }
        Ok(QueryOptions {
            dc: self.dc(),
            consistency: if stale {
                Consistency::Stale
            } else if consistent {
                Consistency::Consistent
            } else {
                Consistency::Default
            },
            min_index,
            max_wait: wait,
            token: self.token(),
            near: self.near(cfg),
        })
    }

    /// `?near=` as Consul's `parseSource` reads it: `_agent` is this
    /// agent's node; another datacenter's answer is not sorted, since
    /// coordinates only compare within one.
    pub fn near(&self, cfg: &RuntimeConfig) -> Option<String> {
        if cfg.disable_coordinates {
            return None;
        }
        let near = self.get("near").filter(|n| !n.is_empty())?;
        if let Some(dc) = self.dc() {
            if !dc.eq_ignore_ascii_case(&cfg.datacenter) {
                return None;
            }
        }
        Some(if near == "_agent" {
            cfg.node_name.clone()
        } else {
            near.to_string()
        })
    }
}

/// Consul's order: `?token=`, then `X-Consul-Token`, then
/// `Authorization: Bearer`. An empty value counts as none.
fn request_token<'h>(
    query: &[(String, String)],
    header: impl Fn(&str) -> Option<&'h str>,
) -> Option<String> {
    let header = |name: &str| header(name).map(str::trim);
    given(
        query
            .iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.as_str()),
    )
    .or_else(|| given(header("X-Consul-Token")))
    .or_else(|| given(header("Authorization").and_then(|a| a.strip_prefix("Bearer "))))
    .map(str::to_string)
}

fn given(t: Option<&str>) -> Option<&str> {
    t.map(str::trim).filter(|t| !t.is_empty())
}

/// Reads a body up to `limit` bytes, a bound of Meridian's own (Consul
/// reads these bodies unbounded); larger bodies get 413.
pub async fn read_body(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    read_limited(req, payload, limit, None).await
}

/// [`read_body`] for a limit set by the config key `key`
/// (`kv_max_value_size`, `txn_max_req_len`): the 413 is Consul's text,
/// which points at that key.
pub async fn read_body_for(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
    key: &str,
) -> Result<Bytes, ApiError> {
    read_limited(req, payload, limit, Some(key)).await
}

async fn read_limited(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
    key: Option<&str>,
) -> Result<Bytes, ApiError> {
    let too_large = |n: usize| {
        let text = format!("Request body({n} bytes) too large, max size: {limit} bytes");
        ApiError::too_large(match key {
            Some(key) => format!(
                "{text}. See https://developer.hashicorp.com/docs/agent/config/config-files#{key}."
            ),
            None => text,
        })
    };
    if let Some(len) = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(too_large(len));
        }
    }
    let mut body = actix_web::web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("Failed to read request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(body.len() + chunk.len()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Field names whose values are user maps: their keys are data, not names.
const USER_MAPS: &[&str] = &[
    "meta",
    "nodemeta",
    "servicemeta",
    "taggedaddresses",
    "servicetaggedaddresses",
    "header",
    "definition",
];

/// Known field names by their folded form (lowercase, no underscores).
const FIELDS: &[&str] = &[
    "ID",
    "Name",
    "Tags",
    "Address",
    "Port",
    "Meta",
    "Weights",
    "Passing",
    "Warning",
    "EnableTagOverride",
    "Kind",
    "Check",
    "Checks",
    "Node",
    "Datacenter",
    "TaggedAddresses",
    "NodeMeta",
    "Service",
    "ServiceID",
    "CheckID",
    "Status",
    "Notes",
    "Output",
    "Interval",
    "Timeout",
    "TTL",
    "HTTP",
    "Method",
    "Header",
    "Body",
    "TLSSkipVerify",
    "TCP",
    "UDP",
    "GRPC",
    "Args",
    "ScriptArgs",
    "DeregisterCriticalServiceAfter",
    "SuccessBeforePassing",
    "FailuresBeforeWarning",
    "FailuresBeforeCritical",
    "AliasService",
    "AliasNode",
    "SkipNodeUpdate",
    "Definition",
    "ServiceName",
    "ServiceTags",
    "Type",
    "Value",
    "Key",
    "Flags",
    "GRPCUseTLS",
    "LockDelay",
    "Behavior",
    "NodeChecks",
    "ServiceChecks",
    "Namespace",
    "KV",
    "Verb",
    "Index",
    "Session",
    // ACL bodies (py-consul, for one, sends `name` and `rules`).
    "AccessorID",
    "SecretID",
    "Description",
    "Policies",
    "Roles",
    "ServiceIdentities",
    "NodeIdentities",
    "NodeName",
    "Local",
    "ExpirationTime",
    "ExpirationTTL",
    "CreateTime",
    "Rules",
    "Datacenters",
    "BootstrapSecret",
    "Segment",
    "Coord",
    "Vec",
    "Error",
    "Adjustment",
    "Height",
];

fn fold(k: &str) -> String {
    k.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Consul decodes request bodies case-insensitively and accepts snake_case;
/// rewrite every known field name to its canonical spelling.
pub fn canonicalize(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut val) in old {
                // Consul's decoder leaves a field at its zero value when
                // the body says `null` (Ansible's consul_session sends
                // `"Node": null`): as if the key were absent.
                if val.is_null() {
                    continue;
                }
                let f = fold(&k);
                let key = FIELDS
                    .iter()
                    .find(|c| fold(c) == f)
                    .map(|c| c.to_string())
                    .unwrap_or(k);
                if !USER_MAPS.contains(&f.as_str()) {
                    canonicalize(&mut val);
                }
                map.insert(key, val);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(canonicalize),
        _ => {}
    }
}

/// Decodes a JSON body, naming the offending field on error.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Request decode failed: {e}")))?;
    canonicalize(&mut v);
    serde_path_to_error::deserialize(v).map_err(|e| {
        ApiError::bad_request(format!(
            "Request decode failed: {}: {}",
            e.path(),
            e.inner()
        ))
    })
}

/// A JSON answer; `?pretty` indents it as Consul does.
pub fn json<T: Serialize>(req: &HttpRequest, value: &T) -> HttpResponse {
    json_with(HttpResponse::Ok(), req, value)
}

pub fn json_with<T: Serialize>(
    mut builder: actix_web::HttpResponseBuilder,
    req: &HttpRequest,
    value: &T,
) -> HttpResponse {
    let pretty = req
        .query_string()
        .split('&')
        .any(|p| p == "pretty" || p.starts_with("pretty="));
    let body = if pretty {
        serde_json::to_string_pretty(value).map(|s| s + "\n")
    } else {
        serde_json::to_string(value)
    };
    match body {
        Ok(b) => builder.content_type("application/json").body(b),
        Err(e) => {
            HttpResponse::InternalServerError().body(format!("failed to encode response: {e}"))
        }
    }
}

/// A builder with the headers of a read: index, leader, contact, mode.
pub fn read_response(
    status: actix_web::http::StatusCode,
    meta: &QueryMeta,
) -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::build(status);
    b.insert_header(("X-Consul-Index", meta.index.max(1).to_string()))
        .insert_header(("X-Consul-KnownLeader", meta.known_leader.to_string()))
        .insert_header(("X-Consul-LastContact", meta.last_contact_ms.to_string()))
        .insert_header(("X-Consul-Effective-Consistency", meta.consistency.as_str()));
    if meta.results_filtered {
        b.insert_header(("X-Consul-Results-Filtered-By-ACLs", "true"));
    }
    b
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::Params;

    #[derive(serde::Deserialize, Default, Debug)]
    #[serde(rename_all = "PascalCase", default)]
    struct Body {
        node: String,
        lock_delay: String,
        meta: std::collections::BTreeMap<String, String>,
    }

    #[test]
    fn null_is_an_absent_field_as_in_consuls_decoder() {
        let b: Body = super::decode(br#"{"Node": null, "lock_delay": null, "Meta": {"a": "b"}}"#)
            .expect("nulls are absent fields");
        assert_eq!(b.node, "");
        assert_eq!(b.lock_delay, "");
        assert_eq!(b.meta["a"], "b");
        let e = super::decode::<Body>(br#"{"Node": 5}"#).expect_err("a number is no node");
        assert!(e.to_string().contains("Node"), "{e}");
    }

    fn token(req: TestRequest) -> Option<String> {
        Params::from(&req.to_http_request()).unwrap().token()
    }

    #[test]
    fn the_token_is_found_where_consul_looks_in_its_order() {
        assert_eq!(token(TestRequest::get().uri("/v1/kv/a")), None);
        let all = || {
            TestRequest::get()
                .insert_header(("X-Consul-Token", "header"))
                .insert_header(("Authorization", "Bearer bearer"))
        };
        assert_eq!(
            token(all().uri("/v1/kv/a?token=query")).as_deref(),
            Some("query")
        );
        assert_eq!(token(all().uri("/v1/kv/a")).as_deref(), Some("header"));
        let bearer = TestRequest::get()
            .uri("/v1/kv/a?token=")
            .insert_header(("Authorization", "Bearer  bearer "));
        assert_eq!(
            token(bearer).as_deref(),
            Some("bearer"),
            "empty ?token= is none"
        );
        let basic = TestRequest::get()
            .uri("/v1/kv/a")
            .insert_header(("Authorization", "Basic xyz"));
        assert_eq!(token(basic), None);
    }
}
