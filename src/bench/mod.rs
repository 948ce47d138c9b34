//! `meridian bench`: a load generator for Meridian (HTTP and DNS) and, for
//! side-by-side runs, etcd's HTTP/JSON gateway. Closed loop (`-c` clients,
//! each waiting for its answer) or open loop (`-rate` operations a second
//! in all, latency counted from when each should have started, so a slow
//! server cannot hide its queue). Reports throughput, exact latency
//! percentiles, errors by kind and the CPU and peak RSS of the processes
//! given with `-pids`, as a table and optionally JSON. Two workloads
//! have procedures of their own: `watchers` ([`watchers`]) and `gossip`
//! ([`gossip`], LAN gossip pools started in this process, no server).

pub mod gossip;
pub mod stats;
pub mod watchers;
pub mod workload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use stats::{Latency, ProcessStats, Recorder};
use workload::{Ctx, Mode, Target, Workload};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// kv-put, kv-get, kv-cas, catalog-register, health-service, blocking,
    /// watchers, dns, cross-dc or gossip.
    #[arg(long)]
    pub workload: String,
    /// meridian, or etcd (its HTTP/JSON gateway; kv-put and kv-get).
    #[arg(long, default_value = "meridian")]
    pub target: String,
    /// HTTP addresses (comma-separated); clients spread over them.
    #[arg(long, default_value = "127.0.0.1:8500", value_delimiter = ',')]
    pub addr: Vec<String>,
    /// Concurrent clients (closed loop), or watchers for `blocking`.
    #[arg(short = 'c', long = "c", default_value_t = 16)]
    pub concurrency: usize,
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Operations a second in all (open loop); 0 = closed loop. For
    /// `blocking`, the writes a second.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Bytes per value written.
    #[arg(long = "value-size", default_value_t = 128)]
    pub value_size: usize,
    /// Distinct keys (counters for kv-cas).
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// kv-get's consistency: default, stale or consistent.
    #[arg(long, default_value = "default")]
    pub mode: String,
    /// Service instances for health-service and catalog-register.
    #[arg(long, default_value_t = 100)]
    pub instances: u64,
    /// health-service: a `?filter=` expression each read sends.
    #[arg(long)]
    pub filter: Option<String>,
    /// The datacenter cross-dc reads from.
    #[arg(long)]
    pub dc: Option<String>,
    #[arg(long = "dns-addr", default_value = "127.0.0.1:8600")]
    pub dns_addr: String,
    #[arg(long = "dns-name", default_value = "bench-svc.service.consul")]
    pub dns_name: String,
    /// Server processes to report CPU and memory for (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Each request's time limit; a client retries after it (failover
    /// runs use a short one, as clients of a cluster do).
    #[arg(long, default_value = "30s")]
    pub timeout: String,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
    /// `watchers`: HTTP clients the watchers spread over (over HTTPS,
    /// the HTTP/2 connections their requests share).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// `gossip`: members of the pool started in this process.
    #[arg(long, default_value_t = 100)]
    pub members: usize,
    /// `gossip`: the members the others join.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// `gossip`: threads the members are spread over (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub arbiters: usize,
    /// `gossip`: each phase's limit.
    #[arg(long, default_value = "120s")]
    pub deadline: String,
    /// `gossip`: how long the steady state's traffic is counted.
    #[arg(long, default_value = "10s")]
    pub steady: String,
    /// `gossip`: joins sent a second at first (0: all at once).
    #[arg(long = "join-rate", default_value_t = 0.0)]
    pub join_rate: f64,
    /// `gossip`, what if: each update's transmissions (0: the LAN default).
    #[arg(long = "max-transmissions", default_value_t = 0)]
    pub max_transmissions: u8,
    #[command(flatten)]
    pub auth: crate::api::TokenArgs,
    /// HTTPS: an `https://` address or CONSUL_HTTP_SSL, with the CLI's
    /// TLS flags and variables.
    #[command(flatten)]
    pub tls: crate::api::TlsArgs,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workload: String,
    pub target: String,
    pub mode: String,
    pub concurrency: usize,
    /// 0 for a closed loop.
    pub rate: f64,
    pub value_size: usize,
    pub duration_s: f64,
    pub ops: u64,
    pub ok: u64,
    pub errors: std::collections::BTreeMap<String, u64>,
    pub throughput_ops_s: f64,
    pub latency: Option<Latency>,
    /// The longest time between two successes (failover runs).
    pub longest_gap_ms: Option<f64>,
    pub processes: Vec<ProcessStats>,
    pub notes: Vec<String>,
    /// When the run started (Unix ms), and its slowest successes, in the
    /// order they ended: what lines a tail up with the servers' logs
    /// (a snapshot, a purge, an election at that moment).
    pub started_unix_ms: u64,
    pub slowest: Vec<Slow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Slow {
    /// Milliseconds into the run when it was answered.
    pub ended_ms: f64,
    pub latency_ms: f64,
}

/// The `n` slowest successes, in the order they ended. Runs before the
/// record's arrays are sorted (latencies and ack times are paired by
/// position until then).
fn slowest(rec: &stats::Recorder, n: usize) -> Vec<Slow> {
    let mut pairs: Vec<(u32, u64)> = rec
        .latencies_us
        .iter()
        .copied()
        .zip(rec.acks_us.iter().copied())
        .collect();
    pairs.sort_unstable_by_key(|p| std::cmp::Reverse(p.0));
    pairs.truncate(n);
    pairs.sort_unstable_by_key(|p| p.1);
    pairs
        .into_iter()
        .map(|(lat, at)| Slow {
            ended_ms: at as f64 / 1000.0,
            latency_ms: f64::from(lat) / 1000.0,
        })
        .collect()
}

struct Plan {
    workload: Workload,
    target: Target,
    mode: Mode,
    duration: Duration,
    timeout: Duration,
}

fn parse(a: &Args) -> Result<Plan> {
    let workload = Workload::parse(&a.workload).ok_or_else(|| {
        anyhow!(
            "unknown workload {:?}: kv-put, kv-get, kv-cas, catalog-register, health-service, blocking, dns or cross-dc",
            a.workload
        )
    })?;
    let target = match a.target.as_str() {
        "meridian" => Target::Meridian,
        "etcd" => Target::Etcd,
        other => bail!("unknown target {other:?}: meridian or etcd"),
    };
    if target == Target::Etcd && !matches!(workload, Workload::KvPut | Workload::KvGet) {
        bail!("etcd takes kv-put and kv-get only");
    }
    let mode = match a.mode.as_str() {
        "default" => Mode::Default,
        "stale" => Mode::Stale,
        "consistent" => Mode::Consistent,
        other => bail!("unknown mode {other:?}: default, stale or consistent"),
    };
    let duration = crate::config::duration::parse_go_duration(&a.duration)
        .map_err(|e| anyhow!("invalid -duration: {e}"))?;
    if duration.is_zero() {
        bail!("-duration must be positive");
    }
    let timeout = crate::config::duration::parse_go_duration(&a.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| anyhow!("invalid -timeout {:?}", a.timeout))?;
    if a.concurrency == 0 {
        bail!("-c must be at least 1");
    }
    if a.keys == 0 || a.instances == 0 {
        bail!("-keys and -instances must be at least 1");
    }
    if !(a.rate >= 0.0 && a.rate.is_finite()) {
        bail!("-rate must be 0 (closed loop) or a positive number");
    }
    if workload == Workload::CrossDc && a.dc.is_none() {
        bail!("cross-dc needs -dc");
    }
    if a.addr.is_empty() {
        bail!("-addr needs at least one address");
    }
    Ok(Plan {
        workload,
        target,
        mode,
        duration,
        timeout,
    })
}

pub fn run(a: Args) -> Result<i32> {
    if a.workload == "watchers" {
        return run_watchers(a);
    }
    if a.workload == "gossip" {
        return run_gossip(a);
    }
    let plan = parse(&a)?;
    let dns: std::net::SocketAddr = a
        .dns_addr
        .parse()
        .map_err(|_| anyhow!("invalid -dns-addr {:?}", a.dns_addr))?;
    // etcd's gateway knows no ACL token.
    let headers = match plan.target {
        Target::Meridian => crate::api::token_headers(a.auth.resolve()?.as_deref())?,
        Target::Etcd => Default::default(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let targets = a
        .addr
        .iter()
        .map(|s| a.tls.target(Some(s)))
        .collect::<Result<Vec<_>, _>>()?;
    // Every address shares the flags, so one TLS configuration serves
    // all the HTTPS ones.
    let tls = match targets.iter().find(|t| t.tls.is_some()) {
        Some(t) => t.rustls()?,
        None => None,
    };
    let report = rt.block_on(async {
        let mut http = reqwest::Client::builder()
            .default_headers(headers)
            .pool_max_idle_per_host(a.concurrency.max(1))
            // Blocking queries wait up to 30 s by design.
            .timeout(if plan.workload == Workload::Blocking {
                plan.timeout.max(Duration::from_secs(60))
            } else {
                plan.timeout
            });
        if let Some(tls) = tls {
            http = http.use_preconfigured_tls(tls);
        }
        let http = http.build()?;
        let ctx = Arc::new(Ctx {
            http,
            bases: targets.into_iter().map(|t| t.base).collect(),
            target: plan.target,
            workload: plan.workload,
            mode: plan.mode,
            value: vec![b'x'; a.value_size],
            keys: a.keys,
            instances: a.instances,
            filter: a.filter.clone(),
            dc: a.dc.clone(),
            dns,
            dns_name: a.dns_name.clone(),
        });
        ctx.prepare()
            .await
            .map_err(|e| anyhow!("preparing the workload failed: {e}"))?;
        measure(&a, &plan, ctx).await
    })?;
    print!("{}", table(&report));
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if report.ok > 0 { 0 } else { 1 })
}

/// `watchers`: its own procedure (see [`watchers`]), on one server.
fn run_watchers(a: Args) -> Result<i32> {
    let [addr] = a.addr.as_slice() else {
        bail!("watchers measures one server: give one -addr");
    };
    let &[pid] = a.pids.as_slice() else {
        bail!("watchers reads the server's memory: give its process id with -pids");
    };
    if a.keys != 1 && a.keys != a.concurrency as u64 {
        bail!("watchers takes -keys 1 (all on one key) or -keys equal to -c (one each)");
    }
    let timeout = crate::config::duration::parse_go_duration(&a.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| anyhow!("invalid -timeout {:?}", a.timeout))?;
    let headers = crate::api::token_headers(a.auth.resolve()?.as_deref())?;
    let target = a.tls.target(Some(addr))?;
    let tls = target.rustls()?;
    let http2 = tls.is_some();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let report = rt.block_on(async {
        watchers::run(watchers::Setup {
            clients: watchers::clients(a.connections, headers, tls)?,
            base: target.base.clone(),
            http2,
            watchers: a.concurrency,
            keys: a.keys,
            pid,
            timeout,
            value_size: a.value_size,
        })
        .await
    })?;
    print!("{}", watchers::table(&report));
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if report.woken == report.watchers {
        0
    } else {
        1
    })
}

/// `gossip`: its own procedure (see [`gossip`]), in this process.
fn run_gossip(a: Args) -> Result<i32> {
    if a.members < 2 {
        bail!("gossip needs -members 2 or more");
    }
    if a.seeds == 0 || a.seeds >= a.members {
        bail!("gossip takes -seeds from 1 to -members minus 1");
    }
    let positive = |flag: &str, v: &str| {
        crate::config::duration::parse_go_duration(v)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| anyhow!("invalid -{flag} {v:?}"))
    };
    if !(a.join_rate >= 0.0 && a.join_rate.is_finite()) {
        bail!("-join-rate must be 0 (all at once) or a positive number");
    }
    let deadline = positive("deadline", &a.deadline)?;
    let steady = positive("steady", &a.steady)?;
    let arbiters = match a.arbiters {
        0 => std::thread::available_parallelism().map_or(1, |c| c.get()),
        n => n,
    };
    let report = actix::System::new().block_on(gossip::run(gossip::Setup {
        members: a.members,
        seeds: a.seeds,
        arbiters,
        deadline,
        steady,
        join_rate: a.join_rate,
        max_transmissions: Some(a.max_transmissions).filter(|&k| k > 0),
        quiet: a.quiet,
    }))?;
    print!("{}", gossip::table(&report));
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let converged = report.join.reached_s.contains_key("1")
        && [&report.one_join, &report.failure, &report.leave]
            .iter()
            .all(|s| s.all_s.is_some());
    Ok(if converged { 0 } else { 1 })
}

async fn measure(a: &Args, plan: &Plan, ctx: Arc<Ctx>) -> Result<Report> {
    let before: Vec<(u32, Option<(u64, u64)>)> =
        a.pids.iter().map(|&p| (p, stats::sample(p))).collect();
    let rss_max: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; a.pids.len()]));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let started_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let sampler = {
        let (pids, rss_max, stop, done) =
            (a.pids.clone(), rss_max.clone(), stop.clone(), done.clone());
        let progress = !a.quiet && plan.duration >= Duration::from_secs(15);
        tokio::spawn(async move {
            let mut tick = 0u64;
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                tick += 1;
                if let Ok(mut m) = rss_max.lock() {
                    for (i, p) in pids.iter().enumerate() {
                        if let Some((_, rss)) = stats::sample(*p) {
                            m[i] = m[i].max(rss);
                        }
                    }
                }
                if progress && tick.is_multiple_of(10) {
                    let secs = started.elapsed().as_secs_f64();
                    let n = done.load(Ordering::Relaxed);
                    eprintln!("[{secs:>5.0} s] {n} ops, {:.0} ops/s", n as f64 / secs);
                }
            }
        })
    };
    let deadline = started + plan.duration;
    let mut rec = if plan.workload == Workload::Blocking {
        blocking(a, ctx.clone(), started, deadline, done.clone()).await
    } else if a.rate > 0.0 {
        open_loop(a.rate, ctx.clone(), started, deadline, done.clone()).await
    } else {
        closed_loop(a.concurrency, ctx.clone(), started, deadline, done.clone()).await
    };
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let _ = sampler.await;

    let ticks = stats::ticks_per_second();
    let rss_max = rss_max.lock().map(|m| m.clone()).unwrap_or_default();
    let processes = before
        .iter()
        .enumerate()
        .map(|(i, (pid, start))| {
            let end = stats::sample(*pid);
            let cpu = match (start, end) {
                (Some((t0, _)), Some((t1, _))) => {
                    (t1.saturating_sub(*t0)) as f64 / ticks / elapsed.as_secs_f64() * 100.0
                }
                _ => 0.0,
            };
            let rss = rss_max
                .get(i)
                .copied()
                .unwrap_or(0)
                .max(end.map_or(0, |(_, r)| r));
            ProcessStats {
                pid: *pid,
                name: stats::process_name(*pid),
                cpu_percent: (cpu * 10.0).round() / 10.0,
                rss_max_mib: (rss as f64 / 1024.0 * 10.0).round() / 10.0,
            }
        })
        .collect();
    let ok = rec.latencies_us.len() as u64;
    let mut notes = Vec::new();
    if plan.target == Target::Etcd {
        notes.push("etcd driven through its HTTP/JSON gateway (/v3/kv/put, /v3/kv/range)".into());
    }
    if plan.workload == Workload::KvCas {
        let sum = ctx.counters_sum().await.unwrap_or(0);
        notes.push(format!(
            "counters sum {sum} for {ok} acknowledged increments{}",
            if sum == ok { "" } else { " (MISMATCH)" }
        ));
    }
    if plan.workload == Workload::Blocking {
        notes.push("latency = write sent -> watcher woken with the new value".into());
    }
    let ops = rec.ops();
    let slow = slowest(&rec, 20);
    Ok(Report {
        workload: plan.workload.name().into(),
        target: a.target.clone(),
        mode: a.mode.clone(),
        concurrency: a.concurrency,
        rate: a.rate,
        value_size: a.value_size,
        duration_s: (elapsed.as_secs_f64() * 100.0).round() / 100.0,
        ops,
        ok,
        errors: std::mem::take(&mut rec.errors),
        throughput_ops_s: (ok as f64 / elapsed.as_secs_f64() * 10.0).round() / 10.0,
        longest_gap_ms: rec
            .longest_gap(elapsed)
            .map(|d| (d.as_secs_f64() * 1e5).round() / 100.0),
        latency: stats::latency(&mut rec.latencies_us),
        processes,
        notes,
        started_unix_ms,
        slowest: slow,
    })
}

async fn closed_loop(
    clients: usize,
    ctx: Arc<Ctx>,
    started: Instant,
    deadline: Instant,
    done: Arc<AtomicU64>,
) -> Recorder {
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let (ctx, done) = (ctx.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::default();
            let mut sock = None;
            let mut seq = c as u64;
            // The server this client talks to; the next one after an
            // error, as clients of a cluster do when a server dies.
            let mut server = c;
            while Instant::now() < deadline {
                let t = Instant::now();
                match ctx.op(server, seq, &mut sock).await {
                    Ok(()) => rec.ok(t.elapsed(), started.elapsed()),
                    Err(e) => {
                        rec.err(e);
                        server += 1;
                        // A refused connection answers at once: no spin.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
                seq += clients as u64;
            }
            rec
        }));
    }
    let mut all = Recorder::default();
    for t in tasks {
        if let Ok(r) = t.await {
            all.merge(r);
        }
    }
    all
}

/// Operations started on a fixed schedule whatever the answers do; at most
/// this many in flight before new ones count as dropped.
const MAX_IN_FLIGHT: u64 = 20_000;

async fn open_loop(
    rate: f64,
    ctx: Arc<Ctx>,
    started: Instant,
    deadline: Instant,
    done: Arc<AtomicU64>,
) -> Recorder {
    let shared = Arc::new(Mutex::new(Recorder::default()));
    let in_flight = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    let mut seq = 0u64;
    loop {
        let due = start + interval.mul_f64(seq as f64);
        if due.into_std() >= deadline {
            break;
        }
        tokio::time::sleep_until(due).await;
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            if let Ok(mut r) = shared.lock() {
                r.err("dropped: too many in flight");
            }
            seq += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (ctx, shared, in_flight, done) =
            (ctx.clone(), shared.clone(), in_flight.clone(), done.clone());
        let n = seq;
        tasks.push(tokio::spawn(async move {
            let mut sock = None;
            let r = ctx.op(n as usize, n, &mut sock).await;
            // From when it was due: queueing in the client counts too.
            let took = due.elapsed();
            if let Ok(mut rec) = shared.lock() {
                match r {
                    Ok(()) => rec.ok(took, started.elapsed()),
                    Err(e) => rec.err(e),
                }
            }
            in_flight.fetch_sub(1, Ordering::Relaxed);
            done.fetch_add(1, Ordering::Relaxed);
        }));
        seq += 1;
    }
    for t in tasks {
        let _ = t.await;
    }
    let r = shared.lock().map(|r| r.clone()).unwrap_or_default();
    r
}

/// `blocking`: `watchers` blocking queries on `keys` keys, one writer
/// stamping keys at `rate` a second (10 by default).
async fn blocking(
    a: &Args,
    ctx: Arc<Ctx>,
    started: Instant,
    deadline: Instant,
    done: Arc<AtomicU64>,
) -> Recorder {
    let rate = if a.rate > 0.0 { a.rate } else { 10.0 };
    let writer = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            // Watchers need their first index before the first write.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut errors = Recorder::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                if let Err(e) = ctx.stamp(n).await {
                    errors.err(format!("write: {e}"));
                }
                n += 1;
                tokio::time::sleep(Duration::from_secs_f64(1.0 / rate)).await;
            }
            errors
        })
    };
    let mut tasks = Vec::new();
    for c in 0..a.concurrency {
        let (ctx, done) = (ctx.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut rec = Recorder::default();
            let mut index = 0u64;
            while Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, ctx.watch_once(c, &mut index)).await {
                    Ok(Ok(Some(d))) => {
                        rec.ok(d, started.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => rec.err(e),
                    Err(_) => break,
                }
            }
            rec
        }));
    }
    let mut all = Recorder::default();
    for t in tasks {
        if let Ok(r) = t.await {
            all.merge(r);
        }
    }
    if let Ok(w) = writer.await {
        all.merge(w);
    }
    all
}

/// The human-readable report.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let shape = if r.workload == "blocking" {
        let writes = if r.rate > 0.0 { r.rate } else { 10.0 };
        format!("{} watchers, {writes} writes/s", r.concurrency)
    } else if r.rate > 0.0 {
        format!("open loop {} ops/s", r.rate)
    } else {
        format!("{} clients", r.concurrency)
    };
    out.push_str(&format!(
        "workload {}  target {}  mode {}  {shape}  value {} B  {:.1} s\n",
        r.workload, r.target, r.mode, r.value_size, r.duration_s
    ));
    out.push_str(&format!(
        "ops {}  ok {}  errors {}  throughput {:.1} ops/s\n",
        r.ops,
        r.ok,
        r.ops - r.ok,
        r.throughput_ops_s
    ));
    if let Some(g) = r.longest_gap_ms {
        out.push_str(&format!("longest gap between successes {g:.1} ms\n"));
    }
    if let Some(l) = &r.latency {
        out.push_str(&format!(
            "latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}\n",
            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms
        ));
    }
    if !r.slowest.is_empty() {
        let at: Vec<String> = r
            .slowest
            .iter()
            .map(|s| format!("{:.1}s:{:.0}", s.ended_ms / 1000.0, s.latency_ms))
            .collect();
        out.push_str(&format!("slowest (s into the run: ms)  {}\n", at.join(" ")));
    }
    for (kind, n) in &r.errors {
        out.push_str(&format!("error  {n:>8}  {kind}\n"));
    }
    for p in &r.processes {
        out.push_str(&format!(
            "process {} ({})  cpu {:.1}%  rss max {:.1} MiB\n",
            p.pid, p.name, p.cpu_percent, p.rss_max_mib
        ));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(workload: &str) -> Args {
        Args {
            workload: workload.into(),
            target: "meridian".into(),
            addr: vec!["127.0.0.1:8500".into()],
            concurrency: 4,
            duration: "1s".into(),
            rate: 0.0,
            value_size: 128,
            keys: 10,
            mode: "default".into(),
            instances: 10,
            filter: None,
            dc: None,
            dns_addr: "127.0.0.1:8600".into(),
            dns_name: "x.service.consul".into(),
            pids: vec![],
            timeout: "30s".into(),
            json: None,
            quiet: true,
            connections: 1,
            members: 100,
            seeds: 1,
            arbiters: 0,
            deadline: "120s".into(),
            steady: "10s".into(),
            join_rate: 0.0,
            max_transmissions: 0,
            auth: Default::default(),
            tls: Default::default(),
        }
    }

    #[test]
    fn bad_arguments_are_refused_with_their_name() {
        let err = |a: Args| parse(&a).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err(args("nope")).contains("unknown workload \"nope\""));
        assert!(err(Args {
            concurrency: 0,
            ..args("kv-put")
        })
        .contains("-c"));
        assert!(err(Args {
            duration: "soon".into(),
            ..args("kv-put")
        })
        .contains("-duration"));
        assert!(err(Args {
            target: "etcd".into(),
            ..args("dns")
        })
        .contains("etcd takes"));
        assert!(err(Args {
            mode: "eventual".into(),
            ..args("kv-get")
        })
        .contains("mode"));
        assert!(err(args("cross-dc")).contains("-dc"));
        assert!(err(Args {
            rate: -1.0,
            ..args("kv-put")
        })
        .contains("-rate"));
        assert!(parse(&args("kv-get")).is_ok());
    }
}
