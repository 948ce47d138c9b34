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
        let (udp_addr, tcp_addr) = (udp.local_addr()?, tcp.local_addr()?);
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
