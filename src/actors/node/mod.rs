//! The `Node` actor: the agent's identity, its config, its local services
//! and checks, and the one routing step every read and write takes
//! (Consul's `rpc.go` forward): another datacenter → WAN; on a server →
//! the local `Raft` actor; on a client → a server of its datacenter.
//!
//! Local services and checks are the truth for this node: every change is
//! written to the catalog at once, and a periodic anti-entropy pass
//! rewrites them and removes catalog entries of this node the agent does
//! not have (the health issue refines intervals and check output syncs).

pub mod events;
pub mod local;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::actors::health::{CheckResult, HealthActor, SetChecks, TtlTouched};
use crate::actors::raft::{GetRaftStatus, RaftActor, RaftRead, RaftStatus, RaftWrite};
use crate::config::{CheckDefinition, RuntimeConfig, ServiceDefinition};
use crate::lan::{LanGossip, Member, MemberStatus};
use crate::rpc::{
    Consistency, QueryOptions, ReadRequest, ReadResponse, RequestError, WriteRequest, WriteResponse,
};
use crate::state::command::Command;
use crate::state::query::{Query, QueryResult};
use crate::state::structs::{
    DeregisterRequest, HealthCheck, HealthStatus, NodeService, RegisterRequest,
};
use local::Local;
pub use local::LocalError;

/// Read through the agent's request path.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ReadResponse, RequestError>")]
pub struct Read(pub ReadRequest);

/// Write through the agent's request path.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<WriteResponse, RequestError>")]
pub struct Write(pub WriteRequest);

/// Register (or replace) a local service and its checks.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), LocalError>")]
pub struct RegisterService {
    pub def: ServiceDefinition,
    /// The caller may register script checks (see `script_checks_allowed`).
    pub scripts_allowed: bool,
}

/// Register (or replace) a check (`/v1/agent/check/register`).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), LocalError>")]
pub struct RegisterCheck {
    pub def: CheckDefinition,
    pub scripts_allowed: bool,
}

/// Remove a check; NotFound when unknown.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), LocalError>")]
pub struct DeregisterCheck(pub String);

/// `/v1/agent/check/pass|warn|fail|update/<id>`: a TTL check's new state.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), LocalError>")]
pub struct UpdateTtl {
    pub id: String,
    pub status: HealthStatus,
    pub output: String,
}

/// Maintenance mode for the node (`service: None`) or a service.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), LocalError>")]
pub struct Maintenance {
    pub service: Option<String>,
    pub enable: bool,
    pub reason: String,
}

/// `/v1/agent/health/service/...`: local services with their checks and
/// aggregated status.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Vec<ServiceHealth>")]
pub struct LocalServiceHealth;

#[derive(Debug, Clone)]
pub struct ServiceHealth {
    pub service: NodeService,
    pub checks: Vec<HealthCheck>,
    pub aggregated: HealthStatus,
}

/// Remove a local service; `Ok(false)` when the ID is unknown.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<bool, RequestError>")]
pub struct DeregisterService(pub String);

/// The local services and checks, as `/v1/agent/services` and
/// `/v1/agent/checks` show them.
#[derive(Message, Debug, Clone)]
#[rtype(result = "LocalState")]
pub struct GetLocalState;

#[derive(Debug, Clone, Default)]
pub struct LocalState {
    pub services: BTreeMap<String, NodeService>,
    pub checks: BTreeMap<String, HealthCheck>,
}

/// Identity and Raft status, for `/v1/agent/self`, `members`, `status`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "AgentInfo")]
pub struct GetAgentInfo;

#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub config: Arc<RuntimeConfig>,
    pub raft: Option<RaftStatus>,
    pub local_services: usize,
    pub local_checks: usize,
}

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

/// Every known datacenter, nearest first (`/v1/catalog/datacenters`): from
/// the WAN pool on a server, from a server on a client.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<String>, RequestError>")]
pub struct GetDatacenters;

impl Handler<GetDatacenters> for NodeActor {
    type Result = ResponseFuture<Result<Vec<String>, RequestError>>;

    fn handle(&mut self, _: GetDatacenters, _: &mut Context<Self>) -> Self::Result {
        let own = self.config.datacenter.clone();
        let wan = self.wan.clone();
        let route = self.route(None);
        let server = self.raft.is_some();
        Box::pin(async move {
            if server {
                let members = match wan {
                    Some(w) => w.send(crate::lan::Members).await.unwrap_or_default(),
                    None => Vec::new(),
                };
                return Ok(crate::wan::datacenters(&members, &own));
            }
            match route?
                .remote(crate::rpc::RpcRequest::Datacenters, Duration::from_secs(10))
                .await?
            {
                crate::rpc::RpcResponse::Datacenters(d) => Ok(d),
                other => Err(RequestError::Internal(format!(
                    "rpc error: unexpected answer {other:?}"
                ))),
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

/// Where this agent's reads and writes go.
#[derive(Clone)]
pub enum Upstream {
    Local(Addr<RaftActor>),
    /// Servers over RPC: a client's own datacenter's (the request names
    /// `dc` when it is for another one), or a remote datacenter's.
    Remote {
        servers: Vec<String>,
        pool: crate::rpc::Pool,
        /// The datacenter the request is for, when not the servers' own
        /// concern to pick (a client asking for another datacenter).
        dc: Option<String>,
        /// Nearest first (WAN) rather than a random spread (LAN).
        in_order: bool,
        /// What to answer when none of them answers.
        unreachable: RequestError,
        /// Each call's time beyond its blocking wait.
        hold: Duration,
    },
    /// Another datacenter, from a server: its live servers from the WAN pool.
    Wan {
        wan: Addr<crate::wan::WanGossip>,
        dc: String,
        pool: crate::rpc::Pool,
        hold: Duration,
    },
}

/// A call's whole time: the blocking wait when it is a blocking query.
fn call_timeout(opts: &QueryOptions, hold: Duration) -> Duration {
    if opts.min_index > 0 {
        opts.max_wait + hold
    } else {
        hold
    }
}

impl Upstream {
    /// Turns a WAN route into the servers to try right now.
    async fn resolve(&self) -> Result<Upstream, RequestError> {
        let Upstream::Wan {
            wan,
            dc,
            pool,
            hold,
        } = self
        else {
            return Ok(self.clone());
        };
        let members = wan
            .send(crate::lan::Members)
            .await
            .map_err(|_| RequestError::ShuttingDown)?;
        let servers = crate::wan::servers_of(&members, dc);
        if servers.is_empty() {
            return Err(RequestError::NoPathToDatacenter);
        }
        Ok(Upstream::Remote {
            servers,
            pool: pool.clone(),
            dc: Some(dc.clone()),
            in_order: true,
            unreachable: RequestError::NoPathToDatacenter,
            hold: *hold,
        })
    }

    pub async fn read(&self, req: ReadRequest) -> Result<ReadResponse, RequestError> {
        match self.resolve().await? {
            Upstream::Local(r) => r
                .send(RaftRead(req))
                .await
                .map_err(|_| RequestError::ShuttingDown)?,
            remote => {
                let hold = match &remote {
                    Upstream::Remote { hold, .. } => *hold,
                    _ => Duration::from_secs(10),
                };
                let timeout = call_timeout(&req.opts, hold);
                match remote
                    .remote(crate::rpc::RpcRequest::AgentRead(req), timeout)
                    .await?
                {
                    crate::rpc::RpcResponse::Read(r) => r,
                    other => Err(RequestError::Internal(format!(
                        "rpc error: unexpected answer {other:?}"
                    ))),
                }
            }
        }
    }

    /// Raft's view from this server, or from a server a client reaches;
    /// with `leader`, the leader's view.
    pub async fn status(
        &self,
        leader: bool,
    ) -> Result<crate::actors::raft::RaftStatus, RequestError> {
        match self.resolve().await? {
            Upstream::Local(r) => r
                .send(crate::actors::raft::GetRaftStatus { leader })
                .await
                .map_err(|_| RequestError::ShuttingDown),
            remote => match remote
                .remote(
                    crate::rpc::RpcRequest::Status { leader },
                    Duration::from_secs(10),
                )
                .await?
            {
                crate::rpc::RpcResponse::Status(s) => Ok(s),
                other => Err(RequestError::Internal(format!(
                    "rpc error: unexpected answer {other:?}"
                ))),
            },
        }
    }

    pub async fn write(&self, command: Command) -> Result<WriteResponse, RequestError> {
        match self.resolve().await? {
            Upstream::Local(r) => r
                .send(RaftWrite(command))
                .await
                .map_err(|_| RequestError::ShuttingDown)?,
            remote => {
                let dc = match &remote {
                    Upstream::Remote { dc, .. } => dc.clone(),
                    _ => None,
                };
                match remote
                    .remote(
                        crate::rpc::RpcRequest::AgentWrite(WriteRequest { dc, command }),
                        Duration::from_secs(15),
                    )
                    .await?
                {
                    crate::rpc::RpcResponse::Write(r) => r,
                    other => Err(RequestError::Internal(format!(
                        "rpc error: unexpected answer {other:?}"
                    ))),
                }
            }
        }
    }

    /// Writes in order, stopping at the first failure; whether all went in.
    pub async fn write_all(&self, writes: Vec<Command>) -> bool {
        for w in writes {
            if self.write(w).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Tries the servers (shuffled, or nearest first); the first that
    /// answers wins.
    async fn remote(
        &self,
        req: crate::rpc::RpcRequest,
        timeout: Duration,
    ) -> Result<crate::rpc::RpcResponse, RequestError> {
        let Upstream::Remote {
            servers,
            pool,
            in_order,
            unreachable,
            ..
        } = self
        else {
            return Err(RequestError::NoServers);
        };
        let mut order = servers.clone();
        if !in_order {
            rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rand::thread_rng());
        }
        for addr in order {
            match pool.call(&addr, &req, timeout).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    tracing::debug!(server = %addr, error = %e, "server did not answer; trying another");
                }
            }
        }
        Err(unreachable.clone())
    }
}

/// Re-read the config files and apply what can change at run time.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), String>")]
pub struct Reload;

/// How the agent rebuilds its config on reload: the same flags, re-read files.
pub type ConfigSource = Arc<dyn Fn() -> Result<RuntimeConfig, String> + Send + Sync>;

pub struct NodeActor {
    config: Arc<RuntimeConfig>,
    raft: Option<Addr<RaftActor>>,
    health: Option<Addr<HealthActor>>,
    lan: Option<Addr<LanGossip>>,
    /// Servers only: the WAN pool, for other datacenters.
    wan: Option<Addr<crate::wan::WanGossip>>,
    /// Servers of this datacenter from the LAN pool (name → RPC address).
    servers: BTreeMap<String, String>,
    pool: crate::rpc::Pool,
    reload_source: Option<ConfigSource>,
    /// This node's services and checks: the truth anti-entropy writes.
    local: Local,
    /// Everything must be rewritten (start, drift check, failed sync).
    dirty: bool,
    /// A sync is running; the next one waits for it.
    syncing: bool,
    /// Live LAN members, for scaling the full-sync interval.
    alive_members: std::collections::BTreeSet<String>,
    /// After failed syncs (no server, no leader): wait before the next,
    /// doubling up to `MAX_BACKOFF`.
    backoff: Duration,
    retry_at: Option<Instant>,
    events: events::EventLog,
}

const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl NodeActor {
    pub fn new(
        config: Arc<RuntimeConfig>,
        raft: Option<Addr<RaftActor>>,
        health: Option<Addr<HealthActor>>,
        lan: Option<Addr<LanGossip>>,
        wan: Option<Addr<crate::wan::WanGossip>>,
        reload_source: Option<ConfigSource>,
    ) -> Self {
        let mut local = Local::new(&config.node_name);
        for e in local.reload(&config.services, &config.checks) {
            tracing::error!(error = %e, "check from the config files refused");
        }
        NodeActor {
            config,
            raft,
            health,
            lan,
            wan,
            servers: BTreeMap::new(),
            pool: crate::rpc::Pool::default(),
            reload_source,
            local,
            dirty: true,
            syncing: false,
            alive_members: Default::default(),
            backoff: Duration::ZERO,
            retry_at: None,
            events: Default::default(),
        }
    }

    /// Tells the `Health` actor which checks this agent runs.
    fn publish_checks(&self, ctx: &mut Context<Self>) {
        let Some(health) = &self.health else { return };
        health.do_send(SetChecks {
            checks: self.local.specs(),
            reporter: ctx.address().recipient(),
        });
    }

    /// The forwarding decision, shared by reads and writes: this server's
    /// Raft actor, or (on a client) the servers of the datacenter.
    fn route(&self, dc: Option<&str>) -> Result<Upstream, RequestError> {
        let foreign = dc
            .filter(|d| !d.is_empty() && !d.eq_ignore_ascii_case(&self.config.datacenter))
            .map(str::to_ascii_lowercase);
        match (&self.raft, foreign) {
            (Some(r), None) => Ok(Upstream::Local(r.clone())),
            (Some(_), Some(dc)) => match &self.wan {
                Some(wan) => Ok(Upstream::Wan {
                    wan: wan.clone(),
                    dc,
                    pool: self.pool.clone(),
                    hold: self.config.rpc_hold_timeout,
                }),
                None => Err(RequestError::NoPathToDatacenter),
            },
            (None, _) if self.servers.is_empty() => Err(RequestError::NoServers),
            // A client sends everything to its own servers; they route
            // another datacenter's requests over the WAN.
            (None, dc) => Ok(Upstream::Remote {
                servers: self.servers.values().cloned().collect(),
                pool: self.pool.clone(),
                dc,
                in_order: false,
                unreachable: RequestError::NoServers,
                // Room for the server's own hop to another datacenter.
                hold: self.config.rpc_hold_timeout + Duration::from_secs(3),
            }),
        }
    }

    /// This node as the catalog holds it (the same row the leader writes,
    /// so the two never make each other's writes look like changes).
    fn node_row(&self) -> RegisterRequest {
        RegisterRequest {
            service: None,
            check: None,
            checks: Vec::new(),
            ..crate::actors::raft::self_registration(&self.config)
        }
    }

    /// The catalog writes that bring these services ("" = node checks) up
    /// to date; a service no longer here is deregistered.
    fn writes_for(&mut self, ids: &[String]) -> Vec<Command> {
        let removed = std::mem::take(&mut self.local.removed_checks);
        let node = self.config.node_name.clone();
        let mut writes: Vec<Command> = removed
            .into_iter()
            .map(|check_id| {
                Command::Deregister(DeregisterRequest {
                    node: node.clone(),
                    check_id,
                    ..Default::default()
                })
            })
            .collect();
        writes.extend(ids.iter().map(|id| {
            if id.is_empty() || self.local.services.contains_key(id) {
                Command::Register(self.local.registration(id, self.node_row()))
            } else {
                Command::Deregister(DeregisterRequest {
                    node: self.config.node_name.clone(),
                    service_id: id.clone(),
                    ..Default::default()
                })
            }
        }));
        writes
    }

    /// The next full anti-entropy pass: a minute, scaled up with the
    /// cluster's size past 128 members (Consul's `aeScale`), staggered so
    /// agents started together do not sync together.
    fn schedule_full_sync(&mut self, ctx: &mut Context<Self>) {
        let n = self.alive_members.len().max(1) as f64;
        let scale = if n <= 128.0 {
            1.0
        } else {
            (n.log2() - 128f64.log2() + 1.0).ceil()
        };
        let base = Duration::from_secs(60).mul_f64(scale);
        let stagger = base.mul_f64(rand::random::<f64>() / 4.0);
        ctx.run_later(base + stagger, |act, ctx| {
            act.dirty = true;
            act.schedule_full_sync(ctx);
        });
    }

    /// Backs off after a failed sync, resets after a good one.
    fn sync_done(&mut self, ok: bool) {
        if ok {
            self.backoff = Duration::ZERO;
            self.retry_at = None;
        } else {
            self.backoff = (self.backoff * 2).clamp(Duration::from_millis(200), MAX_BACKOFF);
            self.retry_at = Some(Instant::now() + self.backoff);
        }
    }

    /// Writes these services' entries now and answers once they are in
    /// the catalog (as Consul's API users expect to read their write); if
    /// that fails, anti-entropy retries and the caller still succeeds.
    fn write_through(
        &mut self,
        ids: Vec<String>,
    ) -> ResponseActFuture<Self, Result<(), LocalError>> {
        let Ok(upstream) = self.route(None) else {
            return Box::pin(actix::fut::ready(Ok(())));
        };
        for id in &ids {
            self.local.dirty.remove(id);
        }
        let writes = self.writes_for(&ids);
        let fut = async move { upstream.write_all(writes).await };
        Box::pin(fut.into_actor(self).map(move |ok, act, _| {
            if !ok {
                tracing::debug!("local change not yet in the catalog; anti-entropy will retry");
                act.local.dirty.extend(ids);
                // Removed checks it carried are the full sync's to redo.
                act.dirty = true;
            }
            Ok(())
        }))
    }

    /// The partial sync: what changed since the last one, at once.
    fn sync_changes(&mut self, ctx: &mut Context<Self>) {
        if self.syncing || (self.local.dirty.is_empty() && self.local.removed_checks.is_empty()) {
            return;
        }
        let Ok(upstream) = self.route(None) else {
            return;
        };
        let ids: Vec<String> = std::mem::take(&mut self.local.dirty).into_iter().collect();
        let writes = self.writes_for(&ids);
        self.syncing = true;
        let fut = async move { upstream.write_all(writes).await };
        ctx.spawn(fut.into_actor(self).map(move |ok, act, _| {
            act.syncing = false;
            act.dirty |= !ok;
            act.sync_done(ok);
        }));
    }

    /// Anti-entropy: write every local service and check, then remove
    /// services and checks of this node that the agent no longer has.
    fn sync_all(&mut self, ctx: &mut Context<Self>) {
        if self.syncing {
            self.dirty = true;
            return;
        }
        let Ok(raft) = self.route(None) else { return };
        // The node row first: an agent with no services is still a node.
        let mut ids: Vec<String> = vec![String::new()];
        ids.extend(self.local.services.keys().cloned());
        self.local.dirty.clear();
        self.local.output_dirty.clear();
        // The removal pass below covers removed checks.
        self.local.removed_checks.clear();
        let writes = self.writes_for(&ids);
        let node = self.config.node_name.clone();
        let keep_services: Vec<String> = self.local.services.keys().cloned().collect();
        let keep_checks: Vec<String> = self.local.checks.keys().cloned().collect();
        let fut = async move {
            // The node row comes from the leader's reconcile; until it
            // exists (or while there is no leader) retry later.
            if !raft.write_all(writes).await {
                return false;
            }
            let read = ReadRequest {
                opts: QueryOptions {
                    consistency: Consistency::Stale,
                    ..Default::default()
                },
                query: Query::CatalogNode { node: node.clone() },
            };
            let Ok(resp) = raft.read(read.clone()).await else {
                return false;
            };
            let mut removals = Vec::new();
            if let QueryResult::NodeServices(Some(ns)) = resp.result {
                for id in ns
                    .services
                    .keys()
                    .filter(|id| *id != "consul" && !keep_services.contains(id))
                {
                    removals.push(DeregisterRequest {
                        node: node.clone(),
                        service_id: id.clone(),
                        ..Default::default()
                    });
                }
            }
            let read = ReadRequest {
                query: Query::HealthNode { node: node.clone() },
                ..read
            };
            if let Ok(resp) = raft.read(read).await {
                if let QueryResult::Checks(checks) = resp.result {
                    for c in checks.iter().filter(|c| {
                        c.check_id != "serfHealth" && !keep_checks.contains(&c.check_id)
                    }) {
                        removals.push(DeregisterRequest {
                            node: node.clone(),
                            check_id: c.check_id.clone(),
                            ..Default::default()
                        });
                    }
                }
            }
            raft.write_all(removals.into_iter().map(Command::Deregister).collect())
                .await
        };
        self.syncing = true;
        self.dirty = false;
        ctx.spawn(fut.into_actor(self).map(|ok, act, _| {
            act.syncing = false;
            act.dirty |= !ok;
            act.sync_done(ok);
        }));
    }

    /// Once a second: services critical past `deregister_critical_service_after`
    /// go, and alias checks follow what they mirror.
    fn housekeeping(&mut self, ctx: &mut Context<Self>) {
        let expired = self.local.expired_critical(Instant::now());
        for id in &expired {
            tracing::info!(service = %id, "service critical past deregister_critical_service_after: deregistering");
            self.local.remove_service(id);
            self.local.dirty.insert(id.clone());
        }
        if !expired.is_empty() {
            self.publish_checks(ctx);
        }
        self.update_aliases(ctx);
    }

    /// Alias checks take the worst status of what they mirror: a local
    /// service directly, another node's through a (stale) catalog read.
    fn update_aliases(&mut self, ctx: &mut Context<Self>) {
        let aliases: Vec<(String, String, String)> = self
            .local
            .checks
            .iter()
            .filter(|(_, c)| c.def.kind() == "alias")
            .map(|(id, c)| {
                (
                    id.clone(),
                    c.def.alias_node.clone(),
                    c.def.alias_service.clone(),
                )
            })
            .collect();
        for (id, node, service) in aliases {
            if node.is_empty() || node == self.config.node_name {
                let worst = |svc: &str| {
                    self.local
                        .checks
                        .iter()
                        .filter(|(cid, c)| {
                            **cid != id && (c.row.service_id == svc || c.row.service_id.is_empty())
                        })
                        .map(|(_, c)| c.row.status)
                        .max()
                        .unwrap_or(HealthStatus::Passing)
                };
                let (status, output) = if service.is_empty() {
                    (worst(""), "All checks of this node considered".to_string())
                } else if self.local.services.contains_key(&service) {
                    (
                        worst(&service),
                        format!("All checks of service {service:?} considered"),
                    )
                } else {
                    (
                        HealthStatus::Critical,
                        format!("Service {service:?} could not be found"),
                    )
                };
                self.local.set_status(&id, status, &output);
                continue;
            }
            let Ok(upstream) = self.route(None) else {
                continue;
            };
            let read = ReadRequest {
                opts: QueryOptions {
                    consistency: Consistency::Stale,
                    ..Default::default()
                },
                query: Query::HealthNode { node: node.clone() },
            };
            let fut = async move { upstream.read(read).await };
            ctx.spawn(fut.into_actor(self).map(move |r, act, _| {
                let checks = match r {
                    Ok(ReadResponse {
                        result: QueryResult::Checks(c),
                        ..
                    }) => c,
                    _ => return,
                };
                let relevant: Vec<&HealthCheck> = checks
                    .iter()
                    .filter(|c| {
                        service.is_empty() || c.service_id.is_empty() || c.service_id == service
                    })
                    .collect();
                let (status, output) = if relevant.is_empty() {
                    (
                        HealthStatus::Critical,
                        format!("No checks found on node {node:?}"),
                    )
                } else {
                    (
                        relevant
                            .iter()
                            .map(|c| c.status)
                            .max()
                            .unwrap_or(HealthStatus::Passing),
                        format!("Aliased checks of node {node:?}"),
                    )
                };
                act.local.set_status(&id, status, &output);
            }));
        }
    }
}

/// Whether an API caller may register script checks: with
/// `enable_script_checks`, or `enable_local_script_checks` from loopback.
pub fn script_checks_allowed(config: &RuntimeConfig, peer_is_loopback: bool) -> bool {
    config.enable_script_checks || (config.enable_local_script_checks && peer_is_loopback)
}

impl Actor for NodeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.publish_checks(ctx);
        // Retry quickly while local state is not in the catalog (no leader
        // yet at start-up); changes go out within 100 ms; a full pass every
        // minute catches drift; output-only changes ride along every
        // `check_update_interval`.
        self.sync_all(ctx);
        ctx.run_interval(Duration::from_millis(100), |act, ctx| {
            if act.retry_at.is_some_and(|t| Instant::now() < t) {
                return;
            }
            if act.dirty {
                act.sync_all(ctx);
            } else {
                act.sync_changes(ctx);
            }
        });
        self.schedule_full_sync(ctx);
        ctx.run_interval(self.config.check_update_interval, |act, _| {
            let outputs = std::mem::take(&mut act.local.output_dirty);
            act.local.dirty.extend(outputs);
        });
        ctx.run_interval(Duration::from_secs(1), |act, ctx| act.housekeeping(ctx));
        if !self.config.retry_join.is_empty() {
            self.retry_join(ctx, 0);
        }
        if !self.config.retry_join_wan.is_empty() {
            self.retry_join_pool(ctx, 0, true);
        }
        if let Some(lan) = &self.lan {
            lan.do_send(crate::lan::Subscribe(ctx.address().recipient()));
            lan.do_send(crate::lan::SubscribeEvents(ctx.address().recipient()));
        }
    }
}

impl NodeActor {
    /// `retry_join`: contacts the configured addresses until one answers
    /// (this agent sees another member) or `retry_max` attempts are spent.
    fn retry_join(&mut self, ctx: &mut Context<Self>, attempt: u32) {
        self.retry_join_pool(ctx, attempt, false);
    }

    /// `retry_join` / `retry_join_wan`: contacts the configured addresses
    /// until one answers (this agent sees another member) or the attempts
    /// are spent.
    fn retry_join_pool(&mut self, ctx: &mut Context<Self>, attempt: u32, wan: bool) {
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
                tracing::warn!(
                    attempt = attempt + 1,
                    "{name} join failed; retrying in {interval:?}"
                );
                ctx.run_later(interval, move |act, ctx| {
                    act.retry_join_pool(ctx, attempt + 1, wan)
                });
            } else {
                tracing::error!("{name} join failed after {max} attempts");
            }
        }));
    }

    /// Without gossip the agent knows only itself.
    fn self_member(&self) -> Member {
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

/// Keeps the list of this datacenter's servers that a client sends to.
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
                    self.servers
                        .insert(m.name.clone(), format!("{}:{port}", m.addr.ip()));
                }
            }
            MemberEvent::Leave(m) | MemberEvent::Fail(m) | MemberEvent::Reap(m) => {
                self.alive_members.remove(&m.name);
                self.servers.remove(&m.name);
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

/// Raft's view for `/v1/status/*` and the operator endpoints: this
/// server's own, or a server's when asked on a client (as Consul forwards
/// `Status.Leader`).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<crate::actors::raft::RaftStatus, RequestError>")]
pub struct ServerStatus {
    /// The leader's view (every server's progress) rather than the nearest's.
    pub leader: bool,
}

impl Handler<ServerStatus> for NodeActor {
    type Result = ResponseFuture<Result<crate::actors::raft::RaftStatus, RequestError>>;

    fn handle(&mut self, msg: ServerStatus, _: &mut Context<Self>) -> Self::Result {
        let route = self.route(None);
        Box::pin(async move { route?.status(msg.leader).await })
    }
}

impl Handler<Read> for NodeActor {
    type Result = ResponseFuture<Result<ReadResponse, RequestError>>;

    fn handle(&mut self, msg: Read, _: &mut Context<Self>) -> Self::Result {
        let route = self.route(msg.0.opts.dc.as_deref());
        Box::pin(async move { route?.read(msg.0).await })
    }
}

impl Handler<Write> for NodeActor {
    type Result = ResponseFuture<Result<WriteResponse, RequestError>>;

    fn handle(&mut self, msg: Write, _: &mut Context<Self>) -> Self::Result {
        let route = self.route(msg.0.dc.as_deref());
        Box::pin(async move { route?.write(msg.0.command).await })
    }
}

impl Handler<RegisterService> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(), LocalError>>;

    fn handle(&mut self, msg: RegisterService, ctx: &mut Context<Self>) -> Self::Result {
        for c in &msg.def.checks {
            if let Err(e) = c.validate() {
                return Box::pin(actix::fut::ready(Err(LocalError::Invalid(e))));
            }
            if !c.args.is_empty() && !msg.scripts_allowed {
                return Box::pin(actix::fut::ready(Err(LocalError::Invalid(
                    crate::config::builder::SCRIPTS_DISABLED.into(),
                ))));
            }
        }
        let id = self.local.add_service(&msg.def, false);
        self.publish_checks(ctx);
        self.write_through(vec![id])
    }
}

impl Handler<DeregisterService> for NodeActor {
    type Result = ResponseActFuture<Self, Result<bool, RequestError>>;

    fn handle(&mut self, msg: DeregisterService, ctx: &mut Context<Self>) -> Self::Result {
        if !self.local.remove_service(&msg.0) {
            return Box::pin(actix::fut::ready(Ok(false)));
        }
        self.publish_checks(ctx);
        Box::pin(self.write_through(vec![msg.0]).map(|_, _, _| Ok(true)))
    }
}

impl Handler<RegisterCheck> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(), LocalError>>;

    fn handle(&mut self, msg: RegisterCheck, ctx: &mut Context<Self>) -> Self::Result {
        if !msg.def.args.is_empty() && !msg.scripts_allowed {
            return Box::pin(actix::fut::ready(Err(LocalError::Invalid(
                crate::config::builder::SCRIPTS_DISABLED.into(),
            ))));
        }
        let service = msg.def.service_id.clone();
        if let Err(e) = self.local.add_check(msg.def, false) {
            return Box::pin(actix::fut::ready(Err(e)));
        }
        self.publish_checks(ctx);
        self.write_through(vec![service])
    }
}

impl Handler<DeregisterCheck> for NodeActor {
    type Result = Result<(), LocalError>;

    fn handle(&mut self, msg: DeregisterCheck, ctx: &mut Context<Self>) -> Self::Result {
        if !self.local.remove_check(&msg.0) {
            return Err(LocalError::NotFound(format!(
                "Unknown check ID {:?}. Ensure that the check ID is passed, not the check name.",
                msg.0
            )));
        }
        self.publish_checks(ctx);
        self.sync_changes(ctx);
        Ok(())
    }
}

impl Handler<UpdateTtl> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(), LocalError>>;

    fn handle(&mut self, msg: UpdateTtl, _: &mut Context<Self>) -> Self::Result {
        let Some(check) = self.local.checks.get(&msg.id) else {
            return Box::pin(actix::fut::ready(Err(LocalError::NotFound(format!(
                "Unknown check ID {:?}. Ensure that the check ID is passed, not the check name.",
                msg.id
            )))));
        };
        if check.def.ttl.is_none() {
            return Box::pin(actix::fut::ready(Err(LocalError::Invalid(format!(
                "CheckID {:?} does not have associated TTL",
                msg.id
            )))));
        }
        let service = check.row.service_id.clone();
        let output = crate::actors::health::probe::truncate(msg.output);
        self.local.set_status(&msg.id, msg.status, &output);
        if let Some(h) = &self.health {
            h.do_send(TtlTouched(msg.id));
        }
        // Status and output reach the catalog before the caller hears back.
        self.local.output_dirty.remove(&service);
        self.write_through(vec![service])
    }
}

impl Handler<Maintenance> for NodeActor {
    type Result = Result<(), LocalError>;

    fn handle(&mut self, msg: Maintenance, ctx: &mut Context<Self>) -> Self::Result {
        match &msg.service {
            Some(id) => self
                .local
                .service_maintenance(id, msg.enable, &msg.reason)?,
            None => {
                self.local.node_maintenance(msg.enable, &msg.reason);
            }
        }
        self.sync_changes(ctx);
        Ok(())
    }
}

impl Handler<CheckResult> for NodeActor {
    type Result = ();

    fn handle(&mut self, msg: CheckResult, ctx: &mut Context<Self>) {
        let before = self.local.checks.get(&msg.id).map(|c| c.row.status);
        if self
            .local
            .set_status(&msg.id, msg.status, &msg.output)
            .is_some()
            && before != Some(msg.status)
        {
            tracing::info!(check = %msg.id, status = msg.status.as_str(), "check status changed");
            self.sync_changes(ctx);
        }
    }
}

impl Handler<LocalServiceHealth> for NodeActor {
    type Result = MessageResult<LocalServiceHealth>;

    fn handle(&mut self, _: LocalServiceHealth, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.local
                .services
                .iter()
                .map(|(id, s)| ServiceHealth {
                    service: s.service.clone(),
                    checks: self
                        .local
                        .checks
                        .values()
                        .filter(|c| c.row.service_id == *id || c.row.service_id.is_empty())
                        .map(|c| c.row.clone())
                        .collect(),
                    aggregated: self.local.aggregated(id),
                })
                .collect(),
        )
    }
}

impl Handler<GetLocalState> for NodeActor {
    type Result = MessageResult<GetLocalState>;

    fn handle(&mut self, _: GetLocalState, _: &mut Context<Self>) -> Self::Result {
        let services = self
            .local
            .services
            .iter()
            .map(|(id, s)| (id.clone(), s.service.clone()))
            .collect();
        MessageResult(LocalState {
            services,
            checks: self.local.rows(),
        })
    }
}

impl Handler<GetAgentInfo> for NodeActor {
    type Result = ResponseFuture<AgentInfo>;

    fn handle(&mut self, _: GetAgentInfo, _: &mut Context<Self>) -> Self::Result {
        let config = self.config.clone();
        let raft = self.raft.clone();
        let local_services = self.local.services.len();
        let local_checks = self.local.checks.len();
        Box::pin(async move {
            let raft = match raft {
                Some(r) => r.send(GetRaftStatus { leader: false }).await.ok(),
                None => None,
            };
            AgentInfo {
                config,
                raft,
                local_services,
                local_checks,
            }
        })
    }
}

impl Handler<Reload> for NodeActor {
    type Result = Result<(), String>;

    fn handle(&mut self, _: Reload, ctx: &mut Context<Self>) -> Self::Result {
        let Some(source) = self.reload_source.clone() else {
            return Ok(());
        };
        let new = source()?;
        // Identity, addresses and ports need a restart; services, checks
        // and the rest of the definitions take effect now.
        let mut cfg = (*self.config).clone();
        cfg.services = new.services;
        cfg.checks = new.checks;
        cfg.log_level = new.log_level;
        cfg.enable_script_checks = new.enable_script_checks;
        cfg.enable_local_script_checks = new.enable_local_script_checks;
        self.config = Arc::new(cfg);
        for e in self
            .local
            .reload(&self.config.services, &self.config.checks)
        {
            tracing::error!(error = %e, "check from the config files refused");
        }
        self.publish_checks(ctx);
        self.dirty = true;
        self.sync_all(ctx);
        tracing::info!("configuration reloaded");
        Ok(())
    }
}
