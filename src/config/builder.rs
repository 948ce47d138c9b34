//! Builds the one [`RuntimeConfig`]: defaults → files → flags, then
//! validation. Files are read into one JSON tree whatever their format
//! (HCL goes through hcl-rs), and walked key by key so that every error
//! names the file, the key path and the problem.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;

use super::duration::parse_go_duration;
use super::{AgentFlags, CheckDefinition, RuntimeConfig, ServiceDefinition};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("Error reading {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("Error parsing {file}: {problem}")]
    Parse { file: String, problem: String },
    #[error("Error parsing {file}: {key}: {problem}")]
    Key {
        file: String,
        key: String,
        problem: String,
    },
    #[error("Invalid flag -{flag}: {problem}")]
    Flag { flag: String, problem: String },
    #[error("{0}")]
    Invalid(String),
    #[error("Error with node ID file {file}: {source}")]
    NodeId {
        file: String,
        source: std::io::Error,
    },
}

/// Keys Consul documents that Meridian accepts and does not act on yet.
const IGNORED: &[&str] = &[
    "acl",
    "tls",
    "telemetry",
    "autopilot",
    "gossip_lan",
    "gossip_wan",
    "addresses",
    "primary_datacenter",
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

fn key_err(file: &str, key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        file: file.to_string(),
        key: key.to_string(),
        problem: problem.into(),
    }
}

/// Reads one file into a JSON tree, by its extension (`.hcl` or JSON).
fn read_file(path: &Path) -> Result<Value, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    let v: Value = if path.extension().is_some_and(|e| e == "hcl") {
        hcl::from_str(&text).map_err(|e| ConfigError::Parse {
            file: file.clone(),
            problem: e.to_string(),
        })?
    } else {
        serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
            file: file.clone(),
            problem: e.to_string(),
        })?
    };
    if !v.is_object() {
        return Err(ConfigError::Parse {
            file,
            problem: "the top level must be an object".into(),
        });
    }
    Ok(v)
}

/// The files named by `-config-file` and `-config-dir`, in reading order.
fn collect_files(files: &[PathBuf], dirs: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out: Vec<PathBuf> = files.to_vec();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Read {
            file: dir.display().to_string(),
            source,
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json" || e == "hcl"))
            .collect();
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// A typed view of one value, for error messages that name the key.
struct At<'a> {
    file: &'a str,
    key: String,
    v: &'a Value,
}

impl<'a> At<'a> {
    fn err(&self, problem: impl Into<String>) -> ConfigError {
        key_err(self.file, &self.key, problem)
    }
    fn child(&self, key: &str, v: &'a Value) -> At<'a> {
        let key = if self.key.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.key)
        };
        At {
            file: self.file,
            key,
            v,
        }
    }
    fn index(&self, i: usize, v: &'a Value) -> At<'a> {
        At {
            file: self.file,
            key: format!("{}[{i}]", self.key),
            v,
        }
    }
    fn string(&self) -> Result<String, ConfigError> {
        match self.v {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.err(format!("expected a string, got {}", kind(other)))),
        }
    }
    fn boolean(&self) -> Result<bool, ConfigError> {
        match self.v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            other => Err(self.err(format!("expected a boolean, got {}", kind(other)))),
        }
    }
    fn int(&self) -> Result<i64, ConfigError> {
        match self.v {
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| self.err(format!("expected an integer, got {n}"))),
            Value::String(s) => s
                .parse()
                .map_err(|_| self.err(format!("expected an integer, got {s:?}"))),
            other => Err(self.err(format!("expected an integer, got {}", kind(other)))),
        }
    }
    fn uint<T: TryFrom<i64>>(&self) -> Result<T, ConfigError> {
        let n = self.int()?;
        T::try_from(n).map_err(|_| self.err(format!("{n} is out of range")))
    }
    /// A port: 1..=65535, or -1 for disabled (0 binds an ephemeral port).
    fn port(&self) -> Result<Option<u16>, ConfigError> {
        port_value(self.int()?).map_err(|p| self.err(p))
    }
    fn duration(&self) -> Result<Duration, ConfigError> {
        parse_go_duration(&self.string()?).map_err(|e| self.err(e))
    }
    fn ip(&self) -> Result<IpAddr, ConfigError> {
        let s = self.string()?;
        s.parse()
            .map_err(|_| self.err(format!("{s:?} is not an IP address")))
    }
    /// A list of strings; a single string is a one-element list.
    fn strings(&self) -> Result<Vec<String>, ConfigError> {
        match self.v {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| self.index(i, v).string())
                .collect(),
            other => Err(self.err(format!("expected a list of strings, got {}", kind(other)))),
        }
    }
    fn string_map(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        self.object()?
            .map(|(k, v)| Ok((k.clone(), self.child(k, v).string()?)))
            .collect()
    }
    fn object(&self) -> Result<impl Iterator<Item = (&'a String, &'a Value)>, ConfigError> {
        match self.v {
            Value::Object(m) => Ok(m.iter()),
            // HCL turns a repeated block into a list of objects; merge them.
            other => Err(self.err(format!("expected an object, got {}", kind(other)))),
        }
    }
    /// One object or a list of them (`service {}` or `services [...]`,
    /// and HCL's repeated blocks).
    fn objects(&self) -> Result<Vec<At<'a>>, ConfigError> {
        match self.v {
            Value::Object(_) => Ok(vec![At {
                file: self.file,
                key: self.key.clone(),
                v: self.v,
            }]),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| Ok(self.index(i, v)))
                .collect(),
            other => Err(self.err(format!(
                "expected an object or a list of objects, got {}",
                kind(other)
            ))),
        }
    }
}

fn port_value(n: i64) -> Result<Option<u16>, String> {
    match n {
        -1 => Ok(None),
        0..=65535 => Ok(Some(n as u16)),
        _ => Err(format!("port {n} is out of range (use -1 to disable)")),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Service and check definitions accept Consul's CamelCase as well:
/// compare keys lowercased with underscores removed.
fn fold(k: &str) -> String {
    k.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

fn parse_check(at: &At) -> Result<CheckDefinition, ConfigError> {
    let mut c = CheckDefinition::default();
    for (k, v) in at.object()? {
        let a = at.child(k, v);
        match fold(k).as_str() {
            "id" | "checkid" => c.id = a.string()?,
            "name" => c.name = a.string()?,
            "notes" => c.notes = a.string()?,
            "status" => {
                let s = a.string()?;
                if !["passing", "warning", "critical", ""].contains(&s.as_str()) {
                    return Err(a.err(format!("{s:?} is not passing, warning or critical")));
                }
                c.status = s;
            }
            "serviceid" => c.service_id = a.string()?,
            "interval" => c.interval = Some(a.duration()?),
            "timeout" => c.timeout = Some(a.duration()?),
            "ttl" => c.ttl = Some(a.duration()?),
            "http" => c.http = a.string()?,
            "method" => c.method = a.string()?,
            "header" => {
                for (hk, hv) in a.object()? {
                    c.header.insert(hk.clone(), a.child(hk, hv).strings()?);
                }
            }
            "body" => c.body = a.string()?,
            "tlsskipverify" => c.tls_skip_verify = a.boolean()?,
            "tcp" => c.tcp = a.string()?,
            "udp" => c.udp = a.string()?,
            "grpc" => c.grpc = a.string()?,
            "grpcusetls" => c.grpc_use_tls = a.boolean()?,
            "args" | "scriptargs" => c.args = a.strings()?,
            "aliasservice" => c.alias_service = a.string()?,
            "aliasnode" => c.alias_node = a.string()?,
            "deregistercriticalserviceafter" => {
                c.deregister_critical_service_after = Some(a.duration()?)
            }
            "successbeforepassing" => c.success_before_passing = a.uint()?,
            "failuresbeforewarning" => c.failures_before_warning = a.uint()?,
            "failuresbeforecritical" => c.failures_before_critical = a.uint()?,
            "tlsservername" | "disableredirects" | "tcpusetls" | "h2ping" | "h2pingusetls"
            | "dockercontainerid" | "shell" | "outputmaxsize" | "osservice" | "type" => {
                tracing::debug!(key = %a.key, "check key accepted, not used yet")
            }
            _ => return Err(a.err("unknown check key")),
        }
    }
    let needs_interval = !c.http.is_empty()
        || !c.tcp.is_empty()
        || !c.udp.is_empty()
        || !c.grpc.is_empty()
        || !c.args.is_empty();
    if needs_interval && c.interval.is_none() {
        return Err(at.err("interval is required for this check type"));
    }
    if let Err(e) = c.validate() {
        return Err(at.err(e));
    }
    if c.kind().is_empty() {
        return Err(at.err(
            "a check needs one of http, tcp, udp, grpc, args, ttl, alias_service or alias_node",
        ));
    }
    Ok(c)
}

/// One `watches` entry: the view's parameters and its handler.
fn parse_watch(at: &At) -> Result<crate::watch::WatchPlan, ConfigError> {
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

fn parse_service(at: &At) -> Result<ServiceDefinition, ConfigError> {
    let mut s = ServiceDefinition::default();
    for (k, v) in at.object()? {
        let a = at.child(k, v);
        match fold(k).as_str() {
            "id" => s.id = a.string()?,
            "name" => s.name = a.string()?,
            "tags" => s.tags = a.strings()?,
            "address" => s.address = a.string()?,
            "port" => s.port = a.uint()?,
            "meta" => s.meta = a.string_map()?,
            "enabletagoverride" => s.enable_tag_override = a.boolean()?,
            "kind" => s.kind = a.string()?,
            "weights" => {
                let (mut passing, mut warning) = (1, 1);
                for (wk, wv) in a.object()? {
                    let w = a.child(wk, wv);
                    match fold(wk).as_str() {
                        "passing" => passing = w.uint()?,
                        "warning" => warning = w.uint()?,
                        _ => return Err(w.err("unknown weights key")),
                    }
                }
                s.weights = Some((passing, warning));
            }
            "check" | "checks" => {
                for c in a.objects()? {
                    s.checks.push(parse_check(&c)?);
                }
            }
            "token" | "taggedaddresses" | "connect" | "proxy" | "locality" | "namespace"
            | "partition" => {
                tracing::debug!(key = %a.key, "service key accepted, not used yet")
            }
            _ => return Err(a.err("unknown service key")),
        }
    }
    if s.name.is_empty() {
        return Err(at.err("a service needs a name"));
    }
    Ok(s)
}

/// Applies one file's tree on top of `cfg`: scalars replace, lists append.
fn apply_file(cfg: &mut RuntimeConfig, file: &str, root: &Value) -> Result<(), ConfigError> {
    let top = At {
        file,
        key: String::new(),
        v: root,
    };
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
            k if IGNORED.contains(&k) => {
                tracing::debug!(key = k, file, "config key accepted, not used yet")
            }
            _ => return Err(a.err("unknown config key")),
        }
    }
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

fn parse_client(s: &str) -> Result<Vec<IpAddr>, String> {
    let addrs: Result<Vec<IpAddr>, String> = s
        .split_whitespace()
        .map(|a| a.parse().map_err(|_| format!("{a:?} is not an IP address")))
        .collect();
    match addrs? {
        v if v.is_empty() => Err("no address given".into()),
        v => Ok(v),
    }
}

fn flag_err(flag: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Flag {
        flag: flag.into(),
        problem: problem.into(),
    }
}

fn apply_flags(cfg: &mut RuntimeConfig, f: &AgentFlags) -> Result<(), ConfigError> {
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
    cfg.recursors.extend(f.recursor.iter().cloned());
    for (name, v, slot) in [
        ("http-port", f.http_port, &mut cfg.ports.http),
        ("dns-port", f.dns_port, &mut cfg.ports.dns),
        ("server-port", f.server_port, &mut cfg.ports.server),
        ("serf-lan-port", f.serf_lan_port, &mut cfg.ports.serf_lan),
        ("serf-wan-port", f.serf_wan_port, &mut cfg.ports.serf_wan),
    ] {
        if let Some(n) = v {
            *slot = port_value(n).map_err(|e| flag_err(name, e))?;
        }
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

fn defaults(dev: bool) -> RuntimeConfig {
    let mut cfg = RuntimeConfig {
        node_name: hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "meridian".into()),
        ..Default::default()
    };
    if dev {
        cfg.dev = true;
        cfg.server = true;
        cfg.bootstrap = true;
        cfg.bind_addr = IpAddr::from([127, 0, 0, 1]);
        cfg.ui_enabled = true;
        cfg.log_level = "debug".into();
    }
    cfg
}

fn read_all(cfg: &mut RuntimeConfig, files: &[PathBuf]) -> Result<(), ConfigError> {
    for path in files {
        let tree = read_file(path)?;
        apply_file(cfg, &path.display().to_string(), &tree)?;
        cfg.sources.push(path.clone());
    }
    Ok(())
}

/// Checks what must hold across keys. `need_data_dir` is false for
/// `validate`, which checks files that may be completed by flags.
fn validate(cfg: &mut RuntimeConfig, need_data_dir: bool) -> Result<(), ConfigError> {
    if need_data_dir && !cfg.dev && cfg.data_dir.is_none() {
        return Err(ConfigError::Invalid(
            "data_dir cannot be empty: set -data-dir or data_dir (or use -dev)".into(),
        ));
    }
    if cfg.bootstrap && cfg.bootstrap_expect > 0 && !cfg.dev {
        return Err(ConfigError::Invalid(
            "'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive".into(),
        ));
    }
    if (cfg.bootstrap || cfg.bootstrap_expect > 0) && !cfg.server {
        return Err(ConfigError::Invalid(
            "'bootstrap' and 'bootstrap_expect' need server mode (-server)".into(),
        ));
    }
    // Consul lowercases the datacenter; DNS names arrive lowercased too.
    cfg.datacenter = cfg.datacenter.to_ascii_lowercase();
    if cfg.datacenter.is_empty()
        || !cfg
            .datacenter
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ConfigError::Invalid(format!(
            "datacenter {:?}: only letters, digits, '-' and '_' are allowed",
            cfg.datacenter
        )));
    }
    let scripts = cfg
        .services
        .iter()
        .flat_map(|s| s.checks.iter())
        .chain(cfg.checks.iter())
        .find(|c| !c.args.is_empty());
    if let (Some(c), false) = (
        scripts,
        cfg.enable_script_checks || cfg.enable_local_script_checks,
    ) {
        return Err(ConfigError::Invalid(format!(
            "check {:?}: {SCRIPTS_DISABLED}",
            if c.name.is_empty() { &c.id } else { &c.name }
        )));
    }
    if cfg.node_name.is_empty() {
        return Err(ConfigError::Invalid("node_name cannot be empty".into()));
    }
    if !cfg.node_id.is_empty() && uuid::Uuid::parse_str(&cfg.node_id).is_err() {
        return Err(ConfigError::Invalid(format!(
            "node_id {:?} is not a UUID",
            cfg.node_id
        )));
    }
    if cfg.domain.is_empty() {
        return Err(ConfigError::Invalid("domain cannot be empty".into()));
    }
    if !cfg.domain.ends_with('.') {
        cfg.domain.push('.');
    }
    cfg.domain = cfg.domain.to_ascii_lowercase();
    let mut ids = std::collections::BTreeSet::new();
    for s in &cfg.services {
        let id = if s.id.is_empty() { &s.name } else { &s.id };
        if !ids.insert(id.clone()) {
            return Err(ConfigError::Invalid(format!(
                "service ID {id:?} is defined twice"
            )));
        }
    }
    Ok(())
}

/// Builds the agent's config from its flags and the files they name.
/// Consul's words when a script check meets an agent that runs none.
pub const SCRIPTS_DISABLED: &str = "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true";

pub fn build(flags: &AgentFlags) -> Result<RuntimeConfig, ConfigError> {
    let mut cfg = defaults(flags.dev.unwrap_or(false));
    let files = collect_files(&flags.config_file, &flags.config_dir)?;
    read_all(&mut cfg, &files)?;
    apply_flags(&mut cfg, flags)?;
    validate(&mut cfg, true)?;
    ensure_node_id(&mut cfg)?;
    Ok(cfg)
}

/// Checks config files or directories without starting an agent
/// (`meridian validate`). `data_dir` may be left to flags.
pub fn validate_paths(paths: &[PathBuf]) -> Result<RuntimeConfig, ConfigError> {
    let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) =
        paths.iter().cloned().partition(|p| p.is_dir());
    let mut cfg = defaults(false);
    let all = collect_files(&files, &dirs)?;
    read_all(&mut cfg, &all)?;
    validate(&mut cfg, false)?;
    Ok(cfg)
}

/// Gives the node a stable ID: the configured one, else the one saved in
/// `<data_dir>/node-id`, else a new UUID (saved when there is a data dir).
pub fn ensure_node_id(cfg: &mut RuntimeConfig) -> Result<(), ConfigError> {
    if !cfg.node_id.is_empty() {
        return Ok(());
    }
    let Some(dir) = cfg.data_dir.clone().filter(|_| !cfg.dev) else {
        cfg.node_id = uuid::Uuid::new_v4().to_string();
        return Ok(());
    };
    let path = dir.join("node-id");
    let file = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let id = s.trim().to_string();
            if uuid::Uuid::parse_str(&id).is_err() {
                return Err(ConfigError::Invalid(format!(
                    "{file}: {id:?} is not a UUID"
                )));
            }
            cfg.node_id = id;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&dir).map_err(|source| ConfigError::NodeId {
                file: dir.display().to_string(),
                source,
            })?;
            let id = uuid::Uuid::new_v4().to_string();
            std::fs::write(&path, &id).map_err(|source| ConfigError::NodeId {
                file: file.clone(),
                source,
            })?;
            cfg.node_id = id;
        }
        Err(source) => return Err(ConfigError::NodeId { file, source }),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
