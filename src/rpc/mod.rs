//! Server RPC (port 8300): a framed protocol over pooled TCP connections
//! that carries Raft's messages between servers and requests forwarded to
//! the leader. The request path's types (`request.rs`) travel unchanged, so
//! a read or write is the same value whether it is served here, by the
//! leader, or (later) by another datacenter.

pub mod codec;
pub mod pool;
pub mod raft_net;
pub mod request;
pub mod server;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use pool::Pool;
pub use request::{
    Consistency, QueryMeta, QueryOptions, ReadRequest, ReadResponse, RequestError, WriteRequest,
    WriteResponse,
};

use crate::storage::{NodeId, TypeConfig};

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A read forwarded to the leader (served there, never forwarded again).
    Read(ReadRequest),
    /// A write forwarded to the leader.
    Write(WriteRequest),
    /// A client agent's read: the receiving server routes it (to the
    /// leader if need be), as if it had arrived on its own HTTP API.
    AgentRead(ReadRequest),
    /// A client agent's write, routed by the receiving server.
    AgentWrite(WriteRequest),
    /// Remove a server from the Raft configuration (served by the leader).
    RemovePeer(NodeId),
    /// The receiving server's Raft view (a client's `/v1/status/*`), or
    /// with `leader` the leader's (which knows every server's progress).
    Status {
        leader: bool,
    },
    /// The datacenters the receiving server knows, nearest first.
    Datacenters,
    /// A user event for `dc`'s LAN pool: fired there by the receiving
    /// server, or sent on over the WAN.
    FireEvent {
        dc: Option<String>,
        event: crate::lan::UserEvent,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Read(Result<ReadResponse, RequestError>),
    Write(Result<WriteResponse, RequestError>),
    Done(Result<(), RequestError>),
    Status(crate::actors::raft::RaftStatus),
    Datacenters(Vec<String>),
    Event(Result<crate::lan::UserEvent, RequestError>),
    /// The request could not be decoded or served at all.
    Failed(String),
}

#[derive(Debug, Error)]
pub enum RpcError {
    #[error("rpc error: cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("rpc error: {0} did not answer in time")]
    Timeout(String),
    #[error("rpc error: {0}")]
    Io(#[from] std::io::Error),
    #[error("rpc error: bad frame: {0}")]
    Codec(String),
    #[error("rpc error: unexpected answer: {0}")]
    Unexpected(String),
}
