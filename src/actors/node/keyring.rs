//! Gossip key operations (`/v1/operator/keyring`, `meridian keyring`) as
//! Consul's `Internal.KeyringOperation` runs them on a server: the WAN
//! pool first, then the LAN pool of every datacenter the WAN pool knows,
//! this one first (another datacenter's through one of its servers); with
//! `local-only`, this datacenter's LAN pool alone. Client agents refuse,
//! as Consul's do: only a server is in the WAN pool.

use actix::prelude::*;

use super::NodeActor;
use crate::lan::KeyOperation;
use crate::structs::keyring::{KeyOp, KeyringArgs, PoolKeys};
use crate::structs::RequestError;

/// One key operation on the pools; answers one tally per pool.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<PoolKeys>, RequestError>")]
pub struct KeyringOperation {
    pub op: KeyOp,
    pub relay_factor: u8,
    /// This datacenter's LAN pool only (lists only).
    pub local_only: bool,
    /// The caller's token, decided by the server of each datacenter.
    pub token: Option<String>,
}

impl Handler<KeyringOperation> for NodeActor {
    type Result = ResponseFuture<Result<Vec<PoolKeys>, RequestError>>;

    fn handle(&mut self, msg: KeyringOperation, _: &mut Context<Self>) -> Self::Result {
        let server = self.config.server;
        let wan = self.wan.clone().filter(|_| !msg.local_only);
        let router = self.router.clone();
        let dc = self.config.datacenter.clone();
        Box::pin(async move {
            if !server {
                return Err(RequestError::Internal(
                    "keyring operations must run against a server node".into(),
                ));
            }
            let mut pools = Vec::new();
            if let Some(wan) = wan {
                let tally = wan
                    .send(KeyOperation {
                        op: msg.op.clone(),
                        relay_factor: msg.relay_factor,
                    })
                    .await
                    .map_err(|_| RequestError::ShuttingDown)?;
                pools.push(PoolKeys {
                    wan: true,
                    datacenter: dc.clone(),
                    tally,
                });
            }
            let dcs = if msg.local_only {
                vec![dc]
            } else {
                router.datacenters().await?
            };
            for d in dcs {
                let args = KeyringArgs {
                    dc: d,
                    op: msg.op.clone(),
                    relay_factor: msg.relay_factor,
                    token: msg.token.clone(),
                };
                pools.push(router.keyring_lan(args).await?);
            }
            Ok(pools)
        })
    }
}
