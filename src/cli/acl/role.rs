//! `meridian acl role create|list|read|update|delete`.

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use super::super::Client;
use super::input::{add_to_list, identities, links, Kind};
use super::object;
use super::output::{print, Answer};
use super::OutputArgs;

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
        let policies = links(c, Kind::Policy, &self.policy_id, &self.policy_name)?;
        let (services, nodes) = identities(&self.service_identity, &self.node_identity)?;
        Ok((policies, services, nodes))
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
    #[arg(long = "no-merge", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
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
    let r = object::put(&c, "/v1/acl/role", Some(&body), "Failed to create new role")?;
    print(&r, Kind::Role, format, a.out.meta)
}

fn list(o: OutputArgs) -> Result<i32> {
    object::list(&o, Kind::Role)
}

fn fetch(c: &Client, sel: &Select) -> Result<Answer> {
    object::fetch(c, Kind::Role, sel.id.as_deref(), sel.name.as_deref())
}

fn read(a: Select) -> Result<i32> {
    let format = a.out.format()?;
    let r = fetch(&a.out.client()?, &a)?;
    print(&r, Kind::Role, format, a.out.meta)
}

fn update(a: Update) -> Result<i32> {
    let format = a.sel.out.format()?;
    let c = a.sel.out.client()?;
    let mut r = fetch(&c, &a.sel)?.value;
    let id = object::id_field(&r);
    // With -id, -name renames (a new name cannot find the role).
    if let Some(name) = a.sel.name.clone().filter(|_| a.sel.id.is_some()) {
        r["Name"] = json!(name);
    }
    if let Some(d) = a.description {
        r["Description"] = json!(d);
    }
    let (policies, services, nodes) = a.grants.resolve(&c)?;
    add_to_list(&mut r, "Policies", policies, a.no_merge);
    add_to_list(&mut r, "ServiceIdentities", services, a.no_merge);
    add_to_list(&mut r, "NodeIdentities", nodes, a.no_merge);
    let path = object::path(Kind::Role, &id);
    let failed = format!("Failed to update role {id}");
    let r = object::put(&c, &path, Some(&r), &failed)?;
    print(&r, Kind::Role, format, a.sel.out.meta)
}

fn delete(a: Select) -> Result<i32> {
    let c = a.out.client()?;
    let id = object::id_of(&c, Kind::Role, a.id.as_deref(), a.name.as_deref())?;
    object::delete(&c, Kind::Role, &id)
}
