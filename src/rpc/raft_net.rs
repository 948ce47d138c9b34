//! Raft's network between servers: each Raft message is one RPC call over
//! the shared connection pool to the peer's server RPC address.

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use super::{Pool, RpcError};
use crate::structs::rpc::{self, Method};
use crate::structs::{NodeId, TypeConfig};

#[derive(Clone, Default)]
pub struct RaftNetworkFactoryImpl {
    pub pool: Pool,
}

pub struct PeerClient {
    target: NodeId,
    addr: String,
    pool: Pool,
}

impl RaftNetworkFactory<TypeConfig> for RaftNetworkFactoryImpl {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            pool: self.pool.clone(),
        }
    }
}

impl PeerClient {
    /// One Raft message; the peer's Raft error comes back as a remote one.
    async fn call<M, T, E>(
        &self,
        args: M::Args,
        option: &RPCOption,
    ) -> Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        M: Method<Reply = Result<T, RaftError<NodeId, E>>>,
        E: std::error::Error,
    {
        match self
            .pool
            .call::<M>(&self.addr, &args, option.hard_ttl())
            .await
        {
            Ok(r) => r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e))),
            // A peer we cannot reach is backed off by openraft.
            Err(e @ RpcError::Connect(..)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call::<rpc::AppendEntries, _, _>(rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call::<rpc::InstallSnapshot, _, _>(rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call::<rpc::Vote, _, _>(rpc, &option).await
    }
}
