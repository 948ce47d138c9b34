//! What an unauthenticated peer can cost a server through its RPC port
//! (the built binary, config in Consul's `limits {}` syntax): 200
//! connections each announcing a 64 MiB frame leave its resident memory
//! near idle; one address holds at most `rpc_max_conns_per_client`
//! connections; a connection that has not sent a complete first frame
//! within `rpc_handshake_timeout` is closed.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// The agent's resident memory in kB (VmRSS of /proc/PID/status).
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// A connection to `port` from the loopback address `from` (so that the
/// probe's connections spread over addresses, under the per-IP limit).
/// std cannot bind before connecting; tokio's socket can.
fn connect_from(rt: &tokio::runtime::Runtime, from: [u8; 4], port: u16) -> TcpStream {
    let s = rt
        .block_on(async {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.bind(SocketAddr::from((from, 0)))?;
            sock.connect(SocketAddr::from(([127, 0, 0, 1], port)))
                .await?
                .into_std()
        })
        .expect("connect");
    s.set_nonblocking(false).expect("blocking");
    s
}

/// Whether the server closed `s` (EOF or reset) within `within`, without
/// a byte of answer.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut b = [0u8; 16];
    match s.read(&mut b) {
        Ok(n) => n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// Whether `s` is still open: nothing to read yet, no EOF.
fn still_open(s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut b = [0u8; 16];
    let mut r = s;
    let open = matches!(r.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).expect("blocking");
    open
}

/// A complete request: length 6, request id 1, method 7 (Datacenters),
/// MessagePack nil (no arguments).
const REQUEST: [u8; 10] = [0, 0, 0, 6, 0, 0, 0, 1, 7, 0xc0];

/// A request frame announcing 64 MiB (the most a frame may be) and the
/// first four bytes of it.
const OVERSIZED_START: [u8; 8] = [0x04, 0, 0, 0, 0, 0, 0, 1];

fn server(extra_hcl: &str) -> (tempfile::TempDir, tempfile::TempDir, TestAgent) {
    let conf = tempfile::tempdir().unwrap();
    let file = conf.path().join("limits.hcl");
    std::fs::write(&file, extra_hcl).unwrap();
    let data = tempfile::tempdir().unwrap();
    let agent = TestAgent::server_with(data.path(), &["-config-file", file.to_str().unwrap()]);
    (conf, data, agent)
}

#[test]
fn two_hundred_oversized_frames_cost_little_and_one_address_holds_at_most_the_limit() {
    // A deadline long enough for the measurement; the default per-IP
    // limit of 100.
    let (_conf, _data, agent) = server("limits {\n  rpc_handshake_timeout = \"30s\"\n}\n");
    let pid = agent.pid().expect("running");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let idle = rss_kb(pid);

    // 100 connections from each of two addresses.
    let mut conns = Vec::new();
    for from in [[127, 0, 0, 2], [127, 0, 0, 3]] {
        for _ in 0..100 {
            let mut s = connect_from(&rt, from, agent.server_port);
            s.write_all(&OVERSIZED_START).expect("write");
            conns.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(1500));
    let loaded = rss_kb(pid);
    let open = conns.iter().filter(|s| still_open(s)).count();
    assert_eq!(
        open, 200,
        "the probe's connections must be held to measure them"
    );
    eprintln!("RSS idle {idle} kB, with 200 oversized frames {loaded} kB");
    assert!(
        loaded < idle + 50 * 1024,
        "RSS grew from {idle} kB to {loaded} kB"
    );

    // The 101st connection from one address is closed at once, with a
    // complete request that would otherwise be answered.
    let mut over = connect_from(&rt, [127, 0, 0, 2], agent.server_port);
    let _ = over.write_all(&REQUEST);
    let t = Instant::now();
    assert!(closed_within(&mut over, Duration::from_secs(3)));
    assert!(t.elapsed() < Duration::from_secs(3));
    // Another address is still served.
    let mut other = connect_from(&rt, [127, 0, 0, 4], agent.server_port);
    other.write_all(&REQUEST).expect("write");
    let mut len = [0u8; 4];
    other.read_exact(&mut len).expect("an answer");
    assert!(u32::from_be_bytes(len) > 0);

    // Places are given back as connections end.
    conns.truncate(100);
    std::thread::sleep(Duration::from_millis(300));
    let mut again = connect_from(&rt, [127, 0, 0, 3], agent.server_port);
    again.write_all(&REQUEST).expect("write");
    again
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    again
        .read_exact(&mut len)
        .expect("served once 127.0.0.3's connections closed");
}

#[test]
fn a_connection_without_a_complete_first_frame_is_closed_at_the_deadline() {
    let (_conf, _data, agent) = server("limits {\n  rpc_handshake_timeout = \"1s\"\n}\n");
    let port = agent.server_port;
    let started = Instant::now();
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut partial = TcpStream::connect(("127.0.0.1", port)).unwrap();
    partial.write_all(&OVERSIZED_START).unwrap();
    let mut served = TcpStream::connect(("127.0.0.1", port)).unwrap();
    served.write_all(&REQUEST).unwrap();
    let mut len = [0u8; 4];
    served.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    served.read_exact(&mut body).unwrap();

    assert!(closed_within(&mut silent, Duration::from_secs(5)));
    assert!(closed_within(&mut partial, Duration::from_secs(5)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "closed after {waited:?}"
    );
    // A connection that sent its first frame in time is no longer
    // bound by the deadline.
    assert!(still_open(&served));
    served.write_all(&REQUEST).unwrap();
    served
        .read_exact(&mut len)
        .expect("a second answer after the deadline");
}
