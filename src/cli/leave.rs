//! `meridian leave`: graceful leave and shutdown of the agent.

use anyhow::Result;

use super::{Client, HttpArgs};

pub fn run(h: HttpArgs) -> Result<i32> {
    Client::new(&h)?.call_ok(reqwest::Method::PUT, "/v1/agent/leave", &[], None, &[])?;
    println!("Graceful leave complete");
    Ok(0)
}
