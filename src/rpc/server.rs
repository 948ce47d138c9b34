//! The server RPC listener: reads a frame, hands the method and its
//! arguments to the [`Service`] it was given, writes the answer. Each
//! connection serves its calls in order; a bad frame closes that
//! connection only.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::net::{TcpListener, TcpStream};

use super::codec::{decode, encode, read_frame, write_frame};
use super::RpcError;
use crate::structs::rpc::{Method, MethodId};

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

/// Accepts connections until the listener fails or the runtime stops.
pub async fn serve(listener: TcpListener, service: Arc<dyn Service>) {
    loop {
        match listener.accept().await {
            Ok((conn, peer)) => {
                let _ = conn.set_nodelay(true);
                let service = service.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(conn, service).await {
                        tracing::debug!(%peer, error = %e, "rpc connection closed");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "rpc accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(mut conn: TcpStream, service: Arc<dyn Service>) -> Result<(), RpcError> {
    loop {
        let mut frame = match read_frame(&mut conn).await {
            Ok(f) => f,
            Err(RpcError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let answer = match frame.first().copied().and_then(MethodId::from_byte) {
            Some(method) => {
                let args = frame.split_off(1);
                service.serve(method, args).await
            }
            None => refuse_on_error(encode(&Err::<(), String>(format!(
                "unknown method {:?}",
                frame.first()
            )))),
        };
        write_frame(&mut conn, &[], &answer).await?;
    }
}
