//! Gossip key operations on a datacenter's LAN pool: run on this agent's
//! pool when the datacenter is its own (decided here, with `keyring:read`
//! for a list and `keyring:write` otherwise), else sent to one of that
//! datacenter's servers over the WAN, which decides and runs it.

use super::{Router, Target, WRITE_HOLD};
use crate::acl::{Access, Resource};
use crate::lan::KeyOperation;
use crate::structs::keyring::{KeyOp, KeyringArgs, PoolKeys};
use crate::structs::rpc;
use crate::structs::RequestError;

impl Router {
    pub async fn keyring_lan(&self, args: KeyringArgs) -> Result<PoolKeys, RequestError> {
        match self.target(Some(&args.dc)) {
            Target::Here => {
                let access = match args.op {
                    KeyOp::List => Access::Read,
                    _ => Access::Write,
                };
                self.access(args.token.clone())
                    .await?
                    .require(Resource::Keyring, access, "")?;
                let lan = self.0.lan.as_ref().ok_or_else(|| {
                    RequestError::Rejected("LAN gossip is disabled (ports.serf_lan = -1)".into())
                })?;
                let tally = lan
                    .send(KeyOperation {
                        op: args.op,
                        relay_factor: args.relay_factor,
                    })
                    .await
                    .map_err(|_| RequestError::ShuttingDown)?;
                Ok(PoolKeys {
                    wan: false,
                    datacenter: self.0.dc.clone(),
                    tally,
                })
            }
            target => {
                self.remote::<rpc::KeyringOperation>(&target, args, WRITE_HOLD)
                    .await?
            }
        }
    }
}
