//! ACLs across two datacenters, as built binaries: dc1 is the primary,
//! dc2 replicates its policies, roles and global tokens over the WAN, its
//! own `Local` tokens stay in it, ACL writes made in dc2 go to dc1, and
//! dc2 keeps deciding once dc1's server is gone. One server each, on
//! ports the agents pick themselves. Durations are printed.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const WITHIN: u64 = 30;

fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, String) {
    let client = reqwest::blocking::Client::new();
    let mut req = match method {
        "GET" => client.get(url),
        "PUT" => client.put(url),
        "DELETE" => client.delete(url),
        other => panic!("method {other}"),
    }
    .timeout(Duration::from_secs(30));
    if let Some(t) = token {
        req = req.header("X-Consul-Token", t);
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let r = req.send().expect("an answer");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

/// A 200 answer's JSON, or a panic naming the request.
fn ok(what: &str, (code, body): (u16, String)) -> Value {
    assert_eq!(code, 200, "{what}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"))
}

fn write_config(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("config file");
    path.display().to_string()
}

fn kv_put(agent: &TestAgent, key: &str, token: Option<&str>) -> (u16, String) {
    call(
        "PUT",
        &agent.url(&format!("/v1/kv/{key}")),
        token,
        Some(json!("v")),
    )
}

fn kv_get(agent: &TestAgent, key: &str, token: Option<&str>) -> (u16, String) {
    call("GET", &agent.url(&format!("/v1/kv/{key}")), token, None)
}

#[test]
fn a_secondary_follows_the_primarys_acls_keeps_its_local_tokens_and_decides_alone() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let acl = r#"
primary_datacenter = "dc1"
acl {
  enabled = true
  default_policy = "deny"
  enable_token_replication = true
"#;
    let dc1_config = write_config(dirs[2].path(), "dc1.hcl", &format!("{acl}}}\n"));
    let mut dc1 = TestAgent::acl_server_with(
        dirs[0].path(),
        &["-datacenter", "dc1", "-config-file", &dc1_config],
    );

    // dc1: bootstrap, then a token that may replicate ACLs.
    let boot = ok(
        "bootstrap",
        call("PUT", &dc1.url("/v1/acl/bootstrap"), None, None),
    );
    let root = boot["SecretID"].as_str().unwrap().to_string();
    let root = Some(root.as_str());
    let policy = |name: &str, rules: &str| json!({"Name": name, "Rules": rules});
    ok(
        "replication policy",
        call(
            "PUT",
            &dc1.url("/v1/acl/policy"),
            root,
            Some(policy("replication", "acl = \"write\"")),
        ),
    );
    let repl = ok(
        "replication token",
        call(
            "PUT",
            &dc1.url("/v1/acl/token"),
            root,
            Some(json!({"Policies": [{"Name": "replication"}]})),
        ),
    );
    let repl_secret = repl["SecretID"].as_str().unwrap();

    let dc2_config = write_config(
        dirs[2].path(),
        "dc2.hcl",
        &format!("{acl}  tokens {{ replication = \"{repl_secret}\" }}\n}}\n"),
    );
    let wan = format!("127.0.0.1:{}", dc1.serf_wan);
    let dc2 = TestAgent::acl_server_with(
        dirs[1].path(),
        &[
            "-datacenter",
            "dc2",
            "-config-file",
            &dc2_config,
            "-retry-join-wan",
            &wan,
            "-retry-interval-wan",
            "1s",
            // Its rounds are counted below.
            "-log-level",
            "debug",
        ],
    );
    let started = Instant::now();
    wait_for("dc2 replicates the bootstrap token", WITHIN, || {
        kv_get(&dc2, "app/none", root).0 == 404
    });
    eprintln!(
        "dc2 start to the management token working there: {:?}",
        started.elapsed()
    );

    // A policy and a token made in dc1 take effect in dc2.
    let app_secret = "6a0d4a3e-2b7c-4d1e-9f3a-111111111111";
    let (code, body) = kv_put(&dc2, "app/x", Some(app_secret));
    assert_eq!(
        (code, body.as_str()),
        (403, "ACL not found"),
        "not made yet"
    );
    let app_policy = ok(
        "app policy",
        call(
            "PUT",
            &dc1.url("/v1/acl/policy"),
            root,
            Some(policy("app", "key_prefix \"app/\" { policy = \"write\" }")),
        ),
    );
    ok(
        "app token",
        call(
            "PUT",
            &dc1.url("/v1/acl/token"),
            root,
            Some(json!({"SecretID": app_secret, "Policies": [{"Name": "app"}]})),
        ),
    );
    let t = Instant::now();
    wait_for("dc1's token works in dc2", WITHIN, || {
        kv_put(&dc2, "app/x", Some(app_secret)).0 == 200
    });
    eprintln!(
        "token made in dc1 to a write allowed in dc2: {:?}",
        t.elapsed()
    );
    let (code, body) = kv_put(&dc2, "other/x", Some(app_secret));
    assert_eq!(code, 403, "{body}");
    assert!(body.starts_with("Permission denied"), "{body}");

    // Changing the policy in dc1 changes the decision in dc2.
    let id = app_policy["ID"].as_str().unwrap();
    ok(
        "app policy update",
        call(
            "PUT",
            &dc1.url(&format!("/v1/acl/policy/{id}")),
            root,
            Some(policy("app", "key_prefix \"app/\" { policy = \"read\" }")),
        ),
    );
    let t = Instant::now();
    wait_for("dc1's policy update decides in dc2", WITHIN, || {
        kv_put(&dc2, "app/x", Some(app_secret)).0 == 403
    });
    eprintln!(
        "policy updated in dc1 to the new decision in dc2: {:?}",
        t.elapsed()
    );
    assert_eq!(kv_get(&dc2, "app/x", Some(app_secret)).0, 200);

    // An ACL write made in dc2 is the primary's: it is there at once.
    ok(
        "policy made through dc2",
        call(
            "PUT",
            &dc2.url("/v1/acl/policy"),
            root,
            Some(policy(
                "made-in-dc2",
                "node_prefix \"\" { policy = \"read\" }",
            )),
        ),
    );
    ok(
        "the primary has it",
        call(
            "GET",
            &dc1.url("/v1/acl/policy/name/made-in-dc2"),
            root,
            None,
        ),
    );
    wait_for("and it comes back to dc2", WITHIN, || {
        call(
            "GET",
            &dc2.url("/v1/acl/policy/name/made-in-dc2"),
            root,
            None,
        )
        .0 == 200
    });

    // A local token made in dc2 works there and is unknown in dc1.
    let local = ok(
        "local token",
        call(
            "PUT",
            &dc2.url("/v1/acl/token"),
            root,
            Some(json!({"Local": true, "Policies": [{"Name": "app"}]})),
        ),
    );
    let local_secret = local["SecretID"].as_str().unwrap();
    let local_accessor = local["AccessorID"].as_str().unwrap();
    assert_eq!(local["Local"], true);
    assert_eq!(kv_get(&dc2, "app/x", Some(local_secret)).0, 200);
    let (code, body) = kv_get(&dc1, "app/x", Some(local_secret));
    assert_eq!((code, body.as_str()), (403, "ACL not found"));
    let path = format!("/v1/acl/token/{local_accessor}");
    assert_eq!(call("GET", &dc1.url(&path), root, None).0, 404);
    // Nothing changes in dc1 for a while: dc2's rounds wait in dc1's
    // blocking queries rather than poll, and leave the local token be.
    let rounds = |a: &TestAgent| a.log_text().matches("ACL replication round").count();
    let before = rounds(&dc2);
    std::thread::sleep(Duration::from_secs(3));
    let idle = rounds(&dc2) - before;
    eprintln!("dc2's replication rounds in 3 idle seconds: {idle}");
    assert!(idle <= 3, "{idle} rounds: polling, not blocking");
    ok("still in dc2", call("GET", &dc2.url(&path), root, None));

    // Updating a global token through dc2 updates the primary's; deleting
    // the local one deletes it in dc2.
    let app = ok(
        "app token by secret",
        call(
            "GET",
            &dc1.url("/v1/acl/token/self"),
            Some(app_secret),
            None,
        ),
    );
    let app_path = format!("/v1/acl/token/{}", app["AccessorID"].as_str().unwrap());
    let renamed = json!({"Description": "renamed in dc2", "Policies": [{"Name": "app"}]});
    ok(
        "update through dc2",
        call("PUT", &dc2.url(&app_path), root, Some(renamed)),
    );
    let in_dc1 = ok("dc1's copy", call("GET", &dc1.url(&app_path), root, None));
    assert_eq!(in_dc1["Description"], "renamed in dc2");
    let spare = ok(
        "a second local token",
        call(
            "PUT",
            &dc2.url("/v1/acl/token"),
            root,
            Some(json!({"Local": true})),
        ),
    );
    let spare_path = format!("/v1/acl/token/{}", spare["AccessorID"].as_str().unwrap());
    ok(
        "local delete",
        call("DELETE", &dc2.url(&spare_path), root, None),
    );
    assert_eq!(call("GET", &dc2.url(&spare_path), root, None).0, 404);

    // dc2 reports what it replicated; the primary does not replicate.
    let status = ok(
        "dc2 replication status",
        call("GET", &dc2.url("/v1/acl/replication"), None, None),
    );
    eprintln!("dc2 /v1/acl/replication: {status}");
    assert_eq!(status["Enabled"], true);
    assert_eq!(status["Running"], true);
    assert_eq!(status["SourceDatacenter"], "dc1");
    assert_eq!(status["ReplicationType"], "tokens");
    assert!(status["ReplicatedIndex"].as_u64().unwrap() > 0);
    assert!(status["ReplicatedTokenIndex"].as_u64().unwrap() > 0);
    assert_ne!(status["LastSuccess"], "0001-01-01T00:00:00Z");
    let primary = ok(
        "dc1 replication status",
        call("GET", &dc1.url("/v1/acl/replication"), None, None),
    );
    assert_eq!(primary["Enabled"], false);
    let from_dc1 = ok(
        "dc2's status asked in dc1",
        call("GET", &dc1.url("/v1/acl/replication?dc=dc2"), None, None),
    );
    assert_eq!(from_dc1["SourceDatacenter"], "dc1");

    // Without the primary, dc2 decides from what it replicated.
    dc1.kill();
    assert_eq!(kv_get(&dc2, "app/x", Some(app_secret)).0, 200);
    let (code, body) = kv_put(&dc2, "app/x", Some(app_secret));
    assert_eq!(code, 403, "{body}");
    assert!(body.starts_with("Permission denied"), "{body}");
    assert_eq!(
        kv_put(&dc2, "app/y", root).0,
        200,
        "management still manages"
    );
    assert_eq!(kv_get(&dc2, "app/x", Some(local_secret)).0, 200);
    let (code, body) = kv_get(&dc2, "app/x", None);
    assert_eq!(code, 403, "anonymous: {body}");
    let (code, body) = kv_get(&dc2, "app/x", Some("00000000-dead-beef-0000-000000000000"));
    assert_eq!((code, body.as_str()), (403, "ACL not found"));

    // What dc2 replicated is in its Raft state: a restart, with dc1 still
    // gone, decides the same.
    let mut dc2 = dc2;
    dc2.restart();
    assert_eq!(kv_get(&dc2, "app/x", Some(app_secret)).0, 200);
    assert_eq!(kv_put(&dc2, "app/x", Some(app_secret)).0, 403);
    assert_eq!(kv_get(&dc2, "app/x", Some(local_secret)).0, 200);
    assert_eq!(kv_get(&dc2, "app/x", None).0, 403);
    wait_for("dc2 reports the primary unreachable", WITHIN, || {
        let s = ok(
            "status",
            call("GET", &dc2.url("/v1/acl/replication"), None, None),
        );
        s["LastErrorMessage"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
            && s["Running"] == true
    });
}

/// Without `enable_token_replication` (Consul's default) a secondary
/// resolves the primary's tokens in the primary, as Consul's do: a global
/// token made in dc1 decides in dc2 with its policies, a token local to
/// dc1 is not found in dc2, and once dc1 is gone dc2 keeps the tokens it
/// resolved (`down_policy = "extend-cache"`, past their TTL).
#[test]
fn a_secondary_without_token_replication_asks_the_primary_for_its_tokens() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let acl = "primary_datacenter = \"dc1\"\nacl {\n  enabled = true\n  default_policy = \"deny\"\n  token_ttl = \"1s\"\n}\n";
    let dc1_config = write_config(dirs[2].path(), "dc1.hcl", acl);
    let dc2_config = write_config(dirs[2].path(), "dc2.hcl", acl);
    let mut dc1 = TestAgent::acl_server_with(
        dirs[0].path(),
        &["-datacenter", "dc1", "-config-file", &dc1_config],
    );
    let boot = ok(
        "bootstrap",
        call("PUT", &dc1.url("/v1/acl/bootstrap"), None, None),
    );
    let root = Some(boot["SecretID"].as_str().unwrap().to_string());
    let root = root.as_deref();
    ok(
        "app policy",
        call(
            "PUT",
            &dc1.url("/v1/acl/policy"),
            root,
            Some(json!({"Name": "app", "Rules": "key_prefix \"app/\" { policy = \"write\" }"})),
        ),
    );
    let token = |local: bool| {
        let t = ok(
            "app token",
            call(
                "PUT",
                &dc1.url("/v1/acl/token"),
                root,
                Some(json!({"Policies": [{"Name": "app"}], "Local": local})),
            ),
        );
        t["SecretID"].as_str().unwrap().to_string()
    };
    let (global, local) = (token(false), token(true));

    let wan = format!("127.0.0.1:{}", dc1.serf_wan);
    let dc2 = TestAgent::acl_server_with(
        dirs[1].path(),
        &[
            "-datacenter",
            "dc2",
            "-config-file",
            &dc2_config,
            "-retry-join-wan",
            &wan,
            "-retry-interval-wan",
            "1s",
        ],
    );
    let t = Instant::now();
    wait_for("dc1's global token decides in dc2", WITHIN, || {
        kv_put(&dc2, "app/x", Some(&global)).0 == 200
    });
    eprintln!("dc2 start to dc1's token working there: {:?}", t.elapsed());
    let (code, body) = kv_put(&dc2, "db/x", Some(&global));
    assert_eq!(code, 403, "{body}");
    assert!(body.starts_with("Permission denied"), "{body}");
    assert_eq!(
        kv_put(&dc2, "app/x", Some(&local)),
        (403, "ACL not found".to_string()),
        "a token local to dc1 is not valid in dc2"
    );
    assert_eq!(
        kv_put(&dc1, "app/x", Some(&local)).0,
        200,
        "but it is in dc1"
    );
    assert_eq!(
        kv_put(&dc2, "app/x", Some("a0a0a0a0-0000-4000-8000-000000000000")),
        (403, "ACL not found".to_string())
    );

    // dc1 gone: past the TTL, the token dc2 resolved still decides.
    dc1.kill();
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    assert_eq!(kv_put(&dc2, "app/y", Some(&global)).0, 200);
    eprintln!("a write in dc2 with dc1 down: {:?}", t.elapsed());
    let (code, body) = kv_put(&dc2, "db/y", Some(&global));
    assert_eq!(code, 403, "{body}");
}
