//! Who is in the pool: a member's identity as foca gossips it (name,
//! address, incarnation, tags) and the member as the rest of the agent
//! sees it (status, round-trip time), plus the events that report changes.
//! Tags ride in the identity so that a change reaches every peer by
//! gossip alone, with no extra message kind.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use actix::prelude::*;
use serde::{Deserialize, Serialize};

/// A member's identity in the pool. `bump` changes on every restart so a
/// restarted agent is a new incarnation foca can tell from the old one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberId {
    pub name: String,
    pub addr: SocketAddr,
    pub bump: u64,
    pub tags: BTreeMap<String, String>,
}

impl foca::Identity for MemberId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(MemberId {
            bump: self.bump.wrapping_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

/// Consul's member status codes (`/v1/agent/members` `Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MemberStatus {
    Alive = 1,
    Leaving = 2,
    Left = 3,
    Failed = 4,
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub name: String,
    pub addr: SocketAddr,
    pub tags: BTreeMap<String, String>,
    pub status: MemberStatus,
    /// Smoothed round-trip time of our pings to it, once measured.
    pub rtt: Option<Duration>,
}

/// What the pool tells the other actors.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum MemberEvent {
    Join(Member),
    /// Same member, new tags (or a restart that kept it alive).
    Update(Member),
    Leave(Member),
    Fail(Member),
    /// Gone from the pool for good: failed longer than `reconnect_timeout`,
    /// left longer than the tombstone time, or pruned by force-leave.
    Reap(Member),
}
