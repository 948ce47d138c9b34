//! Elections, started here rather than by openraft's own timer, and only
//! after a Pre-Vote (Raft thesis 9.6) that a quorum granted.
//!
//! Why: openraft 0.9 has no Pre-Vote. A follower cut off for a few
//! seconds kept raising its term with elections it could not win; when it
//! came back, the leader saw the higher term and stepped down, and writes
//! failed for up to a second although nothing was wrong with it. So Raft
//! runs with `enable_elect = false`, and this module owns the election
//! timer: when a voter has heard from no leader for a randomised election
//! timeout, it asks the other voters whether they would vote for it
//! ([`rpc::PreVote`]); its term moves only if a quorum says yes.
//!
//! A voter says yes unless it accepted a leader's entries within
//! `election_timeout_max`, or leads with a quorum acknowledging it within
//! that time, or has a log ahead of the candidate's. That is the rule
//! openraft itself applies to real votes (a vote refused for
//! `election_timeout_max` after the leader was last heard, a vote refused
//! to a shorter log), so a granted Pre-Vote predicts a granted vote, and
//! [`super::timing`]'s lease invariant, which rests on openraft's
//! refusal, is untouched.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use openraft::{BasicNode, LogId, Membership, RaftMetrics, ServerState};
use rand::Rng;
use tokio::time::Instant;

use super::read::LastContact;
use super::timing::Timing;
use crate::rpc::Pool;
use crate::storage::{NodeId, Raft};
use crate::structs::rpc::{self, PreVoteAnswer, PreVoteArgs};

/// What a voter knows when asked for its Pre-Vote.
pub(super) struct Voter {
    /// Since it last accepted a leader's entries (`None`: never).
    pub heard_leader_ms: Option<u64>,
    /// It leads: since a quorum last acknowledged it.
    pub leading_ack_ms: Option<u64>,
    pub last_log_id: Option<LogId<NodeId>>,
}

/// The answer to a Pre-Vote (module docs), with `refusal_ms` =
/// `election_timeout_max`.
pub(super) fn judge(req: &PreVoteArgs, me: &Voter, refusal_ms: u64) -> PreVoteAnswer {
    if let Some(ms_ago) = me.leading_ack_ms.filter(|ms| *ms <= refusal_ms) {
        return PreVoteAnswer::Leading { ms_ago };
    }
    if let Some(ms_ago) = me.heard_leader_ms.filter(|ms| *ms < refusal_ms) {
        return PreVoteAnswer::LeaderHeard { ms_ago };
    }
    // openraft's comparison for votes: the last entry's leader (term)
    // first, then its index.
    if req.last_log_id < me.last_log_id {
        return PreVoteAnswer::LogAhead {
            mine: me.last_log_id,
        };
    }
    PreVoteAnswer::Granted
}

/// This server's side of [`judge`], from Raft's metrics.
pub(super) fn voter(raft: &Raft, contact: &LastContact) -> Voter {
    let m = raft.metrics();
    let m = m.borrow();
    let leading = m.state == ServerState::Leader && m.current_leader == Some(m.id);
    Voter {
        heard_leader_ms: contact.millis_ago(),
        // A sole voter's quorum is itself: always acknowledged.
        leading_ack_ms: leading.then(|| m.millis_since_quorum_ack.unwrap_or(0)),
        last_log_id: raft.data_metrics().borrow().last_log,
    }
}

/// Whether `granted` holds a majority of every configuration of
/// `membership` (two of them during a joint change).
fn is_quorum(membership: &Membership<NodeId, BasicNode>, granted: &BTreeSet<NodeId>) -> bool {
    membership
        .get_joint_config()
        .iter()
        .all(|c| c.iter().filter(|id| granted.contains(id)).count() * 2 > c.len())
}

/// A fresh randomised election timeout. It starts at
/// `election_timeout_max` because voters refuse for that long after they
/// last heard the leader; the spread of `max - min` after it keeps two
/// followers of a dead leader from standing at the same moment.
fn election_timeout(t: &Timing) -> Duration {
    let spread = t.election_max - t.election_min;
    Duration::from_millis(t.election_max + rand::thread_rng().gen_range(0..=spread))
}

fn is_voter(m: &RaftMetrics<NodeId, BasicNode>) -> bool {
    m.membership_config
        .membership()
        .voter_ids()
        .any(|id| id == m.id)
}

/// The election timer: runs until Raft stops.
pub(super) async fn run(raft: Raft, pool: Pool, contact: LastContact, timing: Timing) {
    // The last election this server started (or its start): a failed
    // election waits a fresh timeout, as a heard leader does.
    let mut attempted = Instant::now();
    let mut timeout = election_timeout(&timing);
    loop {
        let m = raft.metrics().borrow().clone();
        if m.running_state.is_err() || m.state == ServerState::Shutdown {
            return;
        }
        let now = Instant::now();
        if m.state == ServerState::Leader || !is_voter(&m) {
            attempted = now;
            tokio::time::sleep(Duration::from_millis(timing.heartbeat)).await;
            continue;
        }
        let sole = m.membership_config.membership().voter_ids().count() == 1;
        let heard = contact
            .millis_ago()
            .and_then(|ms| now.checked_sub(Duration::from_millis(ms)));
        let quiet_since = heard.map_or(attempted, |h| h.max(attempted));
        // A sole voter has nobody to wait for; it retries only while its
        // own vote is being written.
        let wait = if sole {
            Duration::from_millis(timing.heartbeat)
        } else {
            timeout
        };
        if now < quiet_since + wait {
            tokio::time::sleep_until(quiet_since + wait).await;
            continue;
        }
        attempted = now;
        timeout = election_timeout(&timing);
        if sole || pre_vote(&raft, &pool, &m, &timing).await {
            if let Err(e) = raft.trigger().elect().await {
                tracing::debug!(error = %e, "election not started: raft stopped");
                return;
            }
        }
    }
}

/// Asks every other voter for its Pre-Vote; true once a quorum (this
/// server included) granted it.
async fn pre_vote(
    raft: &Raft,
    pool: &Pool,
    m: &RaftMetrics<NodeId, BasicNode>,
    timing: &Timing,
) -> bool {
    let me = m.id;
    let membership = m.membership_config.membership().clone();
    let args = PreVoteArgs {
        candidate: me,
        term: m.current_term + 1,
        last_log_id: raft.data_metrics().borrow().last_log,
    };
    // A voter that does not answer within the shortest election timeout
    // is as good as a refusal: the next timeout tries again.
    let ttl = Duration::from_millis(timing.election_min);
    let mut calls: FuturesUnordered<_> = membership
        .voter_ids()
        .filter(|id| *id != me)
        .filter_map(|id| Some((id, membership.get_node(&id)?.addr.clone())))
        .map(|(id, addr)| {
            let args = &args;
            async move { (id, pool.call::<rpc::PreVote>(&addr, args, ttl).await) }
        })
        .collect();
    let mut granted = BTreeSet::from([me]);
    let mut refusals = Vec::new();
    while let Some((id, answer)) = calls.next().await {
        match answer {
            Ok(PreVoteAnswer::Granted) => {
                granted.insert(id);
                if is_quorum(&membership, &granted) {
                    tracing::info!(
                        term = args.term,
                        granted = ?granted,
                        "pre-vote granted by a quorum: starting an election"
                    );
                    return true;
                }
            }
            Ok(refused) => refusals.push(format!("{id}: {refused:?}")),
            Err(e) => refusals.push(format!("{id}: {e}")),
        }
    }
    // Debug only: a server cut off from the others says this at every
    // election timeout.
    tracing::debug!(
        term = args.term,
        ?refusals,
        "pre-vote not granted: term kept"
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn log(term: u64, index: u64) -> Option<LogId<NodeId>> {
        Some(LogId::new(CommittedLeaderId::new(term, 1), index))
    }

    fn req(last: Option<LogId<NodeId>>) -> PreVoteArgs {
        PreVoteArgs {
            candidate: 2,
            term: 5,
            last_log_id: last,
        }
    }

    fn voter(heard: Option<u64>, leading: Option<u64>, last: Option<LogId<NodeId>>) -> Voter {
        Voter {
            heard_leader_ms: heard,
            leading_ack_ms: leading,
            last_log_id: last,
        }
    }

    #[test]
    fn refused_while_a_leader_is_heard_or_the_log_is_behind() {
        let l = log(3, 10);
        assert_eq!(
            judge(&req(l), &voter(Some(120), None, l), 500),
            PreVoteAnswer::LeaderHeard { ms_ago: 120 }
        );
        assert_eq!(
            judge(&req(l), &voter(None, Some(40), l), 500),
            PreVoteAnswer::Leading { ms_ago: 40 }
        );
        // Same index, older term: behind.
        assert_eq!(
            judge(&req(log(2, 10)), &voter(None, None, l), 500),
            PreVoteAnswer::LogAhead { mine: l }
        );
        assert_eq!(
            judge(&req(log(3, 9)), &voter(Some(900), None, l), 500),
            PreVoteAnswer::LogAhead { mine: l }
        );
        assert_eq!(
            judge(&req(None), &voter(None, None, l), 500),
            PreVoteAnswer::LogAhead { mine: l }
        );
    }

    #[test]
    fn granted_once_the_leader_is_silent_and_the_log_is_as_long() {
        let l = log(3, 10);
        assert_eq!(
            judge(&req(l), &voter(Some(500), None, l), 500),
            PreVoteAnswer::Granted
        );
        assert_eq!(
            judge(&req(log(4, 2)), &voter(None, None, l), 500),
            PreVoteAnswer::Granted
        );
        // A leader that lost its quorum long ago no longer stands in the way.
        assert_eq!(
            judge(&req(l), &voter(None, Some(501), l), 500),
            PreVoteAnswer::Granted
        );
        assert_eq!(
            judge(&req(None), &voter(None, None, None), 500),
            PreVoteAnswer::Granted
        );
    }

    #[test]
    fn a_quorum_is_a_majority_of_every_configuration() {
        let one = Membership::<NodeId, BasicNode>::new(vec![BTreeSet::from([1, 2, 3])], None);
        assert!(!is_quorum(&one, &BTreeSet::from([1])));
        assert!(is_quorum(&one, &BTreeSet::from([1, 3])));
        let joint = Membership::<NodeId, BasicNode>::new(
            vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([3, 4, 5])],
            None,
        );
        assert!(!is_quorum(&joint, &BTreeSet::from([1, 2, 3])));
        assert!(is_quorum(&joint, &BTreeSet::from([1, 3, 4])));
    }

    #[test]
    fn the_timeout_starts_where_votes_are_no_longer_refused() {
        let t = Timing::for_mode(false).unwrap();
        for _ in 0..100 {
            let d = election_timeout(&t).as_millis() as u64;
            assert!((t.election_max..=2 * t.election_max - t.election_min).contains(&d));
        }
    }
}
