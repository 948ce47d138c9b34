//! The transport side: the actor owning the UDP and TCP listeners
//! (hickory-server's `Server`), and the `RequestHandler` that turns an
//! [`Answer`] into the response sent, fitted to the transport the
//! question came by ([`trim`]) with TC set as `enable_truncate` says.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hickory_proto::op::{Edns, Message, Metadata, Query as DnsQuery, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo, Server};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::{trim, Answer, DnsHandler, Zones};
use crate::actors::node::router::ReadPath;
use crate::config::RuntimeConfig;

/// The size of the response `request` would get with these sections, or
/// a bound on it no greater than `max` (all that trimming asks is
/// whether it is over `max`).
fn encoded_len(
    request: &Request,
    edns: Option<&Edns>,
    answers: &[Record],
    authorities: &[Record],
    additionals: &[Record],
    max: usize,
) -> usize {
    // Header, questions, and an OPT record without options.
    let fixed = 12
        + request
            .queries
            .queries()
            .iter()
            .map(|q| trim::name_len(&q.name().into()) + 4)
            .sum::<usize>()
        + if edns.is_some() { 11 } else { 0 };
    let bound = [answers, authorities, additionals]
        .into_iter()
        .map(trim::wire_bound)
        .sum::<Option<usize>>();
    if let Some(b) = bound.map(|b| b + fixed).filter(|b| *b <= max) {
        return b;
    }
    let mut m = Message::response(request.metadata.id, request.metadata.op_code);
    for q in request.queries.queries() {
        m.add_query(DnsQuery::query(q.name().into(), q.query_type()));
    }
    m.answers = answers.to_vec();
    m.authorities = authorities.to_vec();
    m.additionals = additionals.to_vec();
    if let Some(e) = edns {
        m.set_edns(e.clone());
    }
    // Unencodable is not too big: the transport's encoder reports it.
    m.to_vec().map(|v| v.len()).unwrap_or(0)
}

impl DnsHandler {
    /// Fits `answer` to the transport `request` came by; whether answers
    /// were cut.
    fn fit(&self, request: &Request, edns: Option<&Edns>, answer: &mut Answer) -> bool {
        let udp = request.protocol() == hickory_server::net::xfer::Protocol::Udp;
        let srv = request
            .queries
            .queries()
            .first()
            .is_some_and(|q| q.query_type() == RecordType::SRV);
        let limits = match (udp, edns) {
            // `udp_answer_limit` is for plain UDP only, as in Consul.
            (true, None) => trim::Limits {
                max_answers: Some(self.config.dns.udp_answer_limit.min(trim::MAX_UDP_ANSWERS)),
                max_bytes: 512,
            },
            (true, Some(e)) => trim::Limits {
                max_answers: None,
                max_bytes: usize::from(e.max_payload()).clamp(512, trim::MAX_UDP_SIZE),
            },
            // Over 1024 SRV or 4096 other records never fit 64 KiB:
            // Consul cuts there before measuring.
            (false, _) => trim::Limits {
                max_answers: Some(if srv { 1024 } else { 4096 }),
                max_bytes: trim::MAX_TCP_SIZE,
            },
        };
        trim::trim(
            trim::Sections {
                answers: &mut answer.answers,
                authorities: &mut answer.authorities,
                additionals: &mut answer.additionals,
            },
            limits,
            |a, n, d| encoded_len(request, edns, a, n, d, limits.max_bytes),
        )
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
        let edns = request.edns.as_ref().map(|e| {
            let mut out = Edns::new();
            out.set_max_payload(e.max_payload().max(512));
            out
        });
        // What recursors answered goes back as they sent it.
        let cut = !answer.relayed && self.fit(request, edns.as_ref(), &mut answer);
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.authoritative = !answer.relayed;
        meta.recursion_available = !self.config.recursors.is_empty();
        meta.response_code = answer.rcode;
        // Consul sets TC on a cut answer only when told to: by default a
        // client silently gets the answers that fit.
        meta.truncation = cut && self.config.dns.enable_truncate;
        let mut builder = MessageResponseBuilder::from_message_request(request);
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

/// Most threads answering DNS. Each holds a UDP socket of its own on the
/// same address; past a few, the load generator or the kernel is what
/// limits a loopback benchmark, and each thread is one more stack.
const MAX_THREADS: usize = 8;

/// How many threads answer DNS on each address: one per core (up to
/// [`MAX_THREADS`]). DNS ran on the agent's main thread with the actors
/// before, where every query queued behind gossip, Raft and the HTTP
/// hand-offs (issue 18).
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_THREADS)
}

/// The sockets of one DNS address: a UDP socket per answering thread,
/// all bound to the same port with `SO_REUSEPORT` (the kernel hashes each
/// client's flow to one of them), and one TCP listener.
pub struct Sockets {
    udp: Vec<std::net::UdpSocket>,
    tcp: std::net::TcpListener,
}

impl Sockets {
    pub fn udp_addr(&self) -> std::io::Result<SocketAddr> {
        match self.udp.first() {
            Some(u) => u.local_addr(),
            None => self.tcp.local_addr(),
        }
    }
}

/// A nonblocking UDP socket on `addr` that other sockets of this process's
/// user may share (`SO_REUSEPORT`).
fn shared_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// UDP (`threads` sockets) and TCP on one port. With port 0 the first UDP
/// socket picks the port and TCP may find it taken by someone else's TCP
/// listener: pick again. The agent binds with this before it shares its
/// config, so that the config can name the port bound.
pub fn bind_pair(addr: SocketAddr, threads: usize) -> std::io::Result<Sockets> {
    let mut tries = 0;
    loop {
        let first = shared_udp(addr)?;
        let local = first.local_addr()?;
        match std::net::TcpListener::bind(local) {
            Ok(tcp) => {
                tcp.set_nonblocking(true)?;
                let mut udp = vec![first];
                for _ in 1..threads.max(1) {
                    udp.push(shared_udp(local)?);
                }
                return Ok(Sockets { udp, tcp });
            }
            Err(e) if addr.port() == 0 && tries < 8 => {
                tries += 1;
                tracing::debug!(error = %e, "DNS: TCP port taken, picking another");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Owns the DNS listeners of one answering thread; stopping the actor
/// stops them.
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
    /// the same) and starts serving. Returns the UDP and TCP addresses
    /// bound.
    pub fn start(
        config: Arc<RuntimeConfig>,
        reads: Arc<dyn ReadPath>,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, SocketAddr)> {
        Self::serve(config, reads, bind_pair(addr, threads())?)
    }

    /// Starts serving on sockets bound by [`bind_pair`]: a thread (an
    /// arbiter) per UDP socket, the first also serving TCP. Each answers
    /// on its own thread from the shared store through `reads` (the
    /// router's local read takes the store's read lock; no actor is
    /// asked). Returns the UDP and TCP addresses.
    pub fn serve(
        config: Arc<RuntimeConfig>,
        reads: Arc<dyn ReadPath>,
        sockets: Sockets,
    ) -> std::io::Result<(SocketAddr, SocketAddr)> {
        let zone = |d: &str| {
            Name::from_ascii(d).map(|n| n.to_lowercase()).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("domain {d:?}: {e}"),
                )
            })
        };
        let zones = Zones {
            domain: zone(&config.domain)?,
            alt: config.alt_domain.as_deref().map(zone).transpose()?,
        };
        let (udp_addr, tcp_addr) = (sockets.udp_addr()?, sockets.tcp.local_addr()?);
        let domain_query = crate::metrics::global().summary_with(
            "dns.domain_query",
            vec![("node".into(), config.node_name.clone())],
        );
        let handler = DnsHandler {
            config,
            zones,
            reads,
            domain_query,
            servers_seen: Default::default(),
        };
        let mut tcp = Some(sockets.tcp);
        for udp in sockets.udp {
            let (handler, tcp) = (handler.clone(), tcp.take());
            let arbiter = Arbiter::new();
            // The sockets are made tokio's inside the arbiter: a tokio
            // socket stays with the runtime that made it, whose thread
            // would then wake for every packet.
            DnsActor::start_in_arbiter(&arbiter.handle(), move |_| {
                let mut server = Server::new(handler);
                match tokio::net::UdpSocket::from_std(udp) {
                    Ok(u) => server.register_socket(u),
                    Err(e) => tracing::error!(error = %e, "DNS: UDP socket not served"),
                }
                if let Some(t) = tcp {
                    match tokio::net::TcpListener::from_std(t) {
                        Ok(t) => server.register_listener(t, Duration::from_secs(5), 64 * 1024),
                        Err(e) => tracing::error!(error = %e, "DNS: TCP listener not served"),
                    }
                }
                DnsActor {
                    server: Some(server),
                }
            });
        }
        tracing::info!(udp = %udp_addr, tcp = %tcp_addr, threads = threads(), "DNS listening");
        Ok((udp_addr, tcp_addr))
    }
}
