//! In-process write load straight into the Raft actor (no HTTP), to see
//! what the storage path alone sustains: cargo run --release --example raft_write_load

use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian::actors::raft::{GetRaftStatus, RaftActor, RaftWrite};
use meridian::config::RuntimeConfig;
use meridian::state::command::Command;

#[actix_rt::main]
async fn main() {
    let dir = tempfile_dir();
    let cfg = Arc::new(RuntimeConfig {
        server: true,
        bootstrap_expect: 1,
        node_name: "load".into(),
        node_id: "6a1c2a4e-0000-4000-8000-0000000000aa".into(),
        data_dir: Some(dir.clone()),
        ports: meridian::config::Ports {
            server: None,
            ..Default::default()
        },
        ..Default::default()
    });
    let (raft, _) = RaftActor::start(cfg, Default::default())
        .await
        .expect("raft");
    while !raft.send(GetRaftStatus).await.expect("status").is_leader {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for clients in [1usize, 16, 64] {
        let start = Instant::now();
        let per = 2000 / clients.max(1);
        let mut tasks = Vec::new();
        for c in 0..clients {
            let raft = raft.clone();
            tasks.push(actix_rt::spawn(async move {
                for i in 0..per {
                    let cmd = Command::KvSet {
                        key: format!("k/{c}/{i}"),
                        value: vec![b'x'; 128],
                        flags: 0,
                        ttl: None,
                    };
                    let _ = raft.send(RaftWrite(cmd)).await;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let n = per * clients;
        println!(
            "raft-write clients={clients:<3} ops={n} ops/s={:.0}",
            n as f64 / start.elapsed().as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("meridian-raft-load-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}
