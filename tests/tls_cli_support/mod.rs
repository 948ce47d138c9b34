//! Helpers of tests/tls_cli.rs: running the built binary and OpenSSL in a
//! directory, reading `openssl x509 -text`, and an `s_server`/`s_client`
//! pair for handshakes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_meridian");

pub fn meridian(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs meridian")
}

/// Runs meridian and insists it succeeded; returns its standard output.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = meridian(dir, args);
    assert!(
        out.status.success(),
        "meridian {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs meridian and insists it failed with exit 1; returns its stderr.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let out = meridian(dir, args);
    assert_eq!(out.status.code(), Some(1), "meridian {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl is installed (apt-get install openssl)")
}

pub fn x509_text(dir: &Path, file: &str) -> String {
    let out = openssl(dir, &["x509", "-noout", "-text", "-in", file]);
    assert!(out.status.success(), "openssl cannot read {file}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn verifies(dir: &Path, ca: &str, cert: &str) -> bool {
    openssl(dir, &["verify", "-CAfile", ca, cert])
        .status
        .success()
}

/// Whether the certificate is still valid `days` days from now.
pub fn valid_in(dir: &Path, file: &str, days: u64) -> bool {
    let secs = (days * 86_400).to_string();
    openssl(dir, &["x509", "-noout", "-checkend", &secs, "-in", file])
        .status
        .success()
}

/// The line after `heading` in `openssl x509 -text` output.
pub fn field<'a>(text: &'a str, heading: &str) -> &'a str {
    let mut lines = text.lines();
    lines
        .find(|l| l.contains(heading))
        .unwrap_or_else(|| panic!("no {heading} in\n{text}"));
    lines.next().map(str::trim).unwrap_or("")
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("file").permissions().mode() & 0o777
}

/// An `openssl s_server` on an ephemeral loopback port with the given
/// certificate, requiring a client certificate from the CA; answers one
/// connection. Returns the process and its port.
pub fn s_server(dir: &Path, cert: &str, key: &str) -> (std::process::Child, u16) {
    let mut child = Command::new("openssl")
        .args(["s_server", "-accept", "127.0.0.1:0", "-naccept", "1"])
        .args(["-cert", cert, "-key", key, "-CAfile", "consul-agent-ca.pem"])
        .args(["-Verify", "1", "-verify_return_error"])
        .current_dir(dir)
        // An open stdin keeps s_server serving; EOF would stop it.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server starts");
    let stdout = child.stdout.take().expect("stdout");
    let port = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("ACCEPT 127.0.0.1:")?.trim().parse().ok())
        .expect("s_server reports its port");
    (child, port)
}

pub fn s_client(dir: &Path, port: u16, hostname: &str) -> bool {
    let connect = format!("127.0.0.1:{port}");
    let args = [
        "s_client",
        "-connect",
        &connect,
        "-CAfile",
        "consul-agent-ca.pem",
        "-verify_return_error",
        "-verify_hostname",
        hostname,
        "-cert",
        "dc1-cli-consul-0.pem",
        "-key",
        "dc1-cli-consul-0-key.pem",
        "-brief",
    ];
    openssl(dir, &args).status.success()
}

/// The DER bytes of a certificate file's issuer and subject names, as
/// written: Go and webpki chain a certificate to its CA by comparing these
/// bytes exactly, which is stricter than `openssl verify`.
pub fn issuer_and_subject(dir: &Path, file: &str) -> (Vec<u8>, Vec<u8>) {
    use base64::Engine;
    let pem = std::fs::read_to_string(dir.join(file)).expect("certificate file");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("PEM body");
    let (cert, _) = der_element(&der);
    let (tbs, _) = der_element(content(cert));
    let mut rest = content(tbs);
    let mut fields = Vec::new();
    while !rest.is_empty() {
        let (el, next) = der_element(rest);
        fields.push(el);
        rest = next;
    }
    // [0] version, serial, signature algorithm, issuer, validity, subject.
    assert_eq!(fields[0][0], 0xa0, "v3 certificate");
    (fields[3].to_vec(), fields[5].to_vec())
}

/// Splits one DER element (tag, length, content) off the front.
fn der_element(b: &[u8]) -> (&[u8], &[u8]) {
    let (header, len) = match b[1] {
        n if n < 0x80 => (2, n as usize),
        n => {
            let k = (n & 0x7f) as usize;
            let len = b[2..2 + k]
                .iter()
                .fold(0usize, |a, x| (a << 8) | *x as usize);
            (2 + k, len)
        }
    };
    b.split_at(header + len)
}

fn content(el: &[u8]) -> &[u8] {
    let header = if el[1] < 0x80 {
        2
    } else {
        2 + (el[1] & 0x7f) as usize
    };
    &el[header..]
}

/// Whether the key file is SEC1 (`EC PRIVATE KEY`, as Consul writes keys)
/// and holds the private half of the certificate's public key.
pub fn key_matches(dir: &Path, key: &str, cert: &str) -> bool {
    let pem = std::fs::read_to_string(dir.join(key)).expect("key file");
    let from_key = openssl(dir, &["pkey", "-in", key, "-pubout"]);
    let from_cert = openssl(dir, &["x509", "-pubkey", "-noout", "-in", cert]);
    pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n")
        && from_key.status.success()
        && from_cert.status.success()
        && from_key.stdout == from_cert.stdout
}
