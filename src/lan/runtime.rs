//! The plumbing between foca's sans-IO state machine and the actor: what
//! foca asks for (datagrams, timers, membership notifications) carried out
//! with the actor's socket, its `run_later` timers and the member list.

use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use foca::{OwnedNotification, Timer};

use super::wire::KIND_FOCA;
use super::{Join, LanGossip, MemberId};

impl LanGossip {
    /// Carries out what foca asked for: sends, timers, notifications.
    pub(super) fn drain(&mut self, ctx: &mut Context<Self>) {
        while let Some((dst, data)) = self.runtime.to_send() {
            let mut packet = Vec::with_capacity(data.len() + 1);
            packet.push(KIND_FOCA);
            packet.extend_from_slice(&data);
            self.send(dst.addr, packet);
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            ctx.run_later(after, move |act, ctx| act.timer(timer, ctx));
        }
        while let Some(n) = self.runtime.to_notify() {
            match n {
                OwnedNotification::MemberUp(id) => self.member_up(id),
                OwnedNotification::MemberDown(id) => self.member_down(id),
                OwnedNotification::Rename(_, new) => self.member_up(new),
                OwnedNotification::Rejoin(me) => {
                    tracing::info!("declared down by peers: rejoined as a new incarnation");
                    self.me = me;
                    // Tell everyone we knew, so peers that think we are
                    // gone meet the new incarnation without waiting for
                    // their reconnect round.
                    let known: Vec<SocketAddr> = self
                        .members
                        .values()
                        .filter(|m| m.name != self.me.name)
                        .map(|m| m.addr)
                        .collect();
                    ctx.notify(Join(known));
                }
                _ => {}
            }
        }
        self.rescale();
        // Members change: save soon (a killed agent rejoins with what it
        // knew), at most every 100 ms however many change at once.
        if self.snapshot_dirty && !self.snapshot_scheduled && !self.left {
            self.snapshot_scheduled = true;
            ctx.run_later(Duration::from_millis(100), |act, _| {
                act.snapshot_scheduled = false;
                if act.snapshot_dirty && !act.left {
                    act.save_snapshot();
                }
            });
        }
    }

    /// Keeps foca's retransmissions and suspicion window in step with the
    /// pool's size as members come and go.
    fn rescale(&mut self) {
        let n = self.foca.num_members() + 1;
        if n == self.scaled_for {
            return;
        }
        self.scaled_for = n;
        let timings = super::options::scaled(&self.base_timings, n);
        if self.foca.set_config(timings).is_err() {
            // Only rates and probe timings are refused, and scaled()
            // never touches them.
            tracing::warn!(members = n, "gossip timings could not be scaled");
        }
    }

    fn timer(&mut self, timer: Timer<MemberId>, ctx: &mut Context<Self>) {
        if let Err(e) = self.foca.handle_timer(timer, &mut self.runtime) {
            tracing::debug!(error = %e, "gossip timer");
        }
        self.drain(ctx);
    }
}
