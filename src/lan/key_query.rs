//! Keyring operations across the pool (Consul's serf key queries): the
//! member that is asked applies the operation to its own ring first, then
//! sends it to every live member, each of which applies it, saves its
//! keyring file and answers with its keys; answers are counted per key
//! (`Keys`, `PrimaryKeys`, `NumNodes` of Consul's answer).
//!
//! Datagrams are lost, so the query is sent again to members that have
//! not answered until all have or the time is up; applying an operation
//! twice changes nothing the second time (installing an installed key,
//! using the primary, removing a removed key). With a relay factor a
//! member also sends its answer through that many other members, as
//! serf's relayed responses, for paths where the direct one is lossy.
//!
//! Safety comes from the ring itself: every installed key opens, so a
//! member that has not yet installed a new key still reads members that
//! seal with a key it has; and an operator installs everywhere, then
//! uses, then removes, each step counted before the next.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::wire::{KIND_KEY_QUERY, KIND_KEY_RELAY, KIND_KEY_REPLY};
use super::LanGossip;
use crate::structs::keyring::{KeyOp, KeyTally};

/// How long the asking member waits for every member's answer (about
/// what serf's query timeout is for a small pool).
const KEY_QUERY_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the query goes again to members that have not answered.
const KEY_QUERY_RESEND: Duration = Duration::from_millis(400);
/// Consul's bound on `relay-factor`.
pub const MAX_RELAY_FACTOR: u8 = 5;

/// Run a key operation on this member and every live member of its pool.
#[derive(Message)]
#[rtype(result = "KeyTally")]
pub struct KeyOperation {
    pub op: KeyOp,
    /// How many other members each answer is also relayed through.
    pub relay_factor: u8,
}

/// Counts one member's answer.
fn record(tally: &mut KeyTally, r: &KeyReply) {
    tally.num_resp += 1;
    if !r.ok {
        tally.num_err += 1;
    }
    if !r.message.is_empty() {
        tally.messages.insert(r.node.clone(), r.message.clone());
    }
    for k in &r.keys {
        *tally.keys.entry(k.clone()).or_default() += 1;
    }
    if let Some(p) = &r.primary {
        *tally.primary_keys.entry(p.clone()).or_default() += 1;
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeyQuery {
    id: u64,
    op: KeyOp,
    relay_factor: u8,
    /// The asking member's gossip address, where answers go (relays too).
    reply_to: SocketAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeyReply {
    id: u64,
    node: String,
    ok: bool,
    message: String,
    keys: Vec<String>,
    primary: Option<String>,
}

/// A query this member asked and is still counting.
pub(super) struct PendingKeyQuery {
    packet: Vec<u8>,
    /// Members asked and not yet heard from, by name.
    waiting: HashMap<String, SocketAddr>,
    answered: HashSet<String>,
    tally: KeyTally,
    deadline: Instant,
    done: Option<oneshot::Sender<KeyTally>>,
}

impl LanGossip {
    /// Applies `op` to this member's ring (and its file); the answer this
    /// member gives for it.
    fn apply_key_op(&mut self, id: u64, op: &KeyOp) -> KeyReply {
        let mut reply = KeyReply {
            id,
            node: self.me.name.clone(),
            ok: true,
            message: String::new(),
            keys: Vec::new(),
            primary: None,
        };
        let file = self.opts.keyring_file.clone();
        let Some(ring) = self.opts.keyring.as_mut() else {
            reply.ok = false;
            reply.message = match op {
                KeyOp::List => "Keyring is empty (encryption not enabled)",
                _ => "No keyring to modify (encryption not enabled)",
            }
            .to_string();
            return reply;
        };
        let changed = match op {
            KeyOp::List => Ok(false),
            KeyOp::Install(k) => ring.install(k),
            KeyOp::Use(k) => ring.use_key(k),
            KeyOp::Remove(k) => ring.remove(k),
        };
        match changed {
            Ok(true) => {
                tracing::info!(op = op.name(), "gossip keyring changed");
                if let Some(path) = &file {
                    if let Err(e) = ring.save(path) {
                        tracing::error!(error = %e, "cannot save the keyring");
                        reply.ok = false;
                        reply.message = format!("Failed to write keyring file: {e}");
                    }
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(op = op.name(), error = %e, "gossip key operation refused");
                reply.ok = false;
                reply.message = e.to_string();
            }
        }
        reply.keys = ring.keys().to_vec();
        reply.primary = ring.primary().map(str::to_string);
        reply
    }

    /// A query from the member that was asked: apply, answer (and relay).
    pub(super) fn key_query(&mut self, q: KeyQuery) {
        let reply = self.apply_key_op(q.id, &q.op);
        let Ok(body) = serde_json::to_vec(&reply) else {
            return;
        };
        let mut packet = vec![KIND_KEY_REPLY];
        packet.extend_from_slice(&body);
        self.send(q.reply_to, packet);
        let relay = q.relay_factor.min(MAX_RELAY_FACTOR) as usize;
        if relay > 0 {
            let Ok(wrapped) = serde_json::to_vec(&(q.reply_to, body)) else {
                return;
            };
            let mut relayed = vec![KIND_KEY_RELAY];
            relayed.extend_from_slice(&wrapped);
            let mut peers: Vec<SocketAddr> = self
                .foca
                .iter_members()
                .map(|m| m.id().addr)
                .filter(|a| *a != q.reply_to)
                .collect();
            rand::seq::SliceRandom::shuffle(peers.as_mut_slice(), &mut rand::thread_rng());
            for addr in peers.into_iter().take(relay) {
                self.send(addr, relayed.clone());
            }
        }
    }

    /// An answer to pass on to the member that asked.
    pub(super) fn key_relay(&mut self, to: SocketAddr, body: Vec<u8>) {
        let mut packet = vec![KIND_KEY_REPLY];
        packet.extend_from_slice(&body);
        self.send(to, packet);
    }

    /// An answer to a query this member asked: counted once per member.
    pub(super) fn key_reply(&mut self, r: KeyReply) {
        let Some(p) = self.key_queries.get_mut(&r.id) else {
            return;
        };
        if p.answered.contains(&r.node) || p.waiting.remove(&r.node).is_none() {
            return;
        }
        p.answered.insert(r.node.clone());
        record(&mut p.tally, &r);
        if p.waiting.is_empty() {
            self.finish_key_query(r.id);
        }
    }

    fn finish_key_query(&mut self, id: u64) {
        if let Some(mut p) = self.key_queries.remove(&id) {
            if let Some(done) = p.done.take() {
                let _ = done.send(p.tally);
            }
        }
    }

    /// Sends the query again to the silent, or gives up on them.
    fn key_query_tick(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Some(p) = self.key_queries.get(&id) else {
            return;
        };
        if Instant::now() >= p.deadline {
            tracing::warn!(
                silent = ?p.waiting.keys().collect::<Vec<_>>(),
                "members did not answer the key query"
            );
            self.finish_key_query(id);
            return;
        }
        let (packet, to): (Vec<u8>, Vec<SocketAddr>) =
            (p.packet.clone(), p.waiting.values().copied().collect());
        for addr in to {
            self.send(addr, packet.clone());
        }
        ctx.run_later(KEY_QUERY_RESEND, move |act, ctx| {
            act.key_query_tick(id, ctx)
        });
    }
}

impl Handler<KeyOperation> for LanGossip {
    type Result = ResponseFuture<KeyTally>;

    fn handle(&mut self, msg: KeyOperation, ctx: &mut Context<Self>) -> Self::Result {
        let id: u64 = rand::random();
        // Here first: the query goes out sealed with this member's ring
        // as the operation leaves it.
        let mine = self.apply_key_op(id, &msg.op);
        let waiting: HashMap<String, SocketAddr> = self
            .foca
            .iter_members()
            .map(|m| (m.id().name.clone(), m.id().addr))
            .filter(|(name, _)| *name != self.me.name)
            .collect();
        let mut tally = KeyTally {
            num_nodes: waiting.len() + 1,
            ..KeyTally::default()
        };
        record(&mut tally, &mine);
        let query = KeyQuery {
            id,
            op: msg.op,
            relay_factor: msg.relay_factor.min(MAX_RELAY_FACTOR),
            reply_to: self.me.addr,
        };
        let mut packet = vec![KIND_KEY_QUERY];
        packet.extend_from_slice(&serde_json::to_vec(&query).unwrap_or_default());
        if waiting.is_empty() {
            return Box::pin(async move { tally });
        }
        let (tx, rx) = oneshot::channel();
        self.key_queries.insert(
            id,
            PendingKeyQuery {
                packet,
                waiting,
                answered: HashSet::new(),
                tally,
                deadline: Instant::now() + KEY_QUERY_TIMEOUT,
                done: Some(tx),
            },
        );
        self.key_query_tick(id, ctx);
        Box::pin(async move { rx.await.unwrap_or_default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_words_failures_as_serf() {
        let mut t = KeyTally {
            num_nodes: 3,
            ..KeyTally::default()
        };
        let reply = |node: &str, ok: bool| KeyReply {
            id: 1,
            node: node.into(),
            ok,
            message: if ok {
                String::new()
            } else {
                "Removing the primary key is not allowed".into()
            },
            keys: vec!["k1".into(), "k2".into()],
            primary: Some("k1".into()),
        };
        record(&mut t, &reply("a", true));
        record(&mut t, &reply("b", true));
        assert_eq!(t.error().as_deref(), Some("2/3 nodes reported success"));
        record(&mut t, &reply("c", false));
        assert_eq!(t.error().as_deref(), Some("1/3 nodes reported failure"));
        assert_eq!(t.keys.get("k2"), Some(&3));
        assert_eq!(t.primary_keys.get("k1"), Some(&3));
        assert_eq!(
            t.messages.get("c").map(String::as_str),
            Some("Removing the primary key is not allowed")
        );
    }
}
