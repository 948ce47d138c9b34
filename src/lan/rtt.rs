//! Round-trip times and network coordinates: one live member pinged a
//! second; its answer is timed (smoothed into
//! [`Member::rtt`](super::Member::rtt)) and carries its Vivaldi
//! coordinate, from which this member moves its own, as Serf piggybacks
//! coordinates on its probe acks. SWIM's own probes are inside foca and
//! not timed, hence this separate ping.
//!
//! The ping's payload is its sequence number and a byte asking for the
//! coordinate. A member of an older build echoes the payload as it is, so
//! the answer is still timed (with no coordinate); a ping of an older
//! build (the sequence number alone) is echoed as it was, so older
//! members keep their round-trip times too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::wire::{KIND_PING, KIND_PONG};
use super::LanGossip;
use crate::structs::coordinate::Coordinate;

/// Consul's `memberlist.probeNode`: here the round trip of these pings.
static PROBE: crate::metrics::Static<crate::metrics::Summary> =
    crate::metrics::summary("memberlist.probeNode");

/// How often one member is pinged for its round-trip time.
pub(super) const PING_EVERY: Duration = Duration::from_secs(1);

/// After the sequence number: "answer with your coordinate".
const WANTS_COORDINATE: u8 = 1;

/// This member's coordinate and the last one each peer answered with.
#[derive(Message)]
#[rtype(result = "PoolCoordinates")]
pub struct Coordinates;

#[derive(Debug, Clone, Default)]
pub struct PoolCoordinates {
    /// This member's own, as its samples have moved it.
    pub own: Coordinate,
    /// Whether any sample moved it yet (a lone member's is the origin).
    pub measured: bool,
    /// Member name → its coordinate, as of its last answer.
    pub peers: BTreeMap<String, Coordinate>,
}

impl Handler<Coordinates> for LanGossip {
    type Result = MessageResult<Coordinates>;

    fn handle(&mut self, _: Coordinates, _: &mut Context<Self>) -> Self::Result {
        MessageResult(PoolCoordinates {
            own: self.vivaldi.coordinate().clone(),
            measured: self.vivaldi_samples > 0,
            peers: self
                .peer_coords
                .iter()
                .filter(|(n, _)| self.members.contains_key(*n))
                .map(|(n, c)| (n.clone(), c.clone()))
                .collect(),
        })
    }
}

impl LanGossip {
    /// Pings the next live member to learn its round-trip time.
    pub(super) fn ping(&mut self) {
        // One member, not a copy of the list: in a big pool every member
        // pings every second.
        let live = self.foca.num_members();
        if live == 0 {
            return;
        }
        self.ping_seq += 1;
        let Some((name, addr)) = self
            .foca
            .iter_members()
            .nth((self.ping_seq as usize) % live)
            .map(|m| (m.id().name.clone(), m.id().addr))
        else {
            return;
        };
        // Pings never answered must not pile up.
        self.pings
            .retain(|_, (_, at)| at.elapsed() < Duration::from_secs(10));
        self.pings.insert(self.ping_seq, (name, Instant::now()));
        let mut packet = vec![KIND_PING];
        packet.extend_from_slice(&self.ping_seq.to_be_bytes());
        packet.push(WANTS_COORDINATE);
        self.send_delayed(addr, packet);
    }

    /// The answer to a ping: its payload back, with this member's
    /// coordinate when asked for it.
    pub(super) fn answer_ping(&mut self, payload: &[u8], to: SocketAddr) {
        let mut pong = vec![KIND_PONG];
        pong.extend_from_slice(payload);
        if payload.len() == 9 && payload[8] == WANTS_COORDINATE {
            encode_coordinate(self.vivaldi.coordinate(), &mut pong);
        }
        self.send_delayed(to, pong);
    }

    pub(super) fn pong(&mut self, seq: u64, coord: Option<Coordinate>) {
        let Some((name, sent)) = self.pings.remove(&seq) else {
            return;
        };
        let sample = sent.elapsed();
        PROBE.get().observe(sample.as_secs_f64() * 1000.0);
        if let Some(m) = self.members.get_mut(&name) {
            // Smoothed like TCP's SRTT: one sample moves it by an eighth.
            m.rtt = Some(match m.rtt {
                Some(old) => (old * 7 + sample) / 8,
                None => sample,
            });
        }
        if let Some(c) = coord {
            match self.vivaldi.update(&name, &c, sample) {
                Ok(_) => {
                    self.vivaldi_samples += 1;
                    self.peer_coords.insert(name, c);
                }
                Err(e) => {
                    tracing::debug!(member = %name, error = %e, "coordinate sample refused")
                }
            }
        }
    }

    /// A member gone for good: its samples and coordinate go too.
    pub(super) fn forget_coordinate(&mut self, name: &str) {
        self.vivaldi.forget_node(name);
        self.peer_coords.remove(name);
    }

    /// Pings and their answers, held back by the test build's artificial
    /// link delay when one is set (see `LanGossip::link_delay`).
    fn send_delayed(&self, dst: SocketAddr, packet: Vec<u8>) {
        self.send_after(dst, packet, self.link_delay);
    }
}

/// Vector length, the vector, error, adjustment, height: big-endian f64s.
pub(crate) fn encode_coordinate(c: &Coordinate, out: &mut Vec<u8>) {
    out.push(c.vec.len().min(u8::MAX as usize) as u8);
    for x in c.vec.iter().take(u8::MAX as usize) {
        out.extend_from_slice(&x.to_be_bytes());
    }
    for x in [c.error, c.adjustment, c.height] {
        out.extend_from_slice(&x.to_be_bytes());
    }
}

/// The coordinate [`encode_coordinate`] wrote, or `None` for anything
/// else (short, long, or not finite).
pub(crate) fn decode_coordinate(data: &[u8]) -> Option<Coordinate> {
    let (&n, rest) = data.split_first()?;
    let n = n as usize;
    if rest.len() != (n + 3) * 8 {
        return None;
    }
    let mut f = rest
        .chunks_exact(8)
        .map(|b| <[u8; 8]>::try_from(b).map(f64::from_be_bytes));
    let mut next = || f.next().and_then(Result::ok);
    let mut vec = Vec::with_capacity(n);
    for _ in 0..n {
        vec.push(next()?);
    }
    let c = Coordinate {
        vec,
        error: next()?,
        adjustment: next()?,
        height: next()?,
    };
    c.is_valid().then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coordinate_round_trips_and_garbage_does_not_decode() {
        let mut c = Coordinate::default();
        c.vec[2] = -0.25;
        c.adjustment = 0.001;
        let mut buf = Vec::new();
        encode_coordinate(&c, &mut buf);
        assert_eq!(buf.len(), 1 + 11 * 8);
        assert_eq!(decode_coordinate(&buf), Some(c.clone()));
        assert_eq!(decode_coordinate(&buf[..buf.len() - 1]), None);
        assert_eq!(decode_coordinate(&[]), None);
        let mut nan = Vec::new();
        let mut bad = c;
        bad.height = f64::NAN;
        encode_coordinate(&bad, &mut nan);
        assert_eq!(decode_coordinate(&nan), None);
    }
}
