//! The nested blocks of a config file that hold settings rather than
//! definitions: `ports`, `addresses`, `performance`, `ui_config`,
//! `limits`, `http_config`, `dns_config` and `telemetry`. Each key is acted on, or
//! handed to [`Ignored`] to be warned of or refused, or is an error.

use super::keys::Ignored;
use super::tls::TlsKeys;
use super::value::{parse_client, At};
use super::ConfigError;
use crate::config::{RecursorStrategy, RuntimeConfig};

pub(super) fn ports(
    cfg: &mut RuntimeConfig,
    a: &At,
    tls: &mut TlsKeys,
    ignored: &mut Ignored,
) -> Result<(), ConfigError> {
    for (k, v) in a.object()? {
        let p = a.child(k, v);
        match k.as_str() {
            "dns" => cfg.ports.dns = p.port()?,
            "http" => cfg.ports.http = p.port()?,
            "https" => {
                cfg.ports.https = p.port()?;
                tls.https_port_at(&p);
            }
            "server" => cfg.ports.server = p.port()?,
            "serf_lan" => cfg.ports.serf_lan = p.port()?,
            "serf_wan" => cfg.ports.serf_wan = p.port()?,
            _ => {
                if !ignored.handle(&format!("ports.{k}"), &p)? {
                    return Err(p.err("unknown port name"));
                }
                p.int()?;
            }
        }
    }
    Ok(())
}

pub(super) fn addresses(
    cfg: &mut RuntimeConfig,
    a: &At,
    ignored: &mut Ignored,
) -> Result<(), ConfigError> {
    for (k, v) in a.object()? {
        let x = a.child(k, v);
        let slot = match k.as_str() {
            "http" => &mut cfg.addresses.http,
            "https" => &mut cfg.addresses.https,
            "dns" => &mut cfg.addresses.dns,
            _ => {
                if !ignored.handle(&format!("addresses.{k}"), &x)? {
                    return Err(x.err("unknown addresses key"));
                }
                x.string()?;
                continue;
            }
        };
        *slot = Some(parse_client(&x.string()?).map_err(|e| x.err(e))?);
    }
    Ok(())
}

pub(super) fn performance(
    cfg: &mut RuntimeConfig,
    a: &At,
    ignored: &mut Ignored,
) -> Result<(), ConfigError> {
    for (k, v) in a.object()? {
        let x = a.child(k, v);
        match k.as_str() {
            "rpc_hold_timeout" => cfg.rpc_hold_timeout = x.duration()?,
            "raft_multiplier" => {
                x.uint::<u8>()?;
            }
            "leave_drain_time" => {
                x.duration()?;
            }
            _ => return Err(x.err("unknown performance key")),
        }
        ignored.handle(&format!("performance.{k}"), &x)?;
    }
    Ok(())
}

pub(super) fn ui_config(
    cfg: &mut RuntimeConfig,
    a: &At,
    ignored: &mut Ignored,
) -> Result<(), ConfigError> {
    for (k, v) in a.object()? {
        let x = a.child(k, v);
        match k.as_str() {
            "enabled" => cfg.ui_enabled = x.boolean()?,
            _ if ignored.handle(&format!("ui_config.{k}"), &x)? => {}
            _ => return Err(x.err("unknown ui_config key")),
        }
    }
    Ok(())
}

pub(super) fn limits(
    cfg: &mut RuntimeConfig,
    a: &At,
    ignored: &mut Ignored,
) -> Result<(), ConfigError> {
    for (k, v) in a.object()? {
        let x = a.child(k, v);
        let l = &mut cfg.limits;
        match k.as_str() {
            "kv_max_value_size" => cfg.kv_max_value_size = x.uint()?,
            "txn_max_req_len" => cfg.txn_max_req_len = x.uint()?,
            "http_max_conns_per_client" => l.http_max_conns_per_client = x.uint()?,
            "rpc_max_conns_per_client" => l.rpc_max_conns_per_client = x.uint()?,
            "rpc_handshake_timeout" => l.rpc_handshake_timeout = x.duration()?,
            "https_handshake_timeout" => l.https_handshake_timeout = x.duration()?,
            "rpc_client_timeout" => {
                x.duration()?;
            }
            // Consul's rate: a float, -1 (or absent) for no limit.
            "rpc_rate" => {
                float(&x)?;
            }
            "rpc_max_burst" => {
                x.uint::<u64>()?;
            }
            "request_limits" => {
                for (rk, rv) in x.object()? {
                    let r = x.child(rk, rv);
                    match rk.as_str() {
                        "mode" => drop(r.string()?),
                        "read_rate" | "write_rate" => {
                            float(&r)?;
                        }
                        _ => return Err(r.err("unknown request_limits key")),
                    }
                }
            }
            _ => return Err(x.err("unknown limits key")),
        }
        ignored.handle(&format!("limits.{k}"), &x)?;
    }
    Ok(())
}

pub(super) fn float(x: &At) -> Result<f64, ConfigError> {
    match x.v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| x.err("expected a number"))
}

pub(super) fn http_config(a: &At, ignored: &mut Ignored) -> Result<(), ConfigError> {
    for (k, v) in a.object()? {
        let x = a.child(k, v);
        if !ignored.handle(&format!("http_config.{k}"), &x)? {
            return Err(x.err("unknown http_config key"));
        }
    }
    Ok(())
}

pub(super) fn dns_config(
    cfg: &mut RuntimeConfig,
    a: &At,
    ignored: &mut Ignored,
) -> Result<(), ConfigError> {
    let d = &mut cfg.dns;
    for (k, v) in a.object()? {
        let x = a.child(k, v);
        match k.as_str() {
            "allow_stale" => d.allow_stale = x.boolean()?,
            "only_passing" => d.only_passing = x.boolean()?,
            "udp_answer_limit" => d.udp_answer_limit = x.uint()?,
            "a_record_limit" => d.a_record_limit = x.uint()?,
            "enable_truncate" => d.enable_truncate = x.boolean()?,
            "node_ttl" => d.node_ttl = x.duration()?,
            "service_ttl" => {
                for (sk, sv) in x.object()? {
                    d.service_ttl
                        .push((sk.clone(), x.child(sk, sv).duration()?));
                }
            }
            "recursor_timeout" => d.recursor_timeout = x.duration()?,
            "recursor_strategy" => {
                d.recursor_strategy = match x.string()?.as_str() {
                    "sequential" => RecursorStrategy::Sequential,
                    "random" => RecursorStrategy::Random,
                    other => {
                        return Err(x.err(format!(
                            "{other:?} is not a recursor strategy (\"sequential\" or \"random\")"
                        )))
                    }
                }
            }
            "enable_additional_node_meta_txt" => d.node_meta_txt = x.boolean()?,
            "max_stale" => d.max_stale = x.duration()?,
            "soa" => {
                for (sk, sv) in x.object()? {
                    let s = x.child(sk, sv);
                    match sk.as_str() {
                        "refresh" => d.soa_refresh = s.uint()?,
                        "retry" => d.soa_retry = s.uint()?,
                        "expire" => d.soa_expire = s.uint()?,
                        "min_ttl" => d.soa_min_ttl = s.uint()?,
                        _ => return Err(s.err("unknown soa key")),
                    }
                }
            }
            _ if ignored.handle(&format!("dns_config.{k}"), &x)? => {}
            _ => return Err(x.err("unknown dns_config key")),
        }
    }
    Ok(())
}

pub(super) fn telemetry(
    cfg: &mut RuntimeConfig,
    a: &At,
    ignored: &mut Ignored,
) -> Result<(), ConfigError> {
    let t = &mut cfg.telemetry;
    for (k, v) in a.object()? {
        let x = a.child(k, v);
        match k.as_str() {
            "prometheus_retention_time" => t.prometheus_retention_time = x.duration()?,
            "disable_hostname" => t.disable_hostname = x.boolean()?,
            "metrics_prefix" | "statsite_prefix" => t.metrics_prefix = x.string()?,
            "disable_compat_1.9" => t.disable_compat_1_9 = x.boolean()?,
            // The sinks that would send the metrics elsewhere are refused
            // (keys::REFUSED), the tuning of those sinks warned of.
            _ if ignored.handle(&format!("telemetry.{k}"), &x)? => {}
            _ => return Err(x.err("unknown telemetry key")),
        }
    }
    Ok(())
}

/// `replication { source prefixes token }` (Meridian's own): checked here
/// key by key; that only servers take it is judged once the mode is known
/// (`validate.rs`).
pub(super) fn replication(cfg: &mut RuntimeConfig, a: &At) -> Result<(), ConfigError> {
    let mut source = None;
    let mut prefixes = Vec::new();
    let mut token = None;
    for (k, v) in a.object()? {
        let x = a.child(k, v);
        match k.as_str() {
            "source" => {
                let s = x.string()?.to_ascii_lowercase();
                if s.is_empty() {
                    return Err(x.err("names no datacenter"));
                }
                source = Some(s);
            }
            "prefixes" => {
                prefixes = x.strings()?;
                if let Some(p) = prefixes.iter().find(|p| p.is_empty() || p.starts_with('/')) {
                    return Err(x.err(format!(
                        "{p:?}: a prefix is a KV key prefix such as \"config/global/\", not empty and without a leading '/'"
                    )));
                }
            }
            "token" => token = Some(x.string()?).filter(|t| !t.is_empty()),
            _ => return Err(x.err("unknown replication key (source, prefixes, token)")),
        }
    }
    let Some(source) = source else {
        return Err(a.err("needs source, the datacenter to copy from"));
    };
    if prefixes.is_empty() {
        return Err(a.err("needs prefixes, the KV prefixes to copy"));
    }
    cfg.replication = Some(crate::config::KvReplication {
        source,
        prefixes,
        token,
        declared_in: a.file.to_string(),
    });
    Ok(())
}
