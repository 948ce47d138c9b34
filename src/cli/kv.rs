//! `meridian kv get|put|delete|export|import`, with Consul's flags, output
//! and messages.

use std::io::Read;

use anyhow::{anyhow, Context, Result};
use base64::Engine;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::enc;

use super::{Client, HttpArgs};

#[derive(Debug, clap::Subcommand)]
pub enum KvCmd {
    /// Reads a value (or every value under a prefix).
    Get {
        #[command(flatten)]
        http: HttpArgs,
        #[arg(long)]
        recurse: bool,
        #[arg(long)]
        keys: bool,
        #[arg(long, default_value = "/")]
        separator: String,
        #[arg(long)]
        detailed: bool,
        #[arg(long)]
        base64: bool,
        #[arg(default_value = "")]
        key: String,
    },
    /// Writes a value: VALUE, @FILE, or - for stdin.
    Put {
        #[command(flatten)]
        http: HttpArgs,
        /// Check-and-set against -modify-index (0 = only if absent).
        #[arg(long)]
        cas: bool,
        #[arg(long = "modify-index")]
        modify_index: Option<u64>,
        #[arg(long)]
        flags: Option<u64>,
        /// Meridian extension: the key is deleted once this long (a Go
        /// duration, 1s to 24h) passes without a rewrite.
        #[arg(long)]
        ttl: Option<String>,
        /// The value is base64 and is decoded before it is written.
        #[arg(long)]
        base64: bool,
        key: String,
        value: Option<String>,
    },
    /// Deletes a key (or every key under a prefix).
    Delete {
        #[command(flatten)]
        http: HttpArgs,
        #[arg(long)]
        recurse: bool,
        #[arg(long)]
        cas: bool,
        #[arg(long = "modify-index")]
        modify_index: Option<u64>,
        key: String,
    },
    /// Prints every key under a prefix as JSON for `kv import`.
    Export {
        #[command(flatten)]
        http: HttpArgs,
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Writes the keys of a `kv export` document: @FILE, - for stdin, or the JSON itself.
    Import {
        #[command(flatten)]
        http: HttpArgs,
        /// Prepended to every imported key.
        #[arg(long, default_value = "")]
        prefix: String,
        data: Option<String>,
    },
}

/// One entry of Consul's export format (`command/kv/impexp`).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Exported {
    key: String,
    flags: u64,
    value: String,
}

/// Reads `@file`, `-` (stdin) or the literal.
fn source(arg: Option<String>) -> Result<Vec<u8>> {
    match arg.as_deref() {
        None => Ok(Vec::new()),
        Some("-") => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .context("Failed to read stdin")?;
            Ok(b)
        }
        Some(s) if s.starts_with('@') => {
            std::fs::read(&s[1..]).with_context(|| format!("Failed to read file {}", &s[1..]))
        }
        Some(s) => Ok(s.as_bytes().to_vec()),
    }
}

pub fn run(cmd: KvCmd) -> Result<i32> {
    match cmd {
        KvCmd::Get {
            http,
            recurse,
            keys,
            separator,
            detailed,
            base64,
            key,
        } => get(
            &Client::new(&http)?,
            &key,
            recurse,
            keys,
            &separator,
            detailed,
            base64,
        ),
        KvCmd::Put {
            http,
            cas,
            modify_index,
            flags,
            ttl,
            base64,
            key,
            value,
        } => {
            let c = Client::new(&http)?;
            let mut data = source(value)?;
            if base64 {
                data = base64::engine::general_purpose::STANDARD
                    .decode(&data)
                    .context("Failed to base64-decode the value")?;
            }
            let mut q: Vec<(&str, String)> = Vec::new();
            if let Some(f) = flags {
                q.push(("flags", f.to_string()));
            }
            if cas {
                let idx =
                    modify_index.ok_or_else(|| anyhow!("Must specify -modify-index with -cas!"))?;
                q.push(("cas", idx.to_string()));
            }
            if let Some(t) = ttl {
                q.push(("ttl", t));
            }
            let r = c.call_ok(
                Method::PUT,
                &format!("/v1/kv/{}", enc(&key)),
                &q,
                Some(data),
                &[],
            )?;
            if r.text() != "true" {
                eprintln!("Error! Did not write to {key}: CAS failed");
                return Ok(1);
            }
            println!("Success! Data written to: {key}");
            Ok(0)
        }
        KvCmd::Delete {
            http,
            recurse,
            cas,
            modify_index,
            key,
        } => {
            let c = Client::new(&http)?;
            let mut q: Vec<(&str, String)> = Vec::new();
            if recurse {
                if cas {
                    return Err(anyhow!("Cannot specify both -cas and -recurse!"));
                }
                q.push(("recurse", String::new()));
            } else if key.is_empty() {
                return Err(anyhow!("Error! Missing KEY argument"));
            }
            if cas {
                let idx =
                    modify_index.ok_or_else(|| anyhow!("Must specify -modify-index with -cas!"))?;
                q.push(("cas", idx.to_string()));
            }
            let r = c.call_ok(
                Method::DELETE,
                &format!("/v1/kv/{}", enc(&key)),
                &q,
                None,
                &[],
            )?;
            if r.text() != "true" {
                eprintln!("Error! Did not delete key {key}: CAS failed");
                return Ok(1);
            }
            if recurse {
                println!("Success! Deleted keys with prefix: {key}");
            } else {
                println!("Success! Deleted key: {key}");
            }
            Ok(0)
        }
        KvCmd::Export { http, prefix } => {
            let c = Client::new(&http)?;
            let r = c.call_ok(
                Method::GET,
                &format!("/v1/kv/{}", enc(&prefix)),
                &[("recurse", String::new())],
                None,
                &[404],
            )?;
            let entries = if r.status == 404 {
                Value::Array(vec![])
            } else {
                r.json()?
            };
            println!("{}", export(&entries)?);
            Ok(0)
        }
        KvCmd::Import { http, prefix, data } => {
            let c = Client::new(&http)?;
            let raw = source(data)?;
            let entries: Vec<Exported> = serde_json::from_slice(&raw)
                .context("Failed to decode the import data (expected `kv export` JSON)")?;
            for e in entries {
                let value = base64::engine::general_purpose::STANDARD
                    .decode(&e.value)
                    .with_context(|| format!("Failed to base64-decode the value of {}", e.key))?;
                let key = format!("{prefix}{}", e.key);
                c.call_ok(
                    Method::PUT,
                    &format!("/v1/kv/{}", enc(&key)),
                    &[("flags", e.flags.to_string())],
                    Some(value),
                    &[],
                )?;
                println!("Imported: {key}");
            }
            Ok(0)
        }
    }
}

fn get(
    c: &Client,
    key: &str,
    recurse: bool,
    keys: bool,
    sep: &str,
    detailed: bool,
    b64: bool,
) -> Result<i32> {
    let path = format!("/v1/kv/{}", enc(key));
    if keys {
        let r = c.call_ok(
            Method::GET,
            &path,
            &[("keys", String::new()), ("separator", sep.to_string())],
            None,
            &[404],
        )?;
        if r.status == 200 {
            for k in r.json()?.as_array().into_iter().flatten() {
                println!("{}", k.as_str().unwrap_or(""));
            }
        }
        return Ok(0);
    }
    let q: Vec<(&str, String)> = if recurse {
        vec![("recurse", String::new())]
    } else {
        vec![]
    };
    let r = c.call_ok(Method::GET, &path, &q, None, &[404])?;
    if r.status == 404 {
        if recurse {
            return Ok(0);
        }
        eprintln!("Error! No key exists at: {key}");
        return Ok(1);
    }
    let entries = r.json()?;
    for e in entries.as_array().into_iter().flatten() {
        let value = decode(e)?;
        let shown = if b64 {
            base64::engine::general_purpose::STANDARD.encode(&value)
        } else {
            String::from_utf8_lossy(&value).into_owned()
        };
        if detailed {
            print!("{}", detailed_block(e, &shown));
            if recurse {
                println!();
            }
        } else if recurse {
            println!("{}:{shown}", e["Key"].as_str().unwrap_or(""));
        } else {
            println!("{shown}");
        }
    }
    Ok(0)
}

fn decode(e: &Value) -> Result<Vec<u8>> {
    match e["Value"].as_str() {
        None => Ok(Vec::new()),
        Some(s) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .context("the agent sent an invalid base64 value"),
    }
}

pub(crate) fn detailed_block(e: &Value, value: &str) -> String {
    let session = e["Session"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("-");
    let rows = [
        ("CreateIndex", e["CreateIndex"].to_string()),
        ("Flags", e["Flags"].to_string()),
        ("Key", e["Key"].as_str().unwrap_or("").to_string()),
        ("LockIndex", e["LockIndex"].to_string()),
        ("ModifyIndex", e["ModifyIndex"].to_string()),
        ("Session", session.to_string()),
        ("Value", value.to_string()),
    ];
    rows.iter().map(|(k, v)| format!("{k:<16} {v}\n")).collect()
}

/// Consul's export document: `[{"key", "flags", "value"}]`, tab-indented.
pub(crate) fn export(entries: &Value) -> Result<String> {
    let out: Vec<Exported> = entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Exported {
            key: e["Key"].as_str().unwrap_or("").to_string(),
            flags: e["Flags"].as_u64().unwrap_or(0),
            value: e["Value"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut buf,
        serde_json::ser::PrettyFormatter::with_indent(b"\t"),
    );
    out.serialize(&mut ser)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn detailed_and_export_shapes() {
        let e = serde_json::json!({"CreateIndex": 5, "Flags": 0, "Key": "foo", "LockIndex": 0, "ModifyIndex": 7, "Value": "YmFy"});
        let block = super::detailed_block(&e, "bar");
        assert!(
            block.starts_with("CreateIndex      5\nFlags            0\nKey              foo\n"),
            "{block}"
        );
        assert!(block.contains("Session          -\nValue            bar\n"));
        let out = super::export(&serde_json::json!([e])).unwrap();
        assert_eq!(
            out,
            "[\n\t{\n\t\t\"key\": \"foo\",\n\t\t\"flags\": 0,\n\t\t\"value\": \"YmFy\"\n\t}\n]"
        );
    }
}
