//! A cluster whose servers each run in their own network namespace, joined
//! by a Linux bridge in the root namespace, and the partitions made there:
//! iptables DROP rules inside the namespaces, between server addresses
//! only. The test process keeps an address on the bridge and reaches every
//! server at all times, as Jepsen's clients do: a partition separates
//! servers from servers, never the test's clients from a server.
//!
//! Everything it makes (namespaces, veths, the bridge, its address, the
//! root FORWARD rule, the rules inside the namespaces) carries a per-run
//! tag `mr<run>` and lives on links it created, in `10.214.<run>.0/24`.
//! [`Net`]'s Drop removes it all, also when the test panics; a leftover of
//! a crashed earlier run with the same tag is removed before the run
//! begins. Needs root (`ip netns`); [`Net::available`] says why not.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use crate::common::{leader, wait_for, TestAgent};

/// The subnet: 10.214.<run>.0/24 (docker/ uses 10.213.x; a leftover compose network must not overlap it).
const SUBNET: &str = "10.214";
/// Where the run claims (`<run>.pid`, holding its pid): the tag is free
/// when the file is absent or its process is gone.
const CLAIMS: &str = "/tmp/meridian-netns";
/// The bridge's (the test process's) host number on the subnet.
const HOST: u8 = 254;

/// One run's namespaces and bridge; see the module docs.
pub struct Net {
    run: u8,
    n: usize,
    claim: PathBuf,
}

/// Runs `ip`/`iptables` and says what failed (the harness's own commands:
/// a failure is a broken environment, reported with the tool's words).
pub fn sh(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) {
    if let Err(e) = sh(args) {
        panic!("netns harness: {e}");
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

impl Net {
    /// `None` when namespaces can be made here, else why not (the tests
    /// that need them print it and skip).
    pub fn available() -> Option<String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some("not root: ip netns needs CAP_SYS_ADMIN".into());
        }
        for tool in ["ip", "iptables"] {
            if Command::new(tool).arg("-V").output().is_err() {
                return Some(format!("{tool} is not installed"));
            }
        }
        None
    }

    /// Makes `n` namespaces on a bridge (see the module docs).
    pub fn new(n: usize) -> Net {
        assert!((1..=9).contains(&n), "1 to 9 servers");
        let _ = std::fs::create_dir_all(CLAIMS);
        let start = (std::process::id() % 250) as u8 + 1;
        let (run, claim) = (0..250u16)
            .map(|k| ((start as u16 - 1 + k) % 250 + 1) as u8)
            .find_map(|run| Self::claim(run).map(|c| (run, c)))
            .expect("netns harness: all 250 run tags are held by live processes");
        // A crashed or killed run (a test timeout: no Drop runs) may have
        // left its pieces behind, under this tag or another.
        Self::remove(run, 9);
        Self::sweep();
        let net = Net { run, n, claim };
        net.build();
        net
    }

    /// Takes the tag `run` if no live process holds it.
    fn claim(run: u8) -> Option<PathBuf> {
        let path = PathBuf::from(format!("{CLAIMS}/{run}.pid"));
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = write!(f, "{}", std::process::id());
                    return Some(path);
                }
                Err(_) => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<i32>().ok());
                    // An empty file is a claim being written right now.
                    match holder {
                        Some(pid) if !alive(pid) => {
                            let _ = std::fs::remove_file(&path);
                        }
                        _ => return None,
                    }
                }
            }
        }
        None
    }

    /// Removes the pieces of every run whose claiming process is gone.
    fn sweep() {
        let Ok(dir) = std::fs::read_dir(CLAIMS) else {
            return;
        };
        for entry in dir.flatten() {
            let path = entry.path();
            let run = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u8>().ok());
            let holder = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
            if let (Some(run), Some(pid)) = (run, holder) {
                if !alive(pid) {
                    Self::remove(run, 9);
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }

    fn tag(&self) -> String {
        format!("mr{}", self.run)
    }

    /// The run's number (its subnet's third octet, its names' tag).
    pub fn run(&self) -> u8 {
        self.run
    }

    /// What of run `run` exists now: namespaces, links, root rules (what
    /// a dropped `Net` must have left empty).
    pub fn pieces(run: u8) -> Vec<String> {
        let text = |args: &[&str]| {
            Command::new(args[0])
                .args(&args[1..])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let tag = format!("mr{run}");
        let named = |s: &str| {
            s.split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                .any(|w| w.starts_with(&tag) && w[tag.len()..].starts_with(['-', 'b', 'h', 'n']))
        };
        let mut out: Vec<String> = text(&["ip", "netns", "list"])
            .lines()
            .chain(text(&["ip", "-o", "link", "show"]).lines())
            .filter(|l| named(l))
            .map(str::to_string)
            .collect();
        let comment = format!("meridian-netns-{run} ");
        out.extend(
            text(&["iptables", "-S", "FORWARD"])
                .lines()
                .filter(|l| format!("{l} ").contains(&comment))
                .map(str::to_string),
        );
        out
    }

    fn bridge(run: u8) -> String {
        format!("mr{run}br")
    }

    fn ns_name(run: u8, i: usize) -> String {
        format!("mr{run}-s{i}")
    }

    /// Server `i`'s namespace.
    pub fn ns(&self, i: usize) -> String {
        Self::ns_name(self.run, i)
    }

    /// Server `i`'s address.
    pub fn addr(&self, i: usize) -> String {
        format!("{SUBNET}.{}.{}", self.run, i + 1)
    }

    /// The root FORWARD rule that lets bridged frames between the
    /// namespaces through (with br_netfilter loaded, bridged traffic
    /// crosses the root FORWARD chain, whose policy may be DROP).
    fn forward_rule(run: u8) -> Vec<String> {
        let br = Self::bridge(run);
        [
            "FORWARD",
            "-i",
            &br,
            "-o",
            &br,
            "-m",
            "comment",
            "--comment",
            &format!("meridian-netns-{run}"),
            "-j",
            "ACCEPT",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn build(&self) {
        let (run, br) = (self.run, Self::bridge(self.run));
        must(&["ip", "link", "add", &br, "type", "bridge"]);
        let host = format!("{SUBNET}.{run}.{HOST}/24");
        must(&["ip", "addr", "add", &host, "dev", &br]);
        must(&["ip", "link", "set", &br, "up"]);
        let rule = Self::forward_rule(run);
        let mut insert = vec!["iptables", "-I"];
        insert.extend(rule.iter().map(String::as_str));
        must(&insert);
        for i in 0..self.n {
            let ns = self.ns(i);
            let (outer, inner) = (format!("mr{run}h{i}"), format!("mr{run}n{i}"));
            must(&["ip", "netns", "add", &ns]);
            must(&[
                "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ]);
            must(&["ip", "link", "set", &inner, "netns", &ns]);
            must(&["ip", "link", "set", &outer, "master", &br, "up"]);
            let addr = format!("{}/24", self.addr(i));
            must(&["ip", "-n", &ns, "addr", "add", &addr, "dev", &inner]);
            must(&["ip", "-n", &ns, "link", "set", &inner, "up"]);
            must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        }
    }

    /// Removes whatever of run `run`'s pieces exist (servers `0..n`).
    fn remove(run: u8, n: usize) {
        for i in 0..n {
            // Deleting the namespace deletes its veth end and so the pair.
            let _ = sh(&["ip", "netns", "del", &Self::ns_name(run, i)]);
            let _ = sh(&["ip", "link", "del", &format!("mr{run}h{i}")]);
        }
        let _ = sh(&["ip", "link", "del", &Self::bridge(run)]);
        let rule = Self::forward_rule(run);
        let mut delete = vec!["iptables", "-D"];
        delete.extend(rule.iter().map(String::as_str));
        while sh(&delete).is_ok() {}
    }

    /// The command that runs a program in server `i`'s namespace.
    pub fn prefix(&self, i: usize) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.ns(i)]
    }

    /// Starts server `i` (`-bootstrap-expect n`, joining `join`).
    pub fn server(
        &self,
        i: usize,
        dir: &std::path::Path,
        join: Option<&str>,
        extra: &[&str],
    ) -> TestAgent {
        self.server_wrapped(i, dir, join, extra, &[])
    }

    /// `server`, the agent run under `wrap` too inside the namespace (a
    /// command that execs it: `env LD_PRELOAD=... FAKETIME=...`).
    pub fn server_wrapped(
        &self,
        i: usize,
        dir: &std::path::Path,
        join: Option<&str>,
        extra: &[&str],
        wrap: &[String],
    ) -> TestAgent {
        let mut prefix = self.prefix(i);
        prefix.extend(wrap.iter().cloned());
        TestAgent::server_expect_in(&prefix, &self.addr(i), dir, self.n as u32, join, extra, &[])
    }

    /// Every server, one per namespace (`dirs[i]` its data), once all
    /// agree on a leader.
    pub fn servers(&self, dirs: &[tempfile::TempDir], extra: &[&str]) -> Vec<TestAgent> {
        self.servers_wrapped(dirs, extra, &[])
    }

    /// `servers`, server `i` under `wraps[i]` when given (`server_wrapped`).
    pub fn servers_wrapped(
        &self,
        dirs: &[tempfile::TempDir],
        extra: &[&str],
        wraps: &[Vec<String>],
    ) -> Vec<TestAgent> {
        assert!(dirs.len() >= self.n, "a data directory per server");
        let started = std::time::Instant::now();
        let wrap = |i: usize| wraps.get(i).cloned().unwrap_or_default();
        let first = self.server_wrapped(0, dirs[0].path(), None, extra, &wrap(0));
        let seed = format!("{}:{}", self.addr(0), first.serf_lan);
        let mut servers = vec![first];
        for (i, dir) in dirs.iter().enumerate().take(self.n).skip(1) {
            servers.push(self.server_wrapped(i, dir.path(), Some(&seed), extra, &wrap(i)));
        }
        wait_for("one leader seen by every server", 30, || {
            let l = leader(&servers[0]);
            !l.is_empty() && servers.iter().all(|s| leader(s) == l)
        });
        eprintln!(
            "netns {}: {} servers to first leader in {:?}",
            self.tag(),
            self.n,
            started.elapsed()
        );
        servers
    }

    /// Drops, in both directions, traffic between each server of `a` and
    /// each of `b` (added to the cuts already made).
    pub fn partition(&self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut(x, y);
                self.cut(y, x);
            }
        }
    }

    /// Server `i` reaches no other server (and none reaches it).
    pub fn isolate(&self, i: usize) {
        let others: Vec<usize> = (0..self.n).filter(|&j| j != i).collect();
        self.partition(&[i], &others);
    }

    /// Each server reaches only its two neighbours on a ring 0-1-...-(n-1)-0.
    pub fn ring(&self) {
        for i in 0..self.n {
            for j in 0..self.n {
                let d = (i + self.n - j) % self.n;
                if i != j && d != 1 && d != self.n - 1 {
                    self.cut(i, j);
                }
            }
        }
    }

    /// Server `at` drops what comes from server `from`.
    fn cut(&self, at: usize, from: usize) {
        must(&[
            "ip",
            "netns",
            "exec",
            &self.ns(at),
            "iptables",
            "-A",
            "INPUT",
            "-s",
            &self.addr(from),
            "-j",
            "DROP",
        ]);
    }

    /// Removes every cut: the namespaces hold only rules this harness made.
    pub fn heal(&self) {
        for i in 0..self.n {
            must(&[
                "ip",
                "netns",
                "exec",
                &self.ns(i),
                "iptables",
                "-F",
                "INPUT",
            ]);
        }
    }

    /// The cuts in force, as `(at, from)` pairs (for the tests' checks).
    pub fn cuts(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for at in 0..self.n {
            let listed = Command::new("ip")
                .args(["netns", "exec", &self.ns(at), "iptables", "-S", "INPUT"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for from in 0..self.n {
                if listed.contains(&format!("-s {}/32 -j DROP", self.addr(from))) {
                    out.push((at, from));
                }
            }
        }
        out
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        Self::remove(self.run, self.n);
        let _ = std::fs::remove_file(&self.claim);
    }
}
