//! Client connections to other servers' RPC port: to each server one
//! connection per calling thread, at most [`LANES`], each shared by every
//! call from its thread. Each request carries an id its answer echoes, so
//! calls proceed side by side (a long blocking query does not hold a
//! connection of its own, as Consul's multiplexed connections do not),
//! and one peer agent costs a server at most [`LANES`] connections under
//! `rpc_max_conns_per_client`. A connection that fails fails the calls it
//! carried and is dialed again by the next call.
//!
//! Why per thread: a connection's reader and writer run on the runtime
//! that dialed it, and the HTTP workers are runtimes of their own. With
//! one connection dialed by the agent's main thread, a read forwarded to
//! the leader woke that thread to write, again to read the answer, and
//! then the worker: ~4.5 context switches per forwarded read against 3
//! when the worker's own connection does both. With
//! `verify_outgoing` every connection is TLS, the dialed server checked
//! against the name its datacenter's servers carry
//! (`server.<dc>.<domain>`).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsConnector;

use super::codec::{decode, encode, read_frame, write_frame, MAX_FRAME};
use super::RpcError;
use crate::structs::rpc::Method;
use crate::tls::{self, Tls, TlsError};

/// Bounds the TCP connect and the TLS handshake together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Requests queued for a connection's writer.
const WRITE_QUEUE: usize = 256;

/// Connections to one server at most: threads beyond this many share
/// them (spread by thread), so a many-core agent does not cost a server
/// a connection per core.
pub const LANES: usize = 8;

/// A connection as the pool holds it: plain TCP or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

type Answer = Result<Vec<u8>, RpcError>;
type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Answer>>>>;

/// One connection: requests go to its writer task whole (so a call given
/// up half way cannot leave half a frame), answers come back through its
/// reader task to the call waiting for that id.
struct Mux {
    requests: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU32,
    dead: Arc<AtomicBool>,
    /// Answers read so far: a call that times out while none arrived
    /// finds the server silent (a partition) rather than slow.
    heard: Arc<AtomicU64>,
}

impl Mux {
    fn start(conn: Box<dyn Stream>) -> Mux {
        let (mut rd, mut wr) = tokio::io::split(conn);
        let (requests, mut queue) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
        let pending: Pending = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let heard = Arc::new(AtomicU64::new(0));
        let (p, d, h) = (pending.clone(), dead.clone(), heard.clone());
        let reader = tokio::spawn(async move {
            let why = loop {
                let mut frame = match read_frame(&mut rd).await {
                    Ok(f) => f,
                    Err(e) => break e.to_string(),
                };
                if frame.len() < 4 {
                    break "an answer without its request id".to_string();
                }
                h.fetch_add(1, Ordering::Relaxed);
                let body = frame.split_off(4);
                let id = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
                let waiting = p.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                // No one waiting: the call gave up (its timeout).
                if let Some(tx) = waiting {
                    let _ = tx.send(Ok(body));
                }
            };
            fail_all(&p, &d, &why);
        });
        let (p, d) = (pending.clone(), dead.clone());
        tokio::spawn(async move {
            while let Some(frame) = queue.recv().await {
                if let Err(e) = write_frame(&mut wr, &frame, &[]).await {
                    fail_all(&p, &d, &e.to_string());
                    break;
                }
            }
            // Every handle on the connection is gone (or it failed): the
            // reader would otherwise wait on it for ever.
            reader.abort();
        });
        Mux {
            requests,
            pending,
            next_id: AtomicU32::new(0),
            dead,
            heard,
        }
    }

    fn heard(&self) -> u64 {
        self.heard.load(Ordering::Relaxed)
    }

    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed) || self.requests.is_closed()
    }

    /// Sends one request (method tag and arguments) and waits for its
    /// answer; the caller bounds the wait.
    async fn call(&self, method: u8, args: &[u8]) -> Answer {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        // Forgets the id however the call ends (answered, failed, timed out).
        struct Forget<'a>(&'a Pending, u32);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&self.1);
            }
        }
        let _forget = Forget(&self.pending, id);
        // Refused here: the writer would fail the connection and every
        // call it carries.
        if 5 + args.len() > MAX_FRAME {
            return Err(RpcError::Codec(format!(
                "request of {} bytes exceeds {MAX_FRAME}",
                5 + args.len()
            )));
        }
        if self.is_dead() {
            return Err(RpcError::Io(std::io::ErrorKind::ConnectionAborted.into()));
        }
        let mut frame = Vec::with_capacity(5 + args.len());
        frame.extend_from_slice(&id.to_be_bytes());
        frame.push(method);
        frame.extend_from_slice(args);
        if self.requests.send(frame).await.is_err() {
            return Err(RpcError::Io(std::io::ErrorKind::ConnectionAborted.into()));
        }
        rx.await
            .unwrap_or_else(|_| Err(RpcError::Io(std::io::ErrorKind::ConnectionAborted.into())))
    }
}

/// The connection failed: every call waiting on it gets the error.
fn fail_all(pending: &Pending, dead: &AtomicBool, why: &str) {
    dead.store(true, Ordering::Relaxed);
    let waiting: Vec<_> = pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .collect();
    for (_, tx) in waiting {
        let _ = tx.send(Err(RpcError::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            why.to_string(),
        ))));
    }
}

/// What outgoing connections need for TLS; the `Tls` is read at each dial,
/// so a reload's `verify_outgoing` and certificates reach new connections.
struct Dialer {
    tls: Tls,
    connector: TlsConnector,
    domain: String,
}

/// A connection slot: the lock is held while dialing, so that concurrent
/// first calls share one connection.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Mux>>>>;

/// A server's slots, each with the thread it was made for.
type Lanes = Vec<(ThreadId, Slot)>;

#[derive(Clone)]
pub struct Pool {
    conns: Arc<Mutex<HashMap<String, Lanes>>>,
    /// This agent's datacenter: the server name of the servers that
    /// [`Pool::call`] reaches.
    dc: Arc<str>,
    dialer: Option<Arc<Dialer>>,
}

impl Default for Pool {
    /// A plaintext pool (tests; the datacenter only names TLS servers).
    fn default() -> Self {
        Pool {
            conns: Arc::default(),
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
            conns: Arc::default(),
            dc: Arc::from(dc),
            dialer,
        })
    }

    /// A new connection to `addr`, a server of datacenter `dc`.
    async fn dial(&self, addr: &str, dc: &str) -> Result<Box<dyn Stream>, RpcError> {
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

    /// The calling thread's slot for `addr`: its own while there are
    /// fewer than [`LANES`], else one of the others'.
    fn slot(&self, addr: &str) -> Slot {
        let me = std::thread::current().id();
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if !conns.contains_key(addr) {
            conns.insert(addr.to_string(), Lanes::new());
        }
        let Some(lanes) = conns.get_mut(addr) else {
            return Slot::default();
        };
        if let Some((_, s)) = lanes.iter().find(|(t, _)| *t == me) {
            return s.clone();
        }
        if lanes.len() < LANES {
            let s = Slot::default();
            lanes.push((me, s.clone()));
            return s;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        me.hash(&mut h);
        lanes[(h.finish() % lanes.len() as u64) as usize].1.clone()
    }

    /// The live connection to `addr` for this thread, dialed if there is
    /// none.
    async fn conn(&self, addr: &str, dc: &str) -> Result<Arc<Mux>, RpcError> {
        let slot = self.slot(addr);
        let mut slot = slot.lock().await;
        if let Some(m) = slot.as_ref().filter(|m| !m.is_dead()) {
            return Ok(m.clone());
        }
        // A server that is gone without a word (a partition) costs at
        // most this, whatever the call's own timeout.
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, self.dial(addr, dc))
            .await
            .map_err(|_| RpcError::Connect(addr.to_string(), "timed out".into()))??;
        let m = Arc::new(Mux::start(conn));
        *slot = Some(m.clone());
        Ok(m)
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
        let deadline = tokio::time::Instant::now() + timeout;
        let timed_out = || RpcError::Timeout(addr.to_string());
        let conn = tokio::time::timeout_at(deadline, self.conn(addr, dc))
            .await
            .map_err(|_| timed_out())??;
        let heard = conn.heard();
        let answer = match tokio::time::timeout_at(deadline, conn.call(M::ID as u8, &body)).await {
            Ok(a) => a?,
            Err(_) => {
                // Nothing at all came back on the connection while this
                // call waited: the next call dials again (and meets the
                // connect timeout) rather than wait on a silent peer.
                if conn.heard() == heard {
                    conn.dead.store(true, Ordering::Relaxed);
                }
                return Err(timed_out());
            }
        };
        let answer: Result<M::Reply, String> = decode(&answer)?;
        answer.map_err(RpcError::Refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::rpc;

    #[tokio::test]
    async fn a_silent_server_is_dialed_again_after_a_timeout() {
        // Accepts, reads and never answers: a peer behind a partition.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicU32::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((c, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                held.push(c);
            }
        });
        let pool = Pool::default();
        let t = Duration::from_millis(200);
        for n in 1..=2 {
            let r = pool.call::<rpc::Datacenters>(&addr, &(), t).await;
            assert!(matches!(r, Err(RpcError::Timeout(_))), "{r:?}");
            assert_eq!(accepted.load(Ordering::Relaxed), n);
        }
    }

    #[test]
    fn each_calling_thread_has_its_own_connection_up_to_the_lanes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicU32::new(0));
        let count = accepted.clone();
        let server = std::thread::spawn(move || {
            rt.block_on(async move {
                let mut held = Vec::new();
                while let Ok((c, _)) = listener.accept().await {
                    count.fetch_add(1, Ordering::Relaxed);
                    held.push(c);
                }
            })
        });
        let pool = Pool::default();
        // Each call from a thread of its own with a runtime of its own, as
        // the HTTP workers are; twice from each, so a thread's second call
        // reuses its own connection.
        let call_from_a_new_thread = |pool: Pool, addr: String| {
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    for _ in 0..2 {
                        let t = Duration::from_millis(50);
                        let _ = pool.call::<rpc::Datacenters>(&addr, &(), t).await;
                    }
                });
            })
            .join()
            .unwrap();
        };
        call_from_a_new_thread(pool.clone(), addr.clone());
        call_from_a_new_thread(pool.clone(), addr.clone());
        let lanes = |pool: &Pool| pool.conns.lock().unwrap().get(&addr).map(Vec::len);
        assert_eq!(lanes(&pool), Some(2));
        assert!(accepted.load(Ordering::Relaxed) >= 2);
        for _ in 0..LANES + 3 {
            call_from_a_new_thread(pool.clone(), addr.clone());
        }
        assert_eq!(lanes(&pool), Some(LANES));
        drop(server);
    }
}
