//! What the ACL CLI tests share: running the CLI with only the token
//! variables a test gives, reading Consul's pretty layout, an ACL server,
//! and a one-request HTTP listener that records what the CLI sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;

use super::common::*;

/// Every variable a token could come from, so the test's own environment
/// cannot leak one into a command.
const TOKEN_VARS: [&str; 4] = [
    "MERIDIAN_HTTP_TOKEN",
    "CONSUL_HTTP_TOKEN",
    "MERIDIAN_HTTP_TOKEN_FILE",
    "CONSUL_HTTP_TOKEN_FILE",
];

/// Runs the CLI against `http` with only the token variables in `env`.
pub fn cli_env(http: &str, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("MERIDIAN_HTTP_ADDR", http)
        .env_remove("CONSUL_HTTP_ADDR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in TOKEN_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn cli");
    if let (Some(data), Some(mut s)) = (stdin, child.stdin.take()) {
        s.write_all(data).expect("stdin");
    }
    child.wait_with_output().expect("cli output")
}

/// A successful command's stdout (panics with its stderr otherwise).
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The value after `Label:` in Consul's pretty layout.
/// Asserts the command exited 1 and its stderr says `says`.
pub fn fails_saying(o: &Output, says: &str) {
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(o).contains(says), "{}", stderr(o));
}

pub fn field(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {label} in:\n{out}"))
}

pub fn acl_server(dir: &tempfile::TempDir) -> TestAgent {
    let conf = dir.path().join("acl.hcl");
    std::fs::write(
        &conf,
        "acl {\n  enabled = true\n  default_policy = \"deny\"\n}\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let a = TestAgent::server_expect_with(
        &data,
        1,
        None,
        &["-config-file", &conf.display().to_string()],
    );
    wait_for("a leader", 30, || !leader(&a).is_empty());
    a
}

/// `extra` with `-token management` appended.
pub fn with<'a>(management: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = extra.to_vec();
    v.extend(["-token", management]);
    v
}

/// A listener on a port of its own that answers one request with an empty
/// 200 and hands back the request's lines (without the blank line) and
/// body.
pub fn one_request_server() -> (String, JoinHandle<(Vec<String>, String)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push(line.trim_end().to_string());
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut w = stream;
        w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        (head, String::from_utf8(body).unwrap())
    });
    (addr, server)
}
