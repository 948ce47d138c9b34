//! Round-trip times: one live member pinged a second, answers smoothed
//! into [`Member::rtt`](super::Member::rtt). SWIM's own probes are inside
//! foca and not timed, hence this separate ping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::wire::KIND_PING;
use super::LanGossip;

/// How often one member is pinged for its round-trip time.
pub(super) const PING_EVERY: Duration = Duration::from_secs(1);

impl LanGossip {
    /// Pings the next live member to learn its round-trip time.
    pub(super) fn ping(&mut self) {
        let live: Vec<(String, SocketAddr)> = self
            .foca
            .iter_members()
            .map(|m| (m.id().name.clone(), m.id().addr))
            .collect();
        if live.is_empty() {
            return;
        }
        self.ping_seq += 1;
        let (name, addr) = &live[(self.ping_seq as usize) % live.len()];
        // Pings never answered must not pile up.
        self.pings
            .retain(|_, (_, at)| at.elapsed() < Duration::from_secs(10));
        self.pings
            .insert(self.ping_seq, (name.clone(), Instant::now()));
        let mut packet = vec![KIND_PING];
        packet.extend_from_slice(&self.ping_seq.to_be_bytes());
        self.send(*addr, packet);
    }

    pub(super) fn pong(&mut self, seq: u64) {
        if let Some((name, sent)) = self.pings.remove(&seq) {
            let sample = sent.elapsed();
            if let Some(m) = self.members.get_mut(&name) {
                // Smoothed like TCP's SRTT: one sample moves it by an eighth.
                m.rtt = Some(match m.rtt {
                    Some(old) => (old * 7 + sample) / 8,
                    None => sample,
                });
            }
        }
    }
}
