//! The command-line flags ([`AgentFlags`], declared in `config::flags`)
//! applied on top of the files: they come last, so a flag wins over any
//! file. Values go through the same rules as the file keys.

use super::tls::TlsKeys;
use super::value::{parse_client, port_value};
use super::ConfigError;
use crate::config::duration::parse_go_duration;
use crate::config::{AgentFlags, RuntimeConfig};

fn flag_err(flag: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Flag {
        flag: flag.into(),
        problem: problem.into(),
    }
}

/// `tls` learns whether `-https-port` was given, for its rules.
pub(super) fn apply_flags(
    cfg: &mut RuntimeConfig,
    f: &AgentFlags,
    tls: &mut TlsKeys,
) -> Result<(), ConfigError> {
    macro_rules! set {
        ($field:expr, $opt:expr) => {
            if let Some(v) = $opt.clone() {
                $field = v;
            }
        };
    }
    set!(cfg.server, f.server);
    set!(cfg.bootstrap, f.bootstrap);
    set!(cfg.bootstrap_expect, f.bootstrap_expect);
    if let Some(d) = &f.data_dir {
        cfg.data_dir = Some(d.clone());
    }
    set!(cfg.node_name, f.node);
    set!(cfg.node_id, f.node_id);
    for m in &f.node_meta {
        let (k, v) = m
            .split_once(':')
            .ok_or_else(|| flag_err("node-meta", format!("{m:?} is not key:value")))?;
        cfg.node_meta.insert(k.to_string(), v.to_string());
    }
    set!(cfg.datacenter, f.datacenter);
    if let Some(b) = &f.bind {
        cfg.bind_addr = b
            .parse()
            .map_err(|_| flag_err("bind", format!("{b:?} is not an IP address")))?;
    }
    if let Some(a) = &f.advertise {
        cfg.advertise_addr = Some(
            a.parse()
                .map_err(|_| flag_err("advertise", format!("{a:?} is not an IP address")))?,
        );
    }
    if let Some(a) = &f.advertise_wan {
        cfg.advertise_addr_wan = Some(
            a.parse()
                .map_err(|_| flag_err("advertise-wan", format!("{a:?} is not an IP address")))?,
        );
    }
    if let Some(c) = &f.client {
        cfg.client_addrs = parse_client(c).map_err(|e| flag_err("client", e))?;
    }
    set!(cfg.ui_enabled, f.ui);
    set!(cfg.domain, f.domain);
    if let Some(alt) = &f.alt_domain {
        cfg.alt_domain = (!alt.is_empty()).then(|| alt.clone());
    }
    cfg.recursors.extend(f.recursor.iter().cloned());
    for (name, v, slot) in [
        ("http-port", f.http_port, &mut cfg.ports.http),
        ("https-port", f.https_port, &mut cfg.ports.https),
        ("dns-port", f.dns_port, &mut cfg.ports.dns),
        ("server-port", f.server_port, &mut cfg.ports.server),
        ("serf-lan-port", f.serf_lan_port, &mut cfg.ports.serf_lan),
        ("serf-wan-port", f.serf_wan_port, &mut cfg.ports.serf_wan),
    ] {
        if let Some(n) = v {
            *slot = port_value(n).map_err(|e| flag_err(name, e))?;
        }
    }
    if f.https_port.is_some() {
        tls.https_port_flag();
    }
    if let Some(p) = &f.pid_file {
        cfg.pid_file = Some(p.clone());
    }
    set!(cfg.log_level, f.log_level);
    cfg.retry_join.extend(f.join.iter().cloned());
    cfg.retry_join.extend(f.retry_join.iter().cloned());
    if let Some(i) = &f.retry_interval {
        cfg.retry_interval = parse_go_duration(i).map_err(|e| flag_err("retry-interval", e))?;
    }
    set!(cfg.retry_max, f.retry_max);
    cfg.retry_join_wan.extend(f.join_wan.iter().cloned());
    cfg.retry_join_wan.extend(f.retry_join_wan.iter().cloned());
    if let Some(i) = &f.retry_interval_wan {
        cfg.retry_interval_wan =
            parse_go_duration(i).map_err(|e| flag_err("retry-interval-wan", e))?;
    }
    set!(cfg.retry_max_wan, f.retry_max_wan);
    set!(cfg.rejoin_after_leave, f.rejoin);
    if let Some(e) = &f.encrypt {
        crate::lan::keyring::parse_key(e).map_err(|err| flag_err("encrypt", err.to_string()))?;
        cfg.encrypt = Some(e.clone());
    }
    set!(cfg.enable_script_checks, f.enable_script_checks);
    set!(cfg.enable_local_script_checks, f.enable_local_script_checks);
    Ok(())
}
