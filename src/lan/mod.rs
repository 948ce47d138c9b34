//! LAN gossip: the SWIM membership pool of one datacenter (port 8301),
//! built on foca's sans-IO state machine, which the `LanGossip` actor owns:
//! packets arrive as messages, foca's timers are actor timers, and what
//! foca wants sent goes out on the actor's UDP socket.
//!
//! Our thin layer over foca: member names and tags travel in the identity
//! (role, dc, server RPC port, build...), and a leave notice sent to every
//! live member before leaving lets peers tell a graceful leave (`left`)
//! from a failure (`failed`); a force-leave notice does the same for a
//! failed member on an operator's word; tags change at run time through a
//! new identity (peers see a rename, reported as an update); every
//! datagram can be sealed with AES-GCM (`keyring`); pings measure
//! round-trip times; failed members are contacted again now and then so
//! a healed partition merges, and reaped after `reconnect_timeout`; the
//! members known are kept in `<data-dir>/serf/local.snapshot` so that a
//! restarted agent rejoins them (after a graceful leave only with
//! `-rejoin`).
//!
//! Its files, one concern each:
//!
//! - this file: the `LanGossip` actor, its state, starting and stopping;
//! - `member.rs`: member identities, statuses and the member events;
//! - `options.rs`: the pool's options and SWIM timings;
//! - `membership.rs`: the member list and its lifecycle (join, up, down,
//!   leave, force-leave, reconnect, reap, tags);
//! - `runtime.rs`: carrying out what foca asks for (sends, timers, notifications);
//! - `wire.rs`: the datagram kinds, sealing and opening, dispatch, the
//!   count of datagrams and bytes in and out;
//! - `rtt.rs`: pings for round-trip times and network coordinates;
//! - `events.rs`: user events;
//! - `snapshot.rs`: the members kept for a restart;
//! - `keyring.rs`: the encryption keys, the AES-GCM seal, the keyring file;
//! - `key_query.rs`: key operations carried to every member and counted;
//! - `telemetry.rs`: members by state and membership changes as metrics.

mod events;
mod key_query;
pub mod keyring;
mod member;
mod membership;
mod options;
mod rtt;
mod runtime;
mod snapshot;
mod telemetry;
pub(crate) mod wire;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use foca::{AccumulatingRuntime, Foca, NoCustomBroadcast, PostcardCodec};
use tokio::net::UdpSocket;

use crate::structs::UserEvent;
pub use events::{FireEvent, SubscribeEvents};
pub use key_query::{KeyOperation, MAX_RELAY_FACTOR};
pub use member::{Member, MemberEvent, MemberId, MemberStatus};
pub use membership::{ForceLeave, Join, Leave, Members, Subscribe};
// Reached by the pool's own tests only.
#[cfg(test)]
pub use membership::SetTags;
pub use options::{lan_config, LanOptions};
use rtt::PING_EVERY;
pub use rtt::{Coordinates, PoolCoordinates};
pub use wire::wire_totals;
#[cfg(test)]
pub use wire::Isolate;
use wire::Packet;

/// Stop gossiping at once, without a leave (what a crash looks like to peers).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for LanGossip {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

type Rng = rand010::rngs::StdRng;

pub struct LanGossip {
    foca: Foca<MemberId, PostcardCodec, Rng, NoCustomBroadcast>,
    runtime: AccumulatingRuntime<MemberId>,
    socket: Arc<UdpSocket>,
    me: MemberId,
    members: BTreeMap<String, Member>,
    /// Incarnations that announced a graceful leave.
    leaving: HashSet<(String, u64)>,
    /// Force-leave notices for members this agent still saw alive (its
    /// failure detection may lag the sender's): applied when they go down.
    forced: HashMap<String, Instant>,
    subscribers: Vec<Recipient<MemberEvent>>,
    opts: LanOptions,
    /// When each member last changed status (for reaping).
    changed: HashMap<String, Instant>,
    /// Pings in flight: sequence number to (member, sent at).
    pings: HashMap<u64, (String, Instant)>,
    ping_seq: u64,
    snapshot_dirty: bool,
    snapshot_scheduled: bool,
    left: bool,
    isolated: bool,
    event_clock: u64,
    event_ids: std::collections::VecDeque<String>,
    event_subscribers: Vec<Recipient<UserEvent>>,
    /// Key operations this member asked and is counting answers for.
    key_queries: HashMap<u64, key_query::PendingKeyQuery>,
    /// This member's network coordinate, moved by every timed ping.
    vivaldi: crate::coordinate::Client,
    /// Samples that moved it so far.
    vivaldi_samples: u64,
    /// Each peer's coordinate as of its last answer.
    peer_coords: HashMap<String, crate::structs::coordinate::Coordinate>,
    /// Test builds only: how long pings and their answers wait before
    /// they leave (`MERIDIAN_TEST_PING_DELAY_MS`), an artificial access
    /// link that gives loopback agents distinct round-trip times.
    link_delay: Duration,
    /// The timings chosen for a small pool, and the pool size foca's
    /// current ones were scaled for (`options::scaled`).
    base_timings: foca::Config,
    scaled_for: usize,
}

impl LanGossip {
    /// Binds the UDP socket (gossip uses no TCP) and starts the actor.
    /// Returns the address bound too: with port 0 the caller learns the
    /// ephemeral port, which this member also advertises.
    pub async fn start(
        name: String,
        bind: SocketAddr,
        advertise: std::net::IpAddr,
        tags: BTreeMap<String, String>,
        opts: LanOptions,
    ) -> std::io::Result<(Addr<LanGossip>, SocketAddr)> {
        let socket = Arc::new(UdpSocket::bind(bind).await?);
        let local = socket.local_addr()?;
        let bump = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let me = MemberId {
            name,
            addr: SocketAddr::new(advertise, local.port()),
            bump,
            tags,
        };
        let rng: Rng = rand010::make_rng();
        let timings = opts.timings.clone().unwrap_or_else(|| lan_config(32));
        let foca = Foca::new(me.clone(), timings.clone(), rng, PostcardCodec);
        let mut members = BTreeMap::new();
        members.insert(
            me.name.clone(),
            Member {
                name: me.name.clone(),
                addr: me.addr,
                tags: me.tags.clone(),
                status: MemberStatus::Alive,
                rtt: None,
            },
        );
        tracing::info!(member = %me.name, addr = %me.addr, encrypted = opts.keyring.is_some(), "gossip listening");
        let actor = LanGossip {
            foca,
            runtime: AccumulatingRuntime::new(),
            socket,
            me,
            members,
            leaving: HashSet::new(),
            forced: HashMap::new(),
            subscribers: Vec::new(),
            opts,
            changed: HashMap::new(),
            pings: HashMap::new(),
            ping_seq: 0,
            snapshot_dirty: false,
            snapshot_scheduled: false,
            left: false,
            isolated: false,
            event_clock: 0,
            event_ids: Default::default(),
            event_subscribers: Vec::new(),
            key_queries: HashMap::new(),
            vivaldi: crate::coordinate::Client::default(),
            vivaldi_samples: 0,
            peer_coords: HashMap::new(),
            link_delay: test_link_delay(),
            base_timings: timings,
            scaled_for: 1,
        }
        .start();
        Ok((actor, local))
    }
}

/// `MERIDIAN_TEST_PING_DELAY_MS` in debug builds; release builds have no
/// such knob, so a production agent cannot be slowed by its environment.
fn test_link_delay() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("MERIDIAN_TEST_PING_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        return Duration::from_millis(ms.min(5_000));
    }
    Duration::ZERO
}

impl Actor for LanGossip {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let previous = self.previous_members();
        if !previous.is_empty() {
            tracing::info!(
                count = previous.len(),
                "rejoining the members of the last run"
            );
            self.join(previous, ctx);
        }
        // The snapshot now describes this run.
        self.snapshot_dirty = true;
        ctx.run_interval(Duration::from_secs(1), |act, _| {
            act.reap();
            act.member_gauges();
            if act.snapshot_dirty && !act.left {
                act.save_snapshot();
            }
        });
        ctx.run_interval(self.opts.reconnect_interval, |act, ctx| act.reconnect(ctx));
        ctx.run_interval(PING_EVERY, |act, _| act.ping());
        let (socket, me) = (self.socket.clone(), ctx.address());
        ctx.spawn(
            async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                    wire::count_received(n);
                    // Waits for room in the mailbox: a burst (a member
                    // thawing and replaying its queue) must not end the
                    // receive loop, which would deafen this member for good.
                    // Only a stopped actor ends it.
                    if me.send(Packet(buf[..n].to_vec(), from)).await.is_err() {
                        break;
                    }
                }
            }
            .into_actor(self),
        );
    }
}

#[cfg(test)]
mod tests;
