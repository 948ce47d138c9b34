//! The `Dns` actor: Consul's DNS interface on UDP and TCP (hickory-server's
//! transport). It owns the listener; every lookup is a read through the
//! request path (the router), so datacenter forwarding and the fast local
//! read are shared with HTTP.
//!
//! Names under the domain: `NAME.service[.DC].consul`, `TAG.NAME.service`,
//! RFC 2782 `_NAME._tcp|_TAG.service` (the `service` label may be left out
//! for SRV), `NODE.node[.DC].consul`, prepared queries
//! `NAME.query[.DC].consul` (with their failover and `DNS.TTL`); a
//! trailing `.dc` label is allowed
//! after the datacenter. Critical instances are left out (warning ones too
//! with `only_passing`), answers are shuffled, unknown names get NXDOMAIN
//! with the SOA. UDP answers without EDNS hold at most `udp_answer_limit`
//! records and 512 bytes (hickory sets TC when it has to cut more); EDNS
//! raises the size limit; TCP answers are complete. Names outside the
//! domain go to the recursors, or are REFUSED when there are none.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hickory_proto::op::{Edns, Message, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo, Server};
use hickory_server::zone_handler::MessageResponseBuilder;
use rand::seq::SliceRandom;

use crate::actors::node::router::ReadPath;
use crate::config::RuntimeConfig;
use crate::state::query::{Query, QueryResult};
use crate::state::structs::{CheckServiceNode, HealthStatus};
use crate::structs::prepared_query::ExecuteOptions;
use crate::structs::{Consistency, QueryOptions, ReadRequest, RequestError};

/// What a name under our domain asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Service {
        name: String,
        tag: Option<String>,
        dc: Option<String>,
    },
    Node {
        node: String,
        dc: Option<String>,
    },
    /// A prepared query by name or ID (`NAME.query[.DC]`).
    Query {
        name: String,
        dc: Option<String>,
    },
    /// The domain itself (SOA, NS).
    Apex,
    /// In our domain but not a name we know how to answer.
    Invalid,
}

/// What a query name asks of `domain`, or None when the name is outside
/// it (a question for the recursors).
pub fn lookup_in(domain: &Name, qname: &Name) -> Option<Lookup> {
    let lower = qname.to_lowercase();
    if !domain.zone_of(&lower) {
        return None;
    }
    let own = lower.num_labels().saturating_sub(domain.num_labels()) as usize;
    let labels: Vec<String> = lower
        .iter()
        .take(own)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    Some(parse_labels(&labels))
}

/// Parses the labels in front of the domain (lowercased, domain removed).
pub fn parse_labels(labels: &[String]) -> Lookup {
    let n = labels.len();
    if n == 0 {
        return Lookup::Apex;
    }
    // Find the type label and the optional datacenter after it.
    let kind = |l: &str| matches!(l, "service" | "node" | "query");
    let (kind_at, dc) = if kind(&labels[n - 1]) {
        (Some(n - 1), None)
    } else if n >= 2 && kind(&labels[n - 2]) {
        (Some(n - 2), Some(labels[n - 1].clone()))
    } else if n >= 3 && labels[n - 1] == "dc" && kind(&labels[n - 3]) {
        (Some(n - 3), Some(labels[n - 2].clone()))
    } else {
        (None, None)
    };
    let Some(at) = kind_at else {
        // `_name._tcp.consul`: the service label may be left out for SRV.
        if n == 2 && labels[0].starts_with('_') && labels[1].starts_with('_') {
            return rfc2782(&labels[0], &labels[1], None);
        }
        return Lookup::Invalid;
    };
    let rest = &labels[..at];
    if rest.is_empty() {
        return Lookup::Invalid;
    }
    match labels[at].as_str() {
        "node" => Lookup::Node {
            node: rest.join("."),
            dc,
        },
        // `_NAME._tcp.query` names the query NAME; otherwise the labels
        // are the name, dots and all (Consul joins them).
        "query" => {
            let name = if rest.len() == 2 && rest[0].starts_with('_') && rest[1].starts_with('_') {
                rest[0].trim_start_matches('_').to_string()
            } else {
                rest.join(".")
            };
            if name.is_empty() {
                return Lookup::Invalid;
            }
            Lookup::Query { name, dc }
        }
        _ => {
            if rest.len() == 2 && rest[0].starts_with('_') && rest[1].starts_with('_') {
                return rfc2782(&rest[0], &rest[1], dc);
            }
            let name = rest[rest.len() - 1].clone();
            // Everything before the last label is the tag (tags may hold dots).
            let tag = (rest.len() > 1).then(|| rest[..rest.len() - 1].join("."));
            Lookup::Service { name, tag, dc }
        }
    }
}

fn rfc2782(service: &str, proto: &str, dc: Option<String>) -> Lookup {
    let name = service.trim_start_matches('_').to_string();
    let proto = proto.trim_start_matches('_');
    let tag = (!matches!(proto, "tcp" | "udp")).then(|| proto.to_string());
    if name.is_empty() {
        return Lookup::Invalid;
    }
    Lookup::Service { name, tag, dc }
}

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

#[derive(Clone)]
struct DnsHandler {
    config: Arc<RuntimeConfig>,
    domain: Name,
    reads: Arc<dyn ReadPath>,
    /// Consul's `dns.domain_query` timer, labelled with this node.
    domain_query: crate::metrics::Summary,
}

static STALE_QUERIES: crate::metrics::Static<crate::metrics::Counter> =
    crate::metrics::counter("dns.stale_queries");

impl DnsHandler {
    fn soa(&self) -> Record {
        let d = &self.config.dns;
        let ns = Name::from_ascii("ns")
            .and_then(|n| n.append_domain(&self.domain))
            .unwrap_or_else(|_| self.domain.clone());
        let host = Name::from_ascii("hostmaster")
            .and_then(|n| n.append_domain(&self.domain))
            .unwrap_or_else(|_| self.domain.clone());
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
        Record::from_rdata(self.domain.clone(), d.soa_min_ttl, RData::SOA(soa))
    }

    fn nxdomain(&self) -> Answer {
        Answer {
            rcode: ResponseCode::NXDomain,
            authorities: vec![self.soa()],
            ..Default::default()
        }
    }

    /// NOERROR with no answer: the name exists, not with this type.
    fn nodata(&self) -> Answer {
        Answer {
            rcode: ResponseCode::NoError,
            authorities: vec![self.soa()],
            ..Default::default()
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
        let consistency = if self.config.dns.allow_stale {
            Consistency::Stale
        } else {
            Consistency::Default
        };
        let req = ReadRequest {
            opts: QueryOptions {
                dc,
                consistency,
                ..Default::default()
            },
            query,
        };
        let resp = self.reads.read(req).await?;
        // Consul counts answers from a server that has not heard from its
        // leader for over 5 s (its `staleCounterThreshold`).
        if self.config.dns.allow_stale && resp.meta.last_contact_ms > 5_000 {
            STALE_QUERIES.get().inc();
        }
        Ok(resp.result)
    }

    fn addr_record(name: &Name, ttl: u32, ip: IpAddr) -> Record {
        match ip {
            IpAddr::V4(v4) => Record::from_rdata(name.clone(), ttl, RData::A(A(v4))),
            IpAddr::V6(v6) => Record::from_rdata(name.clone(), ttl, RData::AAAA(AAAA(v6))),
        }
    }

    fn wants(qtype: RecordType, ip: &IpAddr) -> bool {
        matches!(
            (qtype, ip),
            (RecordType::A, IpAddr::V4(_))
                | (RecordType::AAAA, IpAddr::V6(_))
                | (RecordType::ANY, _)
        )
    }

    async fn service(
        &self,
        qname: &Name,
        qtype: RecordType,
        name: String,
        tag: Option<String>,
        dc: Option<String>,
    ) -> Answer {
        let tags = tag.into_iter().collect();
        let result = self
            .read(
                dc.clone(),
                Query::HealthService {
                    name: name.clone(),
                    tags,
                    passing: false,
                },
            )
            .await;
        let mut nodes: Vec<CheckServiceNode> = match result {
            Ok(QueryResult::CheckServiceNodes(n)) => n,
            Ok(_) => return Answer::code(ResponseCode::ServFail),
            Err(RequestError::NoPathToDatacenter) => return self.nxdomain(),
            Err(_) => return Answer::code(ResponseCode::ServFail),
        };
        let only_passing = self.config.dns.only_passing;
        nodes.retain(|n| match n.aggregate_status() {
            HealthStatus::Critical => false,
            HealthStatus::Warning => !only_passing,
            _ => true,
        });
        if nodes.is_empty() {
            return self.nxdomain();
        }
        nodes.shuffle(&mut rand::thread_rng());
        let ttl = self.service_ttl(&name);
        let dc = dc.unwrap_or_else(|| self.config.datacenter.clone());
        self.records(qname, qtype, &nodes, ttl, &dc)
    }

    /// A prepared query's answer: its instances (already filtered and
    /// ordered by the query, from whichever datacenter answered), with
    /// the query's `DNS.TTL`, else the service's TTL.
    async fn prepared_query(
        &self,
        qname: &Name,
        qtype: RecordType,
        name: String,
        dc: Option<String>,
        source: IpAddr,
    ) -> Answer {
        let opts = ExecuteOptions {
            agent_node: self.config.node_name.clone(),
            source_ip: source.to_string(),
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
            | Err(RequestError::NoPathToDatacenter) => return self.nxdomain(),
            _ => return Answer::code(ResponseCode::ServFail),
        };
        if exec.nodes.is_empty() {
            return self.nxdomain();
        }
        let ttl = exec
            .query
            .dns_ttl_secs()
            .unwrap_or_else(|| self.service_ttl(&exec.query.service.service));
        let dc = match exec.datacenter.as_str() {
            "" => asked.unwrap_or_else(|| self.config.datacenter.clone()),
            answered => answered.to_string(),
        };
        self.records(qname, qtype, &exec.nodes, ttl, &dc)
    }

    /// The records for instances of one service in datacenter `dc`: A or
    /// AAAA per distinct address, or SRV with the node's address in the
    /// additional section.
    fn records(
        &self,
        qname: &Name,
        qtype: RecordType,
        nodes: &[CheckServiceNode],
        ttl: u32,
        dc: &str,
    ) -> Answer {
        let mut out = Answer::default();
        let mut seen = std::collections::HashSet::new();
        for n in nodes {
            let addr = if n.service.address.is_empty() {
                &n.node.address
            } else {
                &n.service.address
            };
            // Hostname addresses would need a CNAME and resolution; left out.
            let Ok(ip) = addr.parse::<IpAddr>() else {
                continue;
            };
            match qtype {
                RecordType::SRV => {
                    if !seen.insert((n.node.node.clone(), ip, n.service.port)) {
                        continue;
                    }
                    let target = format!("{}.node.{}", n.node.node, dc);
                    let Ok(target) =
                        Name::from_ascii(&target).and_then(|t| t.append_domain(&self.domain))
                    else {
                        continue;
                    };
                    let w = &n.service.weights;
                    let weight = if n.aggregate_status() == HealthStatus::Warning {
                        w.warning
                    } else {
                        w.passing
                    };
                    let srv = SRV::new(
                        1,
                        weight.clamp(0, u16::MAX as i32) as u16,
                        n.service.port,
                        target.clone(),
                    );
                    out.answers
                        .push(Record::from_rdata(qname.clone(), ttl, RData::SRV(srv)));
                    out.additionals.push(Self::addr_record(&target, ttl, ip));
                }
                _ => {
                    if Self::wants(qtype, &ip) && seen.insert((String::new(), ip, 0)) {
                        out.answers.push(Self::addr_record(qname, ttl, ip));
                    }
                }
            }
        }
        if out.answers.is_empty() {
            return self.nodata();
        }
        out
    }

    async fn node(
        &self,
        qname: &Name,
        qtype: RecordType,
        node: String,
        dc: Option<String>,
    ) -> Answer {
        match self.read(dc, Query::CatalogNode { node }).await {
            Ok(QueryResult::NodeServices(Some(ns))) => {
                let Ok(ip) = ns.node.address.parse::<IpAddr>() else {
                    return self.nodata();
                };
                if !Self::wants(qtype, &ip) {
                    return self.nodata();
                }
                let ttl = self.config.dns.node_ttl.as_secs() as u32;
                Answer {
                    answers: vec![Self::addr_record(qname, ttl, ip)],
                    ..Default::default()
                }
            }
            Ok(QueryResult::NodeServices(None)) | Err(RequestError::NoPathToDatacenter) => {
                self.nxdomain()
            }
            _ => Answer::code(ResponseCode::ServFail),
        }
    }

    /// Sends the query to each recursor in turn; the first answer wins.
    async fn recurse(&self, raw: &[u8]) -> Answer {
        if self.config.recursors.is_empty() {
            return Answer::code(ResponseCode::Refused);
        }
        for r in &self.config.recursors {
            let addr: SocketAddr = match r.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => match r.parse::<IpAddr>() {
                    Ok(ip) => SocketAddr::new(ip, 53),
                    Err(_) => continue,
                },
            };
            match tokio::time::timeout(self.config.dns.recursor_timeout, exchange(addr, raw)).await
            {
                Ok(Ok(msg)) => {
                    return Answer {
                        relayed: true,
                        rcode: msg.metadata.response_code,
                        answers: msg.answers,
                        authorities: msg.authorities,
                        additionals: msg.additionals,
                    };
                }
                Ok(Err(e)) => tracing::debug!(recursor = %addr, error = %e, "recursor failed"),
                Err(_) => tracing::debug!(recursor = %addr, "recursor timed out"),
            }
        }
        Answer {
            relayed: true,
            ..Answer::code(ResponseCode::ServFail)
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
        let Some(lookup) = lookup_in(&self.domain, &qname) else {
            return self.recurse(request.as_slice()).await;
        };
        let started = std::time::Instant::now();
        let answer = self.answer_in_domain(&qname, qtype, lookup, source).await;
        self.domain_query.since(started);
        answer
    }

    async fn answer_in_domain(
        &self,
        qname: &Name,
        qtype: RecordType,
        lookup: Lookup,
        source: IpAddr,
    ) -> Answer {
        match lookup {
            Lookup::Apex => match qtype {
                RecordType::SOA | RecordType::ANY => Answer {
                    answers: vec![self.soa()],
                    ..Default::default()
                },
                _ => self.nodata(),
            },
            Lookup::Invalid => self.nxdomain(),
            Lookup::Service { name, tag, dc } => self.service(qname, qtype, name, tag, dc).await,
            Lookup::Node { node, dc } => self.node(qname, qtype, node, dc).await,
            Lookup::Query { name, dc } => self.prepared_query(qname, qtype, name, dc, source).await,
        }
    }
}

/// One UDP round trip to a recursor. The socket is connected, so only the
/// recursor's datagrams are received, and a reply must carry our query's ID.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Message> {
    let bind: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(bind).await?;
    sock.connect(addr).await?;
    sock.send(raw).await?;
    let id = raw.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        match Message::from_vec(&buf[..n]) {
            Ok(m) if Some(m.metadata.id) == id => return Ok(m),
            // A stray or mismatched datagram: keep waiting (the caller's timeout bounds this).
            _ => continue,
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: hickory_server::net::runtime::Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut answer = self.answer(request).await;
        let udp = request.protocol() == hickory_server::net::xfer::Protocol::Udp;
        // Consul's udp_answer_limit applies to plain (non-EDNS) UDP queries.
        if udp && request.edns.is_none() && answer.answers.len() > self.config.dns.udp_answer_limit
        {
            answer
                .answers
                .truncate(self.config.dns.udp_answer_limit.max(1));
            answer
                .additionals
                .truncate(self.config.dns.udp_answer_limit.max(1));
        }
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.authoritative = !answer.relayed;
        meta.recursion_available = !self.config.recursors.is_empty();
        meta.response_code = answer.rcode;
        let mut builder = MessageResponseBuilder::from_message_request(request);
        let edns = request.edns.as_ref().map(|e| {
            let mut out = Edns::new();
            out.set_max_payload(e.max_payload().max(512));
            out
        });
        if let Some(e) = &edns {
            builder.edns(e);
        }
        let response = builder.build(
            meta,
            answer.answers.iter(),
            answer.authorities.iter(),
            std::iter::empty(),
            answer.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "DNS response not sent");
                let mut m = Metadata::response_from_request(&request.metadata);
                m.response_code = ResponseCode::ServFail;
                ResponseInfo::from(hickory_proto::op::Header {
                    metadata: m,
                    counts: Default::default(),
                })
            }
        }
    }
}

/// UDP and TCP on one port. With port 0 the UDP socket picks the port and
/// TCP may find it taken by someone else's TCP listener: pick again.
/// The agent binds with this before it shares its config, so that the
/// config can name the port bound.
pub async fn bind_pair(
    addr: SocketAddr,
) -> std::io::Result<(tokio::net::UdpSocket, tokio::net::TcpListener)> {
    let mut tries = 0;
    loop {
        let udp = tokio::net::UdpSocket::bind(addr).await?;
        match tokio::net::TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 && tries < 8 => {
                tries += 1;
                tracing::debug!(error = %e, "DNS: TCP port taken, picking another");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Owns the DNS listeners of one address; stopping the actor stops them.
pub struct DnsActor {
    server: Option<Server<DnsHandler>>,
}

impl Actor for DnsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(mut server) = self.server.take() {
            ctx.spawn(
                async move {
                    if let Err(e) = server.block_until_done().await {
                        tracing::error!(error = %e, "DNS server stopped");
                    }
                }
                .into_actor(self),
            );
        }
    }
}

impl DnsActor {
    /// Binds UDP and TCP on `addr` (port 0: UDP picks a port, TCP takes
    /// the same) and starts serving. Returns the actor and the UDP and TCP
    /// addresses bound.
    pub async fn start(
        config: Arc<RuntimeConfig>,
        reads: Arc<dyn ReadPath>,
        addr: SocketAddr,
    ) -> std::io::Result<(Addr<DnsActor>, SocketAddr, SocketAddr)> {
        let (udp, tcp) = bind_pair(addr).await?;
        Self::serve(config, reads, udp, tcp)
    }

    /// Starts serving on sockets bound by [`bind_pair`]. Returns the actor
    /// and the UDP and TCP addresses.
    pub fn serve(
        config: Arc<RuntimeConfig>,
        reads: Arc<dyn ReadPath>,
        udp: tokio::net::UdpSocket,
        tcp: tokio::net::TcpListener,
    ) -> std::io::Result<(Addr<DnsActor>, SocketAddr, SocketAddr)> {
        let domain = Name::from_ascii(&config.domain).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("domain {:?}: {e}", config.domain),
            )
        })?;
        let (udp_addr, tcp_addr) = (udp.local_addr()?, tcp.local_addr()?);
        let domain_query = crate::metrics::global().summary_with(
            "dns.domain_query",
            vec![("node".into(), config.node_name.clone())],
        );
        let handler = DnsHandler {
            config,
            domain: domain.to_lowercase(),
            reads,
            domain_query,
        };
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
        tracing::info!(udp = %udp_addr, tcp = %tcp_addr, "DNS listening");
        Ok((
            DnsActor {
                server: Some(server),
            }
            .start(),
            udp_addr,
            tcp_addr,
        ))
    }
}

#[cfg(test)]
mod tests;
