//! The rules that hold across keys, checked once everything is merged
//! (a single key is checked where it is read): they can only be judged
//! on the whole config, whichever file or flag set each part.

use super::ConfigError;
use crate::config::RuntimeConfig;

/// Consul's words when a script check meets an agent that runs none.
pub const SCRIPTS_DISABLED: &str = "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true";

/// Checks what must hold across keys. `need_data_dir` is false for
/// `validate`, which checks files that may be completed by flags.
pub(super) fn validate(cfg: &mut RuntimeConfig, need_data_dir: bool) -> Result<(), ConfigError> {
    if need_data_dir && !cfg.dev && cfg.data_dir.is_none() {
        return Err(ConfigError::Invalid(
            "data_dir cannot be empty: set -data-dir or data_dir (or use -dev)".into(),
        ));
    }
    if cfg.bootstrap && cfg.bootstrap_expect > 0 && !cfg.dev {
        return Err(ConfigError::Invalid(
            "'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive".into(),
        ));
    }
    if (cfg.bootstrap || cfg.bootstrap_expect > 0) && !cfg.server {
        return Err(ConfigError::Invalid(
            "'bootstrap' and 'bootstrap_expect' need server mode (-server)".into(),
        ));
    }
    // Consul lowercases the datacenter; DNS names arrive lowercased too.
    cfg.datacenter = cfg.datacenter.to_ascii_lowercase();
    if cfg.datacenter.is_empty()
        || !cfg
            .datacenter
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ConfigError::Invalid(format!(
            "datacenter {:?}: only letters, digits, '-' and '_' are allowed",
            cfg.datacenter
        )));
    }
    if let Some(r) = &cfg.replication {
        if !cfg.server {
            return Err(ConfigError::Invalid(format!(
                "{}: replication: only servers replicate KV prefixes (the leader applies them); \
                 move the block to the servers' config",
                r.declared_in
            )));
        }
        if r.source == cfg.datacenter {
            return Err(ConfigError::Invalid(format!(
                "{}: replication.source: {:?} is this server's own datacenter",
                r.declared_in, r.source
            )));
        }
    }
    // Consul's order: primary_datacenter, else acl_datacenter (both read
    // with their file), else this agent's own datacenter, flags included.
    if cfg.primary_datacenter.is_empty() {
        cfg.primary_datacenter = cfg.datacenter.clone();
    }
    let scripts = cfg
        .services
        .iter()
        .flat_map(|s| s.checks.iter())
        .chain(cfg.checks.iter())
        .find(|c| !c.args.is_empty());
    if let (Some(c), false) = (
        scripts,
        cfg.enable_script_checks || cfg.enable_local_script_checks,
    ) {
        return Err(ConfigError::Invalid(format!(
            "check {:?}: {SCRIPTS_DISABLED}",
            if c.name.is_empty() { &c.id } else { &c.name }
        )));
    }
    if cfg.node_name.is_empty() {
        return Err(ConfigError::Invalid("node_name cannot be empty".into()));
    }
    if !cfg.node_id.is_empty() && uuid::Uuid::parse_str(&cfg.node_id).is_err() {
        return Err(ConfigError::Invalid(format!(
            "node_id {:?} is not a UUID",
            cfg.node_id
        )));
    }
    if cfg.domain.is_empty() {
        return Err(ConfigError::Invalid("domain cannot be empty".into()));
    }
    if !cfg.domain.ends_with('.') {
        cfg.domain.push('.');
    }
    cfg.domain = cfg.domain.to_ascii_lowercase();
    if let Some(alt) = cfg.alt_domain.take() {
        let mut alt = alt.to_ascii_lowercase();
        if !alt.ends_with('.') {
            alt.push('.');
        }
        // The same domain twice is one domain.
        if alt != cfg.domain {
            cfg.alt_domain = Some(alt);
        }
    }
    // Watches run against the agent's own API: with no listener for them
    // they would never fire.
    if !cfg.watches.is_empty() && cfg.ports.http.is_none() && cfg.ports.https.is_none() {
        return Err(ConfigError::Invalid(
            "watches need the agent's HTTP or HTTPS API, and ports.http and ports.https are both off"
                .into(),
        ));
    }
    let mut ids = std::collections::BTreeSet::new();
    for s in &cfg.services {
        let id = if s.id.is_empty() { &s.name } else { &s.id };
        if !ids.insert(id.clone()) {
            return Err(ConfigError::Invalid(format!(
                "service ID {id:?} is defined twice"
            )));
        }
    }
    Ok(())
}
