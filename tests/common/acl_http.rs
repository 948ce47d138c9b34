//! The HTTP client the in-process ACL tests share: one request helper
//! that keeps what ACL decisions show on an answer (status, the
//! filtered-by-ACLs header, the default-policy header, body), and a
//! deny-by-default agent whose management token is installed.

#![allow(dead_code)]

use std::path::Path;

use meridian::agent::AgentHandle;
use meridian::config::{AclConfig, AclDefaultPolicy};
use serde_json::Value;

pub const FILTERED: &str = "X-Consul-Results-Filtered-By-ACLs";
pub const POLICY_HEADER: &str = "X-Consul-Default-ACL-Policy";

/// What an answer brought: status, the filtered header, the
/// default-policy header, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub filtered: bool,
    pub policy: Option<String>,
    pub body: String,
}

impl Answer {
    /// A 200 answer's JSON.
    pub fn json(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.body);
        serde_json::from_str(&self.body).expect("json")
    }

    /// Asserts a 200, whatever the body.
    pub fn json_ok(&self) {
        assert_eq!(self.status, 200, "{}", self.body);
    }

    /// Asserts a refusal whose text names `perm`.
    pub fn denied(&self, perm: &str) {
        assert_eq!(self.status, 403, "{}", self.body);
        assert!(
            self.body.starts_with("Permission denied") && self.body.contains(perm),
            "{perm}: {}",
            self.body
        );
    }

    /// Status and body, for tests that compare both at once.
    pub fn pair(&self) -> (u16, String) {
        (self.status, self.body.clone())
    }
}

/// What a request carries. JSON `null` means no body, so a JSON-speaking
/// test can say "nothing" without a second helper; text and bytes are
/// sent as given, even when empty.
pub trait IntoBody {
    fn into_body(self) -> Option<Vec<u8>>;
}

impl IntoBody for () {
    fn into_body(self) -> Option<Vec<u8>> {
        None
    }
}

impl IntoBody for &str {
    fn into_body(self) -> Option<Vec<u8>> {
        Some(self.as_bytes().to_vec())
    }
}

impl IntoBody for String {
    fn into_body(self) -> Option<Vec<u8>> {
        Some(self.into_bytes())
    }
}

impl IntoBody for &String {
    fn into_body(self) -> Option<Vec<u8>> {
        Some(self.as_bytes().to_vec())
    }
}

impl IntoBody for &[u8] {
    fn into_body(self) -> Option<Vec<u8>> {
        Some(self.to_vec())
    }
}

impl IntoBody for &Vec<u8> {
    fn into_body(self) -> Option<Vec<u8>> {
        Some(self.clone())
    }
}

impl<const N: usize> IntoBody for &[u8; N] {
    fn into_body(self) -> Option<Vec<u8>> {
        Some(self.to_vec())
    }
}

impl IntoBody for Value {
    fn into_body(self) -> Option<Vec<u8>> {
        (!self.is_null()).then(|| self.to_string().into_bytes())
    }
}

/// An agent's HTTP API.
#[derive(Clone)]
pub struct Api {
    /// `http://ip:port`.
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(base: impl Into<String>) -> Api {
        Api {
            base: base.into(),
            client: reqwest::Client::new(),
        }
    }

    /// `method` (a `reqwest::Method` or its name) on `path`, with
    /// `token` as `X-Consul-Token` when given.
    pub async fn call(
        &self,
        method: impl AsRef<str>,
        path: &str,
        body: impl IntoBody,
        token: Option<&str>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_ref().as_bytes()).expect("method");
        let mut r = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body.into_body() {
            r = r.body(b);
        }
        if let Some(t) = token {
            r = r.header("X-Consul-Token", t);
        }
        let r = r.send().await.expect("request");
        let header = |name: &str| r.headers().get(name).cloned();
        let filtered = header(FILTERED).is_some_and(|v| v == "true");
        let policy = header(POLICY_HEADER).map(|v| v.to_str().expect("ascii header").to_string());
        Answer {
            status: r.status().as_u16(),
            filtered,
            policy,
            body: String::from_utf8_lossy(&r.bytes().await.expect("body")).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call("GET", path, (), token).await
    }

    pub async fn put(&self, path: &str, body: impl IntoBody, token: Option<&str>) -> Answer {
        self.call("PUT", path, body, token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        self.call("DELETE", path, (), token).await
    }

    /// How many objects a list endpoint shows `root` (a 200 is asserted).
    pub async fn count(&self, path: &str, root: &str) -> usize {
        let list = self.get(path, Some(root)).await.json();
        list.as_array().expect("a list").len()
    }

    /// Waits until `secret` resolves (`/v1/acl/token/self`): the leader
    /// installs the initial management token a moment after it is elected.
    pub async fn until_token(&self, secret: &str) {
        super::inproc::until("the management token", || async {
            self.get("/v1/acl/token/self", Some(secret)).await.status == 200
        })
        .await;
    }
}

/// ACLs on, deny by default, `root` the initial management token.
pub fn deny_config(root: &str) -> AclConfig {
    let mut acl = AclConfig {
        enabled: true,
        default_policy: AclDefaultPolicy::Deny,
        ..Default::default()
    };
    acl.tokens.initial_management = root.to_string();
    acl
}

/// A deny-by-default dev agent and its management secret, once the leader
/// has installed it.
pub async fn deny_agent(data_dir: &Path) -> (Api, String) {
    let (_handle, api, root) = deny_server(data_dir).await;
    (api, root)
}

/// [`deny_agent`] with its handle.
pub async fn deny_server(data_dir: &Path) -> (AgentHandle, Api, String) {
    let root = uuid::Uuid::new_v4().to_string();
    let (handle, base) = super::inproc::acl_dev_server(deny_config(&root), data_dir).await;
    let api = Api::new(base);
    api.until_token(&root).await;
    (handle, api, root)
}
