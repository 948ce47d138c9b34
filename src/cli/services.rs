//! `meridian services register FILE... | -name N [-id -address -port -tag
//! -meta k=v]` and `meridian services deregister FILE... | -id ID`, as
//! Consul's `services` command: definitions go to the local agent's
//! `/v1/agent/service/register`, so they are the agent's (and persisted
//! in its data directory) just as if registered through the API.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use crate::api::enc;
use crate::config::{format_duration, CheckDefinition, ServiceDefinition};

use super::{Client, HttpArgs};

#[derive(Debug, clap::Subcommand)]
pub enum ServicesCmd {
    /// Registers services from definition files, or one from flags.
    Register(RegisterArgs),
    /// Deregisters the services of definition files, or one by ID.
    Deregister(DeregisterArgs),
}

#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The service's name (instead of files).
    #[arg(long)]
    name: Option<String>,
    /// The service's ID (default: its name).
    #[arg(long)]
    id: Option<String>,
    #[arg(long)]
    address: Option<String>,
    #[arg(long)]
    port: Option<u16>,
    /// A tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// `key=value` service meta (repeatable).
    #[arg(long = "meta")]
    meta: Vec<String>,
    /// `name=address:port` tagged address (repeatable), e.g. `wan=198.51.100.1:80`.
    #[arg(long = "tagged-address")]
    tagged_addresses: Vec<String>,
    /// Definition files (JSON or HCL with `service` or `services`).
    files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DeregisterArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The ID of the service to deregister (instead of files).
    #[arg(long)]
    id: Option<String>,
    /// Definition files whose services to deregister.
    files: Vec<PathBuf>,
}

pub fn run(cmd: ServicesCmd) -> Result<i32> {
    match cmd {
        ServicesCmd::Register(a) => register(a),
        ServicesCmd::Deregister(a) => deregister(a),
    }
}

fn from_files(files: &[PathBuf]) -> Result<Vec<ServiceDefinition>> {
    let mut out = Vec::new();
    for f in files {
        let (defs, warnings) =
            crate::config::builder::service_file(f).map_err(|e| anyhow!("{e}"))?;
        for w in warnings {
            eprintln!("Warning: {w}");
        }
        out.extend(defs);
    }
    Ok(out)
}

fn pairs(flag: &str, given: &[String], sep: char) -> Result<Vec<(String, String)>> {
    given
        .iter()
        .map(|kv| {
            kv.split_once(sep)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("Invalid -{flag} {kv:?}: expected key{sep}value"))
        })
        .collect()
}

fn from_flags(a: &RegisterArgs) -> Result<ServiceDefinition> {
    let name = a.name.clone().unwrap_or_default();
    let mut def = ServiceDefinition {
        id: a.id.clone().unwrap_or_default(),
        name,
        tags: a.tags.clone(),
        address: a.address.clone().unwrap_or_default(),
        port: a.port.unwrap_or(0),
        meta: pairs("meta", &a.meta, '=')?.into_iter().collect(),
        ..Default::default()
    };
    for (tag, addr) in pairs("tagged-address", &a.tagged_addresses, '=')? {
        let (host, port) = addr
            .rsplit_once(':')
            .and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h, p)))
            .ok_or_else(|| anyhow!("Invalid -tagged-address {addr:?}: expected address:port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        def.tagged_addresses.insert(
            tag,
            crate::structs::catalog::ServiceAddress {
                address: host.to_string(),
                port,
            },
        );
    }
    Ok(def)
}

/// A check as `/v1/agent/service/register` takes it.
fn check_body(c: &CheckDefinition) -> Value {
    let mut v = serde_json::Map::new();
    let mut put = |k: &str, x: Value| {
        let empty = x.is_null()
            || x.as_str() == Some("")
            || x.as_bool() == Some(false)
            || x.as_u64() == Some(0)
            || x.as_array().is_some_and(Vec::is_empty)
            || x.as_object().is_some_and(serde_json::Map::is_empty);
        if !empty {
            v.insert(k.to_string(), x);
        }
    };
    let dur = |d: Option<std::time::Duration>| json!(d.map(format_duration));
    put("CheckID", json!(c.id));
    put("Name", json!(c.name));
    put("Notes", json!(c.notes));
    put("Status", json!(c.status));
    put("Interval", dur(c.interval));
    put("Timeout", dur(c.timeout));
    put("TTL", dur(c.ttl));
    put("HTTP", json!(c.http));
    put("Method", json!(c.method));
    put("Header", json!(c.header));
    put("Body", json!(c.body));
    put("TLSSkipVerify", json!(c.tls_skip_verify));
    put("TCP", json!(c.tcp));
    put("UDP", json!(c.udp));
    put("GRPC", json!(c.grpc));
    put("GRPCUseTLS", json!(c.grpc_use_tls));
    put("Args", json!(c.args));
    put("AliasService", json!(c.alias_service));
    put("AliasNode", json!(c.alias_node));
    put(
        "DeregisterCriticalServiceAfter",
        dur(c.deregister_critical_service_after),
    );
    put("SuccessBeforePassing", json!(c.success_before_passing));
    put("FailuresBeforeWarning", json!(c.failures_before_warning));
    put("FailuresBeforeCritical", json!(c.failures_before_critical));
    Value::Object(v)
}

/// A definition as `/v1/agent/service/register` takes it.
pub(crate) fn service_body(d: &ServiceDefinition) -> Value {
    let tagged: BTreeMap<&String, Value> = d
        .tagged_addresses
        .iter()
        .map(|(k, a)| (k, json!({"Address": a.address, "Port": a.port})))
        .collect();
    let mut v = json!({
        "Name": d.name, "Tags": d.tags, "Address": d.address, "Port": d.port,
        "Meta": d.meta, "TaggedAddresses": tagged, "EnableTagOverride": d.enable_tag_override,
        "Checks": d.checks.iter().map(check_body).collect::<Vec<_>>(),
    });
    if !d.id.is_empty() {
        v["ID"] = json!(d.id);
    }
    if !d.kind.is_empty() {
        v["Kind"] = json!(d.kind);
    }
    if let Some((passing, warning)) = d.weights {
        v["Weights"] = json!({"Passing": passing, "Warning": warning});
    }
    v
}

fn id_of(d: &ServiceDefinition) -> &str {
    if d.id.is_empty() {
        &d.name
    } else {
        &d.id
    }
}

fn register(a: RegisterArgs) -> Result<i32> {
    let defs = if a.files.is_empty() {
        if a.name.as_deref().unwrap_or("").is_empty() {
            return Err(anyhow!(
                "Service registration requires at least one argument or flags."
            ));
        }
        vec![from_flags(&a)?]
    } else {
        if a.name.is_some() || a.id.is_some() {
            return Err(anyhow!("Flags and files can not be used together"));
        }
        from_files(&a.files)?
    };
    let c = Client::new(&a.http)?;
    for d in &defs {
        // A definition's own token registers it, as the agent's files do.
        let c = match d.token.get() {
            Some(t) => c.with_token(Some(t.to_string())),
            None => c.clone(),
        };
        let body = serde_json::to_vec(&service_body(d))?;
        c.call_ok(
            reqwest::Method::PUT,
            "/v1/agent/service/register",
            &[],
            Some(body),
            &[],
        )
        .map_err(|e| anyhow!("Error registering service {:?}: {e}", d.name))?;
        println!("Registered service: {}", d.name);
    }
    Ok(0)
}

fn deregister(a: DeregisterArgs) -> Result<i32> {
    let ids: Vec<String> = match (&a.id, a.files.is_empty()) {
        (Some(_), false) => return Err(anyhow!("Only one of -id or files may be given")),
        (Some(id), true) => vec![id.clone()],
        (None, false) => from_files(&a.files)?
            .iter()
            .map(|d| id_of(d).to_string())
            .collect(),
        (None, true) => {
            return Err(anyhow!(
                "Service deregistration requires at least one argument or -id."
            ))
        }
    };
    let c = Client::new(&a.http)?;
    for id in ids {
        let path = format!("/v1/agent/service/deregister/{}", enc(&id));
        c.call_ok(reqwest::Method::PUT, &path, &[], None, &[])
            .map_err(|e| anyhow!("Error deregistering service {id:?}: {e}"))?;
        println!("Deregistered service: {id}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_the_body_the_agent_takes() {
        let a = RegisterArgs {
            http: HttpArgs::default(),
            name: Some("web".into()),
            id: Some("web-1".into()),
            address: Some("10.0.0.5".into()),
            port: Some(8080),
            tags: vec!["v1".into()],
            meta: vec!["team=edge".into()],
            tagged_addresses: vec!["wan=198.51.100.1:80".into(), "lan_ipv6=[::1]:81".into()],
            files: vec![],
        };
        let body = service_body(&from_flags(&a).expect("valid flags"));
        assert_eq!(body["ID"], "web-1");
        assert_eq!(body["Meta"]["team"], "edge");
        assert_eq!(body["TaggedAddresses"]["wan"]["Address"], "198.51.100.1");
        assert_eq!(body["TaggedAddresses"]["lan_ipv6"]["Address"], "::1");
        assert_eq!(body["TaggedAddresses"]["lan_ipv6"]["Port"], 81);
        let bad = RegisterArgs {
            meta: vec!["novalue".into()],
            ..a
        };
        assert!(from_flags(&bad).is_err());
    }
}
