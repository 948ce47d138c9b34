//! The two shapes of `/v1/agent/metrics`: Consul's JSON summary of one
//! interval (go-metrics' `MetricsSummary`), and the Prometheus text
//! exposition (format 0.0.4) with go-metrics' Prometheus sink's naming.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::registry::{Kind, Metric, Registry};
use super::{help, process, Settings};

/// What the Prometheus answer is sent as.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Quantiles of every summary (go-metrics' Prometheus sink's objectives).
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// The dotted name as shown: the prefix, the host name before a gauge's
/// name (go-metrics' `EnableHostname`), then the name.
fn full_name(s: &Settings, m: &Metric) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(3);
    if !s.prefix.is_empty() {
        parts.push(&s.prefix);
    }
    if m.kind == Kind::Gauge {
        if let Some(h) = s.hostname.as_deref().filter(|h| !h.is_empty()) {
            parts.push(h);
        }
    }
    parts.push(&m.name);
    parts.join(".").replace(' ', "_")
}

fn labels_json(m: &Metric) -> Value {
    Value::Object(
        m.labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// go-metrics' `Timestamp`: Go's `time.Time.String()` of the interval's
/// start in UTC.
fn go_time(unix: u64) -> String {
    chrono::DateTime::from_timestamp(unix as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

/// Consul's JSON: the last finished interval's counters and samples, and
/// every gauge's latest value. Collectors must have run.
pub fn json(reg: &Registry, s: &Settings, now: SystemTime) -> Value {
    let shown = reg.shown_interval(now);
    let (mut gauges, mut counters, mut samples) = (Vec::new(), Vec::new(), Vec::new());
    for m in reg.snapshot() {
        match m.kind {
            Kind::Gauge => {
                if m.updated().is_some() {
                    gauges.push(json!({
                        "Name": full_name(s, &m),
                        "Value": m.gauge_value(),
                        "Labels": labels_json(&m),
                    }));
                }
            }
            Kind::Counter | Kind::Summary => {
                let Some(a) = m.interval(shown) else { continue };
                let v = json!({
                    "Name": full_name(s, &m),
                    "Count": a.count,
                    "Rate": a.rate(),
                    "Sum": a.sum,
                    "Min": a.min,
                    "Max": a.max,
                    "Mean": a.mean(),
                    "Stddev": a.stddev(),
                    "Labels": labels_json(&m),
                });
                if m.kind == Kind::Counter {
                    counters.push(v);
                } else {
                    samples.push(v);
                }
            }
        }
    }
    json!({
        "Timestamp": go_time(shown),
        "Gauges": gauges,
        // Consul fills these from `EmitKey`, which Meridian does not use.
        "Points": [],
        "Counters": counters,
        "Samples": samples,
    })
}

/// A Prometheus metric name from a dotted one (go-metrics: spaces, dots,
/// `=`, `-` and `/` become underscores); anything else outside the
/// name's alphabet too, so that the exposition always parses.
fn prom_name(dotted: &str) -> String {
    let mut out: String = dotted
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn prom_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn prom_labels(labels: &[(String, String)], extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", prom_name(k), escape_label(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

struct Family {
    kind: Kind,
    help: String,
    lines: Vec<String>,
}

/// The Prometheus text exposition: every declared metric, and every other
/// one updated within `prometheus_retention_time`, then the process's
/// `process_*` figures. Collectors must have run.
pub fn prometheus(reg: &Registry, s: &Settings, now: SystemTime) -> String {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for m in reg.snapshot() {
        let fresh = m.updated().is_some_and(|t| {
            now.duration_since(t)
                .map_or(true, |age| age <= s.prometheus_retention)
        });
        if !(m.declared || fresh) {
            continue;
        }
        let name = prom_name(&full_name(s, &m));
        let fam = families.entry(name.clone()).or_insert_with(|| Family {
            kind: m.kind,
            help: help(&m.name).map_or_else(|| name.clone(), str::to_string),
            lines: Vec::new(),
        });
        // Two dotted names that flatten alike but differ in kind cannot
        // share a family; the first keeps it.
        if fam.kind != m.kind {
            continue;
        }
        let labels = prom_labels(&m.labels, None);
        match m.kind {
            Kind::Gauge => fam
                .lines
                .push(format!("{name}{labels} {}", prom_value(m.gauge_value()))),
            Kind::Counter => fam
                .lines
                .push(format!("{name}{labels} {}", prom_value(m.total().sum))),
            Kind::Summary => {
                for (q, v) in QUANTILES.iter().zip(m.quantiles(&QUANTILES)) {
                    let l = prom_labels(&m.labels, Some(("quantile", q.to_string())));
                    fam.lines.push(format!("{name}{l} {}", prom_value(v)));
                }
                let t = m.total();
                fam.lines
                    .push(format!("{name}_sum{labels} {}", prom_value(t.sum)));
                fam.lines.push(format!("{name}_count{labels} {}", t.count));
            }
        }
    }
    let mut out = String::new();
    for (name, f) in &families {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
        };
        let _ = writeln!(out, "# HELP {name} {}", escape_help(&f.help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for l in &f.lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    process_families(&mut out, &process::read());
    out
}

/// client_golang's process collector, from one reading.
fn process_families(out: &mut String, p: &process::Process) {
    let rows: [(&str, &str, &str, Option<f64>); 7] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            p.max_fds,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            p.start_time_seconds,
        ),
        (
            "process_threads",
            "gauge",
            "Number of OS threads in the process.",
            p.threads,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_bytes,
        ),
    ];
    for (name, kind, help, v) in rows {
        if let Some(v) = v {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                prom_value(v)
            );
        }
    }
}

#[cfg(test)]
pub(super) fn flatten(dotted: &str) -> String {
    prom_name(dotted)
}
