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

/// A stand-in for the router: answers reads from a state store.
struct FakeReads(Arc<Mutex<StateStore>>);

impl ReadPath for FakeReads {
    fn read(
        &self,
        req: ReadRequest,
    ) -> futures::future::BoxFuture<'static, Result<ReadResponse, RequestError>> {
        let answer = if req.opts.dc.as_deref().is_some_and(|d| d != "dc1") {
            Err(RequestError::NoPathToDatacenter)
        } else {
            let s = self.0.lock().unwrap();
            let (index, result) = crate::state::query::execute(&s, &req.query, None);
            Ok(ReadResponse {
                meta: QueryMeta {
                    index,
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

async fn start(recursors: Vec<String>) -> SocketAddr {
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
    let reads = Arc::new(FakeReads(Arc::new(Mutex::new(s))));
    let config = Arc::new(RuntimeConfig {
        recursors,
        ..Default::default()
    });
    let (_, udp, _) = DnsActor::start(config, reads, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    udp
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
            for query in &q.queries {
                r.add_query(query.clone());
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
