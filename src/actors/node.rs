//! The `Node` actor: the agent's identity, its config, its local services
//! and checks, and the one routing step every read and write takes
//! (Consul's `rpc.go` forward): another datacenter → WAN; on a server →
//! the local `Raft` actor; on a client → a server of its datacenter.
//!
//! Local services and checks are the truth for this node: every change is
//! written to the catalog at once, and a periodic anti-entropy pass
//! rewrites them and removes catalog entries of this node the agent does
//! not have (the health issue refines intervals and check output syncs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::actors::health::{HealthActor, SetChecks};
use crate::actors::raft::{GetRaftStatus, RaftActor, RaftRead, RaftStatus, RaftWrite};
use crate::config::{CheckDefinition, RuntimeConfig, ServiceDefinition};
use crate::lan::{LanGossip, Member, MemberStatus};
use crate::rpc::{
    Consistency, QueryOptions, ReadRequest, ReadResponse, RequestError, WriteRequest, WriteResponse,
};
use crate::state::command::Command;
use crate::state::query::{Query, QueryResult};
use crate::state::structs::{
    DeregisterRequest, HealthCheck, HealthStatus, NodeService, RegisterRequest, Weights,
};

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
#[rtype(result = "Result<(), RequestError>")]
pub struct RegisterService(pub ServiceDefinition);

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
            let lan =
                lan.ok_or_else(|| "LAN gossip is disabled (ports.serf_lan = -1)".to_string())?;
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
    let mut out = Vec::new();
    for a in addrs {
        let with_port = if a.parse::<std::net::SocketAddr>().is_ok()
            || a.rsplit_once(':')
                .is_some_and(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok())
        {
            a.clone()
        } else {
            format!("{a}:8301")
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
    /// A client agent: one of its datacenter's servers over RPC, another
    /// one when that fails.
    Remote {
        servers: Vec<String>,
        pool: crate::rpc::Pool,
    },
}

impl Upstream {
    pub async fn read(&self, req: ReadRequest) -> Result<ReadResponse, RequestError> {
        match self {
            Upstream::Local(r) => r
                .send(RaftRead(req))
                .await
                .map_err(|_| RequestError::ShuttingDown)?,
            Upstream::Remote { .. } => {
                let timeout = req.opts.max_wait + Duration::from_secs(10);
                match self
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

    /// Raft's view from this server, or from a server a client reaches.
    pub async fn status(&self) -> Result<crate::actors::raft::RaftStatus, RequestError> {
        match self {
            Upstream::Local(r) => r
                .send(crate::actors::raft::GetRaftStatus)
                .await
                .map_err(|_| RequestError::ShuttingDown),
            Upstream::Remote { .. } => match self
                .remote(crate::rpc::RpcRequest::Status, Duration::from_secs(5))
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
        match self {
            Upstream::Local(r) => r
                .send(RaftWrite(command))
                .await
                .map_err(|_| RequestError::ShuttingDown)?,
            Upstream::Remote { .. } => match self
                .remote(
                    crate::rpc::RpcRequest::AgentWrite(WriteRequest { dc: None, command }),
                    Duration::from_secs(15),
                )
                .await?
            {
                crate::rpc::RpcResponse::Write(r) => r,
                other => Err(RequestError::Internal(format!(
                    "rpc error: unexpected answer {other:?}"
                ))),
            },
        }
    }

    /// Tries the servers in random order; the first that answers wins.
    async fn remote(
        &self,
        req: crate::rpc::RpcRequest,
        timeout: Duration,
    ) -> Result<crate::rpc::RpcResponse, RequestError> {
        let Upstream::Remote { servers, pool } = self else {
            return Err(RequestError::NoServers);
        };
        let mut order = servers.clone();
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rand::thread_rng());
        let mut last = RequestError::NoServers;
        for addr in order {
            match pool.call(&addr, &req, timeout).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    tracing::debug!(server = %addr, error = %e, "server did not answer; trying another");
                    last = RequestError::Internal(format!("rpc error making call: {e}"));
                }
            }
        }
        Err(last)
    }
}

/// Re-read the config files and apply what can change at run time.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), String>")]
pub struct Reload;

/// How the agent rebuilds its config on reload: the same flags, re-read files.
pub type ConfigSource = Arc<dyn Fn() -> Result<RuntimeConfig, String> + Send + Sync>;

struct LocalService {
    service: NodeService,
    checks: Vec<HealthCheck>,
    /// The definitions the checks came from, for the `Health` actor.
    defs: Vec<CheckDefinition>,
}

pub struct NodeActor {
    config: Arc<RuntimeConfig>,
    raft: Option<Addr<RaftActor>>,
    health: Option<Addr<HealthActor>>,
    lan: Option<Addr<LanGossip>>,
    /// Servers of this datacenter from the LAN pool (name → RPC address).
    servers: BTreeMap<String, String>,
    pool: crate::rpc::Pool,
    reload_source: Option<ConfigSource>,
    services: BTreeMap<String, LocalService>,
    /// Node-level checks registered on this agent (not tied to a service).
    node_checks: BTreeMap<String, HealthCheck>,
    /// Local state not yet confirmed in the catalog.
    dirty: bool,
    /// A sync is running; the next one waits for it.
    syncing: bool,
}

impl NodeActor {
    pub fn new(
        config: Arc<RuntimeConfig>,
        raft: Option<Addr<RaftActor>>,
        health: Option<Addr<HealthActor>>,
        lan: Option<Addr<LanGossip>>,
        reload_source: Option<ConfigSource>,
    ) -> Self {
        let mut node = NodeActor {
            config,
            raft,
            health,
            lan,
            servers: BTreeMap::new(),
            pool: crate::rpc::Pool::default(),
            reload_source,
            services: BTreeMap::new(),
            node_checks: BTreeMap::new(),
            dirty: true,
            syncing: false,
        };
        node.load_definitions();
        node.publish_checks();
        node
    }

    /// Services and checks from config files become local state.
    fn load_definitions(&mut self) {
        self.services.clear();
        self.node_checks.clear();
        for def in self.config.services.clone() {
            let (id, svc) = build_local_service(&self.config.node_name, &def);
            self.services.insert(id, svc);
        }
        for def in self.config.checks.clone() {
            let check = build_check(&self.config.node_name, &def, None, 0);
            match self.services.get_mut(&check.service_id) {
                Some(s) => {
                    s.checks.push(with_service(check, &s.service));
                    s.defs.push(def);
                }
                None => {
                    self.node_checks.insert(check.check_id.clone(), check);
                }
            }
        }
    }

    /// Tells the `Health` actor which checks this agent runs.
    fn publish_checks(&self) {
        let Some(health) = &self.health else { return };
        let mut defs: Vec<CheckDefinition> = self
            .services
            .values()
            .flat_map(|s| s.defs.iter().cloned())
            .collect();
        defs.extend(
            self.config
                .checks
                .iter()
                .filter(|c| !self.services.contains_key(&c.service_id))
                .cloned(),
        );
        health.do_send(SetChecks(defs));
    }

    /// The forwarding decision, shared by reads and writes: this server's
    /// Raft actor, or (on a client) the servers of the datacenter.
    fn route(&self, dc: Option<&str>) -> Result<Upstream, RequestError> {
        if let Some(dc) = dc {
            if !dc.is_empty() && !dc.eq_ignore_ascii_case(&self.config.datacenter) {
                return Err(RequestError::NoPathToDatacenter);
            }
        }
        match &self.raft {
            Some(r) => Ok(Upstream::Local(r.clone())),
            None if self.servers.is_empty() => Err(RequestError::NoServers),
            None => Ok(Upstream::Remote {
                servers: self.servers.values().cloned().collect(),
                pool: self.pool.clone(),
            }),
        }
    }

    /// A service with its checks, carrying this node's own row so that a
    /// sync never depends on the leader having registered the node first.
    fn registration(&self, svc: &LocalService) -> RegisterRequest {
        RegisterRequest {
            service: Some(svc.service.clone()),
            checks: svc.checks.clone(),
            ..self.node_row()
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

    /// Anti-entropy: write every local service and check, then remove
    /// services and checks of this node that the agent no longer has.
    fn sync_all(&mut self, ctx: &mut Context<Self>) {
        if self.syncing {
            self.dirty = true;
            return;
        }
        let Ok(raft) = self.route(None) else { return };
        // The node row first: an agent with no services is still a node.
        let mut writes: Vec<Command> = vec![Command::Register(self.node_row())];
        writes.extend(
            self.services
                .values()
                .map(|s| Command::Register(self.registration(s))),
        );
        if !self.node_checks.is_empty() {
            writes.push(Command::Register(RegisterRequest {
                checks: self.node_checks.values().cloned().collect(),
                ..self.node_row()
            }));
        }
        let node = self.config.node_name.clone();
        let keep_services: Vec<String> = self.services.keys().cloned().collect();
        let keep_checks: Vec<String> = self
            .services
            .values()
            .flat_map(|s| s.checks.iter().map(|c| c.check_id.clone()))
            .chain(self.node_checks.keys().cloned())
            .collect();
        let fut = async move {
            for cmd in writes {
                match raft.write(cmd).await {
                    Ok(_) => {}
                    // The node row comes from the leader's reconcile; until
                    // it exists (or while there is no leader) retry later.
                    _ => return false,
                }
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
                        c.check_id != "serfHealth"
                            && c.service_id.is_empty()
                            && !keep_checks.contains(&c.check_id)
                    }) {
                        removals.push(DeregisterRequest {
                            node: node.clone(),
                            check_id: c.check_id.clone(),
                            ..Default::default()
                        });
                    }
                }
            }
            for r in removals {
                if !matches!(raft.write(Command::Deregister(r)).await, Ok(_)) {
                    return false;
                }
            }
            true
        };
        self.syncing = true;
        self.dirty = false;
        ctx.spawn(fut.into_actor(self).map(|ok, act, _| {
            act.syncing = false;
            act.dirty |= !ok;
        }));
    }
}

fn with_service(mut check: HealthCheck, svc: &NodeService) -> HealthCheck {
    check.service_id = svc.id.clone();
    check.service_name = svc.service.clone();
    check.service_tags = svc.tags.clone();
    check
}

/// A check definition as the catalog row it becomes, with Consul's naming:
/// `service:<id>` (`:N` when a service has several), `Service '<name>' check`.
fn build_check(
    node: &str,
    def: &CheckDefinition,
    svc: Option<&NodeService>,
    nth: usize,
) -> HealthCheck {
    let (id, name) = match svc {
        Some(s) => (
            if !def.id.is_empty() {
                def.id.clone()
            } else if nth == 0 {
                format!("service:{}", s.id)
            } else {
                format!("service:{}:{}", s.id, nth)
            },
            if def.name.is_empty() {
                format!("Service '{}' check", s.service)
            } else {
                def.name.clone()
            },
        ),
        None => {
            let id = if def.id.is_empty() {
                def.name.clone()
            } else {
                def.id.clone()
            };
            (
                id.clone(),
                if def.name.is_empty() {
                    id
                } else {
                    def.name.clone()
                },
            )
        }
    };
    let status = HealthStatus::parse(&def.status)
        .filter(|s| *s != HealthStatus::Any)
        .unwrap_or(HealthStatus::Critical);
    let mut definition = serde_json::Map::new();
    let dur = |d: &Option<Duration>| d.map(|d| format!("{}s", d.as_secs_f64()));
    for (k, v) in [
        ("Interval", dur(&def.interval)),
        ("Timeout", dur(&def.timeout)),
        ("TTL", dur(&def.ttl)),
    ] {
        if let Some(v) = v {
            definition.insert(k.into(), v.into());
        }
    }
    for (k, v) in [
        ("HTTP", &def.http),
        ("TCP", &def.tcp),
        ("UDP", &def.udp),
        ("GRPC", &def.grpc),
        ("Method", &def.method),
    ] {
        if !v.is_empty() {
            definition.insert(k.into(), v.clone().into());
        }
    }
    let check = HealthCheck {
        node: node.to_string(),
        check_id: id,
        name,
        status,
        notes: def.notes.clone(),
        service_id: def.service_id.clone(),
        r#type: def.kind().to_string(),
        definition: serde_json::Value::Object(definition),
        ..Default::default()
    };
    match svc {
        Some(s) => with_service(check, s),
        None => check,
    }
}

fn build_local_service(node: &str, def: &ServiceDefinition) -> (String, LocalService) {
    let id = if def.id.is_empty() {
        def.name.clone()
    } else {
        def.id.clone()
    };
    let service = NodeService {
        id: id.clone(),
        service: def.name.clone(),
        tags: def.tags.clone(),
        address: def.address.clone(),
        meta: def.meta.clone(),
        port: def.port,
        weights: def
            .weights
            .map(|(passing, warning)| Weights { passing, warning })
            .unwrap_or_default(),
        enable_tag_override: def.enable_tag_override,
        kind: def.kind.clone(),
        ..Default::default()
    };
    let checks = def
        .checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            build_check(
                node,
                c,
                Some(&service),
                if def.checks.len() > 1 { i + 1 } else { 0 },
            )
        })
        .collect();
    let defs = def.checks.iter().cloned().map(|mut c| {
        c.service_id = id.clone();
        c
    });
    (
        id.clone(),
        LocalService {
            service,
            checks,
            defs: defs.collect(),
        },
    )
}

impl Actor for NodeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Retry quickly while local state is not in the catalog (no leader
        // yet at start-up); a full pass every minute catches drift.
        self.sync_all(ctx);
        ctx.run_interval(Duration::from_millis(200), |act, ctx| {
            if act.dirty {
                act.sync_all(ctx);
            }
        });
        ctx.run_interval(Duration::from_secs(60), |act, _| act.dirty = true);
        if !self.config.retry_join.is_empty() {
            self.retry_join(ctx, 0);
        }
        if let Some(lan) = &self.lan {
            lan.do_send(crate::lan::Subscribe(ctx.address().recipient()));
        }
    }
}

impl NodeActor {
    /// `retry_join`: contacts the configured addresses until one answers
    /// (this agent sees another member) or `retry_max` attempts are spent.
    fn retry_join(&mut self, ctx: &mut Context<Self>, attempt: u32) {
        let Some(lan) = self.lan.clone() else { return };
        let addrs = self.config.retry_join.clone();
        let (interval, max) = (self.config.retry_interval, self.config.retry_max);
        let me = self.self_member().addr;
        let fut = async move {
            let addrs = resolve(addrs).await;
            // The first server of a tutorial is told to join itself: done.
            if !addrs.is_empty() && addrs.iter().all(|a| *a == me) {
                return true;
            }
            let n = lan.send(crate::lan::Join(addrs)).await.unwrap_or(0);
            // Give the pool a moment to answer before judging the attempt.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let members = lan.send(crate::lan::Members).await.unwrap_or_default();
            n > 0
                && members
                    .iter()
                    .filter(|m| m.status == MemberStatus::Alive)
                    .count()
                    > 1
        };
        ctx.spawn(fut.into_actor(self).map(move |joined, act, ctx| {
            if joined {
                tracing::info!("joined the LAN pool");
            } else if max == 0 || attempt + 1 < max {
                tracing::warn!(
                    attempt = attempt + 1,
                    "join failed; retrying in {interval:?}"
                );
                ctx.run_later(interval, move |act, ctx| act.retry_join(ctx, attempt + 1));
            } else {
                tracing::error!("join failed after {max} attempts");
            }
            let _ = act;
        }));
    }

    /// Without gossip the agent knows only itself.
    fn self_member(&self) -> Member {
        let c = &self.config;
        Member {
            name: c.node_name.clone(),
            addr: std::net::SocketAddr::new(c.advertise(), c.ports.serf_lan.unwrap_or(8301)),
            tags: crate::lan::agent_tags(c),
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
                let is_server = m.tags.get("role").map(String::as_str) == Some("consul")
                    && m.tags.get("dc") == Some(&self.config.datacenter);
                if let (true, Some(port)) = (is_server, m.tags.get("port")) {
                    self.servers
                        .insert(m.name.clone(), format!("{}:{port}", m.addr.ip()));
                }
            }
            MemberEvent::Leave(m) | MemberEvent::Fail(m) | MemberEvent::Reap(m) => {
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
            let lan =
                lan.ok_or_else(|| "LAN gossip is disabled (ports.serf_lan = -1)".to_string())?;
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
        let lan = self.lan.clone();
        Box::pin(async move {
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
pub struct ServerStatus;

impl Handler<ServerStatus> for NodeActor {
    type Result = ResponseFuture<Result<crate::actors::raft::RaftStatus, RequestError>>;

    fn handle(&mut self, _: ServerStatus, _: &mut Context<Self>) -> Self::Result {
        let route = self.route(None);
        Box::pin(async move { route?.status().await })
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
    type Result = ResponseFuture<Result<(), RequestError>>;

    fn handle(&mut self, msg: RegisterService, _: &mut Context<Self>) -> Self::Result {
        let (id, svc) = build_local_service(&self.config.node_name, &msg.0);
        let write = Command::Register(self.registration(&svc));
        self.services.insert(id, svc);
        self.publish_checks();
        let route = self.route(None);
        // Write through at once so the catalog reflects the change when the
        // call returns; if that fails, anti-entropy retries.
        match route {
            Ok(raft) => Box::pin(async move {
                if raft.write(write).await.is_err() {
                    tracing::debug!(
                        "service registration not yet in the catalog; anti-entropy will retry"
                    );
                }
                Ok(())
            }),
            Err(_) => Box::pin(async { Ok(()) }),
        }
    }
}

impl Handler<DeregisterService> for NodeActor {
    type Result = ResponseFuture<Result<bool, RequestError>>;

    fn handle(&mut self, msg: DeregisterService, _: &mut Context<Self>) -> Self::Result {
        if self.services.remove(&msg.0).is_none() {
            return Box::pin(async { Ok(false) });
        }
        self.publish_checks();
        let write = Command::Deregister(DeregisterRequest {
            node: self.config.node_name.clone(),
            service_id: msg.0,
            ..Default::default()
        });
        let route = self.route(None);
        Box::pin(async move {
            if let Ok(raft) = route {
                let _ = raft.write(write).await;
            }
            Ok(true)
        })
    }
}

impl Handler<GetLocalState> for NodeActor {
    type Result = MessageResult<GetLocalState>;

    fn handle(&mut self, _: GetLocalState, _: &mut Context<Self>) -> Self::Result {
        let services = self
            .services
            .iter()
            .map(|(id, s)| (id.clone(), s.service.clone()))
            .collect();
        let checks = self
            .services
            .values()
            .flat_map(|s| s.checks.iter())
            .chain(self.node_checks.values())
            .map(|c| (c.check_id.clone(), c.clone()))
            .collect();
        MessageResult(LocalState { services, checks })
    }
}

impl Handler<GetAgentInfo> for NodeActor {
    type Result = ResponseFuture<AgentInfo>;

    fn handle(&mut self, _: GetAgentInfo, _: &mut Context<Self>) -> Self::Result {
        let config = self.config.clone();
        let raft = self.raft.clone();
        let local_services = self.services.len();
        let local_checks = self
            .services
            .values()
            .map(|s| s.checks.len())
            .sum::<usize>()
            + self.node_checks.len();
        Box::pin(async move {
            let raft = match raft {
                Some(r) => r.send(GetRaftStatus).await.ok(),
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
        self.config = Arc::new(cfg);
        self.load_definitions();
        self.publish_checks();
        self.sync_all(ctx);
        tracing::info!("configuration reloaded");
        Ok(())
    }
}
