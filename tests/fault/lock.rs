//! The lock workload: clients of one server each (as a program talks to
//! its local agent) make a session (`TTL` 10 s, a `LockDelay`, bound to
//! that server's node by serfHealth), take a key with `?acquire=`, hold
//! it a while and give it up with `?release=`, as Consul's `api.Lock`
//! does: while holding, a client watches the key with a `?consistent`
//! blocking query and renews its session, and stops believing it holds
//! the lock when the key shows another holder (or none), the session is
//! gone, or a call fails. Each belief is a hold interval, from the
//! acquire's acknowledgement to the release's invocation or the moment
//! the client stopped believing.
//!
//! Two clients' intervals on one key overlapping is two holders at once.
//! Jepsen found such locks unsafe under pauses: a client whose server is
//! frozen keeps believing until its call times out, while the other
//! servers declare the frozen node failed, end its sessions and hand the
//! lock on. The lock-delay (a released lock cannot be taken again for
//! that long) narrows the window. Several groups of clients, one key and
//! one lock-delay each, run under the same faults, so the delays are
//! compared on the same schedule. Overlaps are measured, not asserted,
//! here; the caller decides what to assert.
//!
//! At the end every server must hold the same entry for each key (read
//! with `?stale` from each): the lock-delay decides whether an acquire
//! succeeds, and if servers decided it differently they would disagree on
//! who holds the lock.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::checker::Outcome;
use super::register::{self, Recorder};
use super::schedule::{self, Cluster, FaultKind, Tally};

const PER_GROUP: usize = 3;
const RENEW_EVERY: Duration = Duration::from_secs(3);
const HOLD_MS: std::ops::Range<u64> = 500..3000;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Hold {
    process: usize,
    /// ns since the run began.
    start: u64,
    end: u64,
    /// Why the client stopped believing: "released", "lost", "error", "session gone".
    why: &'static str,
}

/// Overlaps of one group's hold intervals.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Overlaps {
    pub lock_delay: String,
    pub holds: usize,
    pub count: usize,
    pub total_ms: f64,
    pub max_ms: f64,
}

impl Overlaps {
    /// Prints this lock-delay's overlaps and adds them to a run's figures.
    pub fn report(&self, what: &str, figures: &mut BTreeMap<String, f64>) {
        let delay = &self.lock_delay;
        eprintln!(
            "{what} (lock-delay {delay}): {} holds, {} overlapping pairs, {:.0} ms overlapped in all, longest {:.0} ms",
            self.holds, self.count, self.total_ms, self.max_ms
        );
        let tag = format!("delay_{delay}");
        figures.insert(format!("{tag}_holds"), self.holds as f64);
        figures.insert(format!("{tag}_overlaps"), self.count as f64);
        figures.insert(format!("{tag}_overlap_ms"), self.total_ms);
        figures.insert(format!("{tag}_overlap_max_ms"), self.max_ms);
    }
}

fn overlaps(lock_delay: &str, holds: &[Hold]) -> Overlaps {
    let mut o = Overlaps {
        lock_delay: lock_delay.into(),
        holds: holds.len(),
        ..Default::default()
    };
    for (i, a) in holds.iter().enumerate() {
        for b in &holds[i + 1..] {
            if a.process == b.process {
                continue;
            }
            let both = a.end.min(b.end).saturating_sub(a.start.max(b.start));
            if both > 0 {
                let ms = both as f64 / 1e6;
                o.count += 1;
                o.total_ms += ms;
                o.max_ms = o.max_ms.max(ms);
            }
        }
    }
    o
}

/// Overlaps of hold intervals measured elsewhere (the paused-client run:
/// each client a process of its own): `(process, start, end)` in ns on
/// any common clock.
pub fn overlaps_of(lock_delay: &str, holds: &[(usize, u64, u64)]) -> Overlaps {
    let holds: Vec<Hold> = holds
        .iter()
        .map(|&(process, start, end)| Hold {
            process,
            start,
            end,
            why: "",
        })
        .collect();
    overlaps(lock_delay, &holds)
}

struct Shared<'a> {
    seed: u64,
    servers: &'a [String],
    prefix: &'a str,
    delays: &'a [&'a str],
    deadline: Instant,
    rec: &'a Recorder,
    tally: Tally,
    /// Hold intervals by group.
    holds: Mutex<BTreeMap<usize, Vec<Hold>>>,
    /// (invoke, complete) of acknowledged acquires and releases.
    acked: Mutex<Vec<(u64, u64)>>,
}

struct Client<'a> {
    process: usize,
    sh: &'a Shared<'a>,
    http: reqwest::blocking::Client,
    base: String,
    key: String,
    delay: &'a str,
    session: Option<(String, Instant)>,
}

impl Client<'_> {
    fn outcome_label(o: &Outcome) -> &'static str {
        match o {
            Outcome::Ok(_) => "ok",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        }
    }

    /// A session on this client's server, if it can make one.
    fn session(&mut self) -> Option<String> {
        if let Some((id, _)) = &self.session {
            return Some(id.clone());
        }
        let body = serde_json::json!({
            "Name": format!("lock-p{}", self.process),
            "LockDelay": self.delay,
            "TTL": "10s",
        });
        let r = self
            .http
            .put(format!("{}/v1/session/create", self.base))
            .json(&body)
            .send();
        let id = r
            .ok()
            .filter(|r| r.status().is_success())
            .and_then(|r| r.json::<serde_json::Value>().ok())
            .and_then(|v| v["ID"].as_str().map(String::from));
        self.sh
            .tally
            .add("session create", if id.is_some() { "ok" } else { "no" });
        self.session = id.clone().map(|id| (id, Instant::now()));
        id
    }

    /// Renews the session if it is due. `false`: it is gone or the renew
    /// failed, and the client must not go on believing in it.
    fn renew(&mut self) -> bool {
        let Some((id, last)) = &self.session else {
            return false;
        };
        if last.elapsed() < RENEW_EVERY {
            return true;
        }
        let r = self
            .http
            .put(format!("{}/v1/session/renew/{id}", self.base))
            .send();
        match r.map(|r| r.status().as_u16()) {
            Ok(200) => {
                self.sh.tally.add("session renew", "ok");
                self.session = Some((id.clone(), Instant::now()));
                true
            }
            Ok(404) => {
                self.sh.tally.add("session renew", "gone");
                self.session = None;
                false
            }
            _ => {
                self.sh.tally.add("session renew", "error");
                false
            }
        }
    }

    /// Ends the session, through another server if this client's does
    /// not answer: left to its TTL, an abandoned session would keep the
    /// lock from everyone for 10–20 s, most of a short run.
    fn destroy(&mut self) {
        let Some((id, _)) = self.session.take() else {
            return;
        };
        let others = self.sh.servers.iter().map(|s| format!("http://{s}"));
        let bases: Vec<String> = std::iter::once(self.base.clone()).chain(others).collect();
        for base in bases.iter().cycle().take(3 * bases.len()) {
            let r = self
                .http
                .put(format!("{base}/v1/session/destroy/{id}"))
                .send();
            if r.is_ok_and(|r| r.status().is_success()) {
                self.sh.tally.add("session destroy", "ok");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.sh.tally.add("session destroy", "failed");
    }

    /// Holds the lock (acquired at `start`) until the hold is over or the
    /// client stops believing; returns the interval.
    fn hold(&mut self, start: u64, hold_for: Duration, sid: &str) -> Hold {
        let until = (Instant::now() + hold_for).min(self.sh.deadline);
        let mut index = 0u64;
        let why = loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break "released";
            }
            if !self.renew() {
                break "session gone";
            }
            // Past the wait and the server's jitter (wait/16) the answer is
            // overdue: the client gives up then, not before.
            let monitor = schedule::http(left + Duration::from_secs(2));
            let url = format!(
                "{}/v1/kv/{}?consistent&index={index}&wait={}ms",
                self.base,
                self.key,
                left.as_millis().max(1)
            );
            let got = monitor.get(url).send().ok().and_then(|r| {
                let idx = r
                    .headers()
                    .get("X-Consul-Index")?
                    .to_str()
                    .ok()?
                    .parse::<u64>()
                    .ok()?;
                if !r.status().is_success() {
                    return None;
                }
                let v: serde_json::Value = r.json().ok()?;
                Some((idx, v[0]["Session"].as_str().map(String::from)))
            });
            match got {
                None => {
                    self.sh.tally.add("monitor", "error");
                    break "error";
                }
                Some((_, holder)) if holder.as_deref() != Some(sid) => {
                    self.sh.tally.add("monitor", "lost");
                    break "lost";
                }
                Some((idx, _)) => {
                    self.sh.tally.add("monitor", "held");
                    index = idx;
                }
            }
        };
        Hold {
            process: self.process,
            start,
            end: self.sh.rec.now(),
            why,
        }
    }

    fn run(&mut self, group: usize) {
        let sh = self.sh;
        let mut rng =
            StdRng::seed_from_u64(sh.seed.wrapping_mul(1000).wrapping_add(self.process as u64));
        while Instant::now() < sh.deadline {
            let Some(sid) = self.session() else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            if !self.renew() {
                self.session = None;
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            let invoke = sh.rec.now();
            let outcome = register::put(
                &self.http,
                &format!("{}/v1/kv/{}?acquire={sid}", self.base, self.key),
                format!("p{}", self.process),
                true,
            );
            sh.tally.add("acquire", Self::outcome_label(&outcome));
            match outcome {
                Outcome::Ok(_) => {
                    let start = sh.rec.now();
                    sh.acked
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((invoke, start));
                    let hold_for = Duration::from_millis(rng.gen_range(HOLD_MS));
                    let h = self.hold(start, hold_for, &sid);
                    let released = h.why == "released";
                    sh.holds
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(group)
                        .or_default()
                        .push(h);
                    if released {
                        let invoke = sh.rec.now();
                        let o = register::put(
                            &self.http,
                            &format!("{}/v1/kv/{}?release={sid}", self.base, self.key),
                            String::new(),
                            true,
                        );
                        sh.tally.add("release", Self::outcome_label(&o));
                        if matches!(o, Outcome::Ok(_)) {
                            let done = sh.rec.now();
                            sh.acked
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push((invoke, done));
                        }
                    } else {
                        self.destroy();
                    }
                    std::thread::sleep(Duration::from_millis(rng.gen_range(0..100)));
                }
                Outcome::Fail => std::thread::sleep(Duration::from_millis(rng.gen_range(50..150))),
                // It may hold the lock without knowing: end the session,
                // which frees it (after the lock-delay).
                Outcome::Unknown => self.destroy(),
            }
        }
        self.destroy();
    }
}

/// Every server's entry for `key` (`?stale`: its own state), once they
/// agree, or every server's view when they still disagree after `secs`.
fn agreed_entry(servers: &[String], key: &str, secs: u64) -> Result<String, Vec<String>> {
    let http = schedule::http(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let views: Vec<String> = servers
            .iter()
            .map(|s| {
                http.get(format!("http://{s}/v1/kv/{key}?stale"))
                    .send()
                    .and_then(|r| r.text())
                    .unwrap_or_else(|e| format!("error: {e}"))
            })
            .collect();
        if views
            .iter()
            .all(|v| *v == views[0] && !v.starts_with("error"))
        {
            return Ok(views[0].clone());
        }
        if Instant::now() > deadline {
            return Err(views);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What one run measured.
pub struct LockReport {
    pub overlaps: Vec<Overlaps>,
    /// Keys whose entry the servers still disagreed on at the end.
    pub diverged: Vec<(String, Vec<String>)>,
}

/// Runs one group of `PER_GROUP` clients per lock-delay in `delays` under
/// the `allowed` faults; prints and returns the overlaps per group.
pub fn run(seed: u64, secs: u64, delays: &[&str], allowed: &[FaultKind]) -> LockReport {
    eprintln!("=== lock workload: seed {seed}, {secs} s, lock-delays {delays:?} (replay: MERIDIAN_FAULT_SEED={seed} MERIDIAN_FAULT_SECS={secs})");
    // A run asked for kills only asserts what holds under kills alone:
    // `MERIDIAN_FAULT_KINDS` does not change it.
    let (_dirs, mut cluster) = if allowed == [FaultKind::Kill] {
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let cluster = Cluster::loopback(&dirs, allowed);
        (dirs, cluster)
    } else {
        Cluster::for_workload(allowed)
    };
    let addrs = cluster.addrs();
    let prefix = format!("lock-{seed}/");
    let start = Instant::now();
    let rec = Recorder::new(start);
    let sh = Shared {
        seed,
        servers: &addrs,
        prefix: &prefix,
        delays,
        deadline: start + Duration::from_secs(secs),
        rec: &rec,
        tally: Tally::default(),
        holds: Mutex::new(BTreeMap::new()),
        acked: Mutex::new(Vec::new()),
    };
    let faults = schedule::run_under_faults(
        seed,
        &mut cluster,
        sh.deadline,
        &rec,
        PER_GROUP * delays.len(),
        |p| {
            let group = p / PER_GROUP;
            let mut c = Client {
                process: p,
                sh: &sh,
                http: schedule::http(register::CALL_TIMEOUT),
                base: format!("http://{}", sh.servers[p % sh.servers.len()]),
                key: format!("{}d{}", sh.prefix, sh.delays[group]),
                delay: sh.delays[group],
                session: None,
            };
            c.run(group);
        },
    );
    let holds = sh.holds.into_inner().unwrap_or_else(|e| e.into_inner());
    let acked = sh.acked.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut summary = sh.tally.into_summary("lock", seed, secs);
    let mut report = LockReport {
        overlaps: Vec::new(),
        diverged: Vec::new(),
    };
    for (g, delay) in delays.iter().enumerate() {
        let o = overlaps(delay, holds.get(&g).map_or(&[][..], |h| &h[..]));
        o.report("lock", &mut summary.figures);
        report.overlaps.push(o);
        let key = format!("{prefix}d{delay}");
        match agreed_entry(&addrs, &key, 15) {
            Ok(_) => {}
            Err(views) => {
                eprintln!("lock: servers disagree on {key}: {views:?}");
                report.diverged.push((key, views));
            }
        }
    }
    summary
        .figures
        .insert("diverged_keys".into(), report.diverged.len() as f64);
    if !report.diverged.is_empty() || report.overlaps.iter().any(|o| o.count > 0) {
        summary.history = Some(schedule::save(
            "lock",
            seed,
            &serde_json::json!({
                "workload": "lock", "seed": seed, "secs": secs, "faults": faults,
                "holds": holds, "overlaps": report.overlaps,
                "diverged": report.diverged,
            }),
        ));
    }
    if !report.diverged.is_empty() {
        summary.verdict = format!("servers disagree on {:?}", report.diverged);
    }
    let mut acked = acked;
    acked.extend(rec.probe_acked());
    summary.print(&faults, &acked);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(process: usize, start: u64, end: u64) -> Hold {
        Hold {
            process,
            start: start * 1_000_000,
            end: end * 1_000_000,
            why: "released",
        }
    }

    #[test]
    fn overlaps_count_two_clients_believing_at_once_only() {
        let holds = [
            hold(0, 0, 100),
            // Another client, 30 ms inside the first hold.
            hold(1, 70, 200),
            // The same client again: not two holders.
            hold(1, 150, 160),
            // Touching is not overlapping.
            hold(2, 200, 300),
        ];
        let o = overlaps("0s", &holds);
        assert_eq!((o.holds, o.count), (4, 1));
        assert!((o.total_ms - 30.0).abs() < 1e-9 && (o.max_ms - 30.0).abs() < 1e-9);
    }
}
