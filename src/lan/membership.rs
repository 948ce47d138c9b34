//! The member list and its lifecycle: joining, members coming up and
//! going down (told apart as left or failed by the leave notices),
//! force-leave, reconnecting to failed members so a healed partition
//! merges, reaping the long gone, and new tags (a new identity); with the
//! messages that ask for these and the subscribers told of each change.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::wire::{KIND_FORCE_LEAVE, KIND_LEAVE};
use super::{LanGossip, Member, MemberEvent, MemberId, MemberStatus};

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

/// Who else wants member events.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<MemberEvent>);

impl LanGossip {
    fn set_status(&mut self, name: &str, status: MemberStatus) -> Option<Member> {
        let m = self.members.get_mut(name)?;
        m.status = status;
        self.changed.insert(name.to_string(), Instant::now());
        self.snapshot_dirty = true;
        Some(m.clone())
    }

    /// Failed members past `reconnect_timeout` and left ones past the
    /// tombstone time leave the list.
    pub(super) fn reap(&mut self) {
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
        self.forget_coordinate(name);
        if let Some(m) = self.members.remove(name) {
            tracing::info!(member = %name, "member reaped");
            self.snapshot_dirty = true;
            self.notify(MemberEvent::Reap(m));
        }
    }

    /// Contacts failed members again: after a partition heals, both sides
    /// think the other failed and SWIM alone would never probe again.
    pub(super) fn reconnect(&mut self, ctx: &mut Context<Self>) {
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

    pub(super) fn join(&mut self, addrs: Vec<SocketAddr>, ctx: &mut Context<Self>) -> usize {
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

    fn notify(&mut self, event: MemberEvent) {
        self.record(&event);
        self.subscribers.retain(|s| {
            // do_send ignores the mailbox bound: a burst of member
            // changes must not lose any.
            s.do_send(event.clone());
            s.connected()
        });
    }

    pub(super) fn member_up(&mut self, id: MemberId) {
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

    pub(super) fn member_down(&mut self, id: MemberId) {
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

    /// Settles a failed member as left here. Live members are not
    /// touched: as in Consul, one that is alive stays (or comes back).
    pub(super) fn force_leave(&mut self, name: &str, prune: bool) -> bool {
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
