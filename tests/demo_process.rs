//! `meridian demo` run as a user runs it: two federated datacenters come
//! up with their web services passing, answer over HTTP and DNS, and go
//! away (processes, ports, directory) on Ctrl-C; a demo killed with -9
//! takes its children with it; bad counts and taken ports are refused.
//!
//! Each test moves the demo to its own 127.X.0.0/16 with the hidden
//! `-addr-base`, away from the default 127.0.d.k a user's demo holds and
//! from the 127.0.0.1 other tests use.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::agent_bin;

/// What the demo prints once everything is ready.
const READY: &str = "Ctrl-C stops everything.";
/// The line naming the demo's directory.
const DIR_LINE: &str = "and data: ";

/// A running `meridian demo` whose output is read line by line. Dropping
/// it SIGKILLs the demo (its children follow by PDEATHSIG) and removes its
/// directory, so a failed assertion leaves nothing behind.
struct Demo {
    child: Child,
    lines: Receiver<String>,
    /// Every line so far (stdout and stderr), for failure messages.
    seen: Vec<String>,
    dir: Option<PathBuf>,
}

impl Demo {
    fn start(args: &[&str]) -> Demo {
        let mut child = Command::new(agent_bin())
            .arg("demo")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("meridian demo starts");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("stderr: {l}"));
            }
        });
        Demo {
            child,
            lines,
            seen: Vec::new(),
            dir: None,
        }
    }

    /// Reads output until a line contains `what`; panics with everything
    /// read after `secs` or if the demo exits first.
    fn wait_line(&mut self, what: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(500)))
            {
                Ok(l) => {
                    if let Some((_, d)) = l.split_once(DIR_LINE) {
                        self.dir = Some(PathBuf::from(d.trim()));
                    }
                    let found = l.contains(what);
                    self.seen.push(l);
                    if found {
                        return;
                    }
                }
                Err(_) => {
                    if let Ok(Some(s)) = self.child.try_wait() {
                        self.drain();
                        panic!(
                            "the demo exited ({s}) before {what:?}:\n{}",
                            self.seen.join("\n")
                        );
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {what:?} within {secs} s:\n{}",
                self.seen.join("\n")
            );
        }
    }

    fn drain(&mut self) {
        std::thread::sleep(Duration::from_millis(200));
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the demo still runs {secs} s after the signal"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            // The children's own SIGTERM handling needs a moment.
            std::thread::sleep(Duration::from_secs(2));
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn listening(addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().expect("an address");
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Waits up to `secs` for nothing to listen at any of `addrs`.
fn wait_closed(addrs: &[&str], secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while let Some(a) = addrs.iter().find(|a| listening(a)) {
        assert!(
            Instant::now() < deadline,
            "{a} still listens {secs} s after the demo stopped"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn get_json(url: &str) -> serde_json::Value {
    let r = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(r.status().is_success(), "GET {url}: {}", r.status());
    r.json().unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// `meridian <args>` that must end by itself within `secs`.
fn run_bounded(args: &[&str], secs: u64) -> (i32, String) {
    let mut demo = Demo::start(args);
    let status = demo.wait_exit(secs);
    demo.drain();
    (status.code().unwrap_or(-1), demo.seen.join("\n"))
}

#[test]
fn two_datacenters_serve_and_stop_on_ctrl_c() {
    let t0 = Instant::now();
    let mut demo = Demo::start(&[
        "-dcs",
        "2",
        "-servers",
        "1",
        "-clients",
        "1",
        "-addr-base",
        "127.40",
    ]);
    demo.wait_line(READY, 150);
    println!("demo ready in {:?}", t0.elapsed());
    let dir = demo.dir.clone().expect("the demo names its directory");
    assert!(dir.is_dir(), "{} exists while the demo runs", dir.display());
    assert!(dir.join("dc2-server-1.log").is_file());
    let out = demo.seen.join("\n");
    for want in [
        "http://127.40.1.1:8500/ui/",
        "http://127.40.2.1:8500/ui/",
        "curl 'http://127.40.1.1:8500/v1/health/service/web?dc=dc2&passing'",
        "dig @127.40.1.1 -p 8600 web.service.dc2.consul SRV",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }

    let dcs = get_json("http://127.40.1.1:8500/v1/catalog/datacenters");
    assert_eq!(dcs, serde_json::json!(["dc1", "dc2"]));
    let web = get_json("http://127.40.1.1:8500/v1/health/service/web?dc=dc2&passing");
    let web = web.as_array().expect("an array");
    assert_eq!(web.len(), 1, "{web:?}");
    assert_eq!(web[0]["Service"]["Address"], "127.40.2.11");
    assert_eq!(web[0]["Node"]["Datacenter"], "dc2");
    let ui = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
        .get("http://127.40.2.1:8500/ui/")
        .send()
        .expect("the UI answers");
    assert!(ui.status().is_success(), "UI: {}", ui.status());

    match Command::new("dig")
        .args([
            "@127.40.2.1",
            "-p",
            "8600",
            "web.service.consul",
            "+short",
            "+time=2",
            "+tries=2",
        ])
        .output()
    {
        Ok(o) => {
            let answer = String::from_utf8_lossy(&o.stdout);
            assert_eq!(answer.trim(), "127.40.2.11", "dig answered {answer:?}");
        }
        Err(e) => println!("skipping the DNS check: cannot run dig ({e})"),
    }

    let t1 = Instant::now();
    demo.signal(libc::SIGINT);
    let status = demo.wait_exit(30);
    println!("demo stopped in {:?}", t1.elapsed());
    demo.drain();
    assert_eq!(status.code(), Some(0), "{}", demo.seen.join("\n"));
    // Exited means every child was reaped: nothing may listen at once.
    for a in [
        "127.40.1.1:8500",
        "127.40.2.1:8500",
        "127.40.1.11:8500",
        "127.40.2.11:8080",
    ] {
        assert!(!listening(a), "{a} still listens after the demo exited");
    }
    assert!(!dir.exists(), "{} removed", dir.display());
}

#[test]
fn children_die_with_a_demo_killed_by_sigkill() {
    let mut demo = Demo::start(&[
        "-dcs",
        "1",
        "-servers",
        "1",
        "-clients",
        "0",
        "-addr-base",
        "127.42",
    ]);
    demo.wait_line(READY, 150);
    assert!(listening("127.42.1.1:8500"));
    demo.signal(libc::SIGKILL);
    demo.wait_exit(10);
    // PDEATHSIG sends the children SIGTERM: they stop by themselves.
    wait_closed(&["127.42.1.1:8500", "127.42.1.1:8080"], 20);
}

#[test]
fn counts_out_of_range_are_refused() {
    for (args, want) in [
        (vec!["-dcs", "0"], "-dcs must be between 1 and 9 (got 0)"),
        (vec!["-dcs", "10"], "-dcs must be between 1 and 9 (got 10)"),
        (
            vec!["-servers", "6"],
            "-servers must be between 1 and 5 (got 6)",
        ),
        (
            vec!["-clients", "10"],
            "-clients must be between 0 and 9 (got 10)",
        ),
    ] {
        let (code, out) = run_bounded(&args, 20);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(out.contains(want), "{args:?}: {want:?} in {out:?}");
    }
    let (code, out) = run_bounded(&["-dcs", "many"], 20);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("many"), "{out}");
}

#[test]
fn a_taken_port_is_named_and_nothing_starts() {
    let _holder = std::net::TcpListener::bind("127.41.1.1:8500").expect("bind 127.41.1.1:8500");
    let (code, out) = run_bounded(
        &[
            "-dcs",
            "1",
            "-servers",
            "1",
            "-clients",
            "0",
            "-addr-base",
            "127.41",
        ],
        20,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("127.41.1.1:8500"), "{out}");
    assert!(!out.contains("Starting"), "nothing started: {out}");
}
