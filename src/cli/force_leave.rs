//! `meridian force-leave [-prune] NODE`: a failed member is settled as
//! left (and, for a server, leaves the Raft configuration through the
//! leader's reconcile) instead of waiting for `reconnect_timeout`.

use anyhow::{anyhow, Result};

use crate::api::enc;

use super::{Client, HttpArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// Forget the member at once instead of keeping it as left.
    #[arg(long)]
    prune: bool,
    /// The member's node name.
    node: String,
}

pub fn run(a: Args) -> Result<i32> {
    let q: Vec<(&str, String)> = if a.prune {
        vec![("prune", "1".into())]
    } else {
        vec![]
    };
    Client::new(&a.http)?
        .call_ok(
            reqwest::Method::PUT,
            &format!("/v1/agent/force-leave/{}", enc(&a.node)),
            &q,
            None,
            &[],
        )
        .map_err(|e| anyhow!("Error force leaving: {e}"))?;
    Ok(0)
}
