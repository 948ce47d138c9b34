//! What the ACL commands' flags turn into: rules text from `@file`, `-`
//! or the value itself; policy and role links by ID or name; service and
//! node identities from Consul's `name:dc1,dc2` / `node:dc` forms; and
//! full IDs from the unique prefixes Consul lets users type.

use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use super::super::Client;
use crate::acl::{GLOBAL_MANAGEMENT_ID, GLOBAL_READ_ONLY_ID};
use crate::structs::acl::ANONYMOUS_TOKEN_ID;

/// A value given as text, `@path` (the file's contents) or `-` (stdin), as
/// Consul's `-rules` takes it.
pub fn text_value(value: &str) -> Result<String> {
    if value == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("Failed to read from stdin")?;
        Ok(s)
    } else if let Some(path) = value.strip_prefix('@') {
        std::fs::read_to_string(path).with_context(|| format!("Failed to read file {path:?}"))
    } else {
        Ok(value.to_string())
    }
}

/// `-service-identity web` or `web:dc1,dc2`.
pub fn service_identity(spec: &str) -> Result<Value> {
    let (name, dcs) = match spec.split_once(':') {
        Some((name, dcs)) => (name, dcs.split(',').map(str::trim).collect::<Vec<_>>()),
        None => (spec, Vec::new()),
    };
    if name.trim().is_empty() || dcs.iter().any(|d| d.is_empty()) {
        bail!("Malformed -service-identity argument: {spec:?} (expected NAME or NAME:DC1,DC2)");
    }
    Ok(if dcs.is_empty() {
        json!({ "ServiceName": name.trim() })
    } else {
        json!({ "ServiceName": name.trim(), "Datacenters": dcs })
    })
}

/// `-node-identity node:dc` (the datacenter is required, as in Consul).
pub fn node_identity(spec: &str) -> Result<Value> {
    match spec.split_once(':') {
        Some((node, dc)) if !node.trim().is_empty() && !dc.trim().is_empty() => {
            Ok(json!({ "NodeName": node.trim(), "Datacenter": dc.trim() }))
        }
        _ => bail!("Malformed -node-identity argument: {spec:?} (expected NODE:DATACENTER)"),
    }
}

/// What kind of ACL object an ID names, for prefix lookups.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Token,
    Policy,
    Role,
}

impl Kind {
    pub fn list_path(self) -> &'static str {
        match self {
            Kind::Token => "/v1/acl/tokens",
            Kind::Policy => "/v1/acl/policies",
            Kind::Role => "/v1/acl/roles",
        }
    }
    fn id_field(self) -> &'static str {
        match self {
            Kind::Token => "AccessorID",
            Kind::Policy | Kind::Role => "ID",
        }
    }
    /// As the API paths and Consul's messages spell it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::Policy => "policy",
            Kind::Role => "role",
        }
    }
    /// [`Kind::name`] starting a sentence.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Token => "Token",
            Kind::Policy => "Policy",
            Kind::Role => "Role",
        }
    }
    /// Names Consul accepts in place of the builtins' IDs.
    fn builtin(self, given: &str) -> Option<&'static str> {
        match (self, given) {
            (Kind::Token, "anonymous") => Some(ANONYMOUS_TOKEN_ID),
            (Kind::Policy, "global-management") => Some(GLOBAL_MANAGEMENT_ID),
            (Kind::Policy, "builtin/global-read-only") => Some(GLOBAL_READ_ONLY_ID),
            _ => None,
        }
    }
}

/// A full ID from what the user typed: a full UUID as is, a builtin's
/// name, or a prefix that matches exactly one listed ID.
pub fn resolve_id(c: &Client, kind: Kind, given: &str) -> Result<String> {
    if let Some(id) = kind.builtin(given) {
        return Ok(id.to_string());
    }
    if given.len() == 36 {
        return Ok(given.to_string());
    }
    if given.is_empty() {
        bail!("Must specify the {} ID", kind.name());
    }
    let all = c
        .get(kind.list_path(), &[])
        .map_err(|e| anyhow!("Failed to list {}s to find {given:?}: {e}", kind.name()))?;
    let matches: Vec<&str> = all
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|v| v.get(kind.id_field()).and_then(Value::as_str))
        .filter(|id| id.starts_with(given))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.to_string()),
        [] => bail!("No such {} ID with prefix: {given}", kind.name()),
        _ => bail!("Multiple {} IDs found with prefix: {given}", kind.name()),
    }
}

/// Links to policies or roles, by ID (resolved from prefixes) and by name.
pub fn links(c: &Client, kind: Kind, ids: &[String], names: &[String]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for id in ids {
        out.push(json!({ "ID": resolve_id(c, kind, id)? }));
    }
    out.extend(names.iter().map(|n| json!({ "Name": n })));
    Ok(out)
}

/// `list` with `more` appended, leaving out links already present (by ID
/// or name), as Consul's merging updates do.
pub fn merge_links(list: &mut Vec<Value>, more: Vec<Value>) {
    for l in more {
        let same = |a: &Value, key: &str| {
            l.get(key)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty() && a.get(key).and_then(Value::as_str) == Some(v))
        };
        if !list.iter().any(|a| same(a, "ID") || same(a, "Name")) {
            list.push(l);
        }
    }
}

/// Sets `v[key]` to its list with `more` added (to none of it with
/// `replace`): links merged by ID or name ([`merge_links`]), identities
/// added when not already there.
pub fn add_to_list(v: &mut Value, key: &str, more: Vec<Value>, replace: bool) {
    let mut list: Vec<Value> = if replace {
        Vec::new()
    } else {
        v.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    if matches!(key, "Policies" | "Roles") {
        merge_links(&mut list, more);
    } else {
        let new: Vec<Value> = more.into_iter().filter(|m| !list.contains(m)).collect();
        list.extend(new);
    }
    v[key] = json!(list);
}

/// The `-service-identity` and `-node-identity` flags as the API's
/// identities.
pub fn identities(services: &[String], nodes: &[String]) -> Result<(Vec<Value>, Vec<Value>)> {
    Ok((
        services
            .iter()
            .map(|s| service_identity(s))
            .collect::<Result<_>>()?,
        nodes
            .iter()
            .map(|s| node_identity(s))
            .collect::<Result<_>>()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_consuls_forms() {
        assert_eq!(
            service_identity("web").unwrap(),
            json!({"ServiceName": "web"})
        );
        assert_eq!(
            service_identity("web:dc1,dc2").unwrap(),
            json!({"ServiceName": "web", "Datacenters": ["dc1", "dc2"]})
        );
        assert!(service_identity(":dc1").is_err());
        assert!(service_identity("web:dc1,").is_err());
        assert_eq!(
            node_identity("n1:dc1").unwrap(),
            json!({"NodeName": "n1", "Datacenter": "dc1"})
        );
        let e = node_identity("n1").unwrap_err().to_string();
        assert!(
            e.contains("-node-identity") && e.contains("NODE:DATACENTER"),
            "{e}"
        );
    }

    #[test]
    fn merging_links_skips_ones_already_there() {
        let mut l = vec![json!({"ID": "p1", "Name": "ops"})];
        merge_links(&mut l, vec![json!({"Name": "ops"}), json!({"ID": "p2"})]);
        assert_eq!(
            l,
            vec![json!({"ID": "p1", "Name": "ops"}), json!({"ID": "p2"})]
        );
    }

    #[test]
    fn text_values_come_from_files() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "key \"a\" { policy = \"read\" }").unwrap();
        let v = text_value(&format!("@{}", f.path().display())).unwrap();
        assert_eq!(v, "key \"a\" { policy = \"read\" }");
        assert_eq!(
            text_value("operator = \"read\"").unwrap(),
            "operator = \"read\""
        );
        let e = text_value("@/nonexistent/rules.hcl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/rules.hcl"), "{e}");
    }
}
