//! ACL replication between datacenters (Consul's `ACLReplicationStatus`
//! and the batches its replicator applies): what a secondary datacenter's
//! leader reports at `/v1/acl/replication`, and the Raft entry that brings
//! its copy of the primary's policies, roles or global tokens up to date.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::acl::{AclPolicy, AclRole, AclToken};
use super::go_json::go_zero_time;

/// What `ReplicationType` says: tokens are replicated only with
/// `acl.enable_token_replication`.
pub const REPLICATION_TYPE_POLICIES: &str = "policies";
pub const REPLICATION_TYPE_TOKENS: &str = "tokens";

/// `GET /v1/acl/replication`, field for field Consul's. In the primary
/// datacenter, and in a secondary whose leader has not started
/// replicating, `Enabled` is false and the times are Go's zero time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AclReplicationStatus {
    pub enabled: bool,
    pub running: bool,
    pub source_datacenter: String,
    pub replication_type: String,
    /// The primary's policy-table index this datacenter has caught up to.
    pub replicated_index: u64,
    pub replicated_role_index: u64,
    pub replicated_token_index: u64,
    pub last_success: DateTime<Utc>,
    pub last_error: DateTime<Utc>,
    pub last_error_message: String,
}

impl Default for AclReplicationStatus {
    fn default() -> Self {
        AclReplicationStatus {
            enabled: false,
            running: false,
            source_datacenter: String::new(),
            replication_type: String::new(),
            replicated_index: 0,
            replicated_role_index: 0,
            replicated_token_index: 0,
            last_success: go_zero_time(),
            last_error: go_zero_time(),
            last_error_message: String::new(),
        }
    }
}

/// Which ACL table a replication round follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclReplicationKind {
    Policies,
    Roles,
    Tokens,
}

impl AclReplicationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Policies => "policies",
            Self::Roles => "roles",
            Self::Tokens => "tokens",
        }
    }
}

/// One replication round's differences for one table, applied by a
/// secondary's leader through its own Raft: the primary's objects to
/// store as they are there (IDs, names, secrets, hashes), and the IDs
/// (AccessorIDs for tokens) the primary no longer has. Only the vector of
/// `kind` is used. Local tokens are never touched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AclReplicationBatch {
    pub kind: AclReplicationKind,
    #[serde(default)]
    pub policies: Vec<AclPolicy>,
    #[serde(default)]
    pub roles: Vec<AclRole>,
    #[serde(default)]
    pub tokens: Vec<AclToken>,
    #[serde(default)]
    pub deletes: Vec<String>,
}

impl AclReplicationBatch {
    pub fn new(kind: AclReplicationKind) -> Self {
        AclReplicationBatch {
            kind,
            policies: Vec::new(),
            roles: Vec::new(),
            tokens: Vec::new(),
            deletes: Vec::new(),
        }
    }

    /// How many objects the round changes.
    pub fn len(&self) -> usize {
        self.policies.len() + self.roles.len() + self.tokens.len() + self.deletes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_has_consuls_fields_and_zero_times() {
        let v = serde_json::to_value(AclReplicationStatus::default()).unwrap();
        for field in [
            "Enabled",
            "Running",
            "SourceDatacenter",
            "ReplicationType",
            "ReplicatedIndex",
            "ReplicatedRoleIndex",
            "ReplicatedTokenIndex",
            "LastSuccess",
            "LastError",
            "LastErrorMessage",
        ] {
            assert!(v.get(field).is_some(), "{field}");
        }
        assert_eq!(v["Enabled"], false);
        assert_eq!(v["LastSuccess"], "0001-01-01T00:00:00Z");
    }
}
