//! `meridian acl policy create|list|read|update|delete`.

use anyhow::{anyhow, Result};
use clap::Subcommand;
use serde_json::json;

use super::input::{text_value, Kind};
use super::object;
use super::output::print;
use super::OutputArgs;

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Creates a policy.
    Create(Create),
    /// Lists policies (without their rules).
    List(OutputArgs),
    /// Reads a policy by ID (or unique ID prefix) or name.
    Read(Select),
    /// Updates a policy: merges the flags given into it (all of them with
    /// `-no-merge`).
    Update(Update),
    /// Deletes a policy by ID or name.
    Delete(Select),
}

#[derive(Debug, clap::Args)]
pub struct Create {
    #[command(flatten)]
    out: OutputArgs,
    /// The new policy's name (required).
    #[arg(long)]
    name: Option<String>,
    #[arg(long, default_value = "")]
    description: String,
    /// The rules: the text itself, @FILE, or - for stdin.
    #[arg(long)]
    rules: Option<String>,
    /// A datacenter the policy is valid in (repeatable; none: all).
    #[arg(long = "valid-datacenter")]
    valid_datacenter: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct Select {
    #[command(flatten)]
    out: OutputArgs,
    /// The policy's ID or a unique prefix of it.
    #[arg(long)]
    id: Option<String>,
    /// The policy's name.
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct Update {
    #[command(flatten)]
    out: OutputArgs,
    /// The policy's ID or a unique prefix (renaming needs it).
    #[arg(long)]
    id: Option<String>,
    /// The policy's name; with -id, its new name.
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    rules: Option<String>,
    #[arg(long = "valid-datacenter")]
    valid_datacenter: Vec<String>,
    /// Replace every field rather than merging the ones given.
    #[arg(long = "no-merge", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    no_merge: bool,
}

pub fn run(cmd: PolicyCmd) -> Result<i32> {
    match cmd {
        PolicyCmd::Create(a) => create(a),
        PolicyCmd::List(o) => list(o),
        PolicyCmd::Read(a) => read(a),
        PolicyCmd::Update(a) => update(a),
        PolicyCmd::Delete(a) => delete(a),
    }
}

fn create(a: Create) -> Result<i32> {
    let format = a.out.format()?;
    let name = a
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| anyhow!("Missing required '-name' flag"))?;
    let rules = match &a.rules {
        Some(r) => text_value(r)?,
        None => String::new(),
    };
    let body = json!({
        "Name": name,
        "Description": a.description,
        "Rules": rules,
        "Datacenters": a.valid_datacenter,
    });
    let c = a.out.client()?;
    let p = object::put(
        &c,
        "/v1/acl/policy",
        Some(&body),
        "Failed to create new policy",
    )?;
    print(&p, Kind::Policy, format, a.out.meta)
}

fn list(o: OutputArgs) -> Result<i32> {
    object::list(&o, Kind::Policy)
}

fn read(a: Select) -> Result<i32> {
    let format = a.out.format()?;
    let c = a.out.client()?;
    let p = object::fetch(&c, Kind::Policy, a.id.as_deref(), a.name.as_deref())?;
    print(&p, Kind::Policy, format, a.out.meta)
}

fn update(a: Update) -> Result<i32> {
    let format = a.out.format()?;
    let c = a.out.client()?;
    let current = object::fetch(&c, Kind::Policy, a.id.as_deref(), a.name.as_deref())?.value;
    let id = object::id_field(&current);
    let rules = a.rules.as_deref().map(text_value).transpose()?;
    let mut body = if a.no_merge {
        json!({ "ID": id, "Name": current.get("Name").cloned().unwrap_or_default() })
    } else {
        current
    };
    if let Some(name) = a.name.filter(|_| a.id.is_some()) {
        body["Name"] = json!(name);
    }
    if let Some(d) = a.description {
        body["Description"] = json!(d);
    }
    if let Some(r) = rules {
        body["Rules"] = json!(r);
    }
    if a.no_merge || !a.valid_datacenter.is_empty() {
        body["Datacenters"] = json!(a.valid_datacenter);
    }
    let path = object::path(Kind::Policy, &id);
    let failed = format!("Failed to update policy {id}");
    let p = object::put(&c, &path, Some(&body), &failed)?;
    print(&p, Kind::Policy, format, a.out.meta)
}

fn delete(a: Select) -> Result<i32> {
    let c = a.out.client()?;
    let id = object::id_of(&c, Kind::Policy, a.id.as_deref(), a.name.as_deref())?;
    object::delete(&c, Kind::Policy, &id)
}
