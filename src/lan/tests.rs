//! Members in one process on loopback: 25 converging, a graceful leave
//! seen as left, a crash seen as failed; then reconnection after a
//! partition, reaping, force-leave, tag updates, encryption, key
//! operations, round-trip times and rejoining from the snapshot. Durations are printed, not asserted.

use std::time::Instant;

use super::*;
use crate::structs::keyring::KeyOp;

async fn start(i: usize) -> (Addr<LanGossip>, SocketAddr) {
    start_with(i, LanOptions::default()).await
}

async fn start_with(i: usize, opts: LanOptions) -> (Addr<LanGossip>, SocketAddr) {
    let tags = BTreeMap::from([
        ("role".to_string(), "node".to_string()),
        ("dc".to_string(), "dc1".to_string()),
    ]);
    LanGossip::start(
        format!("m{i:02}"),
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
        tags,
        opts,
    )
    .await
    .unwrap()
}

async fn until(
    what: &str,
    secs: u64,
    mut f: impl FnMut() -> futures::future::BoxFuture<'static, bool>,
) -> Duration {
    let t = Instant::now();
    while !f().await {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.elapsed()
}

fn count(members: &[Member], status: MemberStatus) -> usize {
    members.iter().filter(|m| m.status == status).count()
}

#[actix_rt::test]
async fn twenty_five_members_converge_leave_and_fail() {
    let mut nodes = Vec::new();
    for i in 0..25 {
        nodes.push(start(i).await);
    }
    let seed = nodes[0].1;
    for (a, _) in &nodes[1..] {
        assert_eq!(a.send(Join(vec![seed])).await.unwrap(), 1);
    }
    let all: Vec<Addr<LanGossip>> = nodes.iter().map(|(a, _)| a.clone()).collect();
    let check = |all: Vec<Addr<LanGossip>>, pred: fn(&[Member]) -> bool| {
        move || -> futures::future::BoxFuture<'static, bool> {
            let all = all.clone();
            Box::pin(async move {
                for a in &all {
                    match a.send(Members).await {
                        Ok(m) if pred(&m) => {}
                        _ => return false,
                    }
                }
                true
            })
        }
    };
    let t = until(
        "25 members alive everywhere",
        30,
        check(all.clone(), |m| count(m, MemberStatus::Alive) == 25),
    )
    .await;
    eprintln!("convergence of 25 members: {t:?}");

    // m05 leaves gracefully: the others see it as left.
    nodes[5].0.send(Leave).await.unwrap();
    let others: Vec<Addr<LanGossip>> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 5)
        .map(|(_, a)| a.clone())
        .collect();
    let t = until(
        "m05 left everywhere",
        30,
        check(others.clone(), |m| {
            m.iter()
                .any(|m| m.name == "m05" && m.status == MemberStatus::Left)
        }),
    )
    .await;
    eprintln!("graceful leave seen by all: {t:?}");

    // m07 crashes: the others see it as failed.
    nodes[7].0.send(Stop).await.unwrap();
    let rest: Vec<Addr<LanGossip>> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 5 && *i != 7)
        .map(|(_, a)| a.clone())
        .collect();
    let t = until(
        "m07 failed everywhere",
        30,
        check(rest, |m| {
            m.iter()
                .any(|m| m.name == "m07" && m.status == MemberStatus::Failed)
        }),
    )
    .await;
    eprintln!("crash detected by all: {t:?}");
}

/// Polls one member's view until `pred` holds.
async fn view(a: &Addr<LanGossip>, what: &str, pred: impl Fn(&[Member]) -> bool) -> Duration {
    let t = Instant::now();
    loop {
        if let Ok(m) = a.send(Members).await {
            if pred(&m) {
                return t.elapsed();
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{what}: not within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn status_of(members: &[Member], name: &str) -> Option<MemberStatus> {
    members.iter().find(|m| m.name == name).map(|m| m.status)
}

/// Starts `n` members with `opts` and joins them to the first.
async fn pool(n: usize, first: usize, opts: LanOptions) -> Vec<(Addr<LanGossip>, SocketAddr)> {
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(start_with(first + i, opts.clone()).await);
    }
    for (a, _) in &nodes[1..] {
        a.send(Join(vec![nodes[0].1])).await.unwrap();
    }
    for (a, _) in &nodes {
        view(a, "the pool converges", |m| {
            count(m, MemberStatus::Alive) == n
        })
        .await;
    }
    nodes
}

#[actix_rt::test]
async fn a_healed_partition_merges_through_reconnect() {
    let opts = LanOptions {
        reconnect_interval: Duration::from_millis(500),
        ..LanOptions::default()
    };
    let nodes = pool(3, 30, opts).await;
    nodes[2].0.send(Isolate(true)).await.unwrap();
    view(&nodes[0].0, "m32 failed on m30", |m| {
        status_of(m, "m32") == Some(MemberStatus::Failed)
    })
    .await;
    view(&nodes[2].0, "m30 failed on m32", |m| {
        status_of(m, "m30") == Some(MemberStatus::Failed)
    })
    .await;
    nodes[2].0.send(Isolate(false)).await.unwrap();
    let t = view(&nodes[0].0, "m32 alive again on m30", |m| {
        count(m, MemberStatus::Alive) == 3
    })
    .await;
    view(&nodes[2].0, "m30 and m31 alive again on m32", |m| {
        count(m, MemberStatus::Alive) == 3
    })
    .await;
    eprintln!("partition healed to all alive: {t:?}");
}

#[actix_rt::test]
async fn failed_members_are_reaped_and_force_leave_settles_them() {
    let opts = LanOptions {
        reconnect_timeout: Duration::from_secs(3),
        ..LanOptions::default()
    };
    let nodes = pool(4, 40, opts).await;
    // m43 crashes and is force-left by m40: everyone sees it left, not failed.
    nodes[3].0.send(Stop).await.unwrap();
    view(&nodes[0].0, "m43 failed", |m| {
        status_of(m, "m43") == Some(MemberStatus::Failed)
    })
    .await;
    assert!(nodes[0]
        .0
        .send(ForceLeave {
            name: "m43".into(),
            prune: false
        })
        .await
        .unwrap());
    for (a, _) in &nodes[..3] {
        view(a, "m43 left everywhere", |m| {
            status_of(m, "m43") == Some(MemberStatus::Left)
        })
        .await;
    }
    assert!(!nodes[0]
        .0
        .send(ForceLeave {
            name: "nobody".into(),
            prune: false
        })
        .await
        .unwrap());
    // A live member is not forced out.
    nodes[0]
        .0
        .send(ForceLeave {
            name: "m41".into(),
            prune: true,
        })
        .await
        .unwrap();
    // m42 crashes and is reaped after reconnect_timeout.
    nodes[2].0.send(Stop).await.unwrap();
    view(&nodes[0].0, "m42 failed", |m| {
        status_of(m, "m42") == Some(MemberStatus::Failed)
    })
    .await;
    let t = view(&nodes[0].0, "m42 reaped", |m| status_of(m, "m42").is_none()).await;
    eprintln!("failed to reaped with reconnect_timeout 3 s: {t:?}");
    let members = nodes[0].0.send(Members).await.unwrap();
    assert_eq!(status_of(&members, "m41"), Some(MemberStatus::Alive));
}

#[actix_rt::test]
async fn tag_changes_reach_peers_as_updates_and_rtts_are_measured() {
    let nodes = pool(3, 50, LanOptions::default()).await;
    let tags = BTreeMap::from([
        ("role".to_string(), "node".to_string()),
        ("extra".to_string(), "1".to_string()),
    ]);
    nodes[1].0.send(SetTags(tags)).await.unwrap();
    for (a, _) in &nodes {
        view(a, "m51's new tags everywhere", |m| {
            m.iter().any(|m| {
                m.name == "m51"
                    && m.tags.get("extra").map(String::as_str) == Some("1")
                    && m.status == MemberStatus::Alive
            })
        })
        .await;
    }
    // Stays alive: a tag change is not a failure.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let members = nodes[0].0.send(Members).await.unwrap();
    assert_eq!(count(&members, MemberStatus::Alive), 3, "{members:?}");
    view(&nodes[0].0, "round-trip times to both peers", |m| {
        m.iter()
            .filter(|m| m.name != "m50")
            .all(|m| m.rtt.is_some())
    })
    .await;
    let members = nodes[0].0.send(Members).await.unwrap();
    for m in members.iter().filter(|m| m.name != "m50") {
        eprintln!("rtt m50 -> {}: {:?}", m.name, m.rtt);
    }
}

#[actix_rt::test]
async fn encrypted_pools_admit_only_members_with_the_key() {
    let key = keyring::generate_key();
    let ring = keyring::Keyring::new(std::slice::from_ref(&key)).unwrap();
    let opts = LanOptions {
        keyring: Some(ring),
        ..LanOptions::default()
    };
    let nodes = pool(2, 60, opts).await;
    // Another key, and no key at all: neither gets in.
    let other = LanOptions {
        keyring: Some(keyring::Keyring::new(&[keyring::generate_key()]).unwrap()),
        ..LanOptions::default()
    };
    let (wrong, _) = start_with(62, other).await;
    let (plain, _) = start_with(63, LanOptions::default()).await;
    wrong.send(Join(vec![nodes[0].1])).await.unwrap();
    plain.send(Join(vec![nodes[0].1])).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let members = nodes[0].0.send(Members).await.unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
    assert_eq!(wrong.send(Members).await.unwrap().len(), 1);
    assert_eq!(plain.send(Members).await.unwrap().len(), 1);
}

#[actix_rt::test]
async fn a_restarted_member_rejoins_from_its_snapshot_unless_it_left() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("serf").join("local.snapshot");
    let seed = start(70).await;
    let with_snapshot = |rejoin| LanOptions {
        snapshot: Some(snap.clone()),
        rejoin_after_leave: rejoin,
        ..LanOptions::default()
    };
    let (a, _) = start_with(71, with_snapshot(false)).await;
    a.send(Join(vec![seed.1])).await.unwrap();
    view(&a, "joined", |m| count(m, MemberStatus::Alive) == 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.send(Stop).await.unwrap();

    // Crashed: a fresh start with no join list finds the seed again.
    let (b, _) = start_with(71, with_snapshot(false)).await;
    view(&b, "rejoined from the snapshot", |m| {
        count(m, MemberStatus::Alive) == 2
    })
    .await;
    b.send(Leave).await.unwrap();
    b.send(Stop).await.unwrap();

    // Left gracefully: with -rejoin it rejoins; without, it stays alone.
    let (d, _) = start_with(71, with_snapshot(true)).await;
    view(&d, "rejoined with -rejoin", |m| {
        count(m, MemberStatus::Alive) == 2
    })
    .await;
    d.send(Leave).await.unwrap();
    d.send(Stop).await.unwrap();
    let (c, _) = start_with(71, with_snapshot(false)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(c.send(Members).await.unwrap().len(), 1);
}

#[actix_rt::test]
async fn key_operations_reach_every_member_and_plain_text_cannot_ask() {
    let old = keyring::generate_key();
    let mut ring = keyring::Keyring::new(std::slice::from_ref(&old)).unwrap();
    // Plain text let in, as while a cluster switches encryption on.
    ring.verify_incoming = false;
    let opts = LanOptions {
        keyring: Some(ring),
        ..LanOptions::default()
    };
    let nodes = pool(3, 80, opts).await;
    let new = keyring::generate_key();
    let op = |op| KeyOperation {
        op,
        relay_factor: 1,
    };
    let t = nodes[1]
        .0
        .send(op(KeyOp::Install(new.clone())))
        .await
        .unwrap();
    assert_eq!((t.num_nodes, t.num_resp, t.num_err), (3, 3, 0), "{t:?}");
    assert_eq!(t.keys.get(&new), Some(&3));
    let t = nodes[2]
        .0
        .send(op(KeyOp::Remove(old.clone())))
        .await
        .unwrap();
    assert_eq!(t.error().as_deref(), Some("3/3 nodes reported failure"));
    assert_eq!(
        t.messages.values().collect::<Vec<_>>(),
        vec!["Removing the primary key is not allowed"; 3]
    );

    // An unsealed key query from outside the pool changes nothing.
    let intruder = keyring::generate_key();
    let query = serde_json::json!({
        "id": 7, "op": {"Install": intruder}, "relay_factor": 0, "reply_to": "127.0.0.1:9",
    });
    let mut packet = vec![wire::KIND_KEY_QUERY];
    packet.extend_from_slice(query.to_string().as_bytes());
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&packet, nodes[0].1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = nodes[0].0.send(op(KeyOp::List)).await.unwrap();
    assert_eq!(t.keys.get(&intruder), None, "{t:?}");
    assert_eq!(t.keys.get(&new), Some(&3), "{t:?}");
}
