//! `meridian event -name=NAME [-node=RE] [-service=RE] [-tag=RE] [PAYLOAD]`:
//! fires a user event, as Consul's `event` command.

use anyhow::{anyhow, Result};

use super::{Client, HttpArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// The event's name.
    #[arg(long)]
    name: String,
    /// Regular expression on node names.
    #[arg(long)]
    node: Option<String>,
    /// Regular expression on service names.
    #[arg(long)]
    service: Option<String>,
    /// Regular expression on service tags (needs -service).
    #[arg(long)]
    tag: Option<String>,
    /// Opaque payload.
    payload: Option<String>,
}

pub fn run(a: Args) -> Result<i32> {
    let mut query = Vec::new();
    for (k, v) in [("node", &a.node), ("service", &a.service), ("tag", &a.tag)] {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    let r = Client::new(&a.http)?
        .call_ok(
            reqwest::Method::PUT,
            &format!("/v1/event/fire/{}", crate::api::enc(&a.name)),
            &query,
            a.payload.map(String::into_bytes),
            &[],
        )
        .map_err(|e| anyhow!("Error firing event: {e}"))?;
    let ev = r.json()?;
    println!("Event ID: {}", ev["ID"].as_str().unwrap_or_default());
    Ok(0)
}
