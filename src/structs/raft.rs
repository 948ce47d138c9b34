//! The Raft type parameters: entries carry a [`Command`], applying one
//! answers a [`CommandResult`]. Declared here, beside the commands, so
//! that Raft's messages can travel in RPC frames without the transport
//! knowing the storage that persists them.

use std::io::Cursor;

use super::command::{Command, CommandResult};

openraft::declare_raft_types!(
    /// Meridian's Raft types.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
);

/// A server's Raft id: the first 8 bytes of its node UUID.
pub type NodeId = u64;
