//! Agent configuration: flags and JSON/HCL files merged into one validated,
//! immutable [`RuntimeConfig`] (Consul's `config/builder.go`).
//!
//! Order: defaults (dev or normal) → files in lexical order (each
//! `-config-file`, then each `-config-dir`'s `*.json`/`*.hcl`) → flags.
//! Scalars: the last one wins; lists (`retry_join`, `services`, `checks`,
//! `recursors`) are appended. Errors name the file, the key and the problem.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod acl;
pub mod builder;
pub mod duration;
pub mod flags;
pub mod limits;
pub mod replication;

pub use crate::tls::settings::{TlsConfig, TlsProtocol, TlsVersion};
pub use acl::{AclConfig, AclDefaultPolicy, AclDownPolicy, AclTokens, DefinitionToken};
pub use builder::{build, ensure_node_id, validate_paths, ConfigError};
pub use duration::format_go_duration as format_duration;
pub use flags::AgentFlags;
pub use limits::Limits;
pub use replication::KvReplication;

/// Listener ports; `None` means disabled (`-1` in a file or flag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    pub dns: Option<u16>,
    pub http: Option<u16>,
    pub server: Option<u16>,
    pub serf_lan: Option<u16>,
    pub serf_wan: Option<u16>,
    /// The HTTPS listener; off unless set (Consul's convention is 8501).
    pub https: Option<u16>,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            dns: Some(8600),
            http: Some(8500),
            server: Some(8300),
            serf_lan: Some(8301),
            serf_wan: Some(8302),
            https: None,
        }
    }
}

/// `addresses`: bind addresses for one listener, in place of
/// `client_addr` (which the others keep).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Addresses {
    pub http: Option<Vec<IpAddr>>,
    pub https: Option<Vec<IpAddr>>,
    pub dns: Option<Vec<IpAddr>>,
}

/// The order the recursors are asked in (`dns_config.recursor_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RecursorStrategy {
    /// As listed: the first that answers wins.
    #[default]
    Sequential,
    /// A fresh random order for every query, spreading load over them.
    Random,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsConfig {
    pub allow_stale: bool,
    /// A stale answer from a server that has not heard from its leader
    /// for longer than this is asked again of the leader.
    pub max_stale: Duration,
    pub only_passing: bool,
    /// Answers in a UDP response without EDNS (Consul's default: 3).
    pub udp_answer_limit: usize,
    /// 0 = no limit.
    pub a_record_limit: usize,
    pub enable_truncate: bool,
    pub node_ttl: Duration,
    /// Service name (or `prefix*`, or `*`) → TTL.
    pub service_ttl: Vec<(String, Duration)>,
    pub recursor_timeout: Duration,
    pub recursor_strategy: RecursorStrategy,
    /// Node meta as TXT records in the additional section of node and SRV
    /// answers (`enable_additional_node_meta_txt`).
    pub node_meta_txt: bool,
    pub soa_refresh: u32,
    pub soa_retry: u32,
    pub soa_expire: u32,
    pub soa_min_ttl: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            allow_stale: true,
            // Consul's default: 87600h, in effect never.
            max_stale: Duration::from_secs(87_600 * 3600),
            only_passing: false,
            udp_answer_limit: 3,
            a_record_limit: 0,
            enable_truncate: false,
            node_ttl: Duration::ZERO,
            service_ttl: Vec::new(),
            recursor_timeout: Duration::from_secs(2),
            recursor_strategy: RecursorStrategy::Sequential,
            node_meta_txt: true,
            soa_refresh: 3600,
            soa_retry: 600,
            soa_expire: 86400,
            soa_min_ttl: 0,
        }
    }
}

/// A check as written in a config file or sent to `/v1/agent/check/register`
/// (or inline in a service). Kept whole: the health issue runs them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CheckDefinition {
    pub id: String,
    pub name: String,
    pub notes: String,
    /// Initial status; empty = critical.
    pub status: String,
    pub service_id: String,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub ttl: Option<Duration>,
    pub http: String,
    pub method: String,
    pub header: std::collections::BTreeMap<String, Vec<String>>,
    pub body: String,
    pub tls_skip_verify: bool,
    pub tcp: String,
    pub udp: String,
    pub grpc: String,
    pub grpc_use_tls: bool,
    pub args: Vec<String>,
    pub alias_service: String,
    pub alias_node: String,
    pub deregister_critical_service_after: Option<Duration>,
    pub success_before_passing: u32,
    pub failures_before_warning: u32,
    pub failures_before_critical: u32,
    /// What the check syncs with (an inline check: its service's, unless
    /// it names its own).
    #[serde(default)]
    pub token: DefinitionToken,
}

impl CheckDefinition {
    /// What makes a definition unusable whatever its source: two probe
    /// kinds at once (Consul refuses `http` with `tcp`), zero intervals.
    pub fn validate(&self) -> Result<(), String> {
        let kinds: Vec<&str> = [
            ("http", !self.http.is_empty()),
            ("tcp", !self.tcp.is_empty()),
            ("udp", !self.udp.is_empty()),
            ("grpc", !self.grpc.is_empty()),
            ("args", !self.args.is_empty()),
            ("ttl", self.ttl.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        if kinds.len() > 1 {
            return Err(format!(
                "a check can only have one of http, tcp, udp, grpc, args or ttl; this one has {}",
                kinds.join(" and ")
            ));
        }
        if self.interval.is_some_and(|d| d.is_zero()) && kinds.first() != Some(&"ttl") {
            return Err("interval must be greater than zero".into());
        }
        Ok(())
    }

    /// Consul's check type name, as shown in `Type`.
    pub fn kind(&self) -> &'static str {
        if !self.http.is_empty() {
            "http"
        } else if !self.tcp.is_empty() {
            "tcp"
        } else if !self.udp.is_empty() {
            "udp"
        } else if !self.grpc.is_empty() {
            "grpc"
        } else if !self.args.is_empty() {
            "script"
        } else if self.ttl.is_some() {
            "ttl"
        } else if !self.alias_service.is_empty() || !self.alias_node.is_empty() {
            "alias"
        } else {
            ""
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ServiceDefinition {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub address: String,
    pub port: u16,
    pub meta: std::collections::BTreeMap<String, String>,
    /// `lan`, `wan`, `lan_ipv4`, ... each an address and a port.
    #[serde(default)]
    pub tagged_addresses:
        std::collections::BTreeMap<String, crate::structs::catalog::ServiceAddress>,
    pub weights: Option<(i32, i32)>,
    pub enable_tag_override: bool,
    pub kind: String,
    pub checks: Vec<CheckDefinition>,
    /// What the service (and its inline checks) sync with.
    #[serde(default)]
    pub token: DefinitionToken,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    pub dev: bool,
    pub server: bool,
    pub bootstrap: bool,
    pub bootstrap_expect: u32,
    pub datacenter: String,
    /// The datacenter that is authoritative for ACLs (and the CA):
    /// `primary_datacenter`, else the legacy `acl_datacenter`, else this
    /// agent's own datacenter, as in Consul.
    pub primary_datacenter: String,
    /// `acl`; read [`RuntimeConfig::acl_enforced`] to know whether the
    /// config asks for ACLs.
    pub acl: AclConfig,
    pub node_name: String,
    pub node_id: String,
    pub node_meta: std::collections::BTreeMap<String, String>,
    /// None only in dev mode (everything in memory).
    pub data_dir: Option<PathBuf>,
    pub bind_addr: IpAddr,
    pub advertise_addr: Option<IpAddr>,
    /// The address other datacenters' servers use (WAN pool and server
    /// RPC across datacenters); the LAN one when unset.
    pub advertise_addr_wan: Option<IpAddr>,
    pub client_addrs: Vec<IpAddr>,
    /// Per-listener bind addresses; read them through
    /// [`RuntimeConfig::http_addrs`] and its siblings.
    #[serde(default)]
    pub addresses: Addresses,
    pub ports: Ports,
    /// Always ends with a dot, e.g. `consul.`.
    pub domain: String,
    /// A second domain answered as `domain` is, with names in the domain
    /// asked (`alt_domain`); lowercase, ends with a dot.
    #[serde(default)]
    pub alt_domain: Option<String>,
    pub recursors: Vec<String>,
    pub ui_enabled: bool,
    pub log_level: String,
    pub retry_join: Vec<String>,
    pub retry_interval: Duration,
    pub retry_max: u32,
    /// Servers of other datacenters to join in the WAN pool (servers only).
    pub retry_join_wan: Vec<String>,
    pub retry_interval_wan: Duration,
    pub retry_max_wan: u32,
    pub rejoin_after_leave: bool,
    /// `tls`: certificates and verification for HTTPS and server RPC.
    pub tls: TlsConfig,
    /// `limits` on connections per client address.
    pub limits: Limits,
    /// `replication`: KV prefixes this server's datacenter copies from
    /// another (Meridian's own).
    pub replication: Option<KvReplication>,
    pub encrypt: Option<String>,
    pub encrypt_verify_incoming: bool,
    pub encrypt_verify_outgoing: bool,
    /// How long a request forwarded to another server may take beyond its
    /// blocking wait (`performance.rpc_hold_timeout`): a datacenter whose
    /// servers do not answer in this time is `No path to datacenter`.
    pub rpc_hold_timeout: Duration,
    /// How often output-only check changes reach the catalog.
    pub check_update_interval: Duration,
    /// A failed member is forgotten (and leaves the catalog) after this.
    pub reconnect_timeout: Duration,
    pub enable_script_checks: bool,
    pub enable_local_script_checks: bool,
    /// SIGTERM leaves the pool first; unset = Consul's default by role.
    pub leave_on_terminate: Option<bool>,
    /// SIGINT exits without leaving; unset = Consul's default by role.
    pub skip_leave_on_interrupt: Option<bool>,
    pub services: Vec<ServiceDefinition>,
    pub checks: Vec<CheckDefinition>,
    /// `watches`: run by the agent against its own HTTP API.
    pub watches: Vec<crate::watch::WatchPlan>,
    pub dns: DnsConfig,
    pub kv_max_value_size: usize,
    /// The largest `/v1/txn` body (`limits.txn_max_req_len`).
    #[serde(default = "default_txn_max_req_len")]
    pub txn_max_req_len: usize,
    /// Where the agent writes its PID at start (removed at exit).
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
    pub default_query_time: Duration,
    pub max_query_time: Duration,
    pub raft_snapshot_threshold: u64,
    /// How often a server checks whether its log has grown by
    /// `raft_snapshot_threshold` entries and snapshots if so (Consul's,
    /// which waits between this and twice this): the least time between
    /// snapshots, however fast writes come.
    #[serde(default = "default_raft_snapshot_interval")]
    pub raft_snapshot_interval: Duration,
    pub raft_trailing_logs: u64,
    /// `telemetry`: how `/v1/agent/metrics` names and shows the metrics.
    #[serde(default)]
    pub telemetry: Telemetry,
    /// `disable_coordinates`: the agent sends no coordinate, `near` does
    /// not sort, `/v1/coordinate/*` answers 401.
    #[serde(default)]
    pub disable_coordinates: bool,
    /// `sync_coordinate_interval_min`: the shortest time between two of
    /// the agent's coordinate updates to its servers.
    #[serde(default = "default_sync_coordinate_interval_min")]
    pub sync_coordinate_interval_min: Duration,
    /// `sync_coordinate_rate_target`: updates per second the servers
    /// should get from the whole datacenter (the interval grows with the
    /// pool beyond it).
    #[serde(default = "default_sync_coordinate_rate_target")]
    pub sync_coordinate_rate_target: f64,
    /// The files this config was read from, for `reload`.
    pub sources: Vec<PathBuf>,
    /// What the build warned of, in Consul's words and prefixed with the
    /// file (deprecated keys, keys with no effect, ACLs partly enforced). The
    /// build logs them, but at start it runs before logging is set up
    /// (from this config), so the agent logs them again then.
    pub warnings: Vec<String>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            dev: false,
            server: false,
            bootstrap: false,
            bootstrap_expect: 0,
            datacenter: "dc1".into(),
            primary_datacenter: "dc1".into(),
            acl: AclConfig::default(),
            node_name: String::new(),
            node_id: String::new(),
            node_meta: Default::default(),
            data_dir: None,
            bind_addr: IpAddr::from([0, 0, 0, 0]),
            advertise_addr: None,
            advertise_addr_wan: None,
            client_addrs: vec![IpAddr::from([127, 0, 0, 1])],
            addresses: Addresses::default(),
            ports: Ports::default(),
            domain: "consul.".into(),
            alt_domain: None,
            recursors: Vec::new(),
            ui_enabled: false,
            log_level: "info".into(),
            retry_join: Vec::new(),
            retry_interval: Duration::from_secs(30),
            retry_max: 0,
            retry_join_wan: Vec::new(),
            retry_interval_wan: Duration::from_secs(30),
            retry_max_wan: 0,
            rejoin_after_leave: false,
            tls: TlsConfig::default(),
            limits: Limits::default(),
            replication: None,
            encrypt: None,
            encrypt_verify_incoming: true,
            encrypt_verify_outgoing: true,
            reconnect_timeout: Duration::from_secs(72 * 3600),
            check_update_interval: Duration::from_secs(5),
            rpc_hold_timeout: Duration::from_secs(7),
            enable_script_checks: false,
            enable_local_script_checks: false,
            leave_on_terminate: None,
            skip_leave_on_interrupt: None,
            services: Vec::new(),
            checks: Vec::new(),
            watches: Vec::new(),
            dns: DnsConfig::default(),
            kv_max_value_size: 512 * 1024,
            txn_max_req_len: default_txn_max_req_len(),
            pid_file: None,
            default_query_time: Duration::from_secs(300),
            max_query_time: Duration::from_secs(600),
            raft_snapshot_threshold: 16384,
            raft_snapshot_interval: default_raft_snapshot_interval(),
            raft_trailing_logs: 10240,
            telemetry: Telemetry::default(),
            disable_coordinates: false,
            sync_coordinate_interval_min: default_sync_coordinate_interval_min(),
            sync_coordinate_rate_target: default_sync_coordinate_rate_target(),
            sources: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// `telemetry { ... }`: the keys Meridian acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// `prometheus_retention_time`: zero (Consul's default) turns
    /// `?format=prometheus` off; otherwise a metric not updated for this
    /// long leaves the exposition.
    pub prometheus_retention_time: Duration,
    /// `disable_hostname`: gauges are not prefixed with the host name.
    pub disable_hostname: bool,
    /// `metrics_prefix` (legacy `statsite_prefix`).
    pub metrics_prefix: String,
    /// `disable_compat_1.9`: no pre-1.9 `http.<METHOD>.<path>` timings.
    pub disable_compat_1_9: bool,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            prometheus_retention_time: Duration::ZERO,
            disable_hostname: false,
            metrics_prefix: "consul".into(),
            disable_compat_1_9: false,
        }
    }
}

fn default_raft_snapshot_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_txn_max_req_len() -> usize {
    512 * 1024
}

fn default_sync_coordinate_interval_min() -> Duration {
    Duration::from_secs(15)
}

fn default_sync_coordinate_rate_target() -> f64 {
    64.0
}

impl RuntimeConfig {
    /// Where the HTTP API listens: `addresses.http`, else `client_addr`.
    pub fn http_addrs(&self) -> &[IpAddr] {
        self.addresses.http.as_deref().unwrap_or(&self.client_addrs)
    }

    /// Where the HTTPS API listens: `addresses.https`, else `client_addr`.
    pub fn https_addrs(&self) -> &[IpAddr] {
        self.addresses
            .https
            .as_deref()
            .unwrap_or(&self.client_addrs)
    }

    /// Where DNS listens: `addresses.dns`, else `client_addr`.
    pub fn dns_addrs(&self) -> &[IpAddr] {
        self.addresses.dns.as_deref().unwrap_or(&self.client_addrs)
    }

    /// Whether the config asks for ACL enforcement (`acl.enabled`, or the
    /// legacy `acl_datacenter`, which implies it), on every request path
    /// and in anti-entropy.
    pub fn acl_enforced(&self) -> bool {
        self.acl.enabled
    }

    /// Consul's defaults: clients leave on SIGTERM, servers do not (a
    /// server that leaves shrinks the quorum).
    pub fn leaves_on_terminate(&self) -> bool {
        self.leave_on_terminate.unwrap_or(!self.server)
    }

    /// Consul's defaults: clients leave on SIGINT, servers do not.
    pub fn leaves_on_interrupt(&self) -> bool {
        !self.skip_leave_on_interrupt.unwrap_or(self.server)
    }

    /// The address other agents and catalog entries use for this node.
    pub fn advertise(&self) -> IpAddr {
        match self.advertise_addr {
            Some(a) => a,
            None if self.bind_addr.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
            None => self.bind_addr,
        }
    }

    pub fn advertise_wan(&self) -> IpAddr {
        self.advertise_addr_wan.unwrap_or_else(|| self.advertise())
    }

    /// The tags this agent gossips in the LAN and WAN pools, in Consul's
    /// names (what `members` shows). Peers read role, datacenter and the
    /// server RPC port from them to route and to form Raft, so they live
    /// with the config they come from, for every layer that needs them.
    pub fn gossip_tags(&self) -> std::collections::BTreeMap<String, String> {
        let mut tags: std::collections::BTreeMap<String, String> = [
            (
                "role",
                if self.server { "consul" } else { "node" }.to_string(),
            ),
            ("dc", self.datacenter.clone()),
            ("segment", String::new()),
            ("id", self.node_id.clone()),
            (
                "build",
                format!(
                    "{}:{}",
                    crate::build_info::VERSION,
                    crate::build_info::REVISION
                ),
            ),
            ("vsn", "2".into()),
            ("vsn_min", "2".into()),
            ("vsn_max", "3".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if self.server {
            tags.insert("port".into(), self.ports.server.unwrap_or(8300).to_string());
            tags.insert("raft_vsn".into(), "3".into());
            if self.bootstrap {
                tags.insert("bootstrap".into(), "1".into());
            }
            if self.bootstrap_expect > 0 {
                tags.insert("expect".into(), self.bootstrap_expect.to_string());
            }
        }
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gossip_tags_tell_servers_from_clients() {
        let client = RuntimeConfig {
            node_id: "id-1".into(),
            ..RuntimeConfig::default()
        };
        let tags = client.gossip_tags();
        assert_eq!(tags["role"], "node");
        assert_eq!(tags["dc"], "dc1");
        assert_eq!(tags["id"], "id-1");
        assert!(!tags.contains_key("port"));

        let server = RuntimeConfig {
            server: true,
            bootstrap_expect: 3,
            ..RuntimeConfig::default()
        };
        let tags = server.gossip_tags();
        assert_eq!(tags["role"], "consul");
        assert_eq!(tags["port"], "8300");
        assert_eq!(tags["expect"], "3");
        assert!(!tags.contains_key("bootstrap"));
    }
}
