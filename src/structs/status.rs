//! Raft's view of a datacenter, as a server reports it (`/v1/status/*`,
//! `/v1/operator/raft/*`, `/v1/agent/self`, `info`).

use super::raft::NodeId;

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RaftStatus {
    /// `ip:port` of the leader's server RPC address, if there is one.
    pub leader_addr: Option<String>,
    pub is_leader: bool,
    /// `ip:port` of every voter.
    pub peers: Vec<String>,
    pub state: String,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub commit_index: u64,
    pub last_snapshot_index: u64,
    pub last_contact_ms: u64,
    /// Every server in the Raft configuration.
    pub servers: Vec<RaftServer>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RaftServer {
    pub id: NodeId,
    /// Server RPC address, `ip:port`.
    pub addr: String,
    pub voter: bool,
    pub leader: bool,
    /// Highest log index known to be on that server (the leader knows it
    /// for every server; a follower only for itself).
    pub last_index: Option<u64>,
}

/// A server's state-store gauges (`/v1/agent/self`'s `Stats.consul`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct StoreStats {
    /// KV tombstones not yet reaped.
    pub kv_tombstones: usize,
    /// Blocking queries waiting here now (Consul's
    /// `consul.rpc.queries_blocking` gauge).
    pub queries_blocking: usize,
}
