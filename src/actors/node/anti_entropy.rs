//! Anti-entropy (Consul's `agent/ae` and `local/state.go` sync): this
//! agent's services and checks are the truth for its node. A change is
//! written to the catalog at once (the caller hears back once it is in);
//! a partial sync sends what changed within 100 ms; a full pass every
//! minute (scaled with the cluster's size) rewrites everything and removes
//! catalog entries of this node the agent does not have. Failed syncs back
//! off.

use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use super::{LocalError, NodeActor};
use crate::structs::catalog::DeregisterRequest;
use crate::structs::query::{Query, QueryResult};
use crate::structs::{Command, Consistency, QueryOptions, ReadRequest};

const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl NodeActor {
    /// The catalog writes that bring these services ("" = node checks) up
    /// to date; a service no longer here is deregistered.
    pub(super) fn writes_for(&mut self, ids: &[String]) -> Vec<Command> {
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

    /// Backs off after a failed sync, resets after a good one.
    pub(super) fn sync_done(&mut self, ok: bool) {
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
    pub(super) fn write_through(
        &mut self,
        ids: Vec<String>,
    ) -> ResponseActFuture<Self, Result<(), LocalError>> {
        let upstream = self.router.clone();
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
    pub(super) fn sync_changes(&mut self, ctx: &mut Context<Self>) {
        if self.syncing || (self.local.dirty.is_empty() && self.local.removed_checks.is_empty()) {
            return;
        }
        let upstream = self.router.clone();
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
        let keep_services: Vec<String> = self.local.services.keys().cloned().collect();
        let keep_checks: Vec<String> = self.local.checks.keys().cloned().collect();
        let fut = async move {
            // The node row comes from the leader's reconcile; until it
            // exists (or while there is no leader) retry later.
            if !router.write_all(writes).await {
                return false;
            }
            let read = ReadRequest {
                opts: QueryOptions {
                    consistency: Consistency::Stale,
                    ..Default::default()
                },
                query: Query::CatalogNode { node: node.clone() },
            };
            let Ok(resp) = router.read(read.clone()).await else {
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
            if let Ok(resp) = router.read(read).await {
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
            router
                .write_all(removals.into_iter().map(Command::Deregister).collect())
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
}
