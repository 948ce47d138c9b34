//! `meridian demo [-dcs 3] [-servers 3] [-clients 1]`: a federation of real
//! agents on this machine in one command (a Meridian extension, issue 19).
//! This module owns the demo's address plan, the child processes it starts
//! (agents and one `demo-web` per datacenter), waiting until they serve,
//! and stopping them all, with their temporary directory, on Ctrl-C.
//!
//! Every agent binds its own loopback address (Linux routes all of
//! 127.0.0.0/8 to `lo`), so each keeps Consul's default ports and the
//! printed URLs and dig lines are the ones a tutorial uses.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Datacenters to start (1 to 9), federated over the WAN pool.
    #[arg(long, default_value_t = 3)]
    dcs: u32,
    /// Servers per datacenter (1 to 5).
    #[arg(long, default_value_t = 3)]
    servers: u32,
    /// Client agents per datacenter (0 to 9).
    #[arg(long, default_value_t = 1)]
    clients: u32,
    /// The first two octets of every address (127.X): tests move the demo
    /// off the addresses a user's demo would hold.
    #[arg(long = "addr-base", default_value = "127.0", hide = true)]
    addr_base: String,
    /// How long to wait for leaders and passing checks (default: 60 s
    /// plus 1 s per agent, as a big demo on a small machine starts slowly).
    #[arg(long, hide = true)]
    timeout: Option<humantime::Duration>,
}

/// Consul's default ports: every agent keeps them, on its own address.
const HTTP: u16 = 8500;
const DNS: u16 = 8600;
const SERVER_RPC: u16 = 8300;
const SERF_LAN: u16 = 8301;
const SERF_WAN: u16 = 8302;
const WEB: u16 = 8080;

/// How long stopping waits for SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub fn run(a: Args) -> Result<i32> {
    let plan = match Plan::new(&a) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("==> {e}");
            return Ok(1);
        }
    };
    if plan.servers % 2 == 0 {
        eprintln!(
            "==> Note: {} servers tolerate no more failures than {} (a quorum is a majority)",
            plan.servers,
            plan.servers - 1
        );
    }
    if let Err(taken) = plan.check_addresses() {
        eprintln!("==> {taken}");
        eprintln!("    Is another demo or agent running? Stop it, or pick other counts.");
        return Ok(1);
    }
    let stop = super::termination_flag();
    let exe = std::env::current_exe().context("cannot find the meridian binary to run agents")?;
    let dir = std::env::temp_dir().join(format!("meridian-demo-{}", std::process::id()));
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut fleet = Fleet {
        procs: Vec::new(),
        dir,
        keep_dir: false,
    };
    println!(
        "==> Starting {} datacenter(s): {} server(s) and {} client(s) each, logs and data in {}",
        plan.dcs,
        plan.servers,
        plan.clients,
        fleet.dir.display()
    );
    for m in plan.members() {
        fleet.spawn(&exe, &plan, &m)?;
    }
    let timeout = a
        .timeout
        .map(Duration::from)
        .unwrap_or(Duration::from_secs(60 + plan.agents() as u64));
    println!(
        "==> Waiting up to {} s for leaders, federation and passing health checks",
        timeout.as_secs()
    );
    match wait_ready(&plan, &mut fleet, timeout, &stop) {
        Ok(true) => {}
        Ok(false) => {
            println!("==> Interrupted; stopping everything");
            fleet.stop();
            return Ok(0);
        }
        Err(e) => {
            eprintln!("==> {e:#}");
            // The logs are what tells why: they outlive the demo.
            fleet.keep_dir = true;
            fleet.stop();
            eprintln!(
                "==> Stopped everything; logs kept in {} (remove it when done)",
                fleet.dir.display()
            );
            return Ok(1);
        }
    }
    print_guide(&plan, &fleet.dir);
    let mut reported = vec![false; fleet.procs.len()];
    while !stop.load(Ordering::SeqCst) {
        // A child that dies is reported once; the rest keep running, as
        // a demo of failures is a demo too.
        for (i, p) in fleet.procs.iter_mut().enumerate() {
            if !reported[i] {
                if let Ok(Some(status)) = p.child.try_wait() {
                    reported[i] = true;
                    eprintln!(
                        "==> {} exited ({status}); its log: {}",
                        p.name,
                        p.log.display()
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("==> Stopping {} processes", fleet.procs.len());
    fleet.stop();
    println!("==> Stopped; removed {}", fleet.dir.display());
    Ok(0)
}

/// Who runs at which address: datacenter `d` (1-based) is `A.B.d.0/24`,
/// its servers `.1`.. and its clients `.11`...
struct Plan {
    dcs: u8,
    servers: u8,
    clients: u8,
    base: [u8; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Server,
    Client,
    Web,
}

/// One child process of the demo.
struct Member {
    name: String,
    role: Role,
    dc: u8,
    ip: Ipv4Addr,
}

impl Plan {
    fn new(a: &Args) -> std::result::Result<Plan, String> {
        let check = |name: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(v as u8)
            } else {
                Err(format!("-{name} must be between {lo} and {hi} (got {v})"))
            }
        };
        let dcs = check("dcs", a.dcs, 1, 9)?;
        let servers = check("servers", a.servers, 1, 5)?;
        let clients = check("clients", a.clients, 0, 9)?;
        let base = match a
            .addr_base
            .split('.')
            .map(str::parse::<u8>)
            .collect::<std::result::Result<Vec<_>, _>>()
            .as_deref()
        {
            Ok([127, b]) => [127, *b],
            _ => {
                return Err(format!(
                    "-addr-base must be 127.X, a loopback /16 (got {:?})",
                    a.addr_base
                ))
            }
        };
        Ok(Plan {
            dcs,
            servers,
            clients,
            base,
        })
    }

    fn ip(&self, dc: u8, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.base[0], self.base[1], dc, host)
    }

    fn server(&self, dc: u8, k: u8) -> Ipv4Addr {
        self.ip(dc, k)
    }

    fn client(&self, dc: u8, k: u8) -> Ipv4Addr {
        self.ip(dc, 10 + k)
    }

    /// Where a datacenter's web service runs and is registered: its first
    /// client, as a service would be; its first server when it has none.
    fn web_host(&self, dc: u8) -> Ipv4Addr {
        if self.clients > 0 {
            self.client(dc, 1)
        } else {
            self.server(dc, 1)
        }
    }

    fn agents(&self) -> u32 {
        u32::from(self.dcs) * (u32::from(self.servers) + u32::from(self.clients))
    }

    /// In start order: the web service first, so its first check passes.
    fn members(&self) -> Vec<Member> {
        let mut out = Vec::new();
        for dc in 1..=self.dcs {
            out.push(Member {
                name: format!("web-dc{dc}"),
                role: Role::Web,
                dc,
                ip: self.web_host(dc),
            });
            for k in 1..=self.servers {
                out.push(Member {
                    name: format!("dc{dc}-server-{k}"),
                    role: Role::Server,
                    dc,
                    ip: self.server(dc, k),
                });
            }
            for k in 1..=self.clients {
                out.push(Member {
                    name: format!("dc{dc}-client-{k}"),
                    role: Role::Client,
                    dc,
                    ip: self.client(dc, k),
                });
            }
        }
        out
    }

    /// Binds every socket the children will, and lets go at once: a port
    /// someone holds is named here rather than in one agent's log among
    /// many. (Gossip is UDP only; DNS is both.)
    fn check_addresses(&self) -> std::result::Result<(), String> {
        for m in self.members() {
            let (tcp, udp): (&[u16], &[u16]) = match m.role {
                Role::Server => (&[HTTP, DNS, SERVER_RPC], &[DNS, SERF_LAN, SERF_WAN]),
                Role::Client => (&[HTTP, DNS], &[DNS, SERF_LAN]),
                Role::Web => (&[WEB], &[]),
            };
            for &port in tcp {
                let addr = SocketAddr::from((m.ip, port));
                TcpListener::bind(addr)
                    .map_err(|e| format!("cannot listen on {addr} (TCP) for {}: {e}", m.name))?;
            }
            for &port in udp {
                let addr = SocketAddr::from((m.ip, port));
                UdpSocket::bind(addr)
                    .map_err(|e| format!("cannot bind {addr} (UDP) for {}: {e}", m.name))?;
            }
        }
        Ok(())
    }

    /// The `meridian` arguments that start `m`; `dir` holds its data dir
    /// and, for the web service's agent, the service definition.
    fn args(&self, m: &Member, dir: &Path) -> Vec<String> {
        let ip = m.ip.to_string();
        if m.role == Role::Web {
            return vec![
                "demo-web".into(),
                "-listen".into(),
                format!("{ip}:{WEB}"),
                "-name".into(),
                m.name.clone(),
            ];
        }
        let dc = format!("dc{}", m.dc);
        let mut args: Vec<String> = vec![
            "agent".into(),
            "-datacenter".into(),
            dc,
            "-node".into(),
            m.name.clone(),
            "-bind".into(),
            ip.clone(),
            "-client".into(),
            ip,
            "-data-dir".into(),
            dir.join(&m.name).display().to_string(),
            "-ui".into(),
            // Servers of a tutorial are told to join their first one; so
            // is the first one itself, which the agent treats as joined.
            "-retry-join".into(),
            self.server(m.dc, 1).to_string(),
            // Joins back off from 1 s up to this, so that agents started
            // before their servers listen find them within seconds.
            "-retry-interval".into(),
            "2s".into(),
        ];
        if m.role == Role::Server {
            args.extend([
                "-server".into(),
                "-bootstrap-expect".into(),
                self.servers.to_string(),
                "-retry-join-wan".into(),
                self.server(1, 1).to_string(),
                "-retry-interval-wan".into(),
                "2s".into(),
            ]);
        }
        if m.ip == self.web_host(m.dc) {
            args.extend([
                "-config-file".into(),
                web_file(dir, m.dc).display().to_string(),
            ]);
        }
        args
    }

    /// The service definition of datacenter `dc`'s web service.
    fn web_definition(&self, dc: u8) -> String {
        let ip = self.web_host(dc);
        format!(
            "service {{\n  name    = \"web\"\n  port    = {WEB}\n  address = \"{ip}\"\n  tags    = [\"demo\"]\n  check {{\n    name     = \"web /health\"\n    http     = \"http://{ip}:{WEB}/health\"\n    interval = \"5s\"\n    timeout  = \"2s\"\n  }}\n}}\n"
        )
    }
}

fn web_file(dir: &Path, dc: u8) -> PathBuf {
    dir.join(format!("web-dc{dc}.hcl"))
}

/// A running child and where its output goes.
struct Proc {
    name: String,
    log: PathBuf,
    child: Child,
}

/// Every child of the demo and their directory; dropping it stops them
/// (an error or panic part-way must not leave agents behind).
struct Fleet {
    procs: Vec<Proc>,
    dir: PathBuf,
    /// After a failed start the logs are what explains it: kept.
    keep_dir: bool,
}

impl Fleet {
    fn spawn(&mut self, exe: &Path, plan: &Plan, m: &Member) -> Result<()> {
        if m.role == Role::Web {
            let file = web_file(&self.dir, m.dc);
            std::fs::write(&file, plan.web_definition(m.dc))
                .with_context(|| format!("cannot write {}", file.display()))?;
        }
        let log = self.dir.join(format!("{}.log", m.name));
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(exe);
        cmd.args(plan.args(m, &self.dir))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // The agent colours its log lines even into a file.
            .env("NO_COLOR", "1")
            // Out of the terminal's process group: Ctrl-C reaches the demo
            // alone, which then stops the children in order and waits.
            .process_group(0);
        #[cfg(target_os = "linux")]
        {
            let demo = std::process::id();
            // SAFETY: prctl(2) and getppid(2) are async-signal-safe, and
            // the closure allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    // A demo killed with -9 cannot stop its children: the
                    // kernel does. (The signal follows the thread that
                    // forked, which is the main thread: it lives as long as
                    // the demo.)
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // Died before prctl took effect: nobody would signal.
                    if libc::getppid() as u32 != demo {
                        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", m.name))?;
        self.procs.push(Proc {
            name: m.name.clone(),
            log,
            child,
        });
        Ok(())
    }

    /// SIGTERM to every child, SIGKILL to those still running after
    /// `STOP_GRACE`, then the directory goes (unless kept). Idempotent.
    fn stop(&mut self) {
        for p in &mut self.procs {
            if let Ok(None) = p.child.try_wait() {
                // SAFETY: kill(2) on our own, not yet reaped, child.
                unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            let mut running = 0;
            for p in &mut self.procs {
                if let Ok(None) = p.child.try_wait() {
                    running += 1;
                }
            }
            if running == 0 || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for p in &mut self.procs {
            if let Ok(None) = p.child.try_wait() {
                eprintln!("==> {} did not stop within {STOP_GRACE:?}: killed", p.name);
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
        self.procs.clear();
        if !self.keep_dir && self.dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                eprintln!("==> cannot remove {}: {e}", self.dir.display());
            }
        }
    }

    fn log_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// A child that has exited, if any: the demo cannot become ready then.
    fn exited(&mut self) -> Option<(String, PathBuf, std::process::ExitStatus)> {
        self.procs
            .iter_mut()
            .find_map(|p| match p.child.try_wait() {
                Ok(Some(s)) => Some((p.name.clone(), p.log.clone(), s)),
                _ => None,
            })
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What readiness waits for, in order: each datacenter's leader, then the
/// federation as dc1 sees it, then each web service passing (asked through
/// dc1, so forwarding is exercised too).
enum Step {
    Leader(u8),
    Federated,
    Passing(u8),
}

/// Polls until every step holds: `Ok(true)`; `Ok(false)` when a signal
/// came first; an error naming the log to read on timeout or a child's
/// exit.
fn wait_ready(
    plan: &Plan,
    fleet: &mut Fleet,
    timeout: Duration,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<bool> {
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        // An http_proxy in the environment must not see loopback calls.
        .no_proxy()
        .build()?;
    let get = |ip: Ipv4Addr, path: &str| -> Option<serde_json::Value> {
        let r = http.get(format!("http://{ip}:{HTTP}{path}")).send().ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().ok()
    };
    let mut steps: Vec<Step> = (1..=plan.dcs).map(Step::Leader).collect();
    steps.push(Step::Federated);
    steps.extend((1..=plan.dcs).map(Step::Passing));
    let dc1 = plan.server(1, 1);
    let deadline = Instant::now() + timeout;
    for step in steps {
        let (what, logs) = match step {
            Step::Leader(dc) => (
                format!("dc{dc} to elect a leader"),
                vec![format!("dc{dc}-server-1")],
            ),
            Step::Federated => (
                format!("dc1 to see all {} datacenters", plan.dcs),
                vec!["dc1-server-1".to_string()],
            ),
            Step::Passing(dc) => (
                format!("dc{dc}'s web service to pass its health check"),
                vec![agent_name(plan, dc), format!("web-dc{dc}")],
            ),
        };
        loop {
            if stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            if let Some((name, log, status)) = fleet.exited() {
                bail!(
                    "{name} exited ({status}) while starting; read {}",
                    log.display()
                );
            }
            let done = match step {
                Step::Leader(dc) => get(plan.server(dc, 1), "/v1/status/leader")
                    .and_then(|v| v.as_str().map(|s| !s.is_empty()))
                    .unwrap_or(false),
                Step::Federated => {
                    get(dc1, "/v1/catalog/datacenters").and_then(|v| v.as_array().map(Vec::len))
                        == Some(usize::from(plan.dcs))
                }
                Step::Passing(dc) => {
                    get(dc1, &format!("/v1/health/service/web?dc=dc{dc}&passing"))
                        .and_then(|v| v.as_array().map(Vec::len))
                        == Some(1)
                }
            };
            if done {
                break;
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = logs
                    .iter()
                    .map(|l| fleet.log_of(l).display().to_string())
                    .collect();
                bail!(
                    "timed out after {} s waiting for {what}; read {}",
                    timeout.as_secs(),
                    logs.join(" and ")
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    Ok(true)
}

/// The agent a datacenter's web service is registered on.
fn agent_name(plan: &Plan, dc: u8) -> String {
    if plan.clients > 0 {
        format!("dc{dc}-client-1")
    } else {
        format!("dc{dc}-server-1")
    }
}

fn print_guide(plan: &Plan, dir: &Path) {
    let s1 = plan.server(1, 1);
    // The `?dc=` examples name another datacenter when there is one.
    let other = if plan.dcs > 1 { 2 } else { 1 };
    let mut out = String::new();
    out.push_str("\n==> Ready. Every datacenter has a leader and a passing web service.\n\n");
    out.push_str("Datacenters (servers at .1.., clients at .11..; default ports on each):\n");
    for dc in 1..=plan.dcs {
        let servers = (1..=plan.servers)
            .map(|k| plan.server(dc, k).to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let clients = (1..=plan.clients)
            .map(|k| plan.client(dc, k).to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let clients = if clients.is_empty() {
            "none".to_string()
        } else {
            clients
        };
        out.push_str(&format!(
            "  dc{dc}  UI http://{}:{HTTP}/ui/   servers {servers}   clients {clients}   web {}:{WEB}\n",
            plan.server(dc, 1),
            plan.web_host(dc)
        ));
    }
    out.push_str("\nTry:\n");
    out.push_str(&format!(
        "  curl http://{s1}:{HTTP}/v1/catalog/datacenters\n\
         \x20 curl 'http://{s1}:{HTTP}/v1/health/service/web?dc=dc{other}&passing'\n\
         \x20 dig @{s1} -p {DNS} web.service.consul\n\
         \x20 dig @{s1} -p {DNS} web.service.dc{other}.consul SRV\n\
         \x20 curl 'http://{s1}:{HTTP}/v1/health/service/web?dc=*&passing'   # every datacenter at once\n\
         \x20 dig @{s1} -p {DNS} web.service.any.consul   # the nearest datacenter with a passing web\n\
         \x20 open http://{s1}:{HTTP}/ui/dc1/federation   # every datacenter on one page\n\
         \x20 meridian members -http-addr={s1}:{HTTP}\n\
         \x20 meridian members -wan -http-addr={s1}:{HTTP}\n"
    ));
    out.push_str(&format!(
        "\nAgent logs (<node>.log) and data: {}\n",
        dir.display()
    ));
    out.push_str("Ctrl-C stops everything.\n");
    print!("{out}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dcs: u32, servers: u32, clients: u32, base: &str) -> Args {
        Args {
            dcs,
            servers,
            clients,
            addr_base: base.into(),
            timeout: None,
        }
    }

    #[test]
    fn plan_refuses_counts_out_of_range() {
        for (a, flag) in [
            (args(0, 1, 1, "127.0"), "-dcs"),
            (args(10, 1, 1, "127.0"), "-dcs"),
            (args(1, 0, 1, "127.0"), "-servers"),
            (args(1, 6, 1, "127.0"), "-servers"),
            (args(1, 1, 10, "127.0"), "-clients"),
            (args(1, 1, 1, "10.0"), "-addr-base"),
            (args(1, 1, 1, "127.0.1"), "-addr-base"),
        ] {
            let e = Plan::new(&a).err().unwrap_or_default();
            assert!(e.starts_with(flag), "{flag}: {e}");
        }
    }

    #[test]
    fn plan_places_servers_clients_and_web() {
        let plan = Plan::new(&args(2, 3, 1, "127.40")).expect("a plan");
        let ms = plan.members();
        assert_eq!(ms.len(), 2 * (1 + 3 + 1));
        let names: Vec<(&str, Ipv4Addr)> = ms.iter().map(|m| (m.name.as_str(), m.ip)).collect();
        assert!(names.contains(&("dc2-server-3", Ipv4Addr::new(127, 40, 2, 3))));
        assert!(names.contains(&("dc2-client-1", Ipv4Addr::new(127, 40, 2, 11))));
        assert!(names.contains(&("web-dc1", Ipv4Addr::new(127, 40, 1, 11))));
        let dir = Path::new("/d");
        let server = ms
            .iter()
            .find(|m| m.name == "dc2-server-2")
            .expect("a server");
        let a = plan.args(server, dir).join(" ");
        assert!(a.contains("-retry-join 127.40.2.1 "), "{a}");
        assert!(a.contains("-retry-join-wan 127.40.1.1 "), "{a}");
        assert!(a.contains("-bootstrap-expect 3"), "{a}");
        assert!(!a.contains("-config-file"), "{a}");
        let client = ms
            .iter()
            .find(|m| m.name == "dc2-client-1")
            .expect("a client");
        let a = plan.args(client, dir).join(" ");
        assert!(a.contains("-config-file /d/web-dc2.hcl"), "{a}");
        assert!(!a.contains("-server"), "{a}");
        // Without clients the web service lives beside the first server.
        let plan = Plan::new(&args(1, 1, 0, "127.0")).expect("a plan");
        assert_eq!(plan.web_host(1), Ipv4Addr::new(127, 0, 1, 1));
    }
}
