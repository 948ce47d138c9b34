//! The types every layer shares (Consul's `agent/structs`): the state
//! store's rows (catalog, KV, sessions, ACL objects), reads
//! ([`query::Query`]) and writes ([`command::Command`]), the request
//! path's options, answers and errors, Raft's status and type parameters,
//! user events, gossip key operations, network coordinates, and server RPC's methods.
//!
//! This module imports nothing else of the crate, so the state store,
//! storage, the RPC transport, the actors and the HTTP API can all speak
//! in these types without depending on each other: a read is the same
//! value whether it is served here, by the leader or by another
//! datacenter.

pub mod acl;
pub mod acl_replication;
pub mod catalog;
pub mod command;
pub mod coordinate;
pub mod event;
pub mod go_json;
pub mod keyring;
pub mod prepared_query;
pub mod query;
pub mod raft;
pub mod request;
pub mod rpc;
pub mod session;
pub mod snapshot;
pub mod status;
pub mod txn;

pub use command::{Command, CommandResult};
pub use event::{UserEvent, USER_EVENT_SIZE_LIMIT};
pub use raft::{NodeId, TypeConfig};
pub use request::{
    Consistency, QueryMeta, QueryOptions, ReadRequest, ReadResponse, RequestError, WriteRequest,
    WriteResponse,
};
pub use status::{RaftServer, RaftStatus, StoreStats};
