//! `meridian acl policy create|list|read|update|delete`.

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::super::Client;
use super::input::{resolve_id, text_value, Kind};
use super::output::{get, print_json, Answer, IntoAnswer};
use super::{format, Format, OutputArgs};
use crate::api::enc;

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
    #[arg(long = "no-merge", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
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

fn show(p: &Answer, out: &OutputArgs, format: Format) -> Result<i32> {
    match format {
        Format::Json => print_json(p),
        Format::Pretty => {
            print!("{}", format::policy(&p.value, out.meta));
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
    let p = a
        .out
        .client()?
        .call_ok(
            Method::PUT,
            "/v1/acl/policy",
            &[],
            Some(serde_json::to_vec(&body)?),
            &[],
        )
        .map_err(|e| anyhow!("Failed to create new policy: {e}"))?
        .answer()?;
    show(&p, &a.out, format)
}

fn list(o: OutputArgs) -> Result<i32> {
    let format = o.format()?;
    let ps = get(&o.client()?, "/v1/acl/policies")
        .map_err(|e| anyhow!("Failed to retrieve the policy list: {e}"))?;
    match format {
        Format::Json => print_json(&ps),
        Format::Pretty => {
            print!("{}", format::policy_list(ps.items(), o.meta));
            Ok(0)
        }
    }
}

/// The policy the flags name, as the API answers it.
fn fetch(c: &Client, id: Option<&str>, name: Option<&str>) -> Result<Answer> {
    let (path, what) = match (id, name) {
        (Some(id), _) => {
            let id = resolve_id(c, Kind::Policy, id)?;
            (format!("/v1/acl/policy/{}", enc(&id)), id)
        }
        (None, Some(name)) => (
            format!("/v1/acl/policy/name/{}", enc(name)),
            name.to_string(),
        ),
        (None, None) => bail!("Must specify either the -id or -name parameters"),
    };
    get(c, &path).map_err(|e| anyhow!("Error reading policy {what:?}: {e}"))
}

fn read(a: Select) -> Result<i32> {
    let format = a.out.format()?;
    let p = fetch(&a.out.client()?, a.id.as_deref(), a.name.as_deref())?;
    show(&p, &a.out, format)
}

fn update(a: Update) -> Result<i32> {
    let format = a.out.format()?;
    let c = a.out.client()?;
    let current = fetch(&c, a.id.as_deref(), a.name.as_deref())?.value;
    let id = current
        .get("ID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
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
    let p = c
        .call_ok(
            Method::PUT,
            &format!("/v1/acl/policy/{}", enc(&id)),
            &[],
            Some(serde_json::to_vec(&body)?),
            &[],
        )
        .map_err(|e| anyhow!("Failed to update policy {id}: {e}"))?
        .answer()?;
    show(&p, &a.out, format)
}

fn delete(a: Select) -> Result<i32> {
    let c = a.out.client()?;
    let id = match (&a.id, &a.name) {
        (Some(id), _) => resolve_id(&c, Kind::Policy, id)?,
        (None, Some(_)) => fetch(&c, None, a.name.as_deref())?
            .value
            .get("ID")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        (None, None) => bail!("Must specify either the -id or -name parameters"),
    };
    c.call_ok(
        Method::DELETE,
        &format!("/v1/acl/policy/{}", enc(&id)),
        &[],
        None,
        &[],
    )
    .map_err(|e| anyhow!("Error deleting policy {id:?}: {e}"))?;
    println!("Policy {id:?} deleted successfully");
    Ok(0)
}
