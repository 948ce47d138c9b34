//! Watches: a view of the data (a key, a prefix, the services, the nodes,
//! one service's instances, checks, events) followed with blocking
//! queries, and a handler run with the new JSON each time its index moves.
//! `meridian watch` runs one from the command line; `watches` in the config
//! files are run by the agent against its own HTTP API. Both behave as
//! Consul's: the handler gets the JSON on stdin (scripts) or as the body
//! (HTTP), and `CONSUL_INDEX` / `X-Consul-Index` carry the index.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WatchKind {
    Key(String),
    KeyPrefix(String),
    Services,
    Nodes,
    Service {
        service: String,
        tags: Vec<String>,
        passing_only: bool,
    },
    Checks {
        service: Option<String>,
        state: Option<String>,
    },
    Event {
        name: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum WatchHandler {
    /// Print the first result and stop (`meridian watch` without a handler).
    #[default]
    Print,
    /// A command run on every change, the JSON on its stdin.
    Script { args: Vec<String>, shell: bool },
    /// An HTTP request on every change, the JSON as its body.
    Http {
        path: String,
        method: String,
        headers: BTreeMap<String, Vec<String>>,
        timeout: Duration,
        tls_skip_verify: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchPlan {
    pub kind: WatchKind,
    pub datacenter: Option<String>,
    pub token: Option<String>,
    pub stale: bool,
    pub handler: WatchHandler,
}

#[derive(Debug, Error, PartialEq)]
pub enum WatchError {
    #[error("{0}")]
    Invalid(String),
}

/// The parameters of a watch, whatever they came from (flags or a file).
#[derive(Debug, Default, Clone)]
pub struct WatchParams {
    pub kind: String,
    pub key: Option<String>,
    pub prefix: Option<String>,
    pub service: Option<String>,
    pub tags: Vec<String>,
    pub passing_only: bool,
    pub state: Option<String>,
    pub name: Option<String>,
}

impl WatchKind {
    /// Checks the parameters a type needs, with Consul's messages.
    pub fn from_params(p: &WatchParams) -> Result<WatchKind, WatchError> {
        let need = |v: &Option<String>, msg: &str| {
            v.clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| WatchError::Invalid(msg.to_string()))
        };
        Ok(match p.kind.as_str() {
            "key" => WatchKind::Key(need(&p.key, "Must specify a single key to watch")?),
            "keyprefix" => WatchKind::KeyPrefix(p.prefix.clone().ok_or_else(|| {
                WatchError::Invalid("Must specify a single prefix to watch".into())
            })?),
            "services" => WatchKind::Services,
            "nodes" => WatchKind::Nodes,
            "service" => WatchKind::Service {
                service: need(&p.service, "Must specify a single service to watch")?,
                tags: p.tags.clone(),
                passing_only: p.passing_only,
            },
            "checks" => {
                if p.service.is_some() && p.state.is_some() {
                    return Err(WatchError::Invalid(
                        "Cannot specify service and state".into(),
                    ));
                }
                WatchKind::Checks {
                    service: p.service.clone(),
                    state: p.state.clone(),
                }
            }
            "event" => WatchKind::Event {
                name: p.name.clone().filter(|n| !n.is_empty()),
            },
            "" => return Err(WatchError::Invalid("Watch type must be specified".into())),
            other => {
                return Err(WatchError::Invalid(format!(
                    "Unsupported watch type: {other}"
                )))
            }
        })
    }

    /// The blocking read behind the watch.
    fn request(&self) -> (String, Vec<(&'static str, String)>) {
        let enc = crate::api::enc;
        match self {
            WatchKind::Key(k) => (format!("/v1/kv/{}", enc(k)), vec![]),
            WatchKind::KeyPrefix(p) => (
                format!("/v1/kv/{}", enc(p)),
                vec![("recurse", String::new())],
            ),
            WatchKind::Services => ("/v1/catalog/services".into(), vec![]),
            WatchKind::Nodes => ("/v1/catalog/nodes".into(), vec![]),
            WatchKind::Service {
                service,
                tags,
                passing_only,
            } => {
                let mut q: Vec<(&str, String)> = tags.iter().map(|t| ("tag", t.clone())).collect();
                if *passing_only {
                    q.push(("passing", String::new()));
                }
                (format!("/v1/health/service/{}", enc(service)), q)
            }
            WatchKind::Checks { service, state } => match (service, state) {
                (Some(s), _) => (format!("/v1/health/checks/{}", enc(s)), vec![]),
                (None, s) => (
                    format!("/v1/health/state/{}", enc(s.as_deref().unwrap_or("any"))),
                    vec![],
                ),
            },
            WatchKind::Event { name } => (
                "/v1/event/list".into(),
                name.iter().map(|n| ("name", n.clone())).collect(),
            ),
        }
    }

    /// What a missing key or prefix reads as.
    fn absent(&self) -> Value {
        match self {
            WatchKind::Key(_) => Value::Null,
            _ => Value::Array(vec![]),
        }
    }
}

/// Follows the plan until `stop` is set, calling `on_change` with each new
/// index and result (the first result included). Errors back off and retry,
/// as Consul's watches do; with `once`, the first result ends it.
pub fn run(
    plan: &WatchPlan,
    base: &str,
    stop: &AtomicBool,
    once: bool,
    mut on_change: impl FnMut(u64, &Value),
) -> Result<(), String> {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(660))
        .build()
        .map_err(|e| e.to_string())?;
    let (path, mut query) = plan.kind.request();
    if let Some(dc) = &plan.datacenter {
        query.push(("dc", dc.clone()));
    }
    if plan.stale {
        query.push(("stale", String::new()));
    }
    let mut last = 0u64;
    let mut backoff = Duration::from_millis(500);
    while !stop.load(Ordering::SeqCst) {
        let mut q = query.clone();
        if last > 0 {
            q.push(("index", last.to_string()));
            q.push(("wait", "5m".into()));
        }
        let mut req = http.get(format!("{base}{path}")).query(&q);
        if let Some(t) = &plan.token {
            req = req.header("X-Consul-Token", t);
        }
        let resp = req.send().map_err(|e| e.to_string()).and_then(|r| {
            let status = r.status().as_u16();
            let index = r
                .headers()
                .get("X-Consul-Index")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let body = r.bytes().map_err(|e| e.to_string())?;
            match status {
                200 => serde_json::from_slice::<Value>(&body)
                    .map(|v| (index, v))
                    .map_err(|e| e.to_string()),
                404 => Ok((index, plan.kind.absent())),
                _ => Err(format!(
                    "Unexpected response code: {status} ({})",
                    String::from_utf8_lossy(&body).trim()
                )),
            }
        });
        let (index, value) = match resp {
            Ok(r) => r,
            Err(e) => {
                if once {
                    return Err(e);
                }
                tracing::warn!(error = %e, "watch query failed; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        backoff = Duration::from_millis(500);
        if index == last {
            continue;
        }
        // Any other index is a change, one that went backwards (a
        // restored snapshot, a new cluster) included.
        last = index;
        let value = match (&plan.kind, value) {
            (WatchKind::Key(_), Value::Array(mut a)) if !a.is_empty() => a.swap_remove(0),
            (_, v) => v,
        };
        on_change(index, &value);
        if once {
            return Ok(());
        }
    }
    Ok(())
}

/// Runs the plan's handler for one change.
pub fn invoke(handler: &WatchHandler, index: u64, value: &Value) -> Result<(), String> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
    match handler {
        WatchHandler::Print => {
            let mut out = std::io::stdout().lock();
            out.write_all(&body)
                .and_then(|_| out.write_all(b"\n"))
                .map_err(|e| e.to_string())
        }
        WatchHandler::Script { args, shell } => {
            let mut cmd = if *shell {
                let mut c = std::process::Command::new("sh");
                c.arg("-c").arg(args.join(" "));
                c
            } else {
                let mut c = std::process::Command::new(&args[0]);
                c.args(&args[1..]);
                c
            };
            let mut child = cmd
                .env("CONSUL_INDEX", index.to_string())
                .stdin(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| format!("Failed to invoke watch handler: {e}"))?;
            if let Some(mut stdin) = child.stdin.take() {
                // A handler that does not read its input is fine.
                let _ = stdin.write_all(&body);
            }
            let status = child.wait().map_err(|e| e.to_string())?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("Watch handler exited with {status}"))
            }
        }
        WatchHandler::Http {
            path,
            method,
            headers,
            timeout,
            tls_skip_verify,
        } => {
            let http = reqwest::blocking::Client::builder()
                .timeout(*timeout)
                .danger_accept_invalid_certs(*tls_skip_verify)
                .build()
                .map_err(|e| e.to_string())?;
            let method = reqwest::Method::from_bytes(method.as_bytes())
                .map_err(|_| format!("invalid HTTP method {method:?}"))?;
            let mut req = http
                .request(method, path)
                .header("Content-Type", "application/json")
                .header("X-Consul-Index", index.to_string())
                .body(body);
            for (k, vs) in headers {
                for v in vs {
                    req = req.header(k, v);
                }
            }
            let r = req.send().map_err(|e| e.to_string())?;
            if r.status().is_success() {
                Ok(())
            } else {
                Err(format!("Watch HTTP handler answered {}", r.status()))
            }
        }
    }
}

/// Starts the config file's watches against this agent's HTTP API, each
/// on a thread of its own (blocking queries wait minutes).
pub fn start_config_watches(plans: &[WatchPlan], base: String) {
    for (i, plan) in plans.iter().cloned().enumerate() {
        let base = base.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("watch-{i}"))
            .spawn(move || {
                let stop = AtomicBool::new(false);
                let result = run(&plan, &base, &stop, false, |index, value| {
                    if let Err(e) = invoke(&plan.handler, index, value) {
                        tracing::warn!(watch = i, error = %e, "watch handler failed");
                    }
                });
                if let Err(e) = result {
                    tracing::error!(watch = i, error = %e, "watch stopped");
                }
            });
        if let Err(e) = spawned {
            tracing::error!(watch = i, error = %e, "cannot start a watch");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kind: &str) -> WatchParams {
        WatchParams {
            kind: kind.into(),
            ..Default::default()
        }
    }

    #[test]
    fn each_type_asks_for_what_it_needs() {
        assert_eq!(
            WatchKind::from_params(&params("key")),
            Err(WatchError::Invalid(
                "Must specify a single key to watch".into()
            ))
        );
        assert!(WatchKind::from_params(&params("service")).is_err());
        assert!(WatchKind::from_params(&params("bogus")).is_err());
        assert!(WatchKind::from_params(&params("")).is_err());
        let mut p = params("checks");
        p.service = Some("web".into());
        p.state = Some("critical".into());
        assert!(WatchKind::from_params(&p).is_err());
        let mut p = params("keyprefix");
        p.prefix = Some("".into());
        assert_eq!(
            WatchKind::from_params(&p).unwrap().request(),
            ("/v1/kv/".to_string(), vec![("recurse", String::new())])
        );
        let mut p = params("service");
        p.service = Some("web".into());
        p.tags = vec!["v1".into()];
        p.passing_only = true;
        assert_eq!(
            WatchKind::from_params(&p).unwrap().request().1,
            vec![("tag", "v1".to_string()), ("passing", String::new())]
        );
        assert_eq!(
            WatchKind::from_params(&params("checks"))
                .unwrap()
                .request()
                .0,
            "/v1/health/state/any"
        );
    }
}
