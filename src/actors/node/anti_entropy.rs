//! Anti-entropy (Consul's `agent/ae` and `local/state.go` sync): this
//! agent's services and checks are the truth for its node. A change is
//! written to the catalog at once (the caller hears back once it is in);
//! a partial sync sends what changed within 100 ms; a full pass every
//! minute (scaled with the cluster's size) rewrites everything and removes
//! catalog entries of this node the agent does not have. Failed syncs back
//! off.
//!
//! Each service and check is written with its own token (see
//! `Local::registrations`), a removed service with the token it had; the
//! node row, node checks and removed checks with the agent's. A write its token may not make (the token lacks the
//! permission, or was deleted) is logged once and passed over, so that
//! one service with a bad token does not hold back the others (as
//! Consul's `syncService`); the pass is retried with a slower back-off
//! until an operator fixes the token.

use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use super::{LocalError, NodeActor, Router};
use crate::structs::catalog::DeregisterRequest;
use crate::structs::query::{Query, QueryResult};
use crate::structs::{Command, Consistency, QueryOptions, ReadRequest, RequestError, WriteRequest};

const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The back-off's cap after a pass ACLs blocked in part: an operator
/// fixes tokens in seconds, and a deleted token should not cost the
/// servers a full pass every 2 s.
const MAX_BLOCKED_BACKOFF: Duration = Duration::from_secs(10);

/// One catalog write of anti-entropy, the token it goes with and what it
/// syncs (for the log when ACLs block it).
pub(super) struct SyncWrite {
    command: Command,
    token: Option<String>,
    what: String,
}

/// How a pass went, entry by entry.
#[derive(Debug, Default)]
pub(super) struct SyncReport {
    /// A write failed for another reason than ACLs (no leader, no
    /// server): the pass stopped there.
    failed: bool,
    /// Entries written.
    written: Vec<String>,
    /// Entries ACLs refused, and why.
    blocked: Vec<(String, String)>,
    /// `EnableTagOverride` services whose catalog tags (changed by
    /// someone else) were kept: the local state takes them.
    adopted: Vec<(String, Vec<String>)>,
}

impl SyncReport {
    fn ok(&self) -> bool {
        !self.failed && self.blocked.is_empty()
    }

    fn merge(mut self, other: SyncReport) -> SyncReport {
        self.failed |= other.failed;
        self.written.extend(other.written);
        self.blocked.extend(other.blocked);
        self.adopted.extend(other.adopted);
        self
    }
}

/// Writes to this datacenter in order. A write refused by ACLs is passed
/// over; any other failure stops the pass.
async fn write_all(router: &Router, writes: Vec<SyncWrite>) -> SyncReport {
    let mut report = SyncReport::default();
    for mut w in writes {
        if let Command::Register(req) = &mut w.command {
            if let Some(svc) = req.service.as_mut().filter(|s| s.enable_tag_override) {
                let theirs = catalog_tags(router, &req.node, &svc.id, w.token.clone()).await;
                if let Some(tags) = theirs.filter(|t| *t != svc.tags) {
                    report.adopted.push((svc.id.clone(), tags.clone()));
                    svc.tags = tags;
                }
            }
        }
        let req = WriteRequest {
            dc: None,
            command: w.command,
            token: w.token,
        };
        match router.write(req).await {
            Ok(_) => report.written.push(w.what),
            Err(e @ (RequestError::PermissionDenied(_) | RequestError::AclNotFound)) => {
                report.blocked.push((w.what, e.to_string()));
            }
            Err(e) => {
                tracing::debug!(entry = %w.what, error = %e, "catalog sync failed; will retry");
                report.failed = true;
                return report;
            }
        }
    }
    report
}

/// The tags the catalog holds for this node's service `id`, None when it
/// holds no such service or cannot be read: an `EnableTagOverride`
/// service keeps tags others set there, so each write of it reads first.
async fn catalog_tags(
    router: &Router,
    node: &str,
    id: &str,
    token: Option<String>,
) -> Option<Vec<String>> {
    let read = ReadRequest {
        opts: QueryOptions {
            consistency: Consistency::Stale,
            token,
            ..Default::default()
        },
        query: Query::CatalogNode {
            node: node.to_string(),
        },
    };
    match router.read(read).await.ok()?.result {
        QueryResult::NodeServices(Some(ns)) => ns.services.get(id).map(|s| s.tags.clone()),
        _ => None,
    }
}

/// This node's services (other than `consul`) and checks (other than
/// `serfHealth`) in the catalog, as deregistrations, read as the agent:
/// what it may not read, it does not remove. None when the catalog
/// cannot be read.
async fn catalog_entries(
    router: &Router,
    node: &str,
    agent: Option<String>,
) -> Option<Vec<DeregisterRequest>> {
    let read = ReadRequest {
        opts: QueryOptions {
            consistency: Consistency::Stale,
            token: agent,
            ..Default::default()
        },
        query: Query::CatalogNode {
            node: node.to_string(),
        },
    };
    let resp = router.read(read.clone()).await.ok()?;
    let mut found = Vec::new();
    if let QueryResult::NodeServices(Some(ns)) = resp.result {
        found.extend(
            ns.services
                .keys()
                .filter(|id| *id != "consul")
                .map(|id| DeregisterRequest {
                    node: node.to_string(),
                    service_id: id.clone(),
                    ..Default::default()
                }),
        );
    }
    let read = ReadRequest {
        query: Query::HealthNode {
            node: node.to_string(),
        },
        ..read
    };
    if let Ok(resp) = router.read(read).await {
        if let QueryResult::Checks(checks) = resp.result {
            found.extend(
                checks
                    .iter()
                    .filter(|c| c.check_id != "serfHealth")
                    .map(|c| DeregisterRequest {
                        node: node.to_string(),
                        check_id: c.check_id.clone(),
                        ..Default::default()
                    }),
            );
        }
    }
    Some(found)
}

impl NodeActor {
    /// The catalog writes that bring these services ("" = node checks) up
    /// to date; a service no longer here is deregistered.
    pub(super) fn writes_for(&mut self, ids: &[String]) -> Vec<SyncWrite> {
        let removed = std::mem::take(&mut self.local.removed_checks);
        let node = self.config.node_name.clone();
        let agent = self.router.agent_token();
        let removal = |req: DeregisterRequest, what: String| SyncWrite {
            command: Command::Deregister(req),
            token: agent.clone(),
            what,
        };
        let mut writes: Vec<SyncWrite> = removed
            .into_iter()
            .map(|check_id| {
                let what = format!("check {check_id:?}");
                let req = DeregisterRequest {
                    node: node.clone(),
                    check_id,
                    ..Default::default()
                };
                removal(req, what)
            })
            .collect();
        let node_row = self.node_row();
        let router = &self.router;
        for id in ids {
            if !id.is_empty() && !self.local.services.contains_key(id) {
                let req = DeregisterRequest {
                    node: node.clone(),
                    service_id: id.clone(),
                    ..Default::default()
                };
                let mut w = removal(req, format!("service {id:?}"));
                if let Some((own, from_file)) = self.local.removed_tokens.get(id) {
                    w.token = router.registration_token(own.as_deref(), *from_file);
                }
                writes.push(w);
                continue;
            }
            let what = if id.is_empty() {
                "node".to_string()
            } else {
                format!("service {id:?}")
            };
            let regs = self.local.registrations(id, &node_row, |own, from_file| {
                router.registration_token(own, from_file)
            });
            writes.extend(
                regs.into_iter()
                    .enumerate()
                    .map(|(i, (req, token))| SyncWrite {
                        command: Command::Register(req),
                        token,
                        what: match i {
                            0 => what.clone(),
                            _ => format!("{what} check group {i} (own token)"),
                        },
                    }),
            );
        }
        writes
    }

    /// The next full anti-entropy pass: a minute, scaled up with the
    /// cluster's size past 128 members (Consul's `aeScale`), staggered so
    /// agents started together do not sync together.
    pub(super) fn schedule_full_sync(&mut self, ctx: &mut Context<Self>) {
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

    /// Logs what ACLs newly block or no longer block (once each, not at
    /// every retry); backs off after a failed or blocked pass, resets
    /// after a good one.
    pub(super) fn sync_done(&mut self, report: &SyncReport) {
        for (id, tags) in &report.adopted {
            if self.local.adopt_tags(id, tags) {
                tracing::debug!(service = %id, "kept the catalog's tags (enable_tag_override)");
                self.services_changed();
            }
        }
        for what in &report.written {
            if self.blocked.remove(what) {
                tracing::info!(entry = %what, "catalog sync no longer blocked by ACLs");
            }
        }
        for (what, error) in &report.blocked {
            if self.blocked.insert(what.clone()) {
                tracing::warn!(entry = %what, %error, "catalog sync blocked by ACLs; retrying");
            }
        }
        if report.ok() {
            self.backoff = Duration::ZERO;
            self.retry_at = None;
            return;
        }
        let cap = if report.failed {
            MAX_BACKOFF
        } else {
            MAX_BLOCKED_BACKOFF
        };
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(200), cap);
        self.retry_at = Some(Instant::now() + self.backoff);
    }

    /// Writes these services' entries now and answers once they are in
    /// the catalog (as Consul's API users expect to read their write); if
    /// that fails, anti-entropy retries and the caller still succeeds.
    pub(super) fn write_through(
        &mut self,
        ids: Vec<String>,
    ) -> ResponseActFuture<Self, Result<(), LocalError>> {
        let upstream = self.router.clone();
        for id in &ids {
            self.local.dirty.remove(id);
        }
        let writes = self.writes_for(&ids);
        // A pass in flight may write what it read of these entries before
        // this change, after this write: they are written again once it
        // is done (sync_changes waits for it).
        let raced = self.syncing;
        let fut = async move { write_all(&upstream, writes).await };
        Box::pin(fut.into_actor(self).map(move |report, act, _| {
            let ok = report.ok();
            act.sync_done(&report);
            if ok && raced {
                act.local.dirty.extend(ids);
            } else if !ok {
                tracing::debug!("local change not yet in the catalog; anti-entropy will retry");
                act.local.dirty.extend(ids);
                // Removed checks it carried are the full sync's to redo.
                act.dirty = true;
            }
            Ok(())
        }))
    }

    /// The partial sync: what changed since the last one, at once.
    pub(super) fn sync_changes(&mut self, ctx: &mut Context<Self>) {
        if self.syncing || (self.local.dirty.is_empty() && self.local.removed_checks.is_empty()) {
            return;
        }
        let upstream = self.router.clone();
        let ids: Vec<String> = std::mem::take(&mut self.local.dirty).into_iter().collect();
        let writes = self.writes_for(&ids);
        self.syncing = true;
        let fut = async move { write_all(&upstream, writes).await };
        ctx.spawn(fut.into_actor(self).map(move |report, act, _| {
            act.syncing = false;
            act.dirty |= !report.ok();
            act.sync_done(&report);
        }));
    }

    /// Anti-entropy: write every local service and check, then remove
    /// services and checks of this node that the agent no longer has.
    pub(super) fn sync_all(&mut self, ctx: &mut Context<Self>) {
        if self.syncing {
            self.dirty = true;
            return;
        }
        let router = self.router.clone();
        // The node row first: an agent with no services is still a node.
        let mut ids: Vec<String> = vec![String::new()];
        ids.extend(self.local.services.keys().cloned());
        self.local.dirty.clear();
        self.local.output_dirty.clear();
        // The removal pass below covers removed checks.
        self.local.removed_checks.clear();
        let writes = self.writes_for(&ids);
        let node = self.config.node_name.clone();
        let agent = self.router.agent_token();
        // Services removed here go with the token they had.
        let removed: std::collections::BTreeMap<String, Option<String>> = self
            .local
            .removed_tokens
            .iter()
            .map(|(id, (own, from_file))| {
                let token = self.router.registration_token(own.as_deref(), *from_file);
                (id.clone(), token)
            })
            .collect();
        let cleared: Vec<String> = removed.keys().cloned().collect();
        let upstream = router.clone();
        let fut = async move {
            if crate::failpoint::pause("anti_entropy_pass").await.is_err() {
                let report = SyncReport {
                    failed: true,
                    ..Default::default()
                };
                return (report, Vec::new());
            }
            // The node row comes from the leader's reconcile; until it
            // exists (or while there is no leader) retry later.
            let report = write_all(&router, writes).await;
            if report.failed {
                return (report, Vec::new());
            }
            match catalog_entries(&router, &node, agent).await {
                Some(found) => (report, found),
                None => (
                    SyncReport {
                        failed: true,
                        ..report
                    },
                    Vec::new(),
                ),
            }
        };
        let fut = fut.into_actor(self).then(move |(report, found), act, _| {
            // What to remove is decided against the local state as it is
            // now, not as it was when the pass began: a service or check
            // registered while the pass ran is in the catalog read above
            // and was never stale.
            let removals: Vec<SyncWrite> = found
                .into_iter()
                .filter(|req| {
                    if req.service_id.is_empty() {
                        !act.local.checks.contains_key(&req.check_id)
                    } else {
                        !act.local.services.contains_key(&req.service_id)
                    }
                })
                .map(|req| SyncWrite {
                    what: format!(
                        "stale entry {:?}",
                        format!("{}{}", req.service_id, req.check_id)
                    ),
                    token: removed
                        .get(&req.service_id)
                        .cloned()
                        .unwrap_or_else(|| act.router.agent_token()),
                    command: Command::Deregister(req),
                })
                .collect();
            async move { report.merge(write_all(&upstream, removals).await) }.into_actor(act)
        });
        self.syncing = true;
        self.dirty = false;
        ctx.spawn(fut.map(move |report, act, _| {
            act.syncing = false;
            act.dirty |= !report.ok();
            if report.ok() {
                // The catalog has none of them now.
                for id in &cleared {
                    act.local.removed_tokens.remove(id);
                }
            }
            act.sync_done(&report);
        }));
    }
}
