//! The two timers that carry network coordinates into the catalog
//! (Consul's `agent.sendCoordinate` and the server's `batchUpdate`):
//!
//! - every agent sends its LAN coordinate to its datacenter's leader
//!   every `sync_coordinate_interval_min`, or less often once the pool is
//!   so large that all its agents together would exceed
//!   `sync_coordinate_rate_target` updates a second, with a random
//!   stagger so that agents started together do not send together;
//! - every server, while it leads, writes what it gathered into Raft
//!   every update period ([`super::router`]'s `flush_coordinates`).
//!
//! Nothing runs with `disable_coordinates`.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use rand::Rng;

use super::Router;
use crate::config::RuntimeConfig;
use crate::lan::{Coordinates, LanGossip, MemberStatus, Members};
use crate::structs::coordinate::CoordinateEntry;
use crate::structs::rpc::{CoordinateUpdateArgs, Hop};
use crate::structs::RequestError;

/// Consul's `lib.RateScaledInterval`: `min`, or longer when `n` agents
/// each sending once per interval would exceed `rate` a second.
pub fn rate_scaled_interval(rate: f64, min: Duration, n: usize) -> Duration {
    if !(rate.is_finite() && rate > 0.0) {
        return min;
    }
    Duration::try_from_secs_f64(n as f64 / rate)
        .unwrap_or(min)
        .max(min)
}

/// Starts the agent's sender (when it gossips on a LAN) and, on a
/// server, the leader's batcher. `period` is the server's batch period.
pub fn start(
    config: &Arc<RuntimeConfig>,
    router: Router,
    lan: Option<Addr<LanGossip>>,
    period: Duration,
) {
    if config.disable_coordinates {
        return;
    }
    if config.server {
        let r = router.clone();
        actix::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                r.flush_coordinates().await;
            }
        });
    }
    if let Some(lan) = lan {
        actix::spawn(send_loop(config.clone(), router, lan));
    }
}

async fn send_loop(config: Arc<RuntimeConfig>, router: Router, lan: Addr<LanGossip>) {
    loop {
        let Ok(members) = lan.send(Members).await else {
            return;
        };
        let alive = members
            .iter()
            .filter(|m| m.status == MemberStatus::Alive)
            .count();
        let interval = rate_scaled_interval(
            config.sync_coordinate_rate_target,
            config.sync_coordinate_interval_min,
            alive,
        );
        let stagger = rand::thread_rng().gen_range(0.0..1.0);
        tokio::time::sleep(interval + interval.mul_f64(stagger)).await;
        let Ok(coords) = lan.send(Coordinates).await else {
            return;
        };
        // A lone agent's coordinate is the origin: nothing to say yet.
        if !coords.measured {
            continue;
        }
        let args = CoordinateUpdateArgs {
            dc: None,
            entry: CoordinateEntry {
                node: config.node_name.clone(),
                segment: String::new(),
                coord: coords.own,
            },
            token: router.agent_token(),
        };
        match router.coordinate_update(args, Hop::Route).await {
            Ok(()) => {}
            Err(e @ (RequestError::PermissionDenied(_) | RequestError::AclNotFound)) => {
                tracing::warn!(error = %e, "coordinate update blocked by ACLs")
            }
            Err(e) => tracing::debug!(error = %e, "coordinate update failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_grows_with_the_pool_beyond_the_rate() {
        let min = Duration::from_secs(15);
        assert_eq!(rate_scaled_interval(64.0, min, 10), min);
        assert_eq!(
            rate_scaled_interval(64.0, min, 6400),
            Duration::from_secs(100)
        );
        assert_eq!(rate_scaled_interval(0.0, min, 6400), min);
    }
}
