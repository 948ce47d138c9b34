//! The `Node` actor: the agent's identity, its config, its local services
//! and checks, and the one routing step every read and write takes
//! (Consul's `rpc.go` forward): another datacenter → WAN; on a server →
//! the local `Raft` actor; on a client → a server of its datacenter.

use actix::prelude::*;

use crate::actors::raft::{RaftActor, RaftRead, RaftWrite};
use crate::config::RuntimeConfig;
use crate::rpc::{ReadRequest, ReadResponse, RequestError, WriteRequest, WriteResponse};

/// Read through the agent's request path.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ReadResponse, RequestError>")]
pub struct Read(pub ReadRequest);

/// Write through the agent's request path.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<WriteResponse, RequestError>")]
pub struct Write(pub WriteRequest);

pub struct NodeActor {
    config: std::sync::Arc<RuntimeConfig>,
    raft: Option<Addr<RaftActor>>,
}

impl NodeActor {
    pub fn new(config: std::sync::Arc<RuntimeConfig>, raft: Option<Addr<RaftActor>>) -> Self {
        NodeActor { config, raft }
    }

    /// The forwarding decision, shared by reads and writes.
    fn route(&self, dc: Option<&str>) -> Result<Addr<RaftActor>, RequestError> {
        if let Some(dc) = dc {
            if !dc.is_empty() && dc != self.config.datacenter {
                return Err(RequestError::NoPathToDatacenter);
            }
        }
        self.raft.clone().ok_or(RequestError::NoServers)
    }
}

impl Actor for NodeActor {
    type Context = Context<Self>;
}

impl Handler<Read> for NodeActor {
    type Result = ResponseFuture<Result<ReadResponse, RequestError>>;

    fn handle(&mut self, msg: Read, _: &mut Context<Self>) -> Self::Result {
        let route = self.route(msg.0.opts.dc.as_deref());
        Box::pin(async move {
            let raft = route?;
            raft.send(RaftRead(msg.0)).await.map_err(|_| RequestError::ShuttingDown)?
        })
    }
}

impl Handler<Write> for NodeActor {
    type Result = ResponseFuture<Result<WriteResponse, RequestError>>;

    fn handle(&mut self, msg: Write, _: &mut Context<Self>) -> Self::Result {
        let route = self.route(msg.0.dc.as_deref());
        Box::pin(async move {
            let raft = route?;
            raft.send(RaftWrite(msg.0.command)).await.map_err(|_| RequestError::ShuttingDown)?
        })
    }
}
