//! The write batcher of the leader: writes that arrive while one Raft
//! entry is in flight are gathered into the next, so one fsync serves them
//! all. Only writes for this server reach it (the router sends a
//! follower's writes to the leader before they are batched); if
//! leadership moved meanwhile, openraft refuses the entry and its writers
//! get `No cluster leader`, which the router retries at the new leader.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::read::{leader_lease, lease_lost};
use super::{map_write_err, RaftActor};
use crate::storage::{NodeId, Raft};
use crate::structs::{Command, CommandResult, RequestError, WriteResponse};

/// A write for this server's Raft log (it must lead).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<WriteResponse, RequestError>")]
pub struct RaftWrite(pub Command);

impl Handler<RaftWrite> for RaftActor {
    type Result = ResponseFuture<Result<WriteResponse, RequestError>>;

    fn handle(&mut self, msg: RaftWrite, ctx: &mut Context<Self>) -> Self::Result {
        self.write(msg.0, ctx)
    }
}

/// Resolves once this server no longer leads in the term it proposed
/// the entry in: its lease ran out, or it stepped down (a higher term
/// seen, a restart's brief leadership of its old term ended). What its
/// writers wait for is then unlikely to commit soon, and may never: an
/// entry that a snapshot from the next leader overwrote gets no answer
/// from openraft at all, and until `COMMIT_TIMEOUT` the writes queued
/// behind it would wait too (writes resumed ~5.4 s after a leader kill
/// when the new leader was a server that had been restarted with such an
/// entry in flight).
async fn leadership_end(raft: Raft, me: NodeId, lease_ms: u64) {
    let term = raft.metrics().borrow().vote;
    loop {
        {
            let m = raft.metrics();
            let m = m.borrow();
            if m.vote != term || m.current_leader != Some(me) || lease_lost(&m, me, lease_ms) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Longest wait for one entry to commit before its writers get an error
/// (Consul's 7 s RPC hold timeout); the entry may still commit later.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(7);

/// Most writes in one entry, and most value bytes (entries stay well
/// under a Raft message's comfortable size).
const MAX_BATCH: usize = 512;
const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;

pub(super) struct Queued {
    command: Command,
    reply: oneshot::Sender<Result<WriteResponse, RequestError>>,
}

/// The bulk of a command, for batch sizing.
fn command_size(c: &Command) -> usize {
    match c {
        Command::KvSet { key, value, .. } | Command::KvCas { key, value, .. } => {
            key.len() + value.len()
        }
        Command::Batch(cmds) => cmds.iter().map(command_size).sum(),
        // A restore goes in an entry of its own.
        Command::Restore(_) => MAX_BATCH_BYTES,
        _ => 256,
    }
}

static COMMIT_TIME: crate::metrics::Static<crate::metrics::Summary> =
    crate::metrics::summary("raft.commitTime");
static APPLY: crate::metrics::Static<crate::metrics::Counter> =
    crate::metrics::counter("raft.apply");

/// Consul's timer for a write of this kind, from queueing to applied
/// (`kvs.apply`, `txn.apply`, ...); none for the writes Consul does not
/// time.
fn apply_timer(c: &Command) -> Option<&'static crate::metrics::Summary> {
    use crate::metrics::{summary, Static, Summary};
    static KVS: Static<Summary> = summary("kvs.apply");
    static TXN: Static<Summary> = summary("txn.apply");
    static REGISTER: Static<Summary> = summary("catalog.register");
    static DEREGISTER: Static<Summary> = summary("catalog.deregister");
    static SESSION: Static<Summary> = summary("session.apply");
    let timer = match c {
        Command::KvSet { .. }
        | Command::KvCas { .. }
        | Command::KvDelete { .. }
        | Command::KvDeleteCas { .. }
        | Command::KvDeleteTree { .. }
        | Command::KvExpire { .. }
        | Command::KvLock { .. }
        | Command::KvUnlock { .. } => &KVS,
        Command::Txn(_) | Command::TxnOps(_) => &TXN,
        Command::Register(_) => &REGISTER,
        Command::Deregister(_) => &DEREGISTER,
        Command::SessionCreate(_) | Command::SessionDestroy { .. } => &SESSION,
        _ => return None,
    };
    Some(timer.get())
}

impl RaftActor {
    /// Queues a write; the batcher sends everything queued as one entry.
    pub(super) fn write(
        &mut self,
        command: Command,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<WriteResponse, RequestError>> {
        if self.lease_lost(&self.raft.metrics().borrow()) {
            return Box::pin(async { Err(RequestError::NoLeader) });
        }
        if let Command::SessionRenew { id } = &command {
            self.renew_ttl(id);
        }
        let timer = apply_timer(&command);
        let started = std::time::Instant::now();
        let (tx, rx) = oneshot::channel();
        self.queue.push(Queued { command, reply: tx });
        if !self.in_flight {
            self.flush(ctx);
        }
        Box::pin(async move {
            let r = rx.await.unwrap_or(Err(RequestError::ShuttingDown));
            if let (Some(t), Ok(_)) = (timer, &r) {
                t.since(started);
            }
            r
        })
    }

    /// Sends the queued writes as one Raft entry. openraft 0.9 flushes one
    /// append at a time, so writes that arrive while one entry is in flight
    /// are gathered into the next: one fsync serves them all.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.queue.is_empty() {
            return;
        }
        let mut bytes = 0usize;
        let take = self.queue.iter().take_while(|q| {
            bytes += command_size(&q.command);
            bytes <= MAX_BATCH_BYTES
        });
        let n = take.count().clamp(1, MAX_BATCH);
        let batch: Vec<Queued> = self.queue.drain(..n).collect();
        self.in_flight = true;
        let entry = match batch.as_slice() {
            [one] => one.command.clone(),
            many => Command::Batch(many.iter().map(|q| q.command.clone()).collect()),
        };
        let raft = self.raft.clone();
        let (me, lease_ms) = (self.node_id, leader_lease(&self.config));
        let writes = batch.len();
        let fut = async move {
            let started = std::time::Instant::now();
            // Writers learn of a lost leadership or a stuck commit with
            // an error; their entry may still commit later, as with Consul.
            let failed = tokio::select! {
                outcome = raft.client_write(entry) => Ok(outcome),
                _ = tokio::time::sleep(COMMIT_TIMEOUT) => Err(RequestError::Timeout),
                _ = leadership_end(raft.clone(), me, lease_ms) => Err(RequestError::LeadershipLost),
            };
            let outcome = match failed {
                Ok(outcome) => outcome,
                Err(e) => {
                    for q in batch {
                        let _ = q.reply.send(Err(e.clone()));
                    }
                    return;
                }
            };
            match outcome {
                Ok(resp) => {
                    COMMIT_TIME.get().since(started);
                    APPLY.get().incr(writes as f64);
                    let index = resp.log_id.index;
                    let results = match resp.data {
                        CommandResult::Batch(r) if batch.len() > 1 => r,
                        single => vec![single],
                    };
                    for (q, result) in batch.into_iter().zip(results) {
                        let _ = q.reply.send(Ok(WriteResponse { index, result }));
                    }
                }
                Err(e) => {
                    let e = map_write_err(e);
                    for q in batch {
                        let _ = q.reply.send(Err(e.clone()));
                    }
                }
            }
        };
        ctx.spawn(fut.into_actor(self).map(|_, act, ctx| {
            act.in_flight = false;
            act.flush(ctx);
        }));
    }
}
