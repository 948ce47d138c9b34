//! `meridian lock [-n=N] PREFIX CHILD...`: runs CHILD while holding a lock
//! (or one of N semaphore slots) under PREFIX, with Consul's key layout so
//! that Consul's own `lock` and ours exclude each other:
//!
//! - N = 1: the session acquires `PREFIX/.lock` (flags `LOCK_FLAG`);
//! - N > 1: the session holds a contender key `PREFIX/<session>` and puts
//!   itself into `PREFIX/.lock`'s `Holders` with a CAS write, once fewer
//!   than `Limit` live sessions hold it.
//!
//! The session (TTL 15 s, renewed every half TTL) is tied to the agent's
//! node, so a dead agent loses the lock after its `serfHealth` fails and
//! the lock-delay passes. A monitor thread watches the lock with blocking
//! queries; if it is lost (or the agent stops answering `-monitor-retry`
//! times) the child is terminated. When the child exits the lock is
//! released and the session destroyed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use super::{Client, HttpArgs};
use crate::api::enc;

/// Consul's `api.LockFlagValue` and `api.SemaphoreFlagValue`.
const LOCK_FLAG: u64 = 0x2ddc_cbc0_58a5_0c18;
const SEMAPHORE_FLAG: u64 = 0xe0f6_9a2b_aa41_4de0;
const SESSION_TTL: &str = "15s";
/// How long to wait before trying again while a released lock is still in
/// its lock-delay (the key shows no holder, yet acquiring fails).
const RETRY: Duration = Duration::from_millis(500);
const MONITOR_RETRY_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// How many holders at once (a semaphore when more than one).
    #[arg(short = 'n', long = "n", default_value_t = 1)]
    limit: u32,
    /// The session's name.
    #[arg(long)]
    name: Option<String>,
    /// Give the child this process's stdin.
    #[arg(long = "pass-stdin")]
    pass_stdin: bool,
    /// Run the child through a shell (`sh -c`).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    shell: bool,
    /// Give up acquiring after this long (0: wait forever).
    #[arg(long, default_value = "0s")]
    timeout: String,
    /// Failed monitor queries tolerated before the lock counts as lost.
    #[arg(long = "monitor-retry", default_value_t = 3)]
    monitor_retry: u32,
    /// Exit with the child's exit code.
    #[arg(long = "child-exit-code")]
    child_exit_code: bool,
    #[arg(long)]
    verbose: bool,
    /// The KV prefix of the lock.
    prefix: String,
    /// The command to run while holding the lock.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    child: Vec<String>,
}

pub fn run(a: Args) -> Result<i32> {
    if a.limit == 0 {
        bail!("Lock holder limit must be positive");
    }
    let timeout = crate::config::duration::parse_go_duration(&a.timeout)
        .map_err(|e| anyhow!("Invalid -timeout: {e}"))?;
    let client = Client::new(&a.http)?;
    let prefix = a.prefix.trim_matches('/').to_string();
    if prefix.is_empty() {
        bail!("Lock prefix must not be empty");
    }
    let lock = Lock {
        client: client.clone(),
        prefix: prefix.clone(),
        limit: a.limit,
        session: create_session(&client, a.name.as_deref(), &prefix)?,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let renewer = spawn_renewer(client.clone(), lock.session.clone(), stop.clone());
    let code = hold_and_run(&lock, &a, timeout, &stop);
    stop.store(true, Ordering::SeqCst);
    let _ = renewer.join();
    lock.release();
    let _ = client.call(
        reqwest::Method::PUT,
        &format!("/v1/session/destroy/{}", lock.session),
        &[],
        None,
    );
    code
}

fn hold_and_run(lock: &Lock, a: &Args, timeout: Duration, stop: &Arc<AtomicBool>) -> Result<i32> {
    if a.verbose {
        eprintln!("Setting up lock at path: {}/.lock", lock.prefix);
        eprintln!("Attempting lock acquisition");
    }
    let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
    if !lock.acquire(deadline, stop)? {
        bail!("Shutdown triggered or timeout during lock acquisition");
    }
    if a.verbose {
        eprintln!("Lock acquired; starting the child");
    }
    let mut child = spawn_child(&a.child, a.shell, a.pass_stdin)?;
    let (lost_tx, lost_rx) = mpsc::channel();
    let monitor = {
        let (lock, stop, retries) = (lock.clone(), stop.clone(), a.monitor_retry);
        std::thread::spawn(move || {
            if !lock.monitor(retries, &stop) {
                let _ = lost_tx.send(());
            }
        })
    };
    let terminated = super::termination_flag();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        let lost = lost_rx.try_recv().is_ok();
        if lost || terminated.load(Ordering::SeqCst) {
            if lost {
                eprintln!("Lock lost, killing child");
            }
            terminate(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stop.store(true, Ordering::SeqCst);
    drop(monitor);
    match status {
        Some(s) if a.child_exit_code => Ok(s.code().unwrap_or(2)),
        Some(_) => Ok(0),
        None => Ok(1),
    }
}

fn spawn_child(args: &[String], shell: bool, pass_stdin: bool) -> Result<std::process::Child> {
    let mut cmd = if shell {
        let mut c = std::process::Command::new("sh");
        c.arg("-c").arg(args.join(" "));
        c
    } else {
        let mut c = std::process::Command::new(&args[0]);
        c.args(&args[1..]);
        c
    };
    if !pass_stdin {
        cmd.stdin(std::process::Stdio::null());
    }
    cmd.spawn()
        .with_context(|| format!("Error starting handler {:?}", args.join(" ")))
}

/// SIGTERM, then SIGKILL if the child does not exit within 5 s.
fn terminate(child: &mut std::process::Child) {
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn create_session(client: &Client, name: Option<&str>, prefix: &str) -> Result<String> {
    let name = name
        .map(str::to_string)
        .unwrap_or_else(|| format!("Meridian lock for {prefix}"));
    let body = json!({"Name": name, "TTL": SESSION_TTL, "Behavior": "release"});
    let r = client
        .call_ok(
            reqwest::Method::PUT,
            "/v1/session/create",
            &[],
            Some(body.to_string().into_bytes()),
            &[],
        )
        .map_err(|e| anyhow!("Error creating the lock's session: {e}"))?;
    r.json()?["ID"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("Error creating the lock's session: no ID in the answer"))
}

fn spawn_renewer(
    client: Client,
    session: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut next = Instant::now() + Duration::from_millis(7500);
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            if Instant::now() < next {
                continue;
            }
            // A failed renewal is retried soon; the monitor decides
            // whether the lock is still held.
            let ok = client
                .call(
                    reqwest::Method::PUT,
                    &format!("/v1/session/renew/{session}"),
                    &[],
                    None,
                )
                .is_ok_and(|r| r.status == 200);
            next = Instant::now()
                + if ok {
                    Duration::from_millis(7500)
                } else {
                    Duration::from_secs(1)
                };
        }
    })
}

#[derive(Clone)]
struct Lock {
    client: Client,
    prefix: String,
    limit: u32,
    session: String,
}

impl Lock {
    fn lock_key(&self) -> String {
        format!("/v1/kv/{}/.lock", enc(&self.prefix))
    }

    fn contender_key(&self) -> String {
        format!("/v1/kv/{}/{}", enc(&self.prefix), self.session)
    }

    fn put(&self, path: &str, query: &[(&str, String)], body: Vec<u8>) -> Result<bool> {
        let r = self
            .client
            .call_ok(reqwest::Method::PUT, path, query, Some(body), &[])?;
        Ok(r.text() == "true")
    }

    /// Blocking GET; `None` when the key does not exist.
    fn get(&self, path: &str, query: &[(&str, String)]) -> Result<(u64, Option<Value>)> {
        let r = self
            .client
            .call_ok(reqwest::Method::GET, path, query, None, &[404])?;
        let index = r.index;
        if r.status == 404 {
            return Ok((index, None));
        }
        Ok((index, Some(r.json()?)))
    }

    fn acquire(&self, deadline: Option<Instant>, stop: &AtomicBool) -> Result<bool> {
        let mut index = 0u64;
        if self.limit > 1 {
            // Once: rewriting it would wake our own blocking reads.
            let query = [
                ("acquire", self.session.clone()),
                ("flags", SEMAPHORE_FLAG.to_string()),
            ];
            if !self.put(&self.contender_key(), &query, Vec::new())? {
                bail!("Failed to make contender entry");
            }
        }
        loop {
            if stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            let got = if self.limit == 1 {
                self.try_lock(&mut index)?
            } else {
                self.try_semaphore(&mut index)?
            };
            if got {
                return Ok(true);
            }
        }
    }

    fn wait_query(&self, index: u64) -> Vec<(&'static str, String)> {
        vec![("index", index.to_string()), ("wait", "15s".into())]
    }

    /// One attempt at the single lock; waits for a change when it is held.
    fn try_lock(&self, index: &mut u64) -> Result<bool> {
        let query = [
            ("acquire", self.session.clone()),
            ("flags", LOCK_FLAG.to_string()),
        ];
        if self.put(&self.lock_key(), &query, Vec::new())? {
            return Ok(true);
        }
        let (i, entry) = self.get(&self.lock_key(), &self.wait_query(*index))?;
        let held = entry
            .as_ref()
            .and_then(|e| e[0]["Session"].as_str())
            .is_some_and(|s| !s.is_empty());
        if let Some(e) = &entry {
            if e[0]["Flags"].as_u64() != Some(LOCK_FLAG) {
                bail!("Existing key does not match lock use");
            }
        }
        if held {
            *index = i;
        } else {
            // Free but refused: the lock-delay of an invalidated holder.
            std::thread::sleep(RETRY);
        }
        Ok(false)
    }

    /// One attempt at a semaphore slot; waits for a change when all are held.
    fn try_semaphore(&self, index: &mut u64) -> Result<bool> {
        let prefix_path = format!("/v1/kv/{}/", enc(&self.prefix));
        let mut q = self.wait_query(*index);
        q.push(("recurse", String::new()));
        let (i, entries) = self.get(&prefix_path, &q)?;
        *index = i;
        let entries = entries.unwrap_or(Value::Array(vec![]));
        let (lock, modify_index) = self.semaphore_state(&entries)?;
        let mut holders = lock.holders;
        if holders.len() as u32 >= self.limit {
            return Ok(false);
        }
        holders.push(self.session.clone());
        let ok = self.write_holders(holders, modify_index)?;
        if !ok {
            // Someone else changed it between our read and write.
            *index = 0;
        }
        Ok(ok)
    }

    /// The `.lock` entry's holders that still have a live contender key,
    /// and its ModifyIndex (0 when absent).
    fn semaphore_state(&self, entries: &Value) -> Result<(SemaphoreLock, u64)> {
        let lock_key = format!("{}/.lock", self.prefix);
        let empty = Vec::new();
        let entries = entries.as_array().unwrap_or(&empty);
        let live: Vec<String> = entries
            .iter()
            .filter(|e| e["Key"].as_str() != Some(lock_key.as_str()))
            .filter_map(|e| e["Session"].as_str().map(str::to_string))
            .filter(|s| !s.is_empty())
            .collect();
        let Some(entry) = entries
            .iter()
            .find(|e| e["Key"].as_str() == Some(lock_key.as_str()))
        else {
            return Ok((SemaphoreLock::default(), 0));
        };
        if entry["Flags"].as_u64() != Some(SEMAPHORE_FLAG) {
            bail!("Existing key does not match semaphore use");
        }
        let raw = entry["Value"].as_str().unwrap_or_default();
        let bytes = base64_decode(raw)?;
        let v: Value = serde_json::from_slice(&bytes).context("Failed to decode semaphore lock")?;
        let limit = v["Limit"].as_u64().unwrap_or(0);
        if limit != u64::from(self.limit) {
            bail!(
                "Semaphore limit conflict (lock: {limit}, local: {})",
                self.limit
            );
        }
        let holders = v["Holders"]
            .as_object()
            .map(|m| m.keys().filter(|h| live.contains(h)).cloned().collect())
            .unwrap_or_default();
        let modify_index = entry["ModifyIndex"].as_u64().unwrap_or(0);
        Ok((SemaphoreLock { holders }, modify_index))
    }

    /// Watches the lock until it is lost (false) or `stop` is set (true).
    fn monitor(&self, retries: u32, stop: &AtomicBool) -> bool {
        let mut index = 0u64;
        let mut failures = 0u32;
        while !stop.load(Ordering::SeqCst) {
            let held = if self.limit == 1 {
                self.get(&self.lock_key(), &self.wait_query(index))
                    .map(|(i, e)| {
                        index = i;
                        e.and_then(|e| e[0]["Session"].as_str().map(str::to_string))
                            .as_deref()
                            == Some(self.session.as_str())
                    })
            } else {
                let mut q = self.wait_query(index);
                q.push(("recurse", String::new()));
                self.get(&format!("/v1/kv/{}/", enc(&self.prefix)), &q)
                    .and_then(|(i, e)| {
                        index = i;
                        let (lock, _) = self.semaphore_state(&e.unwrap_or(Value::Array(vec![])))?;
                        Ok(lock.holders.contains(&self.session))
                    })
            };
            match held {
                Ok(true) => failures = 0,
                Ok(false) => return false,
                Err(_) => {
                    failures += 1;
                    if failures > retries {
                        return false;
                    }
                    std::thread::sleep(MONITOR_RETRY_WAIT);
                }
            }
        }
        true
    }

    /// Replaces the semaphore's holders if `.lock` is still at
    /// `modify_index` (0: not yet written).
    fn write_holders(&self, holders: Vec<String>, modify_index: u64) -> Result<bool> {
        let holders: serde_json::Map<String, Value> = holders
            .into_iter()
            .map(|h| (h, Value::Bool(true)))
            .collect();
        let body = json!({"Limit": self.limit, "Holders": holders});
        let cas = [
            ("cas", modify_index.to_string()),
            ("flags", SEMAPHORE_FLAG.to_string()),
        ];
        self.put(&self.lock_key(), &cas, body.to_string().into_bytes())
    }

    /// Gives the lock (or slot) back; best effort, the session's end frees
    /// it anyway.
    fn release(&self) {
        if self.limit == 1 {
            let _ = self.put(
                &self.lock_key(),
                &[
                    ("release", self.session.clone()),
                    ("flags", LOCK_FLAG.to_string()),
                ],
                Vec::new(),
            );
            return;
        }
        for _ in 0..5 {
            let prefix_path = format!("/v1/kv/{}/", enc(&self.prefix));
            let Ok((_, Some(entries))) = self.get(&prefix_path, &[("recurse", String::new())])
            else {
                break;
            };
            let Ok((lock, modify_index)) = self.semaphore_state(&entries) else {
                break;
            };
            if !lock.holders.contains(&self.session) || modify_index == 0 {
                break;
            }
            let holders = lock.holders.into_iter().filter(|h| *h != self.session);
            if self
                .write_holders(holders.collect(), modify_index)
                .unwrap_or(false)
            {
                break;
            }
        }
        let _ = self
            .client
            .call(reqwest::Method::DELETE, &self.contender_key(), &[], None);
    }
}

#[derive(Default)]
struct SemaphoreLock {
    holders: Vec<String>,
}

fn base64_decode(s: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .context("Failed to decode semaphore lock")
}
