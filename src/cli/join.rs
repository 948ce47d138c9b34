//! `meridian join [-wan] ADDR...`: asks the agent to join a pool.

use anyhow::{anyhow, Result};

use crate::api::enc;

use super::{Client, HttpArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// Join the WAN pool of servers (comes with federation).
    #[arg(long)]
    wan: bool,
    /// Addresses of agents already in the pool.
    #[arg(required = true)]
    addrs: Vec<String>,
}

pub fn run(a: Args) -> Result<i32> {
    let c = Client::new(&a.http)?;
    let q: Vec<(&str, String)> = if a.wan {
        vec![("wan", "1".into())]
    } else {
        vec![]
    };
    let mut joined = 0;
    for addr in &a.addrs {
        match c.call_ok(
            reqwest::Method::PUT,
            &format!("/v1/agent/join/{}", enc(addr)),
            &q,
            None,
            &[],
        ) {
            Ok(_) => joined += 1,
            Err(e) => eprintln!("Error joining address '{addr}': {e}"),
        }
    }
    if joined == 0 {
        return Err(anyhow!("Failed to join any nodes."));
    }
    println!("Successfully joined cluster by contacting {joined} nodes.");
    Ok(0)
}
