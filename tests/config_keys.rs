//! The config keys Meridian takes without acting on them, and those it
//! refuses: README.md lists exactly the keys the code does, and each key
//! of either list behaves as listed when `meridian validate`'s builder
//! reads it (a warning naming it, or `not supported by Meridian`).

mod common;

use std::collections::BTreeSet;

use meridian::config::builder::{IGNORED_KEYS, REFUSED_KEYS};
use meridian::config::validate_paths;
use serde_json::{json, Value};

/// The backquoted keys of the README's list that starts after `heading`
/// (a `- ` item each), up to the next heading.
fn readme_list(heading: &str) -> BTreeSet<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md is readable");
    let start = readme
        .lines()
        .position(|l| l.trim() == heading)
        .unwrap_or_else(|| panic!("README.md has no {heading:?}"));
    readme
        .lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_lists_exactly_the_ignored_and_refused_keys() {
    let ignored: BTreeSet<String> = IGNORED_KEYS.iter().map(|k| k.to_string()).collect();
    let refused: BTreeSet<String> = REFUSED_KEYS.iter().map(|k| k.to_string()).collect();
    let in_readme = readme_list("## Config keys Meridian accepts without acting on them");
    assert_eq!(
        in_readme.difference(&ignored).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in README.md, not in the code"
    );
    assert_eq!(
        ignored.difference(&in_readme).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in the code, not in README.md"
    );
    assert_eq!(readme_list("### Refused keys"), refused);
    assert_eq!(
        ignored.intersection(&refused).count(),
        0,
        "a key is in both lists"
    );
}

/// A config file holding `path` (`a.b` nested) set to `v`. Service and
/// check keys go into a definition that is valid without them.
fn file_with(path: &str, v: Value) -> Value {
    match path.split_once('.') {
        Some(("service", k)) => json!({"service": {"name": "web", k: v}}),
        Some(("check", k)) => json!({"check": {"name": "c", "ttl": "10s", k: v}}),
        Some((block, k)) => json!({block: {k: v}}),
        None => json!({path: v}),
    }
}

/// A value of the type the builder checks for `path` (most ignored keys
/// are only checked to be there).
fn sample(path: &str) -> Value {
    match path {
        p if p.starts_with("ports.") => json!(9000),
        p if p.starts_with("addresses.") => json!("127.0.0.1"),
        "limits.rpc_rate" | "limits.rpc_max_burst" | "performance.raft_multiplier" => json!(5),
        "limits.rpc_client_timeout" | "performance.leave_drain_time" => json!("5s"),
        "limits.request_limits" => json!({"mode": "disabled"}),
        _ => json!("x"),
    }
}

fn validate(name: &str, tree: &Value) -> Result<Vec<String>, String> {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join(name);
    std::fs::write(&f, tree.to_string()).unwrap();
    validate_paths(&[f])
        .map(|cfg| cfg.warnings)
        .map_err(|e| e.to_string())
}

#[test]
fn every_ignored_key_is_accepted_and_named_in_one_warning() {
    for key in IGNORED_KEYS {
        let tree = if *key == "tls.grpc" {
            json!({"tls": {"grpc": {"verify_incoming": false}}})
        } else {
            file_with(key, sample(key))
        };
        let warnings = validate("k.json", &tree).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(warnings.len(), 1, "{key}: {warnings:?}");
        assert!(
            warnings[0].contains("have no effect in Meridian") && warnings[0].contains(key),
            "{key}: {warnings:?}"
        );
    }
}

#[test]
fn every_refused_key_stops_the_build_unless_it_asks_for_nothing() {
    for key in REFUSED_KEYS {
        let e = validate("r.json", &file_with(key, json!("on"))).unwrap_err();
        assert!(
            e.ends_with(": not supported by Meridian")
                && e.contains(key.rsplit('.').next().unwrap()),
            "{key}: {e}"
        );
        assert!(e.starts_with("Error parsing "), "{key}: {e}");
        // Turned off, it asks for what Meridian does anyway.
        validate("r.json", &file_with(key, json!(false)))
            .unwrap_or_else(|e| panic!("{key} = false: {e}"));
    }
}

use common::{TestAgent, BIN};

/// `limits.txn_max_req_len` bounds a `/v1/txn` body, apart from
/// `kv_max_value_size`.
#[test]
fn txn_bodies_are_bounded_by_txn_max_req_len() {
    let d = tempfile::tempdir().unwrap();
    let conf = d.path().join("l.json");
    std::fs::write(&conf, r#"{"limits": {"txn_max_req_len": 1024}}"#).unwrap();
    let a = TestAgent::dev(&["-config-file", conf.to_str().unwrap()]);
    let put = |value: &str| {
        let body = json!([{"KV": {"Verb": "set", "Key": "k", "Value": value}}]);
        reqwest::blocking::Client::new()
            .put(a.url("/v1/txn"))
            .body(body.to_string())
            .send()
            .unwrap()
    };
    assert_eq!(put("c21hbGw=").status(), 200);
    let big = put(&"A".repeat(2000));
    assert_eq!(big.status(), 413);
}

#[test]
fn validate_prints_the_ignored_keys_and_fails_on_a_refused_one() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("a.hcl");
    std::fs::write(
        &f,
        "telemetry {\n  disable_hostname = true\n  enable_host_metrics = true\n}\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["validate", f.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "a.hcl: these keys are accepted but have no effect in Meridian: telemetry.enable_host_metrics"
        ),
        "{err}"
    );
    std::fs::write(&f, "auto_encrypt { tls = true }\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["validate", f.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "Error parsing {}: auto_encrypt: not supported by Meridian",
            f.display()
        )),
        "{err}"
    );
}

/// `ports.http = -1` binds no HTTP listener, `addresses.dns` moves DNS
/// alone off `client_addr`, and `pid_file` holds the PID while the agent
/// runs and is gone after it stops.
#[test]
fn agent_without_http_on_its_own_dns_address_with_a_pid_file() {
    let d = tempfile::tempdir().unwrap();
    let pid_file = d.path().join("agent.pid");
    let conf = d.path().join("a.hcl");
    std::fs::write(
        &conf,
        format!(
            "ports {{\n  http = -1\n  dns = 0\n  server = 0\n  serf_lan = 0\n  serf_wan = 0\n}}\naddresses {{ dns = \"127.0.0.3\" }}\npid_file = \"{}\"\n",
            pid_file.display()
        ),
    )
    .unwrap();
    let log = d.path().join("agent.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = std::process::Command::new(BIN)
        .args(["agent", "-dev", "-node", "no-http", "-config-file"])
        .arg(&conf)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("agent listening")) {
            break strip_ansi(l);
        }
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("no listening line:\n{text}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // Written once the start is done, just after that line.
    while !pid_file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid_text = std::fs::read_to_string(&pid_file);
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(!line.contains("http="), "{line}");
    assert!(line.contains("dns=127.0.0.3:"), "{line}");
    assert_eq!(pid_text.unwrap(), child.id().to_string());
    assert!(status.success(), "{status}");
    assert!(!pid_file.exists(), "the PID file outlived the agent");
}

/// The agent logs with colours even to a file: drop the escape sequences
/// (ESC [ parameters, then a final byte in @..~).
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
