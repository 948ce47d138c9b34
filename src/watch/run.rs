//! Following a watch plan: blocking queries against an agent's HTTP API
//! until stopped, and the plan's handler run with each new result. Used by
//! `meridian watch` and by the agent for the config file's watches.

use std::collections::BTreeMap;
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
        WatchKind::KeyPrefix(p) | WatchKind::KeyPrefixChanges(p) => (
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
    // A changes-only watch: what it knows of the prefix.
    let mut view = matches!(plan.kind, WatchKind::KeyPrefixChanges(_)).then(PrefixView::default);
    while !stop.load(Ordering::SeqCst) {
        let mut q = query.clone();
        let changes = view.as_ref().is_some_and(|v| v.in_sync);
        // A changes-only watch that must read in full again (first, or
        // after a 409) does so at once: no index, no wait.
        if last > 0 && (view.is_none() || changes) {
            q.push(("index", last.to_string()));
            q.push(("wait", "5m".into()));
        }
        if changes {
            q.push(("changes", String::new()));
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
                    .map(|v| Some((index, v)))
                    .map_err(|e| e.to_string()),
                404 => Ok(Some((index, absent(&plan.kind)))),
                // The servers no longer remember every deletion since
                // `last`: read the prefix in full, and tell the handler
                // what differs from what it was last told.
                409 if changes => Ok(None),
                _ => Err(format!(
                    "Unexpected response code: {status} ({})",
                    String::from_utf8_lossy(&body).trim()
                )),
            }
        });
        let (index, value) = match resp {
            Ok(Some(r)) => r,
            Ok(None) => {
                tracing::info!(
                    last,
                    "changes-only watch: index too old; reading the prefix in full"
                );
                if let Some(v) = view.as_mut() {
                    v.in_sync = false;
                }
                continue;
            }
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
        let value = match view.as_mut() {
            Some(v) if changes => v.delta(value),
            Some(v) => v.full(value, index),
            None => Some(value),
        };
        if index == last {
            continue;
        }
        // Any other index is a change, one that went backwards (a
        // restored snapshot, a new cluster) included.
        last = index;
        // A changes-only watch whose index moved with nothing for it (a
        // write its token may not read) does not run the handler.
        let Some(value) = value else { continue };
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

/// What a changes-only watch knows of its prefix: each key's
/// `ModifyIndex`, as of the last answer the handler was given.
#[derive(Default)]
struct PrefixView {
    /// `None` until the first full read.
    keys: Option<BTreeMap<String, u64>>,
    /// The next read may ask for `?changes` (false at first and after a 409).
    in_sync: bool,
}

impl PrefixView {
    /// A full listing: the handler's answer is all of it the first time,
    /// and afterwards (a resync after a 409) what differs from what it
    /// knew, deletions included; `None` when nothing does.
    fn full(&mut self, listing: Value, index: u64) -> Option<Value> {
        self.in_sync = true;
        let now: BTreeMap<String, u64> = rows(&listing)
            .filter_map(|r| Some((key_of(r)?, modify_index_of(r))))
            .collect();
        let Some(before) = self.keys.replace(now.clone()) else {
            return Some(listing);
        };
        let mut out: Vec<Value> = rows(&listing)
            .filter(|r| key_of(r).is_some_and(|k| before.get(&k) != now.get(&k)))
            .cloned()
            .collect();
        out.extend(before.keys().filter(|k| !now.contains_key(*k)).map(|k| {
            // The delete's own index is gone with its tombstone.
            serde_json::json!({ "Key": k, "Deleted": true, "ModifyIndex": index })
        }));
        out.sort_by_key(key_of);
        (!out.is_empty()).then_some(Value::Array(out))
    }

    /// A `?changes` answer, folded into what the watch knows; `None`
    /// when it is empty.
    fn delta(&mut self, changes: Value) -> Option<Value> {
        let keys = self.keys.get_or_insert_with(BTreeMap::new);
        for r in rows(&changes) {
            let Some(k) = key_of(r) else { continue };
            if r.get("Deleted").and_then(Value::as_bool) == Some(true) {
                keys.remove(&k);
            } else {
                keys.insert(k, modify_index_of(r));
            }
        }
        let any = rows(&changes).next().is_some();
        any.then_some(changes)
    }
}

fn rows(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn key_of(row: &Value) -> Option<String> {
    row.get("Key").and_then(Value::as_str).map(str::to_string)
}

fn modify_index_of(row: &Value) -> u64 {
    row.get("ModifyIndex").and_then(Value::as_u64).unwrap_or(0)
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

    fn entry(key: &str, index: u64) -> Value {
        serde_json::json!({ "Key": key, "ModifyIndex": index, "Value": null })
    }

    #[test]
    fn a_changes_only_view_gives_everything_once_then_deltas() {
        let mut v = PrefixView::default();
        let first = Value::Array(vec![entry("p/a", 1), entry("p/b", 2)]);
        assert_eq!(v.full(first.clone(), 2), Some(first));
        assert!(v.in_sync);
        let delta = serde_json::json!([
            entry("p/a", 3),
            { "Key": "p/b", "Deleted": true, "ModifyIndex": 4 }
        ]);
        assert_eq!(v.delta(delta.clone()), Some(delta));
        assert_eq!(v.delta(serde_json::json!([])), None);
        // After a 409: the full listing is compared with what was known.
        v.in_sync = false;
        let listing = Value::Array(vec![entry("p/a", 3), entry("p/c", 9)]);
        assert_eq!(
            v.full(listing, 10),
            Some(serde_json::json!([entry("p/c", 9)]))
        );
        let listing = Value::Array(vec![entry("p/a", 11)]);
        assert_eq!(
            v.full(listing, 12),
            Some(serde_json::json!([
                entry("p/a", 11),
                { "Key": "p/c", "Deleted": true, "ModifyIndex": 12 }
            ]))
        );
        assert_eq!(v.full(serde_json::json!([entry("p/a", 11)]), 13), None);
    }
}
