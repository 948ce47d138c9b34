//! `meridian acl role create|list|read|update|delete`.

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::super::Client;
use super::input::{links, merge_links, node_identity, resolve_id, service_identity, Kind};
use super::output::{get, print_json, Answer, IntoAnswer};
use super::{format, Format, OutputArgs};
use crate::api::enc;

#[derive(Subcommand)]
pub enum RoleCmd {
    /// Creates a role.
    Create(Create),
    /// Lists roles.
    List(OutputArgs),
    /// Reads a role by ID (or unique prefix) or name.
    Read(Select),
    /// Updates a role: adds the links and identities given (replaces them
    /// all with -no-merge).
    Update(Update),
    /// Deletes a role by ID or name.
    Delete(Select),
}

/// A role's links and identities as flags.
#[derive(Debug, clap::Args)]
pub struct Grants {
    /// ID (or unique prefix) of a policy to link (repeatable).
    #[arg(long = "policy-id")]
    policy_id: Vec<String>,
    /// Name of a policy to link (repeatable).
    #[arg(long = "policy-name")]
    policy_name: Vec<String>,
    /// NAME or NAME:DC1,DC2 (repeatable).
    #[arg(long = "service-identity")]
    service_identity: Vec<String>,
    /// NODE:DATACENTER (repeatable).
    #[arg(long = "node-identity")]
    node_identity: Vec<String>,
}

impl Grants {
    /// (policies, service identities, node identities)
    fn resolve(&self, c: &Client) -> Result<(Vec<Value>, Vec<Value>, Vec<Value>)> {
        Ok((
            links(c, Kind::Policy, &self.policy_id, &self.policy_name)?,
            self.service_identity
                .iter()
                .map(|s| service_identity(s))
                .collect::<Result<_>>()?,
            self.node_identity
                .iter()
                .map(|s| node_identity(s))
                .collect::<Result<_>>()?,
        ))
    }
}

#[derive(Debug, clap::Args)]
pub struct Create {
    #[command(flatten)]
    out: OutputArgs,
    #[command(flatten)]
    grants: Grants,
    /// The new role's name (required).
    #[arg(long)]
    name: Option<String>,
    #[arg(long, default_value = "")]
    description: String,
}

#[derive(Debug, clap::Args)]
pub struct Select {
    #[command(flatten)]
    out: OutputArgs,
    /// The role's ID or a unique prefix of it.
    #[arg(long)]
    id: Option<String>,
    /// The role's name.
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct Update {
    #[command(flatten)]
    sel: Select,
    #[command(flatten)]
    grants: Grants,
    #[arg(long)]
    description: Option<String>,
    /// Replace the role's links and identities instead of adding to them.
    #[arg(long = "no-merge", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    no_merge: bool,
}

pub fn run(cmd: RoleCmd) -> Result<i32> {
    match cmd {
        RoleCmd::Create(a) => create(a),
        RoleCmd::List(o) => list(o),
        RoleCmd::Read(a) => read(a),
        RoleCmd::Update(a) => update(a),
        RoleCmd::Delete(a) => delete(a),
    }
}

fn show(r: &Answer, out: &OutputArgs, format: Format) -> Result<i32> {
    match format {
        Format::Json => print_json(r),
        Format::Pretty => {
            print!("{}", format::role(&r.value, out.meta));
            Ok(0)
        }
    }
}

fn create(a: Create) -> Result<i32> {
    let format = a.out.format()?;
    let name = a
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| anyhow!("Missing required '-name' flag"))?;
    let c = a.out.client()?;
    let (policies, services, nodes) = a.grants.resolve(&c)?;
    if policies.is_empty() && services.is_empty() && nodes.is_empty() {
        bail!("Cannot create a role without specifying -policy-name, -policy-id, -service-identity, or -node-identity at least once");
    }
    let body = json!({
        "Name": name,
        "Description": a.description,
        "Policies": policies,
        "ServiceIdentities": services,
        "NodeIdentities": nodes,
    });
    let r = c
        .call_ok(
            Method::PUT,
            "/v1/acl/role",
            &[],
            Some(serde_json::to_vec(&body)?),
            &[],
        )
        .map_err(|e| anyhow!("Failed to create new role: {e}"))?
        .answer()?;
    show(&r, &a.out, format)
}

fn list(o: OutputArgs) -> Result<i32> {
    let format = o.format()?;
    let rs = get(&o.client()?, "/v1/acl/roles")
        .map_err(|e| anyhow!("Failed to retrieve the role list: {e}"))?;
    match format {
        Format::Json => print_json(&rs),
        Format::Pretty => {
            print!("{}", format::role_list(rs.items(), o.meta));
            Ok(0)
        }
    }
}

fn fetch(c: &Client, sel: &Select) -> Result<Answer> {
    let (path, what) = match (&sel.id, &sel.name) {
        (Some(id), _) => {
            let id = resolve_id(c, Kind::Role, id)?;
            (format!("/v1/acl/role/{}", enc(&id)), id)
        }
        (None, Some(name)) => (format!("/v1/acl/role/name/{}", enc(name)), name.clone()),
        (None, None) => bail!("Must specify either the -id or -name parameters"),
    };
    get(c, &path).map_err(|e| anyhow!("Error reading role {what:?}: {e}"))
}

fn read(a: Select) -> Result<i32> {
    let format = a.out.format()?;
    let r = fetch(&a.out.client()?, &a)?;
    show(&r, &a.out, format)
}

fn update(a: Update) -> Result<i32> {
    let format = a.sel.out.format()?;
    let c = a.sel.out.client()?;
    let mut r = fetch(&c, &a.sel)?.value;
    let id = r
        .get("ID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // With -id, -name renames (a new name cannot find the role).
    if let Some(name) = a.sel.name.clone().filter(|_| a.sel.id.is_some()) {
        r["Name"] = json!(name);
    }
    if let Some(d) = a.description {
        r["Description"] = json!(d);
    }
    let (policies, services, nodes) = a.grants.resolve(&c)?;
    for (key, more) in [
        ("Policies", policies),
        ("ServiceIdentities", services),
        ("NodeIdentities", nodes),
    ] {
        let mut list: Vec<Value> = if a.no_merge {
            Vec::new()
        } else {
            r.get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        if key == "Policies" {
            merge_links(&mut list, more);
        } else {
            list.extend(
                more.into_iter()
                    .filter(|m| !list.contains(m))
                    .collect::<Vec<_>>(),
            );
        }
        r[key] = json!(list);
    }
    let r = c
        .call_ok(
            Method::PUT,
            &format!("/v1/acl/role/{}", enc(&id)),
            &[],
            Some(serde_json::to_vec(&r)?),
            &[],
        )
        .map_err(|e| anyhow!("Failed to update role {id}: {e}"))?
        .answer()?;
    show(&r, &a.sel.out, format)
}

fn delete(a: Select) -> Result<i32> {
    let c = a.out.client()?;
    let id = match &a.id {
        Some(id) => resolve_id(&c, Kind::Role, id)?,
        None => fetch(&c, &a)?
            .value
            .get("ID")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    c.call_ok(
        Method::DELETE,
        &format!("/v1/acl/role/{}", enc(&id)),
        &[],
        None,
        &[],
    )
    .map_err(|e| anyhow!("Error deleting role {id:?}: {e}"))?;
    println!("Role {id:?} deleted successfully");
    Ok(0)
}
