//! The built binary, started as a user would: durability across SIGKILL,
//! services from config files, and config errors at start.

mod common;

use common::*;

#[test]
fn sigkill_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = TestAgent::server(dir.path());
    let client = reqwest::blocking::Client::new();
    for i in 0..1000 {
        let r = client
            .put(agent.url(&format!("/v1/kv/durable/{i:04}")))
            .body(format!("v{i}"))
            .send()
            .unwrap();
        assert_eq!(r.text().unwrap(), "true", "write {i} acknowledged");
    }
    agent.kill();
    agent.restart();
    let r = client
        .get(agent.url("/v1/kv/durable/?recurse"))
        .send()
        .unwrap();
    let entries: serde_json::Value = r.json().unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 1000, "every acknowledged write is back");
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["Key"], format!("durable/{i:04}"));
    }
    // The node ID survives too (persisted under the data dir).
    let node_id = std::fs::read_to_string(dir.path().join("node-id")).unwrap();
    let me: serde_json::Value = client
        .get(agent.url("/v1/agent/self"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["Config"]["NodeID"], node_id.trim());
}

#[test]
fn services_from_config_files_reach_agent_and_catalog_and_follow_reload() {
    let conf = tempfile::tempdir().unwrap();
    std::fs::write(
        conf.path().join("web.json"),
        r#"{"service": {"name": "web", "port": 8080, "tags": ["blue"], "check": {"ttl": "60s"}}}"#,
    )
    .unwrap();
    std::fs::write(
        conf.path().join("api.hcl"),
        "service {\n  name = \"api\"\n  port = 9090\n}\n",
    )
    .unwrap();
    std::fs::write(
        conf.path().join("cache.json"),
        r#"{"service": {"name": "cache", "port": 6379, "check": {"ttl": "60s"}}}"#,
    )
    .unwrap();
    let agent = TestAgent::dev(&["-config-dir", conf.path().to_str().unwrap()]);
    let http = reqwest::blocking::Client::new();
    for id in ["service:web", "service:cache"] {
        let r = http
            .put(agent.url(&format!("/v1/agent/check/pass/{id}?note=up")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let local = agent.get_json("/v1/agent/services");
    assert_eq!(local["web"]["Port"], 8080);
    assert_eq!(local["api"]["Port"], 9090);
    wait_for("api in the catalog", 10, || {
        agent
            .get_json("/v1/catalog/service/api")
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });

    // Reload picks up a new file, drops a removed one and applies a
    // changed one; the unchanged check keeps its state, the changed one
    // starts over.
    std::fs::remove_file(conf.path().join("api.hcl")).unwrap();
    std::fs::write(
        conf.path().join("cache.json"),
        r#"{"service": {"name": "cache", "port": 6380, "check": {"ttl": "30s"}}}"#,
    )
    .unwrap();
    std::fs::write(
        conf.path().join("db.json"),
        r#"{"service": {"name": "db", "port": 5432}}"#,
    )
    .unwrap();
    let out = agent.cli(&["reload"]);
    assert_eq!(stdout(&out).trim(), "Configuration reload triggered");
    let local = agent.get_json("/v1/agent/services");
    assert!(
        local.get("api").is_none() && local["db"]["Port"] == 5432,
        "{local}"
    );
    wait_for("the catalog to follow the reload", 10, || {
        let cat = agent.get_json("/v1/catalog/services");
        cat.get("db").is_some() && cat.get("api").is_none()
    });
    assert_eq!(local["cache"]["Port"], 6380);
    let checks = agent.get_json("/v1/agent/checks");
    assert_eq!(checks["service:web"]["Status"], "passing", "{checks}");
    assert_eq!(checks["service:web"]["Output"], "up");
    assert_eq!(checks["service:cache"]["Status"], "critical", "{checks}");

    // A broken file on reload is named, and the running config stays.
    std::fs::write(conf.path().join("bad.json"), r#"{"service": {"name": 5}}"#).unwrap();
    let out = agent.cli(&["reload"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("bad.json"), "{}", stderr(&out));
    let checks = agent.get_json("/v1/agent/checks");
    assert_eq!(checks["service:web"]["Status"], "passing");
}

#[test]
fn config_errors_name_file_and_key_and_exit_nonzero() {
    let conf = tempfile::tempdir().unwrap();
    let bad = conf.path().join("bad.json");
    std::fs::write(&bad, r#"{"ports": {"http": "eighty"}}"#).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["agent", "-dev", "-config-file", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("bad.json") && err.contains("ports.http"),
        "{err}"
    );
    let out = std::process::Command::new(BIN)
        .args(["agent", "-server"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("data_dir"), "{}", stderr(&out));
}

#[test]
fn acls_in_the_config_are_read_and_the_agent_names_deprecated_keys() {
    let conf = tempfile::tempdir().unwrap();
    std::fs::write(
        conf.path().join("acl.hcl"),
        "datacenter = \"Main\"\nprimary_datacenter = \"Main\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n  tokens {\n    default = \"root\"\n  }\n}\nacl_master_token = \"root\"\n",
    )
    .unwrap();
    let deprecated = "acl.hcl: The 'acl_master_token' field is deprecated. Use the 'acl.tokens.initial_management' field instead.";
    // The default token (management) lets the test harness's token-less
    // readiness reads through under `deny`.
    let agent = TestAgent::dev(&["-config-dir", conf.path().to_str().unwrap()]);
    // Logged at start although the build ran before logging was set up.
    let log = agent.log_text();
    assert!(log.contains(deprecated), "{log}");
    let me = agent.get_json("/v1/agent/self");
    assert_eq!(me["Config"]["PrimaryDatacenter"], "main");
    // Its own datacenter, so that it is the primary and installs the
    // management token the default token names.
    assert_eq!(me["Config"]["Datacenter"], "main");
    // A reload builds again, and says it again.
    let out = agent.cli(&["reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for("the reload's warning", 10, || {
        agent.log_text().matches(deprecated).count() == 2
    });
    // `validate` prints the warnings too, then the verdict.
    let out = std::process::Command::new(BIN)
        .args(["validate", conf.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(stderr(&out).contains(deprecated), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "Configuration is valid!");
}

#[test]
fn sigkill_during_concurrent_writes_keeps_every_acknowledged_one() {
    let dir = tempfile::tempdir().unwrap();
    // Snapshots every 64 entries: the kill lands among snapshots and the
    // lazy deletion of the entries they purge.
    let conf = dir.path().join("small-snapshots.json");
    std::fs::write(
        &conf,
        r#"{"raft_snapshot_threshold": 64, "raft_snapshot_interval": "10ms", "raft_trailing_logs": 16}"#,
    )
    .unwrap();
    let mut agent = TestAgent::server_with(
        &dir.path().join("data"),
        &["-config-file", conf.to_str().unwrap()],
    );
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (url, acked, stop) = (agent.url(""), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(std::time::Duration::from_secs(5))
                    .build()
                    .unwrap();
                // Bounded: at most 5,000 writes per writer.
                for i in 0..5000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("w{w}/{i:05}");
                    match client
                        .put(format!("{url}/v1/kv/{key}"))
                        .body(key.clone())
                        .send()
                        .and_then(|r| r.text())
                    {
                        Ok(t) if t == "true" => acked.lock().unwrap().push(key),
                        _ => break,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(700));
    // SIGKILL while writes are in flight; writers stop at their first error.
    agent.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 50, "the workload ran: {} writes", acked.len());
    let snapshots = agent.log_text().matches("Raft snapshot built").count();
    assert!(snapshots > 0, "no snapshot was built before the kill");
    agent.restart();
    let stored: std::collections::HashMap<String, String> = agent
        .get_json("/v1/kv/?recurse")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["Key"].as_str().unwrap().to_string(),
                e["Value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    use base64::Engine;
    for key in &acked {
        let v = stored
            .get(key)
            .unwrap_or_else(|| panic!("acknowledged write {key} lost ({} acked)", acked.len()));
        assert_eq!(
            base64::engine::general_purpose::STANDARD.decode(v).unwrap(),
            key.as_bytes()
        );
    }
    eprintln!(
        "{} acknowledged writes before SIGKILL ({snapshots} snapshots), all present after restart ({} keys stored)",
        acked.len(),
        stored.len()
    );
    // The restarted log takes writes on top of what was purged.
    let r = reqwest::blocking::Client::new()
        .put(agent.url("/v1/kv/after-restart"))
        .body("yes")
        .send()
        .unwrap();
    assert_eq!(r.text().unwrap(), "true");
    assert_eq!(agent.get_json("/v1/kv/after-restart")[0]["Value"], "eWVz");
}

#[test]
fn clients_join_the_pool_and_leave_or_fail_visibly() {
    let server = TestAgent::dev(&[]);
    let seed = format!("127.0.0.1:{}", server.serf_lan);
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let c1 = TestAgent::client(d1.path(), &seed);
    let mut c2 = TestAgent::client(d2.path(), &seed);
    let status_of = |a: &TestAgent, name: &str| -> Option<u64> {
        a.get_json("/v1/agent/members")
            .as_array()?
            .iter()
            .find(|m| m["Name"] == name)?["Status"]
            .as_u64()
    };
    wait_for("three alive members everywhere", 20, || {
        [&server, &c1, &c2].iter().all(|a| {
            [&server.node, &c1.node, &c2.node]
                .iter()
                .all(|n| status_of(a, n) == Some(1))
        })
    });
    let members = stdout(&server.cli(&["members"]));
    assert_eq!(members.lines().count(), 4, "{members}");
    // The leader reconciles every member into the catalog with serfHealth.
    let serf = |node: &str| -> Option<String> {
        let checks = server.get_json(&format!("/v1/health/node/{node}"));
        checks
            .as_array()?
            .iter()
            .find(|c| c["CheckID"] == "serfHealth")
            .and_then(|c| c["Status"].as_str().map(String::from))
    };
    wait_for("members in the catalog", 20, || {
        [&c1.node, &c2.node]
            .iter()
            .all(|n| serf(n).as_deref() == Some("passing"))
    });
    let nodes = stdout(&server.cli(&["catalog", "nodes"]));
    assert_eq!(nodes.lines().count(), 4, "{nodes}");
    assert!(
        members
            .lines()
            .any(|l| l.starts_with(&c1.node) && l.contains("alive") && l.contains("client")),
        "{members}"
    );

    // A graceful leave is `left`; a SIGKILL is `failed`.
    assert_eq!(
        stdout(&c1.cli(&["leave"])).trim(),
        "Graceful leave complete"
    );
    wait_for("c1 left", 20, || status_of(&server, &c1.node) == Some(3));
    wait_for("c1 removed from the catalog", 20, || {
        server
            .get_json(&format!("/v1/catalog/node/{}", c1.node))
            .is_null()
    });
    c2.kill();
    wait_for("c2 failed", 20, || status_of(&server, &c2.node) == Some(4));
    wait_for("c2 serfHealth critical", 20, || {
        serf(&c2.node).as_deref() == Some("critical")
    });
    let members = stdout(&server.cli(&["members"]));
    assert!(
        members
            .lines()
            .any(|l| l.starts_with(&c1.node) && l.contains("left")),
        "{members}"
    );
    assert!(
        members
            .lines()
            .any(|l| l.starts_with(&c2.node) && l.contains("failed")),
        "{members}"
    );

    // `meridian join` through the HTTP API.
    let d3 = tempfile::tempdir().unwrap();
    let c3 = TestAgent::client(d3.path(), "127.0.0.1:1");
    let out = c3.cli(&["join", &seed]);
    assert_eq!(
        stdout(&out).trim(),
        "Successfully joined cluster by contacting 1 nodes.",
        "{}",
        stderr(&out)
    );
    wait_for("c3 alive on the server", 20, || {
        status_of(&server, &c3.node) == Some(1)
    });
}

#[test]
fn agent_checks_ttl_updates_maintenance_and_local_health_codes() {
    let a = TestAgent::dev(&[]);
    let http = reqwest::blocking::Client::new();
    let put = |path: &str, body: &str| {
        let r = http.put(a.url(path)).body(body.to_string()).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(
        put(
            "/v1/agent/service/register",
            r#"{"Name": "web", "Port": 80, "Check": {"TTL": "30s", "Status": "passing"}}"#
        )
        .0,
        200
    );
    assert_eq!(
        put(
            "/v1/agent/check/register",
            r#"{"Name": "disk", "TTL": "30s", "Notes": "disk space"}"#
        )
        .0,
        200
    );

    // Bad definitions: 400 with the reason, nothing registered.
    let (code, body) = put(
        "/v1/agent/check/register",
        r#"{"Name": "both", "HTTP": "http://127.0.0.1:1", "TCP": "127.0.0.1:1", "Interval": "10s"}"#,
    );
    assert_eq!((code, body.contains("http and tcp")), (400, true), "{body}");
    let (code, body) = put(
        "/v1/agent/check/register",
        r#"{"Name": "neg", "TCP": "127.0.0.1:1", "Interval": "-5s"}"#,
    );
    assert_eq!((code, body.contains("Interval")), (400, true), "{body}");
    let (code, body) = put(
        "/v1/agent/check/register",
        r#"{"Name": "sh", "Args": ["/bin/true"], "Interval": "5s"}"#,
    );
    assert_eq!(
        (code, body.contains("Scripts are disabled")),
        (400, true),
        "{body}"
    );
    let (code, _) = put(
        "/v1/agent/check/register",
        r#"{"Name": "x", "ServiceID": "nope", "TTL": "5s"}"#,
    );
    assert_eq!(code, 400);
    let checks = a.get_json("/v1/agent/checks");
    let ids: Vec<&String> = checks.as_object().unwrap().keys().collect();
    assert_eq!(ids, ["disk", "service:web"]);

    // TTL updates: unknown check 404, bad status 400, update with output.
    let (code, body) = put("/v1/agent/check/pass/nope", "");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("Unknown check ID \"nope\""), "{body}");
    let (code, _) = put("/v1/agent/check/update/disk", r#"{"Status": "bogus"}"#);
    assert_eq!(code, 400);
    assert_eq!(
        put(
            "/v1/agent/check/update/disk",
            r#"{"Status": "warning", "Output": "90% full"}"#
        )
        .0,
        200
    );
    let checks = a.get_json("/v1/agent/checks");
    assert_eq!(checks["disk"]["Status"], "warning");
    assert_eq!(checks["disk"]["Output"], "90% full");

    // Local health: the node's warning check makes web warning (429).
    let r = http
        .get(a.url("/v1/agent/health/service/name/web"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 429);
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(v[0]["AggregatedStatus"], "warning");
    assert_eq!(v[0]["Service"]["ID"], "web");
    assert_eq!(put("/v1/agent/check/pass/disk", "").0, 200);
    let r = http
        .get(a.url("/v1/agent/health/service/id/web?format=text"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "passing");
    let r = http
        .get(a.url("/v1/agent/health/service/id/nope"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);

    // Maintenance: web critical (503) and out of passing results, then back.
    let (code, body) = put("/v1/agent/service/maintenance/web", "");
    assert_eq!((code, body.as_str()), (400, "Missing value for enable"));
    assert_eq!(
        put(
            "/v1/agent/service/maintenance/web?enable=true&reason=deploy",
            ""
        )
        .0,
        200
    );
    let r = http
        .get(a.url("/v1/agent/health/service/id/web"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 503);
    wait_for("maintenance in the health API", 5, || {
        a.get_json("/v1/health/service/web?passing")
            .as_array()
            .is_some_and(|x| x.is_empty())
    });
    let checks = a.get_json("/v1/agent/checks");
    assert_eq!(checks["_service_maintenance:web"]["Notes"], "deploy");
    assert_eq!(
        put("/v1/agent/service/maintenance/web?enable=false", "").0,
        200
    );
    assert_eq!(put("/v1/agent/maintenance?enable=true", "").0, 200);
    let checks = a.get_json("/v1/agent/checks");
    assert_eq!(checks["_node_maintenance"]["Status"], "critical");
    assert!(checks.get("_service_maintenance:web").is_none());
    assert_eq!(put("/v1/agent/maintenance?enable=false", "").0, 200);
    wait_for("web passing again in the catalog", 5, || {
        a.get_json("/v1/health/service/web?passing")
            .as_array()
            .is_some_and(|x| x.len() == 1)
    });

    // The same through `meridian maint`, as Consul prints it.
    let out = a.cli(&["maint", "-enable", "-reason", "patching"]);
    assert_eq!(
        stdout(&out),
        "Node entered maintenance mode\n",
        "{}",
        stderr(&out)
    );
    let out = a.cli(&["maint"]);
    assert!(
        stdout(&out).contains("Node:") && stdout(&out).contains("Reason: patching"),
        "{}",
        stdout(&out)
    );
    let out = a.cli(&["maint", "-disable", "-service", "web"]);
    assert_eq!(stdout(&out), "Service maintenance is now disabled: web\n");
    let out = a.cli(&["maint", "-disable"]);
    assert_eq!(stdout(&out), "Node maintenance is now disabled\n");

    // node-meta filters nodes; near=_agent keeps this agent's entry first.
    wait_for("web passing after maintenance", 5, || {
        a.get_json("/v1/health/service/web?passing&near=_agent")
            .as_array()
            .is_some_and(|x| x.len() == 1)
    });
    assert_eq!(
        a.get_json("/v1/health/service/web?node-meta=rack:r9"),
        serde_json::json!([])
    );

    // Deregistering a check removes it from the agent and the catalog.
    assert_eq!(put("/v1/agent/check/deregister/disk", "").0, 200);
    assert_eq!(put("/v1/agent/check/deregister/disk", "").0, 404);
    wait_for("disk gone from the catalog", 5, || {
        !a.get_json(&format!("/v1/health/node/{}", a.node))
            .to_string()
            .contains("\"disk\"")
    });
}

/// Started on port 0 for every listener (as the harness starts every
/// agent), a server names the ports it bound wherever a port is
/// advertised: its config, its LAN and WAN members and their RPC `port`
/// tag, its Raft address and the `consul` service; a restart on the same
/// ports keeps them.
#[test]
fn an_agent_on_port_zero_advertises_the_ports_it_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = TestAgent::server(dir.path());
    let check = |a: &TestAgent| {
        let http_port: u16 = a.http.rsplit(':').next().unwrap().parse().unwrap();
        assert!(
            [http_port, a.dns_port, a.server_port, a.serf_lan, a.serf_wan]
                .iter()
                .all(|p| *p != 0),
            "every port learned: {} {} {} {} {}",
            a.http,
            a.dns_port,
            a.server_port,
            a.serf_lan,
            a.serf_wan
        );
        let me = a.get_json("/v1/agent/self");
        let c = &me["DebugConfig"];
        assert_eq!(c["HTTPPort"], http_port);
        assert_eq!(c["DNSPort"], a.dns_port);
        assert_eq!(c["ServerPort"], a.server_port);
        assert_eq!(c["SerfPortLAN"], a.serf_lan);
        assert_eq!(c["SerfPortWAN"], a.serf_wan);
        assert_eq!(me["Member"]["Port"], a.serf_lan);
        assert_eq!(me["Member"]["Tags"]["port"], a.server_port.to_string());
        let wan = a.get_json("/v1/agent/members?wan=1");
        let wan_ports: Vec<&serde_json::Value> =
            wan.as_array().unwrap().iter().map(|m| &m["Port"]).collect();
        assert_eq!(wan_ports, [&serde_json::json!(a.serf_wan)]);
        assert_eq!(leader(a), format!("127.0.0.1:{}", a.server_port));
        let consul = a.get_json("/v1/catalog/service/consul");
        assert_eq!(consul[0]["ServicePort"], a.server_port, "{consul}");
    };
    check(&a);
    // The harness passes the learned ports again: `check` then compares
    // what the restarted agent bound with what the first run bound.
    a.restart();
    wait_for("a leader after the restart", 30, || !leader(&a).is_empty());
    check(&a);
}
