//! User events (`/v1/event/*`): what is fired, gossiped in a datacenter's
//! LAN pool and sent between datacenters.

use actix::Message;
use serde::{Deserialize, Serialize};

/// Serf's limit on a user event (name, payload and filters).
pub const USER_EVENT_SIZE_LIMIT: usize = 512;

/// A user event (`/v1/event/fire`), spread to every member of the pool.
/// Delivery is best effort, as with Serf: no total order, no promise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Message)]
#[rtype(result = "()")]
pub struct UserEvent {
    pub id: String,
    pub name: String,
    pub payload: Option<Vec<u8>>,
    pub node_filter: String,
    pub service_filter: String,
    pub tag_filter: String,
    pub version: u32,
    /// Lamport time of the pool when it was fired.
    pub ltime: u64,
}

impl UserEvent {
    pub fn size(&self) -> usize {
        self.name.len()
            + self.payload.as_ref().map_or(0, Vec::len)
            + self.node_filter.len()
            + self.service_filter.len()
            + self.tag_filter.len()
    }
}
