use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::registry::{interval_of, Labels, INTERVAL, INTERVALS};
use super::render::flatten;
use super::*;

fn settings(host: Option<&str>) -> Settings {
    Settings {
        prefix: "consul".into(),
        hostname: host.map(str::to_string),
        prometheus_retention: Duration::from_secs(60),
        compat_1_9: true,
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn aggregate_matches_go_metrics_formulas() {
    let r = Registry::new();
    let s = r.summary("kvs.apply");
    for v in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
        s.observe(v);
    }
    let now = SystemTime::now();
    let a = s.0.interval(interval_of(now)).expect("this interval");
    assert_eq!(a.count, 8);
    assert_eq!(a.sum, 40.0);
    assert_eq!((a.min, a.max), (2.0, 9.0));
    assert_eq!(a.mean(), 5.0);
    // Sample standard deviation: sqrt(32 / 7).
    assert!((a.stddev() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    assert_eq!(a.rate(), 4.0);
    assert_eq!(s.0.quantiles(&[0.5, 0.9, 0.99]), vec![4.0, 9.0, 9.0]);
}

#[test]
fn the_json_summary_has_consuls_shape_and_names() {
    let r = Registry::new();
    r.counter("raft.apply").incr(3.0);
    r.summary_with("api.http", labels(&[("method", "GET"), ("path", "v1_kv_")]))
        .observe(1.5);
    r.gauge("state.nodes").set(2.0);
    // Declared but never set: no gauge line (Consul lists what was set).
    r.declare("state.services", Kind::Gauge);
    let v = json(&r, &settings(Some("host1")), SystemTime::now());
    let ts = v["Timestamp"].as_str().expect("Timestamp");
    assert!(ts.ends_with(" +0000 UTC") && ts.len() == 29, "{ts}");
    assert_eq!(v["Points"], serde_json::json!([]));
    assert_eq!(
        v["Gauges"],
        serde_json::json!([{"Name": "consul.host1.state.nodes", "Value": 2.0, "Labels": {}}])
    );
    let c = &v["Counters"][0];
    assert_eq!(c["Name"], "consul.raft.apply");
    assert_eq!(
        (c["Count"].as_u64(), c["Sum"].as_f64()),
        (Some(1), Some(3.0))
    );
    for k in ["Rate", "Min", "Max", "Mean", "Stddev"] {
        assert!(c[k].is_number(), "{k} in {c}");
    }
    let sample = &v["Samples"][0];
    assert_eq!(sample["Name"], "consul.api.http");
    assert_eq!(
        sample["Labels"],
        serde_json::json!({"method": "GET", "path": "v1_kv_"})
    );
}

#[test]
fn the_shown_interval_is_the_last_finished_one() {
    let r = Registry::new();
    let start = interval_of(SystemTime::now());
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
    // While the first interval runs, it is the one shown.
    assert_eq!(r.shown_interval(at(start + 3)), start);
    assert_eq!(r.shown_interval(at(start + 25)), start + 10);
}

#[test]
fn only_a_minute_of_intervals_is_kept() {
    let r = Registry::new();
    let c = r.counter("rpc.request");
    let start = interval_of(SystemTime::now());
    // One increment in each of eight successive intervals, two in the last.
    for i in 0..8 {
        c.0.record(
            1.0,
            UNIX_EPOCH + Duration::from_secs(start + i * 10 + 1),
            false,
        );
    }
    c.0.record(1.0, UNIX_EPOCH + Duration::from_secs(start + 75), false);
    let kept = c.0.intervals();
    assert_eq!(kept.len(), INTERVALS);
    assert_eq!(INTERVALS as u64 * INTERVAL.as_secs(), 60);
    assert_eq!(kept[0].0, start + 20, "the two oldest are gone");
    assert_eq!(kept[5].1.count, 2);
    // The Prometheus counter keeps counting past the retained intervals.
    assert_eq!(c.0.total().sum, 9.0);
}

#[test]
fn prometheus_names_flatten_as_go_metrics_does() {
    assert_eq!(flatten("consul.raft.commitTime"), "consul_raft_commitTime");
    assert_eq!(
        flatten("consul.http.GET.v1.kv._"),
        "consul_http_GET_v1_kv__"
    );
    assert_eq!(flatten("consul.my-host.a/b=c d"), "consul_my_host_a_b_c_d");
}

#[test]
fn the_exposition_types_every_family_once() {
    let r = Registry::new();
    r.declare("raft.state.leader", Kind::Counter);
    r.summary("raft.commitTime").observe(2.0);
    r.summary("raft.commitTime").observe(4.0);
    r.counter_with("rpc.server.call", labels(&[("method", "Read")]));
    r.gauge_with(
        "memberlist.node.instances",
        labels(&[("network", "lan"), ("node_state", "alive")]),
    )
    .set(3.0);
    r.gauge_with(
        "memberlist.node.instances",
        labels(&[("network", "lan"), ("node_state", "left")]),
    )
    .set(0.0);
    let text = prometheus(&r, &settings(None), SystemTime::now());
    assert!(
        text.contains("# TYPE consul_raft_state_leader counter\nconsul_raft_state_leader 0\n"),
        "{text}"
    );
    assert!(
        text.contains("consul_raft_commitTime{quantile=\"0.5\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("consul_raft_commitTime_sum 6\nconsul_raft_commitTime_count 2\n"),
        "{text}"
    );
    assert!(text.contains(
        "# TYPE consul_memberlist_node_instances gauge\nconsul_memberlist_node_instances{network=\"lan\",node_state=\"alive\"} 3\nconsul_memberlist_node_instances{network=\"lan\",node_state=\"left\"} 0\n"
    ), "{text}");
    // Created but never updated, and not declared: not listed.
    assert!(!text.contains("rpc_server_call"), "{text}");
    assert!(
        text.contains("# TYPE process_resident_memory_bytes gauge"),
        "{text}"
    );
    for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
        let name = line.split(' ').nth(2).unwrap_or_default();
        assert_eq!(
            text.matches(&format!("# TYPE {name} ")).count(),
            1,
            "{name} typed twice"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no help"
        );
    }
}

#[test]
fn a_metric_not_updated_within_the_retention_leaves_the_exposition() {
    let r = Registry::new();
    r.counter_with("rpc.server.call", labels(&[("method", "Read")]))
        .inc();
    let s = settings(None);
    let now = SystemTime::now();
    assert!(prometheus(&r, &s, now).contains("consul_rpc_server_call{method=\"Read\"} 1"));
    let later = now + s.prometheus_retention + Duration::from_secs(1);
    assert!(!prometheus(&r, &s, later).contains("rpc_server_call"));
}

#[test]
fn label_values_are_escaped() {
    let r = Registry::new();
    r.gauge_with("state.checks", labels(&[("status", "a\"b\\c\nd")]))
        .set(1.0);
    let text = prometheus(&r, &settings(None), SystemTime::now());
    assert!(
        text.contains("consul_state_checks{status=\"a\\\"b\\\\c\\nd\"} 1"),
        "{text}"
    );
}

#[test]
fn counters_refuse_negative_increments() {
    let r = Registry::new();
    let c = r.counter("serf.member.join");
    c.incr(-1.0);
    assert!(c.0.updated().is_none());
    c.incr(2.0);
    assert_eq!(c.0.total().sum, 2.0);
}

#[test]
fn every_definition_has_help_and_a_unique_name() {
    let mut seen = std::collections::BTreeSet::new();
    for d in DEFINITIONS {
        assert!(seen.insert(d.name), "{} defined twice", d.name);
        assert!(!d.help.is_empty());
        assert_eq!(help(d.name), Some(d.help));
    }
}
