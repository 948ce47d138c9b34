//! `meridian watch -type=TYPE [params] [HANDLER...]`: without a handler,
//! prints the current JSON once and exits (as Consul's); with one, runs it
//! on every change until interrupted.

use std::sync::atomic::AtomicBool;

use anyhow::{anyhow, Result};

use super::{Client, HttpArgs};
use crate::watch::{WatchHandler, WatchKind, WatchParams, WatchPlan};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// key, keyprefix, services, nodes, service, checks or event.
    #[arg(long = "type")]
    kind: String,
    #[arg(long)]
    key: Option<String>,
    #[arg(long)]
    prefix: Option<String>,
    #[arg(long)]
    service: Option<String>,
    #[arg(long)]
    tag: Vec<String>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    passingonly: bool,
    #[arg(long)]
    state: Option<String>,
    /// The event name (type event).
    #[arg(long)]
    name: Option<String>,
    /// keyprefix only (Meridian extension): after the first run, the
    /// handler gets only the keys written or deleted since the last one.
    /// A Go-style boolean: `-changes-only` or `-changes-only=false`, never
    /// taking the handler that follows as its value.
    #[arg(
        long = "changes-only",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false"
    )]
    changes_only: bool,
    /// Run the handler through a shell (`sh -c`).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    shell: bool,
    /// The handler and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    handler: Vec<String>,
}

pub fn run(a: Args) -> Result<i32> {
    let kind = WatchKind::from_params(&WatchParams {
        kind: a.kind.clone(),
        key: a.key.clone(),
        prefix: a.prefix.clone(),
        service: a.service.clone(),
        tags: a.tag.clone(),
        passing_only: a.passingonly,
        state: a.state.clone(),
        name: a.name.clone(),
        changes_only: a.changes_only,
    })
    .map_err(|e| anyhow!("Failed to parse watch parameters: {e}"))?;
    let client = Client::new(&a.http)?;
    let handler = if a.handler.is_empty() {
        WatchHandler::Print
    } else {
        WatchHandler::Script {
            args: a.handler.clone(),
            shell: a.shell,
        }
    };
    let plan = WatchPlan {
        kind,
        datacenter: a.http.datacenter.clone(),
        token: client.token().map(str::to_string),
        stale: a.http.stale,
        handler,
    };
    let once = plan.handler == WatchHandler::Print;
    let stop = AtomicBool::new(false);
    crate::watch::run(
        &plan,
        client.base(),
        client.tls(),
        &stop,
        once,
        |index, value| {
            if let Err(e) = crate::watch::invoke(&plan.handler, index, value) {
                eprintln!("Error executing handler: {e}");
            }
        },
    )
    .map_err(|e| anyhow!("Error querying Consul agent: {e}"))?;
    Ok(0)
}
