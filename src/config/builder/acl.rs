//! A config file's ACL keys: the `acl` stanza with its `tokens`, the
//! top-level `primary_datacenter`, and the legacy names Consul still
//! accepts for them (`acl_datacenter`, `acl_master_token`,
//! `acl.tokens.master`, ...), each with Consul's deprecation warning.
//!
//! A file's keys are gathered first and applied at its end, because
//! within one file the current name wins over a legacy one whatever
//! their order (Consul's `deprecated.go`); across files the later file
//! wins, as for every key. The warnings go to
//! [`RuntimeConfig::warnings`], prefixed with the file.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::value::At;
use super::ConfigError;
use crate::config::{AclConfig, RuntimeConfig};

type Setter = Box<dyn FnOnce(&mut RuntimeConfig)>;
/// Reads and checks a value at once, so that every error names the file
/// and the key as written, legacy or not; the setter waits for precedence.
type Reader = fn(&At) -> Result<Setter, ConfigError>;

/// Every key this file sets, by its current name, with its reader.
#[rustfmt::skip]
const KEYS: &[(&str, Reader)] = &[
    ("primary_datacenter", primary_datacenter),
    ("acl.enabled", |a| set(a.boolean()?, |c| &mut c.enabled)),
    ("acl.default_policy", |a| set(policy(a)?, |c| &mut c.default_policy)),
    ("acl.down_policy", |a| set(policy(a)?, |c| &mut c.down_policy)),
    ("acl.policy_ttl", |a| set(a.duration()?, |c| &mut c.policy_ttl)),
    ("acl.role_ttl", |a| set(a.duration()?, |c| &mut c.role_ttl)),
    ("acl.token_ttl", |a| set(a.duration()?, |c| &mut c.token_ttl)),
    ("acl.enable_key_list_policy", |a| set(a.boolean()?, |c| &mut c.enable_key_list_policy)),
    ("acl.enable_token_persistence", |a| set(a.boolean()?, |c| &mut c.enable_token_persistence)),
    ("acl.enable_token_replication", |a| set(a.boolean()?, |c| &mut c.enable_token_replication)),
    ("acl.tokens.initial_management", |a| set(a.string()?, |c| &mut c.tokens.initial_management)),
    ("acl.tokens.default", |a| set(a.string()?, |c| &mut c.tokens.default)),
    ("acl.tokens.agent", |a| set(a.string()?, |c| &mut c.tokens.agent)),
    ("acl.tokens.agent_recovery", |a| set(a.string()?, |c| &mut c.tokens.agent_recovery)),
    ("acl.tokens.replication", |a| set(a.string()?, |c| &mut c.tokens.replication)),
    ("acl.tokens.dns", |a| set(a.string()?, |c| &mut c.tokens.dns)),
    ("acl.tokens.config_file_service_registration",
        |a| set(a.string()?, |c| &mut c.tokens.config_file_service_registration)),
];

/// The legacy names, each with the key it moved to, in the order Consul
/// applies them: where two name one key (`acl.tokens.master` and
/// `acl_master_token`), the first wins.
const LEGACY: &[(&str, &str)] = &[
    ("acl.tokens.agent_master", "acl.tokens.agent_recovery"),
    ("acl_agent_master_token", "acl.tokens.agent_recovery"),
    ("acl_agent_token", "acl.tokens.agent"),
    ("acl_token", "acl.tokens.default"),
    ("acl.tokens.master", "acl.tokens.initial_management"),
    ("acl_master_token", "acl.tokens.initial_management"),
    ("acl_replication_token", "acl.tokens.replication"),
    ("enable_acl_replication", "acl.enable_token_replication"),
    ("acl_datacenter", "primary_datacenter"),
    ("acl_default_policy", "acl.default_policy"),
    ("acl_down_policy", "acl.down_policy"),
    ("acl_ttl", "acl.token_ttl"),
    ("acl_enable_key_list_policy", "acl.enable_key_list_policy"),
];

/// Whether a top-level key is one this file reads.
pub(super) fn owns(key: &str) -> bool {
    matches!(key, "acl" | "primary_datacenter" | "acl_enforce_version_8")
        || LEGACY.iter().any(|(old, _)| *old == key)
}

/// A value read and checked, waiting for the file's precedence.
struct Pending {
    /// The key as written, for messages.
    key: String,
    set: Setter,
}

/// One file's ACL keys, gathered until [`AclKeys::apply`].
#[derive(Default)]
pub(super) struct AclKeys {
    /// By current name.
    current: BTreeMap<&'static str, Pending>,
    /// By legacy name.
    legacy: BTreeMap<&'static str, Pending>,
    /// Warnings other than deprecations, in the order the keys came.
    warnings: Vec<String>,
}

impl AclKeys {
    /// Reads a top-level key that [`owns`] claims.
    pub(super) fn read(&mut self, k: &str, a: &At) -> Result<(), ConfigError> {
        match k {
            "acl" => {
                for block in a.objects()? {
                    self.read_acl(&block)?;
                }
            }
            // Consul ignores it since 1.11 and says so; any value goes.
            "acl_enforce_version_8" => self.warnings.push(format!(
                "config key {k:?} is deprecated and should be removed"
            )),
            _ => self.read_key("", k, a, "unknown config key")?,
        }
        Ok(())
    }

    fn read_acl(&mut self, acl: &At) -> Result<(), ConfigError> {
        for (k, v) in acl.object()? {
            let a = acl.child(k, v);
            match k.as_str() {
                "tokens" => {
                    for block in a.objects()? {
                        self.read_tokens(&block)?;
                    }
                }
                "msp_disable_bootstrap" => {
                    a.boolean()?;
                    self.enterprise("acl.msp_disable_bootstrap");
                }
                _ => self.read_key("acl.", k, &a, "unknown acl key")?,
            }
        }
        Ok(())
    }

    fn read_tokens(&mut self, tokens: &At) -> Result<(), ConfigError> {
        for (k, v) in tokens.object()? {
            let a = tokens.child(k, v);
            if k != "managed_service_provider" {
                self.read_key("acl.tokens.", k, &a, "unknown acl.tokens key")?;
                continue;
            }
            for p in a.objects()? {
                for (pk, pv) in p.object()? {
                    let x = p.child(pk, pv);
                    match pk.as_str() {
                        "accessor_id" | "secret_id" => drop(x.string()?),
                        _ => return Err(x.err("unknown managed_service_provider key")),
                    }
                }
            }
            self.enterprise("acl.tokens.managed_service_provider");
        }
        Ok(())
    }

    /// Key `k` of the object at `prefix`, by its current or legacy name.
    fn read_key(
        &mut self,
        prefix: &str,
        k: &str,
        a: &At,
        unknown: &str,
    ) -> Result<(), ConfigError> {
        let full = format!("{prefix}{k}");
        let legacy = LEGACY.iter().find(|(old, _)| *old == full);
        let name = legacy.map_or(full.as_str(), |&(_, new)| new);
        let &(name, read) = KEYS
            .iter()
            .find(|(n, _)| *n == name && !k.contains('.'))
            .ok_or_else(|| a.err(unknown))?;
        let p = Pending {
            key: a.key.clone(),
            set: read(a)?,
        };
        match legacy {
            Some(&(old, _)) => self.legacy.insert(old, p),
            None => self.current.insert(name, p),
        };
        Ok(())
    }

    fn enterprise(&mut self, key: &str) {
        self.warnings.push(format!(
            "{key:?} is a Consul Enterprise configuration and will have no effect"
        ));
    }

    /// Applies the file's values on top of `cfg`: a legacy name only where
    /// the file does not give the current one, as Consul does.
    pub(super) fn apply(mut self, cfg: &mut RuntimeConfig, file: &str) {
        let mut warnings = Vec::new();
        for &(old, new) in LEGACY {
            let Some(p) = self.legacy.remove(old) else {
                continue;
            };
            warnings.push(format!(
                "The '{old}' field is deprecated. Use the '{new}' field instead."
            ));
            // Consul's side effects of two legacy names, which win even over
            // the current key in the same file: a replication token turns
            // token replication on, and an ACL datacenter turns ACLs on.
            let implied = |slot: fn(&mut AclConfig) -> &mut bool| Pending {
                key: p.key.clone(),
                set: Box::new(move |c: &mut RuntimeConfig| *slot(&mut c.acl) = true),
            };
            match old {
                "acl_replication_token" => {
                    let on = implied(|a| &mut a.enable_token_replication);
                    self.current.insert("acl.enable_token_replication", on);
                }
                "acl_datacenter" => {
                    let on = implied(|a| &mut a.enabled);
                    self.current.insert("acl.enabled", on);
                }
                _ => {}
            }
            self.current.entry(new).or_insert(p);
        }
        for p in self.current.into_values() {
            (p.set)(cfg);
        }
        for w in warnings.into_iter().chain(self.warnings) {
            cfg.warnings.push(format!("{file}: {w}"));
        }
    }
}

/// Sets one `acl` field to a value already read and checked.
fn set<T: 'static>(v: T, slot: fn(&mut AclConfig) -> &mut T) -> Result<Setter, ConfigError> {
    Ok(Box::new(move |c: &mut RuntimeConfig| *slot(&mut c.acl) = v))
}

/// A policy name; the error, Consul's, lists the names it takes.
fn policy<P: FromStr<Err = String>>(a: &At) -> Result<P, ConfigError> {
    a.string()?.parse().map_err(|e: String| a.err(e))
}

/// A datacenter name as Consul takes it: lowercased, then letters, digits,
/// `-` and `_` only. Empty means unset: the agent's own datacenter.
fn primary_datacenter(a: &At) -> Result<Setter, ConfigError> {
    let dc = a.string()?.to_ascii_lowercase();
    if !dc
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(a.err(format!(
            "can only contain lowercase alphanumeric, - or _ characters. received: {dc:?}"
        )));
    }
    Ok(Box::new(move |c: &mut RuntimeConfig| {
        c.primary_datacenter = dc
    }))
}
