//! `/v1/txn`'s operations and results (Consul's `TxnOp`, `TxnResult`).

use serde::{Deserialize, Serialize};

use super::catalog::{DirEntry, HealthCheck, Node, NodeService};

/// One KV operation (Consul's `TxnKVOp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvOp {
    pub verb: String,
    pub key: String,
    #[serde(with = "serde_bytes", default)]
    pub value: Vec<u8>,
    pub flags: u64,
    pub index: u64,
    pub session: String,
    /// Meridian extension: `set`, `cas`, `lock` and `unlock` give the key
    /// this TTL (`None` clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// One operation of any kind (Consul's `TxnOp`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TxnOp {
    Kv(KvOp),
    Node {
        verb: String,
        node: Node,
    },
    Service {
        verb: String,
        node: String,
        service: NodeService,
    },
    Check {
        verb: String,
        check: HealthCheck,
    },
}

/// One result row, in the order of the operations (a `get-tree` gives one
/// per key, writes and checks of KV none or one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TxnResult {
    Kv(DirEntry),
    Node(Node),
    Service(NodeService),
    Check(HealthCheck),
}

/// What a transaction answers: results in order, or the errors that
/// stopped it (nothing was written then).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TxnOutcome {
    Results(Vec<TxnResult>),
    Errors(Vec<(usize, String)>),
}
