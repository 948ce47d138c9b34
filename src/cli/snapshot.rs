//! `meridian snapshot save FILE`, `restore FILE` and `inspect FILE`, as
//! Consul's: save verifies the archive it received before keeping it (and
//! writes it atomically), restore sends it whole.

use anyhow::{anyhow, Context, Result};

use super::{columnize, Client, HttpArgs};

#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCmd {
    /// Saves a snapshot of the datacenter's state to FILE.
    Save(FileArgs),
    /// Restores the datacenter's state from FILE.
    Restore(FileArgs),
    /// Shows a snapshot file's metadata.
    Inspect { file: std::path::PathBuf },
}

#[derive(Debug, clap::Args)]
pub struct FileArgs {
    #[command(flatten)]
    http: HttpArgs,
    file: std::path::PathBuf,
}

pub fn run(cmd: SnapshotCmd) -> Result<i32> {
    match cmd {
        SnapshotCmd::Save(a) => {
            let r = Client::new(&a.http)?.call_ok(
                reqwest::Method::GET,
                "/v1/snapshot",
                &[],
                None,
                &[],
            )?;
            let (meta, _) = crate::snapshot::decode(&r.body)
                .map_err(|e| anyhow!("Error verifying snapshot file: {e}"))?;
            let tmp = a.file.with_extension("tmp");
            std::fs::write(&tmp, &r.body)
                .and_then(|_| std::fs::rename(&tmp, &a.file))
                .with_context(|| format!("Error writing snapshot file {}", a.file.display()))?;
            println!("Saved and verified snapshot to index {}", meta.index);
            Ok(0)
        }
        SnapshotCmd::Restore(a) => {
            let bytes = std::fs::read(&a.file)
                .with_context(|| format!("Error opening snapshot file {}", a.file.display()))?;
            Client::new(&a.http)?
                .call_ok(reqwest::Method::PUT, "/v1/snapshot", &[], Some(bytes), &[])
                .map_err(|e| anyhow!("Error restoring snapshot: {e}"))?;
            println!("Restored snapshot");
            Ok(0)
        }
        SnapshotCmd::Inspect { file } => {
            let bytes = std::fs::read(&file)
                .with_context(|| format!("Error opening snapshot file {}", file.display()))?;
            let (meta, snap) = crate::snapshot::decode(&bytes)
                .map_err(|e| anyhow!("Error inspecting snapshot: {e}"))?;
            let rows = vec![
                vec!["ID".into(), meta.id],
                vec!["Size".into(), meta.size.to_string()],
                vec!["Index".into(), meta.index.to_string()],
                vec!["Term".into(), meta.term.to_string()],
                vec!["Version".into(), meta.version.to_string()],
            ];
            print!("{}", columnize(&rows));
            println!();
            let counts = vec![
                vec!["Type".into(), "Count".into()],
                vec!["KVS".into(), snap.kvs.len().to_string()],
                vec!["Register (nodes)".into(), snap.nodes.len().to_string()],
                vec![
                    "Register (services)".into(),
                    snap.services.len().to_string(),
                ],
                vec!["Register (checks)".into(), snap.checks.len().to_string()],
                vec!["Session".into(), snap.sessions.len().to_string()],
            ];
            print!("{}", columnize(&counts));
            Ok(0)
        }
    }
}
