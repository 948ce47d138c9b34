//! Datagrams on the pool's UDP socket: the kind byte that tells foca's
//! packets from our own notices (leave, force-leave, ping, user event,
//! key operations),
//! the sealing and opening with the keyring when gossip is encrypted, and
//! the isolation switch tests use to cut a member off.

use std::net::SocketAddr;

use actix::prelude::*;

use super::events::EVENT_FANOUT;
use super::keyring::SEALED;
use super::{LanGossip, MemberStatus};
use crate::structs::UserEvent;

/// Drop every datagram in and out while set: a network partition, for tests.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Isolate(pub bool);

#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Packet(pub(super) Vec<u8>, pub(super) SocketAddr);

/// First byte of every packet (inside the seal when encrypting): whose it is.
pub(super) const KIND_FOCA: u8 = 0;
pub(super) const KIND_LEAVE: u8 = 1;
pub(super) const KIND_FORCE_LEAVE: u8 = 2;
pub(super) const KIND_PING: u8 = 3;
pub(super) const KIND_PONG: u8 = 4;
pub(super) const KIND_USER_EVENT: u8 = 5;
pub(super) const KIND_KEY_QUERY: u8 = 6;
pub(super) const KIND_KEY_REPLY: u8 = 7;
pub(super) const KIND_KEY_RELAY: u8 = 8;

impl LanGossip {
    pub(super) fn send(&self, dst: SocketAddr, packet: Vec<u8>) {
        if self.isolated {
            return;
        }
        let packet = match &self.opts.keyring {
            Some(ring) => ring.seal(packet),
            None => packet,
        };
        let socket = self.socket.clone();
        // The async send: a fresh socket's try_send_to can say WouldBlock.
        actix::spawn(async move {
            if let Err(e) = socket.send_to(&packet, dst).await {
                tracing::debug!(%dst, error = %e, "gossip send failed");
            }
        });
    }
}

impl Handler<Packet> for LanGossip {
    type Result = ();

    fn handle(&mut self, msg: Packet, ctx: &mut Context<Self>) {
        if self.isolated {
            return;
        }
        // Key operations only from members that hold a key: with
        // `encrypt_verify_incoming = false` plain datagrams are let in
        // too, and one must not be able to install or use its own key.
        // Without a ring there is nothing to change, only "not enabled"
        // to answer.
        let sealed = self.opts.keyring.is_none() || msg.0.first() == Some(&SEALED);
        let packet = match &self.opts.keyring {
            Some(ring) => match ring.open(&msg.0) {
                Some(p) => p,
                None => {
                    tracing::debug!(from = %msg.1, "dropped a datagram no key opens");
                    return;
                }
            },
            None => msg.0,
        };
        match packet.split_first() {
            Some((&KIND_FOCA, data)) => {
                if let Err(e) = self.foca.handle_data(data, &mut self.runtime) {
                    tracing::debug!(error = %e, "bad gossip packet");
                }
                self.drain(ctx);
            }
            Some((&KIND_LEAVE, data)) => {
                if let Ok((name, bump)) = serde_json::from_slice::<(String, u64)>(data) {
                    if let Some(m) = self.members.get_mut(&name) {
                        m.status = MemberStatus::Leaving;
                    }
                    self.leaving.insert((name, bump));
                }
            }
            Some((&KIND_FORCE_LEAVE, data)) => {
                if let Ok((name, prune)) = serde_json::from_slice::<(String, bool)>(data) {
                    self.force_leave(&name, prune);
                }
            }
            Some((&KIND_PING, data)) => {
                let mut pong = vec![KIND_PONG];
                pong.extend_from_slice(data);
                self.send(msg.1, pong);
            }
            Some((&KIND_PONG, data)) => self.pong(data),
            Some((&KIND_USER_EVENT, data)) => {
                if let Ok(ev) = serde_json::from_slice::<UserEvent>(data) {
                    self.user_event(ev, EVENT_FANOUT);
                }
            }
            Some((&KIND_KEY_QUERY, data)) if sealed => self.key_query(data),
            Some((&KIND_KEY_REPLY, data)) if sealed => self.key_reply(data),
            Some((&KIND_KEY_RELAY, data)) if sealed => self.key_relay(data),
            Some((&(KIND_KEY_QUERY | KIND_KEY_REPLY | KIND_KEY_RELAY), _)) => {
                tracing::warn!(from = %msg.1, "dropped a key operation that was not sealed");
            }
            _ => tracing::debug!("unknown gossip packet"),
        }
    }
}

impl Handler<Isolate> for LanGossip {
    type Result = ();

    fn handle(&mut self, msg: Isolate, _: &mut Context<Self>) {
        self.isolated = msg.0;
    }
}
