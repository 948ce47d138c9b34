//! Network coordinates on the request path (Consul's `Coordinate`
//! endpoint). A node's coordinate update goes to its datacenter's
//! leader, which decides it (`node:write` on the node), checks it, and
//! keeps the latest per node until its next batch: every
//! [`UPDATE_PERIOD`] the pending updates go into Raft, at most
//! [`BATCH_SIZE`] per entry and [`MAX_BATCHES`] entries per period (the
//! rest is dropped with a warning; agents send again soon), so that a
//! thousand agents cost a few Raft entries rather than a thousand.
//!
//! The WAN pool's coordinates (`/v1/coordinate/datacenters`) are a
//! server's: a client agent asks one of its servers.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{Router, Target, LEADER_HOLD, WRITE_HOLD};
use crate::acl::{Access, Resource};
use crate::structs::coordinate::{Coordinate, CoordinateEntry, DatacenterMap};
use crate::structs::rpc::{self, CoordinateUpdateArgs, Hop, Routed};
use crate::structs::{Command, RequestError};

/// Consul's `CoordinateUpdatePeriod`.
pub const UPDATE_PERIOD: Duration = Duration::from_secs(5);
/// Consul's `CoordinateUpdateBatchSize`.
pub const BATCH_SIZE: usize = 128;
/// Consul's `CoordinateUpdateMaxBatches`.
pub const MAX_BATCHES: usize = 5;
/// Overrides [`UPDATE_PERIOD`] (a Go duration), so that tests need not
/// wait 5 s for a batch. Not a Consul setting.
pub const PERIOD_ENV: &str = "MERIDIAN_COORDINATE_UPDATE_PERIOD";

/// The period from [`PERIOD_ENV`], else Consul's; a bad value is refused
/// at start, naming the variable.
pub fn update_period_from_env() -> Result<Duration, String> {
    match std::env::var(PERIOD_ENV) {
        Err(_) => Ok(UPDATE_PERIOD),
        Ok(v) => match crate::config::duration::parse_go_duration(&v) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(format!("{PERIOD_ENV}={v:?}: must be positive")),
            Err(e) => Err(format!("{PERIOD_ENV}={v:?}: {e}")),
        },
    }
}

/// (node, segment) → the newest coordinate not yet in Raft.
#[derive(Default)]
pub(super) struct Pending(Mutex<BTreeMap<(String, String), Coordinate>>);

/// Why a coordinate is refused before it is buffered (Consul's texts).
fn check(c: &Coordinate) -> Result<(), RequestError> {
    if !c.is_compatible_with(&Coordinate::default()) {
        return Err(RequestError::Rejected(
            "coordinate dimensionality is incompatible".into(),
        ));
    }
    if !c.is_valid() {
        return Err(RequestError::Rejected("invalid coordinate".into()));
    }
    Ok(())
}

impl Router {
    /// A node's coordinate: to its datacenter, then to the leader, which
    /// decides and buffers it.
    pub async fn coordinate_update(
        &self,
        mut args: CoordinateUpdateArgs,
        hop: Hop,
    ) -> Result<(), RequestError> {
        if hop == Hop::Route {
            args.token = self.0.authz.or_default(args.token.take());
        }
        let target = self.target(args.dc.as_deref());
        let Some(local) = self.here(&target) else {
            let args = Routed {
                hop: Hop::Route,
                req: args,
            };
            return self
                .remote::<rpc::CoordinateUpdate>(&target, args, WRITE_HOLD)
                .await?;
        };
        check(&args.entry.coord)?;
        match Self::leader_addr(local, hop)? {
            None => {
                let token = args.token.as_deref();
                self.learn_foreign(local, token).await?;
                self.0.authz.check(
                    local.store(),
                    token,
                    Resource::Node,
                    Access::Write,
                    &args.entry.node,
                )?;
                let CoordinateEntry {
                    node,
                    segment,
                    coord,
                } = args.entry;
                self.0
                    .coordinates
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((node, segment), coord);
                Ok(())
            }
            Some(addr) => {
                args.dc = None;
                let args = Routed {
                    hop: Hop::Leader,
                    req: args,
                };
                self.leader::<rpc::CoordinateUpdate>(&addr, args, LEADER_HOLD)
                    .await?
            }
        }
    }

    /// The leader's periodic batch: the pending updates into Raft. A
    /// server that does not lead (any more) drops what it held: the
    /// agents send again within their interval.
    pub async fn flush_coordinates(&self) {
        let Some(local) = self.0.local.as_ref() else {
            return;
        };
        let pending = std::mem::take(
            &mut *self
                .0
                .coordinates
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if pending.is_empty() || !local.leadership().leads {
            return;
        }
        let limit = BATCH_SIZE * MAX_BATCHES;
        if pending.len() > limit {
            tracing::warn!(
                discarded = pending.len() - limit,
                "discarded coordinate updates beyond this period's batches"
            );
        }
        let rows: Vec<CoordinateEntry> = pending
            .into_iter()
            .take(limit)
            .map(|((node, segment), coord)| CoordinateEntry {
                node,
                segment,
                coord,
            })
            .collect();
        for chunk in rows.chunks(BATCH_SIZE) {
            if let Err(e) = local
                .write(Command::CoordinateBatchUpdate(chunk.to_vec()))
                .await
            {
                tracing::warn!(error = %e, "coordinate batch not applied");
                return;
            }
        }
    }

    /// The WAN pool's members and coordinates; nothing on an agent
    /// without one.
    pub(super) async fn wan_view(
        &self,
    ) -> Result<(Vec<crate::lan::Member>, crate::lan::PoolCoordinates), RequestError> {
        let Some(wan) = &self.0.wan else {
            return Ok(Default::default());
        };
        let members = wan
            .send(crate::lan::Members)
            .await
            .map_err(|_| RequestError::ShuttingDown)?;
        let coords = wan
            .send(crate::lan::Coordinates)
            .await
            .map_err(|_| RequestError::ShuttingDown)?;
        Ok((members, coords))
    }

    /// This agent's LAN coordinate; `None` without a LAN pool.
    pub async fn lan_coordinate(&self) -> Option<Coordinate> {
        let lan = self.0.lan.as_ref()?;
        lan.send(crate::lan::Coordinates).await.ok().map(|c| c.own)
    }

    /// `/v1/coordinate/datacenters`: a server's WAN view, or a client's
    /// server's.
    pub async fn coordinate_datacenters(&self) -> Result<Vec<DatacenterMap>, RequestError> {
        if self.0.local.is_none() {
            return self
                .remote::<rpc::CoordinateDatacenters>(&Target::Here, (), LEADER_HOLD)
                .await?;
        }
        let (members, coords) = self.wan_view().await?;
        // This server's WAN member name (see `crate::wan::start`).
        let me = format!("{}.{}", self.0.node, self.0.dc);
        Ok(crate::wan::coordinate_maps(&members, &coords, &me))
    }
}
