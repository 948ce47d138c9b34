//! The leader's session TTL timers (Consul's `session_ttl.go`): every TTL
//! session is invalidated once its TTL passes without a renew. A new
//! leader starts every timer afresh, so a session lives at most twice its
//! TTL across a leadership change. Timers read tokio's clock, so tests can
//! pause and advance it.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

use super::RaftActor;
use crate::storage::fsm::read;
use crate::structs::Command;

#[derive(Default)]
pub(super) struct SessionTimers {
    /// When each TTL session expires unless renewed.
    deadlines: HashMap<String, Instant>,
    /// Led at the last pass (a new leader starts every timer afresh).
    led: bool,
    /// The session table's index at the last pass.
    seen: Option<u64>,
}

impl RaftActor {
    fn session_ttl(&self, id: &str) -> Option<Duration> {
        let store = read(&self.store);
        let ttl = &store.sessions().get(id)?.ttl;
        crate::config::duration::parse_go_duration(ttl).ok()
    }

    pub(super) fn renew_ttl(&mut self, id: &str) {
        if let Some(ttl) = self.session_ttl(id) {
            self.sessions
                .deadlines
                .insert(id.to_string(), Instant::now() + ttl);
        }
    }

    /// The leader's session TTL timers (Consul's `session_ttl.go`): every
    /// TTL session is invalidated once its TTL passes without a renew. A
    /// new leader starts every timer afresh, so a session lives at most
    /// twice its TTL across a leadership change.
    pub(super) fn expire_sessions(&mut self, ctx: &mut Context<Self>) {
        if !self.status().is_leader {
            self.sessions.deadlines.clear();
            self.sessions.led = false;
            return;
        }
        let now = Instant::now();
        if !self.sessions.led {
            self.sessions.deadlines.clear();
            self.sessions.seen = None;
            self.sessions.led = true;
        }
        // The session table is walked only when it changed since the last
        // pass: new sessions get a timer, destroyed ones lose theirs.
        let index = read(&self.store).table_index(crate::state::T_SESSIONS);
        if self.sessions.seen != Some(index) {
            self.sessions.seen = Some(index);
            let with_ttl: Vec<(String, Duration)> = read(&self.store)
                .sessions()
                .values()
                .filter_map(|s| {
                    let ttl = crate::config::duration::parse_go_duration(&s.ttl).ok()?;
                    (!ttl.is_zero()).then(|| (s.id.clone(), ttl))
                })
                .collect();
            let live: std::collections::HashSet<&String> =
                with_ttl.iter().map(|(id, _)| id).collect();
            self.sessions.deadlines.retain(|id, _| live.contains(id));
            for (id, ttl) in &with_ttl {
                self.sessions
                    .deadlines
                    .entry(id.clone())
                    .or_insert(now + *ttl);
            }
        }
        let expired: Vec<String> = self
            .sessions
            .deadlines
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            // Retried in a second unless the destroy lands (the rescan
            // that follows it drops the timer).
            self.sessions
                .deadlines
                .insert(id.clone(), now + Duration::from_secs(1));
            tracing::info!(session = %id, "session TTL expired: invalidating");
            let write = self.write(Command::SessionDestroy { id }, ctx);
            actix::spawn(async move {
                if let Err(e) = write.await {
                    tracing::warn!(error = %e, "session invalidation failed");
                }
            });
        }
    }
}
