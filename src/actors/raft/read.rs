//! The read side of a server, shared by the `Raft` actor and the request
//! path: whether this server leads (within its lease), its Raft status,
//! reads served here, and blocking queries.
//!
//! [`LocalServer`] is the handle the router holds: it answers reads on
//! the caller's own thread (no actor hop) and hands writes to the actor's
//! batcher.

use std::sync::Arc;

use actix::prelude::*;
use openraft::error::RaftError;
use openraft::{BasicNode, ServerState};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::acl_replication::ReplicationStatusHandle;
use super::batch::RaftWrite;
use super::prevote;
use super::timing::Timing;
use super::{RaftActor, RemoveVoter, SharedStore};
use crate::config::RuntimeConfig;
use crate::state::query::execute;
use crate::storage::{fsm, NodeId, Raft};
use crate::structs::acl_replication::AclReplicationStatus;
use crate::structs::query::{Query, QueryResult};
use crate::structs::rpc::{PreVoteAnswer, PreVoteArgs};
use crate::structs::{
    Command, Consistency, QueryMeta, QueryOptions, RaftServer, RaftStatus, ReadRequest,
    ReadResponse, RequestError, StoreStats, WriteResponse,
};

/// When this server last accepted entries from a leader: a follower's
/// `X-Consul-LastContact` (openraft's metrics only have the leader's side).
#[derive(Clone)]
pub struct LastContact {
    base: std::time::Instant,
    /// Milliseconds after `base`, plus one so that 0 means never.
    at: Arc<std::sync::atomic::AtomicU64>,
}

impl LastContact {
    pub(super) fn new() -> Self {
        LastContact {
            base: std::time::Instant::now(),
            at: Arc::default(),
        }
    }

    pub fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64 + 1;
        self.at.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn millis_ago(&self) -> Option<u64> {
        match self.at.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            at => Some((self.base.elapsed().as_millis() as u64 + 1).saturating_sub(at)),
        }
    }
}

/// Notices this process being stopped and continued (SIGSTOP, a paused
/// VM, a host that did not schedule it). openraft's metrics are a snapshot
/// taken when its core last ran: right after such a stop a read can be
/// answered before the core runs again, from a snapshot whose quorum
/// acknowledgement age leaves out the time stopped, so a deposed leader
/// would think its lease holds. A thread of its own (not a task: a busy
/// runtime must not look like a stop) wakes every [`STALL_TICK_MS`]; a
/// wake later than [`STALL_MS`] is a stop, and for a lease after it (or
/// while the thread has not run) default reads take a quorum round.
#[derive(Clone)]
pub struct StallWatch {
    base: std::time::Instant,
    /// Milliseconds after `base` of the thread's last wake, and of the end
    /// of the last stop (0: none).
    last: Arc<std::sync::atomic::AtomicU64>,
    ended: Arc<std::sync::atomic::AtomicU64>,
}

const STALL_TICK_MS: u64 = 10;
const STALL_MS: u64 = 50;

impl StallWatch {
    /// Starts the watching thread; it ends when the last handle is dropped.
    pub(super) fn start() -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let watch = StallWatch {
            base: std::time::Instant::now(),
            last: Arc::default(),
            ended: Arc::default(),
        };
        let (base, last, ended) = (
            watch.base,
            Arc::downgrade(&watch.last),
            Arc::downgrade(&watch.ended),
        );
        let spawned = std::thread::Builder::new()
            .name("stall-watch".into())
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_millis(STALL_TICK_MS));
                let (Some(last), Some(ended)) = (last.upgrade(), ended.upgrade()) else {
                    return;
                };
                let now = base.elapsed().as_millis() as u64 + 1;
                if now.saturating_sub(last.load(Relaxed)) > STALL_MS {
                    ended.store(now, Relaxed);
                }
                last.store(now, Relaxed);
            });
        if let Err(e) = spawned {
            // Without it every default read takes a quorum round: slower,
            // never stale.
            tracing::warn!(error = %e, "no stall watch thread: default reads confirm leadership each time");
        }
        watch
    }

    /// Whether the process may have been stopped within the last
    /// `window_ms` (or is only now running again).
    fn stalled_within(&self, window_ms: u64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.base.elapsed().as_millis() as u64 + 1;
        let (last, ended) = (self.last.load(Relaxed), self.ended.load(Relaxed));
        last == 0
            || now.saturating_sub(last) > STALL_MS
            || (ended != 0 && now.saturating_sub(ended) <= window_ms)
    }
}

/// How long a leader keeps serving without hearing from a quorum. Past
/// it the leader acts as if there were none (Consul's leader lease): new
/// writes and default reads fail fast with `No cluster leader` instead of
/// waiting on a commit that cannot come.
/// See [`super::timing`] for why it is shorter than `election_timeout_min`.
pub(super) fn leader_lease(config: &RuntimeConfig) -> u64 {
    // RaftActor::start refuses to start on an invalid timing, so this
    // cannot fail on a running server; a lease of 0 (the leader answers
    // as if there were none) would be the safe side regardless.
    super::timing::Timing::for_mode(config.dev).map_or(0, |t| t.lease)
}

/// This server is named leader (its own committed vote) but may not act
/// as one: it is not in Raft's leader state, or, with peers, no quorum
/// acknowledged it within the lease. A restarted former leader is the
/// first case: openraft names the leader of the last committed vote, its
/// own from before the restart, until the new leader's first message.
pub(super) fn lease_lost(
    m: &openraft::RaftMetrics<NodeId, BasicNode>,
    me: NodeId,
    lease_ms: u64,
) -> bool {
    m.current_leader == Some(me)
        && (m.state != ServerState::Leader
            || (m.membership_config.membership().voter_ids().count() > 1
                && m.millis_since_quorum_ack.is_some_and(|ms| ms > lease_ms)))
}

/// Whether this server may answer a default-mode read from its own state
/// (Consul's leader lease): it leads; it has applied an entry of its own
/// term, so every entry its predecessors committed (a new leader learns
/// their commit index only by committing its own first entry); and, with
/// peers, a quorum acknowledged it within the lease (a new leader has no
/// lease before its first acknowledgement) and the process was not
/// stopped since ([`StallWatch`]).
pub(super) fn lease_holds(
    m: &openraft::RaftMetrics<NodeId, BasicNode>,
    me: NodeId,
    lease_ms: u64,
    stalls: &StallWatch,
) -> bool {
    let alone = m.membership_config.membership().voter_ids().count() <= 1;
    m.current_leader == Some(me)
        && m.state == ServerState::Leader
        && m.last_applied
            .is_some_and(|l| l.leader_id.get_term() == m.current_term)
        && (alone
            || (m.millis_since_quorum_ack.is_some_and(|ms| ms <= lease_ms)
                && !stalls.stalled_within(lease_ms)))
}

/// Raft's view from this server's metrics; a leader past its lease
/// reports no leader.
pub(crate) fn raft_status(
    raft: &Raft,
    me: NodeId,
    lease_ms: u64,
    contact: &LastContact,
) -> RaftStatus {
    let mut m = raft.metrics().borrow().clone();
    if lease_lost(&m, me, lease_ms) {
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
                _ if *id == me => m.last_log_index,
                Some(r) => r.get(id).and_then(|l| l.map(|l| l.index)),
                None => None,
            },
        })
        .collect();
    RaftStatus {
        servers,
        leader_addr: m.current_leader.and_then(addr_of),
        is_leader: m.current_leader == Some(me),
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
        last_contact_ms: if m.current_leader == Some(me) {
            0
        } else {
            contact.millis_ago().unwrap_or(0)
        },
    }
}

/// Reads this server may answer on the caller's own thread: a stale read
/// always, a default read while it leads and its lease holds. Saves the
/// two actor hops (four thread switches) a read otherwise takes; anything
/// else (forwarding, consistent reads) still goes through the actors.
/// Whether this server leads (within its lease) and where the leader is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leadership {
    pub leads: bool,
    pub leader_addr: Option<String>,
}

#[derive(Clone)]
pub struct LocalServer {
    actor: Addr<RaftActor>,
    raft: Raft,
    store: SharedStore,
    contact: LastContact,
    me: NodeId,
    lease_ms: u64,
    /// `election_timeout_max`: how long after a leader was heard this
    /// server refuses Pre-Votes.
    refusal_ms: u64,
    stalls: StallWatch,
    acl_replication: ReplicationStatusHandle,
    kv_replication: super::KvReplicationHandle,
}

impl LocalServer {
    pub(crate) fn new(
        actor: Addr<RaftActor>,
        raft: Raft,
        store: SharedStore,
        contact: LastContact,
        me: NodeId,
        timing: Timing,
        stalls: StallWatch,
    ) -> Self {
        LocalServer {
            actor,
            raft,
            store,
            contact,
            me,
            lease_ms: timing.lease,
            refusal_ms: timing.election_max,
            stalls,
            acl_replication: ReplicationStatusHandle::default(),
            kv_replication: Default::default(),
        }
    }

    /// The status the leader's KV replication keeps.
    pub(crate) fn with_kv_replication(mut self, status: super::KvReplicationHandle) -> Self {
        self.kv_replication = status;
        self
    }

    /// What this server's KV replication did (`/v1/agent/self`).
    pub fn kv_replication(&self) -> super::KvReplicationStatus {
        self.kv_replication.get()
    }

    /// The status the leader's ACL replication keeps.
    pub(crate) fn with_acl_replication(mut self, status: ReplicationStatusHandle) -> Self {
        self.acl_replication = status;
        self
    }

    /// What this server's ACL replication did (Consul's answer for
    /// `/v1/acl/replication`, which the leader gives).
    pub fn acl_replication(&self) -> AclReplicationStatus {
        self.acl_replication.get()
    }

    /// The Raft node, for the Raft messages other servers send.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// This server's answer to another's Pre-Vote.
    pub fn pre_vote(&self, req: &PreVoteArgs) -> PreVoteAnswer {
        let answer = prevote::judge(
            req,
            &prevote::voter(&self.raft, &self.contact),
            self.refusal_ms,
        );
        tracing::debug!(
            candidate = req.candidate,
            term = req.term,
            ?answer,
            "pre-vote asked"
        );
        answer
    }

    /// When this server last accepted entries from a leader.
    pub fn contact(&self) -> &LastContact {
        &self.contact
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn status(&self) -> RaftStatus {
        raft_status(&self.raft, self.me, self.lease_ms, &self.contact)
    }

    /// What the state store holds and serves now, for `/v1/agent/self`.
    pub fn store_stats(&self) -> StoreStats {
        let s = fsm::read(&self.store);
        StoreStats {
            kv_tombstones: s.kv_tombstones(),
            queries_blocking: s.blocking_queries(),
        }
    }

    /// Who leads, as the request path needs it for every write: read from
    /// the metrics in place, without the copy [`Self::status`] makes.
    pub fn leadership(&self) -> Leadership {
        let m = self.raft.metrics();
        let m = m.borrow();
        if lease_lost(&m, self.me, self.lease_ms) {
            return Leadership::default();
        }
        Leadership {
            leads: m.current_leader == Some(self.me),
            leader_addr: m.current_leader.and_then(|id| {
                m.membership_config
                    .membership()
                    .get_node(&id)
                    .map(|n| n.addr.clone())
            }),
        }
    }

    /// Serves a read here: a stale one always, any other only while this
    /// server leads (a consistent one after a quorum round, a default one
    /// too when the lease does not hold on its own: just elected, or its
    /// first entry not yet applied).
    pub async fn read(&self, req: ReadRequest) -> Result<ReadResponse, RequestError> {
        let status = self.status();
        if req.opts.consistency != Consistency::Stale && !status.is_leader {
            return Err(RequestError::NoLeader);
        }
        let round = match req.opts.consistency {
            Consistency::Consistent => true,
            Consistency::Default => !lease_holds(
                &self.raft.metrics().borrow(),
                self.me,
                self.lease_ms,
                &self.stalls,
            ),
            Consistency::Stale => false,
        };
        if round {
            self.raft.ensure_linearizable().await.map_err(|e| match e {
                RaftError::APIError(_) => RequestError::NoLeader,
                RaftError::Fatal(f) => RequestError::Internal(format!("raft: {f}")),
            })?;
        }
        let (index, result) = blocking_query(&self.store, &req.opts, &req.query).await;
        Ok(ReadResponse {
            meta: QueryMeta {
                index,
                known_leader: status.leader_addr.is_some(),
                last_contact_ms: status.last_contact_ms,
                consistency: req.opts.consistency,
                results_filtered: false,
            },
            result,
        })
    }

    /// A write through this server's batcher (it must lead).
    pub async fn write(&self, command: Command) -> Result<WriteResponse, RequestError> {
        self.actor
            .send(RaftWrite(command))
            .await
            .map_err(|_| RequestError::ShuttingDown)?
    }

    /// Removes a server from the Raft configuration (this server must lead).
    pub async fn remove_voter(&self, id: NodeId) -> Result<(), RequestError> {
        self.actor
            .send(RemoveVoter(id))
            .await
            .map_err(|_| RequestError::ShuttingDown)?
    }

    /// The read's headers if this server may serve `consistency` now.
    fn may_serve(&self, consistency: Consistency) -> Option<QueryMeta> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let leading = m.current_leader == Some(self.me) && !lease_lost(&m, self.me, self.lease_ms);
        let lease = lease_holds(&m, self.me, self.lease_ms, &self.stalls);
        let meta = |known_leader: bool, last_contact_ms: u64| QueryMeta {
            index: 0,
            known_leader,
            last_contact_ms,
            consistency,
            results_filtered: false,
        };
        match consistency {
            Consistency::Default if lease => Some(meta(true, 0)),
            Consistency::Stale if leading => Some(meta(true, 0)),
            // A follower's stale read: the headers say how far behind it may be.
            Consistency::Stale if m.current_leader.is_some() => {
                Some(meta(true, self.contact.millis_ago().unwrap_or(0)))
            }
            _ => None,
        }
    }

    /// Whether [`Self::try_read`] would serve `consistency` here now: the
    /// request path authorizes only what this server serves.
    pub fn serves_now(&self, consistency: Consistency) -> bool {
        self.may_serve(consistency).is_some()
    }

    /// Serves the read here, or `None` when it must take the actor path.
    pub async fn try_read(&self, req: &ReadRequest) -> Option<ReadResponse> {
        let mut meta = self.may_serve(req.opts.consistency)?;
        let (index, result) = blocking_query(&self.store, &req.opts, &req.query).await;
        meta.index = index;
        Some(ReadResponse { meta, result })
    }
}

/// A read served by this server alone (see [`LocalServer::read`]).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ReadResponse, RequestError>")]
pub struct RaftRead(pub ReadRequest);

impl Handler<RaftRead> for RaftActor {
    type Result = ResponseFuture<Result<ReadResponse, RequestError>>;

    fn handle(&mut self, msg: RaftRead, ctx: &mut Context<Self>) -> Self::Result {
        let local = LocalServer::new(
            ctx.address(),
            self.raft.clone(),
            self.store.clone(),
            self.contact.clone(),
            self.node_id,
            self.timing,
            self.stalls.clone(),
        );
        Box::pin(async move { local.read(msg.0).await })
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
    let gauge = (opts.min_index > 0).then(|| fsm::read(store).blocking_gauge());
    loop {
        let waiter = Arc::new(Notify::new());
        let blocking = opts.min_index > 0 && Instant::now() < deadline;
        let (index, result) = {
            let s = fsm::read(store);
            let (index, mut result) = execute(&s, query, blocking.then_some(&waiter));
            // Sorted under the same read lock: the coordinates match the rows.
            if let Some(near) = &opts.near {
                s.sort_by_distance(near, &mut result);
            }
            (index, result)
        };
        if !blocking || index > opts.min_index {
            return (index.max(1), result);
        }
        // The answer is read again on waking: a waiting query must not
        // hold a copy of it (a watched prefix's entries, a large value)
        // for the minutes it may wait.
        drop(result);
        let _waiting = gauge.as_ref().map(Waiting::new);
        tokio::select! {
            _ = waiter.notified() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// One count on the store's gauge of waiting blocking queries, held while
/// a query sleeps (dropped with it when the client goes away).
struct Waiting(Arc<std::sync::atomic::AtomicUsize>);

impl Waiting {
    fn new(gauge: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        gauge.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Waiting(gauge.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
