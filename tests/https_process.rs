//! The built binary configured as Consul documents it: `tls { defaults,
//! https }`, `ports { http = -1, https = 0 }` and `limits {
//! http_max_conns_per_client }` in a config file, reached with curl.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_meridian");

/// The agent process, killed when dropped.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(dir: &Path, prog: &str, args: &[&str]) -> Output {
    Command::new(prog)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("the program runs")
}

/// The "agent listening" line's fields (`http`, `https`, ...), colours
/// removed.
fn listening(log: &Path) -> Option<Vec<(String, String)>> {
    let mut text = String::new();
    std::fs::File::open(log)
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    let line = text.lines().find(|l| l.contains("agent listening"))?;
    let mut plain = String::new();
    let mut esc = false;
    for c in line.chars() {
        match (esc, c) {
            (false, '\x1b') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => plain.push(c),
        }
    }
    let fields = plain.split("agent listening").nth(1)?;
    Some(
        fields
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn https_only_agent_from_a_config_file_with_a_per_client_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    for args in [
        &["tls", "ca", "create"][..],
        &["tls", "cert", "create", "-server", "-dc", "dc1"],
        &["tls", "cert", "create", "-client", "-dc", "dc1"],
    ] {
        assert!(run(d, BIN, args).status.success(), "meridian {args:?}");
    }
    std::fs::write(
        d.join("agent.hcl"),
        r#"
tls {
  defaults {
    ca_file   = "consul-agent-ca.pem"
    cert_file = "dc1-server-consul-0.pem"
    key_file  = "dc1-server-consul-0-key.pem"
  }
  https {
    verify_incoming = true
  }
}
ports {
  http  = -1
  https = 0
}
limits {
  http_max_conns_per_client = 5
}
"#,
    )
    .expect("config");
    let log = d.join("agent.log");
    let out = std::fs::File::create(&log).expect("log");
    let child = Command::new(BIN)
        .args(["agent", "-dev", "-config-file", "agent.hcl"])
        .args([
            "-dns-port",
            "0",
            "-server-port",
            "0",
            "-serf-lan-port",
            "0",
            "-serf-wan-port",
            "0",
        ])
        .current_dir(d)
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("agent starts");
    let _agent = Agent(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let fields = loop {
        if let Some(f) = listening(&log) {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "no listening line: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        !fields.iter().any(|(k, _)| k == "http"),
        "http = -1 must open no HTTP listener: {fields:?}"
    );
    let https = fields
        .iter()
        .find(|(k, _)| k == "https")
        .map(|(_, v)| v.clone())
        .expect("an https listener");
    let url = format!("https://{https}");

    let curl = |extra: &[&str], path: &str| {
        let base = ["-s", "--max-time", "10", "--cacert", "consul-agent-ca.pem"];
        let u = format!("{url}{path}");
        run(d, "curl", &[&base[..], extra, &[u.as_str()]].concat())
    };
    let with_cert = [
        "--cert",
        "dc1-client-consul-0.pem",
        "--key",
        "dc1-client-consul-0-key.pem",
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = curl(&with_cert, "/v1/status/leader");
        if o.status.success() && String::from_utf8_lossy(&o.stdout).contains(':') {
            break;
        }
        assert!(Instant::now() < deadline, "no leader over HTTPS");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !curl(&[], "/v1/status/leader").status.success(),
        "no client certificate, no answer"
    );
    let o = curl(&with_cert, "/v1/agent/self");
    let me: serde_json::Value = serde_json::from_slice(&o.stdout).expect("agent self");
    assert_eq!(me["DebugConfig"]["HTTPPort"], -1);
    assert_eq!(
        me["DebugConfig"]["HTTPSPort"].to_string(),
        https.rsplit(':').next().unwrap_or("")
    );

    // Five connections from this IP hold; a sixth gets Consul's 429 (over
    // TLS) and a close; a closed one frees its place.
    let mut held: Vec<_> = (0..5)
        .map(|_| std::net::TcpStream::connect(&https).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let code = |o: Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let over = [&with_cert[..], &["-o", "/dev/null", "-w", "%{http_code}"]].concat();
    assert_eq!(code(curl(&over, "/v1/status/leader")), "429");
    held.pop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while code(curl(&over, "/v1/status/leader")) != "200" {
        assert!(
            Instant::now() < deadline,
            "a closed connection did not free its place"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn https_port_flag_without_a_certificate_refuses_to_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "agent",
        "-dev",
        "-https-port",
        "0",
        "-http-port",
        "0",
        "-dns-port",
        "0",
    ])
    .args([
        "-server-port",
        "0",
        "-serf-lan-port",
        "0",
        "-serf-wan-port",
        "0",
    ])
    .current_dir(tmp.path())
    .stdin(Stdio::null());
    let o = cmd.output().expect("runs");
    assert_eq!(o.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        // The config build refuses it, naming the flag, before anything
        // is bound.
        all.contains("Invalid flag -https-port: HTTPS needs a certificate"),
        "{all}"
    );
}
