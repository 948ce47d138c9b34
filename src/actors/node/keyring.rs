//! Gossip key operations (`/v1/operator/keyring`, `meridian keyring`) on
//! the agent's pools, as Consul's `Internal.KeyringOperation` runs them
//! on a server: the WAN pool first (unless `local-only`), then this
//! datacenter's LAN pool, each counted on its own. Client agents refuse,
//! as Consul's do: a server holds both pools.

use actix::prelude::*;

use super::NodeActor;
use crate::lan::{KeyOp, KeyOperation, KeyTally};

/// One key operation on the agent's pools; answers one tally per pool.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<PoolKeys>, String>")]
pub struct KeyringOperation {
    pub op: KeyOp,
    pub relay_factor: u8,
    /// This datacenter's LAN pool only (lists only).
    pub local_only: bool,
}

/// A pool's answers to a key operation.
#[derive(Debug, Clone)]
pub struct PoolKeys {
    pub wan: bool,
    pub datacenter: String,
    pub tally: KeyTally,
}

impl Handler<KeyringOperation> for NodeActor {
    type Result = ResponseFuture<Result<Vec<PoolKeys>, String>>;

    fn handle(&mut self, msg: KeyringOperation, _: &mut Context<Self>) -> Self::Result {
        let server = self.config.server;
        let (lan, wan) = (self.lan.clone(), self.wan.clone());
        let dc = self.config.datacenter.clone();
        Box::pin(async move {
            if !server {
                return Err("keyring operations must run against a server node".to_string());
            }
            let mut pools = Vec::new();
            let ask = |op: KeyOp| KeyOperation {
                op,
                relay_factor: msg.relay_factor,
            };
            if let Some(wan) = wan.filter(|_| !msg.local_only) {
                let tally = wan
                    .send(ask(msg.op.clone()))
                    .await
                    .map_err(|e| e.to_string())?;
                pools.push(PoolKeys {
                    wan: true,
                    datacenter: dc.clone(),
                    tally,
                });
            }
            let lan = lan.ok_or("LAN gossip is disabled (ports.serf_lan = -1)")?;
            let tally = lan.send(ask(msg.op)).await.map_err(|e| e.to_string())?;
            pools.push(PoolKeys {
                wan: false,
                datacenter: dc,
                tally,
            });
            Ok(pools)
        })
    }
}
