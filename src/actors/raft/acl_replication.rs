//! ACL replication (Consul's `leader_acl.go` / `acl_replication.go`): the
//! leader of a secondary datacenter follows the primary's policies, roles
//! and (with `acl.enable_token_replication`) global tokens, and applies
//! the differences through its own Raft as ordinary entries, so the copy
//! is in snapshots, survives restarts, and keeps deciding requests while
//! the primary cannot be reached.
//!
//! One task per table, started when this server becomes the leader of a
//! secondary with ACLs on and stopped when it no longer is. Each task runs
//! rounds: a blocking list of the table in the primary (`min_index` =
//! the primary's index of the last round, so a round starts only when the
//! table changed there, or the wait ran out), a diff with the local copy
//! by content hash, a batch read of what is new or changed, and one
//! `AclReplicate` entry. Failures back off exponentially. What the tasks
//! did is kept for `/v1/acl/replication` (in memory, as Consul: a new
//! leader starts over with a full diff).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use futures::future::BoxFuture;
use thiserror::Error;

use super::{RaftActor, RaftWrite, SharedStore};
use crate::config::RuntimeConfig;
use crate::storage::fsm::read;
use crate::structs::acl_replication::{
    AclReplicationBatch, AclReplicationKind, AclReplicationStatus, REPLICATION_TYPE_POLICIES,
    REPLICATION_TYPE_TOKENS,
};
use crate::structs::query::{Query, QueryResult};
use crate::structs::{
    Command, CommandResult, Consistency, QueryOptions, ReadRequest, ReadResponse, RequestError,
};

/// How long one blocking list waits in the primary before a round runs
/// anyway (which then finds nothing to do).
const BLOCKING_WAIT: Duration = Duration::from_secs(60);

/// Back-off after a failed round: doubled per failure up to the maximum.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A read through the request path (the agent's router), which sends a
/// read for another datacenter over the WAN.
pub type RemoteReads = Arc<
    dyn Fn(ReadRequest) -> BoxFuture<'static, Result<ReadResponse, RequestError>> + Send + Sync,
>;

/// Hands the Raft actor the request path's reads, for the primary.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachRemoteReads(pub RemoteReads);

impl Handler<AttachRemoteReads> for RaftActor {
    type Result = ();
    fn handle(&mut self, msg: AttachRemoteReads, _: &mut Context<Self>) {
        self.replication.reads = Some(msg.0);
    }
}

/// The replication status, written by the tasks and read by the request
/// path (`LocalServer`) when `/v1/acl/replication` reaches this server.
#[derive(Clone, Default)]
pub struct ReplicationStatusHandle(Arc<Mutex<AclReplicationStatus>>);

impl ReplicationStatusHandle {
    pub fn get(&self) -> AclReplicationStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut AclReplicationStatus)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn success(&self, kind: AclReplicationKind, index: u64) {
        self.update(|s| {
            match kind {
                AclReplicationKind::Policies => s.replicated_index = index,
                AclReplicationKind::Roles => s.replicated_role_index = index,
                AclReplicationKind::Tokens => s.replicated_token_index = index,
            }
            s.last_success = Utc::now();
        });
    }

    fn failure(&self, kind: AclReplicationKind, e: &ReplicationError) {
        self.update(|s| {
            s.last_error = Utc::now();
            s.last_error_message = format!("{} replication: {e}", kind.as_str());
        });
    }
}

/// The leader's replication tasks and what they need.
#[derive(Default)]
pub(super) struct Replication {
    /// Also KV replication's way to the source (`kv_replication.rs`).
    pub(super) reads: Option<RemoteReads>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Replication {
    pub(super) fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

#[derive(Debug, Error)]
enum ReplicationError {
    #[error("{0}")]
    Remote(RequestError),
    #[error("applying the round failed: {0}")]
    Apply(String),
    #[error("the primary answered {0} with an unexpected result")]
    Unexpected(&'static str),
    #[error("the replication token may not read token secrets (token replication needs acl = \"write\")")]
    HiddenSecrets,
}

/// What every task of one leadership term shares.
#[derive(Clone)]
struct Follow {
    primary: String,
    token: Option<String>,
    reads: RemoteReads,
    store: SharedStore,
    actor: Addr<RaftActor>,
    status: ReplicationStatusHandle,
}

/// Whether this server should be replicating: ACLs on, a secondary
/// datacenter, and it leads.
fn wanted(config: &RuntimeConfig, leads: bool) -> bool {
    leads && config.acl.enabled && !config.in_primary_datacenter()
}

impl RaftActor {
    /// Starts or stops the tasks to match leadership; runs on the actor's
    /// one-second tick.
    pub(super) fn acl_replication_tick(&mut self, ctx: &mut Context<Self>) {
        let want = wanted(&self.config, self.status().is_leader);
        let running = !self.replication.tasks.is_empty();
        if want == running {
            return;
        }
        if !want {
            tracing::info!("stopping ACL replication");
            self.replication.stop();
            self.replication_status.update(|s| s.running = false);
            return;
        }
        let Some(reads) = self.replication.reads.clone() else {
            return;
        };
        let tokens = self.config.acl.enable_token_replication;
        let primary = self.config.primary_datacenter.clone();
        tracing::info!(source = %primary, tokens, "starting ACL replication");
        if !tokens {
            // As Consul's: the primary's tokens are then resolved there
            // when a request names one (the router's `learn_foreign`),
            // cached for the token TTL, `acl.down_policy` while it is
            // unreachable.
            tracing::info!(
                "acl.enable_token_replication is off: the primary's tokens are resolved in the primary and cached"
            );
        }
        self.replication_status.update(|s| {
            *s = AclReplicationStatus {
                enabled: true,
                running: true,
                source_datacenter: primary.clone(),
                replication_type: if tokens {
                    REPLICATION_TYPE_TOKENS
                } else {
                    REPLICATION_TYPE_POLICIES
                }
                .into(),
                ..Default::default()
            }
        });
        let token = &self.config.acl.tokens.replication;
        if token.is_empty() {
            tracing::warn!(
                "acl.tokens.replication is not set: replication asks the primary with the default token"
            );
        }
        let follow = Follow {
            primary,
            token: (!token.is_empty()).then(|| token.clone()),
            reads,
            store: self.store.clone(),
            actor: ctx.address(),
            status: self.replication_status.clone(),
        };
        let mut kinds = vec![AclReplicationKind::Policies, AclReplicationKind::Roles];
        if tokens {
            kinds.push(AclReplicationKind::Tokens);
        }
        for kind in kinds {
            let f = follow.clone();
            self.replication
                .tasks
                .push(actix::spawn(async move { f.run(kind).await }));
        }
    }
}

impl Follow {
    /// Rounds until aborted.
    async fn run(self, kind: AclReplicationKind) {
        let mut since = 0;
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.round(kind, since).await {
                Ok(index) => {
                    since = index;
                    backoff = MIN_BACKOFF;
                    self.status.success(kind, index);
                }
                Err(e) => {
                    tracing::warn!(kind = kind.as_str(), error = %e, retry_in = ?backoff, "ACL replication round failed");
                    self.status.failure(kind, &e);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn remote(
        &self,
        query: Query,
        min_index: u64,
    ) -> Result<(u64, QueryResult), ReplicationError> {
        let req = ReadRequest {
            opts: QueryOptions {
                dc: Some(self.primary.clone()),
                // Any server of the primary may answer: a round only needs
                // a consistent list, and the next one catches up.
                consistency: Consistency::Stale,
                min_index,
                max_wait: BLOCKING_WAIT,
                token: self.token.clone(),
                near: None,
            },
            query,
        };
        let resp = (self.reads)(req).await.map_err(ReplicationError::Remote)?;
        Ok((resp.meta.index, resp.result))
    }

    /// One round: waits for the primary's table to pass `since`, then
    /// brings the local copy to it. The primary's index it reached.
    async fn round(&self, kind: AclReplicationKind, since: u64) -> Result<u64, ReplicationError> {
        tracing::debug!(kind = kind.as_str(), since, "ACL replication round");
        let mut batch = AclReplicationBatch::new(kind);
        let index = match kind {
            AclReplicationKind::Policies => {
                let (index, result) = self.remote(Query::AclPolicyList, since).await?;
                let QueryResult::AclPolicies(remote) = result else {
                    return Err(ReplicationError::Unexpected("the policy list"));
                };
                let local = read(&self.store).acl_policy_list(None).1;
                let (fetch, deletes) = diff(
                    local.into_iter().map(|p| (p.id, p.hash)),
                    remote.into_iter().map(|p| (p.id, p.hash)),
                );
                batch.deletes = deletes;
                if !fetch.is_empty() {
                    let (_, result) = self.remote(Query::AclPolicyBatch { ids: fetch }, 0).await?;
                    let QueryResult::AclPolicyBatch(policies) = result else {
                        return Err(ReplicationError::Unexpected("the policy batch read"));
                    };
                    batch.policies = policies;
                }
                index
            }
            AclReplicationKind::Roles => {
                let (index, result) = self
                    .remote(Query::AclRoleList { policy: None }, since)
                    .await?;
                let QueryResult::AclRoles(remote) = result else {
                    return Err(ReplicationError::Unexpected("the role list"));
                };
                let local = read(&self.store).acl_role_list(None, None).1;
                let (fetch, deletes) = diff(
                    local.into_iter().map(|r| (r.id, r.hash)),
                    remote.iter().map(|r| (r.id.clone(), r.hash.clone())),
                );
                batch.deletes = deletes;
                batch.roles = remote
                    .into_iter()
                    .filter(|r| fetch.contains(&r.id))
                    .collect();
                index
            }
            AclReplicationKind::Tokens => {
                let query = Query::AclTokenList {
                    policy: None,
                    role: None,
                    service_name: None,
                };
                let (index, result) = self.remote(query, since).await?;
                let QueryResult::AclTokens(remote) = result else {
                    return Err(ReplicationError::Unexpected("the token list"));
                };
                let local = read(&self.store).acl_token_list(None, None, None, None).1;
                // Local tokens on either side are not the primary's to give.
                let (fetch, deletes) = diff(
                    local
                        .into_iter()
                        .filter(|t| !t.local)
                        .map(|t| (t.accessor_id, t.hash)),
                    remote
                        .into_iter()
                        .filter(|t| !t.local)
                        .map(|t| (t.accessor_id, t.hash)),
                );
                batch.deletes = deletes;
                if !fetch.is_empty() {
                    let query = Query::AclTokenBatch {
                        accessor_ids: fetch,
                    };
                    let (_, result) = self.remote(query, 0).await?;
                    let QueryResult::AclTokenBatch(tokens) = result else {
                        return Err(ReplicationError::Unexpected("the token batch read"));
                    };
                    if tokens.iter().any(|t| t.secret_id == HIDDEN_SECRET) {
                        return Err(ReplicationError::HiddenSecrets);
                    }
                    batch.tokens = tokens;
                }
                index
            }
        };
        if !batch.is_empty() {
            let changes = batch.len();
            let resp = self
                .actor
                .send(RaftWrite(Command::AclReplicate(Box::new(batch))))
                .await
                .map_err(|e| ReplicationError::Apply(e.to_string()))?
                .map_err(|e| ReplicationError::Apply(e.to_string()))?;
            if let CommandResult::Rejected(text) = resp.result {
                return Err(ReplicationError::Apply(text));
            }
            tracing::debug!(
                kind = kind.as_str(),
                changes,
                index,
                "replicated ACL changes"
            );
        }
        Ok(index)
    }
}

/// What Consul shows for a secret the caller may not read.
const HIDDEN_SECRET: &str = "<hidden>";

/// From `(id, hash)` pairs of the local copy and of the primary: the IDs
/// to fetch (new there, or different) and the IDs to delete (gone there),
/// each in ID order.
fn diff(
    local: impl IntoIterator<Item = (String, Vec<u8>)>,
    remote: impl IntoIterator<Item = (String, Vec<u8>)>,
) -> (Vec<String>, Vec<String>) {
    let mut local: BTreeMap<String, Vec<u8>> = local.into_iter().collect();
    let mut fetch: Vec<String> = Vec::new();
    for (id, hash) in remote {
        match local.remove(&id) {
            Some(h) if h == hash => {}
            _ => fetch.push(id),
        }
    }
    fetch.sort();
    (fetch, local.into_keys().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, u8)]) -> Vec<(String, Vec<u8>)> {
        v.iter().map(|(id, h)| (id.to_string(), vec![*h])).collect()
    }

    #[test]
    fn the_diff_fetches_new_and_changed_and_deletes_what_is_gone() {
        let local = pairs(&[("a", 1), ("b", 2), ("c", 3)]);
        let remote = pairs(&[("d", 4), ("b", 9), ("a", 1)]);
        let (fetch, deletes) = diff(local, remote);
        assert_eq!(fetch, ["b", "d"]);
        assert_eq!(deletes, ["c"]);
        let same = pairs(&[("a", 1)]);
        assert_eq!(diff(same.clone(), same), (vec![], vec![]));
    }

    #[test]
    fn only_a_secondarys_leader_with_acls_replicates() {
        let mut config = RuntimeConfig {
            datacenter: "dc2".into(),
            primary_datacenter: "dc1".into(),
            ..Default::default()
        };
        assert!(!wanted(&config, true), "ACLs off");
        config.acl.enabled = true;
        assert!(wanted(&config, true));
        assert!(!wanted(&config, false), "a follower");
        config.primary_datacenter = "DC2".into();
        assert!(!wanted(&config, true), "the primary");
    }
}
