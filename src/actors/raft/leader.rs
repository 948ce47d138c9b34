//! Leader duties (Consul's `leader.go`): reconcile the catalog with the
//! LAN pool (every member a node with `serfHealth`, members that left
//! removed, reaped members deregistered), bootstrap with
//! `-bootstrap-expect`, and keep the Raft voters in step with the servers
//! of the pool.

use std::collections::BTreeMap;
use std::time::Instant;

use actix::prelude::*;
use openraft::BasicNode;

use super::{raft_id, AddVoter, GetRaftStatus, RaftActor, RaftWrite, RemoveVoter, SharedStore};
use crate::config::RuntimeConfig;
use crate::storage::{fsm::read, NodeId};
use crate::structs::catalog::{HealthCheck, HealthStatus, NodeService, RegisterRequest};
use crate::structs::Command;

#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct ReapNode(pub(super) String);

impl Handler<ReapNode> for RaftActor {
    type Result = ();
    fn handle(&mut self, msg: ReapNode, ctx: &mut Context<Self>) {
        let write = self.write(
            Command::Deregister(crate::state::structs::DeregisterRequest {
                node: msg.0,
                ..Default::default()
            }),
            ctx,
        );
        actix::spawn(async move {
            if let Err(e) = write.await {
                tracing::warn!(error = %e, "deregistering a reaped member failed");
            }
        });
    }
}

/// Run leader reconcile now.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Reconcile;

impl Handler<Reconcile> for RaftActor {
    type Result = ();
    fn handle(&mut self, _: Reconcile, ctx: &mut Context<Self>) {
        self.reconcile(ctx);
    }
}

impl RaftActor {
    /// Leader reconcile (Consul's `leader.go`): every LAN member is a node
    /// in the catalog with a `serfHealth` check, passing while alive and
    /// critical once failed; a member that left is removed. This server's
    /// own row also carries its node meta. Runs on leadership, on member
    /// events and on an interval, and writes only what differs.
    pub(super) fn reconcile(&mut self, ctx: &mut Context<Self>) {
        if !self.status().is_leader {
            return;
        }
        self.acl_duties(ctx);
        let (lan, store, me, config) = (
            self.lan.clone(),
            self.store.clone(),
            ctx.address(),
            self.config.clone(),
        );
        let fut = async move {
            let members = match &lan {
                Some(l) => l.send(crate::lan::Members).await.unwrap_or_default(),
                None => Vec::new(),
            };
            let mut writes = Vec::new();
            if let Some(w) = reconcile_self(&store, &config) {
                writes.push(w);
            }
            for m in members.iter().filter(|m| m.name != config.node_name) {
                if let Some(w) = reconcile_member(&store, m, &config.datacenter) {
                    writes.push(w);
                }
            }
            for w in writes {
                if let Ok(Err(e)) = me.send(RaftWrite(w)).await {
                    tracing::warn!(error = %e, "leader reconcile write failed");
                }
            }
            // Servers of this datacenter in the pool become voters; a
            // server that left gracefully stops being one.
            let status = me.send(GetRaftStatus).await.unwrap_or_default();
            for m in members
                .iter()
                .filter(|m| is_server_of(m, &config.datacenter))
            {
                let Some((id, addr)) = raft_peer(m) else {
                    continue;
                };
                let known = status.servers.iter().any(|s| s.id == id && s.voter);
                match m.status {
                    crate::lan::MemberStatus::Alive if !known => {
                        // A server back with an empty data directory has a
                        // new ID at its old address. Raft RPCs do not name
                        // the node they are for, so an entry left under the
                        // old ID is answered by the new process: one
                        // process would count as two voters (Consul's
                        // joinConsulServer removes it for the same reason).
                        for stale in status
                            .servers
                            .iter()
                            .filter(|s| s.addr == addr && s.id != id)
                        {
                            tracing::info!(
                                server = %m.name,
                                %addr,
                                stale_id = stale.id,
                                "removing the Raft entry another ID left at this server's address"
                            );
                            if let Ok(Err(e)) = me.send(RemoveVoter(stale.id)).await {
                                tracing::warn!(error = %e, "removing the stale Raft entry failed");
                            }
                        }
                        tracing::info!(server = %m.name, %addr, "adding server as a Raft voter");
                        if let Ok(Err(e)) = me.send(AddVoter { id, addr }).await {
                            tracing::warn!(error = %e, "adding voter failed");
                        }
                    }
                    crate::lan::MemberStatus::Left if known && status.servers.len() > 1 => {
                        tracing::info!(server = %m.name, "removing server that left from the Raft configuration");
                        let _ = me.send(RemoveVoter(id)).await;
                    }
                    _ => {}
                }
            }
        };
        ctx.spawn(fut.into_actor(self));
    }

    /// `-bootstrap-expect N`: once N servers of this datacenter (all
    /// expecting N) are alive in the pool, bootstrap with exactly those.
    /// Only the first of them by name initializes: openraft's `initialize`
    /// stands for election at once (hashicorp/raft waits a randomised
    /// timeout first), so three servers initializing together all voted
    /// for themselves in term 1 about one time in six, and the datacenter
    /// had no leader until a second election half a second later (CI's
    /// end-to-end run read `No cluster leader` in that gap). The others
    /// learn the configuration from its first append; if none comes within
    /// [`BOOTSTRAP_FALLBACK`], they initialize too, as every server did
    /// before. A server with Raft state never bootstraps again.
    pub(super) fn try_bootstrap(&mut self, ctx: &mut Context<Self>) {
        let expect = self.config.bootstrap_expect as usize;
        if self.bootstrapped || expect < 2 {
            return;
        }
        let Some(lan) = self.lan.clone() else { return };
        let (raft, dc) = (self.raft.clone(), self.config.datacenter.clone());
        let me = self.config.node_name.clone();
        let waited_since = self.bootstrap_waiting;
        let fut = async move {
            if raft.is_initialized().await.unwrap_or(true) {
                return Bootstrap::Done;
            }
            let members = lan.send(crate::lan::Members).await.unwrap_or_default();
            let mut servers: Vec<&crate::lan::Member> = members
                .iter()
                .filter(|m| m.status == crate::lan::MemberStatus::Alive && is_server_of(m, &dc))
                .filter(|m| {
                    m.tags.get("expect").and_then(|e| e.parse::<usize>().ok()) == Some(expect)
                })
                .collect();
            if servers.len() < expect {
                return Bootstrap::NotYet;
            }
            servers.sort_by(|a, b| a.name.cmp(&b.name));
            servers.truncate(expect);
            let first = servers[0].name.clone();
            let in_set = servers.iter().any(|m| m.name == me);
            if first != me && in_set {
                let since = waited_since.unwrap_or_else(Instant::now);
                if since.elapsed() < BOOTSTRAP_FALLBACK {
                    return Bootstrap::Waiting(since);
                }
                tracing::warn!(%first, waited = ?since.elapsed(), "no configuration from the first server: bootstrapping here");
            }
            let voters: BTreeMap<NodeId, BasicNode> = servers
                .iter()
                .filter_map(|m| raft_peer(m))
                .map(|(id, addr)| (id, BasicNode { addr }))
                .collect();
            tracing::info!(servers = ?voters.values().map(|n| n.addr.clone()).collect::<Vec<_>>(), "found {expect} servers: bootstrapping");
            if let Err(e) = raft.initialize(voters).await {
                tracing::info!(error = %e, "bootstrap skipped: the cluster is already formed");
            }
            Bootstrap::Done
        };
        ctx.spawn(fut.into_actor(self).map(|step, act, _| match step {
            Bootstrap::Done => act.bootstrapped = true,
            Bootstrap::Waiting(since) => act.bootstrap_waiting = Some(since),
            Bootstrap::NotYet => act.bootstrap_waiting = None,
        }));
    }
}

/// How long the servers of a `-bootstrap-expect` set wait for the first
/// one's configuration before initializing themselves: well past a
/// heartbeat and an election, short against a datacenter's first start.
const BOOTSTRAP_FALLBACK: std::time::Duration = std::time::Duration::from_secs(5);

/// One look at the pool by [`RaftActor::try_bootstrap`].
enum Bootstrap {
    /// Initialized, here or by the first server's append.
    Done,
    /// Fewer than N servers alive.
    NotYet,
    /// The set is complete; the first server initializes it (waiting
    /// since then).
    Waiting(Instant),
}

fn is_server_of(m: &crate::lan::Member, dc: &str) -> bool {
    m.tags.get("role").map(String::as_str) == Some("consul")
        && m.tags.get("dc").map(String::as_str) == Some(dc)
}

/// A server member's Raft id and RPC address, from its gossip tags.
fn raft_peer(m: &crate::lan::Member) -> Option<(NodeId, String)> {
    let id = m.tags.get("id")?;
    let port: u16 = m.tags.get("port")?.parse().ok()?;
    Some((raft_id(id), format!("{}:{port}", m.addr.ip())))
}

fn serf_health(status: HealthStatus) -> HealthCheck {
    let output = if status == HealthStatus::Passing {
        "Agent alive and reachable"
    } else {
        "Agent not live or unreachable"
    };
    HealthCheck {
        check_id: "serfHealth".into(),
        name: "Serf Health Status".into(),
        status,
        output: output.into(),
        definition: serde_json::json!({}),
        ..Default::default()
    }
}

/// This server's own row: address, ID, meta, `consul` service, serfHealth.
fn reconcile_self(store: &SharedStore, config: &RuntimeConfig) -> Option<Command> {
    let desired = self_registration(config);
    let s = read(store);
    let node = s.catalog_node(&config.node_name, None).1;
    let checks = s.health_node(&config.node_name, None).1;
    let in_sync = node.is_some_and(|ns| {
        ns.node.address == desired.address
            && ns.node.id == desired.id
            && ns.node.meta == desired.node_meta
            && desired.service.as_ref().is_none_or(|d| {
                ns.services
                    .get(&d.id)
                    .is_some_and(|s| s.port == d.port && s.service == d.service)
            })
    }) && checks
        .iter()
        .any(|c| c.check_id == "serfHealth" && c.status == HealthStatus::Passing);
    (!in_sync).then_some(Command::Register(desired))
}

/// Another member's row. The member's own agent writes its meta and
/// services (anti-entropy); the leader only makes sure the node exists at
/// its gossip address and that serfHealth says what gossip says.
fn reconcile_member(store: &SharedStore, m: &crate::lan::Member, dc: &str) -> Option<Command> {
    use crate::lan::MemberStatus;
    let s = read(store);
    let node = s.catalog_node(&m.name, None).1;
    let serf = s
        .health_node(&m.name, None)
        .1
        .into_iter()
        .find(|c| c.check_id == "serfHealth")
        .map(|c| c.status);
    drop(s);
    match m.status {
        MemberStatus::Left => node.map(|_| {
            Command::Deregister(crate::state::structs::DeregisterRequest {
                node: m.name.clone(),
                ..Default::default()
            })
        }),
        MemberStatus::Leaving => None,
        status => {
            let health = if status == MemberStatus::Alive {
                HealthStatus::Passing
            } else {
                HealthStatus::Critical
            };
            let address = m.addr.ip().to_string();
            let server_port = (m.tags.get("role").map(String::as_str) == Some("consul"))
                .then(|| m.tags.get("port").and_then(|p| p.parse().ok()))
                .flatten();
            let node_ok = node.as_ref().is_some_and(|ns| ns.node.address == address);
            let service_ok = server_port.is_none_or(|p: u16| {
                node.as_ref()
                    .is_some_and(|ns| ns.services.get("consul").is_some_and(|s| s.port == p))
            });
            if node_ok && service_ok && serf == Some(health) {
                return None;
            }
            // A failed member that was never registered stays out.
            if health == HealthStatus::Critical && node.is_none() {
                return None;
            }
            Some(Command::Register(RegisterRequest {
                id: m.tags.get("id").cloned().unwrap_or_default(),
                node: m.name.clone(),
                address,
                datacenter: dc.to_string(),
                skip_node_update: node_ok,
                service: server_port.map(|port| NodeService {
                    id: "consul".into(),
                    service: "consul".into(),
                    port,
                    ..Default::default()
                }),
                check: Some(serf_health(health)),
                ..Default::default()
            }))
        }
    }
}

pub fn server_addr(config: &RuntimeConfig) -> String {
    format!(
        "{}:{}",
        config.advertise(),
        config.ports.server.unwrap_or(8300)
    )
}

/// What the leader writes for a live server: the node, its `serfHealth`
/// check and the `consul` service.
pub fn self_registration(config: &RuntimeConfig) -> RegisterRequest {
    let mut meta = config.node_meta.clone();
    meta.insert("consul-network-segment".into(), String::new());
    meta.insert("consul-version".into(), env!("CARGO_PKG_VERSION").into());
    RegisterRequest {
        id: config.node_id.clone(),
        node: config.node_name.clone(),
        address: config.advertise().to_string(),
        datacenter: config.datacenter.clone(),
        tagged_addresses: BTreeMap::from([
            ("lan".into(), config.advertise().to_string()),
            ("wan".into(), config.advertise_wan().to_string()),
        ]),
        node_meta: meta,
        service: config.server.then(|| NodeService {
            id: "consul".into(),
            service: "consul".into(),
            port: config.ports.server.unwrap_or(8300),
            ..Default::default()
        }),
        check: Some(serf_health(HealthStatus::Passing)),
        checks: Vec::new(),
        skip_node_update: false,
    }
}
