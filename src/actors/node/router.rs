//! The one request path (Consul's `rpc.go` `forwardRPC`). Every read,
//! write, status query, user event, gossip key operation and Raft peer
//! removal, whether it came in by HTTP, DNS or server RPC, takes the same
//! steps here:
//!
//! 1. **the token**: a request that carries none takes the agent's
//!    configured one (`acl.tokens.default`; `dns` for DNS, `agent` for the
//!    agent's own writes and reads);
//! 2. **another datacenter?** ([`Router::target`], the only place that
//!    compares datacenter names): sent over the WAN to that datacenter's
//!    servers, nearest first, the next one on failure (a server that
//!    failed is set aside for a while, as Consul's `NotifyFailedServer`);
//!    a client agent sends it to a server of its own datacenter, which
//!    routes it on;
//! 3. **served here?** a read this server may answer (stale, or while it
//!    leads within its lease) is answered on the caller's own thread from
//!    the shared store; a write is batched here only while this server
//!    leads;
//! 4. **the leader**: anything else goes to the leader once
//!    ([`Hop::Leader`]: the leader serves it or refuses, never forwards
//!    again); with no known leader, `No cluster leader` at once.
//!
//! With ACLs on, the server that serves (step 3, or the leader of step 4)
//! resolves the token and checks the request right before serving it
//! (`authz.rs`); list answers are filtered. Servers that only forward do
//! not decide: the token travels with the request. The agent's own
//! endpoints and user events get their authorizer from
//! [`Router::access`] (`router/access.rs`), on servers and clients alike.
//!
//! A client agent has no local server: steps 3 and 4 are its servers'.
//!
//! ACL writes of objects the primary datacenter owns go there (`acl.rs`).

mod acl;
pub mod breaker;
pub mod coordinate;
mod keyring;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix::prelude::*;
use futures::future::BoxFuture;
use tokio::time::Instant;

mod access;

use super::authz::{self, Authz};
use crate::acl::{Access, Resource};
use crate::actors::raft::{raft_id, LocalServer};
use crate::config::RuntimeConfig;
use crate::rpc::{Pool, RpcError};
use crate::structs::prepared_query::{failover_order, ExecuteOptions};
use crate::structs::query::{Query, QueryResult};
use crate::structs::rpc::{
    self, FireEventArgs, Hop, Method, PeerRef, RemovePeerArgs, Routed, StatusArgs,
};
use crate::structs::{
    Command, Consistency, QueryOptions, RaftStatus, ReadRequest, ReadResponse, RequestError,
    UserEvent, WriteRequest, WriteResponse,
};

/// How long a server that failed a call goes to the back of the list.
const SET_ASIDE: Duration = Duration::from_secs(30);

/// Time for a call forwarded to the leader, beyond a blocking wait.
const LEADER_HOLD: Duration = Duration::from_secs(10);

/// Time for a write sent to another server (its commit included).
const WRITE_HOLD: Duration = Duration::from_secs(15);

/// A user event for this agent's own datacenter: fired into its LAN pool.
#[derive(Message)]
#[rtype(result = "Result<UserEvent, RequestError>")]
pub struct FireLocalEvent(pub UserEvent);

/// Where a request is for.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Here,
    /// Another datacenter, its name lowercased.
    Dc(String),
}

/// Reads through the request path: what the DNS handler is given (tests
/// give it a fake).
pub trait ReadPath: Send + Sync + 'static {
    fn read(&self, req: ReadRequest) -> BoxFuture<'static, Result<ReadResponse, RequestError>>;

    /// Every known datacenter, nearest first (what `NAME.service.any`
    /// tries in order); none known by default.
    fn datacenters(&self) -> BoxFuture<'static, Result<Vec<String>, RequestError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

#[derive(Clone)]
pub struct Router(Arc<Inner>);

struct Inner {
    dc: String,
    /// This agent's node name (its WAN member is `NODE.DC`).
    node: String,
    /// `primary_datacenter`: where ACL policies, roles and global tokens
    /// are written.
    primary: String,
    /// This server's Raft side; `None` on a client agent.
    local: Option<LocalServer>,
    /// This datacenter's servers from the LAN pool (name → RPC address).
    servers: RwLock<BTreeMap<String, String>>,
    /// Servers only: the WAN pool, for other datacenters.
    wan: Option<Addr<crate::wan::WanGossip>>,
    /// The agent's LAN pool, for this datacenter's gossip key operations.
    lan: Option<Addr<crate::lan::LanGossip>>,
    /// The agent's own LAN pool, for this datacenter's user events.
    events: Recipient<FireLocalEvent>,
    pool: Pool,
    /// Servers whose last call failed, and until when they go last.
    failed: Mutex<HashMap<String, Instant>>,
    /// Consul's `rpc_hold_timeout`: each remote call's time beyond a
    /// blocking wait.
    hold: Duration,
    /// ACL enforcement: the agent's tokens and compiled authorizers.
    authz: Authz,
    /// A client agent's tokens resolved by its servers.
    tokens: access::TokenCache,
    /// The leader's coordinate updates waiting for the next batch.
    coordinates: coordinate::Pending,
    /// Servers only: which other datacenters answer (`breaker.rs`).
    breakers: breaker::Breakers,
    /// `replication`: KV prefixes copied from another datacenter, which
    /// refuse writes here.
    replication: Option<crate::config::KvReplication>,
}

impl Router {
    pub fn new(
        config: &RuntimeConfig,
        local: Option<LocalServer>,
        wan: Option<Addr<crate::wan::WanGossip>>,
        lan: Option<Addr<crate::lan::LanGossip>>,
        events: Recipient<FireLocalEvent>,
        pool: Pool,
    ) -> Router {
        Router(Arc::new(Inner {
            dc: config.datacenter.clone(),
            node: config.node_name.clone(),
            primary: config.primary_datacenter.clone(),
            local,
            servers: RwLock::default(),
            wan,
            lan,
            events,
            pool,
            failed: Mutex::default(),
            hold: config.rpc_hold_timeout,
            authz: Authz::new(config),
            tokens: access::TokenCache::new(config),
            coordinates: coordinate::Pending::default(),
            breakers: breaker::Breakers::default(),
            replication: config.replication.clone(),
        }))
    }

    /// This datacenter's server `name` serves RPC at `addr` (`None`: it
    /// left or failed).
    pub fn set_server(&self, name: &str, addr: Option<String>) {
        let mut s = self.0.servers.write().unwrap_or_else(|e| e.into_inner());
        match addr {
            Some(a) => s.insert(name.to_string(), a),
            None => s.remove(name),
        };
    }

    /// This server's own Raft view; `None` on a client agent.
    pub fn local_status(&self) -> Option<RaftStatus> {
        self.0.local.as_ref().map(LocalServer::status)
    }

    /// This server's KV replication (`None` on a client agent, or without
    /// a `replication` block).
    pub fn kv_replication(&self) -> Option<crate::actors::raft::KvReplicationStatus> {
        self.0.replication.as_ref()?;
        self.0.local.as_ref().map(LocalServer::kv_replication)
    }

    /// This server's state-store gauges; `None` on a client agent.
    pub fn local_store_stats(&self) -> Option<crate::structs::StoreStats> {
        self.0.local.as_ref().map(LocalServer::store_stats)
    }

    /// `token`, or `acl.tokens.default` when the request carried none
    /// (HTTP handlers that build their own request arguments).
    pub fn token_or_default(&self, token: Option<String>) -> Option<String> {
        self.0.authz.or_default(token)
    }

    /// The agent's own token (`acl.tokens.agent`, else the default) for
    /// its internal reads; `None` with ACLs off.
    pub fn agent_token(&self) -> Option<String> {
        self.0.authz.agent_token()
    }

    /// The token anti-entropy syncs a local service or check with: its
    /// own, else (from a config file) `config_file_service_registration`,
    /// else the agent's; `None` with ACLs off.
    pub fn registration_token(&self, own: Option<&str>, from_file: bool) -> Option<String> {
        self.0.authz.registration_token(own, from_file)
    }

    /// The one comparison of datacenter names: empty or this agent's own
    /// (in any case) is here.
    fn target(&self, dc: Option<&str>) -> Target {
        match dc {
            Some(d) if !d.is_empty() && !d.eq_ignore_ascii_case(&self.0.dc) => {
                Target::Dc(d.to_ascii_lowercase())
            }
            _ => Target::Here,
        }
    }

    /// The servers a request for `target` goes to from this agent, in
    /// the order to try them, and the error when none answers: another
    /// datacenter's (from a server, nearest first), or this datacenter's
    /// (from a client, in random order; they route it on).
    async fn servers(&self, target: &Target) -> Result<(Vec<String>, RequestError), RequestError> {
        let list = match (target, &self.0.local) {
            (Target::Dc(dc), Some(_)) => {
                if self.0.wan.is_none() {
                    return Err(RequestError::NoPathToDatacenter);
                }
                let (members, coords) = self.wan_view().await?;
                let mut servers = crate::wan::servers_of(&members, &coords, dc);
                if servers.is_empty() {
                    // Back before gossip has taken them back in.
                    servers = self.0.breakers.answered(dc);
                }
                if servers.is_empty() {
                    return Err(RequestError::NoPathToDatacenter);
                }
                (servers, RequestError::NoPathToDatacenter)
            }
            (_, _) => {
                let mut servers: Vec<String> = self
                    .0
                    .servers
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned()
                    .collect();
                if servers.is_empty() {
                    return Err(RequestError::NoServers);
                }
                rand::seq::SliceRandom::shuffle(servers.as_mut_slice(), &mut rand::thread_rng());
                (servers, RequestError::NoServers)
            }
        };
        Ok(self.set_aside(list))
    }

    /// Servers that failed lately move to the back, keeping their order.
    fn set_aside(&self, (list, none): (Vec<String>, RequestError)) -> (Vec<String>, RequestError) {
        let now = Instant::now();
        let mut failed = self.0.failed.lock().unwrap_or_else(|e| e.into_inner());
        failed.retain(|_, until| *until > now);
        let (mut ok, bad): (Vec<String>, Vec<String>) =
            list.into_iter().partition(|s| !failed.contains_key(s));
        ok.extend(bad);
        (ok, none)
    }

    fn notify_failed(&self, server: &str) {
        self.0
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(server.to_string(), Instant::now() + SET_ASIDE);
    }

    /// Another agent's server for `target`: the first that answers wins.
    /// On a server, a datacenter whose breaker is open (or opens while
    /// the request waits) is `No path to datacenter` at once.
    async fn remote<M: Method>(
        &self,
        target: &Target,
        args: M::Args,
        timeout: Duration,
    ) -> Result<M::Reply, RequestError> {
        let mut open = match target {
            Target::Dc(dc) => self.0.breakers.watch(dc),
            Target::Here => None,
        };
        if open.as_ref().is_some_and(|rx| *rx.borrow()) {
            return Err(RequestError::NoPathToDatacenter);
        }
        let call = self.remote_call::<M>(target, args, timeout);
        let Some(open) = open.as_mut() else {
            return call.await;
        };
        tokio::select! {
            r = call => r,
            // A breaker forgotten meanwhile (its sender dropped) leaves
            // the call to finish on its own.
            Ok(_) = open.wait_for(|open| *open) => Err(RequestError::NoPathToDatacenter),
        }
    }

    async fn remote_call<M: Method>(
        &self,
        target: &Target,
        args: M::Args,
        timeout: Duration,
    ) -> Result<M::Reply, RequestError> {
        let (servers, unreachable) = self.servers(target).await?;
        let dc = match target {
            Target::Dc(dc) => dc.as_str(),
            Target::Here => self.0.dc.as_str(),
        };
        for addr in servers {
            match self.0.pool.call_in::<M>(dc, &addr, &args, timeout).await {
                Ok(reply) => return Ok(reply),
                Err(e) => {
                    tracing::debug!(server = %addr, error = %e, "server did not answer; trying another");
                    self.notify_failed(&addr);
                }
            }
        }
        Err(unreachable)
    }

    /// This server's Raft side when the request is for this datacenter
    /// and this agent is a server; `None` when it goes to other servers.
    fn here(&self, target: &Target) -> Option<&LocalServer> {
        match target {
            Target::Here => self.0.local.as_ref(),
            Target::Dc(_) => None,
        }
    }

    /// One call to this datacenter's leader.
    async fn leader<M: Method>(
        &self,
        addr: &str,
        args: M::Args,
        timeout: Duration,
    ) -> Result<M::Reply, RequestError> {
        self.0
            .pool
            .call::<M>(addr, &args, timeout)
            .await
            .map_err(|e: RpcError| RequestError::Internal(e.to_string()))
    }

    /// Where a request that needs the leader goes from this server: `None`
    /// when this server leads, the leader's address when the request may
    /// still travel, `No cluster leader` otherwise.
    fn leader_addr(local: &LocalServer, hop: Hop) -> Result<Option<String>, RequestError> {
        let l = local.leadership();
        if l.leads {
            return Ok(None);
        }
        match (l.leader_addr, hop) {
            (Some(addr), Hop::Route) => Ok(Some(addr)),
            _ => Err(RequestError::NoLeader),
        }
    }

    pub async fn read(&self, mut req: ReadRequest) -> Result<ReadResponse, RequestError> {
        req.opts.token = self.0.authz.or_default(req.opts.token.take());
        self.read_hop(req, Hop::Route).await
    }

    pub async fn read_hop(&self, req: ReadRequest, hop: Hop) -> Result<ReadResponse, RequestError> {
        let target = self.target(req.opts.dc.as_deref());
        let Some(local) = self.here(&target) else {
            // A client leaves room for its server's own hop to another
            // datacenter.
            let extra = if self.0.local.is_none() {
                Duration::from_secs(3)
            } else {
                Duration::ZERO
            };
            let timeout = call_timeout(&req.opts, self.0.hold) + extra;
            // Boxed, as every branch but the local one below: a future is
            // as large as its largest branch, and a blocking query keeps
            // its whole future for as long as it waits (the RPC and Raft
            // futures inline made each waiting query several KiB larger).
            return Box::pin(self.remote::<rpc::Read>(&target, routed(req), timeout)).await?;
        };
        Box::pin(self.learn_foreign(local, req.opts.token.as_deref())).await?;
        let authz = &self.0.authz;
        let prepared = PreparedExec::of(&req);
        if local.serves_now(req.opts.consistency) {
            let access = authz.read(local.store(), &req)?;
            if let Some(r) = local.try_read(&req).await {
                return self.served(local, prepared, access, r).await;
            }
        }
        if req.opts.consistency == Consistency::Stale {
            let access = authz.read(local.store(), &req)?;
            let r = Box::pin(local.read(req)).await?;
            return self.served(local, prepared, access, r).await;
        }
        match Self::leader_addr(local, hop)? {
            None => {
                let access = authz.read(local.store(), &req)?;
                let r = Box::pin(local.read(req)).await?;
                self.served(local, prepared, access, r).await
            }
            Some(addr) => {
                let timeout = call_timeout(&req.opts, LEADER_HOLD);
                let args = Routed {
                    hop: Hop::Leader,
                    req,
                };
                Box::pin(self.leader::<rpc::Read>(&addr, args, timeout)).await?
            }
        }
    }

    /// A read this server served, filtered for the token. A prepared
    /// query's execution is filtered with the query's own token when it
    /// has one (Consul's `Token` field), and fails over to other
    /// datacenters when nothing here is healthy.
    async fn served(
        &self,
        local: &LocalServer,
        prepared: Option<PreparedExec>,
        access: Option<authz::Access>,
        r: ReadResponse,
    ) -> Result<ReadResponse, RequestError> {
        let Some(prepared) = prepared else {
            return Ok(authz::filter(access.as_ref(), r));
        };
        Box::pin(self.prepared_served(local, prepared, access, r)).await
    }

    async fn prepared_served(
        &self,
        local: &LocalServer,
        prepared: PreparedExec,
        access: Option<authz::Access>,
        r: ReadResponse,
    ) -> Result<ReadResponse, RequestError> {
        let token = match &r.result {
            QueryResult::PreparedQueryExecuted(Some(e)) => e.query.token.clone(),
            _ => return Ok(authz::filter(access.as_ref(), r)),
        };
        let access = match access {
            Some(_) if !token.is_empty() => {
                Some(self.0.authz.resolve_here(local.store(), Some(&token))?)
            }
            a => a,
        };
        let mut r = authz::filter(access.as_ref(), r);
        let QueryResult::PreparedQueryExecuted(Some(exec)) = &mut r.result else {
            return Ok(r);
        };
        if exec.datacenter.is_empty() {
            exec.datacenter = self.0.dc.clone();
        }
        if !exec.nodes.is_empty() || !prepared.may_fail_over {
            return Ok(r);
        }
        let by_distance = self.datacenters_by_distance().await;
        let order = failover_order(&exec.query.service.failover, &by_distance, &self.0.dc);
        for dc in order {
            exec.failovers += 1;
            let req = ReadRequest {
                opts: QueryOptions {
                    dc: Some(dc.clone()),
                    consistency: prepared.opts.consistency,
                    token: prepared.opts.token.clone(),
                    ..Default::default()
                },
                query: Query::PreparedQueryExecuteRemote {
                    query: Box::new(exec.query.clone()),
                    opts: prepared.exec.clone(),
                },
            };
            let target = Target::Dc(dc.to_ascii_lowercase());
            let answer = self
                .remote::<rpc::Read>(&target, routed(req), self.0.hold)
                .await
                .and_then(|a| a);
            match answer {
                Ok(ReadResponse {
                    result: QueryResult::PreparedQueryExecuted(Some(remote)),
                    ..
                }) if !remote.nodes.is_empty() => {
                    exec.nodes = remote.nodes;
                    exec.datacenter = remote.datacenter;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(datacenter = %dc, error = %e, "prepared query failover failed; trying the next");
                }
            }
        }
        Ok(r)
    }

    pub async fn write(&self, mut req: WriteRequest) -> Result<WriteResponse, RequestError> {
        req.token = self.0.authz.or_default(req.token.take());
        self.write_hop(req, Hop::Route).await
    }

    pub async fn write_hop(
        &self,
        mut req: WriteRequest,
        hop: Hop,
    ) -> Result<WriteResponse, RequestError> {
        let target = self.write_target(&mut req);
        let Some(local) = self.here(&target) else {
            return self
                .remote::<rpc::Write>(&target, routed(req), WRITE_HOLD)
                .await?;
        };
        // The token travels with the write: the leader decides.
        let token = req.token.clone();
        let to_leader = |addr: String, command: Command| {
            let args = Routed {
                hop: Hop::Leader,
                req: WriteRequest {
                    dc: None,
                    command,
                    token: token.clone(),
                },
            };
            async move { self.leader::<rpc::Write>(&addr, args, LEADER_HOLD).await? }
        };
        match Self::leader_addr(local, hop)? {
            Some(addr) => to_leader(addr, req.command).await,
            None => match async {
                // The leader decides, right before the write is batched.
                self.learn_foreign(local, req.token.as_deref()).await?;
                self.0.authz.write(local.store(), &req)?;
                if let Some(refused) = crate::actors::raft::replication_refusal(
                    self.0.replication.as_ref(),
                    &req.command,
                ) {
                    return Err(refused);
                }
                // The lock-delay runs on this leader's clock, before Raft:
                // checked while applying, servers would decide the same
                // acquire differently (state/session.rs).
                let refused = {
                    let store = crate::storage::fsm::read(local.store());
                    store
                        .lock_delay_refusal(&req.command)
                        .map(|result| (store.last_index(), result))
                };
                if let Some((index, result)) = refused {
                    return Ok(WriteResponse { index, result });
                }
                local.write(req.command.clone()).await
            }
            .await
            {
                // Leadership moved between the look and the batch: the
                // write goes to the new leader once.
                Err(RequestError::NoLeader) if hop == Hop::Route => {
                    match Self::leader_addr(local, hop) {
                        Ok(Some(addr)) => to_leader(addr, req.command).await,
                        _ => Err(RequestError::NoLeader),
                    }
                }
                other => other,
            },
        }
    }

    /// Raft's view of `dc`: a server's own, or with `leader` the leader's
    /// (every server's progress), falling back to the server's own.
    pub async fn status(&self, args: StatusArgs, hop: Hop) -> Result<RaftStatus, RequestError> {
        let target = self.target(args.dc.as_deref());
        let Some(local) = self.here(&target) else {
            return self
                .remote::<rpc::Status>(&target, routed(args), LEADER_HOLD)
                .await?;
        };
        let own = local.status();
        if !args.leader || hop == Hop::Leader {
            return Ok(own);
        }
        let Ok(Some(addr)) = Self::leader_addr(local, hop) else {
            return Ok(own);
        };
        let args = Routed {
            hop: Hop::Leader,
            req: StatusArgs {
                dc: None,
                leader: false,
            },
        };
        Ok(self
            .leader::<rpc::Status>(&addr, args, Duration::from_secs(5))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(own))
    }

    /// Every known datacenter, nearest first: from the WAN pool on a
    /// server, from a server on a client.
    pub async fn datacenters(&self) -> Result<Vec<String>, RequestError> {
        if self.0.local.is_none() {
            return self
                .remote::<rpc::Datacenters>(&Target::Here, (), LEADER_HOLD)
                .await?;
        }
        Ok(self.datacenters_by_distance().await)
    }

    /// This server's datacenters, nearest first by network coordinates
    /// (see `crate::wan::datacenters_by_distance`): the order failover to
    /// other datacenters tries them in. Only this datacenter when the WAN
    /// pool cannot say.
    pub async fn datacenters_by_distance(&self) -> Vec<String> {
        let (members, coords) = self.wan_view().await.unwrap_or_default();
        crate::wan::datacenters_by_distance(&members, &coords, &self.0.dc)
    }

    /// Fires a user event in `dc`: into this agent's LAN pool, or through
    /// the servers into another datacenter's.
    pub async fn fire_event(&self, args: FireEventArgs) -> Result<UserEvent, RequestError> {
        match self.target(args.dc.as_deref()) {
            Target::Here => {
                // Decided where it is fired, on a server or a client
                // agent alike (a client asks its servers for the token).
                self.access(args.token.clone()).await?.require(
                    Resource::Event,
                    Access::Write,
                    &args.event.name,
                )?;
                self.0
                    .events
                    .send(FireLocalEvent(args.event))
                    .await
                    .map_err(|_| RequestError::ShuttingDown)?
            }
            target => {
                self.remote::<rpc::FireEvent>(&target, routed(args), WRITE_HOLD)
                    .await?
            }
        }
    }

    /// `operator raft remove-peer`: the server leaves `dc`'s Raft
    /// configuration, changed by its leader.
    pub async fn remove_peer(&self, args: RemovePeerArgs, hop: Hop) -> Result<(), RequestError> {
        let target = self.target(args.dc.as_deref());
        let Some(local) = self.here(&target) else {
            return self
                .remote::<rpc::RemovePeer>(&target, routed(args), WRITE_HOLD)
                .await?;
        };
        // Refused before the peer is looked up, so a caller without
        // `operator:write` learns nothing of the configuration; the
        // leader decides again.
        let token = args.token.as_deref();
        self.learn_foreign(local, token).await?;
        self.0
            .authz
            .check(local.store(), token, Resource::Operator, Access::Write, "")?;
        let status = local.status();
        let found = status.servers.iter().find(|s| match &args.peer {
            PeerRef::Address(a) => s.addr == *a,
            PeerRef::Id(id) => {
                s.id.to_string() == *id
                    || uuid::Uuid::parse_str(id).is_ok_and(|_| s.id == raft_id(id))
            }
        });
        let Some(id) = found.map(|s| s.id) else {
            let (what, v) = match &args.peer {
                PeerRef::Id(v) => ("id", v),
                PeerRef::Address(v) => ("address", v),
            };
            return Err(RequestError::Rejected(format!(
                "{what} \"{v}\" was not found in the Raft configuration"
            )));
        };
        match Self::leader_addr(local, hop)? {
            None => {
                let token = args.token.as_deref();
                self.0
                    .authz
                    .check(local.store(), token, Resource::Operator, Access::Write, "")?;
                local.remove_voter(id).await
            }
            Some(addr) => {
                let args = Routed {
                    hop: Hop::Leader,
                    req: args,
                };
                self.leader::<rpc::RemovePeer>(&addr, args, LEADER_HOLD)
                    .await?
            }
        }
    }
}

impl ReadPath for Router {
    fn read(&self, mut req: ReadRequest) -> BoxFuture<'static, Result<ReadResponse, RequestError>> {
        // DNS is this path's caller: its token is `acl.tokens.dns`.
        if req.opts.token.is_none() {
            req.opts.token = self.0.authz.dns_token();
        }
        let me = self.clone();
        Box::pin(async move { me.read(req).await })
    }

    fn datacenters(&self) -> BoxFuture<'static, Result<Vec<String>, RequestError>> {
        let me = self.clone();
        Box::pin(async move { me.datacenters().await })
    }
}

/// What a prepared query's execution needs after the local read: its
/// options again (for the datacenters it fails over to), and whether it
/// may fail over (an execution for another datacenter's failover may
/// not, as in Consul).
struct PreparedExec {
    opts: QueryOptions,
    exec: ExecuteOptions,
    may_fail_over: bool,
}

impl PreparedExec {
    fn of(req: &ReadRequest) -> Option<PreparedExec> {
        let (exec, may_fail_over) = match &req.query {
            Query::PreparedQueryExecute { opts, .. } => (opts, true),
            Query::PreparedQueryExecuteRemote { opts, .. } => (opts, false),
            _ => return None,
        };
        Some(PreparedExec {
            opts: req.opts.clone(),
            exec: exec.clone(),
            may_fail_over,
        })
    }
}

/// A request for other servers to route (to their leader, or on over the
/// WAN).
fn routed<T>(req: T) -> Routed<T> {
    Routed {
        hop: Hop::Route,
        req,
    }
}

/// A call's whole time: the blocking wait when it is a blocking query.
fn call_timeout(opts: &QueryOptions, hold: Duration) -> Duration {
    if opts.min_index > 0 {
        opts.max_wait + hold
    } else {
        hold
    }
}

#[cfg(test)]
mod tests;
