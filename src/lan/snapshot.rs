//! The members known, kept in `<data-dir>/serf/local.snapshot` so that a
//! restarted agent finds its pool again without `-join`, and remembers a
//! graceful leave so it does not rejoin unless told to (`-rejoin`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{LanGossip, MemberStatus};

/// What `<data-dir>/serf/local.snapshot` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Snapshot {
    /// The agent left gracefully: do not rejoin unless told to.
    left: bool,
    members: Vec<SocketAddr>,
}

impl LanGossip {
    /// Members to rejoin from the snapshot of an earlier run, if any.
    pub(super) fn previous_members(&self) -> Vec<SocketAddr> {
        let Some(path) = &self.opts.snapshot else {
            return Vec::new();
        };
        let snap: Snapshot = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable member snapshot");
                Snapshot::default()
            }),
            Err(_) => return Vec::new(),
        };
        if snap.left && !self.opts.rejoin_after_leave {
            tracing::info!("left gracefully last time: not rejoining (see -rejoin)");
            return Vec::new();
        }
        snap.members
            .into_iter()
            .filter(|a| *a != self.me.addr)
            .collect()
    }

    /// Writes the snapshot (atomically: a crash leaves the old one).
    pub(super) fn save_snapshot(&mut self) {
        self.snapshot_dirty = false;
        let Some(path) = &self.opts.snapshot else {
            return;
        };
        let snap = Snapshot {
            left: self.left,
            members: self
                .members
                .values()
                .filter(|m| m.status == MemberStatus::Alive && m.name != self.me.name)
                .map(|m| m.addr)
                .collect(),
        };
        let tmp = path.with_extension("tmp");
        let result = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&tmp, serde_json::to_vec(&snap).unwrap_or_default()))
            .and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "cannot save the member snapshot");
        }
    }
}
