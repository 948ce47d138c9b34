//! The `Dns` actor: Consul's DNS interface on UDP and TCP (hickory-server's
//! transport). It owns the listener; every lookup is a read through the
//! request path (the router), so datacenter forwarding and the fast local
//! read are shared with HTTP.
//!
//! Names under the domain (and `alt_domain`, answered in the domain
//! asked): `NAME.service[.DC]`, `TAG.NAME.service`, RFC 2782
//! `_NAME._tcp|_TAG.service` (the `service` label may be left out for
//! SRV), `NODE.node[.DC]` (A/AAAA, node meta as TXT), prepared queries
//! `NAME.query[.DC]` (with their failover and `DNS.TTL`), `<hex>.addr[.DC]`
//! (the SRV target of an instance with its own address), and the domain
//! itself (SOA, NS: the datacenter's servers); a trailing `.dc` label is
//! allowed after the datacenter. Reverse names (`*.arpa`) answer PTR with
//! the nodes at the address, else the services. Critical instances are
//! left out (warning ones too with `only_passing`), answers are shuffled,
//! unknown names get NXDOMAIN with the SOA. Host-name addresses answer a
//! CNAME. Answers are fitted to the transport ([`trim`]); names outside
//! the domain go to the recursors ([`recursor`]), or are REFUSED when
//! there are none.
//!
//! Parts: [`lookup`] reads names, [`records`] builds records from catalog
//! rows, [`trim`] fits answers, [`recursor`] asks upstream, [`listener`]
//! owns the sockets and sends the responses; this file decides what to
//! read and which records answer.

mod listener;
mod lookup;
mod records;
mod recursor;
mod trim;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{NS, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::Request;
use rand::seq::SliceRandom;

pub use listener::{bind_pair, threads, DnsActor, Sockets};

/// The datacenter label that asks every datacenter, nearest first
/// (`web.service.any.consul`).
pub const ANY_DC: &str = "any";
pub use lookup::{lookup_in, parse_labels, reverse_ip, Lookup, Zones};

use crate::actors::node::router::ReadPath;
use crate::config::RuntimeConfig;
use crate::state::query::{Query, QueryResult};
use crate::state::structs::{CheckServiceNode, DnsInstance, HealthStatus};
use crate::structs::prepared_query::ExecuteOptions;
use crate::structs::{Consistency, QueryOptions, ReadRequest, RequestError};
use records::{addr_record, address, cname_record, meta_txt, node_name, wants, Address, Reach};

/// How many host names deep a CNAME is followed inside our domain (a
/// service whose address names another service...), as Consul's
/// `maxRecursionLevelDefault`.
const CNAME_DEPTH: u8 = 3;

/// Consul counts answers from a server that has not heard from its
/// leader for over 5 s (its `staleCounterThreshold`).
const STALE_COUNT_MS: u64 = 5_000;

/// How long the datacenter's server list is reused. Every negative
/// answer's SOA names a server: reading the list each time would add a
/// read (an RPC on a client agent) to every AAAA question about an IPv4
/// service, which resolvers ask beside every A question.
const SERVERS_TTL: Duration = Duration::from_secs(5);

/// The answer to one question, before encoding.
#[derive(Debug, Default)]
struct Answer {
    /// False for what recursors answered: we are not the authority for it.
    relayed: bool,
    rcode: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

impl Answer {
    fn code(rcode: ResponseCode) -> Self {
        Answer {
            rcode,
            ..Default::default()
        }
    }
}

/// One question being answered.
#[derive(Clone, Copy)]
struct Ask<'a> {
    qname: &'a Name,
    qtype: RecordType,
    /// The domain answers are named in: the one asked, `domain` or
    /// `alt_domain`.
    zone: &'a Name,
    source: IpAddr,
    /// CNAME targets in our domain still to be followed.
    depth: u8,
    /// Most answer records the transport can carry: no more are built.
    /// Trimming fits the answer afterwards; this only spares building
    /// (and resolving) records for the hundreds of instances of a large
    /// service that would be cut anyway (SRV for 1,000 instances took
    /// 8-9 ms, 0.07 ms for one: bench/catalog_scale.sh).
    most: usize,
}

/// The smallest answer record: an A record whose name is a compression
/// pointer (2 + 10 + 4 bytes).
const MIN_RECORD_BYTES: usize = 16;

/// A server of this datacenter as a name server: its name and its
/// address (glue), if it has an IP.
struct NameServer {
    name: Name,
    glue: Option<Record>,
}

#[derive(Clone)]
struct DnsHandler {
    config: Arc<RuntimeConfig>,
    zones: Zones,
    reads: Arc<dyn ReadPath>,
    /// Consul's `dns.domain_query` timer, labelled with this node.
    domain_query: crate::metrics::Summary,
    /// The `consul` service's instances as last read, and when; kept
    /// [`SERVERS_TTL`], and only when there were some (a datacenter
    /// whose servers are not registered yet is asked again).
    servers_seen: Arc<std::sync::Mutex<Option<ServersSeen>>>,
}

/// The `consul` service's instances, and when they were read.
type ServersSeen = (tokio::time::Instant, Vec<CheckServiceNode>);

static STALE_QUERIES: crate::metrics::Static<crate::metrics::Counter> =
    crate::metrics::counter("dns.stale_queries");

impl DnsHandler {
    fn node_ttl(&self) -> u32 {
        self.config.dns.node_ttl.as_secs() as u32
    }

    /// The SOA of `zone`. Its MNAME is the first of the name servers the
    /// NS answer gives (`ns.<zone>` when no server is known), so that the
    /// two agree.
    fn soa_with(&self, zone: &Name, mname: Option<&Name>) -> Record {
        let d = &self.config.dns;
        let ns = mname.cloned().unwrap_or_else(|| {
            Name::from_ascii("ns")
                .and_then(|n| n.append_domain(zone))
                .unwrap_or_else(|_| zone.clone())
        });
        let host = Name::from_ascii("hostmaster")
            .and_then(|n| n.append_domain(zone))
            .unwrap_or_else(|_| zone.clone());
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        let soa = SOA::new(
            ns,
            host,
            serial,
            d.soa_refresh as i32,
            d.soa_retry as i32,
            d.soa_expire as i32,
            d.soa_min_ttl,
        );
        Record::from_rdata(zone.clone(), d.soa_min_ttl, RData::SOA(soa))
    }

    async fn soa(&self, zone: &Name) -> Record {
        let servers = self.servers(zone).await;
        self.soa_with(zone, servers.first().map(|s| &s.name))
    }

    async fn nxdomain(&self, zone: &Name) -> Answer {
        Answer {
            rcode: ResponseCode::NXDomain,
            authorities: vec![self.soa(zone).await],
            ..Default::default()
        }
    }

    /// NOERROR with no answer: the name exists, not with this type.
    async fn nodata(&self, zone: &Name) -> Answer {
        Answer {
            rcode: ResponseCode::NoError,
            authorities: vec![self.soa(zone).await],
            ..Default::default()
        }
    }

    /// The datacenter's servers (the `consul` service's instances that
    /// are not critical) as name servers: at most 3, the first by node
    /// name first, so that the SOA's MNAME is always among the NS records
    /// however many servers there are. Nothing when the read fails (the
    /// SOA then names `ns.<zone>`, as Consul's always does).
    async fn servers(&self, zone: &Name) -> Vec<NameServer> {
        let mut nodes = self.server_rows().await;
        nodes.retain(|n| n.aggregate_status() != HealthStatus::Critical);
        nodes.sort_by(|a, b| a.node.node.cmp(&b.node.node));
        nodes.dedup_by(|a, b| a.node.node == b.node.node);
        let ttl = self.node_ttl();
        nodes
            .iter()
            .filter_map(|n| {
                let dc = self.dc_of(&n.node.datacenter);
                let name = node_name(&n.node.node, dc, zone)?;
                let glue = match address(&n.node.address) {
                    Some(Address::Ip(ip)) => Some(addr_record(&name, ttl, ip)),
                    _ => None,
                };
                Some(NameServer { name, glue })
            })
            .take(3)
            .collect()
    }

    /// The `consul` service's instances, from the last [`SERVERS_TTL`]
    /// or read now.
    async fn server_rows(&self) -> Vec<CheckServiceNode> {
        // A poisoned lock only loses the reuse: read afresh.
        let fresh = self.servers_seen.lock().ok().and_then(|seen| {
            seen.as_ref()
                .filter(|(at, _)| at.elapsed() < SERVERS_TTL)
                .map(|(_, rows)| rows.clone())
        });
        if let Some(rows) = fresh {
            return rows;
        }
        let query = Query::HealthService {
            name: "consul".into(),
            tags: Vec::new(),
            passing: false,
        };
        let rows = match self.read(None, query).await {
            Ok(QueryResult::CheckServiceNodes(n)) => n,
            Ok(_) => Vec::new(),
            Err(e) => {
                tracing::debug!(error = %e, "DNS: no server list for NS records");
                Vec::new()
            }
        };
        if !rows.is_empty() {
            if let Ok(mut seen) = self.servers_seen.lock() {
                *seen = Some((tokio::time::Instant::now(), rows.clone()));
            }
        }
        rows
    }

    /// A row's datacenter, this agent's when the row does not say.
    fn dc_of<'a>(&'a self, dc: &'a str) -> &'a str {
        if dc.is_empty() {
            &self.config.datacenter
        } else {
            dc
        }
    }

    fn service_ttl(&self, name: &str) -> u32 {
        let ttls = &self.config.dns.service_ttl;
        if let Some((_, d)) = ttls.iter().find(|(k, _)| k == name) {
            return d.as_secs() as u32;
        }
        let prefix = ttls
            .iter()
            .filter(|(k, _)| k.ends_with('*') && name.starts_with(&k[..k.len() - 1]))
            .max_by_key(|(k, _)| k.len());
        prefix.map(|(_, d)| d.as_secs() as u32).unwrap_or(0)
    }

    async fn read(&self, dc: Option<String>, query: Query) -> Result<QueryResult, RequestError> {
        let stale = self.config.dns.allow_stale;
        let request = |consistency| ReadRequest {
            opts: QueryOptions {
                dc: dc.clone(),
                consistency,
                ..Default::default()
            },
            query: query.clone(),
        };
        let first = if stale {
            Consistency::Stale
        } else {
            Consistency::Default
        };
        let resp = self.reads.read(request(first)).await?;
        if !stale {
            return Ok(resp.result);
        }
        let last_contact = resp.meta.last_contact_ms;
        if u128::from(last_contact) > self.config.dns.max_stale.as_millis() {
            // Too stale to serve (`max_stale`): ask again of the leader.
            tracing::warn!(
                last_contact_ms = last_contact,
                "DNS: answer too stale, asking the leader"
            );
            return Ok(self.reads.read(request(Consistency::Default)).await?.result);
        }
        if last_contact > STALE_COUNT_MS {
            STALE_QUERIES.get().inc();
        }
        Ok(resp.result)
    }

    async fn service(
        &self,
        ask: Ask<'_>,
        name: String,
        tag: Option<String>,
        dc: Option<String>,
    ) -> Answer {
        let tags: Vec<String> = tag.into_iter().collect();
        let (mut nodes, dc) = if dc.as_deref() == Some(ANY_DC) {
            match self.nearest_healthy(&name, &tags).await {
                Ok(found) => found,
                Err(code) => return self.failed(ask, code).await,
            }
        } else {
            match self.healthy(dc.clone(), &name, &tags).await {
                Ok(nodes) => (nodes, dc.unwrap_or_else(|| self.config.datacenter.clone())),
                Err(code) => return self.failed(ask, code).await,
            }
        };
        if nodes.is_empty() {
            return self.nxdomain(ask.zone).await;
        }
        nodes.shuffle(&mut rand::thread_rng());
        let ttl = self.service_ttl(&name);
        self.records(ask, &nodes, ttl, &dc).await
    }

    /// NXDOMAIN for a datacenter we have no path to, else the code.
    async fn failed(&self, ask: Ask<'_>, code: ResponseCode) -> Answer {
        match code {
            ResponseCode::NXDomain => self.nxdomain(ask.zone).await,
            code => Answer::code(code),
        }
    }

    /// The instances of `name` in `dc` that DNS answers with (passing, and
    /// warning unless `dns_config.only_passing`), read in DNS's lean shape;
    /// `NXDomain` when there is no path to `dc`.
    async fn healthy(
        &self,
        dc: Option<String>,
        name: &str,
        tags: &[String],
    ) -> Result<Vec<DnsInstance>, ResponseCode> {
        let query = Query::DnsService {
            name: name.to_string(),
            tags: tags.to_vec(),
            only_passing: self.config.dns.only_passing,
        };
        match self.read(dc, query).await {
            Ok(QueryResult::DnsInstances { instances, .. }) => Ok(instances),
            Ok(_) => Err(ResponseCode::ServFail),
            Err(RequestError::NoPathToDatacenter) => Err(ResponseCode::NXDomain),
            Err(_) => Err(ResponseCode::ServFail),
        }
    }

    /// `NAME.service.any.<domain>` (Meridian's own): the nearest
    /// datacenter with instances DNS answers with, this one first, then by
    /// network distance. A datacenter that fails is passed over (its
    /// breaker makes that quick). A datacenter named `any` is asked as
    /// itself.
    async fn nearest_healthy(
        &self,
        name: &str,
        tags: &[String],
    ) -> Result<(Vec<DnsInstance>, String), ResponseCode> {
        let dcs = self
            .reads
            .datacenters()
            .await
            .map_err(|_| ResponseCode::ServFail)?;
        if dcs.iter().any(|d| d.eq_ignore_ascii_case(ANY_DC)) {
            let nodes = self.healthy(Some(ANY_DC.into()), name, tags).await?;
            return Ok((nodes, ANY_DC.into()));
        }
        let own = self.config.datacenter.clone();
        let others = dcs.into_iter().filter(|d| !d.eq_ignore_ascii_case(&own));
        for dc in std::iter::once(own.clone()).chain(others) {
            match self.healthy(Some(dc.clone()), name, tags).await {
                Ok(nodes) if !nodes.is_empty() => return Ok((nodes, dc)),
                Ok(_) => {}
                Err(code) => tracing::debug!(datacenter = %dc, ?code, "passed over for .any"),
            }
        }
        Ok((Vec::new(), own))
    }

    /// A prepared query's answer: its instances (already filtered and
    /// ordered by the query, from whichever datacenter answered), with
    /// the query's `DNS.TTL`, else the service's TTL.
    async fn prepared_query(&self, ask: Ask<'_>, name: String, dc: Option<String>) -> Answer {
        let opts = ExecuteOptions {
            agent_node: self.config.node_name.clone(),
            source_ip: ask.source.to_string(),
            ..Default::default()
        };
        let query = Query::PreparedQueryExecute {
            id_or_name: name,
            opts,
        };
        let asked = dc.clone();
        let exec = match self.read(dc, query).await {
            Ok(QueryResult::PreparedQueryExecuted(Some(e))) => e,
            Ok(QueryResult::PreparedQueryExecuted(None))
            | Err(RequestError::NoPathToDatacenter) => return self.nxdomain(ask.zone).await,
            _ => return Answer::code(ResponseCode::ServFail),
        };
        if exec.nodes.is_empty() {
            return self.nxdomain(ask.zone).await;
        }
        let ttl = exec
            .query
            .dns_ttl_secs()
            .unwrap_or_else(|| self.service_ttl(&exec.query.service.service));
        let dc = match exec.datacenter.as_str() {
            "" => asked.unwrap_or_else(|| self.config.datacenter.clone()),
            answered => answered.to_string(),
        };
        let instances: Vec<DnsInstance> = exec.nodes.iter().map(DnsInstance::from).collect();
        self.records(ask, &instances, ttl, &dc).await
    }

    /// The records for instances of one service in datacenter `dc`: SRV
    /// with each target's address in the additional section, or else one
    /// A/AAAA per distinct address (at most `a_record_limit`), or a CNAME
    /// when the instances are only reached by host name.
    async fn records(&self, ask: Ask<'_>, nodes: &[DnsInstance], ttl: u32, dc: &str) -> Answer {
        let mut out = if ask.qtype == RecordType::SRV {
            self.srv_records(ask, nodes, ttl, dc).await
        } else {
            self.address_records(ask, nodes, ttl).await
        };
        if out.answers.is_empty() {
            let mut nodata = self.nodata(ask.zone).await;
            nodata.additionals = std::mem::take(&mut out.additionals);
            return nodata;
        }
        out
    }

    async fn srv_records(&self, ask: Ask<'_>, nodes: &[DnsInstance], ttl: u32, dc: &str) -> Answer {
        let mut out = Answer::default();
        let mut seen = HashSet::new();
        // Targets and nodes already in the additional section: instances
        // sharing a node or an address share its records.
        let mut addressed = HashSet::new();
        let mut described = HashSet::new();
        for n in nodes {
            // One past what fits: trimming then sees the cut (TC).
            if out.answers.len() > ask.most {
                break;
            }
            let Some(reach) = records::reach(n, ask.qname) else {
                continue;
            };
            if !seen.insert((&n.node, &n.address, n.port)) {
                continue;
            }
            let (target, ip) = match reach {
                Reach::Node(ip) => (node_name(&n.node, dc, ask.zone), Some(ip)),
                Reach::Own(ip) => (records::addr_name(ip, dc, ask.zone), Some(ip)),
                Reach::Host(host) => (Some(host), None),
            };
            let Some(target) = target else {
                continue;
            };
            if addressed.insert(target.clone()) {
                match ip {
                    Some(ip) => out.additionals.push(addr_record(&target, ttl, ip)),
                    None => {
                        let found = self.resolve(ask, &target, ttl).await;
                        out.additionals.extend(found);
                    }
                }
            }
            let w = &n.weights;
            let weight = if n.status == HealthStatus::Warning {
                w.warning
            } else {
                w.passing
            };
            let srv = SRV::new(1, weight.clamp(0, u16::MAX as i32) as u16, n.port, target);
            out.answers
                .push(Record::from_rdata(ask.qname.clone(), ttl, RData::SRV(srv)));
            if self.config.dns.node_meta_txt && described.insert(&n.node) {
                if let Some(name) = node_name(&n.node, dc, ask.zone) {
                    out.additionals.extend(meta_txt(&name, &n.node_meta, ttl));
                }
            }
        }
        out
    }

    async fn address_records(&self, ask: Ask<'_>, nodes: &[DnsInstance], ttl: u32) -> Answer {
        let mut out = Answer::default();
        let mut seen = HashSet::new();
        // Consul answers a host name only when no instance has an IP, and
        // then with the first host name's CNAME alone.
        let mut cname: Option<Name> = None;
        let limit = self.config.dns.a_record_limit;
        for n in nodes {
            // One past what fits: trimming then sees the cut (TC).
            if out.answers.len() > ask.most {
                break;
            }
            match records::reach(n, ask.qname) {
                Some(Reach::Node(ip) | Reach::Own(ip))
                    if wants(ask.qtype, &ip) && seen.insert(ip) =>
                {
                    out.answers.push(addr_record(ask.qname, ttl, ip));
                    if limit > 0 && out.answers.len() >= limit {
                        break;
                    }
                }
                Some(Reach::Node(_) | Reach::Own(_)) => {}
                Some(Reach::Host(host)) => {
                    cname.get_or_insert(host);
                }
                None => {}
            }
        }
        if out.answers.is_empty() {
            if let Some(host) = cname {
                out.answers.push(cname_record(ask.qname, ttl, &host));
                let found = self.resolve(ask, &host, ttl).await;
                out.answers.extend(found);
            }
        }
        out
    }

    /// The addresses of host name `host` (the target of a CNAME or SRV we
    /// give), as Consul resolves them: inside our domain by answering it
    /// ourselves (at most [`CNAME_DEPTH`] deep, so that services naming
    /// each other cannot loop), elsewhere through the recursors. Nothing
    /// when neither knows it; the client resolves it then.
    fn resolve<'a>(&'a self, ask: Ask<'a>, host: &'a Name, ttl: u32) -> BoxFuture<'a, Vec<Record>> {
        Box::pin(async move {
            let qtype = match ask.qtype {
                RecordType::A | RecordType::AAAA => ask.qtype,
                _ => RecordType::ANY,
            };
            let found = if let Some((zone, labels)) = self.zones.split(host) {
                if ask.depth == 0 {
                    tracing::debug!(name = %host, "DNS: CNAME chain too deep, not followed");
                    return Vec::new();
                }
                let inner = Ask {
                    qname: host,
                    qtype,
                    zone,
                    source: ask.source,
                    depth: ask.depth - 1,
                    most: ask.most,
                };
                self.answer_in_domain(inner, parse_labels(&labels))
                    .await
                    .answers
            } else if self.config.recursors.is_empty() {
                return Vec::new();
            } else {
                // Recursors are asked for what the client asked, A when it
                // asked for something else (an SRV's target).
                let qtype = if qtype == RecordType::ANY {
                    RecordType::A
                } else {
                    qtype
                };
                let Some(raw) = recursor::question(host, qtype) else {
                    return Vec::new();
                };
                let d = &self.config.dns;
                match recursor::ask(
                    &self.config.recursors,
                    d.recursor_strategy,
                    d.recursor_timeout,
                    &raw,
                )
                .await
                {
                    Some(msg) => msg.answers,
                    None => Vec::new(),
                }
            };
            found
                .into_iter()
                .filter(|r| {
                    matches!(
                        r.record_type(),
                        RecordType::A | RecordType::AAAA | RecordType::CNAME
                    )
                })
                .map(|mut r| {
                    r.ttl = ttl;
                    r
                })
                .collect()
        })
    }

    async fn node(&self, ask: Ask<'_>, node: String, dc: Option<String>) -> Answer {
        let ns = match self.read(dc, Query::CatalogNode { node }).await {
            Ok(QueryResult::NodeServices(Some(ns))) => ns,
            Ok(QueryResult::NodeServices(None)) | Err(RequestError::NoPathToDatacenter) => {
                return self.nxdomain(ask.zone).await
            }
            _ => return Answer::code(ResponseCode::ServFail),
        };
        let qtype = ask.qtype;
        if !matches!(
            qtype,
            RecordType::A | RecordType::AAAA | RecordType::ANY | RecordType::TXT
        ) {
            return self.nodata(ask.zone).await;
        }
        let ttl = self.node_ttl();
        let mut out = Answer::default();
        if qtype != RecordType::TXT {
            match address(&ns.node.address) {
                Some(Address::Ip(ip)) if wants(qtype, &ip) => {
                    out.answers.push(addr_record(ask.qname, ttl, ip));
                }
                Some(Address::Host(host)) => {
                    out.answers.push(cname_record(ask.qname, ttl, &host));
                    let found = self.resolve(ask, &host, ttl).await;
                    out.answers.extend(found);
                }
                _ => {}
            }
        }
        let txt = meta_txt(ask.qname, &ns.node.meta, ttl);
        if matches!(qtype, RecordType::TXT | RecordType::ANY) {
            out.answers.extend(txt);
        } else if self.config.dns.node_meta_txt {
            out.additionals.extend(txt);
        }
        if out.answers.is_empty() {
            let mut nodata = self.nodata(ask.zone).await;
            nodata.additionals = out.additionals;
            return nodata;
        }
        out
    }

    /// `<hex>.addr`: the address itself. Asked with the other address
    /// type, the record goes to the additional section, as Consul puts it.
    async fn addr(&self, ask: Ask<'_>, ip: IpAddr) -> Answer {
        let record = addr_record(ask.qname, self.node_ttl(), ip);
        if wants(ask.qtype, &ip) {
            return Answer {
                answers: vec![record],
                ..Default::default()
            };
        }
        let mut nodata = self.nodata(ask.zone).await;
        nodata.additionals.push(record);
        nodata
    }

    /// The domain itself: SOA (with the name servers in the authority
    /// section), NS (the servers, their addresses as glue), or both.
    async fn apex(&self, ask: Ask<'_>) -> Answer {
        let servers = self.servers(ask.zone).await;
        let soa = self.soa_with(ask.zone, servers.first().map(|s| &s.name));
        let ttl = self.node_ttl();
        let mut ns: Vec<Record> = servers
            .iter()
            .map(|s| Record::from_rdata(ask.zone.clone(), ttl, RData::NS(NS(s.name.clone()))))
            .collect();
        ns.shuffle(&mut rand::thread_rng());
        let glue: Vec<Record> = servers.into_iter().filter_map(|s| s.glue).collect();
        match ask.qtype {
            RecordType::SOA => Answer {
                answers: vec![soa],
                authorities: ns,
                additionals: glue,
                ..Default::default()
            },
            RecordType::NS if !ns.is_empty() => Answer {
                answers: ns,
                additionals: glue,
                ..Default::default()
            },
            RecordType::ANY => Answer {
                answers: std::iter::once(soa).chain(ns).collect(),
                additionals: glue,
                ..Default::default()
            },
            _ => Answer {
                authorities: vec![soa],
                ..Default::default()
            },
        }
    }

    /// A reverse name: PTR to the nodes at the address, or when none, to
    /// the services registered with it as their own address (Consul's
    /// order). Not ours: the recursors', else NXDOMAIN.
    async fn ptr(&self, raw: &[u8], qname: &Name, qtype: RecordType) -> Answer {
        let zone = &self.zones.domain;
        let names = match reverse_ip(qname) {
            Some(ip) => match self.ptr_names(ip, zone).await {
                Ok(names) => names,
                Err(e) => {
                    tracing::debug!(error = %e, "DNS: PTR read failed");
                    return Answer::code(ResponseCode::ServFail);
                }
            },
            None => Vec::new(),
        };
        if names.is_empty() {
            if !self.config.recursors.is_empty() {
                return self.recurse(raw).await;
            }
            return self.nxdomain(zone).await;
        }
        if !matches!(qtype, RecordType::PTR | RecordType::ANY) {
            return self.nodata(zone).await;
        }
        Answer {
            answers: names
                .into_iter()
                .map(|n| Record::from_rdata(qname.clone(), 0, RData::PTR(PTR(n))))
                .collect(),
            ..Default::default()
        }
    }

    async fn ptr_names(&self, ip: IpAddr, zone: &Name) -> Result<Vec<Name>, RequestError> {
        let at = |a: &str| a.parse::<IpAddr>().is_ok_and(|a| a == ip);
        let nodes = match self.read(None, Query::CatalogNodes).await? {
            QueryResult::Nodes(n) => n,
            _ => Vec::new(),
        };
        let names: Vec<Name> = nodes
            .iter()
            .filter(|n| at(&n.address))
            .filter_map(|n| node_name(&n.node, self.dc_of(&n.datacenter), zone))
            .collect();
        if !names.is_empty() {
            return Ok(names);
        }
        let instances = match self.read(None, Query::CatalogServiceList).await? {
            QueryResult::ServiceList(s) => s,
            _ => Vec::new(),
        };
        let mut names = Vec::new();
        for s in instances.iter().filter(|s| at(&s.service_address)) {
            let dc = self.dc_of(&s.datacenter);
            if let Some(name) = records::canonical(&s.service_name, "service", dc, zone) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    /// Sends the query to the recursors; the first usable answer wins.
    async fn recurse(&self, raw: &[u8]) -> Answer {
        if self.config.recursors.is_empty() {
            return Answer::code(ResponseCode::Refused);
        }
        let d = &self.config.dns;
        match recursor::ask(
            &self.config.recursors,
            d.recursor_strategy,
            d.recursor_timeout,
            raw,
        )
        .await
        {
            Some(msg) => Answer {
                relayed: true,
                rcode: msg.metadata.response_code,
                answers: msg.answers,
                authorities: msg.authorities,
                additionals: msg.additionals,
            },
            None => Answer {
                relayed: true,
                ..Answer::code(ResponseCode::ServFail)
            },
        }
    }

    async fn answer(&self, request: &Request) -> Answer {
        let source = request.src().ip();
        let Some(q) = request.queries.queries().first() else {
            return Answer::code(ResponseCode::FormErr);
        };
        let qname: Name = q.name().into();
        let qtype = q.query_type();
        if qtype == RecordType::AXFR || qtype == RecordType::IXFR {
            return Answer::code(ResponseCode::NotImp);
        }
        if lookup::is_reverse(&qname) {
            return self.ptr(request.as_slice(), &qname, qtype).await;
        }
        let Some((zone, labels)) = self.zones.split(&qname) else {
            return self.recurse(request.as_slice()).await;
        };
        let udp = request.protocol() == hickory_server::net::xfer::Protocol::Udp;
        let most = match (udp, request.edns.as_ref()) {
            (true, None) => self.config.dns.udp_answer_limit.min(trim::MAX_UDP_ANSWERS),
            (true, Some(e)) => {
                usize::from(e.max_payload()).clamp(512, trim::MAX_UDP_SIZE) / MIN_RECORD_BYTES
            }
            (false, _) => trim::MAX_TCP_SIZE / MIN_RECORD_BYTES,
        }
        .max(1);
        let ask = Ask {
            qname: &qname,
            qtype,
            zone,
            source,
            depth: CNAME_DEPTH,
            most,
        };
        let started = std::time::Instant::now();
        let answer = self.answer_in_domain(ask, parse_labels(&labels)).await;
        self.domain_query.since(started);
        answer
    }

    async fn answer_in_domain(&self, ask: Ask<'_>, lookup: Lookup) -> Answer {
        match lookup {
            Lookup::Apex => self.apex(ask).await,
            Lookup::Invalid => self.nxdomain(ask.zone).await,
            Lookup::Service { name, tag, dc } => self.service(ask, name, tag, dc).await,
            Lookup::Node { node, dc } => self.node(ask, node, dc).await,
            Lookup::Query { name, dc } => self.prepared_query(ask, name, dc).await,
            Lookup::Addr { ip } => self.addr(ask, ip).await,
        }
    }
}

#[cfg(test)]
mod tests;
