//! User events (`consul event`): fired into the pool with a Lamport time,
//! delivered once to each member's subscribers, and relayed by every
//! member that sees one for the first time, since the sender's own send
//! can miss members or lose a datagram.

use std::net::SocketAddr;

use actix::prelude::*;

use super::wire::KIND_USER_EVENT;
use super::LanGossip;
use crate::structs::UserEvent;

/// How many members a member passes a new user event on to, beyond the
/// sender's own send to everyone it knows (which may miss members it has
/// not met yet, or lose a datagram).
pub(super) const EVENT_FANOUT: usize = 3;
/// Event IDs remembered so that a relayed event is delivered once.
const EVENT_IDS_KEPT: usize = 4096;
/// Fires a user event into the pool; answers it with its Lamport time.
#[derive(Message)]
#[rtype(result = "UserEvent")]
pub struct FireEvent(pub UserEvent);

/// Who wants the user events this member sees (its own included).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeEvents(pub Recipient<UserEvent>);

impl LanGossip {
    /// Delivers an event seen for the first time and passes it on to
    /// `fanout` members (all of them when it starts here).
    pub(super) fn user_event(&mut self, ev: UserEvent, fanout: usize) {
        if self.event_ids.contains(&ev.id) {
            return;
        }
        if self.event_ids.len() >= EVENT_IDS_KEPT {
            self.event_ids.pop_front();
        }
        self.event_ids.push_back(ev.id.clone());
        self.event_clock = self.event_clock.max(ev.ltime);
        let mut packet = vec![KIND_USER_EVENT];
        packet.extend_from_slice(&serde_json::to_vec(&ev).unwrap_or_default());
        let mut peers: Vec<SocketAddr> = self.foca.iter_members().map(|m| m.id().addr).collect();
        rand::seq::SliceRandom::shuffle(peers.as_mut_slice(), &mut rand::thread_rng());
        for addr in peers.into_iter().take(fanout) {
            self.send(addr, packet.clone());
        }
        self.event_subscribers.retain(|s| {
            s.do_send(ev.clone());
            s.connected()
        });
    }
}

impl Handler<FireEvent> for LanGossip {
    type Result = MessageResult<FireEvent>;

    fn handle(&mut self, msg: FireEvent, _: &mut Context<Self>) -> Self::Result {
        self.event_clock += 1;
        let ev = UserEvent {
            ltime: self.event_clock,
            ..msg.0
        };
        self.user_event(ev.clone(), usize::MAX);
        MessageResult(ev)
    }
}

impl Handler<SubscribeEvents> for LanGossip {
    type Result = ();

    fn handle(&mut self, msg: SubscribeEvents, _: &mut Context<Self>) {
        self.event_subscribers.push(msg.0);
    }
}
