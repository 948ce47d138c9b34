//! The listener's admission over loopback: TLS or plaintext as the
//! settings say, Raft's messages only from servers' certificates, the
//! per-address limit and the first-frame deadline.

use std::time::Duration;

use openraft::raft::{VoteRequest, VoteResponse};
use openraft::Vote;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::rpc::codec::write_frame;
use crate::rpc::Pool;
use crate::structs::rpc;
use crate::tls::tests::{ca, leaf, settings};
use crate::tls::Tls;

/// Answers Vote (a server-only method; after 200 ms, as a slow call) and
/// Datacenters (any caller's).
struct Fake;

impl Service for Fake {
    fn serve(&self, method: MethodId, args: Vec<u8>) -> BoxFuture<'static, Vec<u8>> {
        Box::pin(async move {
            match method {
                MethodId::Vote => {
                    answer::<rpc::Vote, _, _>(&args, |r| async move {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok(VoteResponse::new(r.vote, None, false))
                    })
                    .await
                }
                MethodId::PreVote => {
                    answer::<rpc::PreVote, _, _>(&args, |_| async { rpc::PreVoteAnswer::Granted })
                        .await
                }
                _ => {
                    answer::<rpc::Datacenters, _, _>(&args, |()| async {
                        Ok(vec!["dc1".to_string()])
                    })
                    .await
                }
            }
        })
    }
}

async fn listen(admission: Admission) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let listener = Listener::new(admission).unwrap();
    tokio::spawn(listener.serve(l, Arc::new(Fake)));
    addr
}

fn admission(tls: Option<Tls>, max: u32, timeout: Duration) -> Admission {
    Admission {
        tls,
        server_name: "server.dc1.consul".into(),
        max_conns_per_client: max,
        handshake_timeout: timeout,
    }
}

const T: Duration = Duration::from_secs(3);

async fn datacenters(pool: &Pool, addr: &str) -> Result<Vec<String>, RpcError> {
    pool.call::<rpc::Datacenters>(addr, &(), T)
        .await
        .map(|r| r.unwrap())
}

async fn vote(pool: &Pool, addr: &str) -> Result<(), RpcError> {
    let req = VoteRequest::new(Vote::new(1, 1), None);
    pool.call::<rpc::Vote>(addr, &req, T).await.map(|r| {
        r.unwrap();
    })
}

async fn pre_vote(pool: &Pool, addr: &str) -> Result<rpc::PreVoteAnswer, RpcError> {
    let req = rpc::PreVoteArgs {
        candidate: 1,
        term: 2,
        last_log_id: None,
    };
    pool.call::<rpc::PreVote>(addr, &req, T).await
}

/// Whether the server closes `s` without writing a byte (within 3 s).
async fn closed_without_answer(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    match tokio::time::timeout(T, s.read(&mut b)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

async fn plaintext_call(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    write_frame(&mut s, &request_head(1), &encode(&()).unwrap())
        .await
        .unwrap();
    s
}

/// A Datacenters request's id and method.
fn request_head(id: u32) -> Vec<u8> {
    let mut head = id.to_be_bytes().to_vec();
    head.push(MethodId::Datacenters as u8);
    head
}

fn pool(tls: &Tls) -> Pool {
    Pool::new("dc1", "consul.", Some(tls)).unwrap()
}

#[tokio::test]
async fn verify_incoming_admits_the_ca_only_and_raft_from_servers_only() {
    let dir = tempfile::tempdir().unwrap();
    let (ca1, ca2) = (ca(dir.path(), "one"), ca(dir.path(), "two"));
    let names = ["server.dc1.consul", "localhost"];
    let tls = |ca, file, names: &[&str]| {
        Tls::new(&settings(ca, leaf(dir.path(), ca, file, names), true))
            .unwrap()
            .unwrap()
    };
    let server = tls(&ca1, "server", &names);
    let client = tls(&ca1, "client", &["client.dc1.consul", "localhost"]);
    let stranger = tls(&ca2, "stranger", &names);
    let addr = listen(admission(Some(server.clone()), 0, T)).await;

    // A server's certificate may do everything.
    assert_eq!(datacenters(&pool(&server), &addr).await.unwrap(), ["dc1"]);
    vote(&pool(&server), &addr).await.unwrap();
    assert_eq!(
        pre_vote(&pool(&server), &addr).await.unwrap(),
        rpc::PreVoteAnswer::Granted
    );

    // A client's may forward requests, not act in Raft.
    let as_client = pool(&client);
    assert_eq!(datacenters(&as_client, &addr).await.unwrap(), ["dc1"]);
    match vote(&as_client, &addr).await {
        Err(RpcError::Refused(m)) => assert!(m.contains("server.dc1.consul"), "{m}"),
        other => panic!("a client certificate voted: {other:?}"),
    }
    match pre_vote(&as_client, &addr).await {
        Err(RpcError::Refused(m)) => assert!(m.contains("server.dc1.consul"), "{m}"),
        other => panic!("a client certificate pre-voted: {other:?}"),
    }

    // Another CA's certificate and plaintext are not let in.
    assert!(matches!(
        datacenters(&pool(&stranger), &addr).await,
        Err(RpcError::Io(_) | RpcError::Connect(..))
    ));
    let mut plain = plaintext_call(&addr).await;
    assert!(closed_without_answer(&mut plain).await);

    // The dialer checks the name too: this server is not dc2's.
    let to_dc2 = pool(&server)
        .call_in::<rpc::Datacenters>("dc2", &addr, &(), T)
        .await;
    assert!(matches!(to_dc2, Err(RpcError::Connect(..))), "{to_dc2:?}");
}

#[tokio::test]
async fn tls_without_verify_incoming_serves_tls_and_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca(dir.path(), "one");
    let pair = leaf(dir.path(), &ca1, "server", &["server.dc1.consul"]);
    let server = Tls::new(&settings(&ca1, pair, false)).unwrap().unwrap();
    let addr = listen(admission(Some(server), 0, T)).await;

    assert_eq!(datacenters(&Pool::default(), &addr).await.unwrap(), ["dc1"]);
    vote(&Pool::default(), &addr).await.unwrap();
    // A client certificate over TLS: no restriction without
    // verify_incoming (Consul's AuthorizeServerConn).
    let client = Tls::new(&settings(
        &ca1,
        leaf(dir.path(), &ca1, "client", &["client.dc1.consul"]),
        true,
    ))
    .unwrap()
    .unwrap();
    vote(&pool(&client), &addr).await.unwrap();
}

#[tokio::test]
async fn one_address_holds_at_most_the_limit_and_idle_connections_are_closed() {
    let timeout = Duration::from_millis(400);
    let addr = listen(admission(None, 2, timeout)).await;
    let started = Instant::now();
    let mut a = TcpStream::connect(&addr).await.unwrap();
    let mut b = TcpStream::connect(&addr).await.unwrap();
    // Announces 64 MiB and sends three bytes of it.
    b.write_all(&[4, 0, 0, 0, 1, 2, 3]).await.unwrap();
    let mut over = plaintext_call(&addr).await;
    assert!(
        closed_without_answer(&mut over).await,
        "a third connection was served"
    );
    assert!(
        started.elapsed() < timeout,
        "refused at once, not by the deadline"
    );

    // Both are closed by the deadline, and their places given back.
    assert!(closed_without_answer(&mut a).await);
    assert!(closed_without_answer(&mut b).await);
    assert!(started.elapsed() >= timeout);
    let mut ok = plaintext_call(&addr).await;
    let answer = read_frame(&mut ok).await.unwrap();
    assert_eq!(
        answer[..4],
        1u32.to_be_bytes(),
        "the answer names its request"
    );
    let reply: Result<Result<Vec<String>, crate::structs::RequestError>, String> =
        decode(&answer[4..]).unwrap();
    assert_eq!(reply.unwrap().unwrap(), ["dc1"]);

    // After the first frame the deadline no longer applies.
    tokio::time::sleep(timeout * 2).await;
    write_frame(&mut ok, &request_head(2), &encode(&()).unwrap())
        .await
        .unwrap();
    assert_eq!(read_frame(&mut ok).await.unwrap()[..4], 2u32.to_be_bytes());
}

#[tokio::test]
async fn pooled_tls_connections_are_reused_and_a_stalled_handshake_meets_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca(dir.path(), "one");
    let pair = leaf(dir.path(), &ca1, "server", &["server.dc1.consul"]);
    let server = Tls::new(&settings(&ca1, pair, true)).unwrap().unwrap();
    let timeout = Duration::from_millis(400);
    // One connection per address: a second call succeeds only over the
    // first call's connection, back from the pool.
    let addr = listen(admission(Some(server.clone()), 1, timeout)).await;
    let p = pool(&server);
    for _ in 0..3 {
        assert_eq!(datacenters(&p, &addr).await.unwrap(), ["dc1"]);
    }
    assert!(datacenters(&pool(&server), &addr).await.is_err());
    drop(p);

    // A ClientHello that never completes is closed by the deadline.
    let addr = listen(admission(Some(server), 0, timeout)).await;
    let started = Instant::now();
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled.write_all(&[TLS_HANDSHAKE, 3, 1]).await.unwrap();
    assert!(closed_without_answer(&mut stalled).await);
    assert!(started.elapsed() >= timeout);
}

#[tokio::test]
async fn an_unknown_method_is_answered_with_an_error() {
    let addr = listen(admission(None, 0, T)).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let mut head = 7u32.to_be_bytes().to_vec();
    head.push(0xEE);
    write_frame(&mut s, &head, &encode(&()).unwrap())
        .await
        .unwrap();
    let answer = read_frame(&mut s).await.unwrap();
    assert_eq!(answer[..4], 7u32.to_be_bytes());
    let reply: Result<(), String> = decode(&answer[4..]).unwrap();
    assert_eq!(reply, Err("unknown method 238".to_string()));
}

#[tokio::test]
async fn calls_share_one_connection_side_by_side_and_get_their_own_answers() {
    // One connection allowed: 100 calls of 200 ms each fit in it together.
    let addr = listen(admission(None, 1, T)).await;
    let p = Pool::default();
    let started = Instant::now();
    let calls = (1..=100u64).map(|term| {
        let (p, addr) = (p.clone(), addr.clone());
        async move {
            let req = VoteRequest::new(Vote::new(term, 1), None);
            let resp = p.call::<rpc::Vote>(&addr, &req, T).await.unwrap().unwrap();
            assert_eq!(resp.vote, req.vote, "an answer for another call");
        }
    });
    futures::future::join_all(calls).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(datacenters(&p, &addr).await.unwrap(), ["dc1"]);
}
