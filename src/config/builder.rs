//! Builds the one [`RuntimeConfig`]: defaults → files → flags, then
//! validation. Files are read into one JSON tree whatever their format
//! (HCL goes through hcl-rs), and walked key by key so that every error
//! names the file, the key path and the problem.
//!
//! Its files, one concern each:
//!
//! - this file: the pipeline, finding and reading the files, the errors,
//!   and the node ID kept in the data dir;
//! - `value.rs`: the typed, key-naming reads of one value;
//! - `file.rs`: a file's top-level keys;
//! - `blocks.rs`: the nested setting blocks (`ports`, `limits`, `dns_config`...);
//! - `keys.rs`: the keys accepted without effect (warned of) and refused;
//! - `acl.rs`: the ACL keys, `primary_datacenter` and their legacy names;
//! - `tls.rs`: the `tls` stanza and its deprecated top-level keys;
//! - `definitions.rs`: service and check definitions;
//! - `watches.rs`: `watches` entries;
//! - `flags.rs`: the command-line flags, applied last;
//! - `validate.rs`: the rules across keys, checked on the merged result.

mod acl;
mod blocks;
mod definitions;
mod file;
mod flags;
mod hcl1;
mod keys;
mod tls;
mod validate;
mod value;
mod watches;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

use super::{AgentFlags, RuntimeConfig, ServiceDefinition};
use file::apply_file;
use flags::apply_flags;
pub use keys::{IGNORED as IGNORED_KEYS, REFUSED as REFUSED_KEYS};
use validate::validate;
pub use validate::SCRIPTS_DISABLED;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("Error reading {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("Error parsing {file}: {problem}")]
    Parse { file: String, problem: String },
    #[error("Error parsing {file}: {key}: {problem}")]
    Key {
        file: String,
        key: String,
        problem: String,
    },
    #[error("Invalid flag -{flag}: {problem}")]
    Flag { flag: String, problem: String },
    #[error("{0}")]
    Invalid(String),
    #[error("Error with node ID file {file}: {source}")]
    NodeId {
        file: String,
        source: std::io::Error,
    },
}

/// The services of a definition file (`meridian services register
/// FILE`): its `service` and `services` blocks, checked as the agent
/// checks them; any other top-level key is an error naming it. With
/// them, the warning naming keys taken without effect, if any.
pub fn service_file(path: &Path) -> Result<(Vec<ServiceDefinition>, Vec<String>), ConfigError> {
    let root = read_file(path)?;
    let file = path.display().to_string();
    let top = value::At {
        file: &file,
        key: String::new(),
        v: &root,
    };
    let mut ignored = keys::Ignored::default();
    let mut out = Vec::new();
    for (k, v) in top.object()? {
        let a = top.child(k, v);
        match k.as_str() {
            "service" | "services" => {
                for s in a.objects()? {
                    out.push(definitions::parse_service(&s, &mut ignored)?);
                }
            }
            _ => return Err(a.err("only service and services may be given in a service file")),
        }
    }
    let mut scratch = RuntimeConfig::default();
    ignored.warn(&mut scratch, &file);
    Ok((out, scratch.warnings))
}

/// Reads one file into a JSON tree, by its extension (`.hcl` or JSON).
fn read_file(path: &Path) -> Result<Value, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    parse_text(&file, &text, path.extension().is_some_and(|e| e == "hcl"))
}

/// One file's text into a JSON tree: HCL when `hcl`, JSON otherwise.
fn parse_text(file: &str, text: &str, hcl: bool) -> Result<Value, ConfigError> {
    let v: Value = if hcl {
        hcl::from_str(text)
            .or_else(|e| {
                hcl1::one_attribute_per_line(text)
                    .and_then(|t| hcl::from_str(&t).ok())
                    .ok_or(e)
            })
            .map_err(|e| ConfigError::Parse {
                file: file.to_string(),
                problem: e.to_string(),
            })?
    } else {
        serde_json::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_string(),
            problem: e.to_string(),
        })?
    };
    if !v.is_object() {
        return Err(ConfigError::Parse {
            file: file.to_string(),
            problem: "the top level must be an object".into(),
        });
    }
    Ok(v)
}

/// What `meridian validate` says of one file given as text (`hcl`: its
/// format), without touching the disk: the fuzz targets' way into the
/// loader.
pub fn validate_text(text: &str, hcl: bool) -> Result<RuntimeConfig, ConfigError> {
    let name = if hcl { "fuzz.hcl" } else { "fuzz.json" };
    let mut cfg = defaults(false);
    let mut tls = tls::TlsKeys::default();
    apply_file(&mut cfg, name, &parse_text(name, text, hcl)?, &mut tls)?;
    tls.resolve(&mut cfg)?;
    validate(&mut cfg, false)?;
    Ok(cfg)
}

/// The files named by `-config-file` and `-config-dir`, in reading order.
fn collect_files(files: &[PathBuf], dirs: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out: Vec<PathBuf> = files.to_vec();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Read {
            file: dir.display().to_string(),
            source,
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json" || e == "hcl"))
            .collect();
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn defaults(dev: bool) -> RuntimeConfig {
    let mut cfg = RuntimeConfig {
        node_name: hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "meridian".into()),
        // Unset until validation derives it, once every file and flag has
        // had its say on the datacenter.
        primary_datacenter: String::new(),
        ..Default::default()
    };
    if dev {
        cfg.dev = true;
        cfg.server = true;
        cfg.bootstrap = true;
        cfg.bind_addr = IpAddr::from([127, 0, 0, 1]);
        cfg.ui_enabled = true;
        cfg.log_level = "debug".into();
    }
    cfg
}

fn read_all(cfg: &mut RuntimeConfig, files: &[PathBuf]) -> Result<tls::TlsKeys, ConfigError> {
    let mut tls = tls::TlsKeys::default();
    for path in files {
        let tree = read_file(path)?;
        apply_file(cfg, &path.display().to_string(), &tree, &mut tls)?;
        cfg.sources.push(path.clone());
    }
    Ok(tls)
}

/// Builds the agent's config from its flags and the files they name.
pub fn build(flags: &AgentFlags) -> Result<RuntimeConfig, ConfigError> {
    let mut cfg = defaults(flags.dev.unwrap_or(false));
    let files = collect_files(&flags.config_file, &flags.config_dir)?;
    let mut tls = read_all(&mut cfg, &files)?;
    apply_flags(&mut cfg, flags, &mut tls)?;
    tls.resolve(&mut cfg)?;
    validate(&mut cfg, true)?;
    ensure_node_id(&mut cfg)?;
    // Seen on reload; at start, before logging is set up, the agent logs
    // them from the config instead.
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    Ok(cfg)
}

/// Checks config files or directories without starting an agent
/// (`meridian validate`). `data_dir` may be left to flags.
pub fn validate_paths(paths: &[PathBuf]) -> Result<RuntimeConfig, ConfigError> {
    let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) =
        paths.iter().cloned().partition(|p| p.is_dir());
    let mut cfg = defaults(false);
    let all = collect_files(&files, &dirs)?;
    read_all(&mut cfg, &all)?.resolve(&mut cfg)?;
    validate(&mut cfg, false)?;
    Ok(cfg)
}

/// Gives the node a stable ID: the configured one, else the one saved in
/// `<data_dir>/node-id`, else a new UUID (saved when there is a data dir).
pub fn ensure_node_id(cfg: &mut RuntimeConfig) -> Result<(), ConfigError> {
    if !cfg.node_id.is_empty() {
        return Ok(());
    }
    let Some(dir) = cfg.data_dir.clone().filter(|_| !cfg.dev) else {
        cfg.node_id = uuid::Uuid::new_v4().to_string();
        return Ok(());
    };
    let path = dir.join("node-id");
    let file = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let id = s.trim().to_string();
            if uuid::Uuid::parse_str(&id).is_err() {
                return Err(ConfigError::Invalid(format!(
                    "{file}: {id:?} is not a UUID"
                )));
            }
            cfg.node_id = id;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&dir).map_err(|source| ConfigError::NodeId {
                file: dir.display().to_string(),
                source,
            })?;
            let id = uuid::Uuid::new_v4().to_string();
            std::fs::write(&path, &id).map_err(|source| ConfigError::NodeId {
                file: file.clone(),
                source,
            })?;
            cfg.node_id = id;
        }
        Err(source) => return Err(ConfigError::NodeId { file, source }),
    }
    Ok(())
}

#[cfg(test)]
mod acl_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
