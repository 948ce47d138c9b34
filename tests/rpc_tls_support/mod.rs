//! Helpers of tests/rpc_tls.rs: certificates made by `meridian tls`,
//! agent config files in Consul's `tls {}` syntax, raw and OpenSSL
//! connections to a server's RPC port, and reads of the HTTP API.

#![allow(dead_code)]

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestAgent, BIN};

/// A directory holding a CA and certificates made by `meridian tls`, as
/// an operator following Consul's tutorial would.
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Certs { dir };
        c.meridian(&["tls", "ca", "create"]);
        c
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn meridian(&self, args: &[&str]) {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("runs meridian");
        assert!(
            out.status.success(),
            "meridian {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `tls cert create -server|-client -dc DC`: the new file's stem
    /// (`dc1-server-consul-0`); Consul numbers files as they are made.
    pub fn cert(&self, kind: &str, dc: &str) -> String {
        let prefix = format!("{dc}-{kind}-consul-");
        let n = (0..)
            .find(|n| !self.path(&format!("{prefix}{n}.pem")).exists())
            .unwrap_or(0);
        self.meridian(&["tls", "cert", "create", &format!("-{kind}"), "-dc", dc]);
        format!("{prefix}{n}")
    }

    /// An agent config file (Consul's syntax) for mutual TLS on server
    /// RPC with the certificate `stem`, plus `extra` HCL.
    pub fn config(&self, stem: &str, extra: &str) -> PathBuf {
        let file = self.path(&format!("{stem}.hcl"));
        let text = format!(
            r#"tls {{
  defaults {{
    ca_file = "{ca}"
    cert_file = "{cert}"
    key_file = "{key}"
    verify_incoming = true
    verify_outgoing = true
  }}
  internal_rpc {{
    verify_server_hostname = true
  }}
  https {{
    verify_incoming = false
  }}
}}
{extra}
"#,
            ca = self.path("consul-agent-ca.pem").display(),
            cert = self.path(&format!("{stem}.pem")).display(),
            key = self.path(&format!("{stem}-key.pem")).display(),
        );
        std::fs::write(&file, text).expect("config file");
        file
    }

    /// `openssl s_client` to `port` with the certificate `stem` (TLS 1.2,
    /// where a refused client certificate fails the handshake itself
    /// rather than the first read after it): the server's certificate in
    /// PEM when the handshake succeeded and it names server.dc1.consul.
    pub fn s_client(&self, port: u16, stem: &str, ca: &Path) -> Option<String> {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-tls1_2",
            ])
            .arg("-CAfile")
            .arg(ca)
            .args([
                "-verify_return_error",
                "-verify_hostname",
                "server.dc1.consul",
            ])
            .arg("-cert")
            .arg(self.path(&format!("{stem}.pem")))
            .arg("-key")
            .arg(self.path(&format!("{stem}-key.pem")))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .expect("openssl is installed (apt-get install openssl)");
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return None;
        }
        let begin = text.find("-----BEGIN CERTIFICATE-----")?;
        let end = text.find("-----END CERTIFICATE-----")?;
        Some(pem_body(&text[begin..end]))
    }

    /// A certificate file's base64 body, for comparing with what a peer
    /// presented.
    pub fn pem(&self, file: &str) -> String {
        let text = std::fs::read_to_string(self.path(file)).expect("certificate");
        let end = text.find("-----END CERTIFICATE-----").expect("PEM");
        pem_body(&text[..end])
    }
}

fn pem_body(block: &str) -> String {
    block
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

/// Writes a well-formed request frame (Datacenters, no arguments) in
/// plaintext to `port`; true when the server closes the connection
/// without a byte of answer within `within`.
pub fn plaintext_refused(port: u16, within: Duration) -> bool {
    use std::io::Write;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(within)).expect("timeout");
    // Length 6, request id 1, method 7 (Datacenters), MessagePack nil.
    let _ = s.write_all(&[0, 0, 0, 6, 0, 0, 0, 1, 7, 0xc0]);
    let started = Instant::now();
    let mut b = [0u8; 64];
    let closed = match s.read(&mut b) {
        Ok(n) => n == 0,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    closed && started.elapsed() < within
}

pub fn http_put(a: &TestAgent, path: &str, body: &str) -> (u16, String) {
    match reqwest::blocking::Client::new()
        .put(a.url(path))
        .body(body.to_string())
        .timeout(Duration::from_secs(10))
        .send()
    {
        Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

pub fn http_get(a: &TestAgent, path: &str) -> (u16, String) {
    match reqwest::blocking::Client::new()
        .get(a.url(path))
        .timeout(Duration::from_secs(10))
        .send()
    {
        Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// This server's Raft term (`/v1/agent/self` Stats.raft.term).
pub fn term(a: &TestAgent) -> String {
    a.get_json("/v1/agent/self")["Stats"]["raft"]["term"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
