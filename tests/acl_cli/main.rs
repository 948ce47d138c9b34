//! `meridian acl ...` and the token flags of every command, with the built
//! binary against a server started with `acl { enabled = true
//! default_policy = "deny" }` on ports it picks itself.

#[path = "../common/mod.rs"]
mod common;
mod support;

use common::*;
use support::*;

#[test]
fn acl_commands_manage_tokens_that_every_command_sends() {
    let dir = tempfile::tempdir().unwrap();
    let a = acl_server(&dir);
    let http = a.http.clone();
    let run = |args: &[&str]| cli_env(&http, args, &[], None);

    // Bootstrap: Consul's layout, the management policy linked.
    let boot = ok(run(&["acl", "bootstrap"]));
    let mgmt = field(&boot, "SecretID");
    // `meridian acl ARGS -token MGMT`, which must succeed: its stdout.
    let mgmt_acl = |args: &[&str]| ok(run(&with(&mgmt, &[&["acl"][..], args].concat())));
    assert!(
        boot.contains("Description:      Bootstrap Token (Global Management)\n")
            && boot.contains("Local:            false\n")
            && boot.contains(
                "Policies:\n   00000000-0000-0000-0000-000000000001 - global-management\n"
            ),
        "{boot}"
    );
    let again = run(&["acl", "bootstrap"]);
    fails_saying(&again, "ACL bootstrap no longer allowed");

    // A policy from a rules file, read back by name as JSON.
    let rules = dir.path().join("rules.hcl");
    std::fs::write(
        &rules,
        "key_prefix \"\" { policy = \"write\" }\nkey_prefix \"secret/\" { policy = \"deny\" }\n",
    )
    .unwrap();
    let p = mgmt_acl(&[
        "policy",
        "create",
        "-name",
        "kv-writer",
        "-description",
        "apps",
        "-rules",
        &format!("@{}", rules.display()),
    ]);
    let policy_id = field(&p, "ID");
    assert!(
        p.contains("Name:         kv-writer\n") && p.contains("Rules:\nkey_prefix \"\""),
        "{p}"
    );
    let listed = mgmt_acl(&["policy", "list"]);
    assert!(
        listed.contains(&format!(
            "kv-writer:\n   ID:           {policy_id}\n   Description:  apps\n"
        )),
        "{listed}"
    );
    let text = mgmt_acl(&["policy", "read", "-name", "kv-writer", "-format", "json"]);
    // The API's JSON in the API's field order, indented as Consul's CLI does.
    assert!(text.starts_with("{\n    \"ID\": "), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["ID"], policy_id.as_str());
    assert!(
        json["Rules"].as_str().unwrap().contains("secret/"),
        "{json}"
    );

    // A token with that policy; read by a unique prefix of its accessor.
    let t = mgmt_acl(&[
        "token",
        "create",
        "-description",
        "app token",
        "-policy-name",
        "kv-writer",
    ]);
    let (app, app_accessor) = (field(&t, "SecretID"), field(&t, "AccessorID"));
    let read = mgmt_acl(&["token", "read", "-id", &app_accessor[..8]]);
    assert_eq!(field(&read, "AccessorID"), app_accessor);
    assert!(
        read.contains(&format!("Policies:\n   {policy_id} - kv-writer\n")),
        "{read}"
    );
    let own = ok(run(&["acl", "token", "read", "-self", "-token", &app]));
    assert_eq!(field(&own, "Description"), "app token");
    let all = mgmt_acl(&["token", "list"]);
    assert!(
        all.contains(&format!("AccessorID:       {app_accessor}\n")),
        "{all}"
    );

    // kv with the token, without one, and with it from each variable.
    ok(run(&["kv", "put", "-token", &app, "app/x", "1"]));
    let denied = run(&["kv", "put", "app/x", "2"]);
    fails_saying(
        &denied,
        "Permission denied: anonymous token lacks permission 'key:write' on \"app/x\"",
    );
    let token_file = dir.path().join("app.token");
    std::fs::write(&token_file, format!("{app}\n")).unwrap();
    let tf = token_file.display().to_string();
    for (var, value) in [
        ("CONSUL_HTTP_TOKEN_FILE", tf.as_str()),
        ("MERIDIAN_HTTP_TOKEN_FILE", tf.as_str()),
        ("CONSUL_HTTP_TOKEN", app.as_str()),
        ("MERIDIAN_HTTP_TOKEN", app.as_str()),
    ] {
        ok(cli_env(
            &http,
            &["kv", "put", "app/env", var],
            &[(var, value)],
            None,
        ));
    }
    ok(run(&["kv", "put", "-token-file", &tf, "app/y", "1"]));
    // The flag beats the environment: a bad variable does not matter.
    ok(cli_env(
        &http,
        &["kv", "get", "-token", &app, "app/y"],
        &[("CONSUL_HTTP_TOKEN", "not-a-token")],
        None,
    ));
    let missing = run(&[
        "kv",
        "get",
        "-token-file",
        "/nonexistent/meridian.token",
        "app/y",
    ]);
    fails_saying(
        &missing,
        "Error loading token file /nonexistent/meridian.token",
    );

    // The load generator sends the token too.
    let bench = |token: Option<&str>| {
        let mut args = vec![
            "bench",
            "-workload",
            "kv-put",
            "-duration",
            "1s",
            "-c",
            "2",
            "-keys",
            "10",
            "-quiet",
            "-addr",
            &http,
        ];
        if let Some(t) = token {
            args.extend(["-token", t]);
        }
        run(&args)
    };
    let b = bench(Some(&app));
    assert!(b.status.success(), "{}{}", stdout(&b), stderr(&b));
    assert_eq!(bench(None).status.code(), Some(1));

    // explain: the 403's very words, the exit code, the default policy.
    let refused = run(&["kv", "put", "-token", &app, "secret/x", "1"]);
    let body = stderr(&refused);
    let explain = |name: &str, access: &str, extra: &[&str]| {
        let mut args = vec![
            "acl",
            "explain",
            "-token",
            &app,
            "-resource",
            "key",
            "-name",
            name,
            "-access",
            access,
            "-reader-token",
            &mgmt,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let no = explain("secret/x", "write", &["-default-policy", "deny"]);
    assert_eq!(no.status.code(), Some(2), "{}", stderr(&no));
    let why = stdout(&no);
    assert_eq!(
        why.trim(),
        format!(
            "Permission denied: token with AccessorID '{app_accessor}' lacks permission \
             'key:write' on \"secret/x\", denied by rule key_prefix \"secret/\" policy \"deny\" \
             in policy \"kv-writer\""
        )
    );
    assert!(body.contains(why.trim()), "explain: {why}\n403: {body}");
    let yes = explain("app/z", "write", &["-default-policy", "deny"]);
    assert_eq!(yes.status.code(), Some(0), "{}", stderr(&yes));
    assert!(
        stdout(&yes).ends_with(
            "'key:write' on \"app/z\", allowed by rule key_prefix \"\" policy \"write\" in policy \"kv-writer\"\n"
        ),
        "{}",
        stdout(&yes)
    );
    let svc = ok(run(&[
        "acl",
        "explain",
        "-token",
        &mgmt,
        "-resource",
        "operator",
        "-access",
        "write",
        "-default-policy",
        "deny",
    ]));
    assert!(svc.contains("has permission 'operator:write'"), "{svc}");
    // Without -default-policy the agent's header decides; an agent that
    // does not send it gets a clear error rather than a guess.
    let header = reqwest::blocking::Client::new()
        .get(a.url("/v1/acl/token/self"))
        .header("X-Consul-Token", &app)
        .send()
        .unwrap()
        .headers()
        .get("X-Consul-Default-ACL-Policy")
        .map(|v| v.to_str().unwrap().to_string());
    let by_agent = explain("other/x", "read", &[]);
    match header {
        Some(_) => {
            assert_eq!(by_agent.status.code(), Some(0), "{}", stderr(&by_agent));
        }
        None => {
            fails_saying(&by_agent, "-default-policy");
        }
    }
    // The operator's own token in the environment reads the policies of
    // the token explained with -token.
    let env_reader = cli_env(
        &http,
        &[
            "acl",
            "explain",
            "-token",
            &app,
            "-resource",
            "key",
            "-name",
            "secret/x",
            "-access",
            "write",
            "-default-policy",
            "deny",
        ],
        &[("CONSUL_HTTP_TOKEN", &mgmt)],
        None,
    );
    assert_eq!(env_reader.status.code(), Some(2), "{}", stderr(&env_reader));
    assert_eq!(stdout(&env_reader), why);
    let bad = run(&[
        "acl",
        "explain",
        "-token",
        &app,
        "-resource",
        "kv",
        "-access",
        "read",
    ]);
    fails_saying(&bad, "Invalid -resource \"kv\"");

    // Roles: a token through a role, with a service identity.
    let r = mgmt_acl(&[
        "role",
        "create",
        "-name",
        "web-role",
        "-policy-name",
        "kv-writer",
        "-service-identity",
        "web:dc1",
    ]);
    assert!(
        r.contains(&format!("Policies:\n   {policy_id} - kv-writer\n"))
            && r.contains("Service Identities:\n   web (Datacenters: dc1)\n"),
        "{r}"
    );
    let rt = mgmt_acl(&["token", "create", "-role-name", "web-role"]);
    let role_token = field(&rt, "SecretID");
    ok(run(&["kv", "put", "-token", &role_token, "role/x", "1"]));
    let roles = mgmt_acl(&["role", "list"]);
    assert!(roles.starts_with("web-role:\n"), "{roles}");

    // Updates merge or replace as Consul's do; a policy renamed by ID.
    let extra = mgmt_acl(&[
        "policy",
        "create",
        "-name",
        "extra",
        "-rules",
        "operator = \"read\"",
    ]);
    let extra_id = field(&extra, "ID");
    let appended = mgmt_acl(&[
        "token",
        "update",
        "-id",
        &app_accessor,
        "-append-policy-name",
        "extra",
    ]);
    assert!(
        appended.contains(&format!(
            "Policies:\n   {policy_id} - kv-writer\n   {extra_id} - extra\n"
        )),
        "{appended}"
    );
    let replaced = mgmt_acl(&[
        "token",
        "update",
        "-id",
        &app_accessor,
        "-policy-id",
        &extra_id[..8],
    ]);
    assert!(
        replaced.contains(&format!("Policies:\n   {extra_id} - extra\n"))
            && !replaced.contains("kv-writer"),
        "{replaced}"
    );
    mgmt_acl(&[
        "token",
        "update",
        "-id",
        &app_accessor,
        "-policy-name",
        "kv-writer",
    ]);
    let renamed = mgmt_acl(&["policy", "update", "-id", &extra_id, "-name", "extra2"]);
    assert!(
        renamed.contains("Name:         extra2\n")
            && renamed.contains("Rules:\noperator = \"read\""),
        "{renamed}"
    );
    let merged = mgmt_acl(&[
        "role",
        "update",
        "-name",
        "web-role",
        "-policy-name",
        "extra2",
    ]);
    assert!(
        merged.contains(&format!(
            "   {policy_id} - kv-writer\n   {extra_id} - extra2\n"
        )),
        "{merged}"
    );

    // Go-style booleans: `-local` and `-local=true` alike.
    for local in ["-local", "-local=true"] {
        let lt = mgmt_acl(&["token", "create", local]);
        assert_eq!(field(&lt, "Local"), "true");
    }

    // Update, clone, delete.
    let up = mgmt_acl(&[
        "token",
        "update",
        "-id",
        &app_accessor,
        "-description",
        "renamed",
    ]);
    assert_eq!(field(&up, "Description"), "renamed");
    assert!(
        up.contains(&format!("   {policy_id} - kv-writer\n")),
        "{up}"
    );
    let cl = mgmt_acl(&[
        "token",
        "clone",
        "-id",
        &app_accessor,
        "-description",
        "copy",
    ]);
    let (clone_secret, clone_accessor) = (field(&cl, "SecretID"), field(&cl, "AccessorID"));
    assert_ne!(clone_accessor, app_accessor);
    ok(run(&[
        "kv",
        "put",
        "-token",
        &clone_secret,
        "app/clone",
        "1",
    ]));
    let del = mgmt_acl(&["token", "delete", "-id", &clone_accessor]);
    assert_eq!(
        del,
        format!("Token \"{clone_accessor}\" deleted successfully\n")
    );
    let gone = run(&["kv", "put", "-token", &clone_secret, "app/clone", "2"]);
    assert!(stderr(&gone).contains("ACL not found"), "{}", stderr(&gone));

    let read_only = "key_prefix \"\" { policy = \"read\" }";
    let pu = ok(cli_env(
        &http,
        &with(
            &mgmt,
            &[
                "acl",
                "policy",
                "update",
                "-name",
                "kv-writer",
                "-rules",
                "-",
            ],
        ),
        &[],
        Some(read_only.as_bytes()),
    ));
    assert!(pu.contains(&format!("Rules:\n{read_only}")), "{pu}");
    let now_denied = run(&["kv", "put", "-token", &app, "app/x", "3"]);
    assert!(
        stderr(&now_denied).contains("lacks permission 'key:write' on \"app/x\""),
        "{}",
        stderr(&now_denied)
    );
    mgmt_acl(&["role", "delete", "-name", "web-role"]);
    mgmt_acl(&["token", "delete", "-id", &app_accessor]);
    let pd = mgmt_acl(&["policy", "delete", "-name", "kv-writer"]);
    assert_eq!(pd, format!("Policy \"{policy_id}\" deleted successfully\n"));
    let after = run(&with(
        &mgmt,
        &["acl", "policy", "read", "-name", "kv-writer"],
    ));
    assert_eq!(after.status.code(), Some(1));
}

/// `acl set-agent-token` sends `PUT /v1/agent/token/<type>` with the token
/// in the body and the caller's token in the header; checked against a
/// one-request HTTP listener, since the endpoint is not on this branch.
#[test]
fn set_agent_token_sends_consuls_request() {
    let (addr, server) = one_request_server();
    let out = cli_env(
        &addr,
        &["acl", "set-agent-token", "agent", "s3cret"],
        &[("CONSUL_HTTP_TOKEN", "caller")],
        None,
    );
    assert_eq!(ok(out), "ACL token \"agent\" set successfully\n");
    let (head, body) = server.join().unwrap();
    assert_eq!(head[0], "PUT /v1/agent/token/agent HTTP/1.1");
    assert!(
        head.iter()
            .any(|h| h.eq_ignore_ascii_case("x-consul-token: caller")),
        "{head:?}"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"Token": "s3cret"})
    );
    let bad = cli_env(&addr, &["acl", "set-agent-token", "bogus", "x"], &[], None);
    fails_saying(&bad, "Unknown token type \"bogus\"");
}
