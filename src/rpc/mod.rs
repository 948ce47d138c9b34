//! Server RPC. For now: the request and response types of the one request
//! path that HTTP and DNS share (read with query options, write with a
//! command). The framed TCP protocol and connection pool that carry them
//! between servers and datacenters come with the cluster issue; the types
//! are plain serde data so they travel unchanged.

pub mod raft_net;
pub mod request;

pub use request::{
    Consistency, QueryMeta, QueryOptions, ReadRequest, ReadResponse, RequestError, WriteRequest,
    WriteResponse,
};
