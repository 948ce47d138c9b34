//! The HTTP client every command uses: address from `-http-addr`,
//! `MERIDIAN_HTTP_ADDR` or `CONSUL_HTTP_ADDR`, HTTPS with Consul's TLS
//! flags (see [`TlsArgs`]); `-datacenter`, `-stale`, `-token` and
//! `-token-file` (and their environment variables, see [`TokenArgs`]) as
//! Consul's CLI takes them.

use anyhow::{anyhow, Context, Result};
use serde_json::Value;

use crate::api::{enc, TlsArgs, TokenArgs, TOKEN_HEADER};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct HttpArgs {
    /// The agent's HTTP address (default 127.0.0.1:8500; `https://` for
    /// HTTPS).
    #[arg(long = "http-addr")]
    pub http_addr: Option<String>,
    /// The datacenter to query (default: the agent's).
    #[arg(long)]
    pub datacenter: Option<String>,
    /// Let any server answer, even without a leader.
    #[arg(long)]
    pub stale: bool,
    #[command(flatten)]
    pub auth: TokenArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Clone)]
pub struct Client {
    base: String,
    dc: Option<String>,
    stale: bool,
    token: Option<String>,
    /// The TLS it speaks HTTPS with, for code that makes its own client.
    tls: Option<crate::tls::ApiClientTls>,
    http: reqwest::blocking::Client,
}

pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// `X-Consul-Index` (0 when absent), for blocking queries.
    pub index: u64,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).context("the agent answered with invalid JSON")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_string()
    }
}

impl Client {
    pub fn new(args: &HttpArgs) -> Result<Client> {
        let target = args.tls.target(args.http_addr.as_deref())?;
        let mut http =
            reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(660));
        if let Some(tls) = target.rustls()? {
            http = http.use_preconfigured_tls(tls);
        }
        let http = http.build()?;
        Ok(Client {
            base: target.base,
            tls: target.tls,
            dc: args.datacenter.clone(),
            stale: args.stale,
            token: args.auth.resolve()?,
            http,
        })
    }

    /// The ACL token this client sends, for code that builds its own
    /// requests.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The same client sending `token` instead (for a command that reads
    /// with one token about another).
    pub fn with_token(&self, token: Option<String>) -> Client {
        Client {
            token,
            ..self.clone()
        }
    }

    /// `http://host:port` (or `https://`), for code that builds its own
    /// requests.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// How this client speaks HTTPS (None over plaintext).
    pub fn tls(&self) -> Option<&crate::tls::ApiClientTls> {
        self.tls.as_ref()
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut q: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.to_string()
                } else {
                    format!("{k}={}", enc(v))
                }
            })
            .collect();
        if let Some(dc) = &self.dc {
            q.push(format!("dc={}", enc(dc)));
        }
        if self.stale {
            q.push("stale".into());
        }
        if q.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{}", self.base, q.join("&"))
        }
    }

    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        let mut req = self.http.request(method, self.url(path, query));
        if let Some(t) = &self.token {
            req = req.header(TOKEN_HEADER, t);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req
            .send()
            .map_err(|e| anyhow!("Error querying agent: {e}"))?;
        let status = resp.status().as_u16();
        let index = resp
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .map_err(|e| anyhow!("Error reading the agent's answer: {e}"))?
            .to_vec();
        Ok(Reply {
            status,
            body,
            index,
            headers,
        })
    }

    /// A call whose non-2xx answers (other than those in `ok`) are errors.
    pub fn call_ok(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
        ok: &[u16],
    ) -> Result<Reply> {
        let r = self.call(method, path, query, body)?;
        if (200..300).contains(&r.status) || ok.contains(&r.status) {
            Ok(r)
        } else {
            Err(anyhow!(
                "Unexpected response code: {} ({})",
                r.status,
                r.text()
            ))
        }
    }

    /// A GET whose body is read as it arrives, with no deadline
    /// (`monitor` follows the agent's log until interrupted).
    pub fn stream(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::blocking::Response> {
        // reqwest's blocking client takes no "never": a century will do.
        let forever = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
        let mut req = self.http.get(self.url(path, query)).timeout(forever);
        if let Some(t) = &self.token {
            req = req.header(TOKEN_HEADER, t);
        }
        req.send().map_err(|e| anyhow!("Error querying agent: {e}"))
    }

    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        self.call_ok(reqwest::Method::GET, path, query, None, &[])?
            .json()
    }
}
