//! How many connections one client IP holds open on a listener, against
//! `limits.http_max_conns_per_client` (the HTTP and HTTPS listeners
//! together, as Consul's one limiter covers both) and
//! `rpc_max_conns_per_client` (server RPC). A connection holds a
//! [`Permit`] for as long as it lives (inside its stream: [`Counted`]),
//! so the count drops when it closes, however it closes.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The per-IP connection counts, shared by every listener and worker.
#[derive(Clone, Debug, Default)]
pub struct ConnLimit {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// 0 = unlimited. Atomic so that a reload can change it (Consul's
    /// reload does) while connections come and go.
    max: AtomicU32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

impl ConnLimit {
    pub fn new(max: u32) -> Self {
        let limit = ConnLimit::default();
        limit.set_max(max);
        limit
    }

    /// A new maximum for new connections; those already open stay.
    pub fn set_max(&self, max: u32) {
        self.inner.max.store(max, Ordering::Relaxed);
    }

    /// A permit for one more connection from `ip`, or None when `ip`
    /// already holds the maximum.
    pub fn acquire(&self, ip: IpAddr) -> Option<Permit> {
        let max = self.inner.max.load(Ordering::Relaxed);
        let mut open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if max != 0 && *n >= max {
            if *n == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(Permit {
            limit: self.clone(),
            ip,
        })
    }

    /// Connections `ip` holds open now.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> u32 {
        let open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&ip).copied().unwrap_or(0)
    }
}

/// One connection's place in its IP's count, given back on drop.
#[derive(Debug)]
pub struct Permit {
    limit: ConnLimit,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self
            .limit
            .inner
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                // Entries for IPs with nothing open would pile up forever.
                open.remove(&self.ip);
            }
        }
    }
}

/// A connection's stream with its permit: the HTTP dispatcher drops the
/// stream when the connection ends, and the permit with it.
pub struct Counted<T> {
    pub io: T,
    /// Held, never read: its drop is the point.
    pub _permit: Permit,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn counts_per_ip_and_frees_on_drop() {
        let limit = ConnLimit::new(2);
        let a1 = limit.acquire(A).expect("first");
        let a2 = limit.acquire(A).expect("second");
        assert!(limit.acquire(A).is_none(), "third from the same IP");
        let b1 = limit.acquire(B).expect("another IP has its own count");
        drop(a1);
        assert_eq!(limit.open(A), 1);
        let a3 = limit
            .acquire(A)
            .expect("a closed connection frees its place");
        drop((a2, a3, b1));
        assert_eq!(limit.open(A), 0);
        assert!(limit.inner.open.lock().unwrap().is_empty());
    }

    #[test]
    fn zero_is_unlimited_and_the_maximum_can_change() {
        let limit = ConnLimit::new(0);
        let held: Vec<_> = (0..1000)
            .map(|_| limit.acquire(A).expect("unlimited"))
            .collect();
        limit.set_max(1000);
        assert!(limit.acquire(A).is_none());
        limit.set_max(1001);
        assert!(limit.acquire(A).is_some());
        drop(held);
        assert_eq!(limit.open(A), 0);
    }
}
