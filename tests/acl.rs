//! The ACL HTTP API (`/v1/acl/*`) against an in-process dev agent: the
//! statuses and texts Consul's clients see.

mod common;

use std::path::Path;

use meridian::config::AclConfig;
use serde_json::json;

use common::acl_http::Api;

async fn agent(acl_enabled: bool, data_dir: &Path) -> Api {
    agent_with(
        AclConfig {
            enabled: acl_enabled,
            ..Default::default()
        },
        data_dir,
    )
    .await
}

async fn agent_with(acl: AclConfig, data_dir: &Path) -> Api {
    Api::new(common::inproc::acl_dev_agent(acl, data_dir).await)
}

/// An ACL agent whose default token is its initial management token:
/// ACLs are enforced, so the ACL API needs `acl:write`, which token-less
/// calls get from the default token.
async fn managed(data_dir: &Path) -> Api {
    let secret = uuid::Uuid::new_v4().to_string();
    let mut acl = AclConfig {
        enabled: true,
        ..Default::default()
    };
    acl.tokens.initial_management = secret.clone();
    acl.tokens.default = secret.clone();
    let api = agent_with(acl, data_dir).await;
    api.until_token(&secret).await;
    api
}

#[actix_rt::test]
async fn every_acl_endpoint_answers_401_while_acls_are_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let api = agent(false, dir.path()).await;
    for path in [
        "/v1/acl/tokens",
        "/v1/acl/policies",
        "/v1/acl/roles",
        "/v1/acl/token/self",
    ] {
        assert_eq!(
            api.get(path, None).await.pair(),
            (401, "ACL support disabled".into()),
            "{path}"
        );
    }
    let answer = api.put("/v1/acl/bootstrap", json!({}), None).await;
    assert_eq!(answer.pair(), (401, "ACL support disabled".into()));
}

#[actix_rt::test]
async fn bootstrap_once_then_403_with_the_reset_index_and_the_reset_file_works_once() {
    let dir = tempfile::tempdir().unwrap();
    let api = agent(true, dir.path()).await;
    let first = api.put("/v1/acl/bootstrap", json!({}), None).await.json();
    assert_eq!(first["Description"], "Bootstrap Token (Global Management)");
    assert_eq!(first["ID"], first["SecretID"]);
    assert_eq!(first["Policies"][0]["Name"], "global-management");
    let index = first["CreateIndex"].as_u64().unwrap();

    let (status, text) = api.put("/v1/acl/bootstrap", json!({}), None).await.pair();
    assert_eq!(status, 403);
    assert_eq!(
        text,
        format!("Permission denied: ACL bootstrap no longer allowed (reset index: {index})")
    );

    let reset = dir.path().join("acl-bootstrap-reset");
    std::fs::write(&reset, format!("{index}\n")).unwrap();
    let secret = uuid::Uuid::new_v4().to_string();
    let again = api
        .put(
            "/v1/acl/bootstrap",
            json!({ "BootstrapSecret": secret }),
            None,
        )
        .await
        .json();
    assert_eq!(again["SecretID"], secret.as_str());
    assert!(!reset.exists(), "the reset file is used once");
    assert_eq!(
        api.put("/v1/acl/bootstrap", json!({}), None).await.status,
        403
    );
}

#[actix_rt::test]
async fn tokens_policies_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let api = managed(dir.path()).await;

    let (status, text) = api
        .put(
            "/v1/acl/token",
            json!({"Policies": [{"Name": "nope"}]}),
            None,
        )
        .await
        .pair();
    assert_eq!(status, 400);
    assert!(text.contains("\"nope\""), "{text}");

    let (status, text) = api
        .put(
            "/v1/acl/policy",
            json!({"Name": "bad", "Rules": "key_prefix \"\" {\n  policy = \"wrte\"\n}"}),
            None,
        )
        .await
        .pair();
    assert_eq!(status, 400);
    assert!(text.contains("line 2, column"), "{text}");

    let policy = api
        .put(
            "/v1/acl/policy",
            json!({"Name": "kv", "Rules": "key_prefix \"\" { policy = \"read\" }"}),
            None,
        )
        .await
        .json();
    let pid = policy["ID"].as_str().unwrap().to_string();
    let by_name = api.get("/v1/acl/policy/name/kv", None).await.json();
    assert_eq!(by_name["ID"], pid.as_str());
    let builtin = api
        .get("/v1/acl/policy/name/builtin/global-read-only", None)
        .await
        .json();
    assert_eq!(builtin["ID"], "00000000-0000-0000-0000-000000000002");
    let escaped = api
        .get("/v1/acl/policy/name/builtin%2Fglobal-read-only", None)
        .await;
    assert_eq!(escaped.status, 200, "{}", escaped.body);
    let policies = api.get("/v1/acl/policies", None).await.json();
    assert!(policies
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p.get("Rules").is_none()));

    let role = api
        .put(
            "/v1/acl/role",
            json!({"Name": "r1", "Policies": [{"ID": pid}]}),
            None,
        )
        .await
        .json();
    let rid = role["ID"].as_str().unwrap().to_string();
    assert_eq!(
        api.get("/v1/acl/role/name/r1", None).await.json()["ID"],
        rid.as_str()
    );
    assert_eq!(api.get("/v1/acl/role/missing", None).await.status, 404);
    let roles = api
        .get(&format!("/v1/acl/roles?policy={pid}"), None)
        .await
        .json();
    assert_eq!(roles.as_array().unwrap().len(), 1);

    let token = api
        .put(
            "/v1/acl/token",
            json!({"Description": "web", "Policies": [{"Name": "kv"}]}),
            None,
        )
        .await
        .json();
    let (accessor, secret) = (
        token["AccessorID"].as_str().unwrap().to_string(),
        token["SecretID"].as_str().unwrap().to_string(),
    );
    let mine = api.get("/v1/acl/token/self", Some(&secret)).await;
    assert_eq!(mine.json()["AccessorID"], accessor.as_str());
    let unknown = api.get("/v1/acl/token/self", Some("nope")).await;
    assert_eq!(
        unknown.pair(),
        (404, "Supplied token does not exist".into())
    );

    let clone = api
        .put(&format!("/v1/acl/token/{accessor}/clone"), json!({}), None)
        .await
        .json();
    assert_ne!(clone["AccessorID"], accessor.as_str());
    assert_eq!(clone["Description"], "web");
    assert_eq!(clone["Policies"][0]["ID"], pid.as_str());

    let (status, text) = api
        .put(
            &format!("/v1/acl/token/{accessor}"),
            json!({"AccessorID": uuid::Uuid::new_v4().to_string()}),
            None,
        )
        .await
        .pair();
    assert_eq!(
        (status, text.as_str()),
        (400, "Token Accessor ID in URL and payload do not match")
    );
    let updated = api
        .put(
            &format!("/v1/acl/token/{accessor}"),
            json!({"Description": "web2", "Roles": [{"Name": "r1"}]}),
            None,
        )
        .await
        .json();
    assert_eq!(updated["SecretID"], secret.as_str());

    let by_policy = api
        .get(&format!("/v1/acl/tokens?policy={pid}"), None)
        .await
        .json();
    assert_eq!(by_policy.as_array().unwrap().len(), 1, "{by_policy}");
    let by_role = api
        .get(&format!("/v1/acl/tokens?role={rid}"), None)
        .await
        .json();
    assert_eq!(by_role.as_array().unwrap().len(), 1, "{by_role}");
    let by_method = api.get("/v1/acl/tokens?authmethod=m", None).await.json();
    assert_eq!(by_method, json!([]));
    let both = api
        .get(&format!("/v1/acl/tokens?policy={pid}&role={rid}"), None)
        .await;
    // Consul's text; 400 here where Consul answers 500 (bad input is 4xx).
    assert_eq!(both.status, 400, "{}", both.body);
    assert!(
        both.body.contains("can only filter by one of"),
        "{}",
        both.body
    );

    assert_eq!(
        api.delete(&format!("/v1/acl/token/{accessor}"), None)
            .await
            .pair(),
        (200, "true".into())
    );
    assert_eq!(
        api.get(&format!("/v1/acl/token/{accessor}"), None)
            .await
            .pair(),
        (404, "Requested token does not exist: ACL not found".into())
    );
    assert_eq!(
        api.delete(&format!("/v1/acl/token/{accessor}"), None)
            .await
            .pair(),
        (404, "Cannot find token to delete".into())
    );
    assert_eq!(
        api.delete(&format!("/v1/acl/role/{rid}"), None)
            .await
            .pair(),
        (200, "true".into())
    );
    assert_eq!(
        api.delete(&format!("/v1/acl/policy/{pid}"), None)
            .await
            .pair(),
        (200, "true".into())
    );
    assert_eq!(
        api.get(&format!("/v1/acl/policy/{pid}"), None).await.pair(),
        (404, "Requested policy does not exist: ACL not found".into())
    );
}

#[actix_rt::test]
async fn token_lifetimes_are_bounded_as_in_consul() {
    let dir = tempfile::tempdir().unwrap();
    let api = managed(dir.path()).await;
    let short = api
        .put("/v1/acl/token", json!({"ExpirationTTL": "1s"}), None)
        .await;
    assert_eq!(
        short.pair(),
        (
            400,
            "ExpirationTime cannot be less than 1m0s in the future (was 1s)".into()
        )
    );
    let long = api
        .put("/v1/acl/token", json!({"ExpirationTTL": "25h"}), None)
        .await;
    assert_eq!(
        long.pair(),
        (
            400,
            "ExpirationTime cannot be more than 24h0m0s in the future (was 25h0m0s)".into()
        )
    );
    let token = api
        .put("/v1/acl/token", json!({"ExpirationTTL": "2m"}), None)
        .await
        .json();
    let created: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(token["CreateTime"].clone()).unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(token["ExpirationTime"].clone()).unwrap();
    assert_eq!(expires - created, chrono::Duration::minutes(2));
    let accessor = token["AccessorID"].as_str().unwrap();
    let list = api.get("/v1/acl/tokens", None).await.json();
    assert!(list.to_string().contains(accessor));
}

#[actix_rt::test]
async fn the_leader_stores_the_builtins_and_installs_the_initial_management_token() {
    let dir = tempfile::tempdir().unwrap();
    let secret = uuid::Uuid::new_v4().to_string();
    let mut acl = AclConfig {
        enabled: true,
        ..Default::default()
    };
    acl.tokens.initial_management = secret.clone();
    // Token-less reads of the ACL API need it (ACLs are enforced).
    acl.tokens.default = secret.clone();
    let api = agent_with(acl, dir.path()).await;
    api.until_token(&secret).await;
    let mine = api.get("/v1/acl/token/self", Some(&secret)).await.json();
    assert_eq!(mine["Description"], "Initial Management Token");
    assert_eq!(mine["Policies"][0]["Name"], "global-management");
    let policy = api
        .get("/v1/acl/policy/name/global-management", None)
        .await
        .json();
    assert!(
        policy["CreateIndex"].as_u64().unwrap() > 0,
        "stored: {policy}"
    );
    let anonymous = api
        .get("/v1/acl/token/00000000-0000-0000-0000-000000000002", None)
        .await
        .json();
    assert_eq!(anonymous["Description"], "Anonymous Token");
    // initial_management bootstrapped ACLs, as in Consul.
    assert_eq!(
        api.put("/v1/acl/bootstrap", json!({}), None).await.status,
        403
    );
}
