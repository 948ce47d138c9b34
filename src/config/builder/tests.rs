use std::path::Path;
use std::time::Duration;

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn flags_with_dir(dir: &Path) -> AgentFlags {
    AgentFlags {
        config_dir: vec![dir.to_path_buf()],
        data_dir: Some(dir.join("data")),
        ..Default::default()
    }
}

#[test]
fn files_merge_in_lexical_order_and_flags_win() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "b.json",
        r#"{"datacenter": "dc-b", "retry_join": ["b"], "ports": {"http": 8600}}"#,
    );
    write(
        d.path(),
        "a.hcl",
        "datacenter = \"dc-a\"\nretry_join = [\"a\"]\nnode_name = \"from-file\"\n",
    );
    write(d.path(), "notes.txt", "ignored: not json or hcl");
    let mut f = flags_with_dir(d.path());
    f.node = Some("from-flag".into());
    f.retry_join = vec!["c".into()];
    let cfg = build(&f).unwrap();
    assert_eq!(cfg.datacenter, "dc-b", "the later file wins");
    assert_eq!(cfg.retry_join, ["a", "b", "c"], "lists concatenate");
    assert_eq!(cfg.node_name, "from-flag");
    assert_eq!(cfg.ports.http, Some(8600));
    assert_eq!(cfg.sources.len(), 2);
    assert!(!cfg.node_id.is_empty());
    // The node ID is persisted and stable across builds.
    assert_eq!(build(&f).unwrap().node_id, cfg.node_id);
}

#[test]
fn ports_minus_one_disable_listeners() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "p.json", r#"{"ports": {"dns": -1}}"#);
    let mut f = flags_with_dir(d.path());
    f.http_port = Some(-1);
    let cfg = build(&f).unwrap();
    assert_eq!((cfg.ports.dns, cfg.ports.http), (None, None));
    f.http_port = Some(70000);
    assert!(build(&f).unwrap_err().to_string().contains("-http-port"));
}

#[test]
fn dev_defaults() {
    let cfg = build(&AgentFlags {
        dev: Some(true),
        ..Default::default()
    })
    .unwrap();
    assert!(cfg.server && cfg.bootstrap && cfg.ui_enabled && cfg.dev);
    assert_eq!(cfg.bind_addr, IpAddr::from([127, 0, 0, 1]));
    assert!(cfg.data_dir.is_none());
    assert_eq!(cfg.domain, "consul.");
}

#[test]
fn json_and_hcl_services_with_checks() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "web.json",
        r#"{"service": {"name": "web", "port": 80, "check": {"http": "http://localhost:80/health", "interval": "10s"}}}"#,
    );
    write(
        d.path(),
        "x.hcl",
        r#"
service {
  name = "api"
  id   = "api-1"
  port = 9090
  tags = ["v2"]
  meta = { Team = "core" }
  checks = [{ tcp = "localhost:9090", interval = "5s", timeout = "1s" }, { ttl = "30s" }]
}
service {
  name = "db"
}
check {
  id = "mem"
  args = ["/bin/true"]
  interval = "1m"
}
enable_local_script_checks = true
"#,
    );
    write(
        d.path(),
        "y.json",
        r#"{"services": [{"Name": "cache", "Port": 6379, "Checks": [{"TTL": "15s", "Name": "cache ttl"}]}]}"#,
    );
    let cfg = build(&flags_with_dir(d.path())).unwrap();
    let names: Vec<&str> = cfg.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web", "api", "db", "cache"]);
    assert_eq!(
        cfg.services[0].checks[0].interval,
        Some(Duration::from_secs(10))
    );
    assert_eq!(cfg.services[0].checks[0].kind(), "http");
    assert_eq!(
        cfg.services[1].meta.get("Team").map(String::as_str),
        Some("core"),
        "meta keys keep their case"
    );
    assert_eq!(cfg.services[1].checks.len(), 2);
    assert_eq!(cfg.services[3].checks[0].ttl, Some(Duration::from_secs(15)));
    assert_eq!(cfg.checks[0].id, "mem");
}

fn error_of(name: &str, text: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), name, text);
    let err = build(&AgentFlags {
        config_file: vec![p.clone()],
        data_dir: Some(d.path().into()),
        ..Default::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&p.display().to_string()),
        "names the file: {err}"
    );
    err
}

#[test]
fn errors_name_the_file_the_key_and_the_problem() {
    let e = error_of(
        "bad.json",
        r#"{"services": [{"name": "a", "port": "eighty"}]}"#,
    );
    assert!(
        e.contains("services[0].port") && e.contains("integer"),
        "{e}"
    );
    let e = error_of("bad.json", r#"{"no_such_key": 1}"#);
    assert!(e.contains("no_such_key") && e.contains("unknown"), "{e}");
    let e = error_of(
        "bad.json",
        r#"{"service": {"name": "a", "check": {"http": "http://x", "interval": "soon"}}}"#,
    );
    assert!(e.contains("service.check.interval"), "{e}");
    let e = error_of("bad.json", r#"{"service": {"port": 80}}"#);
    assert!(e.contains("needs a name"), "{e}");
    let e = error_of("bad.json", "{not json");
    assert!(e.contains("Error parsing"), "{e}");
    let e = error_of("bad.hcl", "service {\n name = \n}");
    assert!(e.contains("Error parsing"), "{e}");
    let e = error_of("bad.json", r#"{"bind_addr": "not-an-ip"}"#);
    assert!(e.contains("bind_addr"), "{e}");
}

#[test]
fn cross_key_rules() {
    let d = tempfile::tempdir().unwrap();
    let err = build(&AgentFlags::default()).unwrap_err().to_string();
    assert!(err.contains("data_dir"), "{err}");
    let f = AgentFlags {
        data_dir: Some(d.path().into()),
        bootstrap: Some(true),
        bootstrap_expect: Some(3),
        server: Some(true),
        ..Default::default()
    };
    assert!(build(&f)
        .unwrap_err()
        .to_string()
        .contains("mutually exclusive"));
    let f = AgentFlags {
        data_dir: Some(d.path().into()),
        bootstrap_expect: Some(1),
        ..Default::default()
    };
    assert!(build(&f).unwrap_err().to_string().contains("server"));
}

#[test]
fn validate_paths_checks_files_without_a_data_dir() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "ok.json",
        r#"{"datacenter": "east", "domain": "example"}"#,
    );
    let cfg = validate_paths(&[d.path().to_path_buf()]).unwrap();
    assert_eq!(cfg.datacenter, "east");
    std::fs::write(d.path().join("dc.json"), r#"{"datacenter": "EAST"}"#).unwrap();
    assert_eq!(
        validate_paths(&[d.path().join("dc.json")])
            .unwrap()
            .datacenter,
        "east",
        "lowercased as Consul does"
    );
    assert_eq!(cfg.domain, "example.");
    write(d.path(), "zz.json", r#"{"ports": {"http": "x"}}"#);
    assert!(validate_paths(&[d.path().to_path_buf()])
        .unwrap_err()
        .to_string()
        .contains("ports.http"));
}

#[test]
fn script_checks_need_scripts_enabled_and_probe_kinds_are_exclusive() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "s.json",
        r#"{"check": {"name": "mem", "args": ["/bin/true"], "interval": "10s"}}"#,
    );
    let e = build(&flags_with_dir(d.path())).unwrap_err().to_string();
    assert!(e.contains("Scripts are disabled on this agent"), "{e}");
    write(
        d.path(),
        "s.json",
        r#"{"check": {"name": "x", "http": "http://a", "tcp": "a:1", "interval": "10s"}}"#,
    );
    let e = build(&flags_with_dir(d.path())).unwrap_err().to_string();
    assert!(
        e.contains("s.json") && e.contains("check") && e.contains("http and tcp"),
        "{e}"
    );
    write(
        d.path(),
        "s.json",
        r#"{"check": {"name": "x", "tcp": "a:1", "interval": "-10s"}}"#,
    );
    let e = build(&flags_with_dir(d.path())).unwrap_err().to_string();
    assert!(
        e.contains("check.interval") && e.contains("negative"),
        "{e}"
    );
}

#[test]
fn ports_zero_are_kept_for_the_agent_to_bind_ephemeral_ports() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "p.hcl",
        "ports {\n  dns = 0\n  server = 0\n  serf_lan = 0\n  serf_wan = 0\n}\n",
    );
    let mut f = flags_with_dir(d.path());
    f.http_port = Some(0);
    let p = build(&f).unwrap().ports;
    assert_eq!(
        [p.http, p.dns, p.server, p.serf_lan, p.serf_wan],
        [Some(0); 5]
    );
}

#[test]
fn telemetry_keys_are_acted_on_and_sinks_refused() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "t.hcl",
        "telemetry {\n  prometheus_retention_time = \"90s\"\n  disable_hostname = true\n  metrics_prefix = \"meridian\"\n}\n",
    );
    write(
        d.path(),
        "u.json",
        r#"{"telemetry": {"disable_compat_1.9": true}}"#,
    );
    let cfg = build(&flags_with_dir(d.path())).unwrap();
    let t = &cfg.telemetry;
    assert_eq!(t.prometheus_retention_time, Duration::from_secs(90));
    assert!(t.disable_hostname && t.disable_compat_1_9);
    assert_eq!(t.metrics_prefix, "meridian");
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    // Consul's default: no Prometheus format, host names on gauges.
    let t = crate::config::Telemetry::default();
    assert_eq!(t.prometheus_retention_time, Duration::ZERO);
    assert!(!t.disable_hostname);
    assert_eq!(t.metrics_prefix, "consul");

    let e = error_of(
        "s.json",
        r#"{"telemetry": {"statsd_address": "127.0.0.1:8125"}}"#,
    );
    assert!(
        e.ends_with("telemetry.statsd_address: not supported by Meridian"),
        "{e}"
    );
    let e = error_of("v.json", r#"{"telemetry": {"disable_hostname": "yes"}}"#);
    assert!(e.contains("telemetry.disable_hostname"), "{e}");
    let e = error_of("w.json", r#"{"telemetry": {"prometheus_retention": "1m"}}"#);
    assert!(
        e.ends_with("telemetry.prometheus_retention: unknown telemetry key"),
        "{e}"
    );
}

#[test]
fn coordinate_keys_are_acted_on_and_bad_values_refused() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "c.hcl",
        "disable_coordinates = true\nsync_coordinate_interval_min = \"2s\"\nsync_coordinate_rate_target = 8\n",
    );
    let cfg = build(&flags_with_dir(d.path())).unwrap();
    assert!(cfg.disable_coordinates);
    assert_eq!(cfg.sync_coordinate_interval_min, Duration::from_secs(2));
    assert_eq!(cfg.sync_coordinate_rate_target, 8.0);
    for (text, key) in [
        (
            "sync_coordinate_interval_min = \"0s\"\n",
            "sync_coordinate_interval_min",
        ),
        (
            "sync_coordinate_rate_target = -1\n",
            "sync_coordinate_rate_target",
        ),
        (
            "sync_coordinate_rate_target = \"fast\"\n",
            "sync_coordinate_rate_target",
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "c.hcl", text);
        let e = build(&flags_with_dir(d.path())).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains("c.hcl"), "{text}: {e}");
    }
}

#[test]
fn dns_keys_are_acted_on_and_bad_values_refused() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "dns.hcl",
        "alt_domain = \"Alt.Test\"\ndns_config {\n  recursor_strategy = \"random\"\n  \
         enable_additional_node_meta_txt = false\n  max_stale = \"30s\"\n  \
         a_record_limit = 2\n  enable_truncate = true\n}\n",
    );
    let cfg = build(&flags_with_dir(d.path())).unwrap();
    assert_eq!(
        cfg.alt_domain.as_deref(),
        Some("alt.test."),
        "lowercase FQDN"
    );
    assert_eq!(
        cfg.dns.recursor_strategy,
        crate::config::RecursorStrategy::Random
    );
    assert!(!cfg.dns.node_meta_txt);
    assert_eq!(cfg.dns.max_stale, Duration::from_secs(30));
    assert_eq!(cfg.dns.a_record_limit, 2);
    assert!(cfg.dns.enable_truncate);
    // Consul's defaults.
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.json", "{}");
    let cfg = build(&flags_with_dir(d.path())).unwrap();
    assert_eq!(cfg.alt_domain, None);
    assert_eq!(
        cfg.dns.recursor_strategy,
        crate::config::RecursorStrategy::Sequential
    );
    assert!(cfg.dns.node_meta_txt);
    assert_eq!(cfg.dns.max_stale, Duration::from_secs(87_600 * 3600));
    // alt_domain equal to domain is no second domain; -alt-domain wins.
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.json", r#"{"alt_domain": "consul"}"#);
    assert_eq!(build(&flags_with_dir(d.path())).unwrap().alt_domain, None);
    let cfg = build(&AgentFlags {
        alt_domain: Some("other.".into()),
        ..flags_with_dir(d.path())
    })
    .unwrap();
    assert_eq!(cfg.alt_domain.as_deref(), Some("other."));
    for (text, key) in [
        (
            r#"{"dns_config": {"recursor_strategy": "fastest"}}"#,
            "dns_config.recursor_strategy",
        ),
        (
            r#"{"dns_config": {"enable_additional_node_meta_txt": "yes"}}"#,
            "dns_config.enable_additional_node_meta_txt",
        ),
        (
            r#"{"dns_config": {"max_stale": "forever"}}"#,
            "dns_config.max_stale",
        ),
        (r#"{"alt_domain": 7}"#, "alt_domain"),
    ] {
        let e = error_of("dns.json", text);
        assert!(e.contains(key), "{text}: {e}");
    }
}

#[test]
fn raft_snapshot_interval_is_acted_on_and_zero_refused() {
    let d = tempfile::tempdir().unwrap();
    let cfg = build(&flags_with_dir(d.path())).unwrap();
    assert_eq!(
        cfg.raft_snapshot_interval,
        Duration::from_secs(30),
        "Consul's default"
    );
    write(d.path(), "r.hcl", "raft_snapshot_interval = \"5s\"\n");
    let cfg = build(&flags_with_dir(d.path())).unwrap();
    assert_eq!(cfg.raft_snapshot_interval, Duration::from_secs(5));
    assert!(
        !cfg.warnings
            .iter()
            .any(|w| w.contains("raft_snapshot_interval")),
        "{:?}",
        cfg.warnings
    );
    let e = error_of("r.json", r#"{"raft_snapshot_interval": "0s"}"#);
    assert!(
        e.contains("raft_snapshot_interval") && e.contains("positive"),
        "{e}"
    );
}
