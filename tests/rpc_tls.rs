//! Mutual TLS on server RPC between built `meridian` processes, with
//! certificates from `meridian tls` and config files in Consul's syntax
//! (`tls { defaults {...} internal_rpc { verify_server_hostname } }`):
//! a three-server cluster and a client form and replicate over it; a
//! plaintext peer, another CA's certificate and a client certificate
//! posing as a server are kept out; a second datacenter federates over
//! it; certificates replaced on disk reach new handshakes after SIGHUP
//! without a leader change. OpenSSL's s_client is the outside peer.

mod common;
mod rpc_tls_support;

use std::time::{Duration, Instant};

use common::*;
use rpc_tls_support::*;

#[test]
fn a_tls_cluster_replicates_and_keeps_out_plaintext_strangers_and_client_certificates() {
    let started = Instant::now();
    let certs = Certs::new();
    let server_cert = certs.cert("server", "dc1");
    let client_cert = certs.cert("client", "dc1");
    let impostor_cert = certs.cert("client", "dc1");
    let server_cfg = certs.config(&server_cert, "");
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let servers = three_servers_with(&dirs[..3], &["-config-file", server_cfg.to_str().unwrap()]);
    let seed = format!("127.0.0.1:{}", servers[0].serf_lan);
    let client_cfg = certs.config(&client_cert, "");
    let client = TestAgent::client_with(
        dirs[3].path(),
        &seed,
        &["-config-file", client_cfg.to_str().unwrap()],
    );

    // A write through the client reaches every server.
    wait_for("the client's write", 20, || {
        http_put(&client, "/v1/kv/tls/one", "v1") == (200, "true".into())
    });
    for s in &servers {
        wait_for("the write replicated", 10, || {
            http_get(s, "/v1/kv/tls/one?stale&raw") == (200, "v1".into())
        });
    }

    // Plaintext is closed without an answer, at once (not by the 5 s
    // handshake deadline).
    for s in &servers {
        assert!(
            plaintext_refused(s.server_port, Duration::from_secs(3)),
            "a plaintext frame was answered or left open"
        );
    }
    // OpenSSL with a certificate of this CA completes a handshake and
    // sees a server certificate; with another CA's it is refused.
    let ca = certs.path("consul-agent-ca.pem");
    let port = servers[0].server_port;
    assert_eq!(
        certs.s_client(port, &client_cert, &ca).as_deref(),
        Some(certs.pem(&format!("{server_cert}.pem")).as_str())
    );
    let other = Certs::new();
    let stranger = other.cert("server", "dc1");
    assert!(
        other.s_client(port, &stranger, &ca).is_none(),
        "another CA's certificate was let in"
    );

    // A server holding only a client certificate cannot take part in
    // Raft: its dials are refused (its certificate names no server) and
    // servers will not dial it, so it never learns the data.
    let leader_before = leader(&servers[0]);
    let term_before = term(&servers[0]);
    let impostor_cfg = certs.config(&impostor_cert, "");
    let impostor = TestAgent::server_expect_with(
        dirs[4].path(),
        3,
        Some(&seed),
        &["-config-file", impostor_cfg.to_str().unwrap()],
    );
    wait_for("the impostor in the LAN pool", 10, || {
        http_get(&servers[0], "/v1/agent/members")
            .1
            .contains(&impostor.node)
    });
    assert_eq!(
        http_put(&client, "/v1/kv/tls/two", "v2"),
        (200, "true".into())
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_ne!(
        http_get(&impostor, "/v1/kv/tls/one?stale&raw"),
        (200, "v1".into()),
        "a server with a client certificate received the data"
    );
    assert_eq!(leader(&servers[0]), leader_before);
    assert_eq!(
        term(&servers[0]),
        term_before,
        "the impostor disturbed Raft"
    );
    let config = http_get(&servers[0], "/v1/operator/raft/configuration").1;
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let voters: Vec<&str> = config["Servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Voter"] == true)
        .filter_map(|s| s["Node"].as_str())
        .collect();
    assert_eq!(voters.len(), 3, "{config}");
    assert!(!voters.contains(&impostor.node.as_str()), "{config}");
    drop(impostor);

    // New certificates on disk and SIGHUP: new handshakes present them,
    // and the cluster keeps its leader and term.
    let renewed = certs.cert("server", "dc1");
    for ext in [".pem", "-key.pem"] {
        std::fs::copy(
            certs.path(&format!("{renewed}{ext}")),
            certs.path(&format!("{server_cert}{ext}")),
        )
        .unwrap();
    }
    for s in &servers {
        s.signal_no_wait(libc::SIGHUP);
    }
    let new_pem = certs.pem(&format!("{renewed}.pem"));
    for s in &servers {
        wait_for("the renewed certificate presented", 10, || {
            certs.s_client(s.server_port, &client_cert, &ca).as_deref() == Some(new_pem.as_str())
        });
    }
    assert_eq!(
        http_put(&client, "/v1/kv/tls/three", "v3"),
        (200, "true".into())
    );
    for s in &servers {
        wait_for("a write after the reload replicated", 10, || {
            http_get(s, "/v1/kv/tls/three?stale&raw") == (200, "v3".into())
        });
    }
    assert_eq!(leader(&servers[0]), leader_before, "the leader changed");
    assert_eq!(term(&servers[0]), term_before, "an election ran");
    eprintln!("took {:?}", started.elapsed());
}

#[test]
fn a_second_datacenter_federates_over_tls() {
    let started = Instant::now();
    let certs = Certs::new();
    let dc1_cert = certs.cert("server", "dc1");
    let dc2_cert = certs.cert("server", "dc2");
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let dc1_cfg = certs.config(&dc1_cert, "");
    let dc1 = TestAgent::server_with(
        dirs[0].path(),
        &[
            "-datacenter",
            "dc1",
            "-config-file",
            dc1_cfg.to_str().unwrap(),
        ],
    );
    let wan = format!("127.0.0.1:{}", dc1.serf_wan);
    let dc2_cfg = certs.config(&dc2_cert, "");
    let dc2 = TestAgent::server_with(
        dirs[1].path(),
        &[
            "-datacenter",
            "dc2",
            "-join-wan",
            &wan,
            "-config-file",
            dc2_cfg.to_str().unwrap(),
        ],
    );

    // dc1 dials dc2's server as server.dc2.consul, and back.
    wait_for("a write to dc2 through dc1", 20, || {
        http_put(&dc1, "/v1/kv/fed/k?dc=dc2", "there") == (200, "true".into())
    });
    assert_eq!(
        http_get(&dc1, "/v1/kv/fed/k?dc=dc2&raw"),
        (200, "there".into())
    );
    assert_eq!(http_get(&dc2, "/v1/kv/fed/k?raw"), (200, "there".into()));
    assert_eq!(
        http_get(&dc1, "/v1/kv/fed/k?raw").0,
        404,
        "dc1 keeps its own data"
    );
    assert_eq!(
        http_put(&dc2, "/v1/kv/fed/back?dc=dc1", "here"),
        (200, "true".into())
    );
    assert_eq!(http_get(&dc1, "/v1/kv/fed/back?raw"), (200, "here".into()));
    // Both ends refuse plaintext, so that was TLS.
    assert!(plaintext_refused(dc1.server_port, Duration::from_secs(3)));
    assert!(plaintext_refused(dc2.server_port, Duration::from_secs(3)));
    eprintln!("took {:?}", started.elapsed());
}
