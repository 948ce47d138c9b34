//! Services and checks registered through the API, kept under
//! `<data-dir>/services` and `<data-dir>/checks` (Consul's directories)
//! so that they come back after a restart, each with the token it was
//! registered with. Config-file definitions are not kept: the files are
//! read again at start.
//!
//! One file per service or check, named by the hex of its ID (any ID is
//! a safe file name then), written whole to a temporary file and renamed.
//! Writes go through one thread in the order the actor made them, so a
//! register followed at once by a deregister never leaves the file
//! behind, and the actor never waits on the disk.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use crate::config::{CheckDefinition, RuntimeConfig, ServiceDefinition};

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// What a services file holds (the token is inside the definition).
#[derive(Debug, Serialize, Deserialize)]
struct PersistedService {
    #[serde(rename = "Service")]
    service: ServiceDefinition,
}

#[derive(Debug, Serialize, Deserialize)]
struct PersistedCheck {
    #[serde(rename = "Check")]
    check: CheckDefinition,
}

enum Op {
    Write(PathBuf, Vec<u8>),
    Remove(PathBuf),
}

/// The two directories and the writer thread; `None` from [`Store::open`]
/// without a data directory (dev mode keeps everything in memory).
pub struct Store {
    services: PathBuf,
    checks: PathBuf,
    tx: mpsc::Sender<Op>,
    /// Joined by tests; the agent lets it run until the process exits.
    #[cfg_attr(not(test), allow(dead_code))]
    writer: std::thread::JoinHandle<()>,
}

fn file_name(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    pub fn open(config: &RuntimeConfig) -> Option<Store> {
        let dir = config.data_dir.as_ref().filter(|_| !config.dev)?;
        let (tx, rx) = mpsc::channel::<Op>();
        let spawned = std::thread::Builder::new()
            .name("persist-local".into())
            .spawn(move || {
                for op in rx {
                    if let Err(e) = apply(op) {
                        tracing::error!(error = %e, "persisting a local service or check failed");
                    }
                }
            });
        let writer = match spawned {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "no thread to persist local services and checks");
                return None;
            }
        };
        Some(Store {
            services: dir.join("services"),
            checks: dir.join("checks"),
            tx,
            writer,
        })
    }

    fn send(&self, op: Op) {
        // The thread lives as long as the store; a send fails only while
        // the process exits.
        let _ = self.tx.send(op);
    }

    pub fn save_service(&self, def: &ServiceDefinition, id: &str) {
        let body = PersistedService {
            service: def.clone(),
        };
        if let Ok(bytes) = serde_json::to_vec(&body) {
            self.send(Op::Write(self.services.join(file_name(id)), bytes));
        }
    }

    pub fn remove_service(&self, id: &str) {
        self.send(Op::Remove(self.services.join(file_name(id))));
    }

    pub fn save_check(&self, def: &CheckDefinition, id: &str) {
        let body = PersistedCheck { check: def.clone() };
        if let Ok(bytes) = serde_json::to_vec(&body) {
            self.send(Op::Write(self.checks.join(file_name(id)), bytes));
        }
    }

    pub fn remove_check(&self, id: &str) {
        self.send(Op::Remove(self.checks.join(file_name(id))));
    }

    /// Waits for every queued write (tests; the agent never waits).
    #[cfg(test)]
    fn flush(self) {
        drop(self.tx);
        let _ = self.writer.join();
    }

    /// What an earlier run kept: services, then checks. A file that cannot
    /// be read is logged and left in place for an operator.
    pub fn load(&self) -> (Vec<ServiceDefinition>, Vec<CheckDefinition>) {
        let services = read_dir(&self.services)
            .into_iter()
            .filter_map(|p| read::<PersistedService>(&p).map(|s| s.service))
            .collect();
        let checks = read_dir(&self.checks)
            .into_iter()
            .filter_map(|p| read::<PersistedCheck>(&p).map(|c| c.check))
            .collect();
        (services, checks)
    }
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_none() && p.is_file())
        .collect();
    files.sort();
    files
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let parsed = std::fs::read(path)
        .map_err(|source| PersistError::Io {
            path: path.to_path_buf(),
            source,
        })
        .and_then(|bytes| {
            serde_json::from_slice(&bytes).map_err(|source| PersistError::Format {
                path: path.to_path_buf(),
                source,
            })
        });
    match parsed {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "ignoring a persisted service or check");
            None
        }
    }
}

fn apply(op: Op) -> Result<(), PersistError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PersistError::Io { path, source }
    };
    match op {
        Op::Write(path, bytes) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &bytes).map_err(io(&tmp))?;
            // The file holds a token: readable by the agent's user only.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                    .map_err(io(&tmp))?;
            }
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))
        }
        Op::Remove(path) => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Store {
        let cfg = RuntimeConfig {
            data_dir: Some(dir.to_path_buf()),
            dev: false,
            ..Default::default()
        };
        Store::open(&cfg).expect("a data dir")
    }

    #[test]
    fn services_and_checks_come_back_and_removals_stay_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = store(dir.path());
        let mut web = ServiceDefinition {
            id: "web/1".into(),
            name: "web".into(),
            port: 80,
            ..Default::default()
        };
        web.tagged_addresses.insert(
            "wan".into(),
            crate::structs::catalog::ServiceAddress {
                address: "198.51.100.1".into(),
                port: 8080,
            },
        );
        s.save_service(&web, "web/1");
        s.save_service(
            &ServiceDefinition {
                name: "db".into(),
                ..Default::default()
            },
            "db",
        );
        s.remove_service("db");
        let check = CheckDefinition {
            id: "mem".into(),
            ttl: Some(std::time::Duration::from_secs(30)),
            ..Default::default()
        };
        s.save_check(&check, "mem");
        s.flush();
        let (services, checks) = store(dir.path()).load();
        assert_eq!(services, vec![web]);
        assert_eq!(checks, vec![check]);
    }
}
