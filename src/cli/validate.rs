//! `meridian validate PATH...`: checks config files without starting.

use std::path::PathBuf;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Config files or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<i32> {
    match crate::config::validate_paths(&a.paths) {
        Ok(cfg) => {
            // As Consul does: what the files deserve a warning for, then the verdict.
            for w in &cfg.warnings {
                eprintln!("{w}");
            }
            println!("Configuration is valid!");
            Ok(0)
        }
        Err(e) => {
            eprintln!("Config validation failed: {e}");
            Ok(1)
        }
    }
}
