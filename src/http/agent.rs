//! `/v1/agent/*`: the local agent (never forwarded): self, members,
//! services (with `ContentHash` and hash-based blocking), checks, service
//! register/deregister, monitor, reload, leave.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use super::agent_authz as authz;
use super::error::ApiError;
use super::params::{decode, json as json_resp, json_with, read_body, Params};
use super::routes::{get, put, Decision::*, Need, Route};
use super::ApiState;
use crate::acl::{Access as AclAccess, Resource};
use crate::actors::node::{
    AgentInfo, DeregisterService, ForceLeaveLan, GetAgentInfo, GetMembers, GetWanMembers, JoinLan,
    JoinWan, LeaveLan, RegisterService, Reload, WatchLocalServices,
};
use crate::config::duration::parse_go_duration;
use crate::config::{CheckDefinition, DefinitionToken, ServiceDefinition};
use crate::filter::schema;
use crate::lan::{Member, MemberStatus};
use crate::logstream::{Listener, LogLevel};
use crate::state::structs::{ServiceAddress, Weights};
use crate::structs::RequestError;

pub fn routes() -> Vec<Route> {
    let agent_write = Agent(Need::node(Resource::Agent, AclAccess::Write));
    vec![
        get(
            "/v1/agent/self",
            Agent(Need::node(Resource::Agent, AclAccess::Read)),
            |r| r.to(agent_self),
        ),
        get("/v1/agent/members", AgentFiltered, |r| r.to(members)),
        get("/v1/agent/services", AgentFiltered, |r| r.to(services)),
        put("/v1/agent/service/register", AgentByRequest, |r| {
            r.to(register)
        }),
        put("/v1/agent/service/deregister/{id}", AgentByRequest, |r| {
            r.to(deregister)
        }),
        get("/v1/agent/service/{id}", AgentByRequest, |r| r.to(service)),
        get("/v1/agent/checks", AgentFiltered, |r| r.to(checks)),
        get(
            "/v1/agent/monitor",
            Agent(Need::node(Resource::Agent, AclAccess::Read)),
            |r| r.to(monitor),
        ),
        get(
            "/v1/agent/host",
            Agent(Need::global(Resource::Operator, AclAccess::Read)),
            |r| r.to(super::agent_host::host),
        ),
        put("/v1/agent/reload", agent_write, |r| r.to(reload)),
        put("/v1/agent/join/{addr}", agent_write, |r| r.to(join)),
        put(
            "/v1/agent/force-leave/{node}",
            Agent(Need::global(Resource::Operator, AclAccess::Write)),
            |r| r.to(force_leave),
        ),
        // Last: a walk of the table that follows its order leaves last.
        put("/v1/agent/leave", agent_write, |r| r.to(leave)),
    ]
}

/// Consul's `PUT /v1/agent/force-leave/<node>` (`?prune` forgets it at once).
async fn force_leave(
    req: HttpRequest,
    state: web::Data<ApiState>,
    node: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let name = node.into_inner();
    let found = state
        .node
        .send(ForceLeaveLan {
            name: name.clone(),
            prune: p.has("prune"),
        })
        .await
        .map_err(|_| RequestError::ShuttingDown)?
        .map_err(ApiError::internal)?;
    if !found {
        return Err(ApiError::internal(format!(
            "agent: No node found with name '{name}'"
        )));
    }
    Ok(HttpResponse::Ok().finish())
}

async fn info(state: &ApiState) -> Result<AgentInfo, ApiError> {
    Ok(state
        .node
        .send(GetAgentInfo)
        .await
        .map_err(|_| RequestError::ShuttingDown)?)
}

/// A gossip member in Consul's shape (`/v1/agent/members`, `Member`).
fn member_json(m: &Member) -> serde_json::Value {
    json!({
        "Name": m.name,
        "Addr": m.addr.ip().to_string(),
        "Port": m.addr.port(),
        "Tags": m.tags,
        "Status": m.status as u8,
        "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    })
}

async fn members_of(state: &ApiState) -> Result<Vec<Member>, ApiError> {
    Ok(state
        .node
        .send(GetMembers)
        .await
        .map_err(|_| RequestError::ShuttingDown)?)
}

async fn agent_self(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let i = info(&state).await?;
    let c = &i.config;
    // A client that has not reached a server yet still answers (its
    // own datacenter is known), as Consul's does: agent/self is how
    // tools tell an agent is up.
    let known_dcs = state
        .router
        .datacenters()
        .await
        .map_or(1, |dcs| dcs.len().max(1));
    let s = |v: &dyn ToString| v.to_string();
    let raft = i.raft.clone().unwrap_or_default();
    let members = members_of(&state).await?;
    // Consul's `Coord`: the agent's LAN coordinate (null when disabled).
    let coord = match state.config.disable_coordinates {
        true => None,
        false => state.router.lan_coordinate().await,
    };
    let count = |st: MemberStatus| members.iter().filter(|m| m.status == st).count();
    let mut consul_stats = json!({
        "server": s(&c.server), "bootstrap": s(&c.bootstrap), "known_datacenters": s(&known_dcs),
        "leader": s(&raft.is_leader), "leader_addr": raft.leader_addr.clone().unwrap_or_default(),
    });
    // Not Consul keys (its blocking-query count is the telemetry gauge
    // `consul.rpc.queries_blocking`; tombstones it does not report): what
    // idle KV deletes and waiting watchers cost the server that holds them.
    if let Some(st) = i.store {
        consul_stats["kv_tombstones"] = json!(s(&st.kv_tombstones));
        consul_stats["queries_blocking"] = json!(s(&st.queries_blocking));
    }
    let raft_stats = if c.server {
        json!({
            "state": raft.state, "term": s(&raft.term), "last_log_index": s(&raft.last_log_index),
            "commit_index": s(&raft.commit_index), "applied_index": s(&raft.applied_index),
            "last_snapshot_index": s(&raft.last_snapshot_index), "num_peers": s(&raft.peers.len().saturating_sub(1)),
            "last_contact": if raft.is_leader { "0".to_string() } else { format!("{}ms", raft.last_contact_ms) },
            "latest_configuration": format!("{:?}", raft.peers), "protocol_version": "3",
        })
    } else {
        json!({})
    };
    let body = json!({
        "Config": {
            "Datacenter": c.datacenter, "PrimaryDatacenter": c.primary_datacenter, "NodeName": c.node_name, "NodeID": c.node_id,
            "Server": c.server, "Revision": crate::build_info::REVISION, "Version": env!("CARGO_PKG_VERSION"),
            "BuildDate": crate::build_info::BUILD_DATE,
        },
        "DebugConfig": {
            "Datacenter": c.datacenter, "NodeName": c.node_name, "NodeID": c.node_id, "ServerMode": c.server,
            "DevMode": c.dev, "Bootstrap": c.bootstrap, "BootstrapExpect": c.bootstrap_expect,
            "DataDir": c.data_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
            "DNSDomain": c.domain, "DNSRecursors": c.recursors, "ClientAddrs": c.client_addrs,
            "BindAddr": c.bind_addr, "AdvertiseAddrLAN": c.advertise(), "RetryJoinLAN": c.retry_join,
            "HTTPPort": c.ports.http.map(i64::from).unwrap_or(-1), "HTTPSPort": c.ports.https.map(i64::from).unwrap_or(-1), "DNSPort": c.ports.dns.map(i64::from).unwrap_or(-1),
            "ServerPort": c.ports.server.map(i64::from).unwrap_or(-1), "SerfPortLAN": c.ports.serf_lan.map(i64::from).unwrap_or(-1),
            "SerfPortWAN": c.ports.serf_wan.map(i64::from).unwrap_or(-1), "UIConfig": {"Enabled": c.ui_enabled},
        },
        "Coord": coord,
        "Member": members.iter().find(|m| m.name == c.node_name).map(member_json),
        "Meta": c.node_meta,
        // Meridian's own: what this server's probes say of the other
        // datacenters (empty on a client), and its KV replication (null
        // without a `replication` block).
        "Meridian": {
            "Datacenters": state.router.datacenter_reach(),
            "Replication": state.router.kv_replication(),
        },
        "Stats": {
            "agent": {"check_monitors": s(&i.check_monitors), "check_ttls": s(&i.check_ttls), "checks": s(&i.local_checks), "services": s(&i.local_services)},
            "build": {"prerelease": "", "revision": crate::build_info::REVISION, "version": env!("CARGO_PKG_VERSION"), "build_date": crate::build_info::BUILD_DATE},
            "consul": consul_stats,
            "raft": raft_stats,
            "serf_lan": {
                "members": s(&members.len()),
                "failed": s(&count(MemberStatus::Failed)),
                "left": s(&count(MemberStatus::Left)),
                "encrypted": s(&c.encrypt.is_some()),
                "health_score": "0", "event_queue": "0", "intent_queue": "0", "query_queue": "0",
            },
            "runtime": {"arch": std::env::consts::ARCH, "os": std::env::consts::OS, "version": "rust", "cpu_count": s(&std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))},
        },
    });
    Ok(json_resp(&req, &body))
}

async fn members(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let filter = p.filter(&schema::AGENT_MEMBER)?;
    let access = authz::access(&req, &state).await?;
    // The WAN pool holds servers only; a client's answer is empty.
    let members = if p.has("wan") {
        state
            .node
            .send(GetWanMembers)
            .await
            .map_err(|_| RequestError::ShuttingDown)?
    } else {
        members_of(&state).await?
    };
    // `node:read` on the member's node (a WAN member is `node.dc`).
    let wan = p.has("wan");
    let readable = |m: &&Member| {
        let node = if wan {
            m.name.rsplit_once('.').map_or(m.name.as_str(), |(n, _)| n)
        } else {
            m.name.as_str()
        };
        access.allowed(Resource::Node, AclAccess::Read, node)
    };
    let mut list: Vec<serde_json::Value> =
        members.iter().filter(readable).map(member_json).collect();
    let mut b = HttpResponse::Ok();
    authz::filtered_header(&mut b, list.len() != members.len());
    if let Some(f) = &filter {
        list.retain(|m| f.matches(m));
    }
    Ok(json_with(b, &req, &list))
}

async fn join(
    req: HttpRequest,
    state: web::Data<ApiState>,
    addr: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let addrs = vec![addr.into_inner()];
    let joined = if Params::from(&req)?.has("wan") {
        state.node.send(JoinWan(addrs)).await
    } else {
        state.node.send(JoinLan(addrs)).await
    };
    let n = joined
        .map_err(|_| RequestError::ShuttingDown)?
        .map_err(ApiError::internal)?;
    if n == 0 {
        return Err(ApiError::internal(
            "failed to join: no address could be contacted",
        ));
    }
    Ok(HttpResponse::Ok().finish())
}

async fn services(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let filter = Params::from(&req)?.filter(&schema::AGENT_SERVICE)?;
    let access = authz::access(&req, &state).await?;
    let local = authz::local_state(&state).await?;
    let dc = state.config.datacenter.clone();
    let total = local.services.len();
    let mut out: BTreeMap<String, serde_json::Value> = local
        .services
        .into_iter()
        .filter(|(_, s)| access.allowed(Resource::Service, AclAccess::Read, &s.service))
        .map(|(id, s)| (id, agent_service_json(&s, &dc)))
        .collect();
    let mut b = HttpResponse::Ok();
    authz::filtered_header(&mut b, out.len() != total);
    if let Some(f) = &filter {
        out.retain(|_, s| f.matches(s));
    }
    Ok(json_with(b, &req, &out))
}

pub(super) fn agent_service_json(
    s: &crate::state::structs::NodeService,
    dc: &str,
) -> serde_json::Value {
    let mut v = json!({
        "ID": s.id, "Service": s.service, "Tags": s.tags, "Meta": s.meta, "Port": s.port, "Address": s.address,
        "TaggedAddresses": s.tagged_addresses, "Weights": s.weights, "EnableTagOverride": s.enable_tag_override,
        "Kind": s.kind, "Datacenter": dc,
    });
    v["ContentHash"] = content_hash(&v).into();
    v
}

/// A service's `ContentHash`: 64-bit FNV-1a of its JSON (keys sorted, so
/// the same service always hashes the same), in hex. What a client sends
/// back as `?hash=` to block until the service changes.
fn content_hash(v: &serde_json::Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

async fn service(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let access = authz::access(&req, &state).await?;
    // Subscribed before the first read: a change between the read and
    // the wait still wakes the wait.
    let mut changes = state.ask(WatchLocalServices).await?;
    let deadline = tokio::time::Instant::now() + p.query_options(&state.config)?.max_wait;
    loop {
        let _seen = *changes.borrow_and_update();
        let local = authz::local_state(&state).await?;
        let s = local
            .services
            .get(id.as_str())
            .ok_or_else(|| ApiError::not_found(format!("unknown service ID: {id}")))?;
        access.require(Resource::Service, AclAccess::Read, &s.service)?;
        let body = agent_service_json(s, &state.config.datacenter);
        let hash = body["ContentHash"].as_str().unwrap_or_default().to_string();
        // `?hash=`: block while the service still hashes the same.
        let unchanged = p.get("hash").is_some_and(|h| !h.is_empty() && h == hash);
        if unchanged {
            let woke = tokio::time::timeout_at(deadline, changes.changed()).await;
            if matches!(woke, Ok(Ok(()))) {
                continue;
            }
        }
        let mut b = HttpResponse::Ok();
        b.insert_header(("X-Consul-ContentHash", hash));
        return Ok(json_with(b, &req, &body));
    }
}

/// `GET /v1/agent/monitor?loglevel=&logjson`: the agent's log lines from
/// now on, at that level and above, until the caller hangs up.
async fn monitor(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let p = Params::from(&req)?;
    let given = p
        .get("loglevel")
        .filter(|l| !l.is_empty())
        .unwrap_or("INFO");
    let level = LogLevel::parse(given)
        .ok_or_else(|| ApiError::bad_request(format!("Unknown log level: {given}")))?;
    let as_json = p.has("logjson");
    let listener = Listener::new(level);
    let lines = futures::stream::unfold(listener, move |mut l| async move {
        let chunk = match l.next().await {
            Ok(line) if as_json => format!("{}\n", line.json),
            Ok(line) => format!("{}\n", line.text),
            Err(lost) => format!("Monitor dropped {lost} logs during monitor request\n"),
        };
        Some((Ok::<_, std::io::Error>(web::Bytes::from(chunk)), l))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .streaming(lines))
}

async fn checks(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let filter = Params::from(&req)?.filter(&schema::HEALTH_CHECK)?;
    let access = authz::access(&req, &state).await?;
    let mut checks = authz::local_state(&state).await?.checks;
    let total = checks.len();
    checks.retain(|_, c| authz::on_check(&state, &access, c, AclAccess::Read).is_ok());
    let mut b = HttpResponse::Ok();
    authz::filtered_header(&mut b, checks.len() != total);
    // Consul's agent checks carry the probe's `Interval` and `Timeout`
    // beside the catalog fields ("" when the check has none).
    if let Some(f) = &filter {
        checks.retain(|_, c| f.keeps(c));
    }
    let out: BTreeMap<String, serde_json::Value> = checks
        .into_iter()
        .map(|(id, c)| {
            let mut v = serde_json::to_value(&c).unwrap_or_default();
            for k in ["Interval", "Timeout"] {
                let d = c.definition.get(k).cloned().unwrap_or_else(|| json!(""));
                v[k] = d;
            }
            (id, v)
        })
        .collect();
    Ok(json_with(b, &req, &out))
}

/// `/v1/agent/service/register`'s body (Consul's `ServiceDefinition`).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ServiceRegistration {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    tags: Vec<String>,
    address: String,
    port: u16,
    meta: BTreeMap<String, String>,
    tagged_addresses: BTreeMap<String, ServiceAddress>,
    weights: Option<Weights>,
    enable_tag_override: bool,
    kind: String,
    check: Option<CheckRegistration>,
    checks: Vec<CheckRegistration>,
}

impl ServiceRegistration {
    /// The service as the agent keeps it, its checks checked.
    pub(crate) fn into_definition(
        self,
        token: DefinitionToken,
    ) -> Result<ServiceDefinition, ApiError> {
        if let Some(w) = &self.weights {
            // Consul's `ValidateWeights`.
            if w.passing < 1 {
                return Err(ApiError::bad_request(
                    "Invalid Weights: Passing must be greater than 0",
                ));
            }
            if w.warning < 0 {
                return Err(ApiError::bad_request(
                    "Invalid Weights: Warning must be greater or equal than 0",
                ));
            }
        }
        let mut checks = Vec::new();
        for (i, c) in self.check.into_iter().chain(self.checks).enumerate() {
            checks.push(c.into_definition(&format!("Checks[{i}]"))?);
        }
        Ok(ServiceDefinition {
            id: self.id,
            name: self.name,
            tags: self.tags,
            address: self.address,
            port: self.port,
            meta: self.meta,
            tagged_addresses: self.tagged_addresses,
            weights: self.weights.map(|w| (w.passing, w.warning)),
            enable_tag_override: self.enable_tag_override,
            kind: self.kind,
            checks,
            token,
        })
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct CheckRegistration {
    #[serde(rename = "ID", alias = "CheckID")]
    id: String,
    name: String,
    notes: String,
    status: String,
    #[serde(rename = "ServiceID")]
    service_id: String,
    #[serde(deserialize_with = "duration_text")]
    interval: Option<String>,
    #[serde(deserialize_with = "duration_text")]
    timeout: Option<String>,
    #[serde(rename = "TTL", deserialize_with = "duration_text")]
    ttl: Option<String>,
    #[serde(rename = "HTTP")]
    http: String,
    method: String,
    header: BTreeMap<String, Vec<String>>,
    body: String,
    #[serde(rename = "TLSSkipVerify")]
    tls_skip_verify: bool,
    #[serde(rename = "TCP")]
    tcp: String,
    #[serde(rename = "UDP")]
    udp: String,
    #[serde(rename = "GRPC")]
    grpc: String,
    #[serde(rename = "GRPCUseTLS")]
    grpc_use_tls: bool,
    #[serde(alias = "ScriptArgs")]
    args: Vec<String>,
    alias_service: String,
    alias_node: String,
    #[serde(deserialize_with = "duration_text")]
    deregister_critical_service_after: Option<String>,
    success_before_passing: u32,
    failures_before_warning: u32,
    failures_before_critical: u32,
}

/// A duration field as Consul's decoder takes it: a Go duration string,
/// or a number of nanoseconds (what Go clients marshal a `time.Duration`
/// to), kept as text for [`duration`] to parse.
fn duration_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Text(String),
        Nanos(i64),
        Float(f64),
    }
    Ok(match Option::<Given>::deserialize(d)? {
        None => None,
        Some(Given::Text(t)) => Some(t),
        Some(Given::Nanos(n)) => Some(format!("{n}ns")),
        // Go's decoder truncates a float into the integer nanoseconds.
        Some(Given::Float(f)) => Some(format!("{}ns", f.trunc() as i64)),
    })
}

fn duration(field: &str, v: &Option<String>) -> Result<Option<Duration>, ApiError> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse_go_duration(s)
                .map_err(|e| ApiError::bad_request(format!("Request decode failed: {field}: {e}")))
        })
        .transpose()
}

impl CheckRegistration {
    pub(crate) fn into_definition(self, path: &str) -> Result<CheckDefinition, ApiError> {
        Ok(CheckDefinition {
            interval: duration(&format!("{path}.Interval"), &self.interval)?,
            timeout: duration(&format!("{path}.Timeout"), &self.timeout)?,
            ttl: duration(&format!("{path}.TTL"), &self.ttl)?,
            deregister_critical_service_after: duration(
                &format!("{path}.DeregisterCriticalServiceAfter"),
                &self.deregister_critical_service_after,
            )?,
            id: self.id,
            name: self.name,
            notes: self.notes,
            status: self.status,
            service_id: self.service_id,
            http: self.http,
            method: self.method,
            header: self.header,
            body: self.body,
            tls_skip_verify: self.tls_skip_verify,
            tcp: self.tcp,
            udp: self.udp,
            grpc: self.grpc,
            grpc_use_tls: self.grpc_use_tls,
            args: self.args,
            alias_service: self.alias_service,
            alias_node: self.alias_node,
            success_before_passing: self.success_before_passing,
            failures_before_warning: self.failures_before_warning,
            failures_before_critical: self.failures_before_critical,
            token: DefinitionToken::default(),
        })
    }
}

async fn register(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, super::catalog::MAX_BODY).await?;
    let r: ServiceRegistration = decode(&body)?;
    if r.name.is_empty() {
        return Err(ApiError::bad_request("Missing service name"));
    }
    // `vetServiceRegister`: the service, and the services its checks name.
    let access = authz::access(&req, &state).await?;
    access.require(Resource::Service, AclAccess::Write, &r.name)?;
    // Anti-entropy keeps the service in the catalog with the token it
    // was registered with (Consul's service token).
    let def = r.into_definition(DefinitionToken(
        Params::from(&req)?.token().unwrap_or_default(),
    ))?;
    let scripts_allowed = super::agent_checks::scripts_allowed(&req, &state);
    let replace_checks = Params::from(&req)?.has("replace-existing-checks");
    state
        .node
        .send(RegisterService {
            def,
            scripts_allowed,
            replace_checks,
        })
        .await
        .map_err(|_| RequestError::ShuttingDown)??;
    Ok(HttpResponse::Ok().finish())
}

async fn deregister(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let access = authz::access(&req, &state).await?;
    authz::on_service(&state, &access, &id, AclAccess::Write).await?;
    let found = state
        .node
        .send(DeregisterService(id.clone()))
        .await
        .map_err(|_| RequestError::ShuttingDown)??;
    if !found {
        return Err(ApiError::not_found(format!(
            "Unknown service ID {:?}. Ensure that the service ID is passed, not the service name.",
            id.as_str()
        )));
    }
    Ok(HttpResponse::Ok().finish())
}

async fn reload(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    state
        .node
        .send(Reload)
        .await
        .map_err(|_| RequestError::ShuttingDown)?
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().finish())
}

async fn leave(state: web::Data<ApiState>) -> HttpResponse {
    // Leave the pool first so peers see `left`, answer, then stop.
    let _ = state.node.send(LeaveLan).await;
    actix::spawn(async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        tracing::info!("graceful leave complete; shutting down");
        actix::System::current().stop();
    });
    HttpResponse::Ok().finish()
}
