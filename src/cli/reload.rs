//! `meridian reload`: asks the agent to re-read its config files.

use anyhow::Result;

use super::{Client, HttpArgs};

pub fn run(h: HttpArgs) -> Result<i32> {
    Client::new(&h)?.call_ok(reqwest::Method::PUT, "/v1/agent/reload", &[], None, &[])?;
    println!("Configuration reload triggered");
    Ok(0)
}
