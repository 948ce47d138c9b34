//! Following a watch plan: blocking queries against an agent's HTTP API
//! until stopped, and the plan's handler run with each new result. Used by
//! `meridian watch` and by the agent for the config file's watches.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::plan::{WatchHandler, WatchKind, WatchPlan};
use crate::api::enc;

/// The blocking read behind the watch.
fn request(kind: &WatchKind) -> (String, Vec<(&'static str, String)>) {
    match kind {
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
fn absent(kind: &WatchKind) -> Value {
    match kind {
        WatchKind::Key(_) => Value::Null,
        _ => Value::Array(vec![]),
    }
}

/// Follows the plan until `stop` is set, calling `on_change` with each new
/// index and result (the first result included). Errors back off and retry,
/// as Consul's watches do; with `once`, the first result ends it.
pub fn run(
    plan: &WatchPlan,
    base: &str,
    tls: Option<&crate::tls::ApiClientTls>,
    stop: &AtomicBool,
    once: bool,
    mut on_change: impl FnMut(u64, &Value),
) -> Result<(), String> {
    let mut http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(660));
    if let Some(tls) = tls {
        http = http.use_preconfigured_tls(tls.client_config().map_err(|e| e.to_string())?);
    }
    let http = http.build().map_err(|e| e.to_string())?;
    let (path, mut query) = request(&plan.kind);
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
        let resp = req.send().map_err(|e| with_sources(&e)).and_then(|r| {
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
                404 => Ok((index, absent(&plan.kind))),
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

/// An error with its causes: reqwest's own text ("error sending request")
/// hides whether a connection was refused or a certificate rejected.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Starts the config file's watches against this agent's HTTP API (`tls`
/// for an `https` base), each on a thread of its own (blocking queries
/// wait minutes).
pub fn start_config_watches(
    plans: &[WatchPlan],
    base: String,
    tls: Option<crate::tls::ApiClientTls>,
) {
    for (i, plan) in plans.iter().cloned().enumerate() {
        let (base, tls) = (base.clone(), tls.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("watch-{i}"))
            .spawn(move || {
                let stop = AtomicBool::new(false);
                let result = run(&plan, &base, tls.as_ref(), &stop, false, |index, value| {
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
    use crate::watch::plan::WatchParams;

    fn params(kind: &str) -> WatchParams {
        WatchParams {
            kind: kind.into(),
            ..Default::default()
        }
    }

    #[test]
    fn each_type_reads_its_endpoint() {
        let mut p = params("keyprefix");
        p.prefix = Some("".into());
        assert_eq!(
            request(&WatchKind::from_params(&p).unwrap()),
            ("/v1/kv/".to_string(), vec![("recurse", String::new())])
        );
        let mut p = params("service");
        p.service = Some("web".into());
        p.tags = vec!["v1".into()];
        p.passing_only = true;
        assert_eq!(
            request(&WatchKind::from_params(&p).unwrap()).1,
            vec![("tag", "v1".to_string()), ("passing", String::new())]
        );
        assert_eq!(
            request(&WatchKind::from_params(&params("checks")).unwrap()).0,
            "/v1/health/state/any"
        );
    }
}
