//! Once a second: services critical past
//! `deregister_critical_service_after` are deregistered, and alias checks
//! take the worst status of what they mirror (a local service directly,
//! another node's checks through a stale catalog read).

use actix::prelude::*;
use tokio::time::Instant;

use super::NodeActor;
use crate::structs::catalog::{HealthCheck, HealthStatus};
use crate::structs::query::{Query, QueryResult};
use crate::structs::{Consistency, QueryOptions, ReadRequest, ReadResponse};

impl NodeActor {
    /// Once a second: services critical past `deregister_critical_service_after`
    /// go, and alias checks follow what they mirror.
    pub(super) fn housekeeping(&mut self, ctx: &mut Context<Self>) {
        let expired = self.local.expired_critical(Instant::now());
        for id in &expired {
            tracing::info!(service = %id, "service critical past deregister_critical_service_after: deregistering");
            self.forget_service(id);
            self.local.dirty.insert(id.clone());
        }
        if !expired.is_empty() {
            self.publish_checks(ctx);
        }
        self.update_aliases(ctx);
    }

    /// Alias checks take the worst status of what they mirror: a local
    /// service directly, another node's through a (stale) catalog read.
    fn update_aliases(&mut self, ctx: &mut Context<Self>) {
        let aliases: Vec<(String, String, String)> = self
            .local
            .checks
            .iter()
            .filter(|(_, c)| c.def.kind() == "alias")
            .map(|(id, c)| {
                (
                    id.clone(),
                    c.def.alias_node.clone(),
                    c.def.alias_service.clone(),
                )
            })
            .collect();
        for (id, node, service) in aliases {
            if node.is_empty() || node == self.config.node_name {
                let worst = |svc: &str| {
                    self.local
                        .checks
                        .iter()
                        .filter(|(cid, c)| {
                            **cid != id && (c.row.service_id == svc || c.row.service_id.is_empty())
                        })
                        .map(|(_, c)| c.row.status)
                        .max()
                        .unwrap_or(HealthStatus::Passing)
                };
                let (status, output) = if service.is_empty() {
                    (worst(""), "All checks of this node considered".to_string())
                } else if self.local.services.contains_key(&service) {
                    (
                        worst(&service),
                        format!("All checks of service {service:?} considered"),
                    )
                } else {
                    (
                        HealthStatus::Critical,
                        format!("Service {service:?} could not be found"),
                    )
                };
                self.local.set_status(&id, status, &output);
                continue;
            }
            let upstream = self.router.clone();
            let read = ReadRequest {
                opts: QueryOptions {
                    consistency: Consistency::Stale,
                    // The agent's own read, under its own token.
                    token: upstream.agent_token(),
                    ..Default::default()
                },
                query: Query::HealthNode { node: node.clone() },
            };
            let fut = async move { upstream.read(read).await };
            ctx.spawn(fut.into_actor(self).map(move |r, act, _| {
                let checks = match r {
                    Ok(ReadResponse {
                        result: QueryResult::Checks(c),
                        ..
                    }) => c,
                    _ => return,
                };
                let relevant: Vec<&HealthCheck> = checks
                    .iter()
                    .filter(|c| {
                        service.is_empty() || c.service_id.is_empty() || c.service_id == service
                    })
                    .collect();
                let (status, output) = if relevant.is_empty() {
                    (
                        HealthStatus::Critical,
                        format!("No checks found on node {node:?}"),
                    )
                } else {
                    (
                        relevant
                            .iter()
                            .map(|c| c.status)
                            .max()
                            .unwrap_or(HealthStatus::Passing),
                        format!("Aliased checks of node {node:?}"),
                    )
                };
                act.local.set_status(&id, status, &output);
            }));
        }
    }
}
