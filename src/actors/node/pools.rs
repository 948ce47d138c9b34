//! The agent's gossip pools: joining the LAN pool (and the WAN pool on
//! servers) by hand or with `retry_join`, leaving, members, force-leave;
//! and the LAN member events that keep the router's list of this
//! datacenter's servers.

use std::time::Duration;

use actix::prelude::*;

use super::NodeActor;
use crate::lan::{Member, MemberStatus};

/// The LAN pool's members (this agent alone when gossip is off).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Vec<Member>")]
pub struct GetMembers;

/// Join the LAN pool through these addresses (`host`, `ip`, `ip:port`);
/// answers how many could be contacted.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<usize, String>")]
pub struct JoinLan(pub Vec<String>);

fn lan_disabled() -> String {
    "LAN gossip is disabled (ports.serf_lan = -1)".to_string()
}

/// Join the WAN pool through servers of other datacenters (default port 8302).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<usize, String>")]
pub struct JoinWan(pub Vec<String>);

impl Handler<JoinWan> for NodeActor {
    type Result = ResponseFuture<Result<usize, String>>;

    fn handle(&mut self, msg: JoinWan, _: &mut Context<Self>) -> Self::Result {
        let wan = self.wan.clone();
        Box::pin(async move {
            let wan = wan.ok_or_else(|| "WAN gossip runs on servers only".to_string())?;
            let addrs = resolve_with_port(msg.0, 8302).await;
            wan.send(crate::lan::Join(addrs))
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// The WAN pool's members (empty on a client: it is not in the pool).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Vec<Member>")]
pub struct GetWanMembers;

impl Handler<GetWanMembers> for NodeActor {
    type Result = ResponseFuture<Vec<Member>>;

    fn handle(&mut self, _: GetWanMembers, _: &mut Context<Self>) -> Self::Result {
        let wan = self.wan.clone();
        Box::pin(async move {
            match wan {
                Some(w) => w.send(crate::lan::Members).await.unwrap_or_default(),
                None => Vec::new(),
            }
        })
    }
}

/// `force-leave`: settle a failed member as left (pruned: forgotten).
/// Answers whether a member has that name.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<bool, String>")]
pub struct ForceLeaveLan {
    pub name: String,
    pub prune: bool,
}

impl Handler<ForceLeaveLan> for NodeActor {
    type Result = ResponseFuture<Result<bool, String>>;

    fn handle(&mut self, msg: ForceLeaveLan, _: &mut Context<Self>) -> Self::Result {
        let lan = self.lan.clone();
        Box::pin(async move {
            let lan = lan.ok_or_else(lan_disabled)?;
            lan.send(crate::lan::ForceLeave {
                name: msg.name,
                prune: msg.prune,
            })
            .await
            .map_err(|e| e.to_string())
        })
    }
}

/// Leave the LAN pool gracefully (before the agent stops).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct LeaveLan;

/// Resolves join addresses; a missing port means the LAN gossip port 8301.
async fn resolve(addrs: Vec<String>) -> Vec<std::net::SocketAddr> {
    resolve_with_port(addrs, 8301).await
}

/// Join addresses as socket addresses, `port` when they name none.
async fn resolve_with_port(addrs: Vec<String>, port: u16) -> Vec<std::net::SocketAddr> {
    let mut out = Vec::new();
    for a in addrs {
        let with_port = if a.parse::<std::net::SocketAddr>().is_ok()
            || a.rsplit_once(':')
                .is_some_and(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok())
        {
            a.clone()
        } else {
            format!("{a}:{port}")
        };
        match tokio::net::lookup_host(with_port).await {
            Ok(found) => out.extend(found.filter(|s| s.is_ipv4()).take(1)),
            Err(e) => tracing::warn!(addr = %a, error = %e, "cannot resolve join address"),
        }
    }
    out
}

/// The wait after failed join attempt `attempt` (0-based): 1 s, doubling,
/// up to `retry_interval`. Consul waits `retry_interval` every time, which
/// makes a client started beside its servers (they are still binding)
/// wait the full 30 s after its first attempt; retrying soon while the
/// servers are starting, then settling to `retry_interval`, costs a few
/// datagrams and joins as soon as they listen. Only first joins come here:
/// the loop ends at the first success.
pub(super) fn first_join_backoff(attempt: u32, interval: Duration) -> Duration {
    Duration::from_secs(1)
        .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .min(interval)
}

impl NodeActor {
    /// `retry_join`: contacts the configured addresses until one answers
    /// (this agent sees another member) or `retry_max` attempts are spent.
    pub(super) fn retry_join(&mut self, ctx: &mut Context<Self>, attempt: u32) {
        self.retry_join_pool(ctx, attempt, false);
    }

    /// `retry_join` / `retry_join_wan`: contacts the configured addresses
    /// until one answers (this agent sees another member) or the attempts
    /// are spent.
    pub(super) fn retry_join_pool(&mut self, ctx: &mut Context<Self>, attempt: u32, wan: bool) {
        let c = &self.config;
        let (pool, addrs, interval, max, port, name) = if wan {
            (
                self.wan.clone(),
                c.retry_join_wan.clone(),
                c.retry_interval_wan,
                c.retry_max_wan,
                c.ports.serf_wan.unwrap_or(8302),
                "WAN",
            )
        } else {
            (
                self.lan.clone(),
                c.retry_join.clone(),
                c.retry_interval,
                c.retry_max,
                c.ports.serf_lan.unwrap_or(8301),
                "LAN",
            )
        };
        let Some(pool) = pool else { return };
        let me = std::net::SocketAddr::new(c.advertise(), port);
        let fut = async move {
            let addrs = resolve_with_port(addrs, port).await;
            // The first server of a tutorial is told to join itself: done.
            if !addrs.is_empty() && addrs.iter().all(|a| *a == me) {
                return true;
            }
            let n = pool.send(crate::lan::Join(addrs)).await.unwrap_or(0);
            // Give the pool a moment to answer before judging the attempt.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let members = pool.send(crate::lan::Members).await.unwrap_or_default();
            n > 0
                && members
                    .iter()
                    .filter(|m| m.status == MemberStatus::Alive)
                    .count()
                    > 1
        };
        ctx.spawn(fut.into_actor(self).map(move |joined, _, ctx| {
            if joined {
                tracing::info!("joined the {name} pool");
            } else if max == 0 || attempt + 1 < max {
                let wait = first_join_backoff(attempt, interval);
                tracing::warn!(
                    attempt = attempt + 1,
                    "{name} join failed; retrying in {wait:?}"
                );
                ctx.run_later(wait, move |act, ctx| {
                    act.retry_join_pool(ctx, attempt + 1, wan)
                });
            } else {
                tracing::error!("{name} join failed after {max} attempts");
            }
        }));
    }

    /// Without gossip the agent knows only itself.
    pub(super) fn self_member(&self) -> Member {
        let c = &self.config;
        Member {
            name: c.node_name.clone(),
            addr: std::net::SocketAddr::new(c.advertise(), c.ports.serf_lan.unwrap_or(8301)),
            tags: c.gossip_tags(),
            status: MemberStatus::Alive,
            rtt: None,
        }
    }
}

/// Keeps the router's list of this datacenter's servers (where a client
/// sends its requests).
impl Handler<crate::lan::MemberEvent> for NodeActor {
    type Result = ();

    fn handle(&mut self, ev: crate::lan::MemberEvent, _: &mut Context<Self>) {
        use crate::lan::MemberEvent;
        match ev {
            MemberEvent::Join(m) | MemberEvent::Update(m) => {
                self.alive_members.insert(m.name.clone());
                let is_server = m.tags.get("role").map(String::as_str) == Some("consul")
                    && m.tags.get("dc") == Some(&self.config.datacenter);
                if let (true, Some(port)) = (is_server, m.tags.get("port")) {
                    self.router
                        .set_server(&m.name, Some(format!("{}:{port}", m.addr.ip())));
                }
            }
            MemberEvent::Leave(m) | MemberEvent::Fail(m) | MemberEvent::Reap(m) => {
                self.alive_members.remove(&m.name);
                self.router.set_server(&m.name, None);
            }
        }
    }
}

impl Handler<GetMembers> for NodeActor {
    type Result = ResponseFuture<Vec<Member>>;

    fn handle(&mut self, _: GetMembers, _: &mut Context<Self>) -> Self::Result {
        let (lan, me) = (self.lan.clone(), self.self_member());
        Box::pin(async move {
            match lan {
                Some(l) => l
                    .send(crate::lan::Members)
                    .await
                    .unwrap_or_else(|_| vec![me]),
                None => vec![me],
            }
        })
    }
}

impl Handler<JoinLan> for NodeActor {
    type Result = ResponseFuture<Result<usize, String>>;

    fn handle(&mut self, msg: JoinLan, _: &mut Context<Self>) -> Self::Result {
        let lan = self.lan.clone();
        Box::pin(async move {
            let lan = lan.ok_or_else(lan_disabled)?;
            let addrs = resolve(msg.0).await;
            lan.send(crate::lan::Join(addrs))
                .await
                .map_err(|e| e.to_string())
        })
    }
}

impl Handler<LeaveLan> for NodeActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: LeaveLan, _: &mut Context<Self>) -> Self::Result {
        let (lan, wan) = (self.lan.clone(), self.wan.clone());
        Box::pin(async move {
            if let Some(w) = wan {
                let _ = w.send(crate::lan::Leave).await;
            }
            if let Some(l) = lan {
                let _ = l.send(crate::lan::Leave).await;
                // Let the leave notices and foca's broadcast go out.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_joins_back_off_from_one_second_to_retry_interval() {
        let interval = Duration::from_secs(30);
        let waits: Vec<u64> = (0..8)
            .map(|a| first_join_backoff(a, interval).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        // No overflow on a client that retries forever.
        assert_eq!(first_join_backoff(u32::MAX, interval), interval);
        // A retry_interval under a second is kept as configured.
        let short = Duration::from_millis(200);
        assert_eq!(first_join_backoff(0, short), short);
    }
}
