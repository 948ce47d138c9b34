//! The smaller user-facing pieces of ACLs, against an in-process dev
//! agent: the default-policy header on every answer, token secrets hidden
//! from `acl:read`, and bad ACL input refused with a 4xx and nothing
//! written.

mod common;

use std::time::Duration;

use meridian::config::AclConfig;
use serde_json::json;

use common::acl_http::{deny_server, Api};

#[actix_rt::test]
async fn every_answer_carries_the_agents_default_acl_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (_h, api, root) = deny_server(dir.path()).await;
    let answers = [
        api.get("/v1/status/leader", None).await,
        api.get("/v1/kv/x", Some(&root)).await,
        api.put("/v1/kv/x", "1", None).await,
        api.get("/v1/acl/token/self", Some("unknown-secret")).await,
        api.get("/v1/nope", None).await,
        api.call(reqwest::Method::POST, "/v1/acl/bootstrap", (), None)
            .await,
        api.put("/v1/acl/policy", "{", Some(&root)).await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 404, 403, 404, 404, 405, 400], "{answers:?}");
    for a in &answers {
        assert_eq!(a.policy.as_deref(), Some("deny"), "{a:?}");
    }

    // Consul sends it with ACLs off too (its default, `allow`).
    let other = tempfile::tempdir().unwrap();
    let open = Api::new(common::inproc::acl_dev_agent(AclConfig::default(), other.path()).await);
    let a = open.get("/v1/status/leader", None).await;
    assert_eq!((a.status, a.policy.as_deref()), (200, Some("allow")));
}

#[actix_rt::test]
async fn token_secrets_are_hidden_from_a_token_that_may_only_read_acls() {
    let dir = tempfile::tempdir().unwrap();
    let (_h, api, root) = deny_server(dir.path()).await;
    api.put(
        "/v1/acl/policy",
        json!({"Name": "acl-read", "Rules": "acl = \"read\""}).to_string(),
        Some(&root),
    )
    .await
    .json();
    let reader = api
        .put(
            "/v1/acl/token",
            json!({"Policies": [{"Name": "acl-read"}]}).to_string(),
            Some(&root),
        )
        .await
        .json();
    let reader_secret = reader["SecretID"].as_str().unwrap().to_string();
    let other = api
        .put("/v1/acl/token", json!({}).to_string(), Some(&root))
        .await
        .json();
    let other_accessor = other["AccessorID"].as_str().unwrap();

    // acl:read sees tokens, not their secrets: one token, and the list.
    let read = api
        .get(
            &format!("/v1/acl/token/{other_accessor}"),
            Some(&reader_secret),
        )
        .await
        .json();
    assert_eq!(read["AccessorID"], other_accessor);
    assert_eq!(read["SecretID"], "<hidden>");
    let list = api.get("/v1/acl/tokens", Some(&reader_secret)).await.json();
    let list = list.as_array().unwrap();
    assert!(list.len() >= 4, "{list:?}"); // anonymous, root, reader, other
    assert!(list.iter().all(|t| t["SecretID"] == "<hidden>"), "{list:?}");

    // A token reading itself sees its own secret.
    let own = api
        .get("/v1/acl/token/self", Some(&reader_secret))
        .await
        .json();
    assert_eq!(own["SecretID"], reader_secret.as_str());

    // acl:write (management) sees every secret.
    let read = api
        .get(&format!("/v1/acl/token/{other_accessor}"), Some(&root))
        .await
        .json();
    assert_eq!(read["SecretID"], other["SecretID"]);
    let list = api.get("/v1/acl/tokens", Some(&root)).await.json();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["SecretID"] != "<hidden>"));
}

/// How many policies, roles and tokens the management token sees.
async fn acl_objects(api: &Api, root: &str) -> [usize; 3] {
    [
        api.count("/v1/acl/policies", root).await,
        api.count("/v1/acl/roles", root).await,
        api.count("/v1/acl/tokens", root).await,
    ]
}

#[actix_rt::test]
async fn bad_acl_input_is_a_clear_4xx_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_h, api, root_secret) = deny_server(dir.path()).await;
    let root = Some(root_secret.as_str());
    api.put(
        "/v1/acl/policy",
        json!({"Name": "kv", "Rules": "key_prefix \"\" { policy = \"read\" }"}).to_string(),
        root,
    )
    .await
    .json();
    let token = api
        .put("/v1/acl/token", json!({}).to_string(), root)
        .await
        .json();
    let accessor = token["AccessorID"].as_str().unwrap();
    let before = acl_objects(&api, &root_secret).await;

    let missing = uuid::Uuid::new_v4().to_string();
    let oversized = "#".repeat(600 * 1024);
    // (path, body, status, what the answer must say)
    let cases: Vec<(String, String, u16, String)> = vec![
        // Rules: the parser's position.
        (
            "/v1/acl/policy".into(),
            json!({"Name": "p1", "Rules": "key_prefix \"\" {\n  policy = \"wrte\"\n}"}).to_string(),
            400,
            "line 2, column".into(),
        ),
        (
            "/v1/acl/policy".into(),
            json!({"Name": "p2", "Rules": "key \"a\" {\n  policy = \"read\"\n"}).to_string(),
            400,
            "line ".into(),
        ),
        (
            "/v1/acl/policy".into(),
            json!({"Name": "p3", "Rules": "{\"key\": {\"a\": {\"policy\": \"sometimes\"}}}"})
                .to_string(),
            400,
            "sometimes".into(),
        ),
        // Policy names.
        (
            "/v1/acl/policy".into(),
            json!({"Name": "bad name"}).to_string(),
            400,
            "Invalid Policy: invalid Name. Only alphanumeric characters".into(),
        ),
        (
            "/v1/acl/policy".into(),
            json!({"Name": "dot.name"}).to_string(),
            400,
            "Invalid Policy: invalid Name".into(),
        ),
        (
            "/v1/acl/policy".into(),
            json!({"Name": "builtin/mine"}).to_string(),
            400,
            "cannot be prefixed with '/' or 'builtin/'".into(),
        ),
        (
            "/v1/acl/policy".into(),
            json!({"Name": "x".repeat(129)}).to_string(),
            400,
            "Length must be greater than 0".into(),
        ),
        // Links to what does not exist, named.
        (
            "/v1/acl/token".into(),
            json!({"Policies": [{"Name": "nope"}]}).to_string(),
            400,
            "No such ACL policy with name \"nope\"".into(),
        ),
        (
            "/v1/acl/token".into(),
            json!({"Policies": [{"ID": missing}]}).to_string(),
            400,
            format!("No such ACL policy with ID \"{missing}\""),
        ),
        (
            "/v1/acl/token".into(),
            json!({"Roles": [{"Name": "no-role"}]}).to_string(),
            400,
            "No such ACL role with name \"no-role\"".into(),
        ),
        (
            format!("/v1/acl/token/{accessor}"),
            json!({"Roles": [{"ID": missing}]}).to_string(),
            400,
            format!("No such ACL role with ID \"{missing}\""),
        ),
        (
            "/v1/acl/role".into(),
            json!({"Name": "r", "Policies": [{"Name": "nope"}]}).to_string(),
            400,
            "\"nope\"".into(),
        ),
        // Bodies: too large, malformed, a field of the wrong type.
        (
            "/v1/acl/policy".into(),
            json!({"Name": "big", "Rules": oversized}).to_string(),
            413,
            "too large".into(),
        ),
        (
            "/v1/acl/token".into(),
            json!({"Description": oversized}).to_string(),
            413,
            "too large".into(),
        ),
        (
            "/v1/acl/policy".into(),
            "{\"Name\": \"p4\",".into(),
            400,
            "Request decode failed".into(),
        ),
        (
            "/v1/acl/policy".into(),
            json!({"Name": 5}).to_string(),
            400,
            "Name".into(),
        ),
        (
            "/v1/acl/token".into(),
            json!({"Policies": {"Name": "kv"}}).to_string(),
            400,
            "Policies".into(),
        ),
        (
            "/v1/acl/role".into(),
            json!({"Name": "r", "Policies": [{"ID": 7}]}).to_string(),
            400,
            "Policies[0].ID".into(),
        ),
    ];
    for (path, body, status, says) in &cases {
        let a = api.put(path, body.clone(), root).await;
        let shown: String = body.chars().take(80).collect();
        assert_eq!(a.status, *status, "{path} {shown}: {}", a.body);
        assert!(a.body.contains(says.as_str()), "{path} {shown}: {}", a.body);
    }
    assert_eq!(acl_objects(&api, &root_secret).await, before);
    // The token refused an unknown role kept what it had.
    let kept = api
        .get(&format!("/v1/acl/token/{accessor}"), root)
        .await
        .json();
    assert!(kept.get("Roles").is_none(), "{kept}");
}

#[actix_rt::test]
async fn an_expired_token_is_not_found_at_once() {
    use meridian::structs::acl::{AclLink, AclToken};
    use meridian::structs::{Command, WriteRequest};

    let dir = tempfile::tempdir().unwrap();
    let (handle, api, root) = deny_server(dir.path()).await;
    let policy = api
        .put(
            "/v1/acl/policy",
            json!({"Name": "kv", "Rules": "key_prefix \"\" { policy = \"read\" }"}).to_string(),
            Some(&root),
        )
        .await
        .json();
    // The API bounds lifetimes to at least a minute (Consul's default
    // minimum); written on the request path, the store keeps a shorter one.
    let now = chrono::Utc::now();
    let expires = now + chrono::Duration::seconds(2);
    let secret = uuid::Uuid::new_v4().to_string();
    let token = AclToken {
        accessor_id: uuid::Uuid::new_v4().to_string(),
        secret_id: secret.clone(),
        policies: vec![AclLink::new(policy["ID"].as_str().unwrap(), "")],
        create_time: now,
        expiration_time: Some(expires),
        ..Default::default()
    };
    let accessor = token.accessor_id.clone();
    handle
        .router
        .write(WriteRequest {
            dc: None,
            command: Command::AclTokenSet {
                token,
                create: true,
            },
            token: Some(root.clone()),
        })
        .await
        .expect("token written");

    // Alive: its policy lets it read (an absent key is a 404, not a 403).
    let a = api.get("/v1/kv/app/x", Some(&secret)).await;
    assert_eq!(a.status, 404, "{}", a.body);

    let wait = (expires - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    // Refused from its expiry on, before any reaper has run.
    let a = api.get("/v1/kv/app/x", Some(&secret)).await;
    assert_eq!((a.status, a.body.as_str()), (403, "ACL not found"));
    let a = api
        .get(&format!("/v1/acl/token/{accessor}"), Some(&root))
        .await;
    assert_eq!(a.status, 404, "{}", a.body);
}
