//! What a run measured: latencies (kept whole, so percentiles are exact),
//! outcomes by kind, and the CPU and peak RSS of the server processes
//! named on the command line, read from `/proc`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// One client's (or the whole run's) record.
#[derive(Default, Clone)]
pub struct Recorder {
    /// Microseconds per successful operation.
    pub latencies_us: Vec<u32>,
    /// When each success completed, microseconds into the run.
    pub acks_us: Vec<u64>,
    pub errors: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn ok(&mut self, took: Duration, at: Duration) {
        self.latencies_us
            .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        self.acks_us
            .push(u64::try_from(at.as_micros()).unwrap_or(u64::MAX));
    }

    /// The longest stretch without a success (a failover shows here),
    /// the end of the run included: an outage that lasts until the end
    /// counts whole, not as nothing.
    pub fn longest_gap(&mut self, run: Duration) -> Option<Duration> {
        self.acks_us.sort_unstable();
        let end = u64::try_from(run.as_micros()).unwrap_or(u64::MAX);
        let last = *self.acks_us.last()?;
        let inner = self
            .acks_us
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(0);
        Some(Duration::from_micros(inner.max(end.saturating_sub(last))))
    }

    pub fn err(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_insert(0) += 1;
    }

    pub fn merge(&mut self, other: Recorder) {
        self.latencies_us.extend(other.latencies_us);
        self.acks_us.extend(other.acks_us);
        for (k, n) in other.errors {
            *self.errors.entry(k).or_insert(0) += n;
        }
    }

    pub fn ops(&self) -> u64 {
        self.latencies_us.len() as u64 + self.errors.values().sum::<u64>()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Exact percentiles (nearest rank) of the successful operations.
pub fn latency(latencies_us: &mut [u32]) -> Option<Latency> {
    if latencies_us.is_empty() {
        return None;
    }
    latencies_us.sort_unstable();
    let n = latencies_us.len();
    let at = |p: f64| {
        // The epsilon keeps 99.9 % of 1000 at rank 999 despite rounding.
        let rank = (p * n as f64 / 100.0 - 1e-9).ceil() as usize;
        f64::from(latencies_us[rank.clamp(1, n) - 1]) / 1000.0
    };
    let sum: u64 = latencies_us.iter().map(|&v| u64::from(v)).sum();
    Some(Latency {
        p50_ms: at(50.0),
        p90_ms: at(90.0),
        p99_ms: at(99.0),
        p999_ms: at(99.9),
        max_ms: f64::from(latencies_us[n - 1]) / 1000.0,
        mean_ms: sum as f64 / n as f64 / 1000.0,
    })
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProcessStats {
    pub pid: u32,
    pub name: String,
    /// Share of one core over the run (200 = two cores busy).
    pub cpu_percent: f64,
    pub rss_max_mib: f64,
}

/// CPU ticks (user + system) and RSS in KiB of a process, from `/proc`.
pub fn sample(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields resume after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Some((ticks, rss_kib))
}

pub fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Clock ticks per second for `/proc/<pid>/stat` times.
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        let l = latency(&mut v).unwrap();
        assert_eq!(l.p50_ms, 500.0);
        assert_eq!(l.p90_ms, 900.0);
        assert_eq!(l.p99_ms, 990.0);
        assert_eq!(l.p999_ms, 999.0);
        assert_eq!(l.max_ms, 1000.0);
        assert!(latency(&mut []).is_none());
        let mut one = vec![1500];
        assert_eq!(latency(&mut one).unwrap().p999_ms, 1.5);
    }

    #[test]
    fn the_longest_gap_counts_an_outage_until_the_end() {
        let mut r = Recorder::default();
        for ms in [10, 20, 520, 530] {
            r.ok(Duration::ZERO, Duration::from_millis(ms));
        }
        assert_eq!(
            r.longest_gap(Duration::from_millis(600)),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            r.longest_gap(Duration::from_millis(2000)),
            Some(Duration::from_millis(1470))
        );
        assert_eq!(
            Recorder::default().longest_gap(Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn this_process_can_be_sampled() {
        let (ticks, rss) = sample(std::process::id()).unwrap();
        assert!(rss > 0);
        let _ = ticks;
    }
}
