//! Network coordinates between real agents: five agents (a server and
//! four clients) whose coordinates converge from their own gossip pings,
//! reach the catalog through the agents' updates and the leader's
//! batches, and sort `?near=` reads as the measured round trips do.
//!
//! On loopback every round trip is the same fraction of a millisecond,
//! and `tc netem` is not available here, so each agent is given an
//! artificial access link instead: `MERIDIAN_TEST_PING_DELAY_MS` (honoured
//! by debug builds only) holds back the agent's pings and its answers to
//! pings by that many milliseconds. The round trip agent A measures to B
//! is then d(A) + d(B) plus loopback: what a network of hosts behind
//! links of different latency looks like, and what Vivaldi's height
//! models. The coordinates know nothing of the delays; only the timed
//! pings carry them.

mod common;

use std::time::{Duration, Instant};

use common::{stdout, wait_for, TestAgent};
use serde_json::Value;

/// Each agent's access-link delay (ms): far enough apart that scheduling
/// jitter on a loaded machine cannot swap two neighbours.
const DELAYS: [u64; 5] = [0, 12, 25, 40, 60];

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n["Node"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The nodes other than `src` in the order `?near=src` answers.
fn near_order(agent: &TestAgent, src: &str) -> Vec<String> {
    let v = reqwest::blocking::get(agent.url(&format!("/v1/catalog/nodes?near={src}")))
        .and_then(|r| r.json::<Value>())
        .unwrap_or(Value::Null);
    names(&v).into_iter().filter(|n| n != src).collect()
}

#[test]
fn coordinates_converge_so_that_near_orders_as_measured_rtts_do() {
    let started = Instant::now();
    let conf = tempfile::tempdir().unwrap();
    let file = conf.path().join("coord.json");
    // Consul's key; 15 s by default, 1 s here so the test is not minutes.
    std::fs::write(&file, r#"{"sync_coordinate_interval_min": "1s"}"#).unwrap();
    let file = file.display().to_string();
    let dirs: Vec<_> = (0..DELAYS.len())
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let delay = |i: usize| DELAYS[i].to_string();
    let server = TestAgent::server_with_env(
        dirs[0].path(),
        &["-config-file", &file],
        &[
            ("MERIDIAN_TEST_PING_DELAY_MS", &delay(0)),
            ("MERIDIAN_COORDINATE_UPDATE_PERIOD", "500ms"),
        ],
    );
    let join = format!("127.0.0.1:{}", server.serf_lan);
    let mut agents = vec![server];
    for (i, dir) in dirs.iter().enumerate().skip(1) {
        agents.push(TestAgent::client_with_env(
            dir.path(),
            &join,
            &["-config-file", &file],
            &[("MERIDIAN_TEST_PING_DELAY_MS", &delay(i))],
        ));
    }
    let node = |i: usize| agents[i].node.clone();
    // The truth: from agent s, agent j is d(s) + d(j) away; sorted by
    // that, the others are in order of their own delays.
    let expected = |s: usize| -> Vec<String> {
        let mut others: Vec<usize> = (0..DELAYS.len()).filter(|j| *j != s).collect();
        others.sort_by_key(|j| DELAYS[*j]);
        others.into_iter().map(node).collect()
    };

    wait_for("every agent's coordinate in the catalog", 60, || {
        names(&agents[0].get_json("/v1/coordinate/nodes")).len() == DELAYS.len()
    });
    eprintln!("all coordinates stored after {:?}", started.elapsed());
    // Converged once the nearest-first order from every agent is the
    // measured one, asked of a client agent (which forwards to the
    // server, where the coordinates are).
    let mut last = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let orders: Vec<(usize, Vec<String>)> = (0..DELAYS.len())
            .map(|s| (s, near_order(&agents[1], &node(s))))
            .collect();
        if orders.iter().all(|(s, o)| *o == expected(*s)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "?near= never ordered as the round trips do; last orders {orders:?}"
        );
        last = orders;
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "?near= orders as measured after {:?} (previous round: {last:?})",
        started.elapsed()
    );

    // `_agent` is the agent asked.
    let from_far = reqwest::blocking::get(agents[4].url("/v1/catalog/nodes?near=_agent"))
        .unwrap()
        .json::<Value>()
        .unwrap();
    let from_far: Vec<String> = names(&from_far)
        .into_iter()
        .filter(|n| *n != node(4))
        .collect();
    assert_eq!(from_far, expected(4));

    // `meridian rtt`: the estimate between the two farthest agents is of
    // the order of their measured round trip (d0 + d4 = 60 ms).
    let out = agents[1].cli(&["rtt", &node(0), &node(4)]);
    let line = stdout(&out);
    assert!(
        line.starts_with(&format!("Estimated {} <-> {} rtt: ", node(0), node(4)))
            && line.trim_end().ends_with(" ms (using LAN coordinates)"),
        "{line:?} {}",
        common::stderr(&out)
    );
    let ms: f64 = line
        .split("rtt: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no figure in {line:?}"));
    assert!((30.0..120.0).contains(&ms), "estimated {ms} ms for ~60 ms");
    // Without a second node, the agent's own is the other end.
    let own = stdout(&agents[4].cli(&["rtt", &node(0)]));
    assert!(
        own.starts_with(&format!("Estimated {} <-> {} rtt: ", node(0), node(4))),
        "{own:?}"
    );
    eprintln!("test took {:?}", started.elapsed());
}
