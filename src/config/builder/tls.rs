//! The `tls` stanza (`defaults`, `https`, `internal_rpc`, `grpc`) and
//! Consul's deprecated top-level TLS keys (`ca_file`, `verify_incoming`,
//! ...), resolved into [`TlsConfig`] once every file and flag is in.
//!
//! Precedence is Consul's: a key in a protocol's own block wins, then
//! `tls.defaults`, then the deprecated top-level key, which Consul folds
//! into the same file's `tls.defaults` (or the block it moved to) only
//! where that file does not set the new name. Across files the later file
//! wins, key by key. Every value keeps the file and key that set it, so a
//! rule that only breaks once files are merged (`verify_incoming` in one
//! file, no CA in any) still names where.

use std::path::PathBuf;

use super::value::At;
use super::ConfigError;
use crate::config::{RuntimeConfig, TlsConfig, TlsProtocol};
use crate::tls::settings::{CIPHER_SUITES, CIPHER_SUITES_WITHOUT_RUSTLS};

/// Where a value was set: a file's key, or a flag.
#[derive(Debug, Clone)]
pub(super) enum Origin {
    Key { file: String, key: String },
    Flag(&'static str),
}

impl Origin {
    fn of(a: &At) -> Origin {
        Origin::Key {
            file: a.file.to_string(),
            key: a.key.clone(),
        }
    }

    fn err(&self, problem: impl Into<String>) -> ConfigError {
        match self {
            Origin::Key { file, key } => ConfigError::Key {
                file: file.clone(),
                key: key.clone(),
                problem: problem.into(),
            },
            Origin::Flag(flag) => ConfigError::Flag {
                flag: flag.to_string(),
                problem: problem.into(),
            },
        }
    }
}

/// A value with where it was set.
#[derive(Debug, Clone)]
struct Set<T> {
    v: T,
    at: Origin,
}

/// One block's keys as written (`None` = not set, so the next level of
/// precedence decides).
#[derive(Debug, Clone, Default)]
struct Block {
    ca_file: Option<Set<PathBuf>>,
    ca_path: Option<Set<PathBuf>>,
    cert_file: Option<Set<PathBuf>>,
    key_file: Option<Set<PathBuf>>,
    /// `None` inside: `TLS_AUTO` (or empty), which still overrides a
    /// version inherited from `tls.defaults`.
    tls_min_version: Option<Set<Option<String>>>,
    tls_cipher_suites: Option<Set<Vec<String>>>,
    verify_incoming: Option<Set<bool>>,
    verify_outgoing: Option<Set<bool>>,
    verify_server_hostname: Option<Set<bool>>,
    use_auto_cert: Option<Set<bool>>,
}

/// Applies `$op` to every field of a [`Block`], by name.
macro_rules! each_field {
    ($op:ident) => {
        $op!(ca_file);
        $op!(ca_path);
        $op!(cert_file);
        $op!(key_file);
        $op!(tls_min_version);
        $op!(tls_cipher_suites);
        $op!(verify_incoming);
        $op!(verify_outgoing);
        $op!(verify_server_hostname);
        $op!(use_auto_cert);
    };
}

impl Block {
    /// A later file's keys win over this one's, key by key.
    fn merge(&mut self, later: Block) {
        macro_rules! take {
            ($f:ident) => {
                if later.$f.is_some() {
                    self.$f = later.$f;
                }
            };
        }
        each_field!(take);
    }

    /// Fills what this block leaves unset from `fallback`.
    fn fill(&mut self, fallback: Block) {
        macro_rules! fill {
            ($f:ident) => {
                if self.$f.is_none() {
                    self.$f = fallback.$f;
                }
            };
        }
        each_field!(fill);
    }

    fn is_empty(&self) -> bool {
        let mut empty = true;
        macro_rules! check {
            ($f:ident) => {
                empty &= self.$f.is_none();
            };
        }
        each_field!(check);
        empty
    }

    /// Reads key `k` of a block into this one. `block` is the stanza's
    /// name (`defaults`, `https`, ...) for the keys valid only in some.
    fn read(&mut self, block: &str, k: &str, a: &At) -> Result<(), ConfigError> {
        let at = Origin::of(a);
        let path = |a: &At| -> Result<Set<PathBuf>, ConfigError> {
            Ok(Set {
                v: PathBuf::from(a.string()?),
                at: Origin::of(a),
            })
        };
        let flag = |a: &At| -> Result<Set<bool>, ConfigError> {
            Ok(Set {
                v: a.boolean()?,
                at: Origin::of(a),
            })
        };
        match k {
            "ca_file" => self.ca_file = Some(path(a)?),
            "ca_path" => self.ca_path = Some(path(a)?),
            "cert_file" => self.cert_file = Some(path(a)?),
            "key_file" => self.key_file = Some(path(a)?),
            "tls_min_version" => {
                let v = min_version(a, &a.string()?)?;
                self.tls_min_version = Some(Set { v, at });
            }
            "tls_cipher_suites" => {
                let v = cipher_suites(a)?;
                self.tls_cipher_suites = Some(Set { v, at });
            }
            "verify_incoming" => self.verify_incoming = Some(flag(a)?),
            // Consul's own refusals, in its words.
            "verify_outgoing" if block == "grpc" => {
                return Err(a.err("verify_outgoing is not valid in the tls.grpc stanza"))
            }
            "verify_outgoing" => self.verify_outgoing = Some(flag(a)?),
            "verify_server_hostname" if block != "internal_rpc" => {
                return Err(
                    a.err("verify_server_hostname is only valid in the tls.internal_rpc stanza")
                )
            }
            "verify_server_hostname" => self.verify_server_hostname = Some(flag(a)?),
            "use_auto_cert" if block != "grpc" => {
                return Err(a.err("use_auto_cert is only valid in the tls.grpc stanza"))
            }
            "use_auto_cert" => self.use_auto_cert = Some(flag(a)?),
            _ => return Err(a.err(format!("unknown tls.{block} key"))),
        }
        Ok(())
    }
}

/// `tls_min_version`: Consul's names; the two rustls lacks are refused.
fn min_version(a: &At, v: &str) -> Result<Option<String>, ConfigError> {
    match v {
        "" | "TLS_AUTO" => Ok(None),
        "TLSv1_2" | "TLSv1_3" => Ok(Some(v.to_string())),
        "TLSv1_0" | "TLSv1_1" => Err(a.err(format!(
            "{v} is not supported by Meridian (rustls speaks TLS 1.2 and 1.3 only)"
        ))),
        _ => Err(a.err(format!(
            "invalid TLS version: no matching TLS version found for {v}, please specify one of [TLS_AUTO, TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3]"
        ))),
    }
}

/// `tls_cipher_suites`: a comma-separated string as in Consul (a list of
/// names is taken too); each name must be one rustls implements.
fn cipher_suites(a: &At) -> Result<Vec<String>, ConfigError> {
    let names: Vec<String> = a
        .strings()?
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(n) = names
        .iter()
        .find(|n| CIPHER_SUITES_WITHOUT_RUSTLS.contains(&n.as_str()))
    {
        return Err(a.err(format!(
            "{n} is not supported by Meridian (rustls has no CBC cipher suites)"
        )));
    }
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !CIPHER_SUITES.contains(n))
        .collect();
    if !unknown.is_empty() {
        return Err(a.err(format!(
            "invalid TLS cipher suites: no matching Consul Agent TLS cipher suite found for {}",
            unknown.join(",")
        )));
    }
    Ok(names)
}

/// The deprecated top-level keys, each with the key it moved to, in the
/// order Consul warns of them.
const DEPRECATED: &[(&str, &str)] = &[
    ("ca_file", "tls.defaults.ca_file"),
    ("ca_path", "tls.defaults.ca_path"),
    ("cert_file", "tls.defaults.cert_file"),
    ("key_file", "tls.defaults.key_file"),
    ("tls_cipher_suites", "tls.defaults.tls_cipher_suites"),
    ("tls_min_version", "tls.defaults.tls_min_version"),
    ("verify_incoming", "tls.defaults.verify_incoming"),
    ("verify_incoming_https", "tls.https.verify_incoming"),
    ("verify_incoming_rpc", "tls.internal_rpc.verify_incoming"),
    ("verify_outgoing", "tls.defaults.verify_outgoing"),
    (
        "verify_server_hostname",
        "tls.internal_rpc.verify_server_hostname",
    ),
];

/// Consul ignores it, and says so.
const PREFER_SERVER_CIPHER_SUITES: &str = "tls_prefer_server_cipher_suites";

/// Whether a top-level key is one this file reads.
pub(super) fn owns(key: &str) -> bool {
    key == "tls"
        || key == PREFER_SERVER_CIPHER_SUITES
        || DEPRECATED.iter().any(|(old, _)| *old == key)
}

/// The four blocks of a `tls` stanza.
#[derive(Debug, Default)]
struct Blocks {
    defaults: Block,
    https: Block,
    internal_rpc: Block,
    grpc: Block,
}

impl Blocks {
    fn get(&mut self, name: &str) -> Option<&mut Block> {
        match name {
            "defaults" => Some(&mut self.defaults),
            "https" => Some(&mut self.https),
            "internal_rpc" => Some(&mut self.internal_rpc),
            "grpc" => Some(&mut self.grpc),
            _ => None,
        }
    }

    fn merge(&mut self, later: Blocks) {
        self.defaults.merge(later.defaults);
        self.https.merge(later.https);
        self.internal_rpc.merge(later.internal_rpc);
        self.grpc.merge(later.grpc);
    }
}

/// One file's TLS keys, until [`FileTls::finish`] folds them into the
/// [`TlsKeys`] gathered from every file.
#[derive(Debug, Default)]
pub(super) struct FileTls {
    blocks: Blocks,
    /// The deprecated keys, read into the block they moved to.
    legacy: Blocks,
    /// The deprecated keys given, by old name, in the order read.
    deprecated: Vec<&'static str>,
    warnings: Vec<String>,
}

impl FileTls {
    /// Reads a top-level key that [`owns`] claims.
    pub(super) fn read(&mut self, k: &str, a: &At) -> Result<(), ConfigError> {
        if k == "tls" {
            for stanza in a.objects()? {
                for (bk, bv) in stanza.object()? {
                    let b = stanza.child(bk, bv);
                    let block = self
                        .blocks
                        .get(bk)
                        .ok_or_else(|| b.err("unknown tls block"))?;
                    for (key, v) in b.object()? {
                        block.read(bk, key, &b.child(key, v))?;
                    }
                }
            }
            return Ok(());
        }
        if k == PREFER_SERVER_CIPHER_SUITES {
            a.boolean()?;
            self.warnings.push(format!(
                "The '{k}' field is deprecated and will be ignored."
            ));
            return Ok(());
        }
        let Some(&(old, new)) = DEPRECATED.iter().find(|(old, _)| *old == k) else {
            return Err(a.err("unknown config key"));
        };
        let mut parts = new.splitn(3, '.').skip(1);
        let (Some(block), Some(key)) = (parts.next(), parts.next()) else {
            return Err(a.err("unknown config key"));
        };
        let target = self
            .legacy
            .get(block)
            .ok_or_else(|| a.err("unknown config key"))?;
        if key == "tls_min_version" {
            // Only here does Consul still take the old names (`tls12`).
            let v = a.string()?;
            let renamed = match v.as_str() {
                "tls10" => Some("TLSv1_0"),
                "tls11" => Some("TLSv1_1"),
                "tls12" => Some("TLSv1_2"),
                "tls13" => Some("TLSv1_3"),
                _ => None,
            };
            if let Some(r) = renamed {
                self.warnings.push(format!(
                    "'tls_min_version' value '{v}' is deprecated, please specify '{r}' instead"
                ));
            }
            target.tls_min_version = Some(Set {
                v: min_version(a, renamed.unwrap_or(&v))?,
                at: Origin::of(a),
            });
        } else {
            target.read(block, key, a)?;
        }
        self.deprecated.push(old);
        Ok(())
    }

    /// Folds the file's deprecated keys in where the file does not give
    /// the new name, adds its warnings, and merges it into `all`.
    pub(super) fn finish(mut self, all: &mut TlsKeys, cfg: &mut RuntimeConfig, file: &str) {
        let legacy = std::mem::take(&mut self.legacy);
        self.blocks.defaults.fill(legacy.defaults);
        self.blocks.https.fill(legacy.https);
        self.blocks.internal_rpc.fill(legacy.internal_rpc);
        for &(old, new) in DEPRECATED {
            if self.deprecated.contains(&old) {
                cfg.warnings.push(format!(
                    "{file}: The '{old}' field is deprecated. Use the '{new}' field instead."
                ));
            }
        }
        for w in self.warnings {
            cfg.warnings.push(format!("{file}: {w}"));
        }
        all.blocks.merge(self.blocks);
    }

    /// Whether the file set anything in `tls.grpc` (Meridian serves no
    /// gRPC, so the block is accepted with a warning).
    pub(super) fn sets_grpc(&self) -> bool {
        !self.blocks.grpc.is_empty()
    }
}

/// The TLS keys of every file read so far, and where `ports.https` was
/// set, judged together by [`TlsKeys::resolve`].
#[derive(Debug, Default)]
pub(super) struct TlsKeys {
    blocks: Blocks,
    https_port: Option<Origin>,
}

impl TlsKeys {
    /// `ports.https` was set here (the last one given wins, as the port).
    pub(super) fn https_port_at(&mut self, a: &At) {
        self.https_port = Some(Origin::of(a));
    }

    pub(super) fn https_port_flag(&mut self) {
        self.https_port = Some(Origin::Flag("https-port"));
    }

    /// Resolves each protocol's settings into `cfg.tls` and checks the
    /// rules that hold across keys.
    pub(super) fn resolve(self, cfg: &mut RuntimeConfig) -> Result<(), ConfigError> {
        let Blocks {
            defaults,
            https,
            internal_rpc,
            ..
        } = self.blocks;
        if let (Some(Set { v: Some(v), .. }), Some(suites)) =
            (&defaults.tls_min_version, &defaults.tls_cipher_suites)
        {
            if v == "TLSv1_3" && !suites.v.is_empty() {
                return Err(suites.at.err("TLS 1.3 cipher suites are not configurable"));
            }
        }
        let https = protocol(https, &defaults, false)?;
        let internal_rpc = protocol(internal_rpc, &defaults, true)?;
        if cfg.ports.https.is_some() && !https.has_cert() {
            let at = self.https_port.unwrap_or(Origin::Flag("https-port"));
            return Err(at.err(
                "HTTPS needs a certificate: set cert_file and key_file in tls.https or tls.defaults",
            ));
        }
        cfg.tls = TlsConfig {
            https,
            internal_rpc,
        };
        Ok(())
    }
}

/// A flag set to true, with where.
fn on(s: &Option<Set<bool>>) -> Option<&Set<bool>> {
    s.as_ref().filter(|s| s.v)
}

/// One protocol's settings: its own block over `defaults`, checked.
/// `rpc` adds what only internal RPC has (`verify_server_hostname`,
/// which implies `verify_outgoing`).
fn protocol(own: Block, defaults: &Block, rpc: bool) -> Result<TlsProtocol, ConfigError> {
    let own_suites = own.tls_cipher_suites.clone();
    let mut b = own;
    b.fill(defaults.clone());
    let version = b.tls_min_version.as_ref().and_then(|s| s.v.clone());
    let tls13 = version.as_deref() == Some("TLSv1_3");
    let suites = match (own_suites, tls13) {
        (Some(s), true) if !s.v.is_empty() => {
            return Err(s.at.err("TLS 1.3 cipher suites are not configurable"))
        }
        (Some(s), _) => s.v,
        // Inherited suites a TLS 1.3 minimum cannot use are left out, as
        // Consul does, rather than refused.
        (None, true) => Vec::new(),
        (None, _) => b
            .tls_cipher_suites
            .as_ref()
            .map(|s| s.v.clone())
            .unwrap_or_default(),
    };
    match (&b.cert_file, &b.key_file) {
        (Some(c), None) => return Err(c.at.err("cert_file is set without key_file")),
        (None, Some(k)) => return Err(k.at.err("key_file is set without cert_file")),
        _ => {}
    }
    let has_ca = b.ca_file.is_some() || b.ca_path.is_some();
    let has_cert = b.cert_file.is_some() && b.key_file.is_some();
    if let Some(s) = on(&b.verify_incoming) {
        if !has_ca {
            return Err(s
                .at
                .err("VerifyIncoming set but no CA certificates were provided"));
        }
        if !has_cert {
            return Err(s.at.err(
                "VerifyIncoming requires either a Cert and Key pair in the configuration file, or auto_encrypt/auto_config be enabled",
            ));
        }
    }
    let verify_server_hostname = if rpc {
        on(&b.verify_server_hostname)
    } else {
        None
    };
    // Consul (CVE-2018-19653): verifying the server's name is meaningless
    // over plain TCP, so it turns verify_outgoing on.
    if let Some(s) = on(&b.verify_outgoing).or(verify_server_hostname) {
        if !has_ca {
            return Err(s
                .at
                .err("VerifyOutgoing set but no CA certificates were provided"));
        }
    }
    let value = |s: Option<Set<PathBuf>>| s.map(|s| s.v);
    Ok(TlsProtocol {
        ca_file: value(b.ca_file),
        ca_path: value(b.ca_path),
        cert_file: value(b.cert_file),
        key_file: value(b.key_file),
        tls_min_version: version,
        tls_cipher_suites: suites,
        verify_incoming: on(&b.verify_incoming).is_some(),
        verify_outgoing: on(&b.verify_outgoing).is_some() || verify_server_hostname.is_some(),
        verify_server_hostname: verify_server_hostname.is_some(),
    })
}
