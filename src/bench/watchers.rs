//! `meridian bench -workload watchers`: what waiting blocking queries
//! cost one server. Parks `-c` blocking queries on `-keys` keys (one key:
//! all on it; as many keys as watchers: one each), waits until the server
//! counts them all as waiting (`Stats.consul.queries_blocking`), reads its
//! RSS before and with them, then wakes them all with one write (a PUT of
//! the key, or a recursive DELETE of every watched key) and reports how
//! long each took to hear of it.
//!
//! Over plain HTTP each watcher holds a connection; over HTTPS the
//! watchers share `-connections` HTTP/2 connections (ALPN), which is how
//! more watchers than file descriptors fit on one machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use serde::Serialize;

use super::stats::{self, Latency};

/// Keys the watchers watch: `watchers/000000`...
const PREFIX: &str = "watchers/";
/// Consul's limit of operations in one `/v1/txn`.
const TXN_OPS: u64 = 64;

#[derive(Debug, Clone, Serialize)]
pub struct WatchersReport {
    pub watchers: usize,
    pub keys: u64,
    pub value_size: usize,
    pub connections: usize,
    pub http2: bool,
    pub pid: u32,
    /// Server RSS before the watchers, with them all waiting, and the
    /// highest seen while they woke.
    pub rss_before_kib: u64,
    pub rss_waiting_kib: u64,
    pub rss_wake_peak_kib: u64,
    /// (waiting - before) / watchers.
    pub bytes_per_watcher: u64,
    /// How long the server took to count every watcher as waiting.
    pub park_s: f64,
    /// Watchers that answered with an index above the one they held.
    pub woken: usize,
    pub errors: std::collections::BTreeMap<String, u64>,
    /// From the write sent to each watcher's answer.
    pub wake: Option<Latency>,
    /// CPU the server and this load generator spent from the write to the
    /// last answer: whose work the wake-up is, on a machine they share.
    pub wake_cpu_ms_server: f64,
    pub wake_cpu_ms_bench: f64,
}

pub struct Setup {
    pub clients: Vec<reqwest::Client>,
    pub base: String,
    pub http2: bool,
    pub watchers: usize,
    pub keys: u64,
    pub pid: u32,
    pub timeout: Duration,
    /// Bytes of each watched key's value.
    pub value_size: usize,
}

fn key(i: u64) -> String {
    format!("{PREFIX}{i:06}")
}

fn rss(pid: u32) -> Result<u64> {
    stats::sample(pid)
        .map(|(_, rss)| rss)
        .ok_or_else(|| anyhow!("cannot read /proc/{pid}: is -pids the server's?"))
}

fn consul_index(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The server's count of waiting blocking queries.
async fn waiting(c: &reqwest::Client, base: &str) -> Result<u64> {
    let v: serde_json::Value = c
        .get(format!("{base}/v1/agent/self"))
        .send()
        .await?
        .json()
        .await?;
    v["Stats"]["consul"]["queries_blocking"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("the server reports no queries_blocking (not a server?)"))
}

/// Writes every key once, 64 to a transaction, 8 transactions at a time.
async fn create_keys(c: &reqwest::Client, base: &str, keys: u64, size: usize) -> Result<()> {
    let value = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; size]);
    let starts: Vec<u64> = (0..keys).step_by(TXN_OPS as usize).collect();
    for chunk in starts.chunks(8) {
        let mut sends = Vec::new();
        for &start in chunk {
            let ops: Vec<serde_json::Value> = (start..(start + TXN_OPS).min(keys))
                .map(|i| serde_json::json!({"KV": {"Verb": "set", "Key": key(i), "Value": value}}))
                .collect();
            sends.push(c.put(format!("{base}/v1/txn")).json(&ops).send());
        }
        for r in futures::future::join_all(sends).await {
            let r = r?;
            if !r.status().is_success() {
                bail!("creating the keys: HTTP {}", r.status());
            }
        }
    }
    Ok(())
}

pub async fn run(s: Setup) -> Result<WatchersReport> {
    let admin = &s.clients[0];
    create_keys(admin, &s.base, s.keys, s.value_size).await?;
    let r = admin
        .get(format!("{}/v1/kv/{PREFIX}?keys", s.base))
        .send()
        .await?;
    let held = consul_index(&r);
    if held == 0 {
        bail!("no X-Consul-Index on the key listing");
    }
    let already = waiting(admin, &s.base).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss(s.pid)?;

    // Every watcher holds the index read after the keys were written: a
    // key's own index is at most that, so each blocks until the write.
    let parked = Instant::now();
    let mut tasks = Vec::with_capacity(s.watchers);
    for i in 0..s.watchers {
        let c = s.clients[i % s.clients.len()].clone();
        let url = format!(
            "{}/v1/kv/{}?index={held}&wait=10m",
            s.base,
            key(i as u64 % s.keys)
        );
        tasks.push(tokio::spawn(async move {
            let r = c.get(url).send().await.map_err(|e| short(&e))?;
            let answered = Instant::now();
            let index = consul_index(&r);
            // The body is read so the answer is whole, as a client uses it.
            r.bytes().await.map_err(|e| short(&e))?;
            Ok::<_, String>((index, answered))
        }));
    }
    let deadline = Instant::now() + s.timeout;
    loop {
        let n = waiting(admin, &s.base).await?.saturating_sub(already);
        if n >= s.watchers as u64 {
            break;
        }
        if Instant::now() > deadline || tasks.iter().all(|t| t.is_finished()) {
            bail!("only {n} of {} watchers waiting on the server", s.watchers);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let park_s = parked.elapsed().as_secs_f64();
    // Let allocations settle (the last connections' buffers) before reading.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_waiting = rss(s.pid)?;

    let peak = Arc::new(std::sync::atomic::AtomicU64::new(rss_waiting));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, stop, pid) = (peak.clone(), stop.clone(), s.pid);
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some((_, r)) = stats::sample(pid) {
                    peak.fetch_max(r, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let cpu_ms = |pid: u32| {
        stats::sample(pid).map_or(0.0, |(ticks, _)| {
            ticks as f64 * 1000.0 / stats::ticks_per_second()
        })
    };
    let (server_cpu0, bench_cpu0) = (cpu_ms(s.pid), cpu_ms(std::process::id()));
    let written = Instant::now();
    let w = if s.keys == 1 {
        admin
            .put(format!("{}/v1/kv/{}", s.base, key(0)))
            .body("1")
            .send()
            .await?
    } else {
        admin
            .delete(format!("{}/v1/kv/{PREFIX}?recurse", s.base))
            .send()
            .await?
    };
    if !w.status().is_success() {
        bail!("the waking write: HTTP {}", w.status());
    }
    let deadline = Instant::now() + s.timeout;
    let mut latencies = Vec::with_capacity(s.watchers);
    let mut errors = std::collections::BTreeMap::new();
    let mut woken = 0;
    for t in tasks {
        match tokio::time::timeout_at(deadline.into(), t).await {
            Ok(Ok(Ok((index, at)))) if index > held => {
                woken += 1;
                let us = at.saturating_duration_since(written).as_micros();
                latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            Ok(Ok(Ok(_))) => {
                *errors
                    .entry("answered without a change".into())
                    .or_insert(0) += 1
            }
            Ok(Ok(Err(e))) => *errors.entry(e).or_insert(0) += 1,
            Ok(Err(_)) => *errors.entry("task failed".into()).or_insert(0) += 1,
            Err(_) => *errors.entry("not woken in time".into()).or_insert(0) += 1,
        }
    }
    let (server_cpu1, bench_cpu1) = (cpu_ms(s.pid), cpu_ms(std::process::id()));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.await;
    Ok(WatchersReport {
        watchers: s.watchers,
        keys: s.keys,
        value_size: s.value_size,
        connections: s.clients.len(),
        http2: s.http2,
        pid: s.pid,
        rss_before_kib: rss_before,
        rss_waiting_kib: rss_waiting,
        rss_wake_peak_kib: peak.load(std::sync::atomic::Ordering::Relaxed),
        bytes_per_watcher: rss_waiting.saturating_sub(rss_before) * 1024 / s.watchers as u64,
        park_s: (park_s * 100.0).round() / 100.0,
        woken,
        errors,
        wake: stats::latency(&mut latencies),
        wake_cpu_ms_server: server_cpu1 - server_cpu0,
        wake_cpu_ms_bench: bench_cpu1 - bench_cpu0,
    })
}

fn short(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "request".into()
    }
}

pub fn table(r: &WatchersReport) -> String {
    let mut out = format!(
        "workload watchers  {} watchers on {} key(s) of {} B  {} over {} connection(s)\n",
        r.watchers,
        r.keys,
        r.value_size,
        if r.http2 { "HTTP/2" } else { "HTTP/1.1" },
        if r.http2 {
            r.connections.to_string()
        } else {
            r.watchers.to_string()
        }
    );
    out.push_str(&format!(
        "server rss MiB  before {:.1}  waiting {:.1}  wake peak {:.1}  => {} B per waiting query (parked in {:.1} s)\n",
        r.rss_before_kib as f64 / 1024.0,
        r.rss_waiting_kib as f64 / 1024.0,
        r.rss_wake_peak_kib as f64 / 1024.0,
        r.bytes_per_watcher,
        r.park_s
    ));
    out.push_str(&format!("woken {} of {}\n", r.woken, r.watchers));
    if let Some(l) = &r.wake {
        out.push_str(&format!(
            "wake-up ms  p50 {:.1}  p99 {:.1}  max {:.1}\n",
            l.p50_ms, l.p99_ms, l.max_ms
        ));
    }
    out.push_str(&format!(
        "CPU ms from the write to the last answer  server {:.0}  load generator {:.0}\n",
        r.wake_cpu_ms_server, r.wake_cpu_ms_bench
    ));
    for (kind, n) in &r.errors {
        out.push_str(&format!("error  {n:>8}  {kind}\n"));
    }
    out
}

/// The HTTP clients: one per connection wanted (each keeps its own pool).
pub fn clients(
    n: usize,
    headers: reqwest::header::HeaderMap,
    tls: Option<rustls::ClientConfig>,
) -> Result<Vec<reqwest::Client>> {
    (0..n.max(1))
        .map(|_| {
            let mut b = reqwest::Client::builder()
                .default_headers(headers.clone())
                .timeout(Duration::from_secs(15 * 60));
            if let Some(t) = &tls {
                // A preconfigured TLS config is used as given: offer
                // HTTP/2 in it, or ALPN settles on HTTP/1.1.
                let mut t = t.clone();
                t.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                b = b.use_preconfigured_tls(t);
            }
            b.build().context("cannot build the HTTP client")
        })
        .collect()
}
