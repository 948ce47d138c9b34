//! ACL enforcement on the request path against an in-process dev agent:
//! what a token may read and write, Consul's 403 texts, filtered lists.

mod common;

use std::path::Path;

use meridian::config::{AclConfig, AclDefaultPolicy};
use serde_json::json;

use common::acl_http::{deny_agent, Api};

async fn agent(acl: AclConfig, data_dir: &Path) -> Api {
    Api::new(common::inproc::acl_dev_agent(acl, data_dir).await)
}

#[actix_rt::test]
async fn deny_by_default_refuses_names_the_default_and_filters_lists() {
    let dir = tempfile::tempdir().unwrap();
    let (api, root) = deny_agent(dir.path()).await;

    // No token: the anonymous token, which nothing grants.
    let put = api.put("/v1/kv/app/x", "1", None).await;
    assert_eq!(put.status, 403, "{}", put.body);
    assert!(
        put.body.starts_with(
            "Permission denied: anonymous token lacks permission 'key:write' on \"app/x\", \
             denied by default_policy \"deny\""
        ),
        "{}",
        put.body
    );
    let get = api.get("/v1/kv/app/x", None).await;
    assert_eq!(get.status, 403, "{}", get.body);
    assert!(get.body.contains("'key:read'"), "{}", get.body);

    // Management may do anything.
    for key in ["app/x", "db/x"] {
        let a = api.put(&format!("/v1/kv/{key}"), "1", Some(&root)).await;
        assert_eq!((a.status, a.body.as_str()), (200, "true"));
    }
    let all = api.get("/v1/kv/?recurse", Some(&root)).await;
    assert_eq!(all.json().as_array().unwrap().len(), 2);
    assert!(!all.filtered);

    // A token that may write under app/ only.
    let policy = json!({"Name": "app", "Rules": "key_prefix \"app/\" { policy = \"write\" }"});
    let put = api
        .put("/v1/acl/policy", &policy.to_string(), Some(&root))
        .await;
    let policy_id = put.json()["ID"].as_str().unwrap().to_string();
    let token = api
        .put(
            "/v1/acl/token",
            &json!({"Policies": [{"Name": "app"}]}).to_string(),
            Some(&root),
        )
        .await
        .json();
    let accessor = token["AccessorID"].as_str().unwrap().to_string();
    let app = token["SecretID"].as_str().unwrap().to_string();

    let ok = api.put("/v1/kv/app/y", "2", Some(&app)).await;
    assert_eq!((ok.status, ok.body.as_str()), (200, "true"));
    let no = api.put("/v1/kv/db/x", "2", Some(&app)).await;
    assert_eq!(no.status, 403);
    assert_eq!(
        no.body,
        format!(
            "Permission denied: token with AccessorID '{accessor}' lacks permission \
             'key:write' on \"db/x\", denied by default_policy \"deny\""
        )
    );
    // A recursive delete above app/ covers db/ too.
    let tree = api
        .call(reqwest::Method::DELETE, "/v1/kv/?recurse", (), Some(&app))
        .await;
    assert_eq!(tree.status, 403, "{}", tree.body);

    let listed = api.get("/v1/kv/?recurse", Some(&app)).await;
    let keys: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["app/x", "app/y"]);
    assert!(listed.filtered, "the header says results were filtered");
    let keys = api.get("/v1/kv/?keys", Some(&app)).await;
    assert_eq!(keys.json(), json!(["app/x", "app/y"]));
    assert!(keys.filtered);

    // Catalog and health lists: filtered silently by node/service read.
    let reg = json!({"Node": "n1", "Address": "10.0.0.1", "Service": {"Service": "web"}});
    let a = api
        .put("/v1/catalog/register", &reg.to_string(), Some(&root))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // Moving the node needs node:write (an unchanged node would not).
    let moved = json!({"Node": "n1", "Address": "10.0.0.9", "Service": {"Service": "web"}});
    let denied = api
        .put("/v1/catalog/register", &moved.to_string(), Some(&app))
        .await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert!(
        denied.body.contains("'node:write' on \"n1\""),
        "{}",
        denied.body
    );

    let nodes = api.get("/v1/catalog/nodes", Some(&root)).await;
    assert!(nodes
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["Node"] == "n1"));
    assert!(!nodes.filtered);
    let nodes = api.get("/v1/catalog/nodes", Some(&app)).await;
    assert_eq!(nodes.json(), json!([]));
    assert!(nodes.filtered);
    let services = api.get("/v1/catalog/services", Some(&app)).await;
    assert_eq!(services.json(), json!({}));
    assert!(services.filtered);
    let health = api.get("/v1/health/service/web", Some(&app)).await;
    assert_eq!(health.json(), json!([]));
    assert!(health.filtered);
    let health = api.get("/v1/health/service/web", Some(&root)).await;
    assert_eq!(health.json().as_array().unwrap().len(), 1);

    // ACL reads need acl:read.
    let acl = api.get("/v1/acl/tokens", Some(&app)).await;
    assert_eq!(acl.status, 403, "{}", acl.body);
    assert!(acl.body.contains("'acl:read'"), "{}", acl.body);

    // User events need event:write on their name.
    let event = api.put("/v1/event/fire/deploy", "", Some(&app)).await;
    assert_eq!(event.status, 403, "{}", event.body);
    assert!(
        event.body.contains("'event:write' on \"deploy\""),
        "{}",
        event.body
    );
    let event = api.put("/v1/event/fire/deploy", "", Some(&root)).await;
    assert_eq!(event.status, 200, "{}", event.body);

    // A changed policy is seen at once (the cached authorizer is
    // compiled again when the ACL tables move).
    let wider = json!({"Name": "app", "Rules": "key_prefix \"\" { policy = \"write\" }"});
    let put = api
        .put(
            &format!("/v1/acl/policy/{policy_id}"),
            &wider.to_string(),
            Some(&root),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let now_ok = api.put("/v1/kv/db/x", "3", Some(&app)).await;
    assert_eq!((now_ok.status, now_ok.body.as_str()), (200, "true"));

    // A secret that names no token.
    let unknown = uuid::Uuid::new_v4().to_string();
    let a = api.get("/v1/kv/app/x", Some(&unknown)).await;
    assert_eq!((a.status, a.body.as_str()), (403, "ACL not found"));
    let a = api.put("/v1/kv/app/x", "3", Some(&unknown)).await;
    assert_eq!((a.status, a.body.as_str()), (403, "ACL not found"));
}

#[actix_rt::test]
async fn the_default_token_serves_token_less_requests() {
    let dir = tempfile::tempdir().unwrap();
    let root = uuid::Uuid::new_v4().to_string();
    let mut acl = AclConfig {
        enabled: true,
        default_policy: AclDefaultPolicy::Deny,
        ..Default::default()
    };
    acl.tokens.initial_management = root.clone();
    acl.tokens.default = root.clone();
    let api = agent(acl, dir.path()).await;
    common::inproc::until("the default token", || async {
        api.put("/v1/kv/k", "v", None).await.status == 200
    })
    .await;
    // A token the request carries replaces the default one.
    let a = api.get("/v1/kv/k", Some("anonymous")).await;
    assert_eq!(a.status, 403, "{}", a.body);
}

#[actix_rt::test]
async fn with_acls_off_nothing_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let api = agent(AclConfig::default(), dir.path()).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    for token in [None, Some(unknown.as_str())] {
        let a = api.put("/v1/kv/db/x", "1", token).await;
        assert_eq!((a.status, a.body.as_str()), (200, "true"));
        let a = api.get("/v1/kv/?recurse", token).await;
        assert_eq!(a.json().as_array().unwrap().len(), 1);
        assert!(!a.filtered);
    }
}
