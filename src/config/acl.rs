//! The `acl` settings the agent runs with: Consul's ACL stanza and its
//! tokens, with Consul's defaults. The builder reads them from files
//! (`builder/acl.rs`, legacy names included); enforcing them is the ACL
//! layer's job, not the config's.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `acl.default_policy`: what a token may do where no rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AclDefaultPolicy {
    /// Consul's default: ACLs on, everything not denied is allowed.
    #[default]
    Allow,
    Deny,
}

/// Consul's names, case-sensitive as Consul matches them; the error is
/// Consul's, with the names it takes.
impl FromStr for AclDefaultPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "allow" => Ok(Self::Allow),
            "deny" => Ok(Self::Deny),
            _ => Err(format!(
                "Unsupported default ACL policy: {s:?} (must be \"allow\" or \"deny\")"
            )),
        }
    }
}

impl AclDefaultPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

impl fmt::Display for AclDefaultPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `acl.down_policy`: what a token may do while its policies cannot be
/// read from the servers (the primary datacenter, or the leader).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AclDownPolicy {
    Allow,
    Deny,
    /// Consul's default: keep using what is cached, past its TTL; what is
    /// not cached gets the default policy.
    #[default]
    ExtendCache,
    /// Like `extend-cache`, but an expired entry is served while it is
    /// refreshed in the background.
    AsyncCache,
}

/// Consul's names, case-sensitive as Consul matches them; the error is
/// Consul's, with the names it takes.
impl FromStr for AclDownPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "allow" => Ok(Self::Allow),
            "deny" => Ok(Self::Deny),
            "extend-cache" => Ok(Self::ExtendCache),
            "async-cache" => Ok(Self::AsyncCache),
            _ => Err(format!(
                "Unsupported down ACL policy: {s:?} (must be \"allow\", \"deny\", \"extend-cache\" or \"async-cache\")"
            )),
        }
    }
}

impl AclDownPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::ExtendCache => "extend-cache",
            Self::AsyncCache => "async-cache",
        }
    }
}

impl fmt::Display for AclDownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `acl`: Consul's ACL stanza. Defaults are Consul's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclConfig {
    /// `acl.enabled` (or the legacy `acl_datacenter`, which implies it).
    pub enabled: bool,
    pub default_policy: AclDefaultPolicy,
    pub down_policy: AclDownPolicy,
    /// How long a resolved policy, role or token is cached (30s each).
    pub policy_ttl: Duration,
    pub role_ttl: Duration,
    pub token_ttl: Duration,
    /// Whether listing keys needs `list` rather than `read` on the prefix.
    pub enable_key_list_policy: bool,
    /// Whether tokens set through `/v1/agent/token` survive a restart.
    pub enable_token_persistence: bool,
    /// Whether a secondary datacenter replicates tokens (not only
    /// policies and roles) from the primary.
    pub enable_token_replication: bool,
    pub tokens: AclTokens,
}

impl Default for AclConfig {
    fn default() -> Self {
        AclConfig {
            enabled: false,
            default_policy: AclDefaultPolicy::Allow,
            down_policy: AclDownPolicy::ExtendCache,
            policy_ttl: Duration::from_secs(30),
            role_ttl: Duration::from_secs(30),
            token_ttl: Duration::from_secs(30),
            enable_key_list_policy: false,
            enable_token_persistence: false,
            enable_token_replication: false,
            tokens: AclTokens::default(),
        }
    }
}

/// `acl.tokens`: secrets the agent is given; empty means not set, as in
/// Consul. `Debug` hides them, so a logged config does not leak them.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AclTokens {
    /// Created with global management rights when the primary
    /// datacenter's servers bootstrap ACLs (was `master`).
    pub initial_management: String,
    /// Used for requests that carry no token (HTTP, DNS).
    pub default: String,
    /// The agent's own token for its internal operations.
    pub agent: String,
    /// Reaches the agent's own endpoints when the servers cannot resolve
    /// tokens (was `agent_master`).
    pub agent_recovery: String,
    /// Used by secondary datacenters' servers to replicate ACL data.
    pub replication: String,
    /// Used to answer DNS queries (the default token when empty).
    pub dns: String,
    /// Used to register the services and checks of the config files.
    pub config_file_service_registration: String,
}

impl fmt::Debug for AclTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Consul shows set tokens as "hidden" in its debug config.
        let h = |t: &String| if t.is_empty() { "" } else { "hidden" };
        f.debug_struct("AclTokens")
            .field("initial_management", &h(&self.initial_management))
            .field("default", &h(&self.default))
            .field("agent", &h(&self.agent))
            .field("agent_recovery", &h(&self.agent_recovery))
            .field("replication", &h(&self.replication))
            .field("dns", &h(&self.dns))
            .field(
                "config_file_service_registration",
                &h(&self.config_file_service_registration),
            )
            .finish()
    }
}

/// The `token` of a service or check definition (a config file's, or the
/// caller's of `/v1/agent/service/register`): what anti-entropy syncs that
/// entry with. `Debug` only says whether it is set, so a logged
/// definition does not leak it.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DefinitionToken(pub String);

impl DefinitionToken {
    /// The token, `None` when unset.
    pub fn get(&self) -> Option<&str> {
        (!self.0.is_empty()).then_some(self.0.as_str())
    }
}

impl fmt::Debug for DefinitionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "hidden" })
    }
}

impl super::RuntimeConfig {
    /// Whether this agent's datacenter is the primary one, authoritative
    /// for ACL policies, roles and global tokens (datacenter names compare
    /// without case, as everywhere in Meridian).
    pub fn in_primary_datacenter(&self) -> bool {
        self.primary_datacenter.is_empty()
            || self
                .primary_datacenter
                .eq_ignore_ascii_case(&self.datacenter)
    }
}
