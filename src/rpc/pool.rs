//! Pooled client connections to other servers' RPC port. A connection
//! carries one call at a time and goes back to the pool after a clean
//! answer; one that failed is dropped. With `verify_outgoing` every
//! connection is TLS, the dialed server checked against the name its
//! datacenter's servers carry (`server.<dc>.<domain>`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::codec::{decode, encode, read_frame, write_frame};
use super::RpcError;
use crate::structs::rpc::Method;
use crate::tls::{self, Tls, TlsError};

/// Bounds the TCP connect and the TLS handshake together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Idle connections kept per server.
const MAX_IDLE: usize = 8;

/// A connection as the pool holds it: plain TCP or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

type Conn = Box<dyn Stream>;

/// What outgoing connections need for TLS; the `Tls` is read at each dial,
/// so a reload's `verify_outgoing` and certificates reach new connections.
struct Dialer {
    tls: Tls,
    connector: TlsConnector,
    domain: String,
}

#[derive(Clone)]
pub struct Pool {
    idle: Arc<Mutex<HashMap<String, Vec<Conn>>>>,
    /// This agent's datacenter: the server name of the servers that
    /// [`Pool::call`] reaches.
    dc: Arc<str>,
    dialer: Option<Arc<Dialer>>,
}

impl Default for Pool {
    /// A plaintext pool (tests, and agents without TLS on server RPC).
    fn default() -> Self {
        Pool {
            idle: Arc::default(),
            dc: Arc::from("dc1"),
            dialer: None,
        }
    }
}

impl Pool {
    /// A pool for an agent of datacenter `dc`, dialing with `tls` (the
    /// agent's `internal_rpc`) when it says `verify_outgoing`.
    pub fn new(dc: &str, domain: &str, tls: Option<&Tls>) -> Result<Pool, TlsError> {
        let dialer = match tls {
            Some(t) => Some(Arc::new(Dialer {
                tls: t.clone(),
                connector: TlsConnector::from(Arc::new(t.client_config(&[])?)),
                domain: domain.to_string(),
            })),
            None => None,
        };
        Ok(Pool {
            idle: Arc::default(),
            dc: Arc::from(dc),
            dialer,
        })
    }

    fn take(&self, addr: &str) -> Option<Conn> {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(addr)
            .and_then(Vec::pop)
    }

    fn put(&self, addr: &str, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(addr.to_string()).or_default();
        if list.len() < MAX_IDLE {
            list.push(conn);
        }
    }

    /// A new connection to `addr`, a server of datacenter `dc`.
    async fn dial(&self, addr: &str, dc: &str) -> Result<Conn, RpcError> {
        let refused = |e: String| RpcError::Connect(addr.to_string(), e);
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| refused(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let Some(d) = self.dialer.as_ref().filter(|d| d.tls.verify_outgoing()) else {
            return Ok(Box::new(tcp));
        };
        let name = ServerName::try_from(tls::server_name(dc, &d.domain))
            .map_err(|e| refused(format!("datacenter {dc:?} gives no server name: {e}")))?;
        let stream = d
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| refused(format!("TLS handshake: {e}")))?;
        Ok(Box::new(stream))
    }

    /// One call of method `M` to a server of this agent's datacenter, and
    /// its answer, within `timeout` for the whole call.
    pub async fn call<M: Method>(
        &self,
        addr: &str,
        args: &M::Args,
        timeout: Duration,
    ) -> Result<M::Reply, RpcError> {
        let dc = self.dc.clone();
        self.call_in::<M>(&dc, addr, args, timeout).await
    }

    /// [`Pool::call`] to a server of datacenter `dc` (over the WAN), whose
    /// certificate must name that datacenter.
    pub async fn call_in<M: Method>(
        &self,
        dc: &str,
        addr: &str,
        args: &M::Args,
        timeout: Duration,
    ) -> Result<M::Reply, RpcError> {
        let body = encode(args)?;
        let fut = async {
            let mut conn = match self.take(addr) {
                Some(c) => c,
                // A server that is gone without a word (a partition) costs
                // at most this, whatever the call's own timeout.
                None => tokio::time::timeout(CONNECT_TIMEOUT, self.dial(addr, dc))
                    .await
                    .map_err(|_| RpcError::Connect(addr.to_string(), "timed out".into()))??,
            };
            write_frame(&mut conn, &[M::ID as u8], &body).await?;
            let answer: Result<M::Reply, String> = decode(&read_frame(&mut conn).await?)?;
            self.put(addr, conn);
            answer.map_err(RpcError::Refused)
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| RpcError::Timeout(addr.to_string()))?
    }
}
