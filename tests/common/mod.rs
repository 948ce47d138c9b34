//! Starts the built `meridian` binary as a user would, on loopback ports
//! it picks itself (port 0; the harness reads them back from the agent's
//! "agent listening" log line), and tears it down (SIGKILL) when dropped.
//! `inproc` starts agents inside the test process (`acl_http`: their ACL client).

#![allow(dead_code)]

pub mod acl_http;
pub mod inproc;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_meridian");

/// The binary agents run: `MERIDIAN_AGENT_BIN` when set (to measure
/// another build, e.g. the one before a fix, with the same tests), else
/// the one cargo built.
pub fn agent_bin() -> std::ffi::OsString {
    std::env::var_os("MERIDIAN_AGENT_BIN").unwrap_or_else(|| BIN.into())
}

/// Where an agent's ports come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortSource {
    /// The caller's args say (or the defaults apply): `with_args`.
    Given,
    /// Not started yet: the first start passes 0 for every port and reads
    /// the ports bound from the log.
    Ephemeral,
    /// Read from the first start; restarts pass them again, since Raft
    /// peers know a server by its RPC address and clients joined its LAN
    /// port.
    Learned,
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
    /// Ready once a leader is known (`/v1/status/leader`, open under any
    /// ACL policy): for agents whose other reads a default-deny policy
    /// filters or refuses.
    leader_ready: bool,
    pub node: String,
    /// The flags, without the port flags the harness adds itself.
    args: Vec<String>,
    ports: PortSource,
    /// What runs the binary: empty, or a command that execs it in place
    /// (`ip netns exec <ns>`: the child's pid is still the agent's, so
    /// kill and SIGSTOP reach the agent).
    prefix: Vec<String>,
    log: PathBuf,
    /// Where the current run's output starts in `log` (runs append).
    run_start: u64,
    child: Option<Child>,
    /// Environment variables the agent runs with (restarts too).
    env: Vec<(String, String)>,
    _logdir: tempfile::TempDir,
}

/// The message of the agent's log line that lists every address it bound.
const LISTENING: &str = "agent listening";

/// The addresses an "agent listening" line names, by field (`http`,
/// `dns`, `server`, `serf_lan`, `serf_wan`; a list is comma-separated,
/// the first is taken). `None` until the line is in `log`.
fn listening_addrs(log: &str) -> Option<std::collections::HashMap<String, std::net::SocketAddr>> {
    let line = log
        .lines()
        .map(strip_ansi)
        .find(|l| l.contains(LISTENING))?;
    let fields = line.split(LISTENING).nth(1)?;
    Some(
        fields
            .split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                let first = v.split(',').next()?;
                Some((k.to_string(), first.parse().ok()?))
            })
            .collect(),
    )
}

/// The agent logs with colours even to a file: drop the escape sequences.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, then one final byte in @..~.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
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
        Self::server_with_env(data_dir, extra, &[])
    }

    /// `server_with` for a server under a default-deny ACL policy: ready
    /// once it has a leader, since its catalog reads need a token.
    pub fn acl_server_with(data_dir: &Path, extra: &[&str]) -> TestAgent {
        let args = single_server_args(data_dir, extra);
        Self::start_ready(args, false, true)
    }

    /// A client agent that joins the pool at `join` (ip:port).
    pub fn client(data_dir: &Path, join: &str) -> TestAgent {
        Self::client_with(data_dir, join, &[])
    }

    pub fn client_with(data_dir: &Path, join: &str, extra: &[&str]) -> TestAgent {
        Self::client_with_env(data_dir, join, extra, &[])
    }

    /// `client_with`, run with environment variables `env`.
    pub fn client_with_env(
        data_dir: &Path,
        join: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> TestAgent {
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
        Self::start_full(args, true, false, Vec::new(), env_vec(env))
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
        Self::server_expect_with_env(data_dir, expect, join, extra, &[])
    }

    /// `server_expect_with`, run with environment variables `env`.
    pub fn server_expect_with_env(
        data_dir: &Path,
        expect: u32,
        join: Option<&str>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> TestAgent {
        Self::server_expect_in(&[], "127.0.0.1", data_dir, expect, join, extra, env)
    }

    /// `server_expect_with_env` run under `prefix` (a command that execs
    /// the agent, e.g. `ip netns exec <ns>`) and bound to `bind` (its Raft,
    /// gossip and HTTP addresses: peers and clients reach it there).
    pub fn server_expect_in(
        prefix: &[String],
        bind: &str,
        data_dir: &Path,
        expect: u32,
        join: Option<&str>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> TestAgent {
        let mut args: Vec<String> = [
            "-server",
            "-bootstrap-expect",
            &expect.to_string(),
            "-bind",
            bind,
            "-client",
            bind,
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
        Self::start_full(args, true, false, prefix.to_vec(), env_vec(env))
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
            leader_ready: false,
            node: node.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ports: PortSource::Given,
            prefix: Vec::new(),
            log,
            run_start: 0,
            child: None,
            env: Vec::new(),
            _logdir: logdir,
        };
        a.spawn();
        a
    }

    /// Restarts with other flags (same log, same ports).
    pub fn restart_with(&mut self, args: &[&str]) {
        self.kill();
        self.args = args.iter().map(|s| s.to_string()).collect();
        self.client = true;
        self.spawn();
    }

    fn start(args: Vec<String>) -> TestAgent {
        Self::start_as(args, false)
    }

    /// Every port is 0: the agent binds ports no one else holds, so there
    /// is no race with other test processes to retry, and says which.
    fn start_as(args: Vec<String>, client: bool) -> TestAgent {
        Self::start_ready(args, client, false)
    }

    /// `server_with`, the agent run with environment variables `env`
    /// (settings Consul has no configuration key for).
    pub fn server_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> TestAgent {
        let args = single_server_args(data_dir, extra);
        Self::start_full(args, false, false, Vec::new(), env_vec(env))
    }

    fn start_ready(args: Vec<String>, client: bool, leader_ready: bool) -> TestAgent {
        Self::start_full(args, client, leader_ready, Vec::new(), Vec::new())
    }

    /// `prefix` is a command that execs the agent (`ip netns exec <ns>`),
    /// `env` variables for settings Consul has no configuration key for.
    fn start_full(
        mut args: Vec<String>,
        client: bool,
        leader_ready: bool,
        prefix: Vec<String>,
        env: Vec<(String, String)>,
    ) -> TestAgent {
        // Unique among the agents of every test process, as node names
        // once were by their (unique) HTTP port.
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let node = format!(
            "node-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        );
        args.push("-node".into());
        args.push(node.clone());
        let logdir = tempfile::tempdir().expect("tempdir");
        let log = logdir.path().join("agent.log");
        let mut a = TestAgent {
            http: String::new(),
            dns_port: 0,
            serf_lan: 0,
            serf_wan: 0,
            server_port: 0,
            client,
            leader_ready,
            node,
            args,
            ports: PortSource::Ephemeral,
            prefix,
            log,
            run_start: 0,
            child: None,
            env,
            _logdir: logdir,
        };
        a.spawn();
        a
    }

    /// The flags to start the agent with: its own, then the ports.
    fn command_args(&self) -> Vec<String> {
        let mut args = self.args.clone();
        let ports = match self.ports {
            PortSource::Given => return args,
            PortSource::Ephemeral => [0; 5],
            // A port the agent did not bind (a client's server and WAN
            // ports) is still 0: it is not used.
            PortSource::Learned => [
                self.http_port(),
                self.dns_port,
                self.server_port,
                self.serf_lan,
                self.serf_wan,
            ],
        };
        for (flag, port) in [
            "-http-port",
            "-dns-port",
            "-server-port",
            "-serf-lan-port",
            "-serf-wan-port",
        ]
        .into_iter()
        .zip(ports)
        {
            args.push(flag.into());
            args.push(port.to_string());
        }
        args
    }

    fn http_port(&self) -> u16 {
        self.http
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// Starts the agent and waits until it is ready; panics with its log
    /// tail if it is not. A restart on the ports it had can find one taken
    /// for a moment (a closing connection, another process's outgoing
    /// socket on that port): it is tried again on the same ports, since
    /// peers know the agent by them.
    fn spawn(&mut self) {
        let mut tries = 0;
        loop {
            tries += 1;
            self.spawn_child();
            let ready = if self.ports == PortSource::Ephemeral {
                self.learn_ports().and_then(|()| self.try_ready())
            } else {
                self.try_ready()
            };
            match ready {
                Ok(()) => return,
                Err(_)
                    if tries < 5
                        && self.ports != PortSource::Ephemeral
                        && self.run_log().contains("in use") =>
                {
                    self.kill();
                    std::thread::sleep(Duration::from_millis(200 * tries));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Reads the ports of an agent started on port 0 from its log line.
    fn learn_ports(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(addrs) = listening_addrs(&self.run_log()) {
                let port = |k: &str| addrs.get(k).map_or(0, |a| a.port());
                let http = addrs
                    .get("http")
                    .ok_or_else(|| format!("no HTTP address in the log:\n{}", self.log_tail()))?;
                // An agent bound to every address is reached on loopback.
                self.http = if http.ip().is_unspecified() {
                    format!("127.0.0.1:{}", http.port())
                } else {
                    http.to_string()
                };
                self.dns_port = port("dns");
                self.server_port = port("server");
                self.serf_lan = port("serf_lan");
                self.serf_wan = port("serf_wan");
                self.ports = PortSource::Learned;
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!("agent exited with {status}:\n{}", self.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no {LISTENING:?} line in 30 s (a log level above info hides it):\n{}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn spawn_child(&mut self) {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        self.run_start = out.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = match self.prefix.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(agent_bin());
                c
            }
            None => Command::new(agent_bin()),
        };
        let child = cmd
            .arg("agent")
            .args(self.command_args())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn meridian");
        self.child = Some(child);
    }

    /// The agent process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Ready = a leader exists and this agent is registered (serfHealth).
    fn try_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (url, needle) = if self.leader_ready {
            // A leader's address, `"127.0.0.1:port"`; `""` while none.
            (format!("http://{}/v1/status/leader", self.http), ":")
        } else if self.client {
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
                // Under ACLs' default deny, /v1/agent/self needs agent:read:
                // a refusal is an answer too.
                let refused = self.client && r.status() == reqwest::StatusCode::FORBIDDEN;
                if refused || r.text().map(|t| t.contains(needle)).unwrap_or(false) {
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

    /// What the current run has logged.
    fn run_log(&self) -> String {
        let all = std::fs::read(&self.log).unwrap_or_default();
        let from = (self.run_start as usize).min(all.len());
        String::from_utf8_lossy(&all[from..]).into_owned()
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

    /// How the agent exited, if it has (`None` while it runs).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Starts the same agent again and waits only until it answers.
    pub fn restart_no_wait(&mut self) {
        self.kill();
        self.client = true;
        self.spawn();
    }

    /// `restart_no_wait`, where an agent that exits while starting is an
    /// answer, not a panic (a failpoint may take it down again at once).
    pub fn try_restart_no_wait(&mut self) -> Result<(), String> {
        self.kill();
        self.client = true;
        self.spawn_child();
        self.try_ready()
    }

    /// Sets the command that execs the agent on its next start (restarts
    /// keep it): empty for the agent itself.
    pub fn set_prefix(&mut self, prefix: Vec<String>) {
        self.prefix = prefix;
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

/// The flags of a persisted single server that elects itself, then `extra`.
fn single_server_args(data_dir: &Path, extra: &[&str]) -> Vec<String> {
    [
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
    .collect()
}

fn env_vec(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Three servers with `-bootstrap-expect 3`, once they agree on a leader.
pub fn three_servers(dirs: &[tempfile::TempDir]) -> Vec<TestAgent> {
    three_servers_with(dirs, &[])
}

/// `three_servers` with more flags for each.
pub fn three_servers_with(dirs: &[tempfile::TempDir], extra: &[&str]) -> Vec<TestAgent> {
    three_servers_in(dirs, extra, &[], &[])
}

/// `three_servers_with`, each run with environment variables `env`.
pub fn three_servers_with_env(
    dirs: &[tempfile::TempDir],
    extra: &[&str],
    env: &[(&str, &str)],
) -> Vec<TestAgent> {
    three_servers_in(dirs, extra, &[], env)
}

/// `three_servers_with_env`, server `i` run under `prefixes[i]` when given
/// (a command that execs the agent: `env LD_PRELOAD=... FAKETIME=...`).
pub fn three_servers_in(
    dirs: &[tempfile::TempDir],
    extra: &[&str],
    prefixes: &[Vec<String>],
    env: &[(&str, &str)],
) -> Vec<TestAgent> {
    let started = Instant::now();
    let prefix = |i: usize| prefixes.get(i).cloned().unwrap_or_default();
    let start = |i: usize, join: Option<&str>| {
        TestAgent::server_expect_in(&prefix(i), "127.0.0.1", dirs[i].path(), 3, join, extra, env)
    };
    let s1 = start(0, None);
    let seed = format!("127.0.0.1:{}", s1.serf_lan);
    let s2 = start(1, Some(&seed));
    let s3 = start(2, Some(&seed));
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
