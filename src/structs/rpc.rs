//! Server RPC's methods (port 8300): each names its argument and its
//! answer, so a caller gets the answer's type or a transport error, never
//! an answer of another method to match away.
//!
//! Requests that reach a server carry a [`Hop`]: whether the receiving
//! server routes them as its own HTTP API would (another datacenter, the
//! leader), or serves them itself because the sender already routed them
//! to it. Two servers that each think the other leads must not ping-pong.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::LogId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::acl::ResolvedAclToken;
use super::acl_replication::AclReplicationStatus;
use super::coordinate::{CoordinateEntry, DatacenterMap};
use super::event::UserEvent;
use super::keyring::{KeyringArgs, PoolKeys};
use super::raft::{NodeId, TypeConfig};
use super::request::{ReadRequest, ReadResponse, RequestError, WriteRequest, WriteResponse};
use super::status::RaftStatus;

/// One RPC method: its tag on the wire, what it takes and what it answers.
pub trait Method {
    const ID: MethodId;
    type Args: Serialize + DeserializeOwned + Send + 'static;
    type Reply: Serialize + DeserializeOwned + Send + 'static;
}

/// The first byte of a request frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MethodId {
    AppendEntries = 1,
    Vote = 2,
    InstallSnapshot = 3,
    Read = 4,
    Write = 5,
    Status = 6,
    Datacenters = 7,
    FireEvent = 8,
    RemovePeer = 9,
    ResolveToken = 10,
    AclReplication = 11,
    KeyringOperation = 12,
    PreVote = 13,
    CoordinateUpdate = 14,
    CoordinateDatacenters = 15,
}

impl MethodId {
    pub fn from_byte(b: u8) -> Option<MethodId> {
        use MethodId::*;
        [
            AppendEntries,
            Vote,
            InstallSnapshot,
            Read,
            Write,
            Status,
            Datacenters,
            FireEvent,
            RemovePeer,
            ResolveToken,
            AclReplication,
            KeyringOperation,
            PreVote,
            CoordinateUpdate,
            CoordinateDatacenters,
        ]
        .into_iter()
        .find(|m| *m as u8 == b)
    }
}

/// How far a request may still travel once it reaches a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hop {
    /// From a client agent or another datacenter: the receiving server
    /// routes it (to the leader, or on over the WAN).
    Route,
    /// Sent to the leader by a follower: served by the receiver, or
    /// refused with `No cluster leader`; never forwarded again.
    Leader,
}

/// A request and how far it may travel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Routed<T> {
    pub hop: Hop,
    pub req: T,
}

/// Raft's view: the receiving server's own, or (with `leader`) the
/// leader's, which knows every server's progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusArgs {
    pub dc: Option<String>,
    pub leader: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FireEventArgs {
    pub dc: Option<String>,
    pub event: UserEvent,
    /// The caller's ACL token, decided where the event is fired.
    #[serde(default)]
    pub token: Option<String>,
}

/// A server to remove from the Raft configuration, by ID (node UUID or
/// Raft id) or by its server RPC address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRef {
    Id(String),
    Address(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemovePeerArgs {
    pub dc: Option<String>,
    pub peer: PeerRef,
    /// The caller's ACL token, decided by the leader.
    #[serde(default)]
    pub token: Option<String>,
}

/// A datacenter's ACL replication status, which its leader keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AclReplicationArgs {
    pub dc: Option<String>,
}

/// One node's coordinate for its datacenter's servers to store (Consul's
/// `Coordinate.Update`); decided (`node:write`) and buffered by the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoordinateUpdateArgs {
    pub dc: Option<String>,
    pub entry: CoordinateEntry,
    #[serde(default)]
    pub token: Option<String>,
}

/// Pre-Vote (Raft thesis 9.6): "would you vote for me?", asked before a
/// server starts an election, so that one that cannot win (cut off from
/// a quorum, or from a leader the others still hear) leaves its term as
/// it is and cannot depose a healthy leader when it returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteArgs {
    pub candidate: NodeId,
    /// The term it would stand in (its own plus one); for the logs only:
    /// the election that follows settles terms.
    pub term: u64,
    pub last_log_id: Option<LogId<NodeId>>,
}

/// A Pre-Vote answer: granted, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreVoteAnswer {
    Granted,
    /// The answering server accepted a leader's entries this long ago.
    LeaderHeard {
        ms_ago: u64,
    },
    /// The answering server leads, and a quorum acknowledged it this long ago.
    Leading {
        ms_ago: u64,
    },
    /// The answering server's log is ahead of the candidate's.
    LogAhead {
        mine: Option<LogId<NodeId>>,
    },
}

macro_rules! method {
    ($(#[$doc:meta])* $name:ident, $args:ty, $reply:ty) => {
        $(#[$doc])*
        pub struct $name;
        impl Method for $name {
            const ID: MethodId = MethodId::$name;
            type Args = $args;
            type Reply = $reply;
        }
    };
}

method!(
    AppendEntries,
    AppendEntriesRequest<TypeConfig>,
    Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>
);
method!(
    Vote,
    VoteRequest<NodeId>,
    Result<VoteResponse<NodeId>, RaftError<NodeId>>
);
method!(
    InstallSnapshot,
    InstallSnapshotRequest<TypeConfig>,
    Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>
);
method!(
    /// Pre-Vote: a Raft message like `Vote` (server certificate required).
    PreVote, PreVoteArgs, PreVoteAnswer
);
method!(
    /// A read: KV, catalog, health, sessions, snapshots.
    Read, Routed<ReadRequest>, Result<ReadResponse, RequestError>
);
method!(
    /// A write: one Raft command.
    Write, Routed<WriteRequest>, Result<WriteResponse, RequestError>
);
method!(Status, Routed<StatusArgs>, Result<RaftStatus, RequestError>);
method!(
    /// The datacenters the receiving server knows, nearest first.
    Datacenters, (), Result<Vec<String>, RequestError>
);
method!(
    /// A user event for a datacenter's LAN pool: fired by the receiving
    /// server's agent, or sent on over the WAN.
    FireEvent, Routed<FireEventArgs>, Result<UserEvent, RequestError>
);
method!(RemovePeer, Routed<RemovePeerArgs>, Result<(), RequestError>);
method!(
    /// A client agent's token, resolved by a server of its datacenter from
    /// its store (the secret is the argument); `ACL not found` when it
    /// names no live token.
    ResolveToken, String, Result<ResolvedAclToken, RequestError>
);
method!(
    /// `/v1/acl/replication`: answered by the leader of the datacenter.
    AclReplication, Routed<AclReplicationArgs>, Result<AclReplicationStatus, RequestError>
);
method!(
    /// A gossip key operation on a datacenter's LAN pool: run by the
    /// receiving server's agent, or sent on over the WAN.
    KeyringOperation, KeyringArgs, Result<PoolKeys, RequestError>
);
method!(
    /// A node's coordinate, for the leader's next batch into Raft.
    CoordinateUpdate, Routed<CoordinateUpdateArgs>, Result<(), RequestError>
);
method!(
    /// Every datacenter's servers' WAN coordinates, as the receiving
    /// server's WAN pool has them (`/v1/coordinate/datacenters`).
    CoordinateDatacenters, (), Result<Vec<DatacenterMap>, RequestError>
);
