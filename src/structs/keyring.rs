//! Gossip key operations as they travel: the operation, and a pool's
//! answers counted (serf's `KeyResponse`, Consul's `KeyringResponse`),
//! the same whether the pool is this agent's or another datacenter's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What to do with the ring (the key in base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyOp {
    List,
    Install(String),
    Use(String),
    Remove(String),
}

impl KeyOp {
    pub fn name(&self) -> &'static str {
        match self {
            KeyOp::List => "list",
            KeyOp::Install(_) => "install",
            KeyOp::Use(_) => "use",
            KeyOp::Remove(_) => "remove",
        }
    }
}

/// One pool's answers to a key operation, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTally {
    /// Members asked, the asking one included.
    pub num_nodes: usize,
    pub num_resp: usize,
    pub num_err: usize,
    /// Each key and how many members have it.
    pub keys: BTreeMap<String, usize>,
    /// Each primary key and how many members seal with it.
    pub primary_keys: BTreeMap<String, usize>,
    /// Member name to what went wrong there.
    pub messages: BTreeMap<String, String>,
}

impl KeyTally {
    /// The pool's failure as serf words it, if any: a member refused, or
    /// some did not answer in time.
    pub fn error(&self) -> Option<String> {
        if self.num_err > 0 {
            Some(format!(
                "{}/{} nodes reported failure",
                self.num_err, self.num_nodes
            ))
        } else if self.num_resp < self.num_nodes {
            Some(format!(
                "{}/{} nodes reported success",
                self.num_resp, self.num_nodes
            ))
        } else {
            None
        }
    }
}

/// A pool's answers: the WAN pool, or a datacenter's LAN pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolKeys {
    pub wan: bool,
    pub datacenter: String,
    pub tally: KeyTally,
}

/// A key operation for a datacenter's LAN pool, run by one of its
/// servers (`Internal.KeyringOperation` forwarded over the WAN).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyringArgs {
    pub dc: String,
    pub op: KeyOp,
    pub relay_factor: u8,
    /// The caller's ACL token, decided where the operation runs.
    #[serde(default)]
    pub token: Option<String>,
}
