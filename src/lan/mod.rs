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

pub mod keyring;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use foca::{AccumulatingRuntime, Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec, Timer};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;

use crate::structs::UserEvent;

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

/// How the pool behaves beyond SWIM's timings.
#[derive(Clone)]
pub struct LanOptions {
    pub keyring: Option<keyring::Keyring>,
    /// Where the members known are kept for a restart (`None`: nowhere).
    pub snapshot: Option<PathBuf>,
    pub rejoin_after_leave: bool,
    pub reconnect_timeout: Duration,
    pub tombstone_timeout: Duration,
    pub reconnect_interval: Duration,
    /// SWIM timings; `None` = the LAN ones.
    pub timings: Option<foca::Config>,
}

impl Default for LanOptions {
    /// Consul's serf defaults.
    fn default() -> Self {
        LanOptions {
            keyring: None,
            snapshot: None,
            rejoin_after_leave: false,
            reconnect_timeout: Duration::from_secs(72 * 3600),
            tombstone_timeout: Duration::from_secs(24 * 3600),
            reconnect_interval: Duration::from_secs(30),
            timings: None,
        }
    }
}

/// What `<data-dir>/serf/local.snapshot` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Snapshot {
    /// The agent left gracefully: do not rejoin unless told to.
    left: bool,
    members: Vec<SocketAddr>,
}

/// Mark a failed member as left (`meridian force-leave`); with `prune`,
/// forget it at once. Answers false when no member has that name.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ForceLeave {
    pub name: String,
    pub prune: bool,
}

/// Gossip new tags (a new identity; peers see an update).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetTags(pub BTreeMap<String, String>);

/// Drop every datagram in and out while set: a network partition, for tests.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Isolate(pub bool);

/// Contact these addresses to join their pool. Answers how many were tried.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Join(pub Vec<SocketAddr>);

/// Every member known, this agent included.
#[derive(Message)]
#[rtype(result = "Vec<Member>")]
pub struct Members;

/// Leave gracefully: peers see this member as `left`, not `failed`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave;

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

/// Who else wants member events.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<MemberEvent>);

#[derive(Message)]
#[rtype(result = "()")]
struct Packet(Vec<u8>, SocketAddr);

/// First byte of every packet (inside the seal when encrypting): whose it is.
const KIND_FOCA: u8 = 0;
const KIND_LEAVE: u8 = 1;
const KIND_FORCE_LEAVE: u8 = 2;
const KIND_PING: u8 = 3;
const KIND_PONG: u8 = 4;
const KIND_USER_EVENT: u8 = 5;

/// How many members a member passes a new user event on to, beyond the
/// sender's own send to everyone it knows (which may miss members it has
/// not met yet, or lose a datagram).
const EVENT_FANOUT: usize = 3;
/// Event IDs remembered so that a relayed event is delivered once.
const EVENT_IDS_KEPT: usize = 4096;
/// Fires a user event into the pool; answers it with its Lamport time.
#[derive(Message)]
#[rtype(result = "UserEvent")]
pub struct FireEvent(pub UserEvent);

/// Who wants the user events this member sees (its own included).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeEvents(pub Recipient<UserEvent>);

/// How often one member is pinged for its round-trip time.
const PING_EVERY: Duration = Duration::from_secs(1);

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
}

/// LAN timings: a crashed member is declared failed in about 3 s.
pub fn lan_config(expected_size: u32) -> foca::Config {
    let mut c =
        foca::Config::new_lan(NonZeroU32::new(expected_size.max(1)).unwrap_or(NonZeroU32::MIN));
    c.probe_period = Duration::from_millis(500);
    c.probe_rtt = Duration::from_millis(200);
    c.suspect_to_down_after = Duration::from_millis(1500);
    c.periodic_gossip = Some(foca::PeriodicParams {
        frequency: Duration::from_millis(100),
        num_members: std::num::NonZeroUsize::MIN.saturating_add(2),
    });
    c
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
        let foca = Foca::new(me.clone(), timings, rng, PostcardCodec);
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
        }
        .start();
        Ok((actor, local))
    }

    /// Members to rejoin from the snapshot of an earlier run, if any.
    fn previous_members(&self) -> Vec<SocketAddr> {
        let Some(path) = &self.opts.snapshot else {
            return Vec::new();
        };
        let snap: Snapshot = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable member snapshot");
                Snapshot::default()
            }),
            Err(_) => return Vec::new(),
        };
        if snap.left && !self.opts.rejoin_after_leave {
            tracing::info!("left gracefully last time: not rejoining (see -rejoin)");
            return Vec::new();
        }
        snap.members
            .into_iter()
            .filter(|a| *a != self.me.addr)
            .collect()
    }

    /// Writes the snapshot (atomically: a crash leaves the old one).
    fn save_snapshot(&mut self) {
        self.snapshot_dirty = false;
        let Some(path) = &self.opts.snapshot else {
            return;
        };
        let snap = Snapshot {
            left: self.left,
            members: self
                .members
                .values()
                .filter(|m| m.status == MemberStatus::Alive && m.name != self.me.name)
                .map(|m| m.addr)
                .collect(),
        };
        let tmp = path.with_extension("tmp");
        let result = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&tmp, serde_json::to_vec(&snap).unwrap_or_default()))
            .and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "cannot save the member snapshot");
        }
    }

    fn set_status(&mut self, name: &str, status: MemberStatus) -> Option<Member> {
        let m = self.members.get_mut(name)?;
        m.status = status;
        self.changed.insert(name.to_string(), Instant::now());
        self.snapshot_dirty = true;
        Some(m.clone())
    }

    /// Failed members past `reconnect_timeout` and left ones past the
    /// tombstone time leave the list.
    fn reap(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                let limit = match m.status {
                    MemberStatus::Failed => self.opts.reconnect_timeout,
                    MemberStatus::Left => self.opts.tombstone_timeout,
                    _ => return false,
                };
                m.name != self.me.name
                    && self
                        .changed
                        .get(&m.name)
                        .is_some_and(|t| now.duration_since(*t) >= limit)
            })
            .map(|m| m.name.clone())
            .collect();
        for name in expired {
            self.forget(&name);
        }
    }

    fn forget(&mut self, name: &str) {
        self.changed.remove(name);
        if let Some(m) = self.members.remove(name) {
            tracing::info!(member = %name, "member reaped");
            self.snapshot_dirty = true;
            self.notify(MemberEvent::Reap(m));
        }
    }

    /// Contacts failed members again: after a partition heals, both sides
    /// think the other failed and SWIM alone would never probe again.
    fn reconnect(&mut self, ctx: &mut Context<Self>) {
        let failed: Vec<SocketAddr> = self
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Failed)
            .map(|m| m.addr)
            .collect();
        if !failed.is_empty() {
            tracing::debug!(count = failed.len(), "reconnecting to failed members");
            self.join(failed, ctx);
        }
    }

    fn join(&mut self, addrs: Vec<SocketAddr>, ctx: &mut Context<Self>) -> usize {
        let mut tried = 0;
        for addr in addrs {
            if addr == self.me.addr {
                continue;
            }
            // foca needs an identity to announce to; only its address is used.
            let dst = MemberId {
                name: String::new(),
                addr,
                bump: 0,
                tags: BTreeMap::new(),
            };
            if self.foca.announce(dst, &mut self.runtime).is_ok() {
                tried += 1;
            }
        }
        self.drain(ctx);
        tried
    }

    /// Pings the next live member to learn its round-trip time.
    fn ping(&mut self) {
        let live: Vec<(String, SocketAddr)> = self
            .foca
            .iter_members()
            .map(|m| (m.id().name.clone(), m.id().addr))
            .collect();
        if live.is_empty() {
            return;
        }
        self.ping_seq += 1;
        let (name, addr) = &live[(self.ping_seq as usize) % live.len()];
        // Pings never answered must not pile up.
        self.pings
            .retain(|_, (_, at)| at.elapsed() < Duration::from_secs(10));
        self.pings
            .insert(self.ping_seq, (name.clone(), Instant::now()));
        let mut packet = vec![KIND_PING];
        packet.extend_from_slice(&self.ping_seq.to_be_bytes());
        self.send(*addr, packet);
    }

    fn pong(&mut self, data: &[u8]) {
        let Ok(seq) = <[u8; 8]>::try_from(data).map(u64::from_be_bytes) else {
            return;
        };
        if let Some((name, sent)) = self.pings.remove(&seq) {
            let sample = sent.elapsed();
            if let Some(m) = self.members.get_mut(&name) {
                // Smoothed like TCP's SRTT: one sample moves it by an eighth.
                m.rtt = Some(match m.rtt {
                    Some(old) => (old * 7 + sample) / 8,
                    None => sample,
                });
            }
        }
    }

    /// Carries out what foca asked for: sends, timers, notifications.
    fn drain(&mut self, ctx: &mut Context<Self>) {
        while let Some((dst, data)) = self.runtime.to_send() {
            let mut packet = Vec::with_capacity(data.len() + 1);
            packet.push(KIND_FOCA);
            packet.extend_from_slice(&data);
            self.send(dst.addr, packet);
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            ctx.run_later(after, move |act, ctx| act.timer(timer, ctx));
        }
        while let Some(n) = self.runtime.to_notify() {
            match n {
                OwnedNotification::MemberUp(id) => self.member_up(id),
                OwnedNotification::MemberDown(id) => self.member_down(id),
                OwnedNotification::Rename(_, new) => self.member_up(new),
                OwnedNotification::Rejoin(me) => {
                    tracing::info!("declared down by peers: rejoined as a new incarnation");
                    self.me = me;
                    // Tell everyone we knew, so peers that think we are
                    // gone meet the new incarnation without waiting for
                    // their reconnect round.
                    let known: Vec<SocketAddr> = self
                        .members
                        .values()
                        .filter(|m| m.name != self.me.name)
                        .map(|m| m.addr)
                        .collect();
                    ctx.notify(Join(known));
                }
                _ => {}
            }
        }
        // Members change: save soon (a killed agent rejoins with what it
        // knew), at most every 100 ms however many change at once.
        if self.snapshot_dirty && !self.snapshot_scheduled && !self.left {
            self.snapshot_scheduled = true;
            ctx.run_later(Duration::from_millis(100), |act, _| {
                act.snapshot_scheduled = false;
                if act.snapshot_dirty && !act.left {
                    act.save_snapshot();
                }
            });
        }
    }

    fn send(&self, dst: SocketAddr, packet: Vec<u8>) {
        if self.isolated {
            return;
        }
        let packet = match &self.opts.keyring {
            Some(ring) => ring.seal(packet),
            None => packet,
        };
        let socket = self.socket.clone();
        // The async send: a fresh socket's try_send_to can say WouldBlock.
        actix::spawn(async move {
            if let Err(e) = socket.send_to(&packet, dst).await {
                tracing::debug!(%dst, error = %e, "gossip send failed");
            }
        });
    }

    fn timer(&mut self, timer: Timer<MemberId>, ctx: &mut Context<Self>) {
        if let Err(e) = self.foca.handle_timer(timer, &mut self.runtime) {
            tracing::debug!(error = %e, "gossip timer");
        }
        self.drain(ctx);
    }

    fn notify(&mut self, event: MemberEvent) {
        self.subscribers.retain(|s| {
            // do_send ignores the mailbox bound: a burst of member
            // changes must not lose any.
            s.do_send(event.clone());
            s.connected()
        });
    }

    fn member_up(&mut self, id: MemberId) {
        let was_alive = self
            .members
            .get(&id.name)
            .is_some_and(|m| m.status == MemberStatus::Alive);
        let m = Member {
            name: id.name.clone(),
            addr: id.addr,
            tags: id.tags.clone(),
            status: MemberStatus::Alive,
            rtt: self.members.get(&id.name).and_then(|m| m.rtt),
        };
        self.members.insert(id.name.clone(), m.clone());
        self.changed.insert(id.name.clone(), Instant::now());
        self.snapshot_dirty = true;
        if was_alive {
            tracing::info!(member = %id.name, "member updated");
            self.notify(MemberEvent::Update(m));
        } else {
            tracing::info!(member = %id.name, addr = %id.addr, "member joined");
            self.notify(MemberEvent::Join(m));
        }
    }

    fn member_down(&mut self, id: MemberId) {
        // A newer incarnation of the same name may already be up.
        if self
            .foca
            .iter_members()
            .any(|m| m.id().name == id.name && m.id().bump != id.bump)
        {
            return;
        }
        let forced = self
            .forced
            .remove(&id.name)
            .is_some_and(|at| at.elapsed() < Duration::from_secs(60));
        let left = self.leaving.remove(&(id.name.clone(), id.bump)) || forced;
        let status = if left {
            MemberStatus::Left
        } else {
            MemberStatus::Failed
        };
        // A force-leave may have settled it already.
        if self
            .members
            .get(&id.name)
            .is_some_and(|m| m.status == MemberStatus::Left)
        {
            return;
        }
        let m = Member {
            name: id.name.clone(),
            addr: id.addr,
            tags: id.tags.clone(),
            status,
            rtt: self.members.get(&id.name).and_then(|m| m.rtt),
        };
        self.members.insert(id.name.clone(), m.clone());
        self.changed.insert(id.name.clone(), Instant::now());
        self.snapshot_dirty = true;
        tracing::info!(member = %id.name, ?status, "member down");
        self.notify(if left {
            MemberEvent::Leave(m)
        } else {
            MemberEvent::Fail(m)
        });
    }
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

impl Handler<Packet> for LanGossip {
    type Result = ();

    fn handle(&mut self, msg: Packet, ctx: &mut Context<Self>) {
        if self.isolated {
            return;
        }
        let packet = match &self.opts.keyring {
            Some(ring) => match ring.open(&msg.0) {
                Some(p) => p,
                None => {
                    tracing::debug!(from = %msg.1, "dropped a datagram no key opens");
                    return;
                }
            },
            None => msg.0,
        };
        match packet.split_first() {
            Some((&KIND_FOCA, data)) => {
                if let Err(e) = self.foca.handle_data(data, &mut self.runtime) {
                    tracing::debug!(error = %e, "bad gossip packet");
                }
                self.drain(ctx);
            }
            Some((&KIND_LEAVE, data)) => {
                if let Ok((name, bump)) = serde_json::from_slice::<(String, u64)>(data) {
                    if let Some(m) = self.members.get_mut(&name) {
                        m.status = MemberStatus::Leaving;
                    }
                    self.leaving.insert((name, bump));
                }
            }
            Some((&KIND_FORCE_LEAVE, data)) => {
                if let Ok((name, prune)) = serde_json::from_slice::<(String, bool)>(data) {
                    self.force_leave(&name, prune);
                }
            }
            Some((&KIND_PING, data)) => {
                let mut pong = vec![KIND_PONG];
                pong.extend_from_slice(data);
                self.send(msg.1, pong);
            }
            Some((&KIND_PONG, data)) => self.pong(data),
            Some((&KIND_USER_EVENT, data)) => {
                if let Ok(ev) = serde_json::from_slice::<UserEvent>(data) {
                    self.user_event(ev, EVENT_FANOUT);
                }
            }
            _ => tracing::debug!("unknown gossip packet"),
        }
    }
}

impl LanGossip {
    /// Settles a failed member as left here. Live members are not
    /// touched: as in Consul, one that is alive stays (or comes back).
    fn force_leave(&mut self, name: &str, prune: bool) -> bool {
        let Some(status) = self.members.get(name).map(|m| m.status) else {
            return false;
        };
        if status == MemberStatus::Failed || status == MemberStatus::Leaving {
            if let Some(m) = self.set_status(name, MemberStatus::Left) {
                tracing::info!(member = %name, "member forced to leave");
                self.notify(MemberEvent::Leave(m));
            }
        } else if status == MemberStatus::Alive && name != self.me.name {
            self.forced.insert(name.to_string(), Instant::now());
        }
        if prune && status != MemberStatus::Alive {
            self.forget(name);
        }
        true
    }
}

impl LanGossip {
    /// Delivers an event seen for the first time and passes it on to
    /// `fanout` members (all of them when it starts here).
    fn user_event(&mut self, ev: UserEvent, fanout: usize) {
        if self.event_ids.contains(&ev.id) {
            return;
        }
        if self.event_ids.len() >= EVENT_IDS_KEPT {
            self.event_ids.pop_front();
        }
        self.event_ids.push_back(ev.id.clone());
        self.event_clock = self.event_clock.max(ev.ltime);
        let mut packet = vec![KIND_USER_EVENT];
        packet.extend_from_slice(&serde_json::to_vec(&ev).unwrap_or_default());
        let mut peers: Vec<SocketAddr> = self.foca.iter_members().map(|m| m.id().addr).collect();
        rand::seq::SliceRandom::shuffle(peers.as_mut_slice(), &mut rand::thread_rng());
        for addr in peers.into_iter().take(fanout) {
            self.send(addr, packet.clone());
        }
        self.event_subscribers.retain(|s| {
            s.do_send(ev.clone());
            s.connected()
        });
    }
}

impl Handler<FireEvent> for LanGossip {
    type Result = MessageResult<FireEvent>;

    fn handle(&mut self, msg: FireEvent, _: &mut Context<Self>) -> Self::Result {
        self.event_clock += 1;
        let ev = UserEvent {
            ltime: self.event_clock,
            ..msg.0
        };
        self.user_event(ev.clone(), usize::MAX);
        MessageResult(ev)
    }
}

impl Handler<SubscribeEvents> for LanGossip {
    type Result = ();

    fn handle(&mut self, msg: SubscribeEvents, _: &mut Context<Self>) {
        self.event_subscribers.push(msg.0);
    }
}

impl Handler<Join> for LanGossip {
    type Result = usize;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> usize {
        self.join(msg.0, ctx)
    }
}

impl Handler<ForceLeave> for LanGossip {
    type Result = bool;

    fn handle(&mut self, msg: ForceLeave, _: &mut Context<Self>) -> bool {
        if !self.force_leave(&msg.name, msg.prune) {
            return false;
        }
        let notice = serde_json::to_vec(&(&msg.name, msg.prune)).unwrap_or_default();
        let mut packet = vec![KIND_FORCE_LEAVE];
        packet.extend_from_slice(&notice);
        for m in self.foca.iter_members() {
            self.send(m.id().addr, packet.clone());
        }
        true
    }
}

impl Handler<SetTags> for LanGossip {
    type Result = ();

    fn handle(&mut self, msg: SetTags, ctx: &mut Context<Self>) {
        if msg.0 == self.me.tags {
            return;
        }
        let new = MemberId {
            tags: msg.0,
            bump: self.me.bump.wrapping_add(1),
            ..self.me.clone()
        };
        match self.foca.change_identity(new.clone(), &mut self.runtime) {
            Ok(()) => {
                if let Some(me) = self.members.get_mut(&new.name) {
                    me.tags = new.tags.clone();
                }
                self.me = new;
            }
            Err(e) => tracing::warn!(error = %e, "cannot change gossip tags"),
        }
        self.drain(ctx);
    }
}

impl Handler<Isolate> for LanGossip {
    type Result = ();

    fn handle(&mut self, msg: Isolate, _: &mut Context<Self>) {
        self.isolated = msg.0;
    }
}

impl Handler<Members> for LanGossip {
    type Result = MessageResult<Members>;

    fn handle(&mut self, _: Members, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.members.values().cloned().collect())
    }
}

impl Handler<Subscribe> for LanGossip {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.subscribers.push(msg.0);
    }
}

impl Handler<Leave> for LanGossip {
    type Result = ();

    fn handle(&mut self, _: Leave, ctx: &mut Context<Self>) {
        let notice = serde_json::to_vec(&(&self.me.name, self.me.bump)).unwrap_or_default();
        let mut packet = vec![KIND_LEAVE];
        packet.extend_from_slice(&notice);
        for m in self.foca.iter_members() {
            self.send(m.id().addr, packet.clone());
        }
        if let Some(me) = self.members.get_mut(&self.me.name) {
            me.status = MemberStatus::Left;
        }
        self.left = true;
        self.save_snapshot();
        if let Err(e) = self.foca.leave_cluster(&mut self.runtime) {
            tracing::debug!(error = %e, "leave");
        }
        self.drain(ctx);
    }
}

#[cfg(test)]
mod tests;
