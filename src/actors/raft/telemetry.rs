//! What a server reports to telemetry: Raft's state changes and indexes
//! (from openraft's metrics, as they change), the leader's last contact
//! with a quorum (sampled each second), and the state store's usage and
//! waiting blocking queries (read when shown).

use std::sync::Arc;

use openraft::{BasicNode, RaftMetrics, ServerState};

use crate::metrics::{counter, gauge, summary, Counter, Gauge, Static, Summary};
use crate::storage::fsm::{self, SharedStore};
use crate::storage::NodeId;

static LEADER: Static<Counter> = counter("raft.state.leader");
static CANDIDATE: Static<Counter> = counter("raft.state.candidate");
static FOLLOWER: Static<Counter> = counter("raft.state.follower");
static APPLIED_INDEX: Static<Gauge> = gauge("raft.applied_index");
static LAST_INDEX: Static<Gauge> = gauge("raft.last_index");
static LOG_ENTRIES: Static<Gauge> = gauge("raft.log.entries");
static LAST_CONTACT: Static<Summary> = summary("raft.leader.lastContact");

/// Follows openraft's metrics: counts each entry into a state, as
/// hashicorp/raft's `raft.state.*` counters do.
#[derive(Default)]
pub(super) struct RaftTelemetry {
    state: Option<ServerState>,
}

impl RaftTelemetry {
    pub(super) fn observe(&mut self, m: &RaftMetrics<NodeId, BasicNode>) {
        if self.state != Some(m.state) {
            match m.state {
                ServerState::Leader => LEADER.get().inc(),
                ServerState::Candidate => CANDIDATE.get().inc(),
                ServerState::Follower => FOLLOWER.get().inc(),
                ServerState::Learner | ServerState::Shutdown => {}
            }
            self.state = Some(m.state);
        }
        let last = m.last_log_index.unwrap_or(0);
        APPLIED_INDEX
            .get()
            .set(m.last_applied.map_or(0, |l| l.index) as f64);
        LAST_INDEX.get().set(last as f64);
        let purged = m.purged.map_or(0, |l| l.index);
        LOG_ENTRIES.get().set(last.saturating_sub(purged) as f64);
    }
}

/// The leader's time since a quorum last acknowledged it (Consul's
/// `raft.leader.lastContact`, which its lease check samples).
pub(super) fn sample_last_contact(m: &RaftMetrics<NodeId, BasicNode>) {
    if m.state == ServerState::Leader {
        if let Some(ms) = m.millis_since_quorum_ack {
            LAST_CONTACT.get().observe(ms as f64);
        }
    }
}

/// Shows `store`'s usage while the store lives.
pub(super) fn watch_store(store: &SharedStore) {
    let weak = Arc::downgrade(store);
    let reg = crate::metrics::global();
    let g = |name: &str| reg.gauge(name);
    let (nodes, services, instances, kv, sessions, blocking) = (
        g("state.nodes"),
        g("state.services"),
        g("state.service_instances"),
        g("state.kv_entries"),
        g("session_ttl.active"),
        g("rpc.queries_blocking"),
    );
    let by_status = |s: &str| reg.gauge_with("state.checks", vec![("status".into(), s.into())]);
    let (passing, warning, critical) = (
        by_status("passing"),
        by_status("warning"),
        by_status("critical"),
    );
    reg.collect_with(Box::new(move || {
        let Some(store) = weak.upgrade() else {
            return false;
        };
        let s = fsm::read(&store);
        let u = s.usage();
        for (gauge, v) in [
            (&nodes, u.nodes),
            (&services, u.services),
            (&instances, u.service_instances),
            (&kv, u.kv_entries),
            (&sessions, u.sessions),
            (&blocking, s.blocking_queries()),
            (&passing, u.checks_passing),
            (&warning, u.checks_warning),
            (&critical, u.checks_critical),
        ] {
            gauge.set(v as f64);
        }
        true
    }));
}
