//! 25 members in one process on loopback: convergence, a graceful leave
//! seen as left, a crash seen as failed. Durations are printed, not asserted.

use std::time::Instant;

use super::*;

async fn start(i: usize) -> (Addr<LanGossip>, SocketAddr) {
    let tags = BTreeMap::from([
        ("role".to_string(), "node".to_string()),
        ("dc".to_string(), "dc1".to_string()),
    ]);
    let a = LanGossip::start(
        format!("m{i:02}"),
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1".parse().unwrap(),
        tags,
    )
    .await
    .unwrap();
    let addr = a.send(Members).await.unwrap()[0].addr;
    (a, addr)
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
