//! LAN gossip: the SWIM membership pool of one datacenter (port 8301),
//! built on foca's sans-IO state machine, which the `LanGossip` actor owns:
//! packets arrive as messages, foca's timers are actor timers, and what
//! foca wants sent goes out on the actor's UDP socket.
//!
//! Our thin layer over foca: member names and tags travel in the identity
//! (role, dc, server RPC port, build...), and a leave notice sent to every
//! live member before leaving lets peers tell a graceful leave (`left`)
//! from a failure (`failed`). Encryption, RTT, reconnect and tag changes at
//! run time come with the rest of the cluster issue.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use foca::{AccumulatingRuntime, Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec, Timer};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;

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
}

/// What the pool tells the other actors.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum MemberEvent {
    Join(Member),
    Leave(Member),
    Fail(Member),
}

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
struct Packet(Vec<u8>);

/// First byte of every datagram: whose it is.
const KIND_FOCA: u8 = 0;
const KIND_LEAVE: u8 = 1;

type Rng = rand010::rngs::StdRng;

pub struct LanGossip {
    foca: Foca<MemberId, PostcardCodec, Rng, NoCustomBroadcast>,
    runtime: AccumulatingRuntime<MemberId>,
    socket: Arc<UdpSocket>,
    me: MemberId,
    members: BTreeMap<String, Member>,
    /// Incarnations that announced a graceful leave.
    leaving: HashSet<(String, u64)>,
    subscribers: Vec<Recipient<MemberEvent>>,
}

/// The tags an agent gossips, in Consul's names (what `members` shows).
pub fn agent_tags(c: &crate::config::RuntimeConfig) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = [
        ("role", if c.server { "consul" } else { "node" }.to_string()),
        ("dc", c.datacenter.clone()),
        ("segment", String::new()),
        ("id", c.node_id.clone()),
        ("build", format!("{}:meridian", env!("CARGO_PKG_VERSION"))),
        ("vsn", "2".into()),
        ("vsn_min", "2".into()),
        ("vsn_max", "3".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if c.server {
        tags.insert("port".into(), c.ports.server.unwrap_or(8300).to_string());
        tags.insert("raft_vsn".into(), "3".into());
        if c.bootstrap {
            tags.insert("bootstrap".into(), "1".into());
        }
        if c.bootstrap_expect > 0 {
            tags.insert("expect".into(), c.bootstrap_expect.to_string());
        }
    }
    tags
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
    /// Binds the UDP socket and starts the actor.
    pub async fn start(
        name: String,
        bind: SocketAddr,
        advertise: std::net::IpAddr,
        tags: BTreeMap<String, String>,
    ) -> std::io::Result<Addr<LanGossip>> {
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
        let foca = Foca::new(me.clone(), lan_config(32), rng, PostcardCodec);
        let mut members = BTreeMap::new();
        members.insert(
            me.name.clone(),
            Member {
                name: me.name.clone(),
                addr: me.addr,
                tags: me.tags.clone(),
                status: MemberStatus::Alive,
            },
        );
        tracing::info!(addr = %me.addr, "LAN gossip listening");
        Ok(LanGossip {
            foca,
            runtime: AccumulatingRuntime::new(),
            socket,
            me,
            members,
            leaving: HashSet::new(),
            subscribers: Vec::new(),
        }
        .start())
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
                _ => {}
            }
        }
    }

    fn send(&self, dst: SocketAddr, packet: Vec<u8>) {
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
        self.subscribers
            .retain(|s| s.try_send(event.clone()).is_ok() || s.connected());
    }

    fn member_up(&mut self, id: MemberId) {
        let m = Member {
            name: id.name.clone(),
            addr: id.addr,
            tags: id.tags.clone(),
            status: MemberStatus::Alive,
        };
        self.members.insert(id.name.clone(), m.clone());
        tracing::info!(member = %id.name, addr = %id.addr, "member joined");
        self.notify(MemberEvent::Join(m));
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
        let left = self.leaving.remove(&(id.name.clone(), id.bump));
        let status = if left {
            MemberStatus::Left
        } else {
            MemberStatus::Failed
        };
        let m = Member {
            name: id.name.clone(),
            addr: id.addr,
            tags: id.tags.clone(),
            status,
        };
        self.members.insert(id.name.clone(), m.clone());
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
        let (socket, me) = (self.socket.clone(), ctx.address());
        ctx.spawn(
            async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok((n, _)) = socket.recv_from(&mut buf).await {
                    if me.try_send(Packet(buf[..n].to_vec())).is_err() {
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
        match msg.0.split_first() {
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
            _ => tracing::debug!("unknown gossip packet"),
        }
    }
}

impl Handler<Join> for LanGossip {
    type Result = usize;

    fn handle(&mut self, msg: Join, ctx: &mut Context<Self>) -> usize {
        let mut tried = 0;
        for addr in msg.0 {
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
        if let Err(e) = self.foca.leave_cluster(&mut self.runtime) {
            tracing::debug!(error = %e, "leave");
        }
        self.drain(ctx);
    }
}

#[cfg(test)]
mod tests;
