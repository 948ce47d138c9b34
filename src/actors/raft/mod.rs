//! The `Raft` actor (servers): owns the Raft node and the state store it
//! drives. Its files, one concern each:
//!
//! - this file: the actor, its start and stop, voter changes, and the
//!   LAN pool it follows;
//! - `batch.rs`: the write batcher (writes queued while an entry is in
//!   flight go into the next one);
//! - `read.rs`: the read side shared with the request path
//!   ([`LocalServer`]): leadership and its lease, Raft status, reads
//!   served here and blocking queries;
//! - `leader.rs`: leader duties (reconcile of the catalog with the LAN
//!   pool, bootstrap-expect, voters from membership);
//! - `acl_leader.rs`: the leader's ACL duties (builtins, the initial
//!   management token, reaping expired tokens);
//! - `acl_replication.rs`: a secondary datacenter's leader following the
//!   primary's ACL policies, roles and global tokens;
//! - `session_ttl.rs`: the leader's session TTL timers;
//! - `kv_ttl.rs`: the leader's KV TTL timers (a Meridian extension);
//! - `kv_replication.rs`: the leader copying declared KV prefixes from
//!   another datacenter (a Meridian extension);
//! - `tombstone_gc.rs`: the leader's KV tombstone reaper;
//! - `telemetry.rs`: Raft's and the state store's figures for
//!   `/v1/agent/metrics`.
//!
//! Where a request goes (another datacenter, the leader) is not decided
//! here but by the router (`actors::node::router`); this actor only ever
//! serves what reaches it.

mod acl_leader;
mod acl_replication;
mod batch;
mod kv_replication;
mod kv_ttl;
mod leader;
mod prevote;
mod read;
mod session_ttl;
mod snapshots;
mod telemetry;
mod timing;
mod tombstone_gc;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ServerState, SnapshotPolicy};

pub use acl_replication::{AttachRemoteReads, RemoteReads, ReplicationStatusHandle};
pub use batch::RaftWrite;
pub use kv_replication::{
    refusal as replication_refusal, KvReplicationHandle, KvReplicationStatus,
};
pub use leader::{self_registration, server_addr};
pub use read::{blocking_query, LastContact, Leadership, LocalServer, RaftRead, StallWatch};

use crate::config::RuntimeConfig;
use crate::rpc::raft_net::RaftNetworkFactoryImpl;
use crate::state::StateStore;
use crate::storage::{self, fsm, LogStore, NodeId, Raft, StateMachine};
use crate::structs::{RaftStatus, RequestError};
use leader::{ReapNode, Reconcile};
use read::leader_lease;

pub use crate::storage::fsm::SharedStore;

pub struct RaftActor {
    raft: Raft,
    /// Server RPC to the other servers (Pre-Vote).
    pool: crate::rpc::Pool,
    timing: timing::Timing,
    /// Leader only: the session TTL timers.
    sessions: session_ttl::SessionTimers,
    /// Leader only: the KV TTL timers.
    kv_ttls: kv_ttl::KvTtlTimers,
    /// Leader only: the KV tombstones waiting for their TTL.
    tombstones: tombstone_gc::TombstoneGc,
    contact: LastContact,
    /// Stops of this process (SIGSTOP, a paused VM): no default read is
    /// answered on the lease just after one.
    stalls: StallWatch,
    /// Writes waiting for the entry in flight to commit.
    queue: Vec<batch::Queued>,
    in_flight: bool,
    /// The LAN pool, once attached: its members are reconciled into the catalog.
    lan: Option<Addr<crate::lan::LanGossip>>,
    /// Bootstrap (from -bootstrap-expect) is done or not needed.
    bootstrapped: bool,
    /// Since when this server waits for the first server of its
    /// `-bootstrap-expect` set to initialize (`leader.rs`).
    bootstrap_waiting: Option<std::time::Instant>,
    /// Alive while anything (log writer, state machine) holds a database.
    db: [std::sync::Weak<redb::Database>; 2],
    wal: std::sync::Weak<storage::wal::Wal>,
    store: SharedStore,
    node_id: NodeId,
    config: Arc<RuntimeConfig>,
    /// Leader only: what the ACL duties have done this term.
    acl: acl_leader::AclDuties,
    /// Leader of a secondary only: the ACL replication tasks.
    replication: acl_replication::Replication,
    /// What replication did, shared with the request path.
    replication_status: ReplicationStatusHandle,
    /// Leader with a `replication` block only: the KV copy tasks.
    kv_copy: kv_replication::KvCopy,
    /// What KV replication did, shared with the request path.
    kv_replication: KvReplicationHandle,
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
    /// config says so and no Raft state exists yet. Raft's messages from
    /// other servers reach it through the returned [`LocalServer`] (the
    /// agent's RPC listener).
    pub async fn start(
        config: Arc<RuntimeConfig>,
        pool: crate::rpc::Pool,
    ) -> anyhow::Result<(Addr<RaftActor>, LocalServer)> {
        let dir = config.data_dir.as_ref().map(|d| d.join("raft"));
        let db = open_store(dir.as_deref()).await?;
        let db_handle = [Arc::downgrade(&db.log), Arc::downgrade(&db.snapshots)];
        let wal_handle = Arc::downgrade(&db.wal);
        let store: SharedStore = fsm::new_shared(StateStore::new());
        telemetry::watch_store(&store);
        let sm = StateMachine::open(&db, store.clone())?;
        let log = LogStore::new(&db);
        drop(db);
        // Refuses to start when the lease could outlive the followers'
        // vote refusal (stale reads from a deposed leader).
        let timing = timing::Timing::for_mode(config.dev)?;
        let rc = openraft::Config {
            cluster_name: config.datacenter.clone(),
            heartbeat_interval: timing.heartbeat,
            election_timeout_min: timing.election_min,
            election_timeout_max: timing.election_max,
            // openraft allows one heartbeat interval per append: smaller
            // payloads keep a catching-up follower within it.
            max_payload_entries: 64,
            // Each snapshot chunk (3 MiB) gets this long. openraft's 200 ms
            // timed out the first install of a 26 MiB snapshot to a joining
            // server (bench/kv_scale.sh, 100,000 keys) on a loaded machine:
            // every retry starts over.
            install_snapshot_timeout: 5_000,
            // `snapshots` triggers them, each server at its own phase.
            snapshot_policy: SnapshotPolicy::Never,
            // Elections start in `prevote`, after a quorum granted a
            // Pre-Vote: openraft's own timer would raise the term of a
            // server that cannot win.
            enable_elect: false,
            max_in_snapshot_log_to_keep: config.raft_trailing_logs,
            ..Default::default()
        }
        .validate()?;
        let node_id = raft_id(&config.node_id);
        let network = RaftNetworkFactoryImpl { pool: pool.clone() };
        let raft = Raft::new(node_id, Arc::new(rc), network, log, sm).await?;
        if (config.bootstrap || config.bootstrap_expect == 1) && !raft.is_initialized().await? {
            let addr = server_addr(&config);
            tracing::info!(%addr, "bootstrapping a new single-server cluster");
            raft.initialize(BTreeMap::from([(node_id, BasicNode { addr })]))
                .await?;
        }
        let tombstone_ttl = tombstone_gc::TombstoneGc::ttl_from_env()?;
        if tombstone_ttl != tombstone_gc::DEFAULT_TTL {
            tracing::info!(ttl = ?tombstone_ttl, "KV tombstone TTL set by {}", tombstone_gc::TTL_ENV);
        }
        let contact = LastContact::new();
        let stalls = StallWatch::start();
        let replication_status = ReplicationStatusHandle::default();
        let kv_replication = KvReplicationHandle::default();
        let actor = RaftActor {
            raft: raft.clone(),
            pool,
            timing,
            sessions: Default::default(),
            kv_ttls: Default::default(),
            tombstones: tombstone_gc::TombstoneGc::new(tombstone_ttl),
            contact: contact.clone(),
            stalls: stalls.clone(),
            queue: Vec::new(),
            in_flight: false,
            db: db_handle,
            wal: wal_handle,
            lan: None,
            bootstrapped: false,
            bootstrap_waiting: None,
            store: store.clone(),
            node_id,
            config,
            acl: Default::default(),
            replication: Default::default(),
            replication_status: replication_status.clone(),
            kv_copy: Default::default(),
            kv_replication: kv_replication.clone(),
        }
        .start();
        let local = LocalServer::new(actor.clone(), raft, store, contact, node_id, timing, stalls)
            .with_acl_replication(replication_status)
            .with_kv_replication(kv_replication);
        Ok((actor, local))
    }

    /// This server leads by Raft's word but has not heard from a quorum
    /// within the lease.
    fn lease_lost(&self, m: &openraft::RaftMetrics<NodeId, BasicNode>) -> bool {
        read::lease_lost(m, self.node_id, leader_lease(&self.config))
    }

    fn status(&self) -> RaftStatus {
        read::raft_status(
            &self.raft,
            self.node_id,
            leader_lease(&self.config),
            &self.contact,
        )
    }
}

impl Actor for RaftActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Reconcile as soon as leadership changes, and on an interval to
        // repair anything a failed write left behind.
        ctx.run_interval(Duration::from_secs(1), |act, ctx| {
            telemetry::sample_last_contact(&act.raft.metrics().borrow());
            act.try_bootstrap(ctx);
            act.reconcile(ctx);
            act.acl_replication_tick(ctx);
            act.kv_replication_tick(ctx);
        });
        ctx.run_interval(Duration::from_millis(250), |act, ctx| {
            act.expire_sessions(ctx);
            act.expire_kv_ttls(ctx);
        });
        ctx.run_interval(self.tombstones.tick(), |act, ctx| act.reap_tombstones(ctx));
        ctx.spawn(
            prevote::run(
                self.raft.clone(),
                self.pool.clone(),
                self.contact.clone(),
                self.timing,
            )
            .into_actor(self),
        );
        let mut metrics = self.raft.metrics();
        let me = ctx.address();
        let raft = self.raft.clone();
        let mut points = snapshots::Points::new(
            self.config.raft_snapshot_threshold,
            self.config.raft_snapshot_interval,
        );
        let raft_dir = self.config.data_dir.as_ref().map(|d| d.join("raft"));
        ctx.spawn(
            async move {
                let mut was_leader = false;
                let mut telemetry = telemetry::RaftTelemetry::default();
                loop {
                    tokio::select! {
                        changed = metrics.changed() => {
                            if changed.is_err() {
                                break;
                            }
                        }
                        _ = tokio::time::sleep_until(points.next_check()) => {
                            let m = metrics.borrow().clone();
                            points.check(&raft, &m).await;
                            continue;
                        }
                    }
                    let m = metrics.borrow().clone();
                    telemetry.observe(&m);
                    if let Err(fatal) = &m.running_state {
                        raft_failed(fatal, raft_dir.as_deref());
                        break;
                    }
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
        self.replication.stop();
        let raft = self.raft.clone();
        actix::spawn(async move {
            let _ = raft.shutdown().await;
        });
    }
}

/// openraft stops for good on a storage error (a full disk, an I/O
/// error): the server could neither vote nor append again, yet would keep
/// answering HTTP from a state machine that no longer advances. The agent
/// exits instead (code 1), saying which directory failed and why, so that
/// whoever runs it sees the fault and restarts it once it is fixed; what it
/// had persisted is intact, and it catches up from the leader.
fn raft_failed(fatal: &openraft::error::Fatal<NodeId>, dir: Option<&std::path::Path>) {
    if matches!(fatal, openraft::error::Fatal::Stopped) {
        return;
    }
    tracing::error!(
        error = %fatal,
        raft_dir = %dir.map_or_else(|| "(in memory)".into(), |d| d.display().to_string()),
        "Raft storage failed (is the disk full?); stopping the agent: restart it once the fault is fixed"
    );
    actix::System::current().stop_with_code(1);
}

/// This server's Raft view (`/v1/agent/self`, `info`; the router asks
/// the leader for its own when every server's progress is wanted).
#[derive(Message, Debug, Clone)]
#[rtype(result = "RaftStatus")]
pub struct GetRaftStatus;

impl Handler<GetRaftStatus> for RaftActor {
    type Result = MessageResult<GetRaftStatus>;

    fn handle(&mut self, _: GetRaftStatus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.status())
    }
}

/// Removes a server from the Raft configuration: a voter, or a learner
/// (one the leader's reconcile added and never promoted).
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
            let membership = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .clone();
            let mut voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
            let change: openraft::ChangeMembers<NodeId, BasicNode> = if voters.remove(&msg.0) {
                openraft::ChangeMembers::ReplaceAllVoters(voters)
            } else if membership.get_node(&msg.0).is_some() {
                openraft::ChangeMembers::RemoveNodes([msg.0].into())
            } else {
                return Ok(());
            };
            raft.change_membership(change, false)
                .await
                .map(|_| ())
                .map_err(|e| RequestError::Internal(e.to_string()))
        })
    }
}

/// How long [`AddVoter`] waits for a new learner to catch up.
const CATCH_UP: Duration = Duration::from_secs(5);

/// Whether the leader has replicated to `id` at least up to the current
/// membership (which names `id`).
fn has_caught_up(m: &openraft::RaftMetrics<NodeId, BasicNode>, id: NodeId) -> bool {
    let need = m.membership_config.log_id().map(|l| l.index);
    let matched = m
        .replication
        .as_ref()
        .and_then(|r| r.get(&id).cloned())
        .flatten()
        .map(|l| l.index);
    matched.is_some() && matched >= need
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
            let is_learner = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .get_node(&msg.id)
                .is_some();
            if !is_learner {
                raft.add_learner(
                    msg.id,
                    BasicNode {
                        addr: msg.addr.clone(),
                    },
                    false,
                )
                .await
                .map_err(|e| internal(e.to_string()))?;
            }
            // Only a learner that has the log up to its own membership is
            // promoted: one the leader cannot replicate to (down, or
            // refused at the TLS handshake because its certificate names no
            // server) stays a learner and cannot weaken the quorum. The
            // wait is bounded so that reconcile tries again later.
            let caught_up = raft
                .wait(Some(CATCH_UP))
                .metrics(|m| has_caught_up(m, msg.id), "learner caught up")
                .await
                .is_ok();
            if !caught_up {
                return Err(internal(format!(
                    "server {} has not caught up with the leader's log; it stays a learner",
                    msg.addr
                )));
            }
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
        let (raft, db, wal) = (self.raft.clone(), self.db.clone(), self.wal.clone());
        Box::pin(
            async move {
                if let Err(e) = raft.shutdown().await {
                    tracing::warn!(error = %e, "raft shutdown");
                }
                // The log writer and the state machine let go of the
                // databases a moment after Raft stops; their file locks must be
                // free before this returns so the store can be reopened, and
                // the segments (no lock of their own) no longer written.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while (db.iter().any(|d| d.strong_count() > 0) || wal.strong_count() > 0)
                    && tokio::time::Instant::now() < deadline
                {
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
                if fsm::read(&self.store)
                    .catalog_node(&m.name, None)
                    .1
                    .is_some()
                {
                    tracing::info!(node = %m.name, "deregistering a reaped member");
                    ctx.notify(ReapNode(m.name));
                }
            }
            _ => self.reconcile(ctx),
        }
    }
}

/// Opens the Raft store. A store still held by a Raft instance that is
/// just shutting down in this process (its last handle is dropped on
/// another thread) is waited for, briefly.
async fn open_store(
    dir: Option<&std::path::Path>,
) -> Result<storage::Stores, storage::StorageError> {
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
