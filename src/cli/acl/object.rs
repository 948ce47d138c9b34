//! The requests the policy, role and token commands share, told apart
//! only by the kind of object ([`Kind`]): list them, read one by ID (or
//! unique prefix) or by name, write one, delete one. Each keeps Consul's
//! CLI wording for its errors, with the kind's name in it.

use anyhow::{anyhow, bail, Result};
use reqwest::Method;
use serde_json::Value;

use super::super::Client;
use super::input::{resolve_id, Kind};
use super::output::{get, print_json, Answer, IntoAnswer};
use super::{format, Format, OutputArgs};
use crate::api::enc;

/// `/v1/acl/<kind>/<id>`: one object's path.
pub fn path(kind: Kind, id: &str) -> String {
    format!("/v1/acl/{}/{}", kind.name(), enc(id))
}

/// Lists every object of `kind`, as a table or as the API's JSON.
pub fn list(o: &OutputArgs, kind: Kind) -> Result<i32> {
    let format = o.format()?;
    let all = get(&o.client()?, kind.list_path())
        .map_err(|e| anyhow!("Failed to retrieve the {} list: {e}", kind.name()))?;
    match format {
        Format::Json => print_json(&all),
        Format::Pretty => {
            let text = match kind {
                Kind::Token => format::token_list(all.items(), o.meta),
                Kind::Policy => format::policy_list(all.items(), o.meta),
                Kind::Role => format::role_list(all.items(), o.meta),
            };
            print!("{text}");
            Ok(0)
        }
    }
}

/// Reads one object by ID (or unique prefix, `id` winning) or by name
/// (`/v1/acl/<kind>/name/<name>`; policies and roles have one).
pub fn fetch(c: &Client, kind: Kind, id: Option<&str>, name: Option<&str>) -> Result<Answer> {
    let (path, what) = match (id, name) {
        (Some(id), _) => {
            let id = resolve_id(c, kind, id)?;
            (path(kind, &id), id)
        }
        (None, Some(name)) => (
            format!("/v1/acl/{}/name/{}", kind.name(), enc(name)),
            name.to_string(),
        ),
        (None, None) => bail!("Must specify either the -id or -name parameters"),
    };
    get(c, &path).map_err(|e| anyhow!("Error reading {} {what:?}: {e}", kind.name()))
}

/// The full ID of the object `-id` (a prefix) or `-name` names.
pub fn id_of(c: &Client, kind: Kind, id: Option<&str>, name: Option<&str>) -> Result<String> {
    match id {
        Some(id) => resolve_id(c, kind, id),
        None => Ok(id_field(&fetch(c, kind, None, name)?.value)),
    }
}

/// A policy's or role's `ID` ("" when the answer has none).
pub fn id_field(v: &Value) -> String {
    v.get("ID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `PUT path` with `body` as JSON; an error answer is `failed: <error>`.
pub fn put(c: &Client, path: &str, body: Option<&Value>, failed: &str) -> Result<Answer> {
    let body = body.map(serde_json::to_vec).transpose()?;
    c.call_ok(Method::PUT, path, &[], body, &[])
        .map_err(|e| anyhow!("{failed}: {e}"))?
        .answer()
}

/// Deletes the object of `kind` with this full ID and says so.
pub fn delete(c: &Client, kind: Kind, id: &str) -> Result<i32> {
    c.call_ok(Method::DELETE, &path(kind, id), &[], None, &[])
        .map_err(|e| anyhow!("Error deleting {} {id:?}: {e}", kind.name()))?;
    println!("{} {id:?} deleted successfully", kind.title());
    Ok(0)
}
