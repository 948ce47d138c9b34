//! The ACL HTTP API (`/v1/acl/*`) against an in-process dev agent: the
//! statuses and texts Consul's clients see.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use meridian::config::AclConfig;
use serde_json::{json, Value};

struct Api {
    base: String,
    client: reqwest::Client,
}

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
    Api {
        base: common::inproc::acl_dev_agent(acl, data_dir).await,
        client: reqwest::Client::new(),
    }
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
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = api
            .call(
                reqwest::Method::GET,
                "/v1/acl/token/self",
                None,
                Some(&secret),
            )
            .await;
        if answer.0 == 200 {
            break api;
        }
        assert!(Instant::now() < deadline, "no management token: {answer:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, String) {
        let mut r = self.client.request(method, self.url(path));
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        if let Some(t) = token {
            r = r.header("X-Consul-Token", t);
        }
        let r = r.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    async fn get(&self, path: &str) -> (u16, String) {
        self.call(reqwest::Method::GET, path, None, None).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, String) {
        self.call(reqwest::Method::PUT, path, Some(body), None)
            .await
    }

    async fn delete(&self, path: &str) -> (u16, String) {
        self.call(reqwest::Method::DELETE, path, None, None).await
    }

    /// A 200 answer's JSON.
    async fn ok(&self, answer: (u16, String)) -> Value {
        assert_eq!(answer.0, 200, "{}", answer.1);
        serde_json::from_str(&answer.1).expect("json")
    }
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
            api.get(path).await,
            (401, "ACL support disabled".into()),
            "{path}"
        );
    }
    let answer = api.put("/v1/acl/bootstrap", json!({})).await;
    assert_eq!(answer, (401, "ACL support disabled".into()));
}

#[actix_rt::test]
async fn bootstrap_once_then_403_with_the_reset_index_and_the_reset_file_works_once() {
    let dir = tempfile::tempdir().unwrap();
    let api = agent(true, dir.path()).await;
    let first = api.ok(api.put("/v1/acl/bootstrap", json!({})).await).await;
    assert_eq!(first["Description"], "Bootstrap Token (Global Management)");
    assert_eq!(first["ID"], first["SecretID"]);
    assert_eq!(first["Policies"][0]["Name"], "global-management");
    let index = first["CreateIndex"].as_u64().unwrap();

    let (status, text) = api.put("/v1/acl/bootstrap", json!({})).await;
    assert_eq!(status, 403);
    assert_eq!(
        text,
        format!("Permission denied: ACL bootstrap no longer allowed (reset index: {index})")
    );

    let reset = dir.path().join("acl-bootstrap-reset");
    std::fs::write(&reset, format!("{index}\n")).unwrap();
    let secret = uuid::Uuid::new_v4().to_string();
    let again = api
        .ok(api
            .put("/v1/acl/bootstrap", json!({ "BootstrapSecret": secret }))
            .await)
        .await;
    assert_eq!(again["SecretID"], secret.as_str());
    assert!(!reset.exists(), "the reset file is used once");
    assert_eq!(api.put("/v1/acl/bootstrap", json!({})).await.0, 403);
}

#[actix_rt::test]
async fn tokens_policies_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let api = managed(dir.path()).await;

    let (status, text) = api
        .put("/v1/acl/token", json!({"Policies": [{"Name": "nope"}]}))
        .await;
    assert_eq!(status, 400);
    assert!(text.contains("\"nope\""), "{text}");

    let (status, text) = api
        .put(
            "/v1/acl/policy",
            json!({"Name": "bad", "Rules": "key_prefix \"\" {\n  policy = \"wrte\"\n}"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(text.contains("line 2, column"), "{text}");

    let policy = api
        .ok(api
            .put(
                "/v1/acl/policy",
                json!({"Name": "kv", "Rules": "key_prefix \"\" { policy = \"read\" }"}),
            )
            .await)
        .await;
    let pid = policy["ID"].as_str().unwrap().to_string();
    let by_name = api.ok(api.get("/v1/acl/policy/name/kv").await).await;
    assert_eq!(by_name["ID"], pid.as_str());
    let builtin = api
        .ok(api
            .get("/v1/acl/policy/name/builtin/global-read-only")
            .await)
        .await;
    assert_eq!(builtin["ID"], "00000000-0000-0000-0000-000000000002");
    let escaped = api
        .get("/v1/acl/policy/name/builtin%2Fglobal-read-only")
        .await;
    assert_eq!(escaped.0, 200, "{}", escaped.1);
    let policies = api.ok(api.get("/v1/acl/policies").await).await;
    assert!(policies
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p.get("Rules").is_none()));

    let role = api
        .ok(api
            .put(
                "/v1/acl/role",
                json!({"Name": "r1", "Policies": [{"ID": pid}]}),
            )
            .await)
        .await;
    let rid = role["ID"].as_str().unwrap().to_string();
    assert_eq!(
        api.ok(api.get("/v1/acl/role/name/r1").await).await["ID"],
        rid.as_str()
    );
    assert_eq!(api.get("/v1/acl/role/missing").await.0, 404);
    let roles = api
        .ok(api.get(&format!("/v1/acl/roles?policy={pid}")).await)
        .await;
    assert_eq!(roles.as_array().unwrap().len(), 1);

    let token = api
        .ok(api
            .put(
                "/v1/acl/token",
                json!({"Description": "web", "Policies": [{"Name": "kv"}]}),
            )
            .await)
        .await;
    let (accessor, secret) = (
        token["AccessorID"].as_str().unwrap().to_string(),
        token["SecretID"].as_str().unwrap().to_string(),
    );
    let mine = api
        .call(
            reqwest::Method::GET,
            "/v1/acl/token/self",
            None,
            Some(&secret),
        )
        .await;
    assert_eq!(api.ok(mine).await["AccessorID"], accessor.as_str());
    let unknown = api
        .call(
            reqwest::Method::GET,
            "/v1/acl/token/self",
            None,
            Some("nope"),
        )
        .await;
    assert_eq!(unknown, (404, "Supplied token does not exist".into()));

    let clone = api
        .ok(api
            .put(&format!("/v1/acl/token/{accessor}/clone"), json!({}))
            .await)
        .await;
    assert_ne!(clone["AccessorID"], accessor.as_str());
    assert_eq!(clone["Description"], "web");
    assert_eq!(clone["Policies"][0]["ID"], pid.as_str());

    let (status, text) = api
        .put(
            &format!("/v1/acl/token/{accessor}"),
            json!({"AccessorID": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(
        (status, text.as_str()),
        (400, "Token Accessor ID in URL and payload do not match")
    );
    let updated = api
        .ok(api
            .put(
                &format!("/v1/acl/token/{accessor}"),
                json!({"Description": "web2", "Roles": [{"Name": "r1"}]}),
            )
            .await)
        .await;
    assert_eq!(updated["SecretID"], secret.as_str());

    let by_policy = api
        .ok(api.get(&format!("/v1/acl/tokens?policy={pid}")).await)
        .await;
    assert_eq!(by_policy.as_array().unwrap().len(), 1, "{by_policy}");
    let by_role = api
        .ok(api.get(&format!("/v1/acl/tokens?role={rid}")).await)
        .await;
    assert_eq!(by_role.as_array().unwrap().len(), 1, "{by_role}");
    let by_method = api.ok(api.get("/v1/acl/tokens?authmethod=m").await).await;
    assert_eq!(by_method, json!([]));
    let both = api
        .get(&format!("/v1/acl/tokens?policy={pid}&role={rid}"))
        .await;
    assert_eq!(both.0, 500, "{}", both.1);

    assert_eq!(
        api.delete(&format!("/v1/acl/token/{accessor}")).await,
        (200, "true".into())
    );
    assert_eq!(
        api.get(&format!("/v1/acl/token/{accessor}")).await,
        (404, "Requested token does not exist: ACL not found".into())
    );
    assert_eq!(
        api.delete(&format!("/v1/acl/token/{accessor}")).await,
        (404, "Cannot find token to delete".into())
    );
    assert_eq!(
        api.delete(&format!("/v1/acl/role/{rid}")).await,
        (200, "true".into())
    );
    assert_eq!(
        api.delete(&format!("/v1/acl/policy/{pid}")).await,
        (200, "true".into())
    );
    assert_eq!(
        api.get(&format!("/v1/acl/policy/{pid}")).await,
        (404, "Requested policy does not exist: ACL not found".into())
    );
}

#[actix_rt::test]
async fn token_lifetimes_are_bounded_as_in_consul() {
    let dir = tempfile::tempdir().unwrap();
    let api = managed(dir.path()).await;
    let short = api
        .put("/v1/acl/token", json!({"ExpirationTTL": "1s"}))
        .await;
    assert_eq!(
        short,
        (
            400,
            "ExpirationTime cannot be less than 1m0s in the future (was 1s)".into()
        )
    );
    let long = api
        .put("/v1/acl/token", json!({"ExpirationTTL": "25h"}))
        .await;
    assert_eq!(
        long,
        (
            400,
            "ExpirationTime cannot be more than 24h0m0s in the future (was 25h0m0s)".into()
        )
    );
    let token = api
        .ok(api
            .put("/v1/acl/token", json!({"ExpirationTTL": "2m"}))
            .await)
        .await;
    let created: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(token["CreateTime"].clone()).unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(token["ExpirationTime"].clone()).unwrap();
    assert_eq!(expires - created, chrono::Duration::minutes(2));
    let accessor = token["AccessorID"].as_str().unwrap();
    let list = api.ok(api.get("/v1/acl/tokens").await).await;
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
    let deadline = Instant::now() + Duration::from_secs(10);
    let mine = loop {
        let answer = api
            .call(
                reqwest::Method::GET,
                "/v1/acl/token/self",
                None,
                Some(&secret),
            )
            .await;
        if answer.0 == 200 {
            break api.ok(answer).await;
        }
        assert!(
            Instant::now() < deadline,
            "no initial management token: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(mine["Description"], "Initial Management Token");
    assert_eq!(mine["Policies"][0]["Name"], "global-management");
    let policy = api
        .ok(api.get("/v1/acl/policy/name/global-management").await)
        .await;
    assert!(
        policy["CreateIndex"].as_u64().unwrap() > 0,
        "stored: {policy}"
    );
    let anonymous = api
        .ok(api
            .get("/v1/acl/token/00000000-0000-0000-0000-000000000002")
            .await)
        .await;
    assert_eq!(anonymous["Description"], "Anonymous Token");
    // initial_management bootstrapped ACLs, as in Consul.
    assert_eq!(api.put("/v1/acl/bootstrap", json!({})).await.0, 403);
}
