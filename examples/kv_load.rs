//! A small KV load loop: N concurrent HTTP clients doing PUTs, then GETs,
//! against a running agent; prints throughput and latency percentiles.
//! The benchmark issue replaces this with `meridian bench`.
//!
//! cargo run --release --example kv_load -- [http-addr] [clients] [seconds]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

async fn run(kind: &str, addr: &str, clients: usize, secs: u64) {
    let client = reqwest::Client::new();
    let lat: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, lat, errors, addr, kind) = (
            client.clone(),
            lat.clone(),
            errors.clone(),
            addr.to_string(),
            kind.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut i = 0u64;
            while Instant::now() < stop {
                let key = format!("bench/{c}/{}", i % 100);
                let t = Instant::now();
                let r = if kind == "put" {
                    client
                        .put(format!("http://{addr}/v1/kv/{key}"))
                        .body(vec![b'x'; 128])
                        .send()
                        .await
                } else {
                    client
                        .get(format!("http://{addr}/v1/kv/{key}"))
                        .send()
                        .await
                };
                match r {
                    Ok(r) if r.status().is_success() || r.status().as_u16() == 404 => {
                        let _ = r.bytes().await;
                        mine.push(t.elapsed());
                    }
                    _ => {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                i += 1;
            }
            lat.lock().await.extend(mine);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut l = lat.lock().await.clone();
    l.sort();
    let p = |q: f64| {
        l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "kv-{kind:<4} clients={clients:<3} ops={:<7} ops/s={:<8.0} p50={:>7.2?} p90={:>7.2?} p99={:>7.2?} max={:>7.2?} errors={}",
        l.len(),
        l.len() as f64 / secs as f64,
        p(0.5),
        p(0.9),
        p(0.99),
        l.last().copied().unwrap_or_default(),
        errors.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:8500".into());
    let clients = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let secs = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    run("put", &addr, clients, secs).await;
    run("get", &addr, clients, secs).await;
}
