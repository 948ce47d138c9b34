//! Starts the built `meridian` binary as a user would, on free loopback
//! ports, and tears it down (SIGKILL) when dropped. `inproc` starts agents
//! inside the test process instead.

#![allow(dead_code)]

pub mod inproc;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_meridian");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub struct TestAgent {
    pub http: String,
    pub dns_port: u16,
    pub serf_lan: u16,
    pub serf_wan: u16,
    /// Server RPC port (a server's Raft address is `127.0.0.1:server_port`).
    pub server_port: u16,
    /// Clients have no leader to wait for.
    client: bool,
    pub node: String,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    _logdir: tempfile::TempDir,
}

impl TestAgent {
    /// `meridian agent -dev` with `extra` flags.
    pub fn dev(extra: &[&str]) -> TestAgent {
        let mut args = vec!["-dev".to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::start(args)
    }

    /// A persisted single server that elects itself.
    pub fn server(data_dir: &Path) -> TestAgent {
        Self::server_with(data_dir, &[])
    }

    /// `server` with more flags (`-datacenter`, `-join-wan`...).
    pub fn server_with(data_dir: &Path, extra: &[&str]) -> TestAgent {
        let args = [
            "-server",
            "-bootstrap-expect",
            "1",
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
            "-data-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([data_dir.display().to_string()])
        .chain(extra.iter().map(|s| s.to_string()))
        .collect();
        Self::start(args)
    }

    /// A client agent that joins the pool at `join` (ip:port).
    pub fn client(data_dir: &Path, join: &str) -> TestAgent {
        Self::client_with(data_dir, join, &[])
    }

    pub fn client_with(data_dir: &Path, join: &str, extra: &[&str]) -> TestAgent {
        let args = [
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
            "-join",
            join,
            "-retry-interval",
            "1s",
            "-data-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([data_dir.display().to_string()])
        .chain(extra.iter().map(|s| s.to_string()))
        .collect();
        Self::start_as(args, true)
    }

    /// A server with `-bootstrap-expect N` that joins `join` if given. It
    /// cannot have a leader alone, so readiness is only "answering".
    pub fn server_expect(data_dir: &Path, expect: u32, join: Option<&str>) -> TestAgent {
        Self::server_expect_with(data_dir, expect, join, &[])
    }

    /// `server_expect` with more flags.
    pub fn server_expect_with(
        data_dir: &Path,
        expect: u32,
        join: Option<&str>,
        extra: &[&str],
    ) -> TestAgent {
        let mut args: Vec<String> = [
            "-server",
            "-bootstrap-expect",
            &expect.to_string(),
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
            "-retry-interval",
            "1s",
            "-data-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(data_dir.display().to_string());
        if let Some(j) = join {
            args.push("-join".into());
            args.push(j.into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::start_as(args, true)
    }

    /// An agent started exactly with `args` (default ports unless they
    /// say otherwise), its HTTP API at `http`; ready once it answers.
    pub fn with_args(args: &[&str], http: &str, node: &str) -> TestAgent {
        let logdir = tempfile::tempdir().expect("tempdir");
        let log = logdir.path().join("agent.log");
        let mut a = TestAgent {
            http: http.to_string(),
            dns_port: 8600,
            serf_lan: 8301,
            serf_wan: 8302,
            server_port: 8300,
            client: true,
            node: node.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
            log,
            child: None,
            _logdir: logdir,
        };
        a.spawn();
        a
    }

    /// Restarts with other flags (same log).
    pub fn restart_with(&mut self, args: &[&str]) {
        self.kill();
        self.args = args.iter().map(|s| s.to_string()).collect();
        self.client = true;
        self.spawn();
    }

    fn start(args: Vec<String>) -> TestAgent {
        Self::start_as(args, false)
    }

    /// Free ports are found by binding port 0 and letting go, so another
    /// test process can take one first: an agent that exits with "address
    /// in use" is started again on fresh ports (at most three times).
    fn start_as(args: Vec<String>, client: bool) -> TestAgent {
        let mut tries = 0;
        loop {
            tries += 1;
            let mut a = Self::configure(args.clone(), client);
            a.spawn_child();
            match a.try_ready() {
                Ok(()) => return a,
                Err(e) if tries < 3 && e.contains("in use") => {
                    a.kill();
                    continue;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn configure(mut args: Vec<String>, client: bool) -> TestAgent {
        let http_port = free_port();
        let dns_port = free_port();
        let serf_lan = free_port();
        let serf_wan = free_port();
        let server_port = free_port();
        let node = format!("node-{http_port}");
        for (flag, port) in [
            ("-http-port", http_port),
            ("-dns-port", dns_port),
            ("-server-port", server_port),
            ("-serf-lan-port", serf_lan),
            ("-serf-wan-port", serf_wan),
        ] {
            args.push(flag.into());
            args.push(port.to_string());
        }
        args.push("-node".into());
        args.push(node.clone());
        let logdir = tempfile::tempdir().expect("tempdir");
        let log = logdir.path().join("agent.log");
        TestAgent {
            http: format!("127.0.0.1:{http_port}"),
            dns_port,
            serf_lan,
            serf_wan,
            server_port,
            client,
            node,
            args,
            log,
            child: None,
            _logdir: logdir,
        }
    }

    fn spawn(&mut self) {
        self.spawn_child();
        if let Err(e) = self.try_ready() {
            panic!("{e}");
        }
    }

    fn spawn_child(&mut self) {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(BIN)
            .arg("agent")
            .args(&self.args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn meridian");
        self.child = Some(child);
    }

    /// Ready = a leader exists and this agent is registered (serfHealth).
    fn try_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (url, needle) = if self.client {
            (format!("http://{}/v1/agent/self", self.http), "NodeName")
        } else {
            (
                format!("http://{}/v1/health/node/{}", self.http, self.node),
                "serfHealth",
            )
        };
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!("agent exited with {status}:\n{}", self.log_tail()));
            }
            if let Ok(r) = reqwest::blocking::get(&url) {
                if r.text().map(|t| t.contains(needle)).unwrap_or(false) {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("agent not ready in 30 s:\n{}", self.log_tail()))
    }

    /// Everything the agent has logged so far (all its runs).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        s.chars()
            .rev()
            .take(4000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal (SIGINT, SIGTERM...) and waits for the agent to exit.
    pub fn signal(&mut self, sig: i32) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(c.id() as i32, sig) };
        c.wait().ok()
    }

    /// Sends a signal without waiting (SIGSTOP/SIGCONT: a frozen agent
    /// looks like one behind a network partition).
    pub fn signal_no_wait(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// Starts the same agent again and waits only until it answers.
    pub fn restart_no_wait(&mut self) {
        self.kill();
        self.client = true;
        self.spawn();
    }

    /// Starts the same agent again (same flags, same ports, same data).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// Runs a CLI command against this agent.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_stdin(args, None)
    }

    pub fn cli_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .args(args)
            .env("MERIDIAN_HTTP_ADDR", &self.http)
            .env_remove("CONSUL_HTTP_ADDR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cli");
        if let (Some(data), Some(mut s)) = (stdin, child.stdin.take()) {
            s.write_all(data).expect("stdin");
        }
        child.wait_with_output().expect("cli output")
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

impl TestAgent {
    /// GET a path and decode its JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        reqwest::blocking::get(self.url(path))
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// Polls `check` until it holds or `secs` pass (no timing assertion: the
/// bound only keeps a broken run from hanging).
pub fn wait_for(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The leader's address as `/v1/status/leader` says it (empty: none).
pub fn leader(a: &TestAgent) -> String {
    reqwest::blocking::get(a.url("/v1/status/leader"))
        .and_then(|r| r.json::<String>())
        .unwrap_or_default()
}

/// Three servers with `-bootstrap-expect 3`, once they agree on a leader.
pub fn three_servers(dirs: &[tempfile::TempDir]) -> Vec<TestAgent> {
    three_servers_with(dirs, &[])
}

/// `three_servers` with more flags for each.
pub fn three_servers_with(dirs: &[tempfile::TempDir], extra: &[&str]) -> Vec<TestAgent> {
    let started = Instant::now();
    let s1 = TestAgent::server_expect_with(dirs[0].path(), 3, None, extra);
    let seed = format!("127.0.0.1:{}", s1.serf_lan);
    let s2 = TestAgent::server_expect_with(dirs[1].path(), 3, Some(&seed), extra);
    let s3 = TestAgent::server_expect_with(dirs[2].path(), 3, Some(&seed), extra);
    let servers = vec![s1, s2, s3];
    wait_for("one leader seen by all three", 30, || {
        let l = leader(&servers[0]);
        !l.is_empty() && servers.iter().all(|s| leader(s) == l)
    });
    eprintln!("start to first leader: {:?}", started.elapsed());
    servers
}

/// Index of the server that says it leads.
pub fn leader_index(servers: &[TestAgent]) -> Option<usize> {
    servers.iter().position(|s| {
        reqwest::blocking::Client::new()
            .get(s.url("/v1/agent/self"))
            .timeout(Duration::from_secs(2))
            .send()
            .and_then(|r| r.json::<serde_json::Value>())
            .is_ok_and(|v| v["Stats"]["consul"]["leader"] == "true")
    })
}
