//! `meridian bench` as a user runs it: bad arguments are refused with a
//! message, and a short run against a dev agent reports counts that add
//! up and leaves the data it claims to have written.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("bench")
        .args(args)
        .output()
        .expect("run meridian bench")
}

#[test]
fn bad_arguments_get_an_error_and_exit_1() {
    for (args, needle) in [
        (vec!["-workload", "kv-sideways"], "unknown workload"),
        (
            vec!["-workload", "kv-put", "-c", "0"],
            "-c must be at least 1",
        ),
        (
            vec!["-workload", "kv-put", "-duration", "1 minute"],
            "invalid -duration",
        ),
        (
            vec!["-workload", "dns", "-target", "etcd"],
            "etcd takes kv-put and kv-get only",
        ),
        (vec!["-workload", "cross-dc"], "cross-dc needs -dc"),
    ] {
        let o = bench(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    let o = bench(&["-c", "2"]);
    assert!(!o.status.success(), "the workload is required");
}

fn report(dir: &std::path::Path, agent: &TestAgent, args: &[&str]) -> Value {
    let json = dir.join("report.json");
    let mut all = vec![
        "-addr",
        agent.http.as_str(),
        "-quiet",
        "-json",
        json.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let o = bench(&all);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("throughput"), "{}", stdout(&o));
    serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
}

fn counts_add_up(r: &Value) {
    let errors: u64 = r["errors"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        r["ops"].as_u64().unwrap(),
        r["ok"].as_u64().unwrap() + errors,
        "{r}"
    );
    assert!(r["ok"].as_u64().unwrap() > 0, "{r}");
    let l = &r["latency"];
    assert!(
        l["p50_ms"].as_f64() <= l["p99_ms"].as_f64()
            && l["p99_ms"].as_f64() <= l["max_ms"].as_f64()
    );
}

#[test]
fn short_runs_against_a_dev_agent_add_up() {
    let agent = TestAgent::dev(&[]);
    let dir = tempfile::tempdir().unwrap();
    let pid = agent_pid(&agent);

    let r = report(
        dir.path(),
        &agent,
        &[
            "-workload",
            "kv-put",
            "-c",
            "4",
            "-duration",
            "1s",
            "-keys",
            "20",
            "-value-size",
            "64",
            "-pids",
            &pid,
        ],
    );
    counts_add_up(&r);
    assert_eq!(r["errors"], serde_json::json!({}));
    assert_eq!(r["processes"][0]["name"], "meridian");
    assert!(r["processes"][0]["rss_max_mib"].as_f64().unwrap() > 1.0);
    // Every key the run cycled through holds a value of the asked size.
    let keys = agent.get_json("/v1/kv/bench/?keys");
    assert_eq!(keys.as_array().unwrap().len(), 20, "{keys}");
    let raw = reqwest::blocking::get(agent.url("/v1/kv/bench/k7?raw"))
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(raw.len(), 64);

    let r = report(
        dir.path(),
        &agent,
        &[
            "-workload",
            "kv-cas",
            "-c",
            "4",
            "-duration",
            "1s",
            "-keys",
            "2",
        ],
    );
    counts_add_up(&r);
    let note = r["notes"][0].as_str().unwrap();
    let ok = r["ok"].as_u64().unwrap();
    assert_eq!(
        note,
        format!("counters sum {ok} for {ok} acknowledged increments")
    );

    let r = report(
        dir.path(),
        &agent,
        &[
            "-workload",
            "kv-get",
            "-mode",
            "stale",
            "-rate",
            "200",
            "-duration",
            "1s",
            "-keys",
            "5",
        ],
    );
    counts_add_up(&r);
    assert_eq!(
        r["ops"], 200,
        "an open loop starts exactly rate x duration operations"
    );

    let dns = format!("127.0.0.1:{}", agent.dns_port);
    let r = report(
        dir.path(),
        &agent,
        &[
            "-workload",
            "dns",
            "-dns-addr",
            &dns,
            "-dns-name",
            "consul.service.consul",
            "-c",
            "2",
            "-duration",
            "1s",
        ],
    );
    counts_add_up(&r);
}

/// The agent's pid, as the bench's `-pids` flag takes it.
fn agent_pid(agent: &TestAgent) -> String {
    agent.pid().expect("the agent runs").to_string()
}
