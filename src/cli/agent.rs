//! `meridian agent`: builds the config from flags and files and runs.

use std::sync::Arc;

use anyhow::Result;

use crate::config::{build, AgentFlags};

pub fn run(flags: AgentFlags) -> Result<i32> {
    let config = match build(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("==> {e}");
            return Ok(1);
        }
    };
    // Reload re-reads the same files with the same flags.
    let reload = Arc::new(move || build(&flags).map_err(|e| e.to_string()));
    crate::agent::run_with_reload(config, Some(reload))?;
    Ok(0)
}
