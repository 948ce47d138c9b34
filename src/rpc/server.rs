//! The server RPC listener: decodes a request, hands it to Raft or to the
//! `Raft` actor, encodes the answer. Each connection serves its calls in
//! order; a bad frame closes that connection only.

use actix::Addr;
use openraft::raft::AppendEntriesResponse;
use tokio::net::{TcpListener, TcpStream};

use super::codec::{read_frame, write_frame};
use super::{RpcError, RpcRequest, RpcResponse};
use crate::actors::raft::{
    Datacenters, FromAgent, GetRaftStatus, LastContact, RaftActor, RemoveVoter, RouteEvent,
    ServeForwarded,
};
use crate::rpc::RequestError;
use crate::storage::Raft;

/// Accepts connections until the listener fails or the runtime stops.
pub async fn serve(
    listener: TcpListener,
    raft: Raft,
    actor: Addr<RaftActor>,
    contact: LastContact,
) {
    loop {
        match listener.accept().await {
            Ok((conn, peer)) => {
                let _ = conn.set_nodelay(true);
                let (raft, actor, contact) = (raft.clone(), actor.clone(), contact.clone());
                tokio::spawn(async move {
                    if let Err(e) = connection(conn, raft, actor, contact).await {
                        tracing::debug!(%peer, error = %e, "rpc connection closed");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "rpc accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(
    mut conn: TcpStream,
    raft: Raft,
    actor: Addr<RaftActor>,
    contact: LastContact,
) -> Result<(), RpcError> {
    loop {
        let req: RpcRequest = match read_frame(&mut conn).await {
            Ok(r) => r,
            Err(RpcError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let resp = match req {
            RpcRequest::AppendEntries(r) => {
                let resp = raft.append_entries(r).await;
                // Only an accepted append is contact with a current leader.
                if matches!(
                    resp,
                    Ok(AppendEntriesResponse::Success | AppendEntriesResponse::PartialSuccess(_))
                ) {
                    contact.touch();
                }
                RpcResponse::AppendEntries(resp)
            }
            RpcRequest::Vote(r) => RpcResponse::Vote(raft.vote(r).await),
            RpcRequest::InstallSnapshot(r) => {
                RpcResponse::InstallSnapshot(raft.install_snapshot(r).await)
            }
            RpcRequest::Read(r) => match actor.send(ServeForwarded::Read(r)).await {
                Ok(RpcResponse::Read(r)) => RpcResponse::Read(r),
                Ok(other) => RpcResponse::Failed(format!("unexpected {other:?}")),
                Err(e) => RpcResponse::Failed(e.to_string()),
            },
            RpcRequest::Write(w) => match actor.send(ServeForwarded::Write(w)).await {
                Ok(resp) => resp,
                Err(e) => RpcResponse::Failed(e.to_string()),
            },
            RpcRequest::AgentRead(r) => actor
                .send(FromAgent::Read(r))
                .await
                .unwrap_or(RpcResponse::Read(Err(RequestError::ShuttingDown))),
            RpcRequest::Status { leader } => match actor.send(GetRaftStatus { leader }).await {
                Ok(status) => RpcResponse::Status(status),
                Err(e) => RpcResponse::Failed(e.to_string()),
            },
            RpcRequest::Datacenters => match actor.send(Datacenters).await {
                Ok(d) => RpcResponse::Datacenters(d),
                Err(e) => RpcResponse::Failed(e.to_string()),
            },
            RpcRequest::RemovePeer(id) => RpcResponse::Done(
                actor
                    .send(RemoveVoter(id))
                    .await
                    .unwrap_or(Err(RequestError::ShuttingDown)),
            ),
            RpcRequest::FireEvent { dc, event } => RpcResponse::Event(
                actor
                    .send(RouteEvent { dc, event })
                    .await
                    .unwrap_or(Err(RequestError::ShuttingDown)),
            ),
            RpcRequest::AgentWrite(w) => actor
                .send(FromAgent::Write(w))
                .await
                .unwrap_or(RpcResponse::Write(Err(RequestError::ShuttingDown))),
        };
        write_frame(&mut conn, &resp).await?;
    }
}
