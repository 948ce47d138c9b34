//! Durability in process: writes acknowledged by a persisted single server
//! survive a restart of Raft, through snapshots, log compaction and log
//! replay. (The SIGKILL test with the built binary is in tests/process.rs.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian::actors::raft::{GetRaftStatus, RaftActor, RaftRead, RaftWrite, Shutdown};
use meridian::config::RuntimeConfig;
use meridian::state::command::{Command, CommandResult};
use meridian::state::query::{Query, QueryResult};
use meridian::structs::{Consistency, QueryOptions, ReadRequest};

fn config(dir: &std::path::Path) -> Arc<RuntimeConfig> {
    Arc::new(RuntimeConfig {
        server: true,
        bootstrap_expect: 1,
        node_name: "d1".into(),
        node_id: "6a1c2a4e-0000-4000-8000-000000000001".into(),
        data_dir: Some(dir.to_path_buf()),
        // Small thresholds so that the run crosses several snapshots and purges.
        raft_snapshot_threshold: 100,
        raft_snapshot_interval: Duration::from_millis(10),
        raft_trailing_logs: 10,
        // No RPC listener: one server talks to nobody, and tests run in parallel.
        ports: meridian::config::Ports {
            server: None,
            ..Default::default()
        },
        ..Default::default()
    })
}

async fn wait_leader(raft: &actix::Addr<RaftActor>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !raft.send(GetRaftStatus).await.unwrap().is_leader {
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn acknowledged_writes_survive_restart_through_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (raft, _) = RaftActor::start(config(dir.path()), Default::default())
        .await
        .unwrap();
    wait_leader(&raft).await;
    for i in 0..500u32 {
        let cmd = Command::KvSet {
            key: format!("k/{i:04}"),
            value: i.to_string().into_bytes(),
            flags: 0,
            ttl: None,
        };
        let r = raft.send(RaftWrite(cmd)).await.unwrap().unwrap();
        assert_eq!(r.result, CommandResult::Bool(true));
    }
    // Snapshots are built in the background; wait (bounded) for one.
    let deadline = Instant::now() + Duration::from_secs(10);
    let before = loop {
        let st = raft.send(GetRaftStatus).await.unwrap();
        if st.last_snapshot_index > 0 || Instant::now() > deadline {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        before.last_snapshot_index > 0,
        "a snapshot was taken: {before:?}"
    );
    raft.send(Shutdown).await.unwrap();

    let (raft, _) = RaftActor::start(config(dir.path()), Default::default())
        .await
        .unwrap();
    wait_leader(&raft).await;
    let read = ReadRequest {
        opts: QueryOptions {
            consistency: Consistency::Consistent,
            ..Default::default()
        },
        query: Query::KvList {
            prefix: "k/".into(),
        },
    };
    let r = raft.send(RaftRead(read)).await.unwrap().unwrap();
    let QueryResult::Entries(entries) = r.result else {
        panic!("unexpected {:?}", r.result)
    };
    assert_eq!(entries.len(), 500);
    assert!(entries
        .iter()
        .enumerate()
        .all(|(i, e)| e.value == i.to_string().into_bytes()));
    assert!(r.meta.index >= before.applied_index.min(500));
    raft.send(Shutdown).await.unwrap();
}
