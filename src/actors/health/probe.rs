//! One run of one check: what the endpoint answered, as a status and the
//! output Consul would show. Every probe is bounded by the check's timeout
//! and never panics on what the endpoint sends.

use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::config::CheckDefinition;
use crate::state::structs::HealthStatus;

/// Most output kept from a check (Consul's default `output_max_size`).
pub const OUTPUT_MAX: usize = 4096;

/// Consul's default timeouts: 10 s for network checks, 30 s for scripts.
pub fn timeout_of(def: &CheckDefinition) -> Duration {
    def.timeout.unwrap_or(if def.args.is_empty() {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    })
}

pub fn truncate(mut s: String) -> String {
    if s.len() > OUTPUT_MAX {
        let mut cut = OUTPUT_MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(" ... (truncated)");
    }
    s
}

/// The HTTP clients probes share: one for HTTP/1.1 and HTTP/2 checks,
/// one speaking HTTP/2 without negotiation, as gRPC over plain TCP needs.
#[derive(Clone)]
pub struct Clients {
    pub http: reqwest::Client,
    /// For `tls_skip_verify` checks: any certificate is accepted.
    pub http_insecure: reqwest::Client,
    pub grpc: reqwest::Client,
    pub grpc_insecure: reqwest::Client,
}

impl Clients {
    pub fn new() -> Clients {
        let agent = concat!("Meridian Health Check/", env!("CARGO_PKG_VERSION"));
        let http = |insecure: bool| {
            reqwest::Client::builder()
                .user_agent(agent)
                .redirect(reqwest::redirect::Policy::limited(10))
                .danger_accept_invalid_certs(insecure)
                .build()
                .unwrap_or_default()
        };
        let grpc = |insecure: bool| {
            reqwest::Client::builder()
                .user_agent(agent)
                .http2_prior_knowledge()
                .danger_accept_invalid_certs(insecure)
                .build()
                .unwrap_or_default()
        };
        Clients {
            http: http(false),
            http_insecure: http(true),
            grpc: grpc(false),
            grpc_insecure: grpc(true),
        }
    }
}

impl Default for Clients {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs the probe the definition names.
pub async fn run(def: &CheckDefinition, clients: &Clients) -> (HealthStatus, String) {
    let (http, grpc) = if def.tls_skip_verify {
        (&clients.http_insecure, &clients.grpc_insecure)
    } else {
        (&clients.http, &clients.grpc)
    };
    let timeout = timeout_of(def);
    let probe = async {
        if !def.http.is_empty() {
            http_probe(def, http, timeout).await
        } else if !def.tcp.is_empty() {
            tcp_probe(&def.tcp).await
        } else if !def.udp.is_empty() {
            udp_probe(&def.udp, timeout).await
        } else if !def.grpc.is_empty() {
            grpc_probe(def, grpc).await
        } else if !def.args.is_empty() {
            script_probe(&def.args, timeout).await
        } else {
            (HealthStatus::Critical, "no probe for this check".into())
        }
    };
    match tokio::time::timeout(timeout + Duration::from_millis(100), probe).await {
        Ok((status, output)) => (status, truncate(output)),
        Err(_) => (
            HealthStatus::Critical,
            format!(
                "Timed out ({}) running check",
                crate::config::format_duration(timeout)
            ),
        ),
    }
}

/// 2xx passing, 429 warning, anything else critical (Consul's rules).
async fn http_probe(
    def: &CheckDefinition,
    http: &reqwest::Client,
    timeout: Duration,
) -> (HealthStatus, String) {
    let method = if def.method.is_empty() {
        "GET"
    } else {
        def.method.as_str()
    };
    let Ok(m) = reqwest::Method::from_bytes(method.as_bytes()) else {
        return (HealthStatus::Critical, format!("invalid method {method:?}"));
    };
    let mut req = http.request(m, &def.http).timeout(timeout);
    for (k, vs) in &def.header {
        for v in vs {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    if !def.body.is_empty() {
        req = req.body(def.body.clone());
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return (
                HealthStatus::Critical,
                format!("{method} {:?}: {}", def.http, error_chain(&e)),
            )
        }
    };
    let code = resp.status();
    // Only the head of the body is kept, so a huge body is not read whole.
    let mut body = Vec::new();
    let mut resp = resp;
    while body.len() < OUTPUT_MAX {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    let output = format!(
        "HTTP {method} {}: {} Output: {}",
        def.http,
        code,
        String::from_utf8_lossy(&body[..body.len().min(OUTPUT_MAX)])
    );
    let status = match code.as_u16() {
        200..=299 => HealthStatus::Passing,
        429 => HealthStatus::Warning,
        _ => HealthStatus::Critical,
    };
    (status, output)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

async fn tcp_probe(addr: &str) -> (HealthStatus, String) {
    match tokio::net::TcpStream::connect(addr).await {
        Ok(_) => (
            HealthStatus::Passing,
            format!("TCP connect {addr}: Success"),
        ),
        Err(e) => (HealthStatus::Critical, format!("dial tcp {addr}: {e}")),
    }
}

/// A datagram out; any answer, or silence until the timeout, is passing
/// (UDP has no handshake); an ICMP refusal is critical, as in Consul.
async fn udp_probe(addr: &str, timeout: Duration) -> (HealthStatus, String) {
    let target = match tokio::net::lookup_host(addr).await.map(|mut a| a.next()) {
        Ok(Some(t)) => t,
        Ok(None) | Err(_) => {
            return (
                HealthStatus::Critical,
                format!("dial udp {addr}: cannot resolve"),
            )
        }
    };
    let local: std::net::SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = match tokio::net::UdpSocket::bind(local).await {
        Ok(s) => s,
        Err(e) => return (HealthStatus::Critical, format!("udp {addr}: {e}")),
    };
    if let Err(e) = sock.connect(target).await {
        return (HealthStatus::Critical, format!("dial udp {addr}: {e}"));
    }
    if let Err(e) = sock.send(b"meridian health check").await {
        return (HealthStatus::Critical, format!("udp {addr}: {e}"));
    }
    let mut buf = [0u8; 512];
    match tokio::time::timeout(
        timeout.saturating_sub(Duration::from_millis(50)),
        sock.recv(&mut buf),
    )
    .await
    {
        Ok(Ok(_)) | Err(_) => (
            HealthStatus::Passing,
            format!("UDP connect {addr}: Success"),
        ),
        Ok(Err(e)) => (HealthStatus::Critical, format!("read udp {addr}: {e}")),
    }
}

/// exit 0 passing, 1 warning, anything else critical; killed at the timeout.
async fn script_probe(args: &[String], timeout: Duration) -> (HealthStatus, String) {
    let mut cmd = tokio::process::Command::new(&args[0]);
    cmd.args(&args[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                HealthStatus::Critical,
                format!("failed to run {:?}: {e}", args[0]),
            )
        }
    };
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let read = async {
        let mut o = Vec::new();
        let mut e = Vec::new();
        if let Some(s) = out.as_mut() {
            let _ = s.take(OUTPUT_MAX as u64 * 2).read_to_end(&mut o).await;
        }
        if let Some(s) = err.as_mut() {
            let _ = s.take(OUTPUT_MAX as u64).read_to_end(&mut e).await;
        }
        o.extend_from_slice(&e);
        o
    };
    match tokio::time::timeout(timeout, async {
        let output = read.await;
        (child.wait().await, output)
    })
    .await
    {
        Ok((Ok(exit), output)) => {
            let status = match exit.code() {
                Some(0) => HealthStatus::Passing,
                Some(1) => HealthStatus::Warning,
                _ => HealthStatus::Critical,
            };
            (status, String::from_utf8_lossy(&output).into_owned())
        }
        Ok((Err(e), _)) => (HealthStatus::Critical, format!("failed to wait: {e}")),
        // Dropping the child (kill_on_drop) kills the script.
        Err(_) => (
            HealthStatus::Critical,
            format!(
                "Timed out ({}) running check",
                crate::config::format_duration(timeout)
            ),
        ),
    }
}

/// The standard `grpc.health.v1.Health/Check` over HTTP/2 (`host:port` or
/// `host:port/service`): SERVING is passing, anything else critical.
async fn grpc_probe(def: &CheckDefinition, http: &reqwest::Client) -> (HealthStatus, String) {
    let (addr, service) = match def.grpc.split_once('/') {
        Some((a, s)) => (a, s),
        None => (def.grpc.as_str(), ""),
    };
    let scheme = if def.grpc_use_tls { "https" } else { "http" };
    // HealthCheckRequest { string service = 1; } behind gRPC's 5-byte prefix.
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a);
        encode_varint(service.len() as u64, &mut msg);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut body = vec![0u8];
    body.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    body.extend_from_slice(&msg);
    let url = format!("{scheme}://{addr}/grpc.health.v1.Health/Check");
    let resp = match http
        .post(&url)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return (
                HealthStatus::Critical,
                format!("gRPC {}: {}", def.grpc, error_chain(&e)),
            )
        }
    };
    // A trailers-only answer carries the error in the headers.
    if let Some(code) = resp
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
    {
        if code != "0" {
            let message = resp
                .headers()
                .get("grpc-message")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            return (
                HealthStatus::Critical,
                format!("gRPC {}: status code {code}: {message}", def.grpc),
            );
        }
    }
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return (HealthStatus::Critical, format!("gRPC {}: {e}", def.grpc)),
    };
    match bytes.get(5..).map(serving_status) {
        Some(1) => (
            HealthStatus::Passing,
            format!("gRPC check {}: success", def.grpc),
        ),
        Some(s) => (
            HealthStatus::Critical,
            format!(
                "gRPC check {}: failed, status {}",
                def.grpc,
                serving_name(s)
            ),
        ),
        None => (
            HealthStatus::Critical,
            format!("gRPC check {}: no answer", def.grpc),
        ),
    }
}

fn encode_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `HealthCheckResponse.status` (field 1, varint); 0 (UNKNOWN) if absent.
fn serving_status(msg: &[u8]) -> u64 {
    let mut i = 0;
    while i < msg.len() {
        let key = msg[i];
        i += 1;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let mut v = 0u64;
                let mut shift = 0;
                while i < msg.len() {
                    let b = msg[i];
                    i += 1;
                    v |= ((b & 0x7f) as u64) << shift;
                    shift += 7;
                    if b & 0x80 == 0 || shift > 63 {
                        break;
                    }
                }
                if field == 1 {
                    return v;
                }
            }
            // Anything else in a health answer is unexpected: stop reading.
            _ => return 0,
        }
    }
    0
}

fn serving_name(s: u64) -> &'static str {
    match s {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "unrecognised",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_decode() {
        assert_eq!(serving_status(&[0x08, 0x01]), 1);
        assert_eq!(serving_status(&[0x08, 0x02]), 2);
        assert_eq!(serving_status(&[]), 0);
        let mut v = Vec::new();
        encode_varint(300, &mut v);
        assert_eq!(v, vec![0xac, 0x02]);
    }

    #[test]
    fn output_is_cut_at_4_kib_on_a_char_boundary() {
        let s = "é".repeat(3000);
        let t = truncate(s);
        assert!(t.len() <= OUTPUT_MAX + 20);
        assert!(t.ends_with("(truncated)"));
    }
}
