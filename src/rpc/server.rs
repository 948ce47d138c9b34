//! The server RPC listener: admits a connection (per-IP limit, TLS or
//! plaintext as `internal_rpc` allows, a deadline for the handshake and
//! the first frame), then reads frames, hands each method and its
//! arguments to the [`Service`] it was given and writes the answer. A
//! connection's requests are served side by side, each answer tagged with
//! its request's id (see [`super::pool`]); a bad frame closes that
//! connection only.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::codec::{decode, encode, read_frame, write_frame};
use super::RpcError;
use crate::conn_limit::ConnLimit;
use crate::metrics::{counter, summary, Counter, Static, Summary};
use crate::structs::rpc::{Method, MethodId};
use crate::tls::{self, Tls, TlsError};

/// The first byte of a TLS record carrying a handshake (the ClientHello).
/// As the first byte of a frame length it would announce more than
/// [`super::codec::MAX_FRAME`], so it cannot start a plaintext frame.
const TLS_HANDSHAKE: u8 = 0x16;

/// What serves the requests that arrive: given a method and its encoded
/// arguments, the encoded answer (see [`answer`]).
pub trait Service: Send + Sync + 'static {
    fn serve(&self, method: MethodId, args: Vec<u8>) -> BoxFuture<'static, Vec<u8>>;
}

/// Decodes `M`'s arguments, runs `f` on them and encodes its answer; an
/// undecodable request is answered with a refusal rather than a dropped
/// connection.
pub async fn answer<M, F, Fut>(args: &[u8], f: F) -> Vec<u8>
where
    M: Method,
    F: FnOnce(M::Args) -> Fut,
    Fut: Future<Output = M::Reply>,
{
    let reply: Result<M::Reply, String> = match decode::<M::Args>(args) {
        Ok(a) => Ok(f(a).await),
        Err(e) => Err(format!("cannot decode {:?}: {e}", M::ID)),
    };
    refuse_on_error(encode(&reply))
}

fn refuse_on_error(body: Result<Vec<u8>, RpcError>) -> Vec<u8> {
    body.unwrap_or_else(|e| encode(&Err::<(), String>(e.to_string())).unwrap_or_default())
}

fn refusal(msg: String) -> Vec<u8> {
    refuse_on_error(encode(&Err::<(), String>(msg)))
}

/// Who may connect and how: the agent's `internal_rpc` TLS and `limits`.
pub struct Admission {
    /// `internal_rpc`'s TLS; None keeps the listener plaintext.
    pub tls: Option<Tls>,
    /// The name this datacenter's servers' certificates carry
    /// (`server.<dc>.<domain>`): with `verify_incoming` and
    /// `verify_server_hostname`, only a peer presenting it may send Raft's
    /// messages.
    pub server_name: String,
    /// `rpc_max_conns_per_client` (0 = no limit).
    pub max_conns_per_client: u32,
    /// `rpc_handshake_timeout` (zero = none).
    pub handshake_timeout: Duration,
}

/// A listener's shared state: its admission rules and its per-IP count.
struct Gate {
    admission: Admission,
    acceptor: Option<TlsAcceptor>,
    /// The connections each client address holds open.
    limit: ConnLimit,
}

/// Raft's messages: only another server of this datacenter may send
/// them. The other methods are what clients and other datacenters'
/// servers forward, and are authorized by their ACL token.
fn server_only(method: MethodId) -> bool {
    matches!(
        method,
        MethodId::AppendEntries | MethodId::Vote | MethodId::InstallSnapshot | MethodId::PreVote
    )
}

/// A listener ready to serve: the TLS configuration is built here, so
/// that a bad one fails the agent's start.
pub struct Listener {
    gate: Arc<Gate>,
}

impl Listener {
    pub fn new(admission: Admission) -> Result<Listener, TlsError> {
        let acceptor = match &admission.tls {
            Some(t) => Some(TlsAcceptor::from(Arc::new(t.server_config(&[])?))),
            None => None,
        };
        let admission_max = admission.max_conns_per_client;
        Ok(Listener {
            gate: Arc::new(Gate {
                admission,
                acceptor,
                limit: ConnLimit::new(admission_max),
            }),
        })
    }

    /// Accepts connections until the listener fails or the runtime stops.
    pub async fn serve(self, listener: TcpListener, service: Arc<dyn Service>) {
        loop {
            match listener.accept().await {
                Ok((conn, peer)) => {
                    ACCEPT_CONN.get().inc();
                    let Some(permit) = self.gate.limit.acquire(peer.ip()) else {
                        tracing::warn!(
                            %peer,
                            limit = self.gate.admission.max_conns_per_client,
                            "rpc connection refused: rpc_max_conns_per_client exceeded"
                        );
                        continue;
                    };
                    let _ = conn.set_nodelay(true);
                    let (service, gate) = (service.clone(), self.gate.clone());
                    tokio::spawn(async move {
                        if let Err(e) = admitted(conn, peer, &gate, service).await {
                            tracing::debug!(%peer, error = %e, "rpc connection closed");
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rpc accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Runs `fut` until `deadline` when there is one.
async fn by<T>(
    deadline: Option<Instant>,
    fut: impl Future<Output = Result<T, RpcError>>,
) -> Result<T, RpcError> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, fut)
            .await
            .map_err(|_| RpcError::Timeout("the peer's handshake".into()))?,
        None => fut.await,
    }
}

/// A connection from its first byte: TLS or plaintext, as the settings
/// allow, then its frames.
async fn admitted(
    conn: TcpStream,
    peer: SocketAddr,
    gate: &Gate,
    service: Arc<dyn Service>,
) -> Result<(), RpcError> {
    let a = &gate.admission;
    let deadline = (!a.handshake_timeout.is_zero()).then(|| Instant::now() + a.handshake_timeout);
    let mut first = [0u8; 1];
    if by(deadline, async { Ok(conn.peek(&mut first).await?) }).await? == 0 {
        return Ok(());
    }
    let (Some(tls), Some(acceptor)) = (&a.tls, &gate.acceptor) else {
        return frames(conn, deadline, true, a, service).await;
    };
    if first[0] != TLS_HANDSHAKE {
        if tls.verify_incoming() {
            // As Consul: closed without an answer a scanner could learn
            // from, and logged.
            tracing::warn!(%peer, "non-TLS rpc connection refused: verify_incoming is set");
            return Ok(());
        }
        return frames(conn, deadline, true, a, service).await;
    }
    let stream = by(deadline, async { Ok(acceptor.accept(conn).await?) }).await?;
    // Read once, at the handshake: the settings it was made under.
    let m = tls.material();
    let restricted = m.verify_incoming && m.verify_server_hostname;
    let is_server = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .is_some_and(|c| tls::cert_names(c, &a.server_name));
    frames(stream, deadline, !restricted || is_server, a, service).await
}

/// Requests one connection may have in progress at once (a peer agent
/// sends all its calls to this server over one connection, blocking
/// queries included); beyond it the next frame is read as one finishes.
const MAX_IN_FLIGHT: usize = 4096;

static ACCEPT_CONN: Static<Counter> = counter("rpc.accept_conn");

/// Telemetry of one served request: Raft's messages under hashicorp/raft's
/// `raft.rpc.*` timers; the rest counted (`rpc.request`, reads also
/// `rpc.query`) and timed by method (`rpc.server.call`).
fn record(m: MethodId, started: std::time::Instant) {
    static APPEND: Static<Summary> = summary("raft.rpc.appendEntries");
    static VOTE: Static<Summary> = summary("raft.rpc.requestVote");
    static SNAPSHOT: Static<Summary> = summary("raft.rpc.installSnapshot");
    static REQUEST: Static<Counter> = counter("rpc.request");
    static QUERY: Static<Counter> = counter("rpc.query");
    match m {
        MethodId::AppendEntries => APPEND.get().since(started),
        MethodId::Vote | MethodId::PreVote => VOTE.get().since(started),
        MethodId::InstallSnapshot => SNAPSHOT.get().since(started),
        _ => {
            REQUEST.get().inc();
            if m == MethodId::Read {
                QUERY.get().inc();
            }
            crate::metrics::global()
                .summary_with("rpc.server.call", vec![("method".into(), format!("{m:?}"))])
                .since(started);
        }
    }
}

/// Serves a connection's requests side by side until it ends, each
/// answer tagged with its request's id; the first frame must be complete
/// by `deadline`. `may_raft`: whether the peer may send Raft's messages.
async fn frames<S: AsyncRead + AsyncWrite + Send + 'static>(
    conn: S,
    mut deadline: Option<Instant>,
    may_raft: bool,
    a: &Admission,
    service: Arc<dyn Service>,
) -> Result<(), RpcError> {
    let (mut rd, mut wr) = tokio::io::split(conn);
    let (answers, mut queue) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(async move {
        while let Some(answer) = queue.recv().await {
            if write_frame(&mut wr, &answer, &[]).await.is_err() {
                break;
            }
        }
    });
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let server_name: Arc<str> = Arc::from(a.server_name.as_str());
    let ended = loop {
        let mut frame = match by(deadline.take(), read_frame(&mut rd)).await {
            Ok(f) => f,
            Err(RpcError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break Ok(()),
            Err(e) => break Err(e),
        };
        if frame.len() < 5 {
            break Err(RpcError::Codec(
                "a request without its id and method".into(),
            ));
        }
        let args = frame.split_off(5);
        let id = [frame[0], frame[1], frame[2], frame[3]];
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break Ok(());
        };
        let (answers, service, name) = (answers.clone(), service.clone(), server_name.clone());
        let method = frame[4];
        tokio::spawn(async move {
            let work = async {
                match MethodId::from_byte(method) {
                    Some(m) if server_only(m) && !may_raft => {
                        tracing::warn!(
                            method = ?m,
                            "rpc refused: the peer's certificate does not name {name}"
                        );
                        refusal(format!("{m:?} needs a server certificate for {name}"))
                    }
                    Some(m) => {
                        let started = std::time::Instant::now();
                        let answer = service.serve(m, args).await;
                        record(m, started);
                        answer
                    }
                    None => refusal(format!("unknown method {method}")),
                }
            };
            // A connection that is gone takes its calls with it (a
            // blocking query no one will read).
            tokio::select! {
                answer = work => {
                    let mut out = Vec::with_capacity(4 + answer.len());
                    out.extend_from_slice(&id);
                    out.extend_from_slice(&answer);
                    let _ = answers.send(out).await;
                }
                _ = answers.closed() => {}
            }
            drop(permit);
        });
    };
    writer.abort();
    ended
}

#[cfg(test)]
mod tests;
