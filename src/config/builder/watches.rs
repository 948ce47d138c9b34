//! `watches` entries: a view's parameters compiled into a
//! [`WatchPlan`](crate::watch::WatchPlan) with its handler (a script, a
//! legacy shell `handler`, or an HTTP endpoint), so a watch that cannot
//! run is a config error at startup, not a silent no-op later.

use std::collections::BTreeMap;
use std::time::Duration;

use super::value::At;
use super::ConfigError;

/// One `watches` entry: the view's parameters and its handler.
pub(super) fn parse_watch(at: &At) -> Result<crate::watch::WatchPlan, ConfigError> {
    use crate::watch::{WatchHandler, WatchKind, WatchParams, WatchPlan};
    let mut p = WatchParams::default();
    let (mut datacenter, mut token, mut stale) = (None, None, false);
    let (mut handler_type, mut args, mut legacy) = (None, Vec::new(), None);
    let mut http = None;
    for (k, v) in at.object()? {
        let a = at.child(k, v);
        match k.as_str() {
            "type" => p.kind = a.string()?,
            "key" => p.key = Some(a.string()?),
            "prefix" => p.prefix = Some(a.string()?),
            "service" => p.service = Some(a.string()?),
            "tag" => p.tags = a.strings()?,
            "passingonly" => p.passing_only = a.boolean()?,
            "state" => p.state = Some(a.string()?),
            "name" => p.name = Some(a.string()?),
            "changes_only" => p.changes_only = a.boolean()?,
            "datacenter" => datacenter = Some(a.string()?),
            "token" => token = Some(a.string()?),
            "stale" => stale = a.boolean()?,
            "handler_type" => handler_type = Some(a.string()?),
            "args" => args = a.strings()?,
            "handler" => legacy = Some(a.string()?),
            "http_handler_config" => {
                let (mut path, mut method) = (String::new(), "POST".to_string());
                let (mut headers, mut timeout, mut skip) =
                    (BTreeMap::new(), Duration::from_secs(10), false);
                for (hk, hv) in a.object()? {
                    let h = a.child(hk, hv);
                    match hk.as_str() {
                        "path" => path = h.string()?,
                        "method" => method = h.string()?.to_ascii_uppercase(),
                        "header" => {
                            for (name, vals) in h.object()? {
                                headers.insert(name.clone(), h.child(name, vals).strings()?);
                            }
                        }
                        "timeout" => timeout = h.duration()?,
                        "tls_skip_verify" => skip = h.boolean()?,
                        _ => return Err(h.err("unknown http_handler_config key")),
                    }
                }
                if path.is_empty() {
                    return Err(a.err("http_handler_config needs a path"));
                }
                http = Some(WatchHandler::Http {
                    path,
                    method,
                    headers,
                    timeout,
                    tls_skip_verify: skip,
                });
            }
            _ => return Err(a.err("unknown watch key")),
        }
    }
    let kind = WatchKind::from_params(&p)
        .map_err(|e| at.err(format!("Failed to compile watch parameters: {e}")))?;
    let handler = match (handler_type.as_deref(), http, legacy) {
        (Some("http"), Some(h), _) => h,
        (Some("http"), None, _) => {
            return Err(at.err("handler_type http needs http_handler_config"))
        }
        (Some("script") | None, _, _) if !args.is_empty() => {
            WatchHandler::Script { args, shell: false }
        }
        (Some("script") | None, _, Some(cmd)) => WatchHandler::Script {
            args: vec![cmd],
            shell: true,
        },
        (Some(other), _, _) if other != "script" => {
            return Err(at.err(format!("invalid handler_type {other:?}")))
        }
        _ => return Err(at.err("a watch needs a handler (args, or handler_type http)")),
    };
    Ok(WatchPlan {
        kind,
        datacenter,
        token,
        stale,
        handler,
    })
}
