//! The rows of the state store, shaped as Consul's JSON shapes them.
//!
//! These types serialize with Consul's field names so that the HTTP layer can
//! encode them directly, and the same encoding serves Raft entries,
//! snapshots and forwarded requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A KV entry (Consul's `DirEntry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DirEntry {
    pub lock_index: u64,
    pub key: String,
    pub flags: u64,
    #[serde(with = "b64")]
    pub value: Vec<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub create_index: u64,
    pub modify_index: u64,
    /// Meridian extension: the key's time to live as it was written
    /// (`?ttl=30s`), a Go duration. Absent from the JSON when unset, so
    /// Consul clients see Consul's shape.
    #[serde(rename = "TTL", default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// The shortest KV TTL: the leader looks at its timers four times a
/// second, so a shorter one would expire late by a large fraction.
pub const KV_TTL_MIN: std::time::Duration = std::time::Duration::from_secs(1);
/// The longest KV TTL, Consul's longest session TTL (86400s).
pub const KV_TTL_MAX: std::time::Duration = std::time::Duration::from_secs(86_400);

/// Why a KV TTL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvTtlError {
    #[error("invalid ttl {value:?}: {reason}")]
    Syntax { value: String, reason: String },
    #[error("invalid ttl {value:?}: must be between 1s and 24h")]
    OutOfRange { value: String },
}

/// A KV TTL as written (`30s`, `1m30s`), checked against
/// [`KV_TTL_MIN`]..=[`KV_TTL_MAX`]. The HTTP layer and the state store
/// both check with this, so an entry that reached Raft some other way
/// is refused the same way.
pub fn parse_kv_ttl(value: &str) -> Result<std::time::Duration, KvTtlError> {
    let d = super::go_json::parse_go_duration(value).map_err(|reason| KvTtlError::Syntax {
        value: value.to_string(),
        reason,
    })?;
    if !(KV_TTL_MIN..=KV_TTL_MAX).contains(&d) {
        return Err(KvTtlError::OutOfRange {
            value: value.to_string(),
        });
    }
    Ok(d)
}

impl DirEntry {
    /// The entry's TTL, if it has a valid one.
    pub fn ttl(&self) -> Option<std::time::Duration> {
        self.ttl.as_deref().and_then(|t| parse_kv_ttl(t).ok())
    }
}

/// One answer row of a changed-keys read (`?recurse&changes&index=N`,
/// a Meridian extension): a key written after N, or one deleted after N
/// (its tombstone's index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvChange {
    Set(DirEntry),
    Deleted { key: String, modify_index: u64 },
}

impl KvChange {
    pub fn key(&self) -> &str {
        match self {
            KvChange::Set(e) => &e.key,
            KvChange::Deleted { key, .. } => key,
        }
    }

    pub fn modify_index(&self) -> u64 {
        match self {
            KvChange::Set(e) => e.modify_index,
            KvChange::Deleted { modify_index, .. } => *modify_index,
        }
    }
}

/// A changed-keys read's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvChanges {
    /// Every change after the asked index, in key order.
    Since(Vec<KvChange>),
    /// The asked index is older than `floor`, the oldest index the store
    /// can still list deletions from (tombstones below it were reaped, or
    /// a snapshot restore replaced the table): the client must read the
    /// prefix in full.
    TooOld { floor: u64 },
}

/// Base64 as Consul sends `Value`: standard alphabet, `null` when empty.
pub mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if v.is_empty() {
            s.serialize_none()
        } else {
            s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            None => Ok(Vec::new()),
            Some(s) => base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|e| serde::de::Error::custom(format!("invalid base64 value: {e}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    #[serde(rename = "ID", default)]
    pub id: String,
    pub node: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub datacenter: String,
    #[serde(default)]
    pub tagged_addresses: BTreeMap<String, String>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Weights {
    pub passing: i32,
    pub warning: i32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            passing: 1,
            warning: 1,
        }
    }
}

/// One of a service's `TaggedAddresses` (`lan`, `wan`, `lan_ipv4`, ...):
/// Consul's `ServiceAddress`. The lowercase aliases are for bodies whose
/// tagged addresses arrive as written (the decoder leaves user maps'
/// contents alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceAddress {
    #[serde(alias = "address", default)]
    pub address: String,
    #[serde(alias = "port", default)]
    pub port: u16,
}

/// A service instance as registered on a node (Consul's `NodeService`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct NodeService {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub tagged_addresses: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub weights: Weights,
    #[serde(default)]
    pub enable_tag_override: bool,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

/// A service instance joined with its node (Consul's `ServiceNode`), the
/// shape of `/v1/catalog/service/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceNode {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub node_meta: BTreeMap<String, String>,
    pub service_kind: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    pub service_address: String,
    pub service_tagged_addresses: BTreeMap<String, serde_json::Value>,
    pub service_weights: Weights,
    pub service_meta: BTreeMap<String, String>,
    pub service_port: u16,
    pub service_enable_tag_override: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

impl ServiceNode {
    pub fn new(node: &Node, svc: &NodeService) -> Self {
        ServiceNode {
            id: node.id.clone(),
            node: node.node.clone(),
            address: node.address.clone(),
            datacenter: node.datacenter.clone(),
            tagged_addresses: node.tagged_addresses.clone(),
            node_meta: node.meta.clone(),
            service_kind: svc.kind.clone(),
            service_id: svc.id.clone(),
            service_name: svc.service.clone(),
            service_tags: svc.tags.clone(),
            service_address: svc.address.clone(),
            service_tagged_addresses: svc.tagged_addresses.clone(),
            service_weights: svc.weights,
            service_meta: svc.meta.clone(),
            service_port: svc.port,
            service_enable_tag_override: svc.enable_tag_override,
            create_index: svc.create_index,
            modify_index: svc.modify_index,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Passing,
    Warning,
    #[default]
    Critical,
    /// Only as a query filter (`/v1/health/state/any`), never stored.
    Any,
}

impl HealthStatus {
    pub fn parse(s: &str) -> Option<HealthStatus> {
        match s {
            "passing" => Some(HealthStatus::Passing),
            "warning" => Some(HealthStatus::Warning),
            "critical" => Some(HealthStatus::Critical),
            "any" => Some(HealthStatus::Any),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            HealthStatus::Passing => "passing",
            HealthStatus::Warning => "warning",
            HealthStatus::Critical => "critical",
            HealthStatus::Any => "any",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    #[serde(default)]
    pub node: String,
    #[serde(rename = "CheckID", default)]
    pub check_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: HealthStatus,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub output: String,
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    #[serde(default)]
    pub service_name: String,
    #[serde(default)]
    pub service_tags: Vec<String>,
    #[serde(default)]
    pub r#type: String,
    #[serde(default)]
    pub definition: serde_json::Value,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

/// The shape of `/v1/health/service/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckServiceNode {
    pub node: Node,
    pub service: NodeService,
    pub checks: Vec<HealthCheck>,
}

impl CheckServiceNode {
    /// The worst status of all checks; passing when there are none.
    pub fn aggregate_status(&self) -> HealthStatus {
        aggregate(&self.checks)
    }
}

/// One instance as a DNS answer uses it: its node's name, address and
/// meta, its own address, port and weights, and its aggregate health.
/// What DNS reads instead of [`CheckServiceNode`], whose checks (output,
/// definition, notes) cost every query their copies and are never put in
/// a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsInstance {
    pub node: String,
    pub node_address: String,
    pub node_meta: BTreeMap<String, String>,
    pub address: String,
    pub port: u16,
    pub weights: Weights,
    pub status: HealthStatus,
}

impl From<&CheckServiceNode> for DnsInstance {
    fn from(n: &CheckServiceNode) -> Self {
        DnsInstance {
            node: n.node.node.clone(),
            node_address: n.node.address.clone(),
            node_meta: n.node.meta.clone(),
            address: n.service.address.clone(),
            port: n.service.port,
            weights: n.service.weights,
            status: n.aggregate_status(),
        }
    }
}

pub fn aggregate(checks: &[HealthCheck]) -> HealthStatus {
    let mut worst = HealthStatus::Passing;
    for c in checks {
        match c.status {
            HealthStatus::Critical => return HealthStatus::Critical,
            HealthStatus::Warning => worst = HealthStatus::Warning,
            _ => {}
        }
    }
    worst
}

/// The shape of `/v1/catalog/node/<node>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeServices {
    pub node: Node,
    pub services: BTreeMap<String, NodeService>,
}

/// Body of `PUT /v1/catalog/register` (and what anti-entropy sends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct RegisterRequest {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub node_meta: BTreeMap<String, String>,
    pub service: Option<NodeService>,
    pub check: Option<HealthCheck>,
    pub checks: Vec<HealthCheck>,
    pub skip_node_update: bool,
}

impl RegisterRequest {
    /// Whether applying this registration writes the node row (Consul's
    /// `ChangesNode`): the node is new, or the request does not skip the
    /// node update and carries node fields that differ from `existing`'s
    /// (the same comparison the state store makes before writing it).
    pub fn changes_node(&self, existing: Option<&Node>) -> bool {
        let Some(n) = existing else {
            return true;
        };
        if self.skip_node_update {
            return false;
        }
        (!self.id.is_empty() && self.id != n.id)
            || self.address != n.address
            || self.datacenter != n.datacenter
            || self.tagged_addresses != n.tagged_addresses
            || self.node_meta != n.meta
    }
}

/// Body of `PUT /v1/catalog/deregister`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeregisterRequest {
    pub node: String,
    pub datacenter: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(rename = "CheckID")]
    pub check_id: String,
}
