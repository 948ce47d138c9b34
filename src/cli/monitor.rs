//! `meridian monitor [-log-level LEVEL] [-log-json]`: follows the agent's
//! log lines (`/v1/agent/monitor`) until interrupted, as Consul's does.

use std::io::{BufRead, BufReader, Write};

use anyhow::{anyhow, Result};

use super::{Client, HttpArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// The least severe level shown: trace, debug, info, warn, err.
    #[arg(long = "log-level", default_value = "info")]
    log_level: String,
    /// One JSON object a line.
    #[arg(long = "log-json")]
    log_json: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let c = Client::new(&a.http)?;
    let mut q = vec![("loglevel", a.log_level.clone())];
    if a.log_json {
        q.push(("logjson", "true".to_string()));
    }
    let resp = c.stream("/v1/agent/monitor", &q)?;
    let status = resp.status().as_u16();
    if status != 200 {
        let text = resp.text().unwrap_or_default();
        return Err(anyhow!(
            "Error starting monitor: Unexpected response code: {status} ({})",
            text.trim()
        ));
    }
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(resp).lines() {
        let line = line.map_err(|e| anyhow!("Error reading the agent's log stream: {e}"))?;
        // A closed stdout (`| head`) ends the command quietly.
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            return Ok(0);
        }
    }
    Ok(0)
}
