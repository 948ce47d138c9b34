//! The server RPC listener: admits a connection (per-IP limit, TLS or
//! plaintext as `internal_rpc` allows, a deadline for the handshake and
//! the first frame), then reads frames, hands each method and its
//! arguments to the [`Service`] it was given and writes the answer. Each
//! connection serves its calls in order; a bad frame closes that
//! connection only.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::codec::{decode, encode, read_frame, write_frame};
use super::RpcError;
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

/// A listener's shared state: its admission rules and the connections
/// each client address holds open.
struct Gate {
    admission: Admission,
    acceptor: Option<TlsAcceptor>,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One admitted connection's place in its address's count; given back
/// when the connection ends, however it ends.
struct Slot {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl Gate {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let max = self.admission.max_conns_per_client;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if max != 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            gate: self.clone(),
            ip,
        })
    }
}

/// Raft's messages: only another server of this datacenter may send
/// them. The other methods are what clients and other datacenters'
/// servers forward, and are authorized by their ACL token.
fn server_only(method: MethodId) -> bool {
    matches!(
        method,
        MethodId::AppendEntries | MethodId::Vote | MethodId::InstallSnapshot
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
        Ok(Listener {
            gate: Arc::new(Gate {
                admission,
                acceptor,
                open: Mutex::default(),
            }),
        })
    }

    /// Accepts connections until the listener fails or the runtime stops.
    pub async fn serve(self, listener: TcpListener, service: Arc<dyn Service>) {
        loop {
            match listener.accept().await {
                Ok((conn, peer)) => {
                    let Some(slot) = self.gate.admit(peer.ip()) else {
                        tracing::warn!(
                            %peer,
                            limit = self.gate.admission.max_conns_per_client,
                            "rpc connection refused: rpc_max_conns_per_client exceeded"
                        );
                        continue;
                    };
                    let _ = conn.set_nodelay(true);
                    let service = service.clone();
                    tokio::spawn(async move {
                        if let Err(e) = admitted(conn, peer, &slot.gate, service).await {
                            tracing::debug!(%peer, error = %e, "rpc connection closed");
                        }
                        drop(slot);
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

/// Serves a connection's frames in order until it ends; the first must
/// be complete by `deadline`. `may_raft`: whether the peer may send
/// Raft's messages.
async fn frames<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: S,
    mut deadline: Option<Instant>,
    may_raft: bool,
    a: &Admission,
    service: Arc<dyn Service>,
) -> Result<(), RpcError> {
    loop {
        let mut frame = match by(deadline.take(), read_frame(&mut conn)).await {
            Ok(f) => f,
            Err(RpcError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let answer = match frame.first().copied().and_then(MethodId::from_byte) {
            Some(method) if server_only(method) && !may_raft => {
                tracing::warn!(
                    ?method,
                    "rpc refused: the peer's certificate does not name {}",
                    a.server_name
                );
                refusal(format!(
                    "{method:?} needs a server certificate for {}",
                    a.server_name
                ))
            }
            Some(method) => {
                let args = frame.split_off(1);
                service.serve(method, args).await
            }
            None => refusal(format!("unknown method {:?}", frame.first())),
        };
        write_frame(&mut conn, &[], &answer).await?;
    }
}

#[cfg(test)]
mod tests;
