//! The leader's ACL duties (Consul's `leader.go` `initializeACLs` and its
//! expired-token reaper), when `acl.enabled`: once per leadership term,
//! store the builtin policies and the anonymous token and, in the primary
//! datacenter, install `acl.tokens.initial_management`; every
//! `REAP_INTERVAL`, delete the tokens that expired (in a secondary only
//! the local ones: the primary reaps global tokens and replication
//! deletes them here). Times and IDs are drawn here, on the leader, and
//! travel in the commands so that every server applies the same write.

use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::{RaftActor, SharedStore};
use crate::config::RuntimeConfig;
use crate::storage::fsm::read;
use crate::structs::acl::{AclLink, AclToken, GLOBAL_MANAGEMENT_POLICY_ID};
use crate::structs::{Command, CommandResult};

/// How often expired tokens are reaped (Consul's reaper runs on a timer of
/// this order; tokens read as gone once expired anyway).
const REAP_INTERVAL: Duration = Duration::from_secs(30);

/// Consul's description of the token made from `initial_management`.
const INITIAL_MANAGEMENT_DESCRIPTION: &str = "Initial Management Token";

/// What the leader tracks between runs of its ACL duties.
#[derive(Default)]
pub(super) struct AclDuties {
    /// The term whose initialization succeeded (or is under way).
    initialized_term: Option<u64>,
    last_reap: Option<Instant>,
}

impl RaftActor {
    /// Runs from the leader's reconcile (on leadership and every second);
    /// does only what is due.
    pub(super) fn acl_duties(&mut self, ctx: &mut Context<Self>) {
        if !self.config.acl.enabled {
            return;
        }
        let term = self.raft.metrics().borrow().current_term;
        let now = Utc::now();
        if self.acl.initialized_term != Some(term) {
            self.acl.initialized_term = Some(term);
            let mut writes = vec![Command::AclInitialize { now }];
            // A secondary gets its management tokens from the primary.
            if self.config.in_primary_datacenter() {
                writes.extend(initial_management(&self.store, &self.config, now));
            }
            for command in writes {
                let write = self.write(command, ctx);
                ctx.spawn(write.into_actor(self).map(move |res, act, _| {
                    if let Some(e) = failure(res) {
                        tracing::warn!(error = %e, "ACL initialization write failed; retrying");
                        // Retried on the next reconcile tick.
                        act.acl.initialized_term = None;
                    }
                }));
            }
        }
        if self
            .acl
            .last_reap
            .is_none_or(|t| t.elapsed() >= REAP_INTERVAL)
        {
            self.acl.last_reap = Some(Instant::now());
            let reap = Command::AclTokensReapExpired {
                now,
                local_only: !self.config.in_primary_datacenter(),
            };
            let write = self.write(reap, ctx);
            ctx.spawn(write.into_actor(self).map(|res, _, _| match res {
                Ok(r) => {
                    if let CommandResult::AclTokensReaped(ids) = r.result {
                        if !ids.is_empty() {
                            tracing::info!(count = ids.len(), "reaped expired ACL tokens");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reaping expired ACL tokens failed"),
            }));
        }
    }
}

/// The error of a write that failed or that the state store refused.
fn failure(
    res: Result<crate::structs::WriteResponse, crate::structs::RequestError>,
) -> Option<String> {
    match res {
        Err(e) => Some(e.to_string()),
        Ok(r) => match r.result {
            CommandResult::Rejected(text) => Some(text),
            _ => None,
        },
    }
}

/// The write that installs `acl.tokens.initial_management`, unless it is
/// unset or a token already has that secret. As in Consul, it bootstraps
/// ACLs when they are not yet (so `/v1/acl/bootstrap` is then refused).
fn initial_management(
    store: &SharedStore,
    config: &RuntimeConfig,
    now: DateTime<Utc>,
) -> Option<Command> {
    let secret = &config.acl.tokens.initial_management;
    if secret.is_empty() {
        return None;
    }
    let s = read(store);
    if s.acl_token_get_by_secret(secret, None).1.is_some() {
        return None;
    }
    let bootstrapped = s.acl_bootstrap_state(None).1.is_some();
    drop(s);
    if uuid::Uuid::parse_str(secret).is_err() {
        tracing::warn!("acl.tokens.initial_management is not a UUID; Consul deprecates that");
    }
    let token = AclToken {
        accessor_id: uuid::Uuid::new_v4().to_string(),
        secret_id: secret.clone(),
        description: INITIAL_MANAGEMENT_DESCRIPTION.into(),
        policies: vec![AclLink::new(GLOBAL_MANAGEMENT_POLICY_ID, "")],
        create_time: now,
        ..Default::default()
    };
    Some(if bootstrapped {
        Command::AclTokenSet {
            token,
            create: true,
        }
    } else {
        Command::AclBootstrap {
            token,
            reset_index: None,
        }
    })
}
