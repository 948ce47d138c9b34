//! `meridian bench -workload gossip -members N`: what the LAN gossip pool
//! costs and how fast it spreads news as it grows. Starts N real
//! [`LanGossip`] actors in this one process on 127.0.0.1 (each its own UDP
//! socket, the LAN defaults, no encryption, no snapshot file), spread
//! over a few actix arbiters (one thread each, by default one per core),
//! and measures, one phase after another, each bounded by `-deadline`:
//!
//! 1. joins: members 1..N join the seed(s), all at once or `-join-rate`
//!    a second (a member that still knows nobody is joined again, as the
//!    agent's `retry_join` does: judged after 1 s, then 1, 2, 4 s...
//!    apart); convergence is the share of the N·(N-1) (observer, member)
//!    pairs, self excluded, in which the observer holds the member alive,
//!    and the times, from the first join sent, when it first reached 50,
//!    90, 99, 99.9, 99.99 and 100 %;
//! 2. one more member joins the pool: when each other member first sees
//!    it alive, and when its own view is complete;
//! 3. steady state: UDP bytes and datagrams sent and received per member
//!    and second, from the pool's own counters ([`crate::lan::wire_totals`]);
//! 4. a crash (`Stop`, no leave): when each other member sees it failed;
//! 5. a graceful leave (`Leave`): when each other member sees it left
//!    (and how many saw a failure instead);
//!
//! with the process's RSS before and after the members started and once
//! they converged, and its CPU over each phase (all members share the
//! machine's cores here, where a real pool has one machine each, so a
//! saturated CPU shows up as slowness and as false failures, both counted).
//!
//! What each member sees comes from its member events (`Subscribe`),
//! timestamped as they arrive, not from polling `Members`: polling 1,000
//! members for 1,000 entries each every 100 ms would itself load the CPU
//! being measured. At the end of the joins a sample of 50 members'
//! `Members` answers is read once and compared with the views the events
//! built.
//!
//! All N joining at once is a whole datacenter restarting; in one process
//! on a small machine it can take more CPU than there is (each member's
//! work per join grows with N, and there are N members here), and then
//! the later phases measure a pool busy with false failures: `-join-rate`
//! paces the joins so that they run on a settled pool.
//!
//! Serf's convergence simulator (serf.io, "Convergence Simulator") is
//! computed beside the measurements, for Serf's defaults and for ours.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::{anyhow, Context as _, Result};
use serde::Serialize;

use super::stats::{self, Latency};
use crate::lan::{
    self, Join, LanGossip, LanOptions, Leave, MemberEvent, MemberStatus, Members, Stop, Subscribe,
};

pub struct Setup {
    pub members: usize,
    /// The first `seeds` members are the ones the others join.
    pub seeds: usize,
    /// Threads the members are spread over.
    pub arbiters: usize,
    /// Each phase's limit.
    pub deadline: Duration,
    /// How long the steady state's traffic is counted.
    pub steady: Duration,
    /// Joins sent a second in phase 1 (0: all at once).
    pub join_rate: f64,
    /// What if: each update's transmissions (`None`: the LAN default).
    pub max_transmissions: Option<u8>,
    pub quiet: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct GossipReport {
    pub members: usize,
    pub seeds: usize,
    pub arbiters: usize,
    pub cores: usize,
    pub deadline_s: f64,
    /// The SWIM timings every member ran with (the LAN defaults).
    pub timings: Timings,
    /// Starting the N actors (binding their sockets).
    pub start_s: f64,
    pub rss_before_kib: u64,
    pub rss_started_kib: u64,
    pub rss_converged_kib: u64,
    /// (converged - before) / members.
    pub rss_per_member_kib: f64,
    pub join: JoinPhase,
    pub one_join: Spread,
    pub steady: Steady,
    pub failure: Spread,
    pub leave: Spread,
    pub serf_model: SerfModel,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timings {
    pub probe_period_ms: u64,
    pub probe_rtt_ms: u64,
    pub suspect_to_down_ms: u64,
    pub gossip_interval_ms: Option<u64>,
    pub gossip_fanout: Option<usize>,
    pub max_transmissions: u8,
    pub max_packet_size: usize,
    pub periodic_announce_s: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JoinPhase {
    /// N·(N-1): every member's view of every other.
    pub pairs: u64,
    /// Joins sent a second (0: all at once), and when the last was sent.
    pub join_rate: f64,
    pub last_join_s: f64,
    /// Share of the pairs alive when the phase ended.
    pub final_fraction: f64,
    /// Seconds from the first join sent until the share of pairs alive
    /// first reached each mark ("0.99": 99 %); absent if it never did.
    pub reached_s: BTreeMap<String, f64>,
    /// When each member's own view was complete (the last other member it
    /// saw come up), over the members whose view was.
    pub view_complete: Option<Latency>,
    pub views_complete: usize,
    /// Joins sent again to members that knew nobody a while after theirs.
    pub join_retries: u64,
    /// Members whose `Members` answer was compared with their events'
    /// view, and those that disagreed (or did not answer in 10 s).
    pub verified: usize,
    pub verify_mismatches: usize,
    pub false_failures: u64,
    pub cpu_cores: f64,
    pub cpu_s: f64,
    /// (seconds, share of pairs alive), every 100 ms.
    pub curve: Vec<(f64, f64)>,
}

/// How one piece of news (a join, a failure, a leave) reached the others.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub what: String,
    pub observers: usize,
    pub seen: usize,
    /// Seconds from the action until the last observer saw it.
    pub all_s: Option<f64>,
    /// Over the observers that saw it, from the action.
    pub latency: Option<Latency>,
    /// Observers that saw another end (a leave seen as a failure).
    pub seen_otherwise: usize,
    /// The newcomer's own view complete (one join only).
    pub own_view_s: Option<f64>,
    /// Joins sent again to a newcomer that knew nobody (one join only).
    pub join_retries: u64,
    /// Other members declared failed or left meanwhile.
    pub false_failures: u64,
    pub cpu_cores: f64,
    pub cpu_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Steady {
    pub seconds: f64,
    pub members: usize,
    pub sent_bytes_per_member_s: f64,
    pub sent_packets_per_member_s: f64,
    pub received_bytes_per_member_s: f64,
    pub received_packets_per_member_s: f64,
    pub false_failures: u64,
    pub cpu_cores: f64,
    pub cpu_s: f64,
}

/// Serf's convergence simulator: the seconds until the share of nodes
/// that heard one piece of news reaches 99 % and 99.99 %.
#[derive(Debug, Clone, Serialize)]
pub struct SerfModel {
    pub serf_interval_ms: u64,
    pub serf_fanout: u32,
    pub serf_99_s: f64,
    pub serf_9999_s: f64,
    /// The same model with our gossip interval and fanout.
    pub ours_99_s: Option<f64>,
    pub ours_9999_s: Option<f64>,
    /// The simulator's "estimated max bandwidth" (1,400-byte packets to
    /// `fanout` nodes each interval, doubled for receiving), bytes/s.
    pub serf_max_bytes_s: f64,
}

/// The model of serf.io's simulator: after `x` rounds a share
/// 1 / (1 + (n+1)·e^(-fanout·x/2)) of `n` nodes has the news; the time of
/// the first round at or past `share`.
pub fn serf_model_s(n: usize, interval: Duration, fanout: u32, share: f64) -> f64 {
    let n = n as f64;
    for round in 0..100u32 {
        let got = 1.0 / (1.0 + (n + 1.0) * (-0.5 * f64::from(fanout) * f64::from(round)).exp());
        if got >= share {
            return f64::from(round) * interval.as_secs_f64();
        }
    }
    100.0 * interval.as_secs_f64()
}

const MARKS: [(&str, f64); 6] = [
    ("0.5", 0.5),
    ("0.9", 0.9),
    ("0.99", 0.99),
    ("0.999", 0.999),
    ("0.9999", 0.9999),
    ("1", 1.0),
];

const UNKNOWN: u8 = 0;
const ALIVE: u8 = 1;
const LEFT: u8 = 2;
const FAILED: u8 = 3;

fn name(i: usize) -> String {
    format!("g{i:04}")
}

fn index(name: &str) -> Option<usize> {
    name.strip_prefix('g')?.parse().ok()
}

/// One piece of news being followed: when each observer first saw
/// `member` in state `want`.
struct Target {
    member: usize,
    want: u8,
    first: Vec<Option<Instant>>,
    otherwise: Vec<bool>,
}

/// Every member's view of every other, as their events told it.
struct Views {
    slots: usize,
    /// `status[observer * slots + member]`.
    status: Vec<u8>,
    /// Per observer: members it holds alive, and when it last saw one
    /// come up.
    alive: Vec<u32>,
    last_up: Vec<Option<Instant>>,
    alive_pairs: u64,
    /// Members stopped or leaving on purpose: their end is no false failure.
    ended: Vec<bool>,
    false_failures: u64,
    /// The join phase's marks: pairs needed, when reached.
    marks: Vec<(u64, Option<Instant>)>,
    target: Option<Target>,
}

impl Views {
    fn new(slots: usize) -> Views {
        Views {
            slots,
            status: vec![UNKNOWN; slots * slots],
            alive: vec![0; slots],
            last_up: vec![None; slots],
            alive_pairs: 0,
            ended: vec![false; slots],
            false_failures: 0,
            marks: Vec::new(),
            target: None,
        }
    }

    fn record(&mut self, observer: usize, member: usize, to: u8, at: Instant) {
        if observer >= self.slots || member >= self.slots || observer == member {
            return;
        }
        let cell = &mut self.status[observer * self.slots + member];
        let from = std::mem::replace(cell, to);
        if from != ALIVE && to == ALIVE {
            self.alive[observer] += 1;
            self.alive_pairs += 1;
            self.last_up[observer] = Some(at);
            for (needed, reached) in &mut self.marks {
                if reached.is_none() && self.alive_pairs >= *needed {
                    *reached = Some(at);
                }
            }
        } else if from == ALIVE && to != ALIVE {
            self.alive[observer] -= 1;
            self.alive_pairs -= 1;
        }
        if (to == FAILED || to == LEFT) && from != to && !self.ended[member] {
            self.false_failures += 1;
        }
        if let Some(t) = &mut self.target {
            if t.member == member && t.first[observer].is_none() {
                if to == t.want {
                    t.first[observer] = Some(at);
                } else if to != ALIVE && to != UNKNOWN {
                    t.otherwise[observer] = true;
                }
            }
        }
    }
}

type Shared = Arc<Mutex<Views>>;

fn lock(v: &Shared) -> MutexGuard<'_, Views> {
    v.lock().unwrap_or_else(|e| e.into_inner())
}

/// Receives one member's events, on that member's arbiter.
struct Watch {
    observer: usize,
    views: Shared,
}

impl Actor for Watch {
    type Context = Context<Self>;
}

impl Handler<MemberEvent> for Watch {
    type Result = ();

    fn handle(&mut self, ev: MemberEvent, _: &mut Context<Self>) {
        let at = Instant::now();
        let (m, to) = match ev {
            MemberEvent::Join(m) | MemberEvent::Update(m) => (m, ALIVE),
            MemberEvent::Leave(m) => (m, LEFT),
            MemberEvent::Fail(m) => (m, FAILED),
            MemberEvent::Reap(m) => (m, UNKNOWN),
        };
        if let Some(member) = index(&m.name) {
            lock(&self.views).record(self.observer, member, to, at);
        }
    }
}

/// CPU seconds of this process so far.
fn cpu_s() -> f64 {
    stats::sample(std::process::id())
        .map(|(ticks, _)| ticks as f64 / stats::ticks_per_second())
        .unwrap_or(0.0)
}

fn rss_kib() -> Result<u64> {
    stats::sample(std::process::id())
        .map(|(_, rss)| rss)
        .ok_or_else(|| anyhow!("cannot read /proc/self"))
}

/// CPU use over a phase, in cores.
struct Clock {
    wall: Instant,
    cpu: f64,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: cpu_s(),
        }
    }

    /// Cores busy on average, and CPU seconds, since the start.
    fn used(&self) -> (f64, f64) {
        let cpu = cpu_s() - self.cpu;
        (
            round2(cpu / self.wall.elapsed().as_secs_f64().max(1e-3)),
            round2(cpu),
        )
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Percentiles of microsecond times (reported in ms, as the other modes do).
fn latency(mut us: Vec<u32>) -> Option<Latency> {
    stats::latency(&mut us)
}

struct Pool {
    arbiters: Vec<Arbiter>,
    addrs: Vec<Option<Addr<LanGossip>>>,
    sockets: Vec<SocketAddr>,
    views: Shared,
    options: LanOptions,
}

impl Pool {
    /// Starts member `i` on its arbiter, its events watched.
    async fn start(&self, i: usize) -> Result<(Addr<LanGossip>, SocketAddr)> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let views = self.views.clone();
        let options = self.options.clone();
        let spawned = self.arbiters[i % self.arbiters.len()].spawn(async move {
            let tags = BTreeMap::from([
                ("role".to_string(), "node".to_string()),
                ("dc".to_string(), "dc1".to_string()),
            ]);
            let started = LanGossip::start(
                name(i),
                SocketAddr::from(([127, 0, 0, 1], 0)),
                std::net::IpAddr::from([127, 0, 0, 1]),
                tags,
                options,
            )
            .await;
            if let Ok((addr, _)) = &started {
                let watch = Watch { observer: i, views }.start();
                addr.do_send(Subscribe(watch.recipient()));
            }
            let _ = tx.send(started);
        });
        if !spawned {
            return Err(anyhow!("arbiter stopped"));
        }
        let started = rx.await.context("member start dropped")?;
        started.with_context(|| format!("cannot bind member {i}'s UDP socket"))
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Addr<LanGossip>)> {
        self.addrs
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.as_ref().map(|a| (i, a)))
    }
}

fn progress(quiet: bool, msg: String) {
    if !quiet {
        let t = BEGAN.get_or_init(Instant::now).elapsed().as_secs_f64();
        eprintln!("[{t:7.1} s] {msg}");
    }
}

static BEGAN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

pub async fn run(s: Setup) -> Result<GossipReport> {
    BEGAN.get_or_init(Instant::now);
    let n = s.members;
    let slots = n + 1;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    // The LAN default, as `LanGossip::start` picks it, unless told otherwise.
    let mut timings = lan::lan_config(32);
    let mut notes = Vec::new();
    let options = match s.max_transmissions.and_then(std::num::NonZeroU8::new) {
        Some(k) => {
            timings.max_transmissions = k;
            notes.push(format!(
                "what-if: max_transmissions {k} instead of the LAN default (its telemetry then says wan)"
            ));
            LanOptions {
                timings: Some(timings.clone()),
                ..LanOptions::default()
            }
        }
        None => LanOptions::default(),
    };

    let views: Shared = Arc::new(Mutex::new(Views::new(slots)));
    let rss_before = rss_kib()?;
    let mut pool = Pool {
        arbiters: (0..s.arbiters.max(1)).map(|_| Arbiter::new()).collect(),
        addrs: vec![None; slots],
        sockets: vec![SocketAddr::from(([127, 0, 0, 1], 0)); slots],
        views: views.clone(),
        options,
    };

    // Start every member (the extra one too, not joined yet).
    let t = Instant::now();
    let started = futures::future::join_all((0..slots).map(|i| pool.start(i))).await;
    for (i, r) in started.into_iter().enumerate() {
        let (addr, sock) = r?;
        pool.addrs[i] = Some(addr);
        pool.sockets[i] = sock;
    }
    let start_s = round2(t.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_started = rss_kib()?;
    progress(
        s.quiet,
        format!(
            "started {slots} members on {} arbiter(s) in {start_s} s",
            pool.arbiters.len()
        ),
    );

    let join = join_phase(&pool, &s).await?;
    progress(
        s.quiet,
        format!(
            "joins: {:.4} of pairs alive, reached {:?}",
            join.final_fraction, join.reached_s
        ),
    );
    if !join.reached_s.contains_key("1") {
        notes.push(format!(
            "the joins did not converge within {} s",
            s.deadline.as_secs()
        ));
    }

    // 2. One more member joins the converged pool.
    let newcomer = n;
    let observers: Vec<usize> = (0..n).collect();
    let seeds: Vec<SocketAddr> = pool.sockets[..s.seeds.min(n)].to_vec();
    let new_addr = pool.addrs[newcomer].clone();
    let one_join = spread(
        &pool,
        &s,
        newcomer,
        &observers,
        Action::Join(new_addr, seeds),
    )
    .await;
    progress(s.quiet, spread_line(&one_join));
    let rss_converged = rss_kib()?;

    // 3. Steady state.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let steady = steady_phase(&pool, &s).await;
    progress(
        s.quiet,
        format!(
            "steady: {:.0} B/s and {:.1} datagrams/s sent per member, {:.2} cores",
            steady.sent_bytes_per_member_s, steady.sent_packets_per_member_s, steady.cpu_cores
        ),
    );

    // 4. A crash: a member that is no seed stops without a word.
    let crashed = (n / 2).max(s.seeds.min(n - 1)).min(n - 1);
    lock(&views).ended[crashed] = true;
    let observers: Vec<usize> = (0..slots).filter(|&i| i != crashed).collect();
    let crashed_addr = pool.addrs[crashed].take();
    let failure = spread(&pool, &s, crashed, &observers, Action::Crash(crashed_addr)).await;
    progress(s.quiet, spread_line(&failure));

    // 5. A graceful leave, by another member that is no seed.
    let leaving = if crashed + 1 < n {
        crashed + 1
    } else {
        newcomer
    };
    lock(&views).ended[leaving] = true;
    let observers: Vec<usize> = (0..slots)
        .filter(|&i| i != crashed && i != leaving)
        .collect();
    let leaving_addr = pool.addrs[leaving].take();
    let leave = spread(
        &pool,
        &s,
        leaving,
        &observers,
        Action::Leave(leaving_addr.clone()),
    )
    .await;
    if let Some(a) = &leaving_addr {
        let _ = a.send(Stop).await;
    }
    progress(s.quiet, spread_line(&leave));

    // Stop everything.
    for (_, a) in pool.live() {
        let _ = a.send(Stop).await;
    }
    for a in &pool.arbiters {
        a.stop();
    }

    if join.false_failures + one_join.false_failures + steady.false_failures > 0 {
        notes
            .push("live members were declared failed: the members share this machine's CPU".into());
    }
    let ours_interval = timings.periodic_gossip.as_ref().map(|p| p.frequency);
    let ours_fanout = timings
        .periodic_gossip
        .as_ref()
        .map(|p| p.num_members.get() as u32);
    let serf = Duration::from_millis(200);
    Ok(GossipReport {
        members: n,
        seeds: s.seeds.min(n),
        arbiters: pool.arbiters.len(),
        cores,
        deadline_s: s.deadline.as_secs_f64(),
        timings: Timings {
            probe_period_ms: timings.probe_period.as_millis() as u64,
            probe_rtt_ms: timings.probe_rtt.as_millis() as u64,
            suspect_to_down_ms: timings.suspect_to_down_after.as_millis() as u64,
            gossip_interval_ms: ours_interval.map(|d| d.as_millis() as u64),
            gossip_fanout: timings
                .periodic_gossip
                .as_ref()
                .map(|p| p.num_members.get()),
            max_transmissions: timings.max_transmissions.get(),
            max_packet_size: timings.max_packet_size.get(),
            periodic_announce_s: timings
                .periodic_announce
                .as_ref()
                .map(|p| p.frequency.as_secs()),
        },
        start_s,
        rss_before_kib: rss_before,
        rss_started_kib: rss_started,
        rss_converged_kib: rss_converged,
        rss_per_member_kib: round2(rss_converged.saturating_sub(rss_before) as f64 / slots as f64),
        join,
        one_join,
        steady,
        failure,
        leave,
        serf_model: SerfModel {
            serf_interval_ms: 200,
            serf_fanout: 3,
            serf_99_s: round2(serf_model_s(n, serf, 3, 0.99)),
            serf_9999_s: round2(serf_model_s(n, serf, 3, 0.9999)),
            ours_99_s: ours_interval
                .zip(ours_fanout)
                .map(|(i, f)| round2(serf_model_s(n, i, f, 0.99))),
            ours_9999_s: ours_interval
                .zip(ours_fanout)
                .map(|(i, f)| round2(serf_model_s(n, i, f, 0.9999))),
            serf_max_bytes_s: 1400.0 * 3.0 * 5.0 * 2.0,
        },
        notes,
    })
}

/// The next join attempt of a member that still knows nobody, as the
/// agent's `retry_join` spaces them: judged 1 s after an attempt, then
/// 1, 2, 4... s (at most 30 s) before the next.
fn next_attempt(last: Instant, attempt: u32) -> Instant {
    last + Duration::from_secs(1)
        + Duration::from_secs(1u64 << attempt.min(5)).min(Duration::from_secs(30))
}

/// Members 1..N join the seeds, all at once or `-join-rate` a second;
/// waits until every pair is alive.
async fn join_phase(pool: &Pool, s: &Setup) -> Result<JoinPhase> {
    let n = s.members;
    let seeds: Vec<SocketAddr> = pool.sockets[..s.seeds.clamp(1, n)].to_vec();
    let pairs = n as u64 * (n as u64 - 1);
    {
        let mut v = lock(&pool.views);
        v.marks = MARKS
            .iter()
            .map(|(_, share)| (((*share * pairs as f64) - 1e-9).ceil() as u64, None))
            .collect();
    }
    let joiners: Vec<(usize, Addr<LanGossip>)> = pool
        .live()
        .filter(|(i, _)| (1..n).contains(i))
        .map(|(i, a)| (i, a.clone()))
        .collect();
    let clock = Clock::start();
    let t0 = Instant::now();
    // Per joiner: when its next attempt is due (None: not joined yet), and
    // how many it made.
    let mut retry: Vec<(Option<Instant>, u32)> = vec![(None, 0); joiners.len()];
    let mut sent = 0;
    let mut last_join = t0;
    let mut retries = 0;
    let mut curve = Vec::new();
    let mut next_point = Duration::ZERO;
    loop {
        let elapsed = t0.elapsed();
        // The joins due by now.
        while sent < joiners.len()
            && (s.join_rate <= 0.0 || sent as f64 / s.join_rate <= elapsed.as_secs_f64())
        {
            joiners[sent].1.do_send(Join(seeds.clone()));
            last_join = Instant::now();
            retry[sent] = (Some(next_attempt(last_join, 0)), 1);
            sent += 1;
        }
        let (alive_pairs, lonely) = {
            let v = lock(&pool.views);
            let now = Instant::now();
            let lonely: Vec<usize> = (0..sent)
                .filter(|&k| v.alive[joiners[k].0] == 0 && retry[k].0.is_some_and(|t| now >= t))
                .collect();
            (v.alive_pairs, lonely)
        };
        if elapsed >= next_point {
            curve.push((
                round3(elapsed.as_secs_f64()),
                alive_pairs as f64 / pairs as f64,
            ));
            next_point += Duration::from_millis(100);
        }
        if alive_pairs >= pairs || elapsed > s.deadline {
            break;
        }
        for k in lonely {
            let attempt = retry[k].1;
            retry[k] = (Some(next_attempt(Instant::now(), attempt)), attempt + 1);
            retries += 1;
            joiners[k].1.do_send(Join(seeds.clone()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (cpu_cores, cpu_s) = clock.used();

    // Let late events land, then compare the views with `Members`.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let verify_mismatches = verify(pool, n).await;

    let mut v = lock(&pool.views);
    let reached_s = MARKS
        .iter()
        .zip(&v.marks)
        .filter_map(|((label, _), (_, at))| {
            at.map(|at| {
                (
                    label.to_string(),
                    round3(at.saturating_duration_since(t0).as_secs_f64()),
                )
            })
        })
        .collect();
    let complete: Vec<u32> = (0..n)
        .filter(|&i| v.alive[i] as usize >= n - 1)
        .filter_map(|i| v.last_up[i])
        .map(|at| micros(at.saturating_duration_since(t0)))
        .collect();
    let report = JoinPhase {
        pairs,
        join_rate: s.join_rate,
        last_join_s: round3(last_join.saturating_duration_since(t0).as_secs_f64()),
        final_fraction: v.alive_pairs as f64 / pairs as f64,
        reached_s,
        views_complete: complete.len(),
        view_complete: latency(complete),
        join_retries: retries,
        verified: VERIFY_SAMPLE.min(n),
        verify_mismatches,
        false_failures: v.false_failures,
        cpu_cores,
        cpu_s,
        curve,
    };
    v.marks.clear();
    Ok(report)
}

/// Members whose `Members` answer is compared with their events' view.
const VERIFY_SAMPLE: usize = 50;

/// Compares a sample of members' `Members` answers (alive others) with
/// the views their events built; answers how many disagree or did not
/// answer within 10 s. A sample, asked at once: on a saturated pool each
/// answer waits behind the member's backlog.
async fn verify(pool: &Pool, n: usize) -> usize {
    let step = n.div_ceil(VERIFY_SAMPLE).max(1);
    let asks = pool
        .live()
        .filter(|(i, _)| *i < n && i % step == 0)
        .map(|(i, a)| {
            let a = a.clone();
            async move {
                let members = tokio::time::timeout(Duration::from_secs(10), a.send(Members)).await;
                (i, members)
            }
        });
    let mut mismatches = 0;
    for (i, members) in futures::future::join_all(asks).await {
        let Ok(Ok(members)) = members else {
            mismatches += 1;
            continue;
        };
        let alive = members
            .iter()
            .filter(|m| m.status == MemberStatus::Alive && index(&m.name) != Some(i))
            .count();
        if alive != lock(&pool.views).alive[i] as usize {
            mismatches += 1;
        }
    }
    mismatches
}

/// The news [`spread`] makes and follows.
enum Action {
    /// The member joins these seeds (again, as `retry_join` does, while
    /// it knows nobody).
    Join(Option<Addr<LanGossip>>, Vec<SocketAddr>),
    /// It stops without a word.
    Crash(Option<Addr<LanGossip>>),
    /// It leaves gracefully.
    Leave(Option<Addr<LanGossip>>),
}

/// Follows one piece of news about `member`: when each observer first
/// saw it alive, failed or left (as `action` should make it); waits until
/// every observer did, or the deadline.
async fn spread(
    pool: &Pool,
    s: &Setup,
    member: usize,
    observers: &[usize],
    action: Action,
) -> Spread {
    let (what, want) = match &action {
        Action::Join(..) => ("one join", ALIVE),
        Action::Crash(_) => ("failure", FAILED),
        Action::Leave(_) => ("leave", LEFT),
    };
    let false_before = {
        let mut v = lock(&pool.views);
        v.target = Some(Target {
            member,
            want,
            first: vec![None; v.slots],
            otherwise: vec![false; v.slots],
        });
        v.false_failures
    };
    let clock = Clock::start();
    let t0 = Instant::now();
    match &action {
        Action::Join(Some(a), seeds) => a.do_send(Join(seeds.clone())),
        Action::Crash(Some(a)) => a.do_send(Stop),
        Action::Leave(Some(a)) => a.do_send(Leave),
        _ => {}
    }
    // A newcomer's own view is complete when it holds every observer alive.
    let joining = want == ALIVE;
    let (mut retry_at, mut attempt, mut join_retries) = (next_attempt(t0, 0), 1, 0);
    loop {
        let (seen, own, lonely) = {
            let v = lock(&pool.views);
            let seen = v.target.as_ref().map_or(0, |t| {
                observers.iter().filter(|&&o| t.first[o].is_some()).count()
            });
            let alive = v.alive[member] as usize;
            (seen, alive >= observers.len(), alive == 0)
        };
        if (seen == observers.len() && (own || !joining)) || t0.elapsed() > s.deadline {
            break;
        }
        if let Action::Join(Some(a), seeds) = &action {
            if lonely && Instant::now() >= retry_at {
                a.do_send(Join(seeds.clone()));
                retry_at = next_attempt(Instant::now(), attempt);
                attempt += 1;
                join_retries += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (cpu_cores, cpu_s) = clock.used();
    let mut v = lock(&pool.views);
    let false_failures = v.false_failures - false_before;
    let Some(t) = v.target.take() else {
        unreachable!("the target is only taken here")
    };
    let times: Vec<u32> = observers
        .iter()
        .filter_map(|&o| t.first[o])
        .map(|at| micros(at.saturating_duration_since(t0)))
        .collect();
    let seen = times.len();
    let own_view_s = (joining && v.alive[member] as usize >= observers.len())
        .then(|| v.last_up[member])
        .flatten()
        .map(|at| round3(at.saturating_duration_since(t0).as_secs_f64()));
    let all_s = (seen == observers.len())
        .then(|| times.iter().max().map(|&us| round3(f64::from(us) / 1e6)))
        .flatten();
    Spread {
        what: what.to_string(),
        observers: observers.len(),
        seen,
        all_s,
        latency: latency(times),
        seen_otherwise: observers.iter().filter(|&&o| t.otherwise[o]).count(),
        own_view_s,
        join_retries,
        false_failures,
        cpu_cores,
        cpu_s,
    }
}

async fn steady_phase(pool: &Pool, s: &Setup) -> Steady {
    let members = pool.live().count();
    let false_before = lock(&pool.views).false_failures;
    let clock = Clock::start();
    let before = lan::wire_totals();
    let t0 = Instant::now();
    tokio::time::sleep(s.steady).await;
    let after = lan::wire_totals();
    let secs = t0.elapsed().as_secs_f64();
    let (cpu_cores, cpu_s) = clock.used();
    let per = |a: u64, b: u64| round2((a - b) as f64 / members.max(1) as f64 / secs);
    Steady {
        seconds: round2(secs),
        members,
        sent_bytes_per_member_s: per(after.sent_bytes, before.sent_bytes),
        sent_packets_per_member_s: per(after.sent_packets, before.sent_packets),
        received_bytes_per_member_s: per(after.received_bytes, before.received_bytes),
        received_packets_per_member_s: per(after.received_packets, before.received_packets),
        false_failures: lock(&pool.views).false_failures - false_before,
        cpu_cores,
        cpu_s,
    }
}

fn spread_line(s: &Spread) -> String {
    let l = s.latency.as_ref();
    format!(
        "{}: seen by {} of {}, all {}, p50 {} s, max {} s{}",
        s.what,
        s.seen,
        s.observers,
        s.all_s.map_or("never".into(), |t| format!("after {t} s")),
        l.map_or("-".into(), |l| format!("{:.3}", l.p50_ms / 1000.0)),
        l.map_or("-".into(), |l| format!("{:.3}", l.max_ms / 1000.0)),
        if s.seen_otherwise > 0 {
            format!(" ({} saw another end)", s.seen_otherwise)
        } else {
            String::new()
        }
    )
}

pub fn table(r: &GossipReport) -> String {
    let t = &r.timings;
    let mut out = format!(
        "workload gossip  {} members (+1 joining later), {} seed(s), {} arbiter(s) on {} core(s)\n",
        r.members, r.seeds, r.arbiters, r.cores
    );
    out.push_str(&format!(
        "timings  probe {} ms (rtt {} ms)  suspect->down {} ms  gossip every {} ms to {}  max transmissions {}  packet {} B\n",
        t.probe_period_ms,
        t.probe_rtt_ms,
        t.suspect_to_down_ms,
        t.gossip_interval_ms.map_or("-".into(), |v| v.to_string()),
        t.gossip_fanout.map_or("-".into(), |v| v.to_string()),
        t.max_transmissions,
        t.max_packet_size
    ));
    let j = &r.join;
    let mark = |k: &str| {
        j.reached_s
            .get(k)
            .map_or("not reached".into(), |v| format!("{v:.2} s"))
    };
    out.push_str(&format!(
        "joins  {}, the last sent at {:.1} s\n",
        if j.join_rate > 0.0 {
            format!("{} a second", j.join_rate)
        } else {
            "all at once".into()
        },
        j.last_join_s
    ));
    out.push_str(&format!(
        "joins  pairs alive: 50 % {}  90 % {}  99 % {}  99.99 % {}  100 % {}  (final {:.5}, {} retries, {:.1} CPU s, {:.2} cores)\n",
        mark("0.5"),
        mark("0.9"),
        mark("0.99"),
        mark("0.9999"),
        mark("1"),
        j.final_fraction,
        j.join_retries,
        j.cpu_s,
        j.cpu_cores
    ));
    if let Some(l) = &j.view_complete {
        out.push_str(&format!(
            "joins  member's view complete: p50 {:.2} s  max {:.2} s  ({} of {} members)\n",
            l.p50_ms / 1000.0,
            l.max_ms / 1000.0,
            j.views_complete,
            r.members
        ));
    }
    if j.verify_mismatches > 0 {
        out.push_str(&format!(
            "joins  {} of {} member(s) sampled: Members answer disagrees with their events (or none)\n",
            j.verify_mismatches,
            j.verified
        ));
    }
    for s in [&r.one_join, &r.failure, &r.leave] {
        out.push_str(&spread_line(s));
        if let Some(v) = s.own_view_s {
            out.push_str(&format!("  (its own view complete after {v:.3} s)"));
        }
        if s.join_retries > 0 {
            out.push_str(&format!("  ({} join retries)", s.join_retries));
        }
        out.push_str(&format!(
            "  [{:.1} CPU s, {:.2} cores]\n",
            s.cpu_s, s.cpu_cores
        ));
    }
    let st = &r.steady;
    out.push_str(&format!(
        "steady ({} members, {:.0} s)  per member: sent {:.0} B/s in {:.1} datagrams/s, received {:.0} B/s in {:.1}  [{:.2} cores]\n",
        st.members,
        st.seconds,
        st.sent_bytes_per_member_s,
        st.sent_packets_per_member_s,
        st.received_bytes_per_member_s,
        st.received_packets_per_member_s,
        st.cpu_cores
    ));
    out.push_str(&format!(
        "rss MiB  before {:.1}  started {:.1}  converged {:.1}  => {:.1} KiB per member\n",
        r.rss_before_kib as f64 / 1024.0,
        r.rss_started_kib as f64 / 1024.0,
        r.rss_converged_kib as f64 / 1024.0,
        r.rss_per_member_kib
    ));
    out.push_str(&format!(
        "false failures  joins {}  one join {}  steady {}  failure {}  leave {}\n",
        j.false_failures,
        r.one_join.false_failures,
        st.false_failures,
        r.failure.false_failures,
        r.leave.false_failures
    ));
    let m = &r.serf_model;
    out.push_str(&format!(
        "serf model ({} nodes, one piece of news)  Serf's {} ms x {}: 99 % {:.1} s, 99.99 % {:.1} s;  ours {}: 99 % {} s, 99.99 % {} s\n",
        r.members,
        m.serf_interval_ms,
        m.serf_fanout,
        m.serf_99_s,
        m.serf_9999_s,
        t.gossip_interval_ms
            .zip(t.gossip_fanout)
            .map_or("-".into(), |(i, f)| format!("{i} ms x {f}")),
        m.ours_99_s.map_or("-".into(), |v| format!("{v:.1}")),
        m.ours_9999_s.map_or("-".into(), |v| format!("{v:.1}")),
    ));
    for n in &r.notes {
        out.push_str(&format!("note  {n}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serf_model_matches_its_published_figure() {
        // serf.io: ~2.2 s for 99.99 % of 1,000 nodes at 200 ms, fanout 3.
        let t = serf_model_s(1000, Duration::from_millis(200), 3, 0.9999);
        assert!((t - 2.2).abs() < 1e-9, "{t}");
    }

    #[test]
    fn views_count_pairs_and_false_failures() {
        let mut v = Views::new(3);
        let now = Instant::now();
        v.marks = vec![(6, None)];
        for o in 0..3 {
            for m in 0..3 {
                v.record(o, m, ALIVE, now);
            }
        }
        assert_eq!(v.alive_pairs, 6);
        assert!(v.marks[0].1.is_some());
        v.record(0, 1, FAILED, now);
        assert_eq!((v.alive_pairs, v.false_failures), (5, 1));
        v.ended[2] = true;
        v.record(0, 2, LEFT, now);
        assert_eq!((v.alive_pairs, v.false_failures), (4, 1));
    }
}
