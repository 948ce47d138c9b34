//! Meridian's own federation features against three datacenters of real
//! agents (one server each, on loopback): `?dc=*` across all of them with
//! one frozen, `web.service.any.consul` over DNS, `catalog services
//! -datacenter '*'`, and the circuit breaker that reports a frozen
//! datacenter within 2 s and forwards again within 1 s of its return.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{stdout, wait_for, TestAgent};
use serde_json::Value;

fn get(url: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let r = reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .expect("request");
    let code = r.status().as_u16();
    let headers = r.headers().clone();
    (code, r.text().unwrap_or_default(), headers)
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn put(url: &str, body: &str) -> u16 {
    reqwest::blocking::Client::new()
        .put(url)
        .body(body.to_string())
        .send()
        .expect("request")
        .status()
        .as_u16()
}

fn dig(agent: &TestAgent, name: &str) -> String {
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &agent.dns_port.to_string(),
            "+short",
            "+time=3",
            "+tries=1",
            name,
            "A",
        ])
        .output()
        .expect("dig (dnsutils) is installed");
    stdout(&out)
}

fn register_web(agent: &TestAgent, address: &str, status: &str) {
    let body = format!(
        r#"{{"Name": "web", "Port": 80, "Address": "{address}", "Check": {{"TTL": "600s", "Status": "{status}"}}}}"#
    );
    assert_eq!(put(&agent.url("/v1/agent/service/register"), &body), 200);
}

#[test]
fn every_datacenter_at_once_and_a_frozen_one_is_reported_fast() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let dc1 = TestAgent::server_with(dirs[0].path(), &["-datacenter", "dc1"]);
    let wan = format!("127.0.0.1:{}", dc1.serf_wan);
    let join = ["-retry-join-wan", &wan, "-retry-interval-wan", "1s"];
    let dc2 = TestAgent::server_with(
        dirs[1].path(),
        &[&["-datacenter", "dc2"][..], &join].concat(),
    );
    let dc3 = TestAgent::server_with(
        dirs[2].path(),
        &[&["-datacenter", "dc3"][..], &join].concat(),
    );
    wait_for("dc1 reaches dc2 and dc3", 40, || {
        ["dc2", "dc3"]
            .iter()
            .all(|dc| get(&dc1.url(&format!("/v1/catalog/nodes?dc={dc}"))).0 == 200)
    });
    // dc1 has web critical, dc2 and dc3 passing; a key in dc1 and dc2.
    register_web(&dc1, "10.0.1.1", "critical");
    register_web(&dc2, "10.0.2.1", "passing");
    register_web(&dc3, "10.0.3.1", "passing");
    assert_eq!(put(&dc1.url("/v1/kv/cfg/x"), "one"), 200);
    assert_eq!(put(&dc2.url("/v1/kv/cfg/x"), "two"), 200);
    wait_for("web registered in every datacenter", 20, || {
        let (_, body, _) = get(&dc1.url("/v1/catalog/services?dc=*"));
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        ["dc1", "dc2", "dc3"]
            .iter()
            .all(|dc| v[dc].get("web").is_some())
    });

    // Health of every datacenter in one answer, each with its own index.
    let (code, body, h) = get(&dc1.url("/v1/health/service/web?dc=*&passing"));
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["dc1"],
        serde_json::json!([]),
        "dc1's only web is critical"
    );
    assert_eq!(v["dc2"][0]["Node"]["Datacenter"], "dc2", "{body}");
    assert_eq!(v["dc3"][0]["Service"]["Address"], "10.0.3.1");
    let indexes = header(&h, "X-Meridian-Datacenter-Index");
    for dc in ["dc1=", "dc2=", "dc3="] {
        assert!(indexes.contains(dc), "{indexes}");
    }
    let (_, _, dc2_h) = get(&dc2.url("/v1/health/service/web"));
    let dc2_index = header(&dc2_h, "X-Consul-Index");
    assert!(
        indexes.contains(&format!("dc2={dc2_index}")),
        "{indexes} vs dc2's own {dc2_index}"
    );
    assert_eq!(header(&h, "X-Meridian-Failed-Datacenters"), "");
    // KV: a key one datacenter lacks is null there, not a failure.
    let (_, body, _) = get(&dc1.url("/v1/kv/cfg/x?dc=*"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["dc1"][0]["Key"], "cfg/x");
    assert_eq!(v["dc2"][0]["Value"], "dHdv", "base64 of two");
    assert_eq!(v["dc3"], Value::Null);
    // Blocking and raw make no sense across datacenters: 400s that say so.
    assert_eq!(get(&dc1.url("/v1/kv/cfg/x?dc=*&index=5")).0, 400);
    assert_eq!(get(&dc1.url("/v1/kv/cfg/x?dc=*&raw")).0, 400);

    // The CLI: one table with a DC column.
    let out = dc1.cli(&["catalog", "services", "-datacenter", "*"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for dc in ["dc1", "dc2", "dc3"] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [dc, "web"]),
            "{text}"
        );
    }

    // DNS: `.any` answers from the nearest datacenter with passing web
    // (dc1's is critical, so dc2 or dc3).
    let a = dig(&dc1, "web.service.any.consul");
    assert!(
        a.trim() == "10.0.2.1" || a.trim() == "10.0.3.1",
        "web.service.any: {a:?}"
    );
    assert_eq!(dig(&dc1, "web.service.dc3.consul").trim(), "10.0.3.1");

    // dc3 frozen (connections open, nothing answers: a partition as dc1
    // sees it). New requests for it are `No path to datacenter` within
    // 2 s, and `?dc=*` answers the other two with an error entry for it.
    // Once dc1's probes have reached dc3 (they start with the agent, twice
    // a second; a datacenter not probed yet is found out the slow way).
    wait_for("dc1's probes reach dc3", 20, || {
        let me: Value = dc1.get_json("/v1/agent/self");
        me["Meridian"]["Datacenters"].as_array().is_some_and(|r| {
            r.iter()
                .any(|d| d["Datacenter"] == "dc3" && d["Reachable"] == true)
        })
    });
    dc3.signal_no_wait(libc::SIGSTOP);
    let frozen = Instant::now();
    let reported = loop {
        let t = Instant::now();
        let (code, body, _) = get(&dc1.url("/v1/kv/cfg/x?dc=dc3"));
        if code == 500 && body.trim() == "No path to datacenter" {
            break frozen.elapsed();
        }
        assert!(
            frozen.elapsed() < Duration::from_secs(10),
            "dc3 still not reported after {:?} (last answer {code} {body} in {:?})",
            frozen.elapsed(),
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("dc3 frozen to `No path to datacenter`: {reported:?}");
    assert!(
        reported < Duration::from_secs(2),
        "reported after {reported:?}"
    );
    let t = Instant::now();
    let (code, body, h) = get(&dc1.url("/v1/health/service/web?dc=*&passing"));
    let took = t.elapsed();
    eprintln!("?dc=* with dc3 frozen answered in {took:?}");
    assert_eq!(code, 200, "{body}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["dc2"][0]["Node"]["Datacenter"], "dc2", "{body}");
    assert_eq!(v["dc3"]["Error"], "No path to datacenter", "{body}");
    assert_eq!(header(&h, "X-Meridian-Failed-Datacenters"), "dc3");
    assert!(!header(&h, "X-Meridian-Datacenter-Index").contains("dc3="));
    // The CLI prints the others and names dc3 on stderr, exit code 2.
    let out = dc1.cli(&["catalog", "services", "-datacenter", "*"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("dc2"));
    assert!(
        common::stderr(&out).contains("dc3"),
        "{}",
        common::stderr(&out)
    );
    // The federation view's source: this server's probes say dc3 is down.
    let me: Value = dc1.get_json("/v1/agent/self");
    let reach = &me["Meridian"]["Datacenters"];
    let dc3_reach = reach
        .as_array()
        .and_then(|r| r.iter().find(|d| d["Datacenter"] == "dc3"))
        .unwrap_or_else(|| panic!("{reach}"));
    assert_eq!(dc3_reach["Reachable"], false, "{reach}");

    // Thawed: forwarding resumes within 1 s.
    dc3.signal_no_wait(libc::SIGCONT);
    let thawed = Instant::now();
    let resumed = loop {
        let (code, _, _) = get(&dc1.url("/v1/catalog/services?dc=dc3"));
        if code == 200 {
            break thawed.elapsed();
        }
        assert!(
            thawed.elapsed() < Duration::from_secs(10),
            "dc3 not back after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("dc3 thawed to its first forwarded answer: {resumed:?}");
    assert!(
        resumed < Duration::from_secs(1),
        "resumed after {resumed:?}"
    );
}

#[test]
fn a_declared_prefix_is_replicated_and_refuses_local_writes() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let dc1 = TestAgent::server_with(dirs[0].path(), &["-datacenter", "dc1"]);
    let wan = format!("127.0.0.1:{}", dc1.serf_wan);
    // Written before dc2 exists: the first round copies it.
    assert_eq!(put(&dc1.url("/v1/kv/config/global/early"), "e"), 200);
    let conf = dirs[1].path().join("replication.hcl");
    std::fs::write(
        &conf,
        "replication {\n  source = \"dc1\"\n  prefixes = [\"config/global/\"]\n}\n",
    )
    .unwrap();
    let conf = conf.to_string_lossy().into_owned();
    let mut dc2 = TestAgent::server_with(
        dirs[1].path(),
        &[
            "-datacenter",
            "dc2",
            "-retry-join-wan",
            &wan,
            "-retry-interval-wan",
            "1s",
            "-config-file",
            &conf,
        ],
    );
    wait_for("the early key reaches dc2", 40, || {
        get(&dc2.url("/v1/kv/config/global/early?raw")).1 == "e"
    });
    // A write in dc1 is in dc2 within 1 s.
    let mut took = Vec::new();
    for i in 0..5 {
        let value = format!("v{i}");
        let t = Instant::now();
        assert_eq!(put(&dc1.url("/v1/kv/config/global/flag"), &value), 200);
        loop {
            if get(&dc2.url("/v1/kv/config/global/flag?raw")).1 == value {
                took.push(t.elapsed());
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{value} never reached dc2"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    eprintln!("dc1 write to visible in dc2: {took:?}");
    let worst = took.iter().max().copied().unwrap_or_default();
    assert!(worst < Duration::from_secs(1), "worst {worst:?}");
    // Deletes follow; keys outside the prefix stay where they were written.
    assert_eq!(
        reqwest::blocking::Client::new()
            .delete(dc1.url("/v1/kv/config/global/early"))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(put(&dc1.url("/v1/kv/config/local/x"), "dc1 only"), 200);
    wait_for("the delete reaches dc2", 10, || {
        get(&dc2.url("/v1/kv/config/global/early")).0 == 404
    });
    assert_eq!(get(&dc2.url("/v1/kv/config/local/x")).0, 404);
    // dc2 refuses a local write under the prefix, naming the source; its
    // own keys elsewhere are its own.
    let (code, body) = {
        let r = reqwest::blocking::Client::new()
            .put(dc2.url("/v1/kv/config/global/flag"))
            .body("local")
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("\"dc1\""), "{body}");
    let r = reqwest::blocking::Client::new()
        .delete(dc2.url("/v1/kv/config?recurse"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "a tree delete reaching into the prefix");
    assert_eq!(put(&dc2.url("/v1/kv/config/dc2-own"), "mine"), 200);
    let out = dc2.cli(&["kv", "put", "config/global/flag", "cli"]);
    assert_ne!(out.status.code(), Some(0));
    // Status in agent/self.
    let me: Value = dc2.get_json("/v1/agent/self");
    let r = &me["Meridian"]["Replication"];
    assert_eq!(r["SourceDatacenter"], "dc1", "{r}");
    assert_eq!(r["Running"], true);
    assert_eq!(r["LagMs"], 0);
    assert!(
        r["Prefixes"][0]["ReplicatedIndex"].as_u64().unwrap_or(0) > 0,
        "{r}"
    );
    // The copy is dc2's own Raft data: it survives a kill -9 of dc2 and
    // is read there while dc1 is down.
    let mut dc1 = dc1;
    dc1.kill();
    dc2.kill();
    dc2.restart();
    wait_for("dc2 serves its copy with dc1 down", 30, || {
        get(&dc2.url("/v1/kv/config/global/flag?raw")).1 == "v4"
    });
    // dc1 back: replication resumes by itself.
    dc1.restart();
    wait_for("dc1 back", 30, || {
        get(&dc1.url("/v1/kv/config/global/flag")).0 == 200
    });
    assert_eq!(put(&dc1.url("/v1/kv/config/global/flag"), "after"), 200);
    wait_for("replication resumes after dc1 returns", 30, || {
        get(&dc2.url("/v1/kv/config/global/flag?raw")).1 == "after"
    });
}
