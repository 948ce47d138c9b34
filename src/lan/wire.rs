//! Datagrams on the pool's UDP socket: the kind byte that tells foca's
//! packets from our own notices (leave, force-leave, ping, user event,
//! key operations),
//! the sealing and opening with the keyring when gossip is encrypted, the
//! isolation switch tests use to cut a member off, and the process's
//! count of datagrams and bytes in and out.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;

use super::events::EVENT_FANOUT;
use super::key_query::{KeyQuery, KeyReply};
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

/// Datagrams and bytes sent and received by every pool of this process
/// (LAN and WAN together), as on the wire (sealed). Relaxed atomics,
/// read by `meridian bench -workload gossip`.
static SENT_BYTES: AtomicU64 = AtomicU64::new(0);
static SENT_PACKETS: AtomicU64 = AtomicU64::new(0);
static RECEIVED_BYTES: AtomicU64 = AtomicU64::new(0);
static RECEIVED_PACKETS: AtomicU64 = AtomicU64::new(0);

/// The counts since the process started.
#[derive(Debug, Clone, Copy, Default)]
pub struct WireTotals {
    pub sent_bytes: u64,
    pub sent_packets: u64,
    pub received_bytes: u64,
    pub received_packets: u64,
}

pub fn wire_totals() -> WireTotals {
    WireTotals {
        sent_bytes: SENT_BYTES.load(Ordering::Relaxed),
        sent_packets: SENT_PACKETS.load(Ordering::Relaxed),
        received_bytes: RECEIVED_BYTES.load(Ordering::Relaxed),
        received_packets: RECEIVED_PACKETS.load(Ordering::Relaxed),
    }
}

/// A datagram of `len` bytes arrived (before opening).
pub(super) fn count_received(len: usize) {
    RECEIVED_BYTES.fetch_add(len as u64, Ordering::Relaxed);
    RECEIVED_PACKETS.fetch_add(1, Ordering::Relaxed);
}

impl LanGossip {
    pub(super) fn send(&self, dst: SocketAddr, packet: Vec<u8>) {
        self.send_after(dst, packet, Duration::ZERO);
    }

    /// Sends `packet` once `delay` has passed (sealed now, with the key
    /// of now).
    pub(super) fn send_after(&self, dst: SocketAddr, packet: Vec<u8>, delay: Duration) {
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
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match socket.send_to(&packet, dst).await {
                Ok(n) => {
                    SENT_BYTES.fetch_add(n as u64, Ordering::Relaxed);
                    SENT_PACKETS.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::debug!(%dst, error = %e, "gossip send failed"),
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
        match decode(&packet) {
            Decoded::Foca(data) => {
                if let Err(e) = self.foca.handle_data(data, &mut self.runtime) {
                    tracing::debug!(error = %e, "bad gossip packet");
                }
                self.drain(ctx);
            }
            Decoded::Leave(name, bump) => {
                if let Some(m) = self.members.get_mut(&name) {
                    m.status = MemberStatus::Leaving;
                }
                self.leaving.insert((name, bump));
            }
            Decoded::ForceLeave(name, prune) => {
                self.force_leave(&name, prune);
            }
            Decoded::Ping(data) => self.answer_ping(data, msg.1),
            Decoded::Pong(seq, coord) => self.pong(seq, coord),
            Decoded::UserEvent(ev) => self.user_event(ev, EVENT_FANOUT),
            Decoded::KeyQuery(q) if sealed => self.key_query(q),
            Decoded::KeyReply(r) if sealed => self.key_reply(r),
            Decoded::KeyRelay(to, body) if sealed => self.key_relay(to, body),
            Decoded::KeyQuery(_) | Decoded::KeyReply(_) | Decoded::KeyRelay(..) => {
                tracing::warn!(from = %msg.1, "dropped a key operation that was not sealed");
            }
            Decoded::Bad(what) => tracing::debug!("bad gossip packet: {what}"),
        }
    }
}

/// A packet (opened already) as its kind says to read it.
#[derive(Debug)]
pub(crate) enum Decoded<'a> {
    /// For foca, which decodes it itself.
    Foca(&'a [u8]),
    Leave(String, u64),
    ForceLeave(String, bool),
    /// The ping's payload, sent back as is.
    Ping(&'a [u8]),
    /// The sequence number of the ping answered, and the answering
    /// member's coordinate when it sent one.
    Pong(u64, Option<crate::structs::coordinate::Coordinate>),
    UserEvent(UserEvent),
    KeyQuery(KeyQuery),
    KeyReply(KeyReply),
    /// An answer to pass on to the member that asked.
    KeyRelay(SocketAddr, Vec<u8>),
    /// Unknown kind or a body that does not decode: dropped.
    Bad(&'static str),
}

/// Reads a packet's kind and body; no packet is refused by panicking.
pub(crate) fn decode(packet: &[u8]) -> Decoded<'_> {
    fn json<'a, T: serde::de::DeserializeOwned>(
        data: &[u8],
        what: &'static str,
        f: impl FnOnce(T) -> Decoded<'a>,
    ) -> Decoded<'a> {
        serde_json::from_slice(data).map_or(Decoded::Bad(what), f)
    }
    match packet.split_first() {
        Some((&KIND_FOCA, data)) => Decoded::Foca(data),
        Some((&KIND_LEAVE, data)) => json(data, "leave", |(n, b)| Decoded::Leave(n, b)),
        Some((&KIND_FORCE_LEAVE, data)) => {
            json(data, "force-leave", |(n, p)| Decoded::ForceLeave(n, p))
        }
        Some((&KIND_PING, data)) => Decoded::Ping(data),
        Some((&KIND_PONG, data)) => pong(data),
        Some((&KIND_USER_EVENT, data)) => json(data, "user event", Decoded::UserEvent),
        Some((&KIND_KEY_QUERY, data)) => json(data, "key query", Decoded::KeyQuery),
        Some((&KIND_KEY_REPLY, data)) => json(data, "key query answer", Decoded::KeyReply),
        Some((&KIND_KEY_RELAY, data)) => {
            json(data, "key relay", |(to, body)| Decoded::KeyRelay(to, body))
        }
        _ => Decoded::Bad("unknown kind"),
    }
}

/// A pong: the sequence number, then (from a ping that asked for it) the
/// flag byte and the coordinate. An older member's echo of the flag alone
/// is a pong without a coordinate.
fn pong(data: &[u8]) -> Decoded<'_> {
    let Some((seq, rest)) = data.split_first_chunk::<8>() else {
        return Decoded::Bad("pong");
    };
    let seq = u64::from_be_bytes(*seq);
    match rest {
        [] | [_] => Decoded::Pong(seq, None),
        [_, coord @ ..] => match super::rtt::decode_coordinate(coord) {
            Some(c) => Decoded::Pong(seq, Some(c)),
            None => Decoded::Bad("pong coordinate"),
        },
    }
}

impl Handler<Isolate> for LanGossip {
    type Result = ();

    fn handle(&mut self, msg: Isolate, _: &mut Context<Self>) {
        self.isolated = msg.0;
    }
}

/// Reads a packet as a member would, foca's part by a fresh foca of our
/// configuration, without a socket or an actor: the fuzz targets' way in.
/// Whatever the bytes, the answer is a `Decoded` or foca's error.
pub(crate) fn feed(packet: &[u8]) -> Result<Decoded<'_>, foca::Error> {
    let decoded = decode(packet);
    if let Decoded::Foca(data) = decoded {
        let me = super::MemberId {
            name: "fuzz".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8301)),
            bump: 0,
            tags: Default::default(),
        };
        let rng = <super::Rng as rand010::SeedableRng>::seed_from_u64(0);
        let mut foca = foca::Foca::new(me, super::lan_config(32), rng, foca::PostcardCodec);
        let mut runtime = foca::AccumulatingRuntime::new();
        foca.handle_data(data, &mut runtime)?;
    }
    Ok(decoded)
}
