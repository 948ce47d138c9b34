//! Three servers in one process on ephemeral loopback ports, joined into
//! one Raft group over server RPC: replication, and requests to followers
//! forwarded to the leader. (LAN gossip, which will form the group by
//! itself, comes with the rest of the cluster issue; here the test adds
//! the voters through the same `AddVoter` message gossip will send.)

mod common;

use std::time::Duration;

use common::inproc::{get, server, until};
use meridian::actors::raft::{raft_id, AddVoter, GetRaftStatus};
use serde_json::Value;

#[actix_rt::test]
async fn three_servers_replicate_and_forward_to_the_leader() {
    let s1 = server("s1", true).await;
    let s2 = server("s2", false).await;
    let s3 = server("s3", false).await;
    let raft1 = s1.handle.raft.clone().unwrap();
    until("s1 leads", || {
        let r = raft1.clone();
        async move {
            r.send(GetRaftStatus)
                .await
                .map(|s| s.is_leader)
                .unwrap_or(false)
        }
    })
    .await;
    for s in [&s2, &s3] {
        raft1
            .send(AddVoter {
                id: raft_id(&s.id),
                addr: s.rpc.clone(),
            })
            .await
            .unwrap()
            .expect("voter added");
    }
    let (_, peers) = get(format!("{}/v1/status/peers", s1.http)).await;
    let peers: Vec<String> = serde_json::from_str(&peers).unwrap();
    assert_eq!(peers.len(), 3, "{peers:?}");
    for s in [&s2, &s3] {
        let url = format!("{}/v1/status/leader", s.http);
        until("followers know the leader", || {
            let (url, leader) = (url.clone(), format!("\"{}\"", s1.rpc));
            async move { get(url).await.1 == leader }
        })
        .await;
    }

    // The operator view names every server and its role.
    let (_, conf) = get(format!("{}/v1/operator/raft/configuration", s3.http)).await;
    let conf: Value = serde_json::from_str(&conf).unwrap();
    let servers = conf["Servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3, "{conf}");
    assert_eq!(servers.iter().filter(|s| s["Leader"] == true).count(), 1);
    assert!(servers.iter().all(|s| s["Voter"] == true));

    // A write on a follower is forwarded to the leader and acknowledged.
    let client = reqwest::Client::new();
    let r = client
        .put(format!("{}/v1/kv/shared/greeting", s2.http))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "true");
    // A default read on another follower is served by the leader...
    let (status, body) = get(format!("{}/v1/kv/shared/greeting?raw", s3.http)).await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    // ...and a stale read there is served locally once replicated.
    let url = format!("{}/v1/kv/shared/greeting?stale&raw", s3.http);
    until("replicated to s3", || {
        let url = url.clone();
        async move { get(url).await.1 == "hello" }
    })
    .await;
    let (_, consistent) = get(format!("{}/v1/kv/shared/greeting?consistent&raw", s2.http)).await;
    assert_eq!(consistent, "hello");

    // A blocking query on a follower wakes on a write made on the other.
    let (_, h) = {
        let r = client
            .get(format!("{}/v1/kv/shared/greeting", s3.http))
            .send()
            .await
            .unwrap();
        let idx: u64 = r.headers()["X-Consul-Index"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        (r.text().await.unwrap(), idx)
    };
    let waiter = tokio::spawn({
        let url = format!("{}/v1/kv/shared/greeting?index={h}&wait=10s", s3.http);
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    client
        .put(format!("{}/v1/kv/shared/greeting", s2.http))
        .body("again")
        .send()
        .await
        .unwrap();
    let woke = waiter.await.unwrap();
    assert_eq!(woke[0]["Value"], "YWdhaW4=");

    // Every server's own node row reaches the catalog through the leader.
    let url = format!("{}/v1/catalog/nodes", s1.http);
    until("three nodes in the catalog", || {
        let url = url.clone();
        async move {
            serde_json::from_str::<Value>(&get(url).await.1)
                .ok()
                .and_then(|v| v.as_array().map(|a| a.len()))
                == Some(3)
        }
    })
    .await;
}
