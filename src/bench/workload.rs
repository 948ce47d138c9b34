//! The operations a benchmark repeats, against Meridian's HTTP API and DNS
//! or etcd's HTTP/JSON gateway (`/v3/kv/put`, `/v3/kv/range`), each with
//! what it needs prepared first (keys to read, instances to find).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hickory_proto::op::{Message, Query as DnsQuery, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Meridian,
    Etcd,
}

/// Read consistency: Consul's modes; for etcd, `stale` is a serializable
/// range and the others linearizable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Default,
    Stale,
    Consistent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    KvPut,
    KvGet,
    KvCas,
    CatalogRegister,
    HealthService,
    Blocking,
    Dns,
    CrossDc,
}

impl Workload {
    pub fn parse(s: &str) -> Option<Workload> {
        Some(match s {
            "kv-put" => Workload::KvPut,
            "kv-get" => Workload::KvGet,
            "kv-cas" => Workload::KvCas,
            "catalog-register" => Workload::CatalogRegister,
            "health-service" => Workload::HealthService,
            "blocking" => Workload::Blocking,
            "dns" => Workload::Dns,
            "cross-dc" => Workload::CrossDc,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Workload::KvPut => "kv-put",
            Workload::KvGet => "kv-get",
            Workload::KvCas => "kv-cas",
            Workload::CatalogRegister => "catalog-register",
            Workload::HealthService => "health-service",
            Workload::Blocking => "blocking",
            Workload::Dns => "dns",
            Workload::CrossDc => "cross-dc",
        }
    }
}

pub const SERVICE: &str = "bench-svc";

/// Everything an operation needs, shared by every client.
pub struct Ctx {
    pub http: reqwest::Client,
    /// `http://host:port` of each server; client i uses `bases[i % len]`.
    pub bases: Vec<String>,
    pub target: Target,
    pub workload: Workload,
    pub mode: Mode,
    pub value: Vec<u8>,
    pub keys: u64,
    pub instances: u64,
    /// `?filter=` for health-service reads.
    pub filter: Option<String>,
    pub dc: Option<String>,
    pub dns: SocketAddr,
    pub dns_name: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn key(prefix: &str, n: u64) -> String {
    format!("bench/{prefix}{n}")
}

/// A short, stable name for a failure (the report counts them by kind).
fn kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect refused".into()
    } else {
        "transport error".into()
    }
}

async fn check(resp: Result<reqwest::Response, reqwest::Error>) -> Result<String, String> {
    let r = resp.map_err(|e| kind(&e))?;
    let status = r.status().as_u16();
    let body = r.text().await.map_err(|e| kind(&e))?;
    if status == 200 {
        Ok(body)
    } else {
        let text: String = body.trim().chars().take(60).collect();
        Err(format!("HTTP {status}: {text}"))
    }
}

impl Ctx {
    fn base(&self, client: usize) -> &str {
        &self.bases[client % self.bases.len()]
    }

    fn read_query(&self) -> &'static str {
        match self.mode {
            Mode::Default => "",
            Mode::Stale => "?stale",
            Mode::Consistent => "?consistent",
        }
    }

    /// Writes what the reads will find.
    pub async fn prepare(&self) -> Result<(), String> {
        match self.workload {
            Workload::KvGet | Workload::CrossDc => {
                for n in 0..self.keys {
                    let k = key("k", n);
                    retried(|| self.put_kv(0, &k, &self.value, self.dc.as_deref())).await?;
                }
            }
            Workload::KvCas => {
                for n in 0..self.keys {
                    let k = key("counter", n);
                    retried(|| self.put_kv(0, &k, b"0", None)).await?;
                }
            }
            Workload::HealthService => {
                for n in 0..self.instances {
                    retried(|| self.register(0, n)).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn put_kv(
        &self,
        client: usize,
        k: &str,
        v: &[u8],
        dc: Option<&str>,
    ) -> Result<(), String> {
        let base = self.base(client);
        let resp = match self.target {
            Target::Meridian => {
                let q = dc.map(|d| format!("?dc={d}")).unwrap_or_default();
                self.http
                    .put(format!("{base}/v1/kv/{k}{q}"))
                    .body(v.to_vec())
                    .send()
                    .await
            }
            Target::Etcd => {
                self.http
                    .post(format!("{base}/v3/kv/put"))
                    .json(&json!({"key": b64(k.as_bytes()), "value": b64(v)}))
                    .send()
                    .await
            }
        };
        let body = check(resp).await?;
        if self.target == Target::Meridian && body.trim() != "true" {
            return Err(format!("PUT answered {}", body.trim()));
        }
        Ok(())
    }

    async fn register(&self, client: usize, n: u64) -> Result<(), String> {
        let reg = json!({
            "Node": format!("bench-node-{n}"),
            "Address": format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255),
            "Service": {"ID": format!("{SERVICE}-{n}"), "Service": SERVICE, "Port": 8080},
            "Check": {"CheckID": "bench", "Name": "bench", "Status": "passing",
                      "ServiceID": format!("{SERVICE}-{n}")},
        });
        let resp = self
            .http
            .put(format!("{}/v1/catalog/register", self.base(client)))
            .body(reg.to_string())
            .send()
            .await;
        check(resp).await.map(|_| ())
    }

    /// One operation of the workload (not `blocking`, which has its own
    /// loop). `seq` picks the key or instance.
    pub async fn op(
        &self,
        client: usize,
        seq: u64,
        sock: &mut Option<tokio::net::UdpSocket>,
    ) -> Result<(), String> {
        let base = self.base(client);
        match self.workload {
            Workload::KvPut => {
                let k = key("k", seq % self.keys);
                self.put_kv(client, &k, &self.value, None).await
            }
            Workload::KvGet | Workload::CrossDc => {
                let k = key("k", seq % self.keys);
                let resp = match self.target {
                    Target::Meridian => {
                        let mut url = format!("{base}/v1/kv/{k}{}", self.read_query());
                        if let Some(dc) = &self.dc {
                            url.push(if url.contains('?') { '&' } else { '?' });
                            url.push_str(&format!("dc={dc}"));
                        }
                        self.http.get(url).send().await
                    }
                    Target::Etcd => {
                        self.http
                            .post(format!("{base}/v3/kv/range"))
                            .json(&json!({"key": b64(k.as_bytes()),
                                          "serializable": self.mode == Mode::Stale}))
                            .send()
                            .await
                    }
                };
                let body = check(resp).await?;
                if self.target == Target::Etcd && !body.contains("\"kvs\"") {
                    return Err("etcd range found no key".into());
                }
                Ok(())
            }
            Workload::KvCas => {
                let k = key("counter", seq % self.keys);
                let body = check(self.http.get(format!("{base}/v1/kv/{k}")).send().await).await?;
                let v: Value = serde_json::from_str(&body).map_err(|_| "bad JSON".to_string())?;
                let index = v[0]["ModifyIndex"].as_u64().ok_or("no ModifyIndex")?;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(v[0]["Value"].as_str().unwrap_or(""))
                    .map_err(|_| "bad value".to_string())?;
                let n: u64 = String::from_utf8_lossy(&raw).parse().unwrap_or(0);
                let resp = self
                    .http
                    .put(format!("{base}/v1/kv/{k}?cas={index}"))
                    .body((n + 1).to_string())
                    .send()
                    .await;
                match check(resp).await?.trim() {
                    "true" => Ok(()),
                    _ => Err("cas conflict (someone else incremented first)".into()),
                }
            }
            Workload::CatalogRegister => self.register(client, seq % self.instances).await,
            Workload::HealthService => {
                let url = format!("{base}/v1/health/service/{SERVICE}?passing");
                let mut req = self.http.get(url);
                if let Some(f) = &self.filter {
                    req = req.query(&[("filter", f)]);
                }
                let body = check(req.send().await).await?;
                if body.len() < 3 {
                    return Err("no instances".into());
                }
                Ok(())
            }
            Workload::Dns => self.dns_op(seq, sock).await,
            Workload::Blocking => Err("blocking has its own loop".into()),
        }
    }

    async fn dns_op(
        &self,
        seq: u64,
        sock: &mut Option<tokio::net::UdpSocket>,
    ) -> Result<(), String> {
        if sock.is_none() {
            let s = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("socket: {e}"))?;
            *sock = Some(s);
        }
        let Some(s) = sock.as_ref() else {
            return Err("socket".into());
        };
        let qtype = if seq.is_multiple_of(2) {
            RecordType::A
        } else {
            RecordType::SRV
        };
        let mut m = Message::query();
        let id = (seq & 0xffff) as u16;
        m.metadata.id = id;
        m.metadata.recursion_desired = true;
        let name = Name::from_ascii(&self.dns_name).map_err(|e| format!("name: {e}"))?;
        m.add_query(DnsQuery::query(name, qtype));
        let bytes = m.to_vec().map_err(|e| format!("encode: {e}"))?;
        s.send_to(&bytes, self.dns)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(2), s.recv(&mut buf))
                .await
                .map_err(|_| "timeout".to_string())?
                .map_err(|e| format!("recv: {e}"))?;
            let r = Message::from_vec(&buf[..n]).map_err(|_| "bad answer".to_string())?;
            // A late answer to an earlier, timed-out query: keep waiting.
            if r.metadata.id != id {
                continue;
            }
            if r.metadata.response_code != ResponseCode::NoError {
                return Err(format!("rcode {}", r.metadata.response_code));
            }
            if r.answers.is_empty() {
                return Err("empty answer".into());
            }
            return Ok(());
        }
    }

    /// `blocking`: a watcher on one key; each wake-up's delay from the
    /// write (whose value is its send time in ns since the epoch).
    pub async fn watch_once(
        &self,
        client: usize,
        index: &mut u64,
    ) -> Result<Option<Duration>, String> {
        let k = key("watch/", client as u64 % self.keys);
        let url = format!("{}/v1/kv/{k}?index={}&wait=30s", self.base(client), *index);
        let r = self.http.get(url).send().await.map_err(|e| kind(&e))?;
        let new_index = r
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let status = r.status().as_u16();
        let body = r.text().await.map_err(|e| kind(&e))?;
        let woke = *index > 0 && new_index != *index;
        *index = new_index;
        if status == 404 || !woke {
            return Ok(None);
        }
        if status != 200 {
            return Err(format!("HTTP {status}"));
        }
        let v: Value = serde_json::from_str(&body).map_err(|_| "bad JSON".to_string())?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v[0]["Value"].as_str().unwrap_or(""))
            .map_err(|_| "bad value".to_string())?;
        let sent: u128 = String::from_utf8_lossy(&raw)
            .parse()
            .map_err(|_| "bad stamp".to_string())?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(Some(Duration::from_nanos(now.saturating_sub(sent) as u64)))
    }

    /// `blocking`'s writer: one key after another, stamped with the time.
    pub async fn stamp(&self, n: u64) -> Result<(), String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        self.put_kv(
            0,
            &key("watch/", n % self.keys),
            now.to_string().as_bytes(),
            None,
        )
        .await
    }

    /// After a `kv-cas` run: the counters' sum, which must equal the
    /// increments that succeeded.
    pub async fn counters_sum(&self) -> Result<u64, String> {
        let url = format!("{}/v1/kv/bench/counter?recurse", self.base(0));
        let body = check(self.http.get(url).send().await).await?;
        let v: Value = serde_json::from_str(&body).map_err(|_| "bad JSON".to_string())?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| {
                        let raw = base64::engine::general_purpose::STANDARD
                            .decode(e["Value"].as_str()?)
                            .ok()?;
                        String::from_utf8_lossy(&raw).parse::<u64>().ok()
                    })
                    .sum()
            })
            .unwrap_or(0))
    }
}

/// A preparation write, tried again for up to 30 s: a leader change or a
/// refused write on a loaded cluster (bench/kv_scale.sh's million keys)
/// is not what the workload measures, and aborted it.
async fn retried<F, Fut>(mut op: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match op().await {
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            done => return done,
        }
    }
}
