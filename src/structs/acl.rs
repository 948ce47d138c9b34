//! ACL objects as Consul's API shows them (`/v1/acl/*`, Consul's
//! `agent/structs/acl.go`): tokens, policies, roles, the links between
//! them, service and node identities, the list stubs, the builtin objects
//! every datacenter has, and a token resolved into everything an
//! authorizer is built from.
//!
//! The same types are the state store's rows, the payload of ACL Raft
//! entries and the HTTP bodies, so their serde names are Consul's.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::go_json::{go_zero_time, hash_bytes, nullable, opt_duration};

/// The policy that grants everything. Its rules can't change and it can't
/// be deleted; it may be renamed.
pub const GLOBAL_MANAGEMENT_POLICY_ID: &str = "00000000-0000-0000-0000-000000000001";
pub const GLOBAL_MANAGEMENT_POLICY_NAME: &str = "global-management";
const GLOBAL_MANAGEMENT_POLICY_DESC: &str =
    "A built-in policy that grants read and write access to all Consul features";

/// The policy that grants read on everything.
pub const GLOBAL_READ_ONLY_POLICY_ID: &str = "00000000-0000-0000-0000-000000000002";
pub const GLOBAL_READ_ONLY_POLICY_NAME: &str = "builtin/global-read-only";
const GLOBAL_READ_ONLY_POLICY_DESC: &str =
    "A built-in policy that grants read-only access to all Consul features";

/// The token of requests that carry none.
pub const ANONYMOUS_TOKEN_ID: &str = "00000000-0000-0000-0000-000000000002";
pub const ANONYMOUS_TOKEN_SECRET: &str = "anonymous";
const ANONYMOUS_TOKEN_DESC: &str = "Anonymous Token";

/// IDs with this prefix are Consul's own; users can't create them.
pub const RESERVED_ID_PREFIX: &str = "00000000-0000-0000-0000-0000000000";

/// Consul's rules for the two global builtins, which differ only in the
/// access level (its `aclPolicyGlobalRulesTemplate`, leading newline and
/// tabs included, so that a client comparing texts sees Consul's). One
/// line of HCL per line here, which rustfmt would split apart.
#[rustfmt::skip]
macro_rules! global_rules {
    ($level:literal) => {
        concat!(
            "\nacl = \"", $level, "\"\n",
            "agent_prefix \"\" {\n\tpolicy = \"", $level, "\"\n}\n",
            "event_prefix \"\" {\n\tpolicy = \"", $level, "\"\n}\n",
            "key_prefix \"\" {\n\tpolicy = \"", $level, "\"\n}\n",
            "keyring = \"", $level, "\"\n",
            "node_prefix \"\" {\n\tpolicy = \"", $level, "\"\n}\n",
            "operator = \"", $level, "\"\n",
            "mesh = \"", $level, "\"\n",
            "peering = \"", $level, "\"\n",
            "query_prefix \"\" {\n\tpolicy = \"", $level, "\"\n}\n",
            "service_prefix \"\" {\n\tpolicy = \"", $level, "\"\n\tintentions = \"", $level, "\"\n}\n",
            "session_prefix \"\" {\n\tpolicy = \"", $level, "\"\n}"
        )
    };
}

pub const GLOBAL_MANAGEMENT_RULES: &str = global_rules!("write");
pub const GLOBAL_READ_ONLY_RULES: &str = global_rules!("read");

/// True for the IDs Consul keeps for its builtin objects.
pub fn is_reserved_id(id: &str) -> bool {
    id.starts_with(RESERVED_ID_PREFIX)
}

/// The builtin policies as the binary defines them, not yet stored
/// (indexes 0, no hash): what the leader's `AclInitialize` inserts and what
/// reads show until it has.
pub fn builtin_policies() -> [AclPolicy; 2] {
    let builtin = |id: &str, name: &str, desc: &str, rules: &str| AclPolicy {
        id: id.into(),
        name: name.into(),
        description: desc.into(),
        rules: rules.into(),
        ..Default::default()
    };
    [
        builtin(
            GLOBAL_MANAGEMENT_POLICY_ID,
            GLOBAL_MANAGEMENT_POLICY_NAME,
            GLOBAL_MANAGEMENT_POLICY_DESC,
            GLOBAL_MANAGEMENT_RULES,
        ),
        builtin(
            GLOBAL_READ_ONLY_POLICY_ID,
            GLOBAL_READ_ONLY_POLICY_NAME,
            GLOBAL_READ_ONLY_POLICY_DESC,
            GLOBAL_READ_ONLY_RULES,
        ),
    ]
}

/// The builtin policy with this ID, if it is one.
pub fn builtin_policy(id: &str) -> Option<AclPolicy> {
    builtin_policies().into_iter().find(|p| p.id == id)
}

/// The anonymous token, with no policies (operators attach some to open
/// up what requests without a token may do).
pub fn anonymous_token(create_time: DateTime<Utc>) -> AclToken {
    AclToken {
        accessor_id: ANONYMOUS_TOKEN_ID.into(),
        secret_id: ANONYMOUS_TOKEN_SECRET.into(),
        description: ANONYMOUS_TOKEN_DESC.into(),
        create_time,
        ..Default::default()
    }
}

/// A link to a policy or a role. Writes may name the target by `ID` or by
/// `Name`; the state store resolves both and reads refresh the name, so a
/// renamed target shows its new name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclLink {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
}

impl AclLink {
    pub fn new(id: &str, name: &str) -> Self {
        AclLink {
            id: id.into(),
            name: name.into(),
        }
    }
}

/// What a service needs to register itself and discover others, without
/// writing a policy for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclServiceIdentity {
    pub service_name: String,
    /// Where the identity applies; empty = every datacenter.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
}

/// What a node needs to register itself and read services, in one
/// datacenter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclNodeIdentity {
    pub node_name: String,
    pub datacenter: String,
}

/// A token (Consul's `ACLToken`). `AccessorID` names it in the API and
/// logs; `SecretID` is what requests carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclToken {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub description: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AclLink>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<AclLink>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub service_identities: Vec<AclServiceIdentity>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<AclNodeIdentity>,
    /// Kept in this datacenter, never replicated to others.
    pub local: bool,
    /// After this the token is revoked and the leader reaps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<DateTime<Utc>>,
    /// Create input only: the state store turns it into `ExpirationTime`
    /// (`CreateTime` + TTL) and never stores it.
    #[serde(
        rename = "ExpirationTTL",
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub expiration_ttl: Option<Duration>,
    pub create_time: DateTime<Utc>,
    /// Content hash, computed by the state store.
    #[serde(with = "hash_bytes")]
    pub hash: Vec<u8>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Default for AclToken {
    fn default() -> Self {
        AclToken {
            accessor_id: String::new(),
            secret_id: String::new(),
            description: String::new(),
            policies: Vec::new(),
            roles: Vec::new(),
            service_identities: Vec::new(),
            node_identities: Vec::new(),
            local: false,
            expiration_time: None,
            expiration_ttl: None,
            create_time: go_zero_time(),
            hash: Vec::new(),
            create_index: 0,
            modify_index: 0,
        }
    }
}

impl AclToken {
    /// Expired as of `now` (a token expiring exactly at `now` is still
    /// valid, as in Consul).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expiration_time.is_some_and(|t| t < now)
    }

    pub fn stub(&self) -> AclTokenListStub {
        AclTokenListStub {
            accessor_id: self.accessor_id.clone(),
            secret_id: self.secret_id.clone(),
            description: self.description.clone(),
            policies: self.policies.clone(),
            roles: self.roles.clone(),
            service_identities: self.service_identities.clone(),
            node_identities: self.node_identities.clone(),
            local: self.local,
            expiration_time: self.expiration_time,
            create_time: self.create_time,
            hash: self.hash.clone(),
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

/// A token as `/v1/acl/tokens` lists it. The secret stays in: Consul shows
/// it to `acl:write` holders, so the HTTP layer redacts it for others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AclTokenListStub {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AclLink>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<AclLink>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_identities: Vec<AclServiceIdentity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<AclNodeIdentity>,
    pub local: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<DateTime<Utc>>,
    pub create_time: DateTime<Utc>,
    #[serde(with = "hash_bytes")]
    pub hash: Vec<u8>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A policy (Consul's `ACLPolicy`): named rules in the ACL language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclPolicy {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub description: String,
    pub rules: String,
    /// Where the policy applies; empty = every datacenter.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
    #[serde(with = "hash_bytes")]
    pub hash: Vec<u8>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl AclPolicy {
    pub fn stub(&self) -> AclPolicyListStub {
        AclPolicyListStub {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            datacenters: self.datacenters.clone(),
            hash: self.hash.clone(),
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

/// A policy as `/v1/acl/policies` lists it: without its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AclPolicyListStub {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(default, deserialize_with = "nullable")]
    pub datacenters: Vec<String>,
    #[serde(with = "hash_bytes")]
    pub hash: Vec<u8>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A role (Consul's `ACLRole`): policies and identities that tokens link
/// as one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclRole {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AclLink>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub service_identities: Vec<AclServiceIdentity>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<AclNodeIdentity>,
    #[serde(with = "hash_bytes")]
    pub hash: Vec<u8>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A secret resolved into what an authorizer is built from: the token and
/// everything it grants, directly and through its roles. Policies keep
/// their `Datacenters` (the caller keeps those that apply where it runs);
/// links to deleted policies or roles are gone; policies and identities
/// appear once each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedAclToken {
    pub token: AclToken,
    /// The token's policies first, then those of its roles, in link order.
    pub policies: Vec<AclPolicy>,
    pub roles: Vec<AclRole>,
    /// The token's and its roles', one per service name (datacenters
    /// merged; empty = every datacenter).
    pub service_identities: Vec<AclServiceIdentity>,
    /// The token's and its roles', one per (node, datacenter).
    pub node_identities: Vec<AclNodeIdentity>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_management_rules_are_consuls_text() {
        assert!(GLOBAL_MANAGEMENT_RULES.starts_with("\nacl = \"write\"\nagent_prefix \"\" {\n"));
        assert!(GLOBAL_MANAGEMENT_RULES
            .contains("service_prefix \"\" {\n\tpolicy = \"write\"\n\tintentions = \"write\"\n}"));
        assert!(GLOBAL_MANAGEMENT_RULES.ends_with("session_prefix \"\" {\n\tpolicy = \"write\"\n}"));
        assert_eq!(
            GLOBAL_READ_ONLY_RULES,
            GLOBAL_MANAGEMENT_RULES.replace("write", "read")
        );
    }

    #[test]
    fn a_token_reads_consuls_json_and_writes_it_back() {
        let body = r#"{
            "Description": "web",
            "Policies": [{"Name": "web-policy"}, {"ID": "1234"}],
            "Roles": null,
            "ServiceIdentities": [{"ServiceName": "web", "Datacenters": ["dc1"]}],
            "NodeIdentities": [{"NodeName": "n1", "Datacenter": "dc1"}],
            "ExpirationTTL": "1h30m",
            "Local": true
        }"#;
        let t: AclToken = serde_json::from_str(body).unwrap();
        assert_eq!(t.policies[0], AclLink::new("", "web-policy"));
        assert!(t.roles.is_empty());
        assert_eq!(t.expiration_ttl, Some(Duration::from_secs(5400)));
        assert_eq!(t.create_time, go_zero_time());
        let out = serde_json::to_value(&t).unwrap();
        assert_eq!(out["ExpirationTTL"], 5_400_000_000_000u64);
        assert_eq!(out["CreateTime"], "0001-01-01T00:00:00Z");
        assert!(out.get("Roles").is_none(), "empty slices are omitted");
        assert!(out.get("ExpirationTime").is_none());
        assert_eq!(out["Hash"], serde_json::Value::Null);

        let nanos: AclToken = serde_json::from_str(r#"{"ExpirationTTL": 60000000000}"#).unwrap();
        assert_eq!(nanos.expiration_ttl, Some(Duration::from_secs(60)));
        let offset: AclToken =
            serde_json::from_str(r#"{"ExpirationTime": "2030-01-01T10:00:00-02:00"}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&offset).unwrap()["ExpirationTime"],
            "2030-01-01T12:00:00Z"
        );
    }

    #[test]
    fn the_anonymous_token_and_builtins_use_reserved_ids() {
        let anon = anonymous_token(go_zero_time());
        assert!(is_reserved_id(&anon.accessor_id));
        assert!(builtin_policies().iter().all(|p| is_reserved_id(&p.id)));
        assert!(builtin_policy(GLOBAL_MANAGEMENT_POLICY_ID).is_some());
        assert!(builtin_policy("00000000-0000-0000-0000-000000000003").is_none());
    }
}
