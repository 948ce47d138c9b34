//! One config file's keys applied to the [`RuntimeConfig`] being built:
//! every top-level key Consul documents is either acted on, or listed in
//! [`IGNORED`] as accepted but not used yet; anything else is an error, so
//! a typo is not silently ignored.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::acl::{self, AclKeys};
use super::definitions::{parse_check, parse_service};
use super::value::{parse_client, At};
use super::watches::parse_watch;
use super::ConfigError;
use crate::config::RuntimeConfig;

/// Keys Consul documents that Meridian accepts and does not act on yet.
const IGNORED: &[&str] = &[
    "tls",
    "telemetry",
    "autopilot",
    "gossip_lan",
    "gossip_wan",
    "addresses",
    "disable_update_check",
    "disable_remote_exec",
    "disable_coordinates",
    "disable_host_node_id",
    "reconnect_timeout_wan",
    "translate_wan_addrs",
    "alt_domain",
    "raft_protocol",
    "raft_snapshot_interval",
    "discovery_max_stale",
    "connect",
    "license_path",
    "pid_file",
    "log_file",
    "log_json",
    "syslog_facility",
    "enable_syslog",
    "ui_dir",
    "http_config",
    "rpc",
    "segments",
    "segment",
    "serf_lan",
    "serf_wan",
    "serf_lan_allowed_cidrs",
    "key_file",
    "cert_file",
    "ca_file",
    "ca_path",
    "verify_incoming",
    "verify_outgoing",
    "verify_server_hostname",
    "enable_debug",
    "auto_encrypt",
    "auto_config",
    "config_entries",
    "limits",
    "experiments",
    "peering",
    "leave_drain_time",
    "node_meta_txt",
];

/// Applies one file's tree on top of `cfg`: scalars replace, lists append.
pub(super) fn apply_file(
    cfg: &mut RuntimeConfig,
    file: &str,
    root: &Value,
) -> Result<(), ConfigError> {
    let top = At {
        file,
        key: String::new(),
        v: root,
    };
    let mut acls = AclKeys::default();
    for (k, v) in top.object()? {
        let a = top.child(k, v);
        match k.as_str() {
            "datacenter" => cfg.datacenter = a.string()?,
            "data_dir" => cfg.data_dir = Some(PathBuf::from(a.string()?)),
            "node_name" => cfg.node_name = a.string()?,
            "node_id" => cfg.node_id = a.string()?,
            "node_meta" => cfg.node_meta.extend(a.string_map()?),
            "server" => cfg.server = a.boolean()?,
            "bootstrap" => cfg.bootstrap = a.boolean()?,
            "bootstrap_expect" => cfg.bootstrap_expect = a.uint()?,
            "bind_addr" => cfg.bind_addr = a.ip()?,
            "advertise_addr" => cfg.advertise_addr = Some(a.ip()?),
            "advertise_addr_wan" => cfg.advertise_addr_wan = Some(a.ip()?),
            "client_addr" => cfg.client_addrs = parse_client(&a.string()?).map_err(|e| a.err(e))?,
            "ports" => {
                for (pk, pv) in a.object()? {
                    let p = a.child(pk, pv);
                    match pk.as_str() {
                        "dns" => cfg.ports.dns = p.port()?,
                        "http" => cfg.ports.http = p.port()?,
                        "server" => cfg.ports.server = p.port()?,
                        "serf_lan" => cfg.ports.serf_lan = p.port()?,
                        "serf_wan" => cfg.ports.serf_wan = p.port()?,
                        "https" | "grpc" | "grpc_tls" | "sidecar_min_port" | "sidecar_max_port"
                        | "expose_min_port" | "expose_max_port" => {
                            p.int()?;
                        }
                        _ => return Err(p.err("unknown port name")),
                    }
                }
            }
            "domain" => cfg.domain = a.string()?,
            "recursors" => cfg.recursors.extend(a.strings()?),
            "ui" => cfg.ui_enabled = a.boolean()?,
            "performance" => {
                for (pk, pv) in a.object()? {
                    let x = a.child(pk, pv);
                    match pk.as_str() {
                        "rpc_hold_timeout" => cfg.rpc_hold_timeout = x.duration()?,
                        "raft_multiplier" | "leave_drain_time" => {}
                        _ => return Err(x.err("unknown performance key")),
                    }
                }
            }
            "ui_config" => {
                for (uk, uv) in a.object()? {
                    let u = a.child(uk, uv);
                    match uk.as_str() {
                        "enabled" => cfg.ui_enabled = u.boolean()?,
                        "dir"
                        | "content_path"
                        | "metrics_provider"
                        | "metrics_proxy"
                        | "dashboard_url_templates" => {}
                        _ => return Err(u.err("unknown ui_config key")),
                    }
                }
            }
            "log_level" => cfg.log_level = a.string()?,
            "retry_join" | "start_join" => cfg.retry_join.extend(a.strings()?),
            "retry_interval" => cfg.retry_interval = a.duration()?,
            "retry_max" => cfg.retry_max = a.uint()?,
            "retry_join_wan" | "start_join_wan" | "join_wan" => {
                cfg.retry_join_wan.extend(a.strings()?)
            }
            "retry_interval_wan" => cfg.retry_interval_wan = a.duration()?,
            "retry_max_wan" => cfg.retry_max_wan = a.uint()?,
            "rejoin_after_leave" => cfg.rejoin_after_leave = a.boolean()?,
            "encrypt" => {
                let key = a.string()?;
                crate::lan::keyring::parse_key(&key).map_err(|e| a.err(e.to_string()))?;
                cfg.encrypt = Some(key);
            }
            "encrypt_verify_incoming" => cfg.encrypt_verify_incoming = a.boolean()?,
            "check_update_interval" => cfg.check_update_interval = a.duration()?,
            "encrypt_verify_outgoing" => cfg.encrypt_verify_outgoing = a.boolean()?,
            "reconnect_timeout" => {
                let d = a.duration()?;
                // Consul's floor: shorter would reap members that are only rebooting.
                if d < Duration::from_secs(8 * 3600) {
                    return Err(a.err("reconnect_timeout must be at least 8h"));
                }
                cfg.reconnect_timeout = d;
            }
            "enable_script_checks" => cfg.enable_script_checks = a.boolean()?,
            "enable_local_script_checks" => cfg.enable_local_script_checks = a.boolean()?,
            "leave_on_terminate" => cfg.leave_on_terminate = Some(a.boolean()?),
            "skip_leave_on_interrupt" => cfg.skip_leave_on_interrupt = Some(a.boolean()?),
            "default_query_time" => cfg.default_query_time = a.duration()?,
            "max_query_time" => cfg.max_query_time = a.duration()?,
            "raft_snapshot_threshold" => cfg.raft_snapshot_threshold = a.uint()?,
            "raft_trailing_logs" => cfg.raft_trailing_logs = a.uint()?,
            "dns_config" => apply_dns(cfg, &a)?,
            "service" | "services" => {
                for s in a.objects()? {
                    cfg.services.push(parse_service(&s)?);
                }
            }
            "check" | "checks" => {
                for c in a.objects()? {
                    cfg.checks.push(parse_check(&c)?);
                }
            }
            "watches" => {
                for w in a.objects()? {
                    cfg.watches.push(parse_watch(&w)?);
                }
            }
            "limits" => {
                for (lk, lv) in a.object()? {
                    let l = a.child(lk, lv);
                    match lk.as_str() {
                        "kv_max_value_size" => cfg.kv_max_value_size = l.uint()?,
                        _ => tracing::debug!(key = %l.key, "limit accepted, not used yet"),
                    }
                }
            }
            k if acl::owns(k) => acls.read(k, &a)?,
            k if IGNORED.contains(&k) => {
                tracing::debug!(key = k, file, "config key accepted, not used yet")
            }
            _ => return Err(a.err("unknown config key")),
        }
    }
    acls.apply(cfg, file);
    Ok(())
}

fn apply_dns(cfg: &mut RuntimeConfig, a: &At) -> Result<(), ConfigError> {
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
            "max_stale"
            | "use_cache"
            | "cache_max_age"
            | "disable_compression"
            | "recursor_strategy"
            | "enable_additional_node_meta_txt"
            | "prefer_namespace" => {
                tracing::debug!(key = %x.key, "dns_config key accepted, not used yet")
            }
            _ => return Err(x.err("unknown dns_config key")),
        }
    }
    Ok(())
}
