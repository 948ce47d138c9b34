//! CLI commands with the built binary against a dev agent.

mod common;

use common::*;

#[test]
fn kv_commands_round_trip() {
    let a = TestAgent::dev(&[]);
    let out = a.cli(&["kv", "put", "app/name", "meridian"]);
    assert_eq!(stdout(&out), "Success! Data written to: app/name\n");
    assert_eq!(stdout(&a.cli(&["kv", "get", "app/name"])), "meridian\n");
    let detailed = stdout(&a.cli(&["kv", "get", "-detailed", "app/name"]));
    assert!(
        detailed.contains("Key              app/name")
            && detailed.contains("Value            meridian"),
        "{detailed}"
    );
    let modify: u64 = detailed
        .lines()
        .find(|l| l.starts_with("ModifyIndex"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();

    // CAS: a stale index fails with Consul's message and exit 1.
    let out = a.cli(&[
        "kv",
        "put",
        "-cas",
        &format!("-modify-index={}", modify + 100),
        "app/name",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Error! Did not write to app/name: CAS failed"));
    let out = a.cli(&[
        "kv",
        "put",
        "-cas",
        "-modify-index",
        &modify.to_string(),
        "app/name",
        "y",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Values from stdin and from a file; flags.
    a.cli_stdin(
        &["kv", "put", "-flags=7", "app/stdin", "-"],
        Some(b"from stdin"),
    );
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), "from file").unwrap();
    a.cli(&["kv", "put", "app/file", &format!("@{}", f.path().display())]);
    let rec = stdout(&a.cli(&["kv", "get", "-recurse", "app/"]));
    assert_eq!(
        rec,
        "app/file:from file\napp/name:y\napp/stdin:from stdin\n"
    );
    assert_eq!(
        stdout(&a.cli(&["kv", "get", "-keys", "app/"])),
        "app/file\napp/name\napp/stdin\n"
    );

    // Export, import under another prefix, compare.
    let export = a.cli(&["kv", "export", "app/"]);
    assert!(export.status.success());
    let imp = a.cli_stdin(
        &["kv", "import", "-prefix=copy/", "-"],
        Some(&export.stdout),
    );
    assert!(
        stdout(&imp).contains("Imported: copy/app/stdin"),
        "{}",
        stderr(&imp)
    );
    let got: serde_json::Value = reqwest::blocking::get(a.url("/v1/kv/copy/app/stdin"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(got[0]["Flags"], 7);

    let out = a.cli(&["kv", "delete", "-recurse", "app/"]);
    assert_eq!(stdout(&out), "Success! Deleted keys with prefix: app/\n");
    let out = a.cli(&["kv", "get", "app/name"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "Error! No key exists at: app/name\n");
}

#[test]
fn members_catalog_info_and_validate() {
    let a = TestAgent::dev(&[]);
    let members = stdout(&a.cli(&["members"]));
    let lines: Vec<&str> = members.lines().collect();
    assert!(
        lines[0].starts_with("Node")
            && lines[0].contains("Address")
            && lines[0].contains("Protocol  DC"),
        "{members}"
    );
    assert!(
        lines[1].starts_with(&a.node) && lines[1].contains("alive") && lines[1].contains("server"),
        "{members}"
    );
    let nodes = stdout(&a.cli(&["catalog", "nodes"]));
    assert!(
        nodes.lines().nth(1).is_some_and(|l| l.starts_with(&a.node)),
        "{nodes}"
    );
    assert_eq!(stdout(&a.cli(&["catalog", "services"])), "consul\n");
    assert_eq!(stdout(&a.cli(&["catalog", "datacenters"])), "dc1\n");
    let peers = stdout(&a.cli(&["operator", "raft", "list-peers"]));
    let lines: Vec<&str> = peers.lines().collect();
    assert!(
        lines[0].starts_with("Node") && lines[0].ends_with("Trails Leader By"),
        "{peers}"
    );
    assert!(
        lines[1].starts_with(&a.node) && lines[1].contains("leader") && lines[1].contains("true"),
        "{peers}"
    );
    let info = stdout(&a.cli(&["info"]));
    assert!(
        info.contains("raft:\n") && info.contains("\tstate = Leader"),
        "{info}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.hcl"), "datacenter = \"east\"\n").unwrap();
    let out = a.cli(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(
        (out.status.code(), stdout(&out)),
        (Some(0), "Configuration is valid!\n".to_string())
    );
    std::fs::write(
        dir.path().join("zz.json"),
        r#"{"bootstrap_expect": "three"}"#,
    )
    .unwrap();
    let out = a.cli(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bootstrap_expect"),
        "{}",
        stderr(&out)
    );

    let out = std::process::Command::new(BIN)
        .args(["members"])
        .env("MERIDIAN_HTTP_ADDR", "127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Error querying agent"),
        "{}",
        stderr(&out)
    );
}
