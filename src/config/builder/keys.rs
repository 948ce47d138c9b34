//! Which Consul keys Meridian takes without acting on them, and which it
//! refuses. Every key a file may hold is one of three kinds: acted on (the
//! readers in this module's siblings), harmless tuning accepted with one
//! warning per file naming each such key ([`IGNORED`]), or refused with
//! `not supported by Meridian` because going without it would weaken
//! security or correctness ([`REFUSED`]). Anything else is an unknown key.
//! README.md lists both constants; `tests/config_keys.rs` holds them equal.

use serde_json::Value;

use super::value::At;
use super::ConfigError;
use crate::config::RuntimeConfig;

/// Harmless tuning: accepted, and named in one warning per file. A path
/// under `service.` or `check.` stands for that key in any service or
/// check definition.
pub const IGNORED: &[&str] = &[
    "addresses.grpc",
    "addresses.grpc_tls",
    "autopilot",
    "check.disable_redirects",
    "check.output_max_size",
    "check.tls_server_name",
    "check.type",
    "disable_host_node_id",
    "disable_remote_exec",
    "discovery_max_stale",
    "dns_config.cache_max_age",
    "dns_config.disable_compression",
    "dns_config.prefer_namespace",
    "dns_config.use_cache",
    "enable_central_service_config",
    "enable_debug",
    "enable_syslog",
    "experiments",
    "gossip_lan",
    "gossip_wan",
    "http_config.max_header_bytes",
    "http_config.response_headers",
    "http_config.use_cache",
    "license_path",
    "limits.request_limits",
    "limits.rpc_client_timeout",
    "limits.rpc_max_burst",
    "limits.rpc_rate",
    "log_file",
    "log_json",
    "log_rotate_bytes",
    "log_rotate_duration",
    "log_rotate_max_files",
    "peering",
    "performance.leave_drain_time",
    "performance.raft_multiplier",
    "ports.expose_max_port",
    "ports.expose_min_port",
    "ports.grpc",
    "ports.grpc_tls",
    "ports.sidecar_max_port",
    "ports.sidecar_min_port",
    "raft_protocol",
    "reconnect_timeout_wan",
    "rpc",
    "service.locality",
    "service.namespace",
    "service.partition",
    "syslog_facility",
    "telemetry.circonus_api_app",
    "telemetry.circonus_api_url",
    "telemetry.circonus_broker_id",
    "telemetry.circonus_broker_select_tag",
    "telemetry.circonus_check_display_name",
    "telemetry.circonus_check_force_metric_activation",
    "telemetry.circonus_check_id",
    "telemetry.circonus_check_instance_id",
    "telemetry.circonus_check_search_tag",
    "telemetry.circonus_check_tags",
    "telemetry.circonus_submission_interval",
    "telemetry.disable_per_tenancy_usage_metrics",
    "telemetry.dogstatsd_tags",
    "telemetry.enable_host_metrics",
    "telemetry.filter_default",
    "telemetry.prefix_filter",
    "telemetry.retry_failed_connection",
    "tls.grpc",
    "translate_wan_addrs",
    "ui_config.content_path",
    "ui_config.dashboard_url_templates",
    "ui_config.dir",
    "ui_config.metrics_provider",
    "ui_config.metrics_provider_files",
    "ui_config.metrics_provider_options_json",
    "ui_config.metrics_proxy",
    "ui_dir",
];

/// Refused unless they ask for what Meridian does anyway (`false`, an
/// empty value, or `{ enabled = false }`): an agent that went without
/// them would bind elsewhere than asked, trust what it should not, run
/// something other than the check described, or keep the metrics a
/// monitoring system expects to be sent (statsd, DogStatsD, Circonus).
pub const REFUSED: &[&str] = &[
    "auto_config",
    "auto_encrypt",
    "check.docker_container_id",
    "check.h2ping",
    "check.h2ping_use_tls",
    "check.os_service",
    "check.shell",
    "check.tcp_use_tls",
    "config_entries",
    "connect",
    "http_config.allow_write_http_from",
    "http_config.block_endpoints",
    "segment",
    "segments",
    "serf_lan",
    "serf_lan_allowed_cidrs",
    "serf_wan",
    "serf_wan_allowed_cidrs",
    "service.connect",
    "service.proxy",
    "telemetry.circonus_api_token",
    "telemetry.circonus_submission_url",
    "telemetry.dogstatsd_addr",
    "telemetry.statsd_address",
    "telemetry.statsite_address",
];

/// The error of a refused key.
pub(super) const NOT_SUPPORTED: &str = "not supported by Meridian";

/// Service and check keys are matched as Consul matches them: case and
/// underscores do not count.
pub(super) fn fold(k: &str) -> String {
    k.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

fn listed(list: &[&str], path: &str) -> bool {
    match path.split_once('.') {
        Some((kind @ ("service" | "check"), key)) => list.iter().any(|l| {
            l.split_once('.')
                .is_some_and(|(k, n)| k == kind && fold(n) == fold(key))
        }),
        _ => list.contains(&path),
    }
}

/// The keys a file holds that Meridian takes without acting on.
#[derive(Debug, Default)]
pub(super) struct Ignored(Vec<String>);

impl Ignored {
    /// Handles key `a` if its generic `path` (`ports.grpc`, `check.type`)
    /// is ignored or refused; false when it is neither, for the caller's
    /// own match to go on.
    pub(super) fn handle(&mut self, path: &str, a: &At) -> Result<bool, ConfigError> {
        if listed(IGNORED, path) {
            self.0.push(a.key.clone());
            return Ok(true);
        }
        if listed(REFUSED, path) {
            refuse(a)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Names a key outside the lists as ignored (a block parsed for its
    /// types, such as `tls.grpc`).
    pub(super) fn note(&mut self, key: &str) {
        self.0.push(key.to_string());
    }

    /// One warning naming every key of `file` taken without effect.
    pub(super) fn warn(self, cfg: &mut RuntimeConfig, file: &str) {
        if !self.0.is_empty() {
            cfg.warnings.push(format!(
                "{file}: these keys are accepted but have no effect in Meridian: {}",
                self.0.join(", ")
            ));
        }
    }
}

/// A refused key is still taken when it turns the feature off.
fn refuse(a: &At) -> Result<(), ConfigError> {
    let off = match a.v {
        Value::Bool(b) => !b,
        Value::Null => true,
        Value::String(s) => s.is_empty() || s == "false",
        Value::Array(v) => v.is_empty(),
        // `{}` is refused: Consul turns `connect` on by default.
        Value::Object(m) => {
            !m.is_empty()
                && m.iter()
                    .all(|(k, v)| k == "enabled" && matches!(v, Value::Bool(false)))
        }
        Value::Number(_) => false,
    };
    if off {
        Ok(())
    } else {
        Err(a.err(NOT_SUPPORTED))
    }
}
