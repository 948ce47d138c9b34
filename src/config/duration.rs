//! Go durations (`10s`, `1.5s`, `100ms`, `1m30s`).

use std::time::Duration;

// One parser for Go durations in the crate, beside the wire types that
// carry them (ACL token TTLs); config reads the same syntax.
pub use crate::structs::go_json::parse_go_duration;

/// A duration as Go prints it (`time.Duration.String`): `500ms`, `10s`,
/// `1m30s`, `1h0m0s`; what Consul shows in check definitions.
pub fn format_go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim_frac(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_frac(ns as f64 / 1e6));
    }
    let secs_total = d.as_secs();
    let (h, m) = (secs_total / 3600, (secs_total % 3600) / 60);
    let s = (secs_total % 60) as f64 + d.subsec_nanos() as f64 / 1e9;
    let s = format!("{}s", trim_frac(s));
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

fn trim_frac(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn go_duration_strings() {
        let f = |ms: u64| format_go_duration(Duration::from_millis(ms));
        assert_eq!(f(0), "0s");
        assert_eq!(f(500), "500ms");
        assert_eq!(f(10_000), "10s");
        assert_eq!(f(90_000), "1m30s");
        assert_eq!(f(1_500), "1.5s");
        assert_eq!(f(3_600_000), "1h0m0s");
        assert_eq!(format_go_duration(Duration::from_micros(1500)), "1.5ms");
    }
}
