//! The listeners that serve the API: plaintext HTTP and HTTPS (rustls,
//! ALPN `h2` and `http/1.1`), each connection first counted against
//! `limits.http_max_conns_per_client`.
//!
//! actix-web's `HttpServer` cannot refuse a connection (its `on_connect`
//! hook only observes), so the server is assembled from the parts it is
//! made of: an `actix_server` accept loop whose per-connection service
//! takes a [`Permit`] for the peer's IP (answering Consul's 429 and
//! closing when there is none), does the TLS handshake itself for HTTPS
//! (with the agent's `Tls`, whose certificates a reload swaps under the
//! config), and hands the stream, permit attached, to actix-http's
//! `HttpService` running the same `App`, with bounds on how long a
//! connection may sit idle or take to send a request head. Request heads
//! over actix-http's 128 KiB buffer (or 96 headers) get 431.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_http::{HttpService, Protocol};
use actix_rt::net::TcpStream;
use actix_service::{fn_service, map_config, ServiceFactoryExt as _};
use actix_web::dev::AppConfig;
use actix_web::web;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{ApiState, DEFAULT_ACL_POLICY_HEADER};
use crate::conn_limit::{ConnLimit, Counted, Permit};
use crate::tls::Tls;

/// What Consul writes to a connection over the per-client limit before
/// closing it.
const TOO_MANY: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\n\r\n";

/// How long a refused connection may take to receive [`TOO_MANY`]: a
/// slow client must not hold the refusal open.
const REFUSE_DEADLINE: Duration = Duration::from_millis(200);

/// A connection must deliver a whole request head within this, from
/// connect or from the first byte of a later request on it (actix answers
/// 408 and closes): a client dribbling header bytes (slowloris) holds a
/// connection and a per-client permit for no longer. Consul's Go server
/// sets no such bound; 10 s is the common `ReadHeaderTimeout`, well above
/// what any client on a working network needs.
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// An idle keep-alive connection is closed after this. Consul (Go's
/// server, no `IdleTimeout`) keeps them forever, so each idle client
/// holds one of its `http_max_conns_per_client` until it leaves; clients
/// (Go's transport, reqwest, py-consul's requests) redial a connection
/// the server closed. Blocking queries are not idle: the timer runs only
/// between requests.
pub const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(15);

/// A closing connection whose peer does not finish the shutdown (the TLS
/// close, the last bytes read) is dropped after this.
pub const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// ALPN protocols offered on HTTPS, preferred first.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("HTTPS is configured (ports.https) but tls.https has no cert_file and key_file")]
    NoCertificate,
    #[error("HTTPS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The HTTPS handshakes: one to serve, one to refuse.
#[derive(Clone)]
struct Acceptors {
    serve: tokio_rustls::TlsAcceptor,
    refuse: tokio_rustls::TlsAcceptor,
    /// `limits.https_handshake_timeout`: a handshake must finish within
    /// this, so that a client that opens connections and says nothing
    /// cannot hold permits for long.
    deadline: Duration,
}

/// A running server and the addresses it serves.
pub struct Served {
    pub server: actix_server::Server,
    pub http: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
}

/// Starts the HTTP server on listeners already bound (the agent binds them
/// before it shares its config, so that the config can name the ports
/// bound): `http` plaintext, `https` with `tls`, which must have a
/// certificate when there are HTTPS listeners.
pub fn server(
    state: ApiState,
    http: Vec<TcpListener>,
    https: Vec<TcpListener>,
    tls: Option<&Tls>,
    limit: ConnLimit,
) -> Result<Served, ServeError> {
    let acceptor = if https.is_empty() {
        None
    } else {
        let tls = tls
            .filter(|t| t.has_cert())
            .ok_or(ServeError::NoCertificate)?;
        let serve = tls.server_config(&ALPN)?;
        // The refusal is HTTP/1.1 text: a client that negotiated h2 could
        // not read it, so refused connections are offered HTTP/1.1 only.
        let refuse = tls.server_config(&[b"http/1.1"])?;
        Some(Acceptors {
            serve: tokio_rustls::TlsAcceptor::from(Arc::new(serve)),
            refuse: tokio_rustls::TlsAcceptor::from(Arc::new(refuse)),
            deadline: state.config.limits.https_handshake_timeout,
        })
    };
    let ui = state.config.ui_enabled;
    let app = move || {
        // Consul sends the agent's default policy on every answer, ACLs on
        // or off, so that a client (the web UI) knows whether a missing
        // token means "denied" before it asks for anything.
        let default_policy = state.config.acl.default_policy.as_str();
        actix_web::App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .wrap(actix_web::middleware::Compress::default())
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((DEFAULT_ACL_POLICY_HEADER, default_policy)),
            )
            .configure(|cfg| {
                if ui {
                    crate::ui::routes(cfg);
                }
                super::routes(cfg);
            })
    };

    let mut builder = actix_server::Server::build()
        // One worker per core, as Go's net/http in Consul uses them all:
        // a fixed 2 left larger machines' cores idle (issue 18).
        .workers(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .shutdown_timeout(2)
        // The agent handles signals itself (leave or not, by role).
        .disable_signals();
    let mut served = (Vec::new(), Vec::new());
    for l in http {
        let addr = l.local_addr()?;
        served.0.push(addr);
        let (app, limit) = (app.clone(), limit.clone());
        builder = builder.listen("meridian-http", l, move || {
            let limit = limit.clone();
            fn_service(move |io: TcpStream| {
                let limit = limit.clone();
                async move {
                    let peer = io.peer_addr().ok();
                    let Some(permit) = admit(&limit, peer) else {
                        refuse(io).await;
                        return Err(over_limit());
                    };
                    let io = Counted {
                        io,
                        _permit: permit,
                    };
                    Ok((io, Protocol::Http1, peer))
                }
            })
            .and_then(
                HttpService::build()
                    .local_addr(addr)
                    .keep_alive(KEEP_ALIVE_IDLE)
                    .client_request_timeout(REQUEST_HEAD_TIMEOUT)
                    .client_disconnect_timeout(DISCONNECT_TIMEOUT)
                    .finish(map_config(app(), |_| AppConfig::default())),
            )
        })?;
    }
    for l in https {
        // Set above whenever there are HTTPS listeners.
        let acceptor = acceptor.clone().ok_or(ServeError::NoCertificate)?;
        let addr = l.local_addr()?;
        served.1.push(addr);
        let (app, limit) = (app.clone(), limit.clone());
        builder = builder.listen("meridian-https", l, move || {
            let (limit, acceptor) = (limit.clone(), acceptor.clone());
            fn_service(move |io: TcpStream| {
                let (limit, acceptor) = (limit.clone(), acceptor.clone());
                async move {
                    let peer = io.peer_addr().ok();
                    let Some(permit) = admit(&limit, peer) else {
                        refuse_tls(&acceptor.refuse, io).await;
                        return Err(over_limit());
                    };
                    let (stream, proto) = handshake(&acceptor, io, peer).await?;
                    Ok((
                        Counted {
                            io: stream,
                            _permit: permit,
                        },
                        proto,
                        peer,
                    ))
                }
            })
            .and_then(
                HttpService::build()
                    .local_addr(addr)
                    .keep_alive(KEEP_ALIVE_IDLE)
                    .client_request_timeout(REQUEST_HEAD_TIMEOUT)
                    .client_disconnect_timeout(DISCONNECT_TIMEOUT)
                    .secure()
                    // The app sees a plain (not "secure") AppConfig: the
                    // API never builds URLs from the connection's scheme.
                    .finish(map_config(app(), |_| AppConfig::default())),
            )
        })?;
    }
    Ok(Served {
        server: builder.run(),
        http: served.0,
        https: served.1,
    })
}

/// A permit for a connection from `peer`; none without a peer address
/// (the connection is already gone).
fn admit(limit: &ConnLimit, peer: Option<SocketAddr>) -> Option<Permit> {
    let peer = peer?;
    let permit = limit.acquire(peer.ip());
    if permit.is_none() {
        tracing::debug!(client = %peer.ip(), "HTTP connection over http_max_conns_per_client refused");
    }
    permit
}

fn over_limit() -> actix_http::error::DispatchError {
    actix_http::error::DispatchError::Io(io::Error::other("over the per-client connection limit"))
}

/// Consul's answer to a connection over the limit, then a close. The
/// write side is shut and what the client already sent is read away
/// first, so that the close is a FIN after the 429, not a reset that could
/// discard it before the client reads it.
async fn refuse<S>(mut io: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(REFUSE_DEADLINE, async {
        io.write_all(TOO_MANY).await?;
        io.shutdown().await?;
        let mut sink = [0u8; 1024];
        while io.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// As [`refuse`], inside TLS (Consul writes its 429 to the TLS connection,
/// which runs the handshake first); a client that cannot finish the
/// handshake in time just sees the close.
async fn refuse_tls(acceptor: &tokio_rustls::TlsAcceptor, io: TcpStream) {
    if let Ok(Ok(stream)) = tokio::time::timeout(REFUSE_DEADLINE, acceptor.accept(io)).await {
        refuse(stream).await;
    }
}

/// The TLS handshake, bounded in time, and the protocol ALPN chose
/// (HTTP/1.1 when the client named none).
async fn handshake(
    acceptor: &Acceptors,
    io: TcpStream,
    peer: Option<SocketAddr>,
) -> Result<(tokio_rustls::server::TlsStream<TcpStream>, Protocol), actix_http::error::DispatchError>
{
    let result = tokio::time::timeout(acceptor.deadline, acceptor.serve.accept(io))
        .await
        .unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake timed out",
            ))
        });
    match result {
        Ok(stream) => {
            let proto = match stream.get_ref().1.alpn_protocol() {
                Some(b"h2") => Protocol::Http2,
                _ => Protocol::Http1,
            };
            Ok((stream, proto))
        }
        Err(e) => {
            tracing::debug!(client = ?peer, error = %e, "HTTPS handshake failed");
            Err(actix_http::error::DispatchError::Io(e))
        }
    }
}
