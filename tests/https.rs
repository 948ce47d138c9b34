//! The HTTPS listener and the per-IP HTTP connection limit, checked with
//! software we did not write (curl, openssl s_client) and with the built
//! CLI, against an agent started in this process with the settings set
//! directly (certificates from `meridian tls`).
//!
//! The agent's actors run on this test's thread, so every outside program
//! runs on a blocking thread, never on this one.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::inproc::{loopback_config, until};
use meridian::config::{RuntimeConfig, TlsProtocol};
use meridian::watch::{WatchHandler, WatchKind, WatchPlan};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_meridian");

/// Runs `prog args` in `dir` with `env` added, on a blocking thread.
async fn run(dir: &Path, prog: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        // The CLI must take what the test gives, not the caller's shell.
        .env_remove("CONSUL_HTTP_ADDR")
        .env_remove("MERIDIAN_HTTP_ADDR")
        .env_remove("CONSUL_HTTP_SSL")
        .env_remove("CONSUL_CACERT")
        .envs(env.iter().copied());
    tokio::task::spawn_blocking(move || cmd.output().expect("the program runs"))
        .await
        .expect("blocking thread")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A CA, a server certificate and a client certificate, as a Consul
/// tutorial makes them.
async fn certs(dir: &Path) {
    for args in [
        &["tls", "ca", "create"][..],
        &["tls", "cert", "create", "-server", "-dc", "dc1"],
        &["tls", "cert", "create", "-client", "-dc", "dc1"],
    ] {
        let o = run(dir, BIN, args, &[]).await;
        assert!(o.status.success(), "meridian {args:?}: {}", text(&o));
    }
}

const CA: &str = "consul-agent-ca.pem";
const SERVER: (&str, &str) = ("dc1-server-consul-0.pem", "dc1-server-consul-0-key.pem");
const CLIENT: (&str, &str) = ("dc1-client-consul-0.pem", "dc1-client-consul-0-key.pem");

/// A dev server serving only HTTPS (`ports.http = -1`), requiring client
/// certificates.
fn https_config(dir: &Path) -> RuntimeConfig {
    let mut cfg = RuntimeConfig {
        dev: true,
        server: true,
        bootstrap: true,
        data_dir: Some(dir.join("data")),
        ..loopback_config("https-node")
    };
    cfg.ports.http = None;
    cfg.ports.https = Some(0);
    cfg.tls.https = TlsProtocol {
        ca_file: Some(dir.join(CA)),
        cert_file: Some(dir.join(SERVER.0)),
        key_file: Some(dir.join(SERVER.1)),
        verify_incoming: true,
        ..TlsProtocol::default()
    };
    cfg
}

/// curl with the CA and the client certificate; (exit ok, body).
async fn curl(dir: &Path, url: &str, client_cert: bool) -> (bool, String) {
    let mut args = vec!["-sS", "--max-time", "10", "--cacert", CA];
    if client_cert {
        args.extend(["--cert", CLIENT.0, "--key", CLIENT.1]);
    }
    args.push(url);
    let o = run(dir, "curl", &args, &[]).await;
    (o.status.success(), text(&o))
}

/// `openssl s_client` with the client certificate and `extra` flags:
/// whether the handshake completed, and everything it printed.
async fn s_client(dir: &Path, addr: &str, extra: &[&str]) -> (bool, String) {
    let mut args = vec![
        "s_client", "-connect", addr, "-CAfile", CA, "-cert", CLIENT.0, "-key", CLIENT.1,
    ];
    args.extend_from_slice(extra);
    let o = run(dir, "openssl", &args, &[]).await;
    let out = text(&o);
    // "Cipher is (NONE)" is s_client's report of a handshake that failed.
    let done = o.status.success()
        && out.contains("Verify return code: 0 (ok)")
        && !out.contains("Cipher is (NONE)");
    (done, out)
}

/// The first certificate in PEM text, without line breaks.
fn first_pem(s: &str) -> String {
    let start = s
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a certificate");
    let end = s[start..]
        .find("-----END CERTIFICATE-----")
        .expect("its end")
        + start;
    s[start..end].split_whitespace().collect()
}

#[actix_rt::test]
async fn https_only_with_client_certificates_for_curl_openssl_and_the_cli_and_reload_takes_new_certificates(
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    certs(dir).await;
    let mut cfg = https_config(dir);
    // With no HTTP listener the agent's watches reach it over HTTPS, with
    // its own CA and certificate.
    let watch_out = dir.join("watch.out");
    cfg.watches = vec![WatchPlan {
        kind: WatchKind::Key("watched".into()),
        datacenter: None,
        token: None,
        stale: false,
        handler: WatchHandler::Script {
            args: vec![
                "sh".into(),
                "-c".into(),
                format!("cat >> {}", watch_out.display()),
            ],
            shell: false,
        },
    }];
    let reload_cfg = cfg.clone();
    let source: meridian::actors::node::ConfigSource = Arc::new(move || Ok(reload_cfg.clone()));
    let h = meridian::agent::start(cfg, Some(source))
        .await
        .expect("agent starts");
    assert!(h.http_addrs.is_empty(), "http = -1 opens no HTTP listener");
    let addr = h.https_addrs[0].to_string();
    let url = format!("https://{addr}");

    // curl: the CA and a client certificate get in; no certificate, no
    // answer.
    until("a leader over HTTPS", || {
        let u = format!("{url}/v1/status/leader");
        async move {
            let (ok, body) = curl(dir, &u, true).await;
            ok && body.contains(':')
        }
    })
    .await;
    let (ok, out) = curl(dir, &format!("{url}/v1/status/leader"), false).await;
    assert!(
        !ok,
        "without a client certificate curl must be refused: {out}"
    );
    // ALPN: curl speaks HTTP/2 when offered, HTTP/1.1 when told to.
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let args = [
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            flag,
            "--cacert",
            CA,
            "--cert",
            CLIENT.0,
            "--key",
            CLIENT.1,
        ];
        let leader = format!("{url}/v1/status/leader");
        let o = run(dir, "curl", &[&args[..], &[leader.as_str()]].concat(), &[]).await;
        assert_eq!(String::from_utf8_lossy(&o.stdout), version, "{}", text(&o));
    }

    // openssl: TLS 1.2 and 1.3, not 1.1 (the client is allowed to offer
    // it, so the refusal is the agent's).
    let (ok, out) = s_client(dir, &addr, &["-tls1_2"]).await;
    assert!(ok && out.contains("TLSv1.2"), "{out}");
    let (ok, out) = s_client(dir, &addr, &["-tls1_3"]).await;
    assert!(ok && out.contains("TLSv1.3"), "{out}");
    let (ok, out) = s_client(dir, &addr, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]).await;
    assert!(!ok, "TLS 1.1 must be refused: {out}");
    // rustls answers a TLS 1.1-only hello with a handshake_failure alert.
    assert!(out.contains("alert handshake failure"), "{out}");

    // The CLI: flags, then Consul's variables.
    let tls_flags = [
        "-ca-file",
        CA,
        "-client-cert",
        CLIENT.0,
        "-client-key",
        CLIENT.1,
    ];
    let put = [
        &["kv", "put", "-http-addr", &url][..],
        &tls_flags,
        &["greeting", "hello"],
    ]
    .concat();
    let o = run(dir, BIN, &put, &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "Success! Data written to: greeting"
    );
    let env = [
        ("CONSUL_HTTP_ADDR", url.as_str()),
        ("CONSUL_CACERT", CA),
        ("CONSUL_CLIENT_CERT", CLIENT.0),
        ("CONSUL_CLIENT_KEY", CLIENT.1),
    ];
    let o = run(dir, BIN, &["kv", "get", "greeting"], &env).await;
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "hello",
        "{}",
        text(&o)
    );
    // CONSUL_HTTP_SSL makes a bare address HTTPS; MERIDIAN_ twins work.
    let env = [
        ("MERIDIAN_HTTP_ADDR", addr.as_str()),
        ("CONSUL_HTTP_SSL", "true"),
        ("MERIDIAN_CACERT", CA),
        ("MERIDIAN_CLIENT_CERT", CLIENT.0),
        ("MERIDIAN_CLIENT_KEY", CLIENT.1),
    ];
    let o = run(dir, BIN, &["kv", "get", "greeting"], &env).await;
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "hello",
        "{}",
        text(&o)
    );
    // Without the client certificate the agent refuses the CLI too.
    let o = run(
        dir,
        BIN,
        &["kv", "get", "-http-addr", &url, "-ca-file", CA, "greeting"],
        &[],
    )
    .await;
    assert!(!o.status.success(), "{}", text(&o));
    // The certificate is checked against -tls-server-name instead of the
    // address: a name it carries passes, one it lacks fails.
    let get_as = |name: &'static str| {
        [
            &["kv", "get", "-http-addr", &url][..],
            &tls_flags,
            &["-tls-server-name", name, "greeting"],
        ]
        .concat()
    };
    let o = run(dir, BIN, &get_as("server.dc1.consul"), &[]).await;
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "hello",
        "{}",
        text(&o)
    );
    let o = run(dir, BIN, &get_as("other.example"), &[]).await;
    assert!(
        !o.status.success(),
        "a name the certificate lacks: {}",
        text(&o)
    );
    // A directory of CAs (-ca-path, CONSUL_CAPATH), a key file among them.
    std::fs::create_dir(dir.join("cas")).expect("mkdir");
    std::fs::copy(dir.join(CA), dir.join("cas").join("ca.pem")).expect("copy CA");
    std::fs::copy(dir.join(CLIENT.1), dir.join("cas").join("stray-key.pem")).expect("copy key");
    let env = [
        ("CONSUL_HTTP_ADDR", url.as_str()),
        ("CONSUL_CAPATH", "cas"),
        ("CONSUL_CLIENT_CERT", CLIENT.0),
        ("CONSUL_CLIENT_KEY", CLIENT.1),
    ];
    let o = run(dir, BIN, &["kv", "get", "greeting"], &env).await;
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "hello",
        "{}",
        text(&o)
    );
    // Without verification, and with no CA, the client takes the agent's
    // certificate; with verification and no CA (public roots) it does not.
    let o = run(
        dir,
        BIN,
        &[
            &["kv", "get", "-http-addr", &url][..],
            &tls_flags[2..],
            &["greeting"],
        ]
        .concat(),
        &[],
    )
    .await;
    assert!(
        !o.status.success(),
        "public roots do not know the agent's CA: {}",
        text(&o)
    );
    // CONSUL_HTTP_SSL_VERIFY=false: no CA needed.
    let env = [
        ("CONSUL_HTTP_SSL_VERIFY", "false"),
        ("CONSUL_CLIENT_CERT", CLIENT.0),
        ("CONSUL_CLIENT_KEY", CLIENT.1),
    ];
    let o = run(
        dir,
        BIN,
        &["kv", "get", "-http-addr", &url, "greeting"],
        &env,
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "hello",
        "{}",
        text(&o)
    );

    // The watch saw the key written over HTTPS.
    let put = [
        &["kv", "put", "-http-addr", &url][..],
        &tls_flags,
        &["watched", "seen"],
    ]
    .concat();
    assert!(run(dir, BIN, &put, &[]).await.status.success());
    until("the watch handler to see the key", || {
        let f = watch_out.clone();
        async move { std::fs::read_to_string(&f).is_ok_and(|s| s.contains("\"Key\": \"watched\"")) }
    })
    .await;

    // The load generator takes the same flags.
    let report = dir.join("bench.json");
    let bench = [
        &[
            "bench",
            "-workload",
            "kv-put",
            "-addr",
            &url,
            "-duration",
            "1s",
            "-c",
            "2",
            "-keys",
            "5",
            "-quiet",
            "-json",
        ][..],
        &[report.to_str().expect("utf-8 path")],
        &tls_flags,
    ]
    .concat();
    let o = run(dir, BIN, &bench, &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("json");
    assert!(r["ok"].as_u64().unwrap_or(0) > 0, "{r}");
    assert_eq!(r["errors"], serde_json::json!({}), "{r}");

    // Reload: a new server certificate on disk, `meridian reload` over
    // HTTPS, and the next handshake presents it.
    let (_, before) = s_client(dir, &addr, &["-showcerts"]).await;
    let old = std::fs::read_to_string(dir.join(SERVER.0)).expect("old cert");
    assert_eq!(first_pem(&before), first_pem(&old));
    let o = run(
        dir,
        BIN,
        &["tls", "cert", "create", "-server", "-dc", "dc1"],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    for (from, to) in [
        ("dc1-server-consul-1.pem", SERVER.0),
        ("dc1-server-consul-1-key.pem", SERVER.1),
    ] {
        std::fs::copy(dir.join(from), dir.join(to)).expect("replace the certificate");
    }
    let new = std::fs::read_to_string(dir.join(SERVER.0)).expect("new cert");
    assert_ne!(first_pem(&old), first_pem(&new));
    let reload = [&["reload", "-http-addr", &url][..], &tls_flags].concat();
    let o = run(dir, BIN, &reload, &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    let (ok, after) = s_client(dir, &addr, &["-showcerts"]).await;
    assert!(ok, "{after}");
    assert_eq!(
        first_pem(&after),
        first_pem(&new),
        "the reloaded certificate is presented"
    );
    // Connections keep working with it.
    let (ok, body) = curl(dir, &format!("{url}/v1/kv/greeting?raw"), true).await;
    assert!(ok && body == "hello", "{body}");
    actix::System::current().stop();
}

#[actix_rt::test]
async fn an_https_port_without_a_certificate_refuses_to_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cfg = loopback_config("no-cert");
    cfg.ports.https = Some(0);
    cfg.tls.https.ca_file = Some(tmp.path().join(CA));
    let err = match meridian::agent::start(cfg, None).await {
        Ok(_) => panic!("an HTTPS port without a certificate must not start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("tls.https has no cert_file and key_file"),
        "{err}"
    );
}

/// Sends a request on `s` and reads until the end of the answer's head.
async fn request(s: &mut tokio::net::TcpStream) -> String {
    s.write_all(b"GET /v1/agent/self HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Everything the agent sends on `s` until it closes it.
async fn read_to_close(s: &mut tokio::net::TcpStream) -> String {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("closed within 10 s");
    String::from_utf8_lossy(&got).into_owned()
}

#[actix_rt::test]
async fn connections_over_the_per_client_limit_get_429_and_a_closed_one_frees_its_place() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let mut cfg = loopback_config("limited");
    cfg.limits.http_max_conns_per_client = 5;
    // What a reload reads: the same config with the limit `reloaded`.
    let reloaded = Arc::new(std::sync::atomic::AtomicU32::new(5));
    let source: meridian::actors::node::ConfigSource = {
        let (cfg, reloaded) = (cfg.clone(), reloaded.clone());
        Arc::new(move || {
            let mut c = cfg.clone();
            c.limits.http_max_conns_per_client = reloaded.load(std::sync::atomic::Ordering::SeqCst);
            Ok(c)
        })
    };
    let h = meridian::agent::start(cfg, Some(source))
        .await
        .expect("agent starts");
    let addr = h.http_addrs[0];

    // Five connections, each served (so each holds its place).
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = request(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(s);
    }
    // The sixth: Consul's 429, then the close, for us and for curl.
    let mut sixth = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let got = read_to_close(&mut sixth).await;
    assert_eq!(got, "HTTP/1.1 429 Too Many Requests\r\n\r\n");
    let url = format!("http://{addr}/v1/agent/self");
    let o = run(
        dir,
        "curl",
        &[
            "-s",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ],
        &[],
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&o.stdout), "429", "{}", text(&o));
    // The five still work.
    let head = request(&mut held[0]).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // One closes; a new connection gets its place.
    drop(held.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let _again = loop {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        if request(&mut s).await.starts_with("HTTP/1.1 200") {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no place freed within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    // ...and only one: with the new one open, the next is refused again.
    let mut over = tokio::net::TcpStream::connect(addr).await.expect("connect");
    assert!(read_to_close(&mut over).await.starts_with("HTTP/1.1 429"));

    // A reload raises the limit for new connections, as Consul's does.
    reloaded.store(6, std::sync::atomic::Ordering::SeqCst);
    h.node
        .send(meridian::actors::node::Reload)
        .await
        .expect("node actor")
        .expect("reload");
    let mut sixth = tokio::net::TcpStream::connect(addr).await.expect("connect");
    assert!(request(&mut sixth).await.starts_with("HTTP/1.1 200"));
    let mut seventh = tokio::net::TcpStream::connect(addr).await.expect("connect");
    assert!(read_to_close(&mut seventh)
        .await
        .starts_with("HTTP/1.1 429"));
    drop(held);
    actix::System::current().stop();
}
