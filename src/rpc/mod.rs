//! Server RPC's transport (port 8300): frames, a pool of client
//! connections, and a listener that hands each decoded request to a
//! [`server::Service`] it is given. It carries Raft's messages between
//! servers and the request path's reads and writes, and knows nothing of
//! what serves them: the methods and their types are in
//! [`crate::structs::rpc`].

pub mod codec;
pub mod pool;
pub mod raft_net;
pub mod server;

use thiserror::Error;

pub use pool::Pool;

#[derive(Debug, Error)]
pub enum RpcError {
    #[error("rpc error: cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("rpc error: {0} did not answer in time")]
    Timeout(String),
    #[error("rpc error: {0}")]
    Io(#[from] std::io::Error),
    #[error("rpc error: bad frame: {0}")]
    Codec(String),
    /// The server could not take the request (unknown method, undecodable
    /// arguments, shutting down).
    #[error("rpc error: {0}")]
    Refused(String),
}
