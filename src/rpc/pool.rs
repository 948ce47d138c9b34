//! Pooled client connections to other servers' RPC port. A connection
//! carries one call at a time and goes back to the pool after a clean
//! answer; one that failed is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;

use super::codec::{decode, encode, read_frame, write_frame};
use super::RpcError;
use crate::structs::rpc::Method;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Idle connections kept per server.
const MAX_IDLE: usize = 8;

#[derive(Clone, Default)]
pub struct Pool {
    idle: Arc<Mutex<HashMap<String, Vec<TcpStream>>>>,
}

impl Pool {
    fn take(&self, addr: &str) -> Option<TcpStream> {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(addr)
            .and_then(Vec::pop)
    }

    fn put(&self, addr: &str, conn: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(addr.to_string()).or_default();
        if list.len() < MAX_IDLE {
            list.push(conn);
        }
    }

    /// One call of method `M` and its answer, within `timeout` for the
    /// whole call.
    pub async fn call<M: Method>(
        &self,
        addr: &str,
        args: &M::Args,
        timeout: Duration,
    ) -> Result<M::Reply, RpcError> {
        let body = encode(args)?;
        let fut = async {
            let mut conn = match self.take(addr) {
                Some(c) => c,
                None => {
                    // A server that is gone without a word (a partition)
                    // costs at most this, whatever the call's own timeout.
                    let c = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
                        .await
                        .map_err(|_| RpcError::Connect(addr.to_string(), "timed out".into()))?
                        .map_err(|e| RpcError::Connect(addr.to_string(), e.to_string()))?;
                    let _ = c.set_nodelay(true);
                    c
                }
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
