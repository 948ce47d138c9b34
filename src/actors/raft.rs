//! The `Raft` actor (servers): owns the Raft node and the state store it
//! drives. It answers reads (with consistency modes and blocking queries)
//! and writes, reports Raft status, and, while leader, reconciles the
//! catalog with the agents it knows (today: itself; the cluster issue adds
//! every LAN member).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ServerState, SnapshotPolicy};
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::config::RuntimeConfig;
use crate::rpc::raft_net::RaftNetworkFactoryImpl;
use crate::rpc::{
    Consistency, Pool, QueryMeta, QueryOptions, ReadRequest, ReadResponse, RequestError,
    RpcRequest, RpcResponse, WriteRequest, WriteResponse,
};
use crate::state::command::{Command, CommandResult};
use crate::state::query::{execute, Query, QueryResult};
use crate::state::structs::{HealthCheck, HealthStatus, NodeService, RegisterRequest};
use crate::state::StateStore;
use crate::storage::{self, fsm::lock, LogStore, NodeId, Raft, StateMachine};

pub use crate::storage::fsm::SharedStore;

#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ReadResponse, RequestError>")]
pub struct RaftRead(pub ReadRequest);

#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<WriteResponse, RequestError>")]
pub struct RaftWrite(pub Command);

/// Raft's view, for `/v1/status/*`, `/v1/agent/self` and `info`: this
/// server's own, or with `leader` the leader's (every server's progress,
/// for the operator endpoints), falling back to its own.
#[derive(Message, Debug, Clone)]
#[rtype(result = "RaftStatus")]
pub struct GetRaftStatus {
    pub leader: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RaftStatus {
    /// `ip:port` of the leader's server RPC address, if there is one.
    pub leader_addr: Option<String>,
    pub is_leader: bool,
    /// `ip:port` of every voter.
    pub peers: Vec<String>,
    pub state: String,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub commit_index: u64,
    pub last_snapshot_index: u64,
    pub last_contact_ms: u64,
    /// Every server in the Raft configuration.
    pub servers: Vec<RaftServer>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RaftServer {
    pub id: NodeId,
    /// Server RPC address, `ip:port`.
    pub addr: String,
    pub voter: bool,
    pub leader: bool,
    /// Highest log index known to be on that server (the leader knows it
    /// for every server; a follower only for itself).
    pub last_index: Option<u64>,
}

/// When this server last accepted entries from a leader: a follower's
/// `X-Consul-LastContact` (openraft's metrics only have the leader's side).
#[derive(Clone)]
pub struct LastContact {
    base: std::time::Instant,
    /// Milliseconds after `base`, plus one so that 0 means never.
    at: Arc<std::sync::atomic::AtomicU64>,
}

impl LastContact {
    fn new() -> Self {
        LastContact {
            base: std::time::Instant::now(),
            at: Arc::default(),
        }
    }

    pub fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64 + 1;
        self.at.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    fn millis_ago(&self) -> Option<u64> {
        match self.at.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            at => Some((self.base.elapsed().as_millis() as u64 + 1).saturating_sub(at)),
        }
    }
}

/// How long a leader keeps serving without hearing from a quorum. Past
/// it the leader acts as if there were none (Consul's leader lease): new
/// writes and default reads fail fast with `No cluster leader` instead of
/// waiting on a commit that cannot come.
fn leader_lease(config: &RuntimeConfig) -> u64 {
    if config.dev {
        600
    } else {
        1000
    }
}

fn lease_lost(m: &openraft::RaftMetrics<NodeId, BasicNode>, me: NodeId, lease_ms: u64) -> bool {
    m.current_leader == Some(me)
        && m.membership_config.membership().voter_ids().count() > 1
        && m.millis_since_quorum_ack.is_some_and(|ms| ms > lease_ms)
}

/// Resolves once this leader's lease has run out: what its writers wait
/// for is then unlikely to commit soon (and may never).
async fn lease_expiry(raft: Raft, me: NodeId, lease_ms: u64) {
    loop {
        if lease_lost(&raft.metrics().borrow(), me, lease_ms) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Longest wait for one entry to commit before its writers get an error
/// (Consul's 7 s RPC hold timeout); the entry may still commit later.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(7);

pub struct RaftActor {
    raft: Raft,
    /// Leader only: when each TTL session expires unless renewed.
    ttl_deadlines: std::collections::HashMap<String, std::time::Instant>,
    /// Led at the last TTL pass (a new leader starts every timer afresh).
    led: bool,
    /// The session table's index at the last TTL pass.
    sessions_seen: Option<u64>,
    /// The agent's `Node` actor: client requests for other datacenters
    /// arriving over RPC take its routing (over the WAN).
    router: Option<Addr<crate::actors::node::NodeActor>>,
    contact: LastContact,
    pool: Pool,
    /// Writes waiting for the entry in flight to commit.
    queue: Vec<Queued>,
    /// The LAN pool, once attached: its members are reconciled into the catalog.
    lan: Option<Addr<crate::lan::LanGossip>>,
    /// Bootstrap (from -bootstrap-expect) is done or not needed.
    bootstrapped: bool,
    /// Alive while anything (log writer, state machine) holds the database.
    db: std::sync::Weak<redb::Database>,
    in_flight: bool,
    store: SharedStore,
    node_id: NodeId,
    config: Arc<RuntimeConfig>,
}

/// A stable Raft id from the node's UUID: its first 8 bytes.
pub fn raft_id(node_id: &str) -> NodeId {
    match uuid::Uuid::parse_str(node_id) {
        Ok(u) => u.as_u64_pair().0,
        Err(_) => {
            // Not a UUID (hand-written node_id): a stable hash keeps restarts consistent.
            node_id.bytes().fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100000001b3)
            })
        }
    }
}

impl RaftActor {
    /// Opens storage and starts Raft; bootstraps a single server when the
    /// config says so and no Raft state exists yet.
    pub async fn start(
        config: Arc<RuntimeConfig>,
    ) -> anyhow::Result<(Addr<RaftActor>, SharedStore)> {
        let dir = config.data_dir.as_ref().map(|d| d.join("raft"));
        let db = open_store(dir.as_deref()).await?;
        let db_handle = Arc::downgrade(&db);
        let store: SharedStore = Arc::new(std::sync::Mutex::new(StateStore::new()));
        let sm = StateMachine::open(db.clone(), store.clone())?;
        let log = LogStore::new(db);
        // Failover ≈ election_max + random(min, max) with openraft's leader
        // lease: 500 + ~375 ms keeps it under the 1.5 s goal.
        let (hb, emin, emax) = if config.dev {
            (50, 150, 300)
        } else {
            (100, 250, 500)
        };
        let rc = openraft::Config {
            cluster_name: config.datacenter.clone(),
            heartbeat_interval: hb,
            election_timeout_min: emin,
            election_timeout_max: emax,
            // openraft allows one heartbeat interval per append: smaller
            // payloads keep a catching-up follower within it.
            max_payload_entries: 64,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.raft_snapshot_threshold.max(1)),
            max_in_snapshot_log_to_keep: config.raft_trailing_logs,
            ..Default::default()
        }
        .validate()?;
        let node_id = raft_id(&config.node_id);
        let pool = Pool::default();
        let network = RaftNetworkFactoryImpl { pool: pool.clone() };
        // Bind before Raft starts so a port conflict fails the start cleanly.
        let listener = match config.ports.server {
            Some(port) => Some(tokio::net::TcpListener::bind((config.bind_addr, port)).await?),
            None => None,
        };
        let raft = Raft::new(node_id, Arc::new(rc), network, log, sm).await?;
        if (config.bootstrap || config.bootstrap_expect == 1) && !raft.is_initialized().await? {
            let addr = server_addr(&config);
            tracing::info!(%addr, "bootstrapping a new single-server cluster");
            raft.initialize(BTreeMap::from([(node_id, BasicNode { addr })]))
                .await?;
        }
        let rpc_raft = raft.clone();
        let contact = LastContact::new();
        let actor = RaftActor {
            raft,
            ttl_deadlines: Default::default(),
            led: false,
            sessions_seen: None,
            router: None,
            contact: contact.clone(),
            pool,
            queue: Vec::new(),
            in_flight: false,
            db: db_handle,
            lan: None,
            bootstrapped: false,
            store: store.clone(),
            node_id,
            config,
        }
        .start();
        if let Some(listener) = listener {
            tracing::info!(addr = ?listener.local_addr().ok(), "server RPC listening");
            actix::spawn(crate::rpc::server::serve(
                listener,
                rpc_raft,
                actor.clone(),
                contact,
            ));
        }
        Ok((actor, store))
    }

    fn session_ttl(&self, id: &str) -> Option<Duration> {
        let store = lock(&self.store);
        let ttl = &store.sessions().get(id)?.ttl;
        crate::config::duration::parse_go_duration(ttl).ok()
    }

    fn renew_ttl(&mut self, id: &str) {
        if let Some(ttl) = self.session_ttl(id) {
            self.ttl_deadlines
                .insert(id.to_string(), std::time::Instant::now() + ttl);
        }
    }

    /// The leader's session TTL timers (Consul's `session_ttl.go`): every
    /// TTL session is invalidated once its TTL passes without a renew. A
    /// new leader starts every timer afresh, so a session lives at most
    /// twice its TTL across a leadership change.
    fn expire_sessions(&mut self, ctx: &mut Context<Self>) {
        if !self.status().is_leader {
            self.ttl_deadlines.clear();
            self.led = false;
            return;
        }
        let now = std::time::Instant::now();
        if !self.led {
            self.ttl_deadlines.clear();
            self.sessions_seen = None;
            self.led = true;
        }
        // The session table is walked only when it changed since the last
        // pass: new sessions get a timer, destroyed ones lose theirs.
        let index = lock(&self.store).table_index(crate::state::T_SESSIONS);
        if self.sessions_seen != Some(index) {
            self.sessions_seen = Some(index);
            let with_ttl: Vec<(String, Duration)> = lock(&self.store)
                .sessions()
                .values()
                .filter_map(|s| {
                    let ttl = crate::config::duration::parse_go_duration(&s.ttl).ok()?;
                    (!ttl.is_zero()).then(|| (s.id.clone(), ttl))
                })
                .collect();
            let live: std::collections::HashSet<&String> =
                with_ttl.iter().map(|(id, _)| id).collect();
            self.ttl_deadlines.retain(|id, _| live.contains(id));
            for (id, ttl) in &with_ttl {
                self.ttl_deadlines.entry(id.clone()).or_insert(now + *ttl);
            }
        }
        let expired: Vec<String> = self
            .ttl_deadlines
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            // Retried in a second unless the destroy lands (the rescan
            // that follows it drops the timer).
            self.ttl_deadlines
                .insert(id.clone(), now + Duration::from_secs(1));
            tracing::info!(session = %id, "session TTL expired: invalidating");
            let write = self.write(Command::SessionDestroy { id }, false, ctx);
            actix::spawn(async move {
                if let Err(e) = write.await {
                    tracing::warn!(error = %e, "session invalidation failed");
                }
            });
        }
    }

    /// This server leads by Raft's word but has not heard from a quorum
    /// within the lease.
    fn lease_lost(&self, m: &openraft::RaftMetrics<NodeId, BasicNode>) -> bool {
        lease_lost(m, self.node_id, leader_lease(&self.config))
    }

    fn status(&self) -> RaftStatus {
        let mut m = self.raft.metrics().borrow().clone();
        if self.lease_lost(&m) {
            m.current_leader = None;
        }
        let membership = m.membership_config.membership().clone();
        let addr_of = |id: NodeId| membership.get_node(&id).map(|n| n.addr.clone());
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let servers = membership
            .nodes()
            .map(|(id, n)| RaftServer {
                id: *id,
                addr: n.addr.clone(),
                voter: voters.contains(id),
                leader: m.current_leader == Some(*id),
                last_index: match &m.replication {
                    _ if *id == self.node_id => m.last_log_index,
                    Some(r) => r.get(id).and_then(|l| l.map(|l| l.index)),
                    None => None,
                },
            })
            .collect();
        RaftStatus {
            servers,
            leader_addr: m.current_leader.and_then(addr_of),
            is_leader: m.current_leader == Some(self.node_id),
            peers: membership.voter_ids().filter_map(addr_of).collect(),
            state: match m.state {
                ServerState::Leader => "Leader",
                ServerState::Follower => "Follower",
                ServerState::Candidate => "Candidate",
                ServerState::Learner => "Learner",
                ServerState::Shutdown => "Shutdown",
            }
            .to_string(),
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            commit_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            last_snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
            last_contact_ms: if m.current_leader == Some(self.node_id) {
                0
            } else {
                self.contact.millis_ago().unwrap_or(0)
            },
        }
    }

    /// Leader reconcile (Consul's `leader.go`): every LAN member is a node
    /// in the catalog with a `serfHealth` check, passing while alive and
    /// critical once failed; a member that left is removed. This server's
    /// own row also carries its node meta. Runs on leadership, on member
    /// events and on an interval, and writes only what differs.
    fn reconcile(&mut self, ctx: &mut Context<Self>) {
        if !self.status().is_leader {
            return;
        }
        let (lan, store, me, config) = (
            self.lan.clone(),
            self.store.clone(),
            ctx.address(),
            self.config.clone(),
        );
        let fut = async move {
            let members = match &lan {
                Some(l) => l.send(crate::lan::Members).await.unwrap_or_default(),
                None => Vec::new(),
            };
            let mut writes = Vec::new();
            if let Some(w) = reconcile_self(&store, &config) {
                writes.push(w);
            }
            for m in members.iter().filter(|m| m.name != config.node_name) {
                if let Some(w) = reconcile_member(&store, m, &config.datacenter) {
                    writes.push(w);
                }
            }
            for w in writes {
                if let Ok(Err(e)) = me.send(RaftWrite(w)).await {
                    tracing::warn!(error = %e, "leader reconcile write failed");
                }
            }
            // Servers of this datacenter in the pool become voters; a
            // server that left gracefully stops being one.
            let status = me
                .send(GetRaftStatus { leader: false })
                .await
                .unwrap_or_default();
            for m in members
                .iter()
                .filter(|m| is_server_of(m, &config.datacenter))
            {
                let Some((id, addr)) = raft_peer(m) else {
                    continue;
                };
                let known = status.servers.iter().any(|s| s.id == id && s.voter);
                match m.status {
                    crate::lan::MemberStatus::Alive if !known => {
                        tracing::info!(server = %m.name, %addr, "adding server as a Raft voter");
                        if let Ok(Err(e)) = me.send(AddVoter { id, addr }).await {
                            tracing::warn!(error = %e, "adding voter failed");
                        }
                    }
                    crate::lan::MemberStatus::Left if known && status.servers.len() > 1 => {
                        tracing::info!(server = %m.name, "removing server that left from the Raft configuration");
                        let _ = me.send(RemoveVoter(id)).await;
                    }
                    _ => {}
                }
            }
        };
        ctx.spawn(fut.into_actor(self));
    }

    /// `-bootstrap-expect N`: once N servers of this datacenter (all
    /// expecting N) are alive in the pool, bootstrap with exactly those.
    /// Every one of them does this with the same set, which openraft allows;
    /// a server with Raft state never bootstraps again.
    fn try_bootstrap(&mut self, ctx: &mut Context<Self>) {
        let expect = self.config.bootstrap_expect as usize;
        if self.bootstrapped || expect < 2 {
            return;
        }
        let Some(lan) = self.lan.clone() else { return };
        let (raft, dc) = (self.raft.clone(), self.config.datacenter.clone());
        let fut = async move {
            if raft.is_initialized().await.unwrap_or(true) {
                return true;
            }
            let members = lan.send(crate::lan::Members).await.unwrap_or_default();
            let mut servers: Vec<&crate::lan::Member> = members
                .iter()
                .filter(|m| m.status == crate::lan::MemberStatus::Alive && is_server_of(m, &dc))
                .filter(|m| {
                    m.tags.get("expect").and_then(|e| e.parse::<usize>().ok()) == Some(expect)
                })
                .collect();
            if servers.len() < expect {
                return false;
            }
            servers.sort_by(|a, b| a.name.cmp(&b.name));
            let voters: BTreeMap<NodeId, BasicNode> = servers
                .iter()
                .take(expect)
                .filter_map(|m| raft_peer(m))
                .map(|(id, addr)| (id, BasicNode { addr }))
                .collect();
            tracing::info!(servers = ?voters.values().map(|n| n.addr.clone()).collect::<Vec<_>>(), "found {expect} servers: bootstrapping");
            match raft.initialize(voters).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::info!(error = %e, "bootstrap skipped: the cluster is already formed");
                    true
                }
            }
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(|done, act, _| act.bootstrapped |= done),
        );
    }
}

fn is_server_of(m: &crate::lan::Member, dc: &str) -> bool {
    m.tags.get("role").map(String::as_str) == Some("consul")
        && m.tags.get("dc").map(String::as_str) == Some(dc)
}

/// A server member's Raft id and RPC address, from its gossip tags.
fn raft_peer(m: &crate::lan::Member) -> Option<(NodeId, String)> {
    let id = m.tags.get("id")?;
    let port: u16 = m.tags.get("port")?.parse().ok()?;
    Some((raft_id(id), format!("{}:{port}", m.addr.ip())))
}

fn serf_health(status: HealthStatus) -> HealthCheck {
    let output = if status == HealthStatus::Passing {
        "Agent alive and reachable"
    } else {
        "Agent not live or unreachable"
    };
    HealthCheck {
        check_id: "serfHealth".into(),
        name: "Serf Health Status".into(),
        status,
        output: output.into(),
        definition: serde_json::json!({}),
        ..Default::default()
    }
}

/// This server's own row: address, ID, meta, `consul` service, serfHealth.
fn reconcile_self(store: &SharedStore, config: &RuntimeConfig) -> Option<Command> {
    let desired = self_registration(config);
    let mut s = lock(store);
    let node = s.catalog_node(&config.node_name, None).1;
    let checks = s.health_node(&config.node_name, None).1;
    let in_sync = node.is_some_and(|ns| {
        ns.node.address == desired.address
            && ns.node.id == desired.id
            && ns.node.meta == desired.node_meta
            && desired.service.as_ref().is_none_or(|d| {
                ns.services
                    .get(&d.id)
                    .is_some_and(|s| s.port == d.port && s.service == d.service)
            })
    }) && checks
        .iter()
        .any(|c| c.check_id == "serfHealth" && c.status == HealthStatus::Passing);
    (!in_sync).then(|| Command::Register(desired))
}

/// Another member's row. The member's own agent writes its meta and
/// services (anti-entropy); the leader only makes sure the node exists at
/// its gossip address and that serfHealth says what gossip says.
fn reconcile_member(store: &SharedStore, m: &crate::lan::Member, dc: &str) -> Option<Command> {
    use crate::lan::MemberStatus;
    let mut s = lock(store);
    let node = s.catalog_node(&m.name, None).1;
    let serf = s
        .health_node(&m.name, None)
        .1
        .into_iter()
        .find(|c| c.check_id == "serfHealth")
        .map(|c| c.status);
    drop(s);
    match m.status {
        MemberStatus::Left => node.map(|_| {
            Command::Deregister(crate::state::structs::DeregisterRequest {
                node: m.name.clone(),
                ..Default::default()
            })
        }),
        MemberStatus::Leaving => None,
        status => {
            let health = if status == MemberStatus::Alive {
                HealthStatus::Passing
            } else {
                HealthStatus::Critical
            };
            let address = m.addr.ip().to_string();
            let server_port = (m.tags.get("role").map(String::as_str) == Some("consul"))
                .then(|| m.tags.get("port").and_then(|p| p.parse().ok()))
                .flatten();
            let node_ok = node.as_ref().is_some_and(|ns| ns.node.address == address);
            let service_ok = server_port.is_none_or(|p: u16| {
                node.as_ref()
                    .is_some_and(|ns| ns.services.get("consul").is_some_and(|s| s.port == p))
            });
            if node_ok && service_ok && serf == Some(health) {
                return None;
            }
            // A failed member that was never registered stays out.
            if health == HealthStatus::Critical && node.is_none() {
                return None;
            }
            Some(Command::Register(RegisterRequest {
                id: m.tags.get("id").cloned().unwrap_or_default(),
                node: m.name.clone(),
                address,
                datacenter: dc.to_string(),
                skip_node_update: node_ok,
                service: server_port.map(|port| NodeService {
                    id: "consul".into(),
                    service: "consul".into(),
                    port,
                    ..Default::default()
                }),
                check: Some(serf_health(health)),
                ..Default::default()
            }))
        }
    }
}

/// Opens the Raft store. A store still held by a Raft instance that is
/// just shutting down in this process (its last handle is dropped on
/// another thread) is waited for, briefly.
async fn open_store(
    dir: Option<&std::path::Path>,
) -> Result<Arc<redb::Database>, storage::StorageError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match storage::open(dir) {
            Err(storage::StorageError::Open { source, .. })
                if matches!(*source, redb::DatabaseError::DatabaseAlreadyOpen)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

pub fn server_addr(config: &RuntimeConfig) -> String {
    format!(
        "{}:{}",
        config.advertise(),
        config.ports.server.unwrap_or(8300)
    )
}

/// What the leader writes for a live server: the node, its `serfHealth`
/// check and the `consul` service.
pub fn self_registration(config: &RuntimeConfig) -> RegisterRequest {
    let mut meta = config.node_meta.clone();
    meta.insert("consul-network-segment".into(), String::new());
    meta.insert("consul-version".into(), env!("CARGO_PKG_VERSION").into());
    RegisterRequest {
        id: config.node_id.clone(),
        node: config.node_name.clone(),
        address: config.advertise().to_string(),
        datacenter: config.datacenter.clone(),
        tagged_addresses: BTreeMap::from([
            ("lan".into(), config.advertise().to_string()),
            ("wan".into(), config.advertise_wan().to_string()),
        ]),
        node_meta: meta,
        service: config.server.then(|| NodeService {
            id: "consul".into(),
            service: "consul".into(),
            port: config.ports.server.unwrap_or(8300),
            ..Default::default()
        }),
        check: Some(serf_health(HealthStatus::Passing)),
        checks: Vec::new(),
        skip_node_update: false,
    }
}

impl Actor for RaftActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Reconcile as soon as leadership changes, and on an interval to
        // repair anything a failed write left behind.
        ctx.run_interval(Duration::from_secs(1), |act, ctx| {
            act.try_bootstrap(ctx);
            act.reconcile(ctx);
        });
        ctx.run_interval(Duration::from_millis(250), |act, ctx| {
            act.expire_sessions(ctx)
        });
        let mut metrics = self.raft.metrics();
        let me = ctx.address();
        ctx.spawn(
            async move {
                let mut was_leader = false;
                while metrics.changed().await.is_ok() {
                    let m = metrics.borrow().clone();
                    let leader = m.current_leader == Some(m.id) && m.state == ServerState::Leader;
                    if leader && !was_leader {
                        me.do_send(Reconcile);
                    }
                    was_leader = leader;
                }
            }
            .into_actor(self),
        );
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        let raft = self.raft.clone();
        actix::spawn(async move {
            let _ = raft.shutdown().await;
        });
    }
}

fn map_write_err(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> RequestError {
    match e {
        // The forwarding step will send this to the leader; one server
        // without leadership has nobody to send it to.
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => RequestError::NoLeader,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            RequestError::Internal(e.to_string())
        }
        RaftError::Fatal(f) => RequestError::Internal(format!("raft: {f}")),
    }
}

/// Where a request that needs the leader goes from here.
enum Route {
    Local,
    Leader(String),
}

/// The forwarding step for everything that needs the leader: serve it here
/// when this server leads, send it to the leader when one is known and the
/// request may still travel, fail fast with `No cluster leader` otherwise.
fn leader_route(status: &RaftStatus, may_forward: bool) -> Result<Route, RequestError> {
    if status.is_leader {
        return Ok(Route::Local);
    }
    match (&status.leader_addr, may_forward) {
        (Some(addr), true) => Ok(Route::Leader(addr.clone())),
        _ => Err(RequestError::NoLeader),
    }
}

/// Most writes in one entry, and most value bytes (entries stay well
/// under a Raft message's comfortable size).
const MAX_BATCH: usize = 512;
const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;

struct Queued {
    command: Command,
    may_forward: bool,
    reply: oneshot::Sender<Result<WriteResponse, RequestError>>,
}

/// The bulk of a command, for batch sizing.
fn command_size(c: &Command) -> usize {
    match c {
        Command::KvSet { key, value, .. } | Command::KvCas { key, value, .. } => {
            key.len() + value.len()
        }
        Command::Batch(cmds) => cmds.iter().map(command_size).sum(),
        // A restore goes in an entry of its own.
        Command::Restore(_) => MAX_BATCH_BYTES,
        _ => 256,
    }
}

async fn forward_write(
    pool: &Pool,
    addr: &str,
    command: Command,
) -> Result<WriteResponse, RequestError> {
    let req = RpcRequest::Write(WriteRequest { dc: None, command });
    match pool.call(addr, &req, Duration::from_secs(10)).await {
        Ok(RpcResponse::Write(r)) => r,
        Ok(other) => Err(RequestError::Internal(format!(
            "rpc error: unexpected answer {other:?}"
        ))),
        Err(e) => Err(RequestError::Internal(e.to_string())),
    }
}

/// Time for a forwarded call: the blocking wait plus room for the trip.
fn forward_timeout(opts: &QueryOptions) -> Duration {
    let wait = if opts.min_index > 0 {
        opts.max_wait
    } else {
        Duration::ZERO
    };
    wait + Duration::from_secs(10)
}

impl RaftActor {
    /// Queues a write; the batcher sends everything queued as one entry.
    fn write(
        &mut self,
        command: Command,
        may_forward: bool,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<WriteResponse, RequestError>> {
        if self.lease_lost(&self.raft.metrics().borrow()) {
            return Box::pin(async { Err(RequestError::NoLeader) });
        }
        if let Command::SessionRenew { id } = &command {
            self.renew_ttl(id);
        }
        let (tx, rx) = oneshot::channel();
        self.queue.push(Queued {
            command,
            may_forward,
            reply: tx,
        });
        if !self.in_flight {
            self.flush(ctx);
        }
        Box::pin(async move { rx.await.unwrap_or(Err(RequestError::ShuttingDown)) })
    }

    /// Sends the queued writes as one Raft entry. openraft 0.9 flushes one
    /// append at a time, so writes that arrive while one entry is in flight
    /// are gathered into the next: one fsync serves them all.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.queue.is_empty() {
            return;
        }
        let mut bytes = 0usize;
        let take = self.queue.iter().take_while(|q| {
            bytes += command_size(&q.command);
            bytes <= MAX_BATCH_BYTES
        });
        let n = take.count().clamp(1, MAX_BATCH);
        let batch: Vec<Queued> = self.queue.drain(..n).collect();
        self.in_flight = true;
        let entry = match batch.as_slice() {
            [one] => one.command.clone(),
            many => Command::Batch(many.iter().map(|q| q.command.clone()).collect()),
        };
        let (raft, pool) = (self.raft.clone(), self.pool.clone());
        let (me, lease_ms) = (self.node_id, leader_lease(&self.config));
        let fut = async move {
            // Writers learn of a lost lease or a stuck commit with an
            // error; their entry may still commit later, as with Consul.
            let failed = tokio::select! {
                outcome = raft.client_write(entry) => Ok(outcome),
                _ = tokio::time::sleep(COMMIT_TIMEOUT) => Err(RequestError::Timeout),
                _ = lease_expiry(raft.clone(), me, lease_ms) => Err(RequestError::LeadershipLost),
            };
            let outcome = match failed {
                Ok(outcome) => outcome,
                Err(e) => {
                    for q in batch {
                        let _ = q.reply.send(Err(e.clone()));
                    }
                    return;
                }
            };
            match outcome {
                Ok(resp) => {
                    let index = resp.log_id.index;
                    let results = match resp.data {
                        CommandResult::Batch(r) if batch.len() > 1 => r,
                        single => vec![single],
                    };
                    for (q, result) in batch.into_iter().zip(results) {
                        let _ = q.reply.send(Ok(WriteResponse { index, result }));
                    }
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    let leader = f.leader_node.map(|n| n.addr);
                    for q in batch {
                        match (&leader, q.may_forward) {
                            (Some(addr), true) => {
                                let (pool, addr) = (pool.clone(), addr.clone());
                                actix::spawn(async move {
                                    let _ =
                                        q.reply.send(forward_write(&pool, &addr, q.command).await);
                                });
                            }
                            _ => {
                                let _ = q.reply.send(Err(RequestError::NoLeader));
                            }
                        }
                    }
                }
                Err(e) => {
                    let e = map_write_err(e);
                    for q in batch {
                        let _ = q.reply.send(Err(e.clone()));
                    }
                }
            }
        };
        ctx.spawn(fut.into_actor(self).map(|_, act, ctx| {
            act.in_flight = false;
            act.flush(ctx);
        }));
    }

    fn read(
        &self,
        req: ReadRequest,
        may_forward: bool,
    ) -> ResponseFuture<Result<ReadResponse, RequestError>> {
        let (raft, store, pool, status) = (
            self.raft.clone(),
            self.store.clone(),
            self.pool.clone(),
            self.status(),
        );
        Box::pin(async move {
            let route = match req.opts.consistency {
                Consistency::Stale => Route::Local,
                _ => leader_route(&status, may_forward)?,
            };
            if let Route::Leader(addr) = route {
                let timeout = forward_timeout(&req.opts);
                return match pool.call(&addr, &RpcRequest::Read(req), timeout).await {
                    Ok(RpcResponse::Read(r)) => r,
                    Ok(other) => Err(RequestError::Internal(format!(
                        "rpc error: unexpected answer {other:?}"
                    ))),
                    Err(e) => Err(RequestError::Internal(e.to_string())),
                };
            }
            if req.opts.consistency == Consistency::Consistent {
                raft.ensure_linearizable().await.map_err(|e| match e {
                    RaftError::APIError(_) => RequestError::NoLeader,
                    RaftError::Fatal(f) => RequestError::Internal(format!("raft: {f}")),
                })?;
            }
            let (index, result) = blocking_query(&store, &req.opts, &req.query).await;
            Ok(ReadResponse {
                meta: QueryMeta {
                    index,
                    known_leader: status.leader_addr.is_some(),
                    last_contact_ms: status.last_contact_ms,
                    consistency: req.opts.consistency,
                },
                result,
            })
        })
    }
}

impl Handler<RaftWrite> for RaftActor {
    type Result = ResponseFuture<Result<WriteResponse, RequestError>>;

    fn handle(&mut self, msg: RaftWrite, ctx: &mut Context<Self>) -> Self::Result {
        self.write(msg.0, true, ctx)
    }
}

impl Handler<RaftRead> for RaftActor {
    type Result = ResponseFuture<Result<ReadResponse, RequestError>>;

    fn handle(&mut self, msg: RaftRead, _: &mut Context<Self>) -> Self::Result {
        self.read(msg.0, true)
    }
}

/// Lets requests for other datacenters that clients send here follow the
/// agent's routing.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachRouter(pub Addr<crate::actors::node::NodeActor>);

impl Handler<AttachRouter> for RaftActor {
    type Result = ();
    fn handle(&mut self, msg: AttachRouter, _: &mut Context<Self>) {
        self.router = Some(msg.0);
    }
}

/// The datacenters this server knows (a client's `/v1/catalog/datacenters`).
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub struct Datacenters;

impl Handler<Datacenters> for RaftActor {
    type Result = ResponseFuture<Vec<String>>;
    fn handle(&mut self, _: Datacenters, _: &mut Context<Self>) -> Self::Result {
        let (router, own) = (self.router.clone(), self.config.datacenter.clone());
        Box::pin(async move {
            match router {
                Some(r) => r
                    .send(crate::actors::node::GetDatacenters)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_else(|| vec![own]),
                None => vec![own],
            }
        })
    }
}

/// Reads this server may answer on the caller's own thread: a stale read
/// always, a default read while it leads and its lease holds. Saves the
/// two actor hops (four thread switches) a read otherwise takes; anything
/// else (forwarding, consistent reads) still goes through the actors.
#[derive(Clone)]
pub struct LocalReader {
    raft: Raft,
    store: SharedStore,
    contact: LastContact,
    me: NodeId,
    lease_ms: u64,
}

impl LocalReader {
    /// The read's headers if this server may serve `consistency` now.
    fn may_serve(&self, consistency: Consistency) -> Option<QueryMeta> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let leading = m.current_leader == Some(self.me) && !lease_lost(&m, self.me, self.lease_ms);
        let meta = |known_leader: bool, last_contact_ms: u64| QueryMeta {
            index: 0,
            known_leader,
            last_contact_ms,
            consistency,
        };
        match consistency {
            Consistency::Default if leading => Some(meta(true, 0)),
            Consistency::Stale if leading => Some(meta(true, 0)),
            // A follower's stale read: the headers say how far behind it may be.
            Consistency::Stale if m.current_leader.is_some() => {
                Some(meta(true, self.contact.millis_ago().unwrap_or(0)))
            }
            _ => None,
        }
    }

    /// Serves the read here, or `None` when it must take the actor path.
    pub async fn try_read(&self, req: &ReadRequest) -> Option<ReadResponse> {
        let mut meta = self.may_serve(req.opts.consistency)?;
        let (index, result) = blocking_query(&self.store, &req.opts, &req.query).await;
        meta.index = index;
        Some(ReadResponse { meta, result })
    }
}

/// The fast read path's handle (servers only).
#[derive(Message)]
#[rtype(result = "LocalReader")]
pub struct GetLocalReader;

impl Handler<GetLocalReader> for RaftActor {
    type Result = MessageResult<GetLocalReader>;
    fn handle(&mut self, _: GetLocalReader, _: &mut Context<Self>) -> Self::Result {
        MessageResult(LocalReader {
            raft: self.raft.clone(),
            store: self.store.clone(),
            contact: self.contact.clone(),
            me: self.node_id,
            lease_ms: leader_lease(&self.config),
        })
    }
}

/// A user event that arrived over RPC, fired by this server's agent.
#[derive(Message)]
#[rtype(result = "Result<crate::lan::UserEvent, RequestError>")]
pub struct RouteEvent {
    pub dc: Option<String>,
    pub event: crate::lan::UserEvent,
}

impl Handler<RouteEvent> for RaftActor {
    type Result = ResponseFuture<Result<crate::lan::UserEvent, RequestError>>;
    fn handle(&mut self, msg: RouteEvent, _: &mut Context<Self>) -> Self::Result {
        let router = self.router.clone();
        Box::pin(async move {
            let router = router.ok_or(RequestError::ShuttingDown)?;
            router
                .send(crate::actors::node::events::FireUserEvent {
                    dc: msg.dc,
                    event: msg.event,
                })
                .await
                .map_err(|_| RequestError::ShuttingDown)?
        })
    }
}

/// A client agent's request over RPC: served here for this datacenter,
/// sent on over the WAN for another.
#[derive(Message, Debug)]
#[rtype(result = "RpcResponse")]
pub enum FromAgent {
    Read(ReadRequest),
    Write(WriteRequest),
}

impl Handler<FromAgent> for RaftActor {
    type Result = ResponseFuture<RpcResponse>;

    fn handle(&mut self, msg: FromAgent, ctx: &mut Context<Self>) -> Self::Result {
        let own = self.config.datacenter.clone();
        let foreign = |dc: &Option<String>| {
            dc.as_deref()
                .is_some_and(|d| !d.is_empty() && !d.eq_ignore_ascii_case(&own))
        };
        match (msg, self.router.clone()) {
            (FromAgent::Read(r), Some(router)) if foreign(&r.opts.dc) => Box::pin(async move {
                RpcResponse::Read(
                    router
                        .send(crate::actors::node::Read(r))
                        .await
                        .unwrap_or(Err(RequestError::ShuttingDown)),
                )
            }),
            (FromAgent::Write(w), Some(router)) if foreign(&w.dc) => Box::pin(async move {
                RpcResponse::Write(
                    router
                        .send(crate::actors::node::Write(w))
                        .await
                        .unwrap_or(Err(RequestError::ShuttingDown)),
                )
            }),
            (FromAgent::Read(r), _) => {
                let f = self.read(r, true);
                Box::pin(async move { RpcResponse::Read(f.await) })
            }
            (FromAgent::Write(w), _) => {
                let f = self.write(w.command, true, ctx);
                Box::pin(async move { RpcResponse::Write(f.await) })
            }
        }
    }
}

/// A request another server forwarded here: served, never forwarded again
/// (two servers that each think the other leads must not ping-pong).
#[derive(Message, Debug)]
#[rtype(result = "RpcResponse")]
pub enum ServeForwarded {
    Read(ReadRequest),
    Write(WriteRequest),
}

impl Handler<ServeForwarded> for RaftActor {
    type Result = ResponseFuture<RpcResponse>;

    fn handle(&mut self, msg: ServeForwarded, ctx: &mut Context<Self>) -> Self::Result {
        match msg {
            ServeForwarded::Read(r) => {
                let f = self.read(r, false);
                Box::pin(async move { RpcResponse::Read(f.await) })
            }
            ServeForwarded::Write(w) => {
                let f = self.write(w.command, false, ctx);
                Box::pin(async move { RpcResponse::Write(f.await) })
            }
        }
    }
}

/// Removes a server from the Raft configuration.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), RequestError>")]
pub struct RemoveVoter(pub NodeId);

impl Handler<RemoveVoter> for RaftActor {
    type Result = ResponseFuture<Result<(), RequestError>>;

    fn handle(&mut self, msg: RemoveVoter, _: &mut Context<Self>) -> Self::Result {
        let raft = self.raft.clone();
        let leads = self.status().is_leader;
        Box::pin(async move {
            if !leads {
                return Err(RequestError::NoLeader);
            }
            let mut voters: std::collections::BTreeSet<NodeId> = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .voter_ids()
                .collect();
            voters.remove(&msg.0);
            raft.change_membership(voters, false)
                .await
                .map(|_| ())
                .map_err(|e| RequestError::Internal(e.to_string()))
        })
    }
}

/// `operator raft remove-peer`: a server named by its ID (node UUID or
/// Raft id) or its server RPC address leaves the Raft configuration; a
/// follower hands the change to the leader.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), RequestError>")]
pub enum RemovePeer {
    Id(String),
    Address(String),
}

impl Handler<RemovePeer> for RaftActor {
    type Result = ResponseFuture<Result<(), RequestError>>;

    fn handle(&mut self, msg: RemovePeer, ctx: &mut Context<Self>) -> Self::Result {
        let status = self.status();
        let found = match &msg {
            RemovePeer::Address(a) => status.servers.iter().find(|s| s.addr == *a),
            RemovePeer::Id(id) => status.servers.iter().find(|s| {
                s.id.to_string() == *id
                    || uuid::Uuid::parse_str(id).is_ok_and(|_| s.id == raft_id(id))
            }),
        };
        let Some(id) = found.map(|s| s.id) else {
            let (what, v) = match msg {
                RemovePeer::Id(v) => ("id", v),
                RemovePeer::Address(v) => ("address", v),
            };
            return Box::pin(async move {
                Err(RequestError::Rejected(format!(
                    "{what} \"{v}\" was not found in the Raft configuration"
                )))
            });
        };
        let (me, pool) = (ctx.address(), self.pool.clone());
        Box::pin(async move {
            match leader_route(&status, true)? {
                Route::Local => me
                    .send(RemoveVoter(id))
                    .await
                    .unwrap_or(Err(RequestError::ShuttingDown)),
                Route::Leader(addr) => {
                    match pool
                        .call(&addr, &RpcRequest::RemovePeer(id), Duration::from_secs(10))
                        .await
                    {
                        Ok(RpcResponse::Done(r)) => r,
                        Ok(other) => Err(RequestError::Internal(format!(
                            "rpc error: unexpected answer {other:?}"
                        ))),
                        Err(e) => Err(RequestError::Internal(e.to_string())),
                    }
                }
            }
        })
    }
}

/// Adds a server as a voter (the leader catches it up first). The cluster
/// issue sends this from LAN membership events; tests send it directly.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), RequestError>")]
pub struct AddVoter {
    pub id: NodeId,
    pub addr: String,
}

impl Handler<AddVoter> for RaftActor {
    type Result = ResponseFuture<Result<(), RequestError>>;

    fn handle(&mut self, msg: AddVoter, _: &mut Context<Self>) -> Self::Result {
        let raft = self.raft.clone();
        Box::pin(async move {
            let internal = |e: String| RequestError::Internal(e);
            raft.add_learner(msg.id, BasicNode { addr: msg.addr }, true)
                .await
                .map_err(|e| internal(e.to_string()))?;
            let mut voters: std::collections::BTreeSet<NodeId> = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .voter_ids()
                .collect();
            voters.insert(msg.id);
            raft.change_membership(voters, false)
                .await
                .map_err(|e| internal(e.to_string()))?;
            Ok(())
        })
    }
}

/// Stop Raft (storage closed once this returns) and the actor.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for RaftActor {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        let (raft, db) = (self.raft.clone(), self.db.clone());
        Box::pin(
            async move {
                if let Err(e) = raft.shutdown().await {
                    tracing::warn!(error = %e, "raft shutdown");
                }
                // The log writer and the state machine let go of the
                // database a moment after Raft stops; its file lock must be
                // free before this returns so the store can be reopened.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while db.strong_count() > 0 && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            .into_actor(self)
            .map(|_, _, ctx| ctx.stop()),
        )
    }
}

/// Hands the Raft actor the LAN pool: it subscribes to member events.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachLan(pub Addr<crate::lan::LanGossip>);

impl Handler<AttachLan> for RaftActor {
    type Result = ();
    fn handle(&mut self, msg: AttachLan, ctx: &mut Context<Self>) {
        msg.0
            .do_send(crate::lan::Subscribe(ctx.address().recipient()));
        self.lan = Some(msg.0);
        self.try_bootstrap(ctx);
        self.reconcile(ctx);
    }
}

impl Handler<crate::lan::MemberEvent> for RaftActor {
    type Result = ();
    fn handle(&mut self, ev: crate::lan::MemberEvent, ctx: &mut Context<Self>) {
        self.try_bootstrap(ctx);
        match ev {
            // Reaped members are no longer listed, so the reconcile alone
            // would not remove them: Consul's reconcileReaped.
            crate::lan::MemberEvent::Reap(m) if self.status().is_leader => {
                if lock(&self.store).catalog_node(&m.name, None).1.is_some() {
                    tracing::info!(node = %m.name, "deregistering a reaped member");
                    ctx.notify(ReapNode(m.name));
                }
            }
            _ => self.reconcile(ctx),
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct ReapNode(String);

impl Handler<ReapNode> for RaftActor {
    type Result = ();
    fn handle(&mut self, msg: ReapNode, ctx: &mut Context<Self>) {
        let write = self.write(
            Command::Deregister(crate::state::structs::DeregisterRequest {
                node: msg.0,
                ..Default::default()
            }),
            false,
            ctx,
        );
        actix::spawn(async move {
            if let Err(e) = write.await {
                tracing::warn!(error = %e, "deregistering a reaped member failed");
            }
        });
    }
}

/// Run leader reconcile now.
#[derive(Message)]
#[rtype(result = "()")]
struct Reconcile;

impl Handler<Reconcile> for RaftActor {
    type Result = ();
    fn handle(&mut self, _: Reconcile, ctx: &mut Context<Self>) {
        self.reconcile(ctx);
    }
}

impl Handler<GetRaftStatus> for RaftActor {
    type Result = ResponseFuture<RaftStatus>;

    fn handle(&mut self, msg: GetRaftStatus, _: &mut Context<Self>) -> Self::Result {
        let own = self.status();
        let pool = self.pool.clone();
        Box::pin(async move {
            let Some(addr) = own
                .leader_addr
                .clone()
                .filter(|_| msg.leader && !own.is_leader)
            else {
                return own;
            };
            // Asked once, for the leader's own view: never forwarded further.
            let req = RpcRequest::Status { leader: false };
            match pool.call(&addr, &req, Duration::from_secs(5)).await {
                Ok(RpcResponse::Status(s)) => s,
                _ => own,
            }
        })
    }
}

/// Runs a query, and if the client asked to block, sleeps until a row it
/// read changes or the wait runs out. Returns Consul's index (never 0).
pub async fn blocking_query(
    store: &SharedStore,
    opts: &QueryOptions,
    query: &Query,
) -> (u64, QueryResult) {
    let deadline = Instant::now() + opts.max_wait;
    loop {
        let waiter = Arc::new(Notify::new());
        let blocking = opts.min_index > 0 && Instant::now() < deadline;
        let (index, result) = {
            let mut s = lock(store);
            execute(&mut s, query, blocking.then_some(&waiter))
        };
        if !blocking || index > opts.min_index {
            return (index.max(1), result);
        }
        tokio::select! {
            _ = waiter.notified() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}
