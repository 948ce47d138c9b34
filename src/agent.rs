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
use crate::lan::keyring::Keyring;
use crate::lan::LanOptions;

/// Sets up logging at `level` (or `RUST_LOG`); false when a subscriber
/// was already set, by whoever embeds the agent.
fn init_logging(level: &str) -> bool {
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
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    // The monitor has its own filter: `/v1/agent/monitor?loglevel=debug`
    // shows debug lines of an agent that logs at info, as Consul's does.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_filter(filter),
        )
        .with(crate::logstream::MonitorLayer.with_filter(crate::logstream::layer_filter()))
        .try_init()
        .is_ok()
}

/// Which gossip pool's options to build: its name in Consul's warning and
/// its keyring file under `<data-dir>/serf/`.
#[derive(Clone, Copy)]
enum Pool {
    Lan,
    Wan,
}

impl Pool {
    fn name(self) -> &'static str {
        match self {
            Pool::Lan => "LAN",
            Pool::Wan => "WAN",
        }
    }

    fn keyring_file(self) -> &'static str {
        match self {
            Pool::Lan => "local.keyring",
            Pool::Wan => "remote.keyring",
        }
    }
}

/// A gossip pool's options from the config. They are read here, where
/// the agent is assembled, so that the gossip layer does not depend on the
/// config, which already uses the gossip layer's key parsing.
///
/// The keyring as Consul sets it up: a keyring file from an earlier run
/// wins over `encrypt` (a rotation outlives restarts), and `encrypt`
/// with no file yet writes one.
fn pool_options(c: &RuntimeConfig, pool: Pool) -> anyhow::Result<LanOptions> {
    let serf_dir = c
        .data_dir
        .as_ref()
        .filter(|_| !c.dev)
        .map(|d| d.join("serf"));
    let keyring_file = serf_dir.as_ref().map(|d| d.join(pool.keyring_file()));
    let saved = match &keyring_file {
        Some(f) => Keyring::load(f)?,
        None => None,
    };
    let keyring = match (saved, &c.encrypt) {
        (Some(keys), given) => {
            if given.is_some() {
                tracing::warn!(
                    "WARNING: {} keyring exists but -encrypt given, using keyring",
                    pool.name()
                );
            }
            Some(Keyring::new(&keys)?)
        }
        (None, Some(key)) => {
            let ring = Keyring::new(std::slice::from_ref(key))?;
            if let Some(f) = &keyring_file {
                ring.save(f)?;
            }
            Some(ring)
        }
        (None, None) => None,
    }
    .map(|mut ring| {
        ring.verify_incoming = c.encrypt_verify_incoming;
        ring.verify_outgoing = c.encrypt_verify_outgoing;
        ring
    });
    Ok(LanOptions {
        keyring,
        keyring_file,
        snapshot: serf_dir.map(|d| d.join("local.snapshot")),
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
    if init_logging(&config.log_level) {
        // The build warned before there was anywhere to log to (deprecated
        // keys, what ACLs leave open): say it now.
        for w in &config.warnings {
            tracing::warn!("{w}");
        }
    }
    // Before anything is stored: a failpoint spec that cannot be honoured
    // stops the agent here rather than being ignored.
    let rules = crate::failpoint::init()?;
    if !rules.is_empty() {
        tracing::warn!(?rules, "failpoints armed ({})", crate::failpoint::ENV);
    }
    let pid_file = config.pid_file.clone();
    let sys = actix::System::new();
    sys.block_on(start(config, reload))?;
    // Written once the agent is up, so that a failed start leaves no file
    // behind; the guard removes it however the agent stops.
    let _pid = match pid_file {
        Some(path) => Some(PidFile::write(path)?),
        None => None,
    };
    sys.run()?;
    Ok(())
}

/// `pid_file`: holds the agent's PID while it runs.
struct PidFile(std::path::PathBuf);

impl PidFile {
    fn write(path: std::path::PathBuf) -> anyhow::Result<PidFile> {
        use anyhow::Context;
        std::fs::write(&path, std::process::id().to_string())
            .with_context(|| format!("Failed to write PID file {}", path.display()))?;
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            tracing::warn!(file = %self.0.display(), error = %e, "could not remove the PID file");
        }
    }
}

/// A started agent: where it listens, and its `Node` actor.
pub struct AgentHandle {
    pub node: actix::Addr<NodeActor>,
    /// The Raft actor, on servers.
    pub raft: Option<actix::Addr<RaftActor>>,
    /// The request path every read and write of this agent takes.
    pub router: Router,
    pub http_addrs: Vec<SocketAddr>,
    /// The HTTPS listeners (`ports.https`).
    pub https_addrs: Vec<SocketAddr>,
    pub dns_addrs: Vec<SocketAddr>,
    /// The server RPC listener (a server's Raft address has its port).
    pub rpc_addr: Option<SocketAddr>,
    /// The LAN gossip socket.
    pub serf_lan_addr: Option<SocketAddr>,
    /// The WAN gossip socket (servers only).
    pub serf_wan_addr: Option<SocketAddr>,
}

/// A listener the agent could not open, named so that a port conflict
/// says which of the agent's ports it is. The OS error is the source (the
/// CLI prints the chain), not repeated in the message.
#[derive(Debug, thiserror::Error)]
#[error("{what}: cannot listen on {addr}")]
pub struct ListenError {
    pub what: &'static str,
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

fn listen_err(what: &'static str, addr: SocketAddr) -> impl FnOnce(std::io::Error) -> ListenError {
    move |source| ListenError { what, addr, source }
}

/// A TCP listener for the HTTP API, made as actix-web's own `bind` makes
/// it (address reuse, a backlog of 1024), but bound before the server is
/// built so that the agent knows the port before it shares its config.
fn bind_http(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)?.into_std()
}

/// How the agent's own API clients (watches) reach its HTTPS listener:
/// trusting the HTTPS CA and presenting its certificate, which a
/// `verify_incoming` listener asks for.
fn https_client(p: &crate::config::TlsProtocol) -> crate::tls::ApiClientTls {
    crate::tls::ApiClientTls {
        ca_file: p.ca_file.clone(),
        ca_path: p.ca_path.clone(),
        client_cert: p.cert_file.clone(),
        client_key: p.key_file.clone(),
        server_name: None,
        insecure: false,
    }
}

/// Addresses for the "agent listening" line, comma-separated; none when
/// the listener is disabled, which leaves the field out of the line.
fn addr_list(addrs: &[SocketAddr]) -> Option<String> {
    (!addrs.is_empty()).then(|| {
        addrs
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// Starts every actor and listener on the current actix system. Ports of 0
/// bind ephemeral ports; the handle, the config every part of the agent
/// reads, and the "agent listening" log line say which.
pub async fn start(
    mut config: RuntimeConfig,
    reload: Option<ConfigSource>,
) -> anyhow::Result<AgentHandle> {
    tracing::info!(
        node = %config.node_name, datacenter = %config.datacenter, server = config.server, dev = config.dev,
        "starting Meridian agent {}", env!("CARGO_PKG_VERSION")
    );
    // Every listener is bound while the config is still this function's
    // own, and a port of 0 in it is replaced by the port actually bound:
    // Raft's own address, the gossip tags (the `port` tag is the RPC
    // port), retry-join's "is this me" and /v1/agent/self all read the
    // config, and must see the real port. Plain sockets come first, so a
    // port conflict fails the start before gossip announces anything or
    // Raft runs.
    let rpc_listener = match config.ports.server.filter(|_| config.server) {
        Some(port) => {
            let addr = SocketAddr::new(config.bind_addr, port);
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(listen_err("server RPC", addr))?;
            let bound = l.local_addr().map_err(listen_err("server RPC", addr))?;
            config.ports.server = Some(bound.port());
            Some((l, bound))
        }
        None => None,
    };
    // One listener per address (`addresses.http`, else `client_addr`).
    // With port 0 each binds its own
    // ephemeral port; the config names the first one's (Consul's config
    // has one HTTP port), the log line every one.
    let mut http_listeners = Vec::new();
    if let Some(port) = config.ports.http {
        for ip in config.http_addrs() {
            let addr = SocketAddr::new(*ip, port);
            http_listeners.push(bind_http(addr).map_err(listen_err("HTTP API", addr))?);
        }
        if let Some(Ok(a)) = http_listeners.first().map(|l| l.local_addr()) {
            config.ports.http = Some(a.port());
        }
    }
    let mut https_listeners = Vec::new();
    if let Some(port) = config.ports.https {
        // Checked before anything listens, so that the mistake fails the
        // start with its own message (the files are read further down).
        if !config.tls.https.has_cert() {
            return Err(http::ServeError::NoCertificate.into());
        }
        for ip in config.https_addrs() {
            let addr = SocketAddr::new(*ip, port);
            https_listeners.push(bind_http(addr).map_err(listen_err("HTTPS API", addr))?);
        }
        if let Some(Ok(a)) = https_listeners.first().map(|l| l.local_addr()) {
            config.ports.https = Some(a.port());
        }
    }
    let mut dns_sockets = Vec::new();
    if let Some(port) = config.ports.dns {
        for ip in config.dns_addrs() {
            let addr = SocketAddr::new(*ip, port);
            dns_sockets.push(
                crate::actors::dns::bind_pair(addr, crate::actors::dns::threads())
                    .map_err(listen_err("DNS", addr))?,
            );
        }
        if let Some(Ok(a)) = dns_sockets.first().map(|s| s.udp_addr()) {
            config.ports.dns = Some(a.port());
        }
    }
    // Gossip binds its UDP socket and starts at once; its tags carry the
    // RPC port, rewritten above.
    let lan = match config.ports.serf_lan {
        Some(port) => {
            let addr = SocketAddr::new(config.bind_addr, port);
            let (lan, bound) = crate::lan::LanGossip::start(
                config.node_name.clone(),
                addr,
                config.advertise(),
                config.gossip_tags(),
                pool_options(&config, Pool::Lan)?,
            )
            .await
            .map_err(listen_err("LAN gossip", addr))?;
            config.ports.serf_lan = Some(bound.port());
            Some((lan, bound))
        }
        None => None,
    };
    // The WAN pool holds servers only.
    let wan = match config.ports.serf_wan.filter(|_| config.server) {
        Some(port) => {
            let addr = SocketAddr::new(config.bind_addr, port);
            let (wan, bound) = crate::wan::start(
                &config.node_name,
                &config.datacenter,
                addr,
                config.advertise_wan(),
                config.gossip_tags(),
                pool_options(&config, Pool::Wan)?,
            )
            .await
            .map_err(listen_err("WAN gossip", addr))?;
            config.ports.serf_wan = Some(bound.port());
            Some((wan, bound))
        }
        None => None,
    };
    let (lan, serf_lan_addr) = lan.unzip();
    let (wan, serf_wan_addr) = wan.unzip();
    let (rpc_listener, rpc_addr) = rpc_listener.unzip();
    // From here on the config is shared and no longer changes.
    let config = Arc::new(config);
    // Certificates are read now, so that a bad file fails the start.
    let tls = crate::tls::AgentTls::new(&config.tls)?;
    let http_limit = http::ConnLimit::new(config.limits.http_max_conns_per_client);

    // Raft and the request path each keep their own connections to other
    // servers, both dialing with `internal_rpc`'s TLS.
    let rpc_pool = || {
        crate::rpc::Pool::new(
            &config.datacenter,
            &config.domain,
            tls.internal_rpc.as_ref(),
        )
    };
    let (raft, local) = if config.server {
        let (actor, local) = RaftActor::start(config.clone(), rpc_pool()?).await?;
        (Some(actor), Some(local))
    } else {
        (None, None)
    };
    let health = HealthActor::start_on_own_thread();
    if let (Some(r), Some(l)) = (&raft, &lan) {
        r.do_send(crate::actors::raft::AttachLan(l.clone()));
    }
    // The router fires this datacenter's user events through the `Node`
    // actor, which routes its own writes through the router.
    let node_ctx = actix::Context::<NodeActor>::new();
    use actix::AsyncContext;
    let router = Router::new(
        &config,
        local.clone(),
        wan.clone(),
        lan.clone(),
        node_ctx.address().recipient(),
        rpc_pool()?,
    );
    if let Some(r) = &raft {
        // ACL replication reads the primary datacenter through the request
        // path, as any read for another datacenter goes.
        let reads = router.clone();
        r.do_send(crate::actors::raft::AttachRemoteReads(Arc::new(
            move |req| {
                let reads = reads.clone();
                Box::pin(async move { reads.read(req).await })
            },
        )));
    }
    // Servers: which other datacenters answer, twice a second.
    router.start_probes();
    crate::actors::node::coordinate_sync::start(
        &config,
        router.clone(),
        lan.clone(),
        crate::actors::node::router::coordinate::update_period_from_env()
            .map_err(anyhow::Error::msg)?,
    );
    let node = node_ctx.run(
        NodeActor::new(
            config.clone(),
            router.clone(),
            Some(health),
            lan,
            wan,
            reload,
            tls.clone(),
        )
        .with_http_limit(http_limit.clone()),
    );
    if let (Some(listener), Some(local)) = (rpc_listener, local) {
        let endpoint = Endpoint {
            local,
            router: router.clone(),
        };
        let rpc = crate::rpc::server::Listener::new(crate::rpc::server::Admission {
            tls: tls.internal_rpc.clone(),
            server_name: crate::tls::server_name(&config.datacenter, &config.domain),
            max_conns_per_client: config.limits.rpc_max_conns_per_client,
            handshake_timeout: config.limits.rpc_handshake_timeout,
        })?;
        actix::spawn(rpc.serve(listener, Arc::new(endpoint)));
    }

    let mut dns_addrs = Vec::new();
    for sockets in dns_sockets {
        let (udp, _) =
            crate::actors::dns::DnsActor::serve(config.clone(), Arc::new(router.clone()), sockets)?;
        dns_addrs.push(udp);
    }

    // Before the routes are registered: they make their timers by it.
    crate::metrics::configure(http::agent_metrics::settings(&config));
    let (mut http_addrs, mut https_addrs) = (Vec::new(), Vec::new());
    if !http_listeners.is_empty() || !https_listeners.is_empty() {
        let served = http::server(
            ApiState {
                node: node.clone(),
                router: router.clone(),
                config: config.clone(),
            },
            http_listeners,
            https_listeners,
            tls.https.as_ref(),
            http_limit,
        )?;
        // Watches use plain HTTP when the agent serves it, else HTTPS
        // with the agent's own CA and certificate (as Consul's do).
        let watch_target = match (served.http.first(), served.https.first()) {
            (Some(a), _) => Some(("http", *a, None)),
            (None, Some(a)) => Some(("https", *a, Some(https_client(&config.tls.https)))),
            (None, None) => None,
        };
        if let Some((scheme, a, tls)) = watch_target {
            let ip = if a.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                a.ip()
            };
            crate::watch::start_config_watches(
                &config.watches,
                format!("{scheme}://{}", SocketAddr::new(ip, a.port())),
                tls,
            );
        }
        http_addrs = served.http;
        https_addrs = served.https;
        let server = served.server;
        actix::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "HTTP server failed");
            }
            actix::System::current().stop();
        });
    }
    // One line with every address bound (enabled listeners only), so
    // that whoever started the agent with ports of 0 learns its ports.
    // Tests read it; keep its name and field names.
    let one = |a: Option<SocketAddr>| a.map(|a| a.to_string());
    tracing::info!(
        http = addr_list(&http_addrs).map(tracing::field::display),
        https = addr_list(&https_addrs).map(tracing::field::display),
        dns = addr_list(&dns_addrs).map(tracing::field::display),
        server = one(rpc_addr).map(tracing::field::display),
        serf_lan = one(serf_lan_addr).map(tracing::field::display),
        serf_wan = one(serf_wan_addr).map(tracing::field::display),
        "agent listening"
    );

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
        https_addrs,
        dns_addrs,
        rpc_addr,
        serf_lan_addr,
        serf_wan_addr,
    })
}
