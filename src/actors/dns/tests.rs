//! Name parsing, and answers checked with a real DNS client over UDP and
//! TCP against the actor fed by a state store.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Edns, Message, Query as DnsQuery, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::*;
use crate::state::structs::{HealthCheck, NodeService, RegisterRequest};
use crate::state::StateStore;
use crate::structs::{QueryMeta, ReadResponse};
use lookup::{hex_ip, ip_hex};

fn labels(s: &str) -> Vec<String> {
    s.split('.')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn parses_consul_names() {
    let svc = |name: &str, tag: Option<&str>, dc: Option<&str>| Lookup::Service {
        name: name.into(),
        tag: tag.map(Into::into),
        dc: dc.map(Into::into),
    };
    assert_eq!(parse_labels(&labels("web.service")), svc("web", None, None));
    assert_eq!(
        parse_labels(&labels("primary.web.service")),
        svc("web", Some("primary"), None)
    );
    assert_eq!(
        parse_labels(&labels("v1.2.web.service")),
        svc("web", Some("v1.2"), None)
    );
    assert_eq!(
        parse_labels(&labels("web.service.dc2")),
        svc("web", None, Some("dc2"))
    );
    assert_eq!(
        parse_labels(&labels("web.service.dc2.dc")),
        svc("web", None, Some("dc2"))
    );
    assert_eq!(
        parse_labels(&labels("_web._tcp.service")),
        svc("web", None, None)
    );
    assert_eq!(
        parse_labels(&labels("_web._primary.service.dc3")),
        svc("web", Some("primary"), Some("dc3"))
    );
    assert_eq!(parse_labels(&labels("_web._tcp")), svc("web", None, None));
    assert_eq!(
        parse_labels(&labels("n1.node")),
        Lookup::Node {
            node: "n1".into(),
            dc: None
        }
    );
    assert_eq!(
        parse_labels(&labels("n1.example.node.dc1")),
        Lookup::Node {
            node: "n1.example".into(),
            dc: Some("dc1".into())
        }
    );
    let q = |name: &str, dc: Option<&str>| Lookup::Query {
        name: name.into(),
        dc: dc.map(Into::into),
    };
    assert_eq!(parse_labels(&labels("webq.query")), q("webq", None));
    assert_eq!(
        parse_labels(&labels("webq.query.dc2")),
        q("webq", Some("dc2"))
    );
    assert_eq!(parse_labels(&labels("_webq._tcp.query")), q("webq", None));
    assert_eq!(parse_labels(&labels("a.b.query")), q("a.b", None));
    assert_eq!(parse_labels(&labels("query")), Lookup::Invalid);
    assert_eq!(parse_labels(&[]), Lookup::Apex);
    assert_eq!(parse_labels(&labels("service")), Lookup::Invalid);
    assert_eq!(parse_labels(&labels("what.ever")), Lookup::Invalid);
}

/// A stand-in for the router: answers reads from a state store. Stale
/// reads report `stale_contact_ms` since the leader was heard from; the
/// consistency of every read is kept in `seen`.
struct FakeReads {
    store: Arc<Mutex<StateStore>>,
    stale_contact_ms: u64,
    seen: Arc<Mutex<Vec<Consistency>>>,
}

impl ReadPath for FakeReads {
    fn read(
        &self,
        req: ReadRequest,
    ) -> futures::future::BoxFuture<'static, Result<ReadResponse, RequestError>> {
        self.seen.lock().unwrap().push(req.opts.consistency);
        let answer = if req.opts.dc.as_deref().is_some_and(|d| d != "dc1") {
            Err(RequestError::NoPathToDatacenter)
        } else {
            let s = self.store.lock().unwrap();
            let (index, result) = crate::state::query::execute(&s, &req.query, None);
            let last_contact_ms = if req.opts.consistency == Consistency::Stale {
                self.stale_contact_ms
            } else {
                0
            };
            Ok(ReadResponse {
                meta: QueryMeta {
                    index,
                    last_contact_ms,
                    ..Default::default()
                },
                result,
            })
        };
        Box::pin(async move { answer })
    }
}

fn register(
    s: &mut StateStore,
    idx: u64,
    node: &str,
    addr: &str,
    svc_addr: &str,
    status: HealthStatus,
) {
    let req = RegisterRequest {
        node: node.into(),
        address: addr.into(),
        service: Some(NodeService {
            id: "web".into(),
            service: "web".into(),
            tags: vec!["primary".into()],
            port: 80,
            address: svc_addr.into(),
            ..Default::default()
        }),
        checks: vec![HealthCheck {
            check_id: "web-check".into(),
            service_id: "web".into(),
            status,
            ..Default::default()
        }],
        ..Default::default()
    };
    s.ensure_registration(idx, &req).unwrap();
}

/// Registers `service` (name, address, port; ID = name) on `node`, with
/// the node's meta, passing.
fn add(
    s: &mut StateStore,
    idx: u64,
    node: &str,
    addr: &str,
    meta: &[(&str, &str)],
    service: (&str, &str, u16),
) {
    let (name, svc_addr, port) = service;
    let req = RegisterRequest {
        node: node.into(),
        address: addr.into(),
        node_meta: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        service: Some(NodeService {
            id: name.into(),
            service: name.into(),
            port,
            address: svc_addr.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    s.ensure_registration(idx, &req).unwrap();
}

/// The catalog every test answers from: `web` on n1..n3, m4..m7 and v6
/// (n2 critical, n3 warning), the prepared query `webq`, and for the
/// newer records: `api` on a1 with an address of its own and on a2 at
/// the node's address, `api6` with an IPv6 address of its own, node a1's
/// meta, `ext` on h1 whose address is a host name, `alias` whose address
/// is `api.service.consul`, and two servers (the `consul` service).
fn catalog() -> StateStore {
    let mut s = StateStore::new();
    register(&mut s, 1, "n1", "10.0.0.1", "", HealthStatus::Passing);
    register(&mut s, 2, "n2", "10.0.0.2", "", HealthStatus::Critical);
    register(&mut s, 3, "n3", "10.0.0.3", "", HealthStatus::Warning);
    for i in 4..8 {
        register(
            &mut s,
            i,
            &format!("m{i}"),
            &format!("10.0.1.{i}"),
            "",
            HealthStatus::Passing,
        );
    }
    register(&mut s, 9, "v6", "10.0.0.9", "", HealthStatus::Passing);
    let webq = crate::structs::prepared_query::PreparedQuery {
        id: "6f1c5a5e-0000-4000-8000-000000000001".into(),
        name: "webq".into(),
        service: crate::structs::prepared_query::ServiceQuery {
            service: "web".into(),
            only_passing: true,
            ..Default::default()
        },
        dns: crate::structs::prepared_query::QueryDns { ttl: "7s".into() },
        ..Default::default()
    };
    s.prepared_query_set(10, webq, true).unwrap();
    let meta = [("rack", "r1"), ("rfc1035-raw", "as is")];
    add(
        &mut s,
        11,
        "a1",
        "10.0.2.1",
        &meta,
        ("api", "10.0.2.100", 8080),
    );
    add(&mut s, 12, "a2", "10.0.2.2", &[], ("api", "10.0.2.2", 8081));
    add(
        &mut s,
        13,
        "a1",
        "10.0.2.1",
        &meta,
        ("api6", "2001:db8::1", 8082),
    );
    add(&mut s, 14, "h1", "db.example.com", &[], ("ext", "", 5432));
    add(
        &mut s,
        15,
        "a1",
        "10.0.2.1",
        &meta,
        ("alias", "api.service.consul", 9000),
    );
    add(&mut s, 16, "s2", "10.0.9.2", &[], ("consul", "", 8300));
    add(&mut s, 17, "s1", "10.0.9.1", &[], ("consul", "", 8300));
    s
}

async fn start(recursors: Vec<String>) -> SocketAddr {
    start_with(RuntimeConfig {
        recursors,
        ..Default::default()
    })
    .await
}

async fn start_with(config: RuntimeConfig) -> SocketAddr {
    start_reads(config, 0).await.0
}

/// A server whose stale reads report `stale_contact_ms`; with the log of
/// the consistency of each read.
async fn start_reads(
    config: RuntimeConfig,
    stale_contact_ms: u64,
) -> (SocketAddr, Arc<Mutex<Vec<Consistency>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reads = Arc::new(FakeReads {
        store: Arc::new(Mutex::new(catalog())),
        stale_contact_ms,
        seen: seen.clone(),
    });
    let (udp, _) =
        DnsActor::start(Arc::new(config), reads, "127.0.0.1:0".parse().unwrap()).unwrap();
    (udp, seen)
}

fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = rand::random();
    m.metadata.recursion_desired = true;
    m.add_query(DnsQuery::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(4096);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

async fn udp(server: SocketAddr, name: &str, qtype: RecordType, edns: bool) -> Message {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&query(name, qtype, edns), server)
        .await
        .unwrap();
    let mut buf = vec![0; 65535];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .expect("answer in time")
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

async fn tcp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
    let q = query(name, qtype, false);
    s.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
    s.write_all(&q).await.unwrap();
    let len = s.read_u16().await.unwrap() as usize;
    let mut buf = vec![0; len];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn ips(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[actix_rt::test]
async fn service_answers_leave_out_critical_and_respect_limits() {
    let server = start(vec![]).await;
    // 7 healthy-enough instances (n2 is critical); plain UDP caps at 3.
    let m = udp(server, "web.service.consul.", RecordType::A, false).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(m.answers.len(), 3);
    assert!(!ips(&m).contains(&"10.0.0.2".to_string()));
    // EDNS and TCP give every instance.
    let m = udp(server, "web.service.consul.", RecordType::A, true).await;
    assert_eq!(m.answers.len(), 7);
    assert!(m.edns.is_some(), "EDNS is echoed");
    let m = tcp(server, "WEB.service.consul.", RecordType::A).await;
    assert_eq!(m.answers.len(), 7, "case-insensitive, full over TCP");
    assert!(!ips(&m).contains(&"10.0.0.2".to_string()));
}

#[actix_rt::test]
async fn srv_carries_targets_and_addresses() {
    let server = start(vec![]).await;
    let m = udp(server, "_web._tcp.service.consul.", RecordType::SRV, true).await;
    assert_eq!(m.answers.len(), 7);
    let RData::SRV(srv) = &m
        .answers
        .iter()
        .find(|r| matches!(&r.data, RData::SRV(s) if s.target.to_ascii() == "n1.node.dc1.consul."))
        .unwrap()
        .data
    else {
        panic!()
    };
    assert_eq!((srv.priority, srv.port, srv.weight), (1, 80, 1));
    assert!(m
        .additionals
        .iter()
        .any(|r| r.name.to_ascii() == "n1.node.dc1.consul."
            && matches!(&r.data, RData::A(a) if a.0.to_string() == "10.0.0.1")));
    let tagged = udp(server, "primary.web.service.consul.", RecordType::A, true).await;
    assert_eq!(tagged.answers.len(), 7);
    let none = udp(server, "secondary.web.service.consul.", RecordType::A, true).await;
    assert_eq!(none.metadata.response_code, ResponseCode::NXDomain);
}

#[actix_rt::test]
async fn nodes_nxdomain_nodata_and_outside_names() {
    let server = start(vec![]).await;
    let m = udp(server, "n1.node.consul.", RecordType::A, false).await;
    assert_eq!(ips(&m), ["10.0.0.1"]);
    let m = udp(server, "n1.node.dc1.consul.", RecordType::A, false).await;
    assert_eq!(ips(&m), ["10.0.0.1"]);
    for name in [
        "nope.service.consul.",
        "nope.node.consul.",
        "garbage.consul.",
        "web.service.dc9.consul.",
    ] {
        let m = udp(server, name, RecordType::A, false).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert!(
            matches!(m.authorities.first().map(|r| &r.data), Some(RData::SOA(_))),
            "{name}: SOA in authority"
        );
    }
    let m = udp(server, "web.service.consul.", RecordType::AAAA, false).await;
    assert_eq!(
        (m.metadata.response_code, m.answers.len()),
        (ResponseCode::NoError, 0),
        "NODATA for AAAA"
    );
    assert_eq!(m.authorities.len(), 1);
    let m = udp(server, "consul.", RecordType::SOA, false).await;
    assert!(matches!(
        m.answers.first().map(|r| &r.data),
        Some(RData::SOA(_))
    ));
    let m = udp(server, "example.com.", RecordType::A, false).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::Refused,
        "no recursors"
    );
    assert!(!m.metadata.recursion_available);
}

/// An upstream resolver that answers every A question with 192.0.2.7.
async fn fake_upstream() -> SocketAddr {
    fake_upstream_with(ResponseCode::NoError).await
}

/// An upstream resolver answering with `rcode` (and 192.0.2.7 when that
/// is NOERROR).
async fn fake_upstream_with(rcode: ResponseCode) -> SocketAddr {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    actix_rt::spawn(async move {
        let mut buf = vec![0; 4096];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::response(q.metadata.id, q.metadata.op_code);
            r.metadata.recursion_available = true;
            r.metadata.response_code = rcode;
            for query in &q.queries {
                r.add_query(query.clone());
                if rcode != ResponseCode::NoError {
                    continue;
                }
                let rec = hickory_proto::rr::Record::from_rdata(
                    query.name().clone(),
                    60,
                    RData::A(hickory_proto::rr::rdata::A("192.0.2.7".parse().unwrap())),
                );
                r.add_answer(rec);
            }
            let _ = sock.send_to(&r.to_vec().unwrap(), from).await;
        }
    });
    addr
}

#[actix_rt::test]
async fn names_outside_the_domain_go_to_recursors() {
    // The first recursor never answers; the second does.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let upstream = fake_upstream().await;
    let server = start(vec![
        silent.local_addr().unwrap().to_string(),
        upstream.to_string(),
    ])
    .await;
    let m = udp(server, "example.com.", RecordType::A, false).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(ips(&m), ["192.0.2.7"]);
    assert!(m.metadata.recursion_available);
    assert!(!m.metadata.authoritative, "a relayed answer is not ours");
    // Our own names are still ours.
    let m = udp(server, "n1.node.consul.", RecordType::A, false).await;
    assert_eq!(ips(&m), ["10.0.0.1"]);
}

#[actix_rt::test]
async fn garbage_packets_do_not_stop_the_server() {
    let server = start(vec![]).await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for junk in [
        &b""[..],
        b"\x00",
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        &[0u8; 600],
    ] {
        sock.send_to(junk, server).await.unwrap();
    }
    let m = udp(server, "n1.node.consul.", RecordType::A, false).await;
    assert_eq!(ips(&m), ["10.0.0.1"]);
}

#[actix_rt::test]
async fn prepared_query_names_answer_with_the_query_ttl() {
    let server = start(vec![]).await;
    // OnlyPassing: n2 (critical) and n3 (warning) are left out.
    let m = tcp(server, "webq.query.consul.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let got = ips(&m);
    assert_eq!(got.len(), 6, "{got:?}");
    assert!(!got.contains(&"10.0.0.3".to_string()));
    assert!(m.answers.iter().all(|r| r.ttl == 7));
    // By ID too, and SRV with the node's address beside it.
    let m = tcp(
        server,
        "6f1c5a5e-0000-4000-8000-000000000001.query.consul.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(m.answers.len(), 6);
    assert_eq!(m.additionals.len(), 6);
    let m = tcp(server, "nope.query.consul.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let m = tcp(server, "webq.query.dc9.consul.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// Each record of `records` as `NAME TYPE DATA`, sorted: what a test
/// compares whole sections with.
fn show(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    v.sort();
    v
}

#[test]
fn parses_addr_and_reverse_names() {
    assert_eq!(
        parse_labels(&labels("0a000264.addr.dc1")),
        Lookup::Addr {
            ip: "10.0.2.100".parse().unwrap()
        }
    );
    assert_eq!(
        parse_labels(&labels("20010db8000000000000000000000001.addr")),
        Lookup::Addr {
            ip: "2001:db8::1".parse().unwrap()
        }
    );
    for bad in [
        "zz020264.addr",
        "0a02.addr",
        "+a+2+2+4.addr",
        "a.0a000264.addr",
        "addr",
    ] {
        assert_eq!(parse_labels(&labels(bad)), Lookup::Invalid, "{bad}");
    }
    for ip in ["10.0.2.100", "2001:db8::1", "::", "255.255.255.255"] {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(hex_ip(&ip_hex(ip)), Some(ip));
        assert_eq!(reverse_ip(&Name::from(ip)), Some(ip), "{ip}");
    }
    assert_eq!(ip_hex("127.0.0.1".parse().unwrap()), "7f000001");
    for partial in [
        "2.0.10.in-addr.arpa.",
        "01.2.0.10.in-addr.arpa.",
        "256.2.0.10.in-addr.arpa.",
        "1.0.0.ip6.arpa.",
        "example.com.",
    ] {
        assert_eq!(reverse_ip(&name(partial)), None, "{partial}");
    }
    // A label from the wire may hold what a name in text may not.
    let mut signed =
        Name::from_labels(["+1", "2", "0", "10", "in-addr", "arpa"].map(str::as_bytes)).unwrap();
    signed.set_fqdn(true);
    assert_eq!(reverse_ip(&signed), None);
    // Under both domains, the longer match decides the zone.
    let zones = Zones {
        domain: name("consul."),
        alt: Some(name("alt.consul.")),
    };
    let (zone, labels) = zones.split(&name("Web.Service.ALT.consul.")).unwrap();
    assert_eq!(
        (zone.to_ascii().as_str(), labels),
        (
            "alt.consul.",
            vec!["web".to_string(), "service".to_string()]
        )
    );
    assert!(zones.split(&name("example.com.")).is_none());
}

#[test]
fn node_meta_txt_escapes_as_rfc1464() {
    assert_eq!(records::rfc1464("rack", "r1"), "rack=r1");
    assert_eq!(records::rfc1464(" a=b ", "v`"), "` a`=b` =v``");
    let meta = [("rfc1035-raw".to_string(), "as is".to_string())]
        .into_iter()
        .collect();
    let txt = records::meta_txt(&name("a1.node.dc1.consul."), &meta, 5);
    assert_eq!(show(&txt), ["a1.node.dc1.consul. TXT as is"]);
}

#[actix_rt::test]
async fn srv_names_an_own_address_by_addr_and_keeps_the_node_name_otherwise() {
    let server = start(vec![]).await;
    let m = udp(server, "_api._tcp.service.consul.", RecordType::SRV, true).await;
    let targets: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some(format!("{} {}", s.port, s.target)),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    // a1's instance has its own address; a2's is at its node's address.
    assert_eq!(
        targets,
        ["8080 0a000264.addr.dc1.consul.", "8081 a2.node.dc1.consul."]
    );
    assert_eq!(
        show(&m.additionals),
        [
            "0a000264.addr.dc1.consul. A 10.0.2.100",
            "a1.node.dc1.consul. TXT as is",
            "a1.node.dc1.consul. TXT rack=r1",
            "a2.node.dc1.consul. A 10.0.2.2",
        ],
        "no A record gives a1's name an address a1.node would not"
    );
    let m = udp(server, "api6.service.consul.", RecordType::SRV, true).await;
    assert!(show(&m.additionals)
        .contains(&"20010db8000000000000000000000001.addr.dc1.consul. AAAA 2001:db8::1".into()));
    // The target resolves to the instance's address.
    let m = udp(server, "0a000264.addr.dc1.consul.", RecordType::A, false).await;
    assert_eq!(ips(&m), ["10.0.2.100"]);
    // A lookups give the service's own address.
    let m = udp(server, "api.service.consul.", RecordType::A, false).await;
    assert_eq!(ips(&m), ["10.0.2.100", "10.0.2.2"]);
}

#[actix_rt::test]
async fn addr_names_answer_their_address() {
    let server = start(vec![]).await;
    let m = udp(server, "0a000264.addr.consul.", RecordType::A, false).await;
    assert_eq!(show(&m.answers), ["0a000264.addr.consul. A 10.0.2.100"]);
    let m = udp(
        server,
        "20010db8000000000000000000000001.addr.dc1.consul.",
        RecordType::AAAA,
        false,
    )
    .await;
    assert_eq!(
        show(&m.answers),
        ["20010db8000000000000000000000001.addr.dc1.consul. AAAA 2001:db8::1"]
    );
    // The other type: NODATA, the address beside it as Consul gives it.
    let m = udp(server, "0a000264.addr.consul.", RecordType::AAAA, false).await;
    assert_eq!(
        (m.metadata.response_code, m.answers.len()),
        (ResponseCode::NoError, 0)
    );
    assert_eq!(show(&m.additionals), ["0a000264.addr.consul. A 10.0.2.100"]);
    for bad in ["zz020264.addr.consul.", "0a02.addr.dc1.consul."] {
        let m = udp(server, bad, RecordType::A, false).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{bad}");
    }
}

#[actix_rt::test]
async fn reverse_lookups_name_nodes_then_services() {
    let server = start(vec![]).await;
    let m = udp(server, "1.2.0.10.in-addr.arpa.", RecordType::PTR, false).await;
    assert_eq!(
        show(&m.answers),
        ["1.2.0.10.in-addr.arpa. PTR a1.node.dc1.consul."]
    );
    assert!(m.metadata.authoritative);
    // No node at 10.0.2.100: the service registered with it.
    let m = udp(server, "100.2.0.10.in-addr.arpa.", RecordType::PTR, false).await;
    assert_eq!(
        show(&m.answers),
        ["100.2.0.10.in-addr.arpa. PTR api.service.dc1.consul."]
    );
    let v6 = Name::from("2001:db8::1".parse::<IpAddr>().unwrap());
    let m = udp(server, &v6.to_ascii(), RecordType::PTR, false).await;
    assert_eq!(
        show(&m.answers),
        [format!("{v6} PTR api6.service.dc1.consul.")]
    );
    for unknown in ["9.9.9.10.in-addr.arpa.", "2.0.10.in-addr.arpa."] {
        let m = udp(server, unknown, RecordType::PTR, false).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NXDomain,
            "{unknown}"
        );
        assert!(matches!(
            m.authorities.first().map(|r| &r.data),
            Some(RData::SOA(_))
        ));
    }
    // With recursors, what is not ours is theirs.
    let upstream = fake_upstream().await;
    let server = start(vec![upstream.to_string()]).await;
    let m = udp(server, "9.9.9.10.in-addr.arpa.", RecordType::PTR, false).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(!m.metadata.authoritative, "relayed");
    let m = udp(server, "1.2.0.10.in-addr.arpa.", RecordType::PTR, false).await;
    assert!(m.metadata.authoritative, "ours stays ours");
}

#[actix_rt::test]
async fn ns_and_soa_name_the_servers() {
    let server = start(vec![]).await;
    let m = udp(server, "consul.", RecordType::NS, false).await;
    assert_eq!(
        show(&m.answers),
        [
            "consul. NS s1.node.dc1.consul.",
            "consul. NS s2.node.dc1.consul."
        ]
    );
    assert_eq!(
        show(&m.additionals),
        [
            "s1.node.dc1.consul. A 10.0.9.1",
            "s2.node.dc1.consul. A 10.0.9.2"
        ]
    );
    let m = udp(server, "consul.", RecordType::SOA, false).await;
    let Some(RData::SOA(soa)) = m.answers.first().map(|r| &r.data) else {
        panic!("{m:?}")
    };
    assert_eq!(soa.mname.to_ascii(), "s1.node.dc1.consul.", "one of the NS");
    assert_eq!(m.authorities.len(), 2, "NS beside the SOA");
    // Negative answers carry the same SOA.
    let m = udp(server, "nope.service.consul.", RecordType::A, false).await;
    let Some(RData::SOA(soa)) = m.authorities.first().map(|r| &r.data) else {
        panic!("{m:?}")
    };
    assert_eq!(soa.mname.to_ascii(), "s1.node.dc1.consul.");
}

#[actix_rt::test]
async fn node_meta_is_txt_in_answers_and_beside_them() {
    let server = start(vec![]).await;
    let m = udp(server, "a1.node.consul.", RecordType::TXT, false).await;
    assert_eq!(
        show(&m.answers),
        ["a1.node.consul. TXT as is", "a1.node.consul. TXT rack=r1"]
    );
    let m = udp(server, "a1.node.consul.", RecordType::A, false).await;
    assert_eq!(ips(&m), ["10.0.2.1"]);
    assert_eq!(m.additionals.len(), 2, "meta beside the address by default");
    let m = udp(server, "n1.node.consul.", RecordType::TXT, false).await;
    assert_eq!(
        (m.metadata.response_code, m.answers.len()),
        (ResponseCode::NoError, 0),
        "no meta, no TXT"
    );
    let mut config = RuntimeConfig::default();
    config.dns.node_meta_txt = false;
    let server = start_with(config).await;
    let m = udp(server, "a1.node.consul.", RecordType::A, false).await;
    assert_eq!(m.additionals.len(), 0);
    let m = udp(server, "api.service.consul.", RecordType::SRV, true).await;
    assert!(m
        .additionals
        .iter()
        .all(|r| r.record_type() != RecordType::TXT));
    // Asked for, TXT is always answered.
    let m = udp(server, "a1.node.consul.", RecordType::TXT, false).await;
    assert_eq!(m.answers.len(), 2);
}

#[actix_rt::test]
async fn host_name_addresses_answer_a_cname() {
    let server = start(vec![]).await;
    let m = udp(server, "ext.service.consul.", RecordType::A, false).await;
    assert_eq!(
        show(&m.answers),
        ["ext.service.consul. CNAME db.example.com."]
    );
    let m = udp(server, "h1.node.consul.", RecordType::A, false).await;
    assert_eq!(show(&m.answers), ["h1.node.consul. CNAME db.example.com."]);
    let m = udp(server, "ext.service.consul.", RecordType::SRV, false).await;
    let Some(RData::SRV(srv)) = m.answers.first().map(|r| &r.data) else {
        panic!("{m:?}")
    };
    assert_eq!(srv.target.to_ascii(), "db.example.com.");
    // A name of ours is resolved here.
    let m = udp(server, "alias.service.consul.", RecordType::A, true).await;
    assert_eq!(
        show(&m.answers),
        [
            "alias.service.consul. CNAME api.service.consul.",
            "api.service.consul. A 10.0.2.100",
            "api.service.consul. A 10.0.2.2",
        ]
    );
    // Another's, by the recursors.
    let upstream = fake_upstream().await;
    let server = start(vec![upstream.to_string()]).await;
    let m = udp(server, "ext.service.consul.", RecordType::A, false).await;
    assert_eq!(
        show(&m.answers),
        [
            "db.example.com. A 192.0.2.7",
            "ext.service.consul. CNAME db.example.com.",
        ]
    );
    assert!(m.metadata.authoritative);
}

#[actix_rt::test]
async fn alt_domain_answers_in_the_domain_asked() {
    let server = start_with(RuntimeConfig {
        alt_domain: Some("alt.test.".into()),
        ..Default::default()
    })
    .await;
    let m = udp(server, "n1.node.alt.test.", RecordType::A, false).await;
    assert_eq!(show(&m.answers), ["n1.node.alt.test. A 10.0.0.1"]);
    let m = udp(server, "_api._tcp.service.ALT.test.", RecordType::SRV, true).await;
    let targets: std::collections::BTreeSet<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some(s.target.to_ascii()),
            _ => None,
        })
        .collect();
    assert_eq!(
        targets.into_iter().collect::<Vec<_>>(),
        ["0a000264.addr.dc1.alt.test.", "a2.node.dc1.alt.test."]
    );
    let m = udp(server, "nope.service.alt.test.", RecordType::A, false).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(show(&m.authorities)[0].split(' ').next(), Some("alt.test."));
    let m = udp(server, "alt.test.", RecordType::NS, false).await;
    assert!(show(&m.answers).contains(&"alt.test. NS s1.node.dc1.alt.test.".to_string()));
    // The domain still answers in its own name.
    let m = udp(server, "n1.node.consul.", RecordType::A, false).await;
    assert_eq!(show(&m.answers), ["n1.node.consul. A 10.0.0.1"]);
}

#[actix_rt::test]
async fn a_record_limit_caps_address_answers() {
    let mut config = RuntimeConfig::default();
    config.dns.a_record_limit = 2;
    let server = start_with(config).await;
    for _ in 0..5 {
        let m = tcp(server, "web.service.consul.", RecordType::A).await;
        assert_eq!(m.answers.len(), 2);
        assert!(!m.metadata.truncation, "a limit, not a cut");
    }
    // SRV answers are not A answers.
    let m = tcp(server, "web.service.consul.", RecordType::SRV).await;
    assert_eq!(m.answers.len(), 7);
}

#[actix_rt::test]
async fn enable_truncate_sets_tc_on_cut_udp_answers() {
    let server = start(vec![]).await;
    let m = udp(server, "web.service.consul.", RecordType::A, false).await;
    assert_eq!(m.answers.len(), 3);
    assert!(!m.metadata.truncation, "Consul's default: cut silently");
    let mut config = RuntimeConfig::default();
    config.dns.enable_truncate = true;
    let server = start_with(config).await;
    let m = udp(server, "web.service.consul.", RecordType::A, false).await;
    assert_eq!(m.answers.len(), 3);
    assert!(m.metadata.truncation, "TC: ask again over TCP");
    let m = udp(server, "_web._tcp.service.consul.", RecordType::SRV, false).await;
    assert!(m.metadata.truncation);
    assert_eq!(
        m.additionals.len(),
        3,
        "the addresses of the SRV targets kept, no others"
    );
    let m = tcp(server, "web.service.consul.", RecordType::A).await;
    assert_eq!(m.answers.len(), 7);
    assert!(!m.metadata.truncation);
    let m = udp(server, "n1.node.consul.", RecordType::A, false).await;
    assert!(!m.metadata.truncation, "nothing cut");
}

#[test]
fn trimming_keeps_what_fits_and_the_additionals_of_what_is_kept() {
    use hickory_proto::rr::rdata::{A, SRV};
    use hickory_proto::rr::Record;
    let q = name("web.service.consul.");
    let mut answers = Vec::new();
    let mut additionals = Vec::new();
    for i in 0..10u8 {
        let target = name(&format!("n{i}.node.dc1.consul."));
        answers.push(Record::from_rdata(
            q.clone(),
            0,
            RData::SRV(SRV::new(1, 1, 80, target.clone())),
        ));
        additionals.push(Record::from_rdata(target, 0, RData::A(A::new(10, 0, 0, i))));
    }
    let mut authorities = vec![Record::from_rdata(
        name("consul."),
        0,
        RData::A(A::new(1, 1, 1, 1)),
    )];
    // 100 bytes a record: 450 bytes hold two answers and their addresses.
    let cut = trim::trim(
        trim::Sections {
            answers: &mut answers,
            authorities: &mut authorities,
            additionals: &mut additionals,
        },
        trim::Limits {
            max_answers: None,
            max_bytes: 450,
        },
        |a, n, d| 100 * (a.len() + n.len() + d.len()),
    );
    assert!(cut);
    assert_eq!(answers.len(), 2);
    assert!(authorities.is_empty(), "the authority section goes first");
    assert_eq!(
        show(&additionals),
        [
            "n0.node.dc1.consul. A 10.0.0.0",
            "n1.node.dc1.consul. A 10.0.0.1"
        ]
    );
    // One answer stays even when it alone is too big.
    let cut = trim::trim(
        trim::Sections {
            answers: &mut answers,
            authorities: &mut authorities,
            additionals: &mut additionals,
        },
        trim::Limits {
            max_answers: None,
            max_bytes: 10,
        },
        |a, n, d| 100 * (a.len() + n.len() + d.len()),
    );
    assert!(cut);
    assert_eq!((answers.len(), additionals.len()), (1, 1));
}

#[actix_rt::test]
async fn recursors_that_refuse_are_passed_over_in_either_order() {
    assert_eq!(
        recursor::order(crate::config::RecursorStrategy::Sequential, 4),
        [0, 1, 2, 3]
    );
    let mut random = recursor::order(crate::config::RecursorStrategy::Random, 4);
    random.sort();
    assert_eq!(random, [0, 1, 2, 3], "a permutation");
    let refusing = fake_upstream_with(ResponseCode::Refused).await;
    let upstream = fake_upstream().await;
    for strategy in [
        crate::config::RecursorStrategy::Sequential,
        crate::config::RecursorStrategy::Random,
    ] {
        let mut config = RuntimeConfig {
            recursors: vec![refusing.to_string(), upstream.to_string()],
            ..Default::default()
        };
        config.dns.recursor_strategy = strategy;
        let server = start_with(config).await;
        for _ in 0..4 {
            let m = udp(server, "example.com.", RecordType::A, false).await;
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NoError,
                "{strategy:?}"
            );
            assert_eq!(ips(&m), ["192.0.2.7"]);
        }
    }
}

#[actix_rt::test]
async fn answers_too_stale_are_asked_of_the_leader() {
    let mut config = RuntimeConfig::default();
    config.dns.max_stale = Duration::from_secs(10);
    let (server, seen) = start_reads(config.clone(), 60_000).await;
    let m = udp(server, "n1.node.consul.", RecordType::A, false).await;
    assert_eq!(ips(&m), ["10.0.0.1"]);
    assert_eq!(
        *seen.lock().unwrap(),
        [Consistency::Stale, Consistency::Default]
    );
    // Within max_stale: the stale answer serves.
    let (server, seen) = start_reads(config, 5_000).await;
    udp(server, "n1.node.consul.", RecordType::A, false).await;
    assert_eq!(*seen.lock().unwrap(), [Consistency::Stale]);
}

#[actix_rt::test]
async fn the_size_bound_is_never_under_the_encoded_size() {
    // Answers from the server itself, of every kind it gives.
    let server = start(vec![]).await;
    for (qname, qtype) in [
        ("_api._tcp.service.consul.", RecordType::SRV),
        ("web.service.consul.", RecordType::A),
        ("a1.node.consul.", RecordType::TXT),
        ("consul.", RecordType::SOA),
        ("alias.service.consul.", RecordType::A),
        ("1.2.0.10.in-addr.arpa.", RecordType::PTR),
        ("nope.service.consul.", RecordType::A),
    ] {
        let m = tcp(server, qname, qtype).await;
        let encoded = m.to_vec().unwrap().len();
        let question = trim::name_len(&name(qname)) + 4;
        let bound = [&m.answers, &m.authorities, &m.additionals]
            .into_iter()
            .map(|s| trim::wire_bound(s))
            .sum::<Option<usize>>()
            .expect("every type we answer with is known");
        assert!(
            12 + question + bound >= encoded,
            "{qname}: {bound} < {encoded}"
        );
    }
}

#[actix_rt::test]
async fn the_server_list_is_read_once_for_many_negative_answers() {
    let (server, seen) = start_reads(RuntimeConfig::default(), 0).await;
    for _ in 0..5 {
        let m = udp(server, "web.service.consul.", RecordType::AAAA, false).await;
        let Some(RData::SOA(soa)) = m.authorities.first().map(|r| &r.data) else {
            panic!("{m:?}")
        };
        assert_eq!(soa.mname.to_ascii(), "s1.node.dc1.consul.");
    }
    // Five reads of web, one of the servers.
    assert_eq!(seen.lock().unwrap().len(), 6);
}
