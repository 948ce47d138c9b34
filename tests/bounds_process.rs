//! Bounds on what startup order and idle, slow or oversized requests can
//! cost, on the built binary: a client started before its server joins it
//! soon after the server listens, not a `retry_interval` later; a client
//! dribbling its request head or sitting idle is disconnected; oversized
//! heads get 431 and oversized bodies 413 naming the right limit.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// A loopback port free now (bound, then released): for an agent whose
/// address another must know before it starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

#[test]
fn a_client_started_before_its_server_joins_within_seconds() {
    let (server_http, server_serf, client_http) = (free_port(), free_port(), free_port());
    let (sdir, cdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let join = format!("127.0.0.1:{server_serf}");
    let client_http_s = client_http.to_string();
    let cdir_s = cdir.path().display().to_string();
    // retry_interval is Consul's default (30 s): the first retries must
    // not wait for it.
    let client = TestAgent::with_args(
        &[
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
            "-retry-join",
            &join,
            "-data-dir",
            &cdir_s,
            "-node",
            "early-client",
            "-http-port",
            &client_http_s,
            "-dns-port",
            "0",
            "-serf-lan-port",
            "0",
            "-serf-wan-port",
            "0",
        ],
        &format!("127.0.0.1:{client_http}"),
        "early-client",
    );
    // Its first attempt fails, and a few more while the server is down.
    std::thread::sleep(Duration::from_secs(3));
    let (server_http_s, server_serf_s) = (server_http.to_string(), server_serf.to_string());
    let sdir_s = sdir.path().display().to_string();
    let started = Instant::now();
    let server = TestAgent::with_args(
        &[
            "-server",
            "-bootstrap-expect",
            "1",
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
            "-data-dir",
            &sdir_s,
            "-node",
            "late-server",
            "-http-port",
            &server_http_s,
            "-serf-lan-port",
            &server_serf_s,
            "-dns-port",
            "0",
            "-server-port",
            "0",
            "-serf-wan-port",
            "0",
        ],
        &format!("127.0.0.1:{server_http}"),
        "late-server",
    );
    // Backoff after 3 s of failures is at most 4 s, plus one attempt.
    wait_for("the client lists the server as alive", 12, || {
        stdout(&client.cli(&["members"]))
            .lines()
            .any(|l| l.contains("late-server") && l.contains("alive"))
    });
    let took = started.elapsed();
    eprintln!("server start to client join: {took:?}");
    assert!(took < Duration::from_secs(12), "joined after {took:?}");
    // And it reaches the server's data through it.
    wait_for("a leader through the client", 10, || {
        !leader(&client).is_empty()
    });
    drop(server);
}

/// Reads until the server closes (EOF or reset) or `bound` passes; what
/// it sent and when it closed.
fn read_until_closed(conn: &mut TcpStream, bound: Duration) -> (String, Option<Instant>) {
    conn.set_read_timeout(Some(bound)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into(), Some(Instant::now())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (String::from_utf8_lossy(&got).into(), None)
            }
            Err(_) => return (String::from_utf8_lossy(&got).into(), Some(Instant::now())),
        }
    }
}

#[test]
fn slowloris_and_idle_connections_are_cut_off() {
    let agent = TestAgent::dev(&[]);
    let opened = Instant::now();
    let mut slow = TcpStream::connect(&agent.http).unwrap();
    slow.write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut writer = slow.try_clone().unwrap();
    // One header byte a second, until the server is gone.
    let dribble = std::thread::spawn(move || {
        for _ in 0..25 {
            std::thread::sleep(Duration::from_secs(1));
            if writer.write_all(b"X").is_err() {
                return;
            }
        }
    });
    // An idle keep-alive connection, opened at the same time: one request,
    // then silence.
    let mut idle = TcpStream::connect(&agent.http).unwrap();
    idle.write_all(b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let answered = Instant::now();

    let (said, closed) = read_until_closed(&mut slow, Duration::from_secs(20));
    let closed = closed.expect("the slow client is still connected after 20 s");
    let took = closed - opened;
    eprintln!("slowloris cut after {took:?}: {said:?}");
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(13),
        "{took:?}"
    );
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "{said}"
    );
    dribble.join().unwrap();

    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(20));
    let idle_for = closed.expect("the idle connection is still open after 20 s") - answered;
    eprintln!("idle keep-alive closed after {idle_for:?}");
    assert!(
        idle_for >= Duration::from_secs(14) && idle_for < Duration::from_secs(18),
        "{idle_for:?}"
    );
}

/// Sends `head` (a request head without the final blank line) with one
/// header of `size` bytes and returns the status line.
fn status_with_header(addr: &str, size: usize) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    let mut writer = conn.try_clone().unwrap();
    // Written from another thread: the server may answer (and stop
    // reading) before the whole head is in.
    let send = std::thread::spawn(move || {
        let head = format!(
            "GET /v1/status/leader HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(size)
        );
        let _ = writer.write_all(head.as_bytes());
    });
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(2).any(|w| w == b"\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    send.join().unwrap();
    let text = String::from_utf8_lossy(&got);
    text.lines().next().unwrap_or_default().to_string()
}

#[test]
fn oversized_heads_get_431_and_bodies_413_naming_their_limit() {
    let agent = TestAgent::dev(&[]);
    // Consul (Go) takes heads up to 1 MiB; actix-http up to 128 KiB.
    assert_eq!(
        status_with_header(&agent.http, 64 * 1024),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        status_with_header(&agent.http, 256 * 1024),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let client = reqwest::blocking::Client::new();
    let put = |path: &str, body: Vec<u8>| {
        let r = client.put(agent.url(path)).body(body).send().unwrap();
        (r.status().as_u16(), r.text().unwrap_or_default())
    };
    let (s, text) = put("/v1/kv/big", vec![b'x'; 512 * 1024 + 1]);
    assert_eq!(s, 413, "{text}");
    assert!(text.ends_with("#kv_max_value_size."), "{text}");
    let (s, text) = put("/v1/txn", vec![b' '; 512 * 1024 + 1]);
    assert_eq!(s, 413, "{text}");
    assert!(text.ends_with("#txn_max_req_len."), "{text}");
    // Meridian's own bound on other JSON bodies names no config key.
    let (s, text) = put("/v1/catalog/register", vec![b' '; 512 * 1024 + 1]);
    assert_eq!(s, 413, "{text}");
    assert!(
        text.contains("too large") && !text.contains("config-files"),
        "{text}"
    );
}
