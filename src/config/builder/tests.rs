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
