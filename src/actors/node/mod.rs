//! The `Node` actor: the agent's identity, its config, its local services
//! and checks. Its files, one concern each:
//!
//! - this file: the actor and the messages for local services, checks,
//!   TTL updates, maintenance, agent info and reload;
//! - `router.rs`: the one request path every read and write takes, from
//!   HTTP, DNS and RPC alike (other datacenter, served here, the leader);
//! - `endpoint.rs`: what a server answers on its RPC port;
//! - `anti_entropy.rs`: syncing local services and checks to the catalog;
//! - `coordinate_sync.rs`: the agent's network coordinate to its servers,
//!   and the leader's batches of them into Raft;
//! - `alias.rs`: alias checks and critical-service reaping;
//! - `pools.rs`: the LAN and WAN gossip pools (join, leave, members);
//! - `keyring.rs`: gossip key operations on both pools;
//! - `events.rs`: user events this agent keeps;
//! - `local.rs`: the local state itself, as pure data;
//! - `persist.rs`: API-registered services and checks kept on disk;
//! - `authz.rs`: ACL decisions on the request path; `tokens.rs`: the
//!   agent's own tokens, settable at run time and persisted.

mod alias;
mod anti_entropy;
mod authz;
pub mod coordinate_sync;
pub mod endpoint;
pub mod events;
pub mod keyring;
pub mod local;
pub mod persist;
mod pools;
pub mod router;
pub mod tokens;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::time::Instant;

pub use authz::Access;
pub use local::LocalError;
pub use pools::{ForceLeaveLan, GetMembers, GetWanMembers, JoinLan, JoinWan, LeaveLan};
pub use router::Router;

use crate::actors::health::{CheckResult, HealthActor, SetChecks, TtlTouched};
use crate::config::{CheckDefinition, RuntimeConfig, ServiceDefinition};
use crate::lan::LanGossip;
use crate::structs::catalog::{HealthCheck, HealthStatus, NodeService, RegisterRequest};
use crate::structs::{RaftStatus, RequestError};
use local::Local;

/// Register (or replace) a local service and its checks.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), LocalError>")]
pub struct RegisterService {
    pub def: ServiceDefinition,
    /// The caller may register script checks (see `script_checks_allowed`).
    pub scripts_allowed: bool,
    /// `?replace-existing-checks`: checks of the service the definition
    /// no longer names go (else they stay, as in Consul).
    pub replace_checks: bool,
}

/// A receiver that changes whenever a local service is added, changed or
/// removed: what `/v1/agent/service/<id>?hash=` blocks on.
#[derive(Message, Debug, Clone)]
#[rtype(result = "tokio::sync::watch::Receiver<u64>")]
pub struct WatchLocalServices;

/// Register (or replace) a check (`/v1/agent/check/register`).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), LocalError>")]
pub struct RegisterCheck {
    pub def: CheckDefinition,
    pub scripts_allowed: bool,
}

/// Remove a check; NotFound when unknown.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), LocalError>")]
pub struct DeregisterCheck(pub String);

/// `/v1/agent/check/pass|warn|fail|update/<id>`: a TTL check's new state.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), LocalError>")]
pub struct UpdateTtl {
    pub id: String,
    pub status: HealthStatus,
    pub output: String,
}

/// Maintenance mode for the node (`service: None`) or a service.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), LocalError>")]
pub struct Maintenance {
    pub service: Option<String>,
    pub enable: bool,
    pub reason: String,
}

/// `/v1/agent/health/service/...`: local services with their checks and
/// aggregated status.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Vec<ServiceHealth>")]
pub struct LocalServiceHealth;

#[derive(Debug, Clone)]
pub struct ServiceHealth {
    pub service: NodeService,
    pub checks: Vec<HealthCheck>,
    pub aggregated: HealthStatus,
}

/// Remove a local service; `Ok(false)` when the ID is unknown.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<bool, RequestError>")]
pub struct DeregisterService(pub String);

/// The local services and checks, as `/v1/agent/services` and
/// `/v1/agent/checks` show them.
#[derive(Message, Debug, Clone)]
#[rtype(result = "LocalState")]
pub struct GetLocalState;

#[derive(Debug, Clone, Default)]
pub struct LocalState {
    pub services: BTreeMap<String, NodeService>,
    pub checks: BTreeMap<String, HealthCheck>,
}

/// Identity and Raft status, for `/v1/agent/self`, `members`, `status`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "AgentInfo")]
pub struct GetAgentInfo;

#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub config: Arc<RuntimeConfig>,
    pub raft: Option<RaftStatus>,
    /// A server's state-store gauges.
    pub store: Option<crate::structs::StoreStats>,
    pub local_services: usize,
    pub local_checks: usize,
    /// Script checks (Consul's `check_monitors`) and TTL checks.
    pub check_monitors: usize,
    pub check_ttls: usize,
}

/// Re-read the config files and apply what can change at run time.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), String>")]
pub struct Reload;

/// How the agent rebuilds its config on reload: the same flags, re-read files.
pub type ConfigSource = Arc<dyn Fn() -> Result<RuntimeConfig, String> + Send + Sync>;

pub struct NodeActor {
    config: Arc<RuntimeConfig>,
    /// The request path: where this agent's catalog writes and reads go.
    router: Router,
    health: Option<Addr<HealthActor>>,
    lan: Option<Addr<LanGossip>>,
    /// Servers only: the WAN pool, for other datacenters.
    wan: Option<Addr<crate::wan::WanGossip>>,
    reload_source: Option<ConfigSource>,
    /// The agent's TLS, refreshed by a reload.
    tls: crate::tls::AgentTls,
    /// The HTTP(S) listeners' per-IP limit, which a reload can change.
    http_limit: crate::conn_limit::ConnLimit,
    /// This node's services and checks: the truth anti-entropy writes.
    local: Local,
    /// Everything must be rewritten (start, drift check, failed sync).
    dirty: bool,
    /// A sync is running; the next one waits for it.
    syncing: bool,
    /// Live LAN members, for scaling the full-sync interval.
    alive_members: std::collections::BTreeSet<String>,
    /// After failed syncs (no server, no leader): wait before the next,
    /// doubling up to `MAX_BACKOFF`.
    backoff: Duration,
    retry_at: Option<Instant>,
    /// Catalog entries whose last write ACLs refused (logged once).
    blocked: std::collections::BTreeSet<String>,
    events: events::EventLog,
    /// Where API registrations are kept across restarts (not in dev mode).
    persist: Option<persist::Store>,
    /// Bumped on every change of a local service (see `WatchLocalServices`).
    services_tx: tokio::sync::watch::Sender<u64>,
}

impl NodeActor {
    pub fn new(
        config: Arc<RuntimeConfig>,
        router: Router,
        health: Option<Addr<HealthActor>>,
        lan: Option<Addr<LanGossip>>,
        wan: Option<Addr<crate::wan::WanGossip>>,
        reload_source: Option<ConfigSource>,
        tls: crate::tls::AgentTls,
    ) -> Self {
        let mut local = Local::new(&config.node_name);
        for e in local.reload(&config.services, &config.checks) {
            tracing::error!(error = %e, "check from the config files refused");
        }
        let persist = persist::Store::open(&config);
        if let Some(store) = &persist {
            let (services, checks) = store.load();
            for def in &services {
                local.add_service_with(def, false, false);
            }
            for def in checks {
                let id = def.id.clone();
                if let Err(e) = local.add_check(def, false) {
                    tracing::error!(check = %id, error = %e, "persisted check refused");
                }
            }
        }
        NodeActor {
            config,
            router,
            health,
            lan,
            wan,
            reload_source,
            tls,
            http_limit: crate::conn_limit::ConnLimit::default(),
            local,
            dirty: true,
            syncing: false,
            alive_members: Default::default(),
            backoff: Duration::ZERO,
            retry_at: None,
            blocked: Default::default(),
            events: Default::default(),
            persist,
            services_tx: tokio::sync::watch::channel(0).0,
        }
    }

    /// Wakes whoever blocks on the local services.
    pub(super) fn services_changed(&self) {
        self.services_tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Removes a local service, its checks and their persisted copies.
    fn forget_service(&mut self, id: &str) -> bool {
        let checks: Vec<String> = self
            .local
            .checks
            .iter()
            .filter(|(_, c)| c.row.service_id == id)
            .map(|(cid, _)| cid.clone())
            .collect();
        if !self.local.remove_service(id) {
            return false;
        }
        if let Some(store) = &self.persist {
            store.remove_service(id);
            for cid in &checks {
                store.remove_check(cid);
            }
        }
        self.services_changed();
        true
    }

    /// The HTTP(S) listeners' per-IP limit, for a reload to change.
    pub(crate) fn with_http_limit(mut self, limit: crate::conn_limit::ConnLimit) -> Self {
        self.http_limit = limit;
        self
    }

    /// Tells the `Health` actor which checks this agent runs.
    fn publish_checks(&self, ctx: &mut Context<Self>) {
        let Some(health) = &self.health else { return };
        health.do_send(SetChecks {
            checks: self.local.specs(),
            reporter: ctx.address().recipient(),
        });
    }

    /// This node as the catalog holds it (the same row the leader writes,
    /// so the two never make each other's writes look like changes).
    fn node_row(&self) -> RegisterRequest {
        RegisterRequest {
            service: None,
            check: None,
            checks: Vec::new(),
            ..crate::actors::raft::self_registration(&self.config)
        }
    }
}

/// Whether an API caller may register script checks: with
/// `enable_script_checks`, or `enable_local_script_checks` from loopback.
pub fn script_checks_allowed(config: &RuntimeConfig, peer_is_loopback: bool) -> bool {
    config.enable_script_checks || (config.enable_local_script_checks && peer_is_loopback)
}

impl Actor for NodeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.publish_checks(ctx);
        // Retry quickly while local state is not in the catalog (no leader
        // yet at start-up); changes go out within 100 ms; a full pass every
        // minute catches drift; output-only changes ride along every
        // `check_update_interval`.
        self.sync_all(ctx);
        ctx.run_interval(Duration::from_millis(100), |act, ctx| {
            if act.retry_at.is_some_and(|t| Instant::now() < t) {
                return;
            }
            if act.dirty {
                act.sync_all(ctx);
            } else {
                act.sync_changes(ctx);
            }
        });
        self.schedule_full_sync(ctx);
        ctx.run_interval(self.config.check_update_interval, |act, _| {
            let outputs = std::mem::take(&mut act.local.output_dirty);
            act.local.dirty.extend(outputs);
        });
        ctx.run_interval(Duration::from_secs(1), |act, ctx| act.housekeeping(ctx));
        if !self.config.retry_join.is_empty() {
            self.retry_join(ctx, 0);
        }
        if !self.config.retry_join_wan.is_empty() {
            self.retry_join_pool(ctx, 0, true);
        }
        if let Some(lan) = &self.lan {
            lan.do_send(crate::lan::Subscribe(ctx.address().recipient()));
            lan.do_send(crate::lan::SubscribeEvents(ctx.address().recipient()));
        }
    }
}

impl Handler<RegisterService> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(), LocalError>>;

    fn handle(&mut self, msg: RegisterService, ctx: &mut Context<Self>) -> Self::Result {
        for c in &msg.def.checks {
            if let Err(e) = c.validate() {
                return Box::pin(actix::fut::ready(Err(LocalError::Invalid(e))));
            }
            if !c.args.is_empty() && !msg.scripts_allowed {
                return Box::pin(actix::fut::ready(Err(LocalError::Invalid(
                    crate::config::builder::SCRIPTS_DISABLED.into(),
                ))));
            }
        }
        let id = self
            .local
            .add_service_with(&msg.def, false, msg.replace_checks);
        if let Some(store) = &self.persist {
            store.save_service(&msg.def, &id);
        }
        self.services_changed();
        self.publish_checks(ctx);
        self.write_through(vec![id])
    }
}

impl Handler<DeregisterService> for NodeActor {
    type Result = ResponseActFuture<Self, Result<bool, RequestError>>;

    fn handle(&mut self, msg: DeregisterService, ctx: &mut Context<Self>) -> Self::Result {
        if !self.forget_service(&msg.0) {
            return Box::pin(actix::fut::ready(Ok(false)));
        }
        self.publish_checks(ctx);
        Box::pin(self.write_through(vec![msg.0]).map(|_, _, _| Ok(true)))
    }
}

impl Handler<RegisterCheck> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(), LocalError>>;

    fn handle(&mut self, msg: RegisterCheck, ctx: &mut Context<Self>) -> Self::Result {
        if !msg.def.args.is_empty() && !msg.scripts_allowed {
            return Box::pin(actix::fut::ready(Err(LocalError::Invalid(
                crate::config::builder::SCRIPTS_DISABLED.into(),
            ))));
        }
        let service = msg.def.service_id.clone();
        let def = msg.def.clone();
        let id = match self.local.add_check(msg.def, false) {
            Ok(id) => id,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        if let Some(store) = &self.persist {
            store.save_check(&def, &id);
        }
        self.publish_checks(ctx);
        self.write_through(vec![service])
    }
}

impl Handler<DeregisterCheck> for NodeActor {
    type Result = Result<(), LocalError>;

    fn handle(&mut self, msg: DeregisterCheck, ctx: &mut Context<Self>) -> Self::Result {
        if !self.local.remove_check(&msg.0) {
            return Err(LocalError::NotFound(format!(
                "Unknown check ID {:?}. Ensure that the check ID is passed, not the check name.",
                msg.0
            )));
        }
        if let Some(store) = &self.persist {
            store.remove_check(&msg.0);
        }
        self.publish_checks(ctx);
        self.sync_changes(ctx);
        Ok(())
    }
}

impl Handler<UpdateTtl> for NodeActor {
    type Result = ResponseActFuture<Self, Result<(), LocalError>>;

    fn handle(&mut self, msg: UpdateTtl, _: &mut Context<Self>) -> Self::Result {
        let Some(check) = self.local.checks.get(&msg.id) else {
            return Box::pin(actix::fut::ready(Err(LocalError::NotFound(format!(
                "Unknown check ID {:?}. Ensure that the check ID is passed, not the check name.",
                msg.id
            )))));
        };
        if check.def.ttl.is_none() {
            return Box::pin(actix::fut::ready(Err(LocalError::Invalid(format!(
                "CheckID {:?} does not have associated TTL",
                msg.id
            )))));
        }
        let service = check.row.service_id.clone();
        let output = crate::actors::health::probe::truncate(msg.output);
        self.local.set_status(&msg.id, msg.status, &output);
        if let Some(h) = &self.health {
            h.do_send(TtlTouched(msg.id));
        }
        // Status and output reach the catalog before the caller hears back.
        self.local.output_dirty.remove(&service);
        self.write_through(vec![service])
    }
}

impl Handler<Maintenance> for NodeActor {
    type Result = Result<(), LocalError>;

    fn handle(&mut self, msg: Maintenance, ctx: &mut Context<Self>) -> Self::Result {
        match &msg.service {
            Some(id) => self
                .local
                .service_maintenance(id, msg.enable, &msg.reason)?,
            None => {
                self.local.node_maintenance(msg.enable, &msg.reason);
            }
        }
        self.sync_changes(ctx);
        Ok(())
    }
}

impl Handler<CheckResult> for NodeActor {
    type Result = ();

    fn handle(&mut self, msg: CheckResult, ctx: &mut Context<Self>) {
        let before = self.local.checks.get(&msg.id).map(|c| c.row.status);
        if self
            .local
            .set_status(&msg.id, msg.status, &msg.output)
            .is_some()
            && before != Some(msg.status)
        {
            tracing::info!(check = %msg.id, status = msg.status.as_str(), "check status changed");
            self.sync_changes(ctx);
        }
    }
}

impl Handler<LocalServiceHealth> for NodeActor {
    type Result = MessageResult<LocalServiceHealth>;

    fn handle(&mut self, _: LocalServiceHealth, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.local
                .services
                .iter()
                .map(|(id, s)| ServiceHealth {
                    service: s.service.clone(),
                    checks: self
                        .local
                        .checks
                        .values()
                        .filter(|c| c.row.service_id == *id || c.row.service_id.is_empty())
                        .map(|c| c.row.clone())
                        .collect(),
                    aggregated: self.local.aggregated(id),
                })
                .collect(),
        )
    }
}

impl Handler<GetLocalState> for NodeActor {
    type Result = MessageResult<GetLocalState>;

    fn handle(&mut self, _: GetLocalState, _: &mut Context<Self>) -> Self::Result {
        let services = self
            .local
            .services
            .iter()
            .map(|(id, s)| (id.clone(), s.service.clone()))
            .collect();
        MessageResult(LocalState {
            services,
            checks: self.local.rows(),
        })
    }
}

impl Handler<WatchLocalServices> for NodeActor {
    type Result = MessageResult<WatchLocalServices>;

    fn handle(&mut self, _: WatchLocalServices, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.services_tx.subscribe())
    }
}

impl Handler<GetAgentInfo> for NodeActor {
    type Result = MessageResult<GetAgentInfo>;

    fn handle(&mut self, _: GetAgentInfo, _: &mut Context<Self>) -> Self::Result {
        MessageResult(AgentInfo {
            config: self.config.clone(),
            raft: self.router.local_status(),
            store: self.router.local_store_stats(),
            local_services: self.local.services.len(),
            local_checks: self.local.checks.len(),
            check_monitors: self
                .local
                .checks
                .values()
                .filter(|c| c.def.kind() == "script")
                .count(),
            check_ttls: self
                .local
                .checks
                .values()
                .filter(|c| c.def.kind() == "ttl")
                .count(),
        })
    }
}

impl Handler<Reload> for NodeActor {
    type Result = Result<(), String>;

    fn handle(&mut self, _: Reload, ctx: &mut Context<Self>) -> Self::Result {
        let Some(source) = self.reload_source.clone() else {
            return Ok(());
        };
        let new = source()?;
        // Certificates and verify_* first: a reload that cannot take them
        // changes nothing, as a config error does.
        self.tls.reload(&new.tls).map_err(|e| e.to_string())?;
        // Identity, addresses and ports need a restart; services, checks
        // and the rest of the definitions take effect now.
        if new.replication != self.config.replication {
            // The leader's copy tasks and the router's refusals are built
            // from the block at start.
            tracing::warn!(
                "the replication block changed: it takes effect when the server restarts"
            );
        }
        let mut cfg = (*self.config).clone();
        cfg.services = new.services;
        cfg.checks = new.checks;
        cfg.log_level = new.log_level;
        cfg.enable_script_checks = new.enable_script_checks;
        cfg.enable_local_script_checks = new.enable_local_script_checks;
        // As Consul's reload: new connections count against the new limit.
        self.http_limit
            .set_max(new.limits.http_max_conns_per_client);
        cfg.limits.http_max_conns_per_client = new.limits.http_max_conns_per_client;
        // The agent's tokens change at run time (Consul reloads them too).
        self.router.reload_tokens(&new.acl.tokens);
        cfg.acl.tokens = new.acl.tokens;
        self.config = Arc::new(cfg);
        for e in self
            .local
            .reload(&self.config.services, &self.config.checks)
        {
            tracing::error!(error = %e, "check from the config files refused");
        }
        self.services_changed();
        self.publish_checks(ctx);
        self.dirty = true;
        self.sync_all(ctx);
        tracing::info!("configuration reloaded");
        Ok(())
    }
}
