//! The register workload: clients reading (`?consistent` and the default
//! mode), writing unique values and compare-and-setting a few keys on any
//! of the servers, every call recorded as a checker `Op`.
//!
//! How an answer is classified (what the checker may assume about it):
//! - 200 `true` to a PUT: applied (`Ok`).
//! - 200 `false` to a `?cas=` PUT: the index did not match, nothing was
//!   written (`Fail`, which for a CAS still says "the register did not hold
//!   the expected value").
//! - a connection refused (nothing was sent) or a 4xx (refused before it
//!   reached Raft): not applied (`Fail` for a write). A CAS refused so is
//!   left out of the history: it did nothing and, unlike a compare that
//!   failed, says nothing about the register (recorded as a failed CAS it
//!   made the checker report a violation that was not one).
//! - a timeout, a dropped connection, any 5xx: `Unknown`. A 500 "No
//!   cluster leader" can follow a leader that appended the entry and then
//!   lost leadership or was killed before answering; the entry can still be
//!   committed by its successor, so it is not a failure.
//! - a read without an answer says nothing and is left out.
//!
//! A CAS is Consul's `?cas=<ModifyIndex>` with the index from a
//! `?consistent` read just before. Every value is written once, so
//! "ModifyIndex is i" is "the register holds the value read at i" (or is
//! absent for `cas=0`): the checker's value-CAS is the same operation.

#![allow(dead_code)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::checker::{Kind, Op, Outcome};

/// Every call's timeout: past it the operation is `Unknown`.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Recorder {
    start: Instant,
    /// Writes, CASes and `?consistent` reads.
    pub ops: Mutex<Vec<Op>>,
    /// Default-mode reads (checked together with `ops`' writes).
    pub default_reads: Mutex<Vec<Op>>,
    /// (invoke, complete) of the recovery probe's acknowledged writes
    /// (`schedule::run_under_faults`).
    pub probe: Mutex<Vec<(u64, u64)>>,
}

impl Recorder {
    pub fn new(start: Instant) -> Recorder {
        Recorder {
            start,
            ops: Mutex::new(Vec::new()),
            default_reads: Mutex::new(Vec::new()),
            probe: Mutex::new(Vec::new()),
        }
    }

    /// The recovery probe's acknowledged writes so far.
    pub fn probe_acked(&self) -> Vec<(u64, u64)> {
        self.probe.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_nanos() as u64
    }

    fn push(&self, op: Op, default_mode: bool) {
        let list = if default_mode {
            &self.default_reads
        } else {
            &self.ops
        };
        list.lock().unwrap_or_else(|e| e.into_inner()).push(op);
    }
}

/// What a read of a key returned: its value and ModifyIndex, or absent.
pub type ReadResult = Option<(String, u64)>;

pub fn decode(v: &serde_json::Value) -> Option<ReadResult> {
    use base64::Engine;
    let e = v.get(0)?;
    let index = e["ModifyIndex"].as_u64()?;
    let raw = match e["Value"].as_str() {
        Some(s) => base64::engine::general_purpose::STANDARD.decode(s).ok()?,
        None => Vec::new(),
    };
    Some(Some((String::from_utf8(raw).ok()?, index)))
}

/// GET the key; `None` when there is no usable answer.
pub fn read(http: &reqwest::blocking::Client, url: &str) -> Option<ReadResult> {
    let r = http.get(url).send().ok()?;
    match r.status().as_u16() {
        404 => Some(None),
        200 => decode(&r.json().ok()?),
        _ => None,
    }
}

/// PUT `body`; the outcome as the module doc classifies it.
pub fn put(http: &reqwest::blocking::Client, url: &str, body: String, cas: bool) -> Outcome {
    put_or_refused(http, url, body, cas).unwrap_or(Outcome::Fail)
}

/// [`put`], with `None` for a request refused before it could do anything
/// (a connection refused, a 4xx).
fn put_or_refused(
    http: &reqwest::blocking::Client,
    url: &str,
    body: String,
    cas: bool,
) -> Option<Outcome> {
    match http.put(url).body(body).send() {
        Err(e) if e.is_connect() => None,
        Err(_) => Some(Outcome::Unknown),
        Ok(r) => {
            let status = r.status();
            match r.text() {
                Ok(t) if status.is_success() && t.trim() == "true" => Some(Outcome::Ok(None)),
                Ok(t) if status.is_success() && t.trim() == "false" && cas => Some(Outcome::Fail),
                Ok(_) if status.is_client_error() => None,
                _ => Some(Outcome::Unknown),
            }
        }
    }
}

/// One client: random operations until `deadline`.
pub fn client(
    process: usize,
    seed: u64,
    servers: &[String],
    keys: &[String],
    deadline: Instant,
    rec: &Recorder,
) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(process as u64));
    let Ok(http) = reqwest::blocking::Client::builder()
        .timeout(CALL_TIMEOUT)
        .connect_timeout(CALL_TIMEOUT)
        .build()
    else {
        return;
    };
    let mut written = 0u64;
    let mut answered = true;
    while Instant::now() < deadline {
        // A server that is down refuses at once: without a pause a client
        // would spin on it and swamp the history with failures.
        if !answered {
            std::thread::sleep(Duration::from_millis(rng.gen_range(20..60)));
        }
        answered = false;
        let key = &keys[rng.gen_range(0..keys.len())];
        let server = rng.gen_range(0..servers.len());
        let base = format!("http://{}/v1/kv/{key}", servers[server]);
        let roll = rng.gen_range(0..10);
        let op = |kind, invoke, outcome: Outcome, complete| Op {
            process,
            server,
            key: key.clone(),
            kind,
            invoke,
            complete,
            outcome,
        };
        match roll {
            0..=4 => {
                let default_mode = roll >= 3;
                let url = if default_mode {
                    base.clone()
                } else {
                    format!("{base}?consistent")
                };
                let invoke = rec.now();
                let got = read(&http, &url);
                let done = rec.now();
                let outcome = match got {
                    Some(v) => Outcome::Ok(v.map(|(s, _)| s)),
                    None => Outcome::Unknown,
                };
                let complete = (outcome != Outcome::Unknown).then_some(done);
                answered = complete.is_some();
                rec.push(op(Kind::Read, invoke, outcome, complete), default_mode);
            }
            5..=7 => {
                written += 1;
                let v = format!("p{process}-{written}");
                let invoke = rec.now();
                let outcome = put(&http, &base, v.clone(), false);
                answered = matches!(outcome, Outcome::Ok(_));
                let complete = (outcome != Outcome::Unknown).then(|| rec.now());
                rec.push(op(Kind::Write(v), invoke, outcome, complete), false);
            }
            _ => {
                let invoke = rec.now();
                let got = read(&http, &format!("{base}?consistent"));
                let done = rec.now();
                let Some(cur) = got else {
                    continue;
                };
                let from = cur.as_ref().map(|(s, _)| s.clone());
                rec.push(
                    op(Kind::Read, invoke, Outcome::Ok(from.clone()), Some(done)),
                    false,
                );
                let index = cur.map_or(0, |(_, i)| i);
                written += 1;
                let v = format!("p{process}-{written}");
                let invoke = rec.now();
                let Some(outcome) =
                    put_or_refused(&http, &format!("{base}?cas={index}"), v.clone(), true)
                else {
                    continue;
                };
                answered = outcome != Outcome::Unknown;
                let complete = (outcome != Outcome::Unknown).then(|| rec.now());
                rec.push(op(Kind::Cas(from, v), invoke, outcome, complete), false);
            }
        }
    }
}

/// The default-mode reads that returned a value older than an
/// acknowledged write, each with how long after that acknowledgement it
/// was sent (ms). A read is stale when the write of the value it returned
/// completed before another write to the key began, and that other write
/// was acknowledged before the read was sent.
pub fn stale_reads(writes: &[Op], reads: &[Op]) -> Vec<(f64, Op)> {
    let value_of = |o: &Op| match &o.kind {
        Kind::Write(v) | Kind::Cas(_, v) => Some(v.clone()),
        Kind::Read => None,
    };
    let mut stale = Vec::new();
    for r in reads {
        let Outcome::Ok(seen) = &r.outcome else {
            continue;
        };
        // When the write of the value seen completed (an unknown write
        // never did: reads of its value are not counted).
        let seen_write = writes
            .iter()
            .filter(|o| o.key == r.key && value_of(o).is_some() && value_of(o) == *seen)
            .map(|o| o.complete.unwrap_or(u64::MAX))
            .min();
        let seen_done = match (seen, seen_write) {
            (None, _) => 0,
            (Some(_), Some(t)) => t,
            (Some(_), None) => continue,
        };
        let newer = writes
            .iter()
            .filter(|o| o.key == r.key && matches!(o.outcome, Outcome::Ok(_)))
            .filter(|o| value_of(o).is_some() && o.invoke > seen_done)
            .filter_map(|o| o.complete.filter(|&c| c < r.invoke))
            .min();
        if let Some(acked_at) = newer {
            stale.push(((r.invoke - acked_at) as f64 / 1e6, r.clone()));
        }
    }
    stale
}

/// The worst of [`stale_reads`]: the longest time after a superseding
/// write was acknowledged that a read still returned the older value.
pub fn worst_staleness(writes: &[Op], reads: &[Op]) -> Option<(f64, Op)> {
    stale_reads(writes, reads)
        .into_iter()
        .max_by(|a, b| a.0.total_cmp(&b.0))
}
