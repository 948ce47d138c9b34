//! Agents started inside the test process (`meridian::agent::start` on
//! the current actix system) on ephemeral loopback ports, for tests that
//! need to reach the actors themselves (Raft membership, status), and
//! async helpers to poll and read their HTTP API.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use meridian::agent::AgentHandle;
use meridian::config::{AclConfig, Ports, RuntimeConfig};

/// A server running in this process.
pub struct Server {
    pub handle: AgentHandle,
    /// `http://ip:port` of its HTTP API.
    pub http: String,
    /// `127.0.0.1:port` of its server RPC (its Raft address).
    pub rpc: String,
    /// Its node ID (the Raft ID is derived from it).
    pub id: String,
}

/// Starts a server named `name` with no gossip (HTTP and server RPC on
/// ephemeral ports, no DNS); with `bootstrap` it elects itself, otherwise
/// it waits to be added as a voter.
pub async fn server(name: &str, bootstrap: bool) -> Server {
    let mut cfg = loopback_config(name);
    let id = cfg.node_id.clone();
    cfg.server = true;
    cfg.bootstrap = bootstrap;
    cfg.ports.server = Some(0);
    let handle = meridian::agent::start(cfg, None)
        .await
        .expect("server starts");
    let http = format!("http://{}", handle.http_addrs[0]);
    let rpc = handle.rpc_addr.expect("a server has an RPC listener");
    Server {
        handle,
        http,
        rpc: rpc.to_string(),
        id,
    }
}

/// Polls `f` every 25 ms until it holds; panics after 20 s (the bound
/// only keeps a broken run from hanging).
pub async fn until<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// GET `url`: status and body; a transport error is status 0 with its text.
pub async fn get(url: String) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// A dev server with these ACL settings (HTTP on an ephemeral port, data
/// under `data_dir`, for the bootstrap reset file), once it has a leader:
/// its `http://ip:port`. `/v1/status/leader` is open under any policy.
pub async fn acl_dev_agent(acl: AclConfig, data_dir: &std::path::Path) -> String {
    acl_dev_server(acl, data_dir).await.1
}

/// [`acl_dev_agent`] with its handle, for tests that write through the
/// request path directly (what the HTTP API would refuse to shape).
pub async fn acl_dev_server(acl: AclConfig, data_dir: &std::path::Path) -> (AgentHandle, String) {
    start_dev(dev_config(acl, data_dir)).await
}

/// The dev server [`acl_dev_server`] starts, for a test that changes a
/// setting first.
pub fn dev_config(acl: AclConfig, data_dir: &std::path::Path) -> RuntimeConfig {
    RuntimeConfig {
        dev: true,
        server: true,
        bootstrap: true,
        data_dir: Some(data_dir.to_path_buf()),
        acl,
        ..loopback_config("test-node")
    }
}

/// An agent named `name` (a new node ID) with only its HTTP API, on an
/// ephemeral port of 127.0.0.1: no DNS, server RPC or gossip.
pub fn loopback_config(name: &str) -> RuntimeConfig {
    RuntimeConfig {
        node_name: name.into(),
        node_id: uuid::Uuid::new_v4().to_string(),
        bind_addr: [127, 0, 0, 1].into(),
        ports: Ports {
            http: Some(0),
            dns: None,
            server: None,
            serf_lan: None,
            serf_wan: None,
            https: None,
        },
        ..Default::default()
    }
}

/// Starts `cfg` and waits for a leader: its handle and `http://ip:port`.
pub async fn start_dev(cfg: RuntimeConfig) -> (AgentHandle, String) {
    let h = meridian::agent::start(cfg, None)
        .await
        .expect("agent starts");
    let base = format!("http://{}", h.http_addrs[0]);
    until("a leader", || async {
        get(format!("{base}/v1/status/leader")).await.1.len() > 2
    })
    .await;
    (h, base)
}
