//! `meridian acl token create|list|read|update|delete|clone`.

use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use super::super::Client;
use super::input::{add_to_list, identities, links, resolve_id, Kind};
use super::object;
use super::output::{get, print, Answer};
use super::OutputArgs;

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Creates a token.
    Create(Create),
    /// Lists tokens.
    List(OutputArgs),
    /// Reads a token by accessor ID (or unique prefix), or the caller's own
    /// with -self.
    Read(Read),
    /// Updates a token: the links and identities given replace the
    /// token's; -append-* flags add to them.
    Update(Update),
    /// Deletes a token.
    Delete(Select),
    /// Makes a new token with the same links and identities.
    Clone(CloneArgs),
}

/// What a token grants, as create and update take it.
#[derive(Debug, Default, clap::Args)]
pub struct Grants {
    /// ID (or unique prefix) of a policy to link (repeatable).
    #[arg(long = "policy-id")]
    policy_id: Vec<String>,
    /// Name of a policy to link (repeatable).
    #[arg(long = "policy-name")]
    policy_name: Vec<String>,
    /// ID (or unique prefix) of a role to link (repeatable).
    #[arg(long = "role-id")]
    role_id: Vec<String>,
    /// Name of a role to link (repeatable).
    #[arg(long = "role-name")]
    role_name: Vec<String>,
    /// NAME or NAME:DC1,DC2 (repeatable).
    #[arg(long = "service-identity")]
    service_identity: Vec<String>,
    /// NODE:DATACENTER (repeatable).
    #[arg(long = "node-identity")]
    node_identity: Vec<String>,
}

struct Resolved {
    policies: Vec<Value>,
    roles: Vec<Value>,
    services: Vec<Value>,
    nodes: Vec<Value>,
}

impl Grants {
    fn resolve(&self, c: &Client) -> Result<Resolved> {
        let (services, nodes) = identities(&self.service_identity, &self.node_identity)?;
        Ok(Resolved {
            policies: links(c, Kind::Policy, &self.policy_id, &self.policy_name)?,
            roles: links(c, Kind::Role, &self.role_id, &self.role_name)?,
            services,
            nodes,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct Create {
    #[command(flatten)]
    out: OutputArgs,
    #[command(flatten)]
    grants: Grants,
    #[arg(long, default_value = "")]
    description: String,
    /// Keep the token in this datacenter (never replicated).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    local: bool,
    /// How long the token lives (Go duration, e.g. 1h).
    #[arg(long = "expires-ttl")]
    expires_ttl: Option<String>,
    /// The accessor ID to give it (a UUID; default: a new one).
    #[arg(long)]
    accessor: Option<String>,
    /// The secret to give it (a UUID; default: a new one).
    #[arg(long)]
    secret: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct Select {
    #[command(flatten)]
    out: OutputArgs,
    /// The token's accessor ID or a unique prefix of it.
    #[arg(long, visible_alias = "accessor-id")]
    id: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct Read {
    #[command(flatten)]
    sel: Select,
    /// Read the token the request is made with.
    #[arg(long = "self", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false")]
    own: bool,
}

#[derive(Debug, clap::Args)]
pub struct Update {
    #[command(flatten)]
    sel: Select,
    #[command(flatten)]
    grants: Grants,
    #[arg(long)]
    description: Option<String>,
    /// A policy ID to add to the token's (repeatable).
    #[arg(long = "append-policy-id")]
    append_policy_id: Vec<String>,
    /// A policy name to add to the token's (repeatable).
    #[arg(long = "append-policy-name")]
    append_policy_name: Vec<String>,
    /// A role ID to add to the token's (repeatable).
    #[arg(long = "append-role-id")]
    append_role_id: Vec<String>,
    /// A role name to add to the token's (repeatable).
    #[arg(long = "append-role-name")]
    append_role_name: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CloneArgs {
    #[command(flatten)]
    sel: Select,
    /// The clone's description (default: the original's).
    #[arg(long)]
    description: Option<String>,
}

pub fn run(cmd: TokenCmd) -> Result<i32> {
    match cmd {
        TokenCmd::Create(a) => create(a),
        TokenCmd::List(o) => list(o),
        TokenCmd::Read(a) => read(a),
        TokenCmd::Update(a) => update(a),
        TokenCmd::Delete(a) => delete(a),
        TokenCmd::Clone(a) => clone(a),
    }
}

fn create(a: Create) -> Result<i32> {
    let format = a.out.format()?;
    let c = a.out.client()?;
    let g = a.grants.resolve(&c)?;
    let mut body = json!({
        "Description": a.description,
        "Policies": g.policies,
        "Roles": g.roles,
        "ServiceIdentities": g.services,
        "NodeIdentities": g.nodes,
        "Local": a.local,
    });
    if let Some(ttl) = &a.expires_ttl {
        crate::config::duration::parse_go_duration(ttl)
            .map_err(|e| anyhow!("Invalid -expires-ttl {ttl:?}: {e}"))?;
        body["ExpirationTTL"] = json!(ttl);
    }
    if let Some(id) = &a.accessor {
        body["AccessorID"] = json!(id);
    }
    if let Some(s) = &a.secret {
        body["SecretID"] = json!(s);
    }
    let t = object::put(
        &c,
        "/v1/acl/token",
        Some(&body),
        "Failed to create new token",
    )?;
    print(&t, Kind::Token, format, a.out.meta)
}

fn list(o: OutputArgs) -> Result<i32> {
    object::list(&o, Kind::Token)
}

/// The accessor ID `-id` names (prefixes resolved).
fn accessor(c: &Client, sel: &Select) -> Result<String> {
    match &sel.id {
        Some(id) => resolve_id(c, Kind::Token, id),
        None => bail!("Must specify the -id parameter"),
    }
}

fn fetch(c: &Client, id: &str) -> Result<Answer> {
    get(c, &object::path(Kind::Token, id)).map_err(|e| anyhow!("Error reading token {id:?}: {e}"))
}

fn read(a: Read) -> Result<i32> {
    let format = a.sel.out.format()?;
    let c = a.sel.out.client()?;
    let t = if a.own {
        get(&c, "/v1/acl/token/self").map_err(|e| anyhow!("Error reading token: {e}"))?
    } else {
        fetch(&c, &accessor(&c, &a.sel)?)?
    };
    print(&t, Kind::Token, format, a.sel.out.meta)
}

fn update(a: Update) -> Result<i32> {
    let format = a.sel.out.format()?;
    let c = a.sel.out.client()?;
    let id = accessor(&c, &a.sel)?;
    let mut t = fetch(&c, &id)?.value;
    let g = a.grants.resolve(&c)?;
    if let Some(d) = a.description {
        t["Description"] = json!(d);
    }
    let replace = |t: &mut Value, key: &str, given: Vec<Value>| {
        if !given.is_empty() {
            t[key] = json!(given);
        }
    };
    replace(&mut t, "Policies", g.policies);
    replace(&mut t, "Roles", g.roles);
    replace(&mut t, "ServiceIdentities", g.services);
    replace(&mut t, "NodeIdentities", g.nodes);
    let more = links(&c, Kind::Policy, &a.append_policy_id, &a.append_policy_name)?;
    add_to_list(&mut t, "Policies", more, false);
    let more = links(&c, Kind::Role, &a.append_role_id, &a.append_role_name)?;
    add_to_list(&mut t, "Roles", more, false);
    let path = object::path(Kind::Token, &id);
    let failed = format!("Failed to update token {id}");
    let t = object::put(&c, &path, Some(&t), &failed)?;
    print(&t, Kind::Token, format, a.sel.out.meta)
}

fn delete(a: Select) -> Result<i32> {
    let c = a.out.client()?;
    let id = accessor(&c, &a)?;
    object::delete(&c, Kind::Token, &id)
}

fn clone(a: CloneArgs) -> Result<i32> {
    let format = a.sel.out.format()?;
    let c = a.sel.out.client()?;
    let id = accessor(&c, &a.sel)?;
    let body = a.description.map(|d| json!({ "Description": d }));
    let path = format!("{}/clone", object::path(Kind::Token, &id));
    let failed = format!("Failed to clone token {id:?}");
    let t = object::put(&c, &path, body.as_ref(), &failed)?;
    print(&t, Kind::Token, format, a.sel.out.meta)
}
