//! Asking the configured recursors: in the order `recursor_strategy`
//! says, each within `recursor_timeout`, the first usable answer winning.
//! As Consul does, an answer other than NOERROR or NXDOMAIN (SERVFAIL,
//! REFUSED, ...) counts as a failure of that recursor and the next one is
//! asked.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, Query as DnsQuery, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use rand::seq::SliceRandom;

use crate::config::RecursorStrategy;

/// A recursor as configured: `IP` (port 53) or `IP:PORT`; None for
/// anything else (the config does not check them, Consul's agent refuses
/// to start; here such an entry is skipped with a debug line).
pub fn recursor_addr(r: &str) -> Option<SocketAddr> {
    r.parse::<SocketAddr>()
        .ok()
        .or_else(|| r.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

/// The order to ask `n` recursors in.
pub fn order(strategy: RecursorStrategy, n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if strategy == RecursorStrategy::Random {
        idx.shuffle(&mut rand::thread_rng());
    }
    idx
}

/// The first usable answer to the query `raw` from `recursors`, or None
/// when none gave one.
pub async fn ask(
    recursors: &[String],
    strategy: RecursorStrategy,
    timeout: Duration,
    raw: &[u8],
) -> Option<Message> {
    for i in order(strategy, recursors.len()) {
        let Some(addr) = recursor_addr(&recursors[i]) else {
            tracing::debug!(recursor = %recursors[i], "not an address, skipped");
            continue;
        };
        match tokio::time::timeout(timeout, exchange(addr, raw)).await {
            Ok(Ok(msg))
                if matches!(
                    msg.metadata.response_code,
                    ResponseCode::NoError | ResponseCode::NXDomain
                ) =>
            {
                return Some(msg)
            }
            Ok(Ok(msg)) => tracing::debug!(
                recursor = %addr,
                rcode = %msg.metadata.response_code,
                "recursor refused the question"
            ),
            Ok(Err(e)) => tracing::debug!(recursor = %addr, error = %e, "recursor failed"),
            Err(_) => tracing::debug!(recursor = %addr, "recursor timed out"),
        }
    }
    None
}

/// A question of our own (a host name's addresses), as bytes to send.
pub fn question(name: &Name, qtype: RecordType) -> Option<Vec<u8>> {
    let mut m = Message::query();
    m.metadata.id = rand::random();
    m.metadata.recursion_desired = true;
    m.add_query(DnsQuery::query(name.clone(), qtype));
    m.to_vec().ok()
}

/// One UDP round trip to a recursor. The socket is connected, so only the
/// recursor's datagrams are received, and a reply must carry our query's ID.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Message> {
    let bind: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(bind).await?;
    sock.connect(addr).await?;
    sock.send(raw).await?;
    let id = raw.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        match Message::from_vec(&buf[..n]) {
            Ok(m) if Some(m.metadata.id) == id => return Ok(m),
            // A stray or mismatched datagram: keep waiting (the caller's timeout bounds this).
            _ => continue,
        }
    }
}
