//! The registry: every metric of the process by name and labels, each
//! behind its own lock, aggregated per 10-second interval (six kept, one
//! minute) as go-metrics' in-memory sink does, with the running totals
//! and recent observations the Prometheus exposition needs.
//!
//! Call sites hold a handle ([`Counter`], [`Gauge`], [`Summary`]): after
//! the first lookup an update touches only that metric's atomics or
//! mutex, never the registry's map.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The aggregation interval (go-metrics' `InmemSink` in Consul: 10 s).
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Intervals kept: one minute of them, as Consul retains.
pub const INTERVALS: usize = 6;
/// Prometheus summaries report quantiles over this window (client_golang's
/// `MaxAge` in go-metrics' Prometheus sink).
pub const QUANTILE_WINDOW: Duration = Duration::from_secs(10);
/// At most this many recent observations per summary feed its quantiles:
/// past it, the newest are kept, so a busy metric's quantiles describe its
/// last few hundred observations rather than the whole window.
const RECENT: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// A timer or sample (go-metrics' `AddSample`/`MeasureSince`).
    Summary,
}

/// Label names and values, in the order given.
pub type Labels = Vec<(String, String)>;

/// One interval's roll-up (go-metrics' `AggregateSample`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Aggregate {
    pub count: u64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: f64,
    pub max: f64,
}

impl Aggregate {
    fn ingest(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.sum_sq += v * v;
        if self.count == 1 || v < self.min {
            self.min = v;
        }
        if self.count == 1 || v > self.max {
            self.max = v;
        }
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// The sample standard deviation, go-metrics' formula (0 below two
    /// values).
    pub fn stddev(&self) -> f64 {
        let n = self.count as f64;
        let div = n * (n - 1.0);
        if div == 0.0 {
            return 0.0;
        }
        ((n * self.sum_sq - self.sum * self.sum) / div)
            .max(0.0)
            .sqrt()
    }

    /// Per second over the interval (go-metrics' `Rate`).
    pub fn rate(&self) -> f64 {
        self.sum / INTERVAL.as_secs_f64()
    }
}

#[derive(Default)]
struct Series {
    /// (interval start in Unix seconds, roll-up), oldest first.
    intervals: VecDeque<(u64, Aggregate)>,
    /// Since start: what a Prometheus counter or summary reports.
    total: Aggregate,
    /// Summaries only: recent observations for quantiles.
    recent: VecDeque<(Instant, f64)>,
}

/// One metric: a name (dotted, without the `metrics_prefix`), its labels,
/// its kind and its values.
pub struct Metric {
    pub name: String,
    pub labels: Labels,
    pub kind: Kind,
    /// Declared at start (Consul's definitions): listed in the Prometheus
    /// exposition from the start, at zero, and never expired.
    pub declared: bool,
    /// Unix milliseconds of the last update; 0 = never.
    updated_ms: AtomicU64,
    /// Gauges: the value's bits.
    value: AtomicU64,
    series: Mutex<Series>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The start (Unix seconds) of the interval holding `t`.
pub fn interval_of(t: SystemTime) -> u64 {
    let s = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    s - s % INTERVAL.as_secs()
}

impl Metric {
    fn new(name: &str, labels: Labels, kind: Kind, declared: bool) -> Metric {
        Metric {
            name: name.to_string(),
            labels,
            kind,
            declared,
            updated_ms: AtomicU64::new(0),
            value: AtomicU64::new(0f64.to_bits()),
            series: Mutex::new(Series::default()),
        }
    }

    fn touch(&self, now: SystemTime) {
        self.updated_ms.store(unix_ms(now), Ordering::Relaxed);
    }

    /// When it was last updated, if ever.
    pub fn updated(&self) -> Option<SystemTime> {
        match self.updated_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    pub fn gauge_value(&self) -> f64 {
        f64::from_bits(self.value.load(Ordering::Relaxed))
    }

    pub(super) fn record(&self, v: f64, now: SystemTime, keep_recent: bool) {
        let start = interval_of(now);
        // A poisoned lock only means a panic elsewhere mid-update; the
        // figures stay usable.
        let mut s = self.series.lock().unwrap_or_else(|p| p.into_inner());
        match s.intervals.back_mut() {
            Some((t, agg)) if *t == start => agg.ingest(v),
            _ => {
                let mut agg = Aggregate::default();
                agg.ingest(v);
                s.intervals.push_back((start, agg));
                while s.intervals.len() > INTERVALS {
                    s.intervals.pop_front();
                }
            }
        }
        s.total.ingest(v);
        if keep_recent {
            let at = Instant::now();
            s.recent.push_back((at, v));
            while s.recent.len() > RECENT {
                s.recent.pop_front();
            }
        }
        drop(s);
        self.touch(now);
    }

    /// The roll-up of the interval starting at `start`, if it has one.
    pub fn interval(&self, start: u64) -> Option<Aggregate> {
        let s = self.series.lock().unwrap_or_else(|p| p.into_inner());
        s.intervals
            .iter()
            .find(|(t, _)| *t == start)
            .map(|(_, a)| *a)
    }

    /// Every retained interval, oldest first.
    #[cfg(test)]
    pub fn intervals(&self) -> Vec<(u64, Aggregate)> {
        let s = self.series.lock().unwrap_or_else(|p| p.into_inner());
        s.intervals.iter().copied().collect()
    }

    /// Since start: count and sum.
    pub fn total(&self) -> Aggregate {
        self.series.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// The `qs` quantiles of the observations within
    /// [`QUANTILE_WINDOW`]; NaN when there are none (as client_golang).
    pub fn quantiles(&self, qs: &[f64]) -> Vec<f64> {
        let mut vals: Vec<f64> = {
            let s = self.series.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            s.recent
                .iter()
                .filter(|(at, _)| now.duration_since(*at) <= QUANTILE_WINDOW)
                .map(|(_, v)| *v)
                .collect()
        };
        if vals.is_empty() {
            return vec![f64::NAN; qs.len()];
        }
        vals.sort_by(f64::total_cmp);
        qs.iter()
            .map(|q| {
                let rank = (q * vals.len() as f64).ceil() as usize;
                vals[rank.clamp(1, vals.len()) - 1]
            })
            .collect()
    }
}

/// A counter: what happened, how often (`IncrCounter`).
#[derive(Clone)]
pub struct Counter(pub(crate) Arc<Metric>);

impl Counter {
    pub fn incr(&self, by: f64) {
        // Prometheus counters only go up; go-metrics drops the rest too.
        if by >= 0.0 {
            self.0.record(by, SystemTime::now(), false);
        }
    }

    pub fn inc(&self) {
        self.incr(1.0);
    }
}

/// A gauge: a value now (`SetGauge`).
#[derive(Clone)]
pub struct Gauge(pub(crate) Arc<Metric>);

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.value.store(v.to_bits(), Ordering::Relaxed);
        self.0.touch(SystemTime::now());
    }
}

/// A timer or sample (`AddSample`, `MeasureSince`), in milliseconds for
/// timers as Consul's.
#[derive(Clone)]
pub struct Summary(pub(crate) Arc<Metric>);

impl Summary {
    pub fn observe(&self, v: f64) {
        self.0.record(v, SystemTime::now(), true);
    }

    /// The milliseconds since `start`.
    pub fn since(&self, start: Instant) {
        self.observe(start.elapsed().as_secs_f64() * 1000.0);
    }
}

/// Refreshes gauges from state it reads (a store, a pool) just before
/// they are shown; false once what it reads is gone, to be dropped.
pub type Collector = Box<dyn FnMut() -> bool + Send>;

/// Every metric of the process.
pub struct Registry {
    metrics: RwLock<BTreeMap<String, Arc<Metric>>>,
    collectors: Mutex<Vec<Collector>>,
    /// The first interval of this registry: until it is over, the current
    /// interval is the one shown (go-metrics shows the last finished one).
    first_interval: u64,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// The map key: go-metrics' hash, `name;label=value;...` with spaces as
/// underscores; its order is the order of the JSON lists.
fn key(name: &str, labels: &[(String, String)]) -> String {
    let mut k = name.replace(' ', "_");
    for (n, v) in labels {
        k.push(';');
        k.push_str(&format!("{n}={v}").replace(' ', "_"));
    }
    k
}

impl Registry {
    pub fn new() -> Registry {
        Registry {
            metrics: RwLock::new(BTreeMap::new()),
            collectors: Mutex::new(Vec::new()),
            first_interval: interval_of(SystemTime::now()),
        }
    }

    fn get(&self, name: &str, labels: Labels, kind: Kind, declared: bool) -> Arc<Metric> {
        let k = key(name, &labels);
        if let Some(m) = self
            .metrics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&k)
        {
            if m.kind == kind {
                return m.clone();
            }
        }
        let mut map = self.metrics.write().unwrap_or_else(|p| p.into_inner());
        match map.get(&k) {
            Some(m) if m.kind == kind => m.clone(),
            // The same name as another kind is a programming slip; the
            // later one gets a metric of its own that is never shown, so
            // that neither call site's figures are corrupted.
            Some(_) => Arc::new(Metric::new(name, labels, kind, false)),
            None => {
                let m = Arc::new(Metric::new(name, labels, kind, declared));
                map.insert(k, m.clone());
                m
            }
        }
    }

    /// Declares a metric without labels: listed from the start.
    pub fn declare(&self, name: &str, kind: Kind) {
        self.get(name, Vec::new(), kind, true);
    }

    pub fn counter(&self, name: &str) -> Counter {
        Counter(self.get(name, Vec::new(), Kind::Counter, false))
    }

    #[cfg(test)]
    pub fn counter_with(&self, name: &str, labels: Labels) -> Counter {
        Counter(self.get(name, labels, Kind::Counter, false))
    }

    pub fn gauge(&self, name: &str) -> Gauge {
        self.gauge_with(name, Vec::new())
    }

    pub fn gauge_with(&self, name: &str, labels: Labels) -> Gauge {
        Gauge(self.get(name, labels, Kind::Gauge, false))
    }

    pub fn summary(&self, name: &str) -> Summary {
        self.summary_with(name, Vec::new())
    }

    pub fn summary_with(&self, name: &str, labels: Labels) -> Summary {
        Summary(self.get(name, labels, Kind::Summary, false))
    }

    /// Adds a collector, run before every rendering.
    pub fn collect_with(&self, c: Collector) {
        self.collectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c);
    }

    /// Runs the collectors, dropping those whose source is gone.
    pub fn collect(&self) {
        self.collectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain_mut(|c| c());
    }

    /// Every metric, in key order.
    pub fn snapshot(&self) -> Vec<Arc<Metric>> {
        self.metrics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The interval `/v1/agent/metrics` shows at `now`: the last finished
    /// one, or the current one while it is the first.
    pub fn shown_interval(&self, now: SystemTime) -> u64 {
        let current = interval_of(now);
        if current <= self.first_interval {
            current
        } else {
            current - INTERVAL.as_secs()
        }
    }
}
