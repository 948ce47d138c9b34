//! One config file's keys applied to the [`RuntimeConfig`] being built:
//! every top-level key is acted on here (or by the sibling that owns it),
//! or is one `keys` lists as ignored (warned of) or refused; anything else
//! is an error, so a typo is not silently ignored.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::acl::{self, AclKeys};
use super::blocks;
use super::definitions::{parse_check, parse_service};
use super::keys::Ignored;
use super::tls::{self, FileTls, TlsKeys};
use super::value::{parse_client, At};
use super::watches::parse_watch;
use super::ConfigError;
use crate::config::RuntimeConfig;

/// Applies one file's tree on top of `cfg`: scalars replace, lists append.
/// TLS keys go to `all_tls`, judged once every file and flag is in.
pub(super) fn apply_file(
    cfg: &mut RuntimeConfig,
    file: &str,
    root: &Value,
    all_tls: &mut TlsKeys,
) -> Result<(), ConfigError> {
    let top = At {
        file,
        key: String::new(),
        v: root,
    };
    let mut acls = AclKeys::default();
    let mut tls_keys = FileTls::default();
    let mut ignored = Ignored::default();
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
            "ports" => blocks::ports(cfg, &a, all_tls, &mut ignored)?,
            "addresses" => blocks::addresses(cfg, &a, &mut ignored)?,
            "domain" => cfg.domain = a.string()?,
            "alt_domain" => {
                let alt = a.string()?;
                cfg.alt_domain = (!alt.is_empty()).then_some(alt);
            }
            "recursors" => cfg.recursors.extend(a.strings()?),
            "ui" => cfg.ui_enabled = a.boolean()?,
            "performance" => blocks::performance(cfg, &a, &mut ignored)?,
            "ui_config" => blocks::ui_config(cfg, &a, &mut ignored)?,
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
            "raft_snapshot_interval" => {
                let d = a.duration()?;
                if d.is_zero() {
                    return Err(a.err("raft_snapshot_interval must be positive"));
                }
                cfg.raft_snapshot_interval = d;
            }
            "raft_trailing_logs" => cfg.raft_trailing_logs = a.uint()?,
            "disable_coordinates" => cfg.disable_coordinates = a.boolean()?,
            "sync_coordinate_interval_min" => {
                let d = a.duration()?;
                if d.is_zero() {
                    return Err(a.err("sync_coordinate_interval_min must be positive"));
                }
                cfg.sync_coordinate_interval_min = d;
            }
            "sync_coordinate_rate_target" => {
                let r = blocks::float(&a)?;
                if !(r.is_finite() && r > 0.0) {
                    return Err(a.err("sync_coordinate_rate_target must be a positive number"));
                }
                cfg.sync_coordinate_rate_target = r;
            }
            "dns_config" => blocks::dns_config(cfg, &a, &mut ignored)?,
            "http_config" => blocks::http_config(&a, &mut ignored)?,
            "service" | "services" => {
                for s in a.objects()? {
                    cfg.services.push(parse_service(&s, &mut ignored)?);
                }
            }
            "check" | "checks" => {
                for c in a.objects()? {
                    cfg.checks.push(parse_check(&c, &mut ignored)?);
                }
            }
            "watches" => {
                for w in a.objects()? {
                    cfg.watches.push(parse_watch(&w)?);
                }
            }
            "limits" => blocks::limits(cfg, &a, &mut ignored)?,
            "replication" => blocks::replication(cfg, &a)?,
            "telemetry" => blocks::telemetry(cfg, &a, &mut ignored)?,
            "pid_file" => cfg.pid_file = Some(PathBuf::from(a.string()?)),
            // Meridian never checks for updates: what this asks is done.
            "disable_update_check" => {
                a.boolean()?;
            }
            k if acl::owns(k) => acls.read(k, &a)?,
            k if tls::owns(k) => tls_keys.read(k, &a)?,
            k if ignored.handle(k, &a)? => {}
            _ => return Err(a.err("unknown config key")),
        }
    }
    acls.apply(cfg, file);
    if tls_keys.sets_grpc() {
        ignored.note("tls.grpc");
    }
    tls_keys.finish(all_tls, cfg, file);
    ignored.warn(cfg, file);
    Ok(())
}
