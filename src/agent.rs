//! Starting and running an agent: opens storage, starts the actors and the
//! gossip pools (their options read from the config here, the one place
//! that knows both), binds the listeners, and runs until a leave, SIGINT
//! or SIGTERM. SIGHUP reloads the config files.

use std::net::SocketAddr;
use std::sync::Arc;


use crate::actors::health::HealthActor;
use crate::actors::node::endpoint::Endpoint;
use crate::actors::node::{ConfigSource, NodeActor, Reload, Router};
use crate::actors::raft::RaftActor;
use crate::config::RuntimeConfig;
use crate::http::{self, ApiState};
use crate::lan::keyring::{KeyError, Keyring};
use crate::lan::LanOptions;

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = match level.to_ascii_lowercase().as_str() {
            "trace" => "trace",
            "debug" => "debug",
            "warn" => "warn",
            "err" | "error" => "error",
            _ => "info",
        };
        tracing_subscriber::EnvFilter::new(format!(
            "meridian={level},openraft=warn,actix_server=warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// The gossip pools' options from the config. They are read here, where
/// the agent is assembled, so that the gossip layer does not depend on the
/// config, which already uses the gossip layer's key parsing.
fn lan_options(c: &RuntimeConfig) -> Result<LanOptions, KeyError> {
    let keyring = match &c.encrypt {
        Some(key) => {
            let mut ring = Keyring::new(std::slice::from_ref(key))?;
            ring.verify_incoming = c.encrypt_verify_incoming;
            ring.verify_outgoing = c.encrypt_verify_outgoing;
            Some(ring)
        }
        None => None,
    };
    Ok(LanOptions {
        keyring,
        snapshot: c
            .data_dir
            .as_ref()
            .filter(|_| !c.dev)
            .map(|d| d.join("serf").join("local.snapshot")),
        rejoin_after_leave: c.rejoin_after_leave,
        reconnect_timeout: c.reconnect_timeout,
        ..LanOptions::default()
    })
}

/// Runs an agent until it is told to leave or is interrupted.
pub fn run(config: RuntimeConfig) -> anyhow::Result<()> {
    run_with_reload(config, None)
}

/// Like [`run`], with the function that rebuilds the config on reload.
pub fn run_with_reload(config: RuntimeConfig, reload: Option<ConfigSource>) -> anyhow::Result<()> {
    init_logging(&config.log_level);
    let sys = actix::System::new();
    sys.block_on(start(config, reload))?;
    sys.run()?;
    Ok(())
}

/// A started agent: where it listens, and its `Node` actor.
pub struct AgentHandle {
    pub node: actix::Addr<NodeActor>,
    /// The Raft actor, on servers.
    pub raft: Option<actix::Addr<RaftActor>>,
    /// The request path every read and write of this agent takes.
    pub router: Router,
    pub http_addrs: Vec<SocketAddr>,
    pub dns_addrs: Vec<SocketAddr>,
}

/// Starts every actor and listener on the current actix system. Ports of 0
/// bind ephemeral ports; the handle says which.
pub async fn start(
    config: RuntimeConfig,
    reload: Option<ConfigSource>,
) -> anyhow::Result<AgentHandle> {
    let config = Arc::new(config);
    tracing::info!(
        node = %config.node_name, datacenter = %config.datacenter, server = config.server, dev = config.dev,
        "starting Meridian agent {}", env!("CARGO_PKG_VERSION")
    );
    // Bind before Raft starts so a port conflict fails the start cleanly.
    let rpc_listener = match config.ports.server.filter(|_| config.server) {
        Some(port) => Some(tokio::net::TcpListener::bind((config.bind_addr, port)).await?),
        None => None,
    };
    let (raft, local) = if config.server {
        let (actor, local) = RaftActor::start(config.clone()).await?;
        (Some(actor), Some(local))
    } else {
        (None, None)
    };
    let health = HealthActor::start_on_own_thread();
    let lan = match config.ports.serf_lan {
        Some(port) => Some(
            crate::lan::LanGossip::start(
                config.node_name.clone(),
                SocketAddr::new(config.bind_addr, port),
                config.advertise(),
                config.gossip_tags(),
                lan_options(&config)?,
            )
            .await?,
        ),
        None => None,
    };
    if let (Some(r), Some(l)) = (&raft, &lan) {
        r.do_send(crate::actors::raft::AttachLan(l.clone()));
    }
    // The WAN pool holds servers only.
    let wan = match config.ports.serf_wan.filter(|_| config.server) {
        Some(port) => Some(
            crate::wan::start(
                &config.node_name,
                &config.datacenter,
                SocketAddr::new(config.bind_addr, port),
                config.advertise_wan(),
                config.gossip_tags(),
                lan_options(&config)?,
            )
            .await?,
        ),
        None => None,
    };
    // The router fires this datacenter's user events through the `Node`
    // actor, which routes its own writes through the router.
    let node_ctx = actix::Context::<NodeActor>::new();
    use actix::AsyncContext;
    let router = Router::new(
        &config,
        local.clone(),
        wan.clone(),
        node_ctx.address().recipient(),
    );
    let node = node_ctx.run(NodeActor::new(
        config.clone(),
        router.clone(),
        Some(health),
        lan,
        wan,
        reload,
    ));
    if let (Some(listener), Some(local)) = (rpc_listener, local) {
        tracing::info!(addr = ?listener.local_addr().ok(), "server RPC listening");
        let endpoint = Endpoint {
            local,
            router: router.clone(),
        };
        actix::spawn(crate::rpc::server::serve(listener, Arc::new(endpoint)));
    }

    let mut dns_addrs = Vec::new();
    if let Some(port) = config.ports.dns {
        for ip in &config.client_addrs {
            let (_, udp, _) = crate::actors::dns::DnsActor::start(
                config.clone(),
                Arc::new(router.clone()),
                SocketAddr::new(*ip, port),
            )
            .await?;
            dns_addrs.push(udp);
        }
    }

    let mut http_addrs = Vec::new();
    if let Some(port) = config.ports.http {
        let addrs: Vec<SocketAddr> = config
            .client_addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect();
        let (server, bound) = http::server(
            ApiState {
                node: node.clone(),
                router: router.clone(),
                config: config.clone(),
            },
            &addrs,
        )?;
        tracing::info!(addrs = ?bound, "HTTP API listening");
        if let Some(a) = bound.first() {
            let ip = if a.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                a.ip()
            };
            crate::watch::start_config_watches(
                &config.watches,
                format!("http://{}", SocketAddr::new(ip, a.port())),
            );
        }
        http_addrs = bound;
        actix::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "HTTP server failed");
            }
            actix::System::current().stop();
        });
    }

    // SIGINT/SIGTERM: leave the pool first when Consul's defaults (or the
    // config) say so, then stop everything.
    let (sig_node, sig_config) = (node.clone(), config.clone());
    actix::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let leave = tokio::select! {
            _ = int.recv() => sig_config.leaves_on_interrupt(),
            _ = term.recv() => sig_config.leaves_on_terminate(),
        };
        if leave {
            tracing::info!("signal received: leaving gracefully");
            let _ = sig_node.send(crate::actors::node::LeaveLan).await;
        } else {
            tracing::info!("signal received: shutting down without leaving");
        }
        actix::System::current().stop();
    });
    let hup_node = node.clone();
    actix::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading configuration");
            match hup_node.send(Reload).await {
                Ok(Err(e)) => tracing::error!(error = %e, "reload failed"),
                Err(e) => tracing::error!(error = %e, "reload failed"),
                Ok(Ok(())) => {}
            }
        }
    });
    Ok(AgentHandle {
        node,
        raft,
        router,
        http_addrs,
        dns_addrs,
    })
}
