//! `meridian keyring -list | -list-primary | -install KEY | -use KEY |
//! -remove KEY`: gossip key rotation through `/v1/operator/keyring`, with
//! Consul's messages and list layout ("WAN:", "dc1 (LAN):", then each key
//! with the members that have it, `[n/total]`).

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use super::{Client, HttpArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// Install a new encryption key. This will broadcast the new key to
    /// all members in the cluster.
    #[arg(long)]
    install: Option<String>,
    /// Change the primary encryption key, which is used to encrypt
    /// messages. The key must already be installed.
    #[arg(long = "use")]
    use_key: Option<String>,
    /// Remove the given key from the cluster; not the primary key.
    #[arg(long)]
    remove: Option<String>,
    /// List all keys currently in use within the cluster.
    #[arg(long)]
    list: bool,
    /// List all primary keys currently in use within the cluster.
    #[arg(long = "list-primary")]
    list_primary: bool,
    /// Relay each member's answer through this many other members (0-5).
    #[arg(long = "relay-factor", default_value_t = 0)]
    relay_factor: i64,
    /// Only this datacenter's LAN pool (no WAN traffic); lists only.
    #[arg(long = "local-only")]
    local_only: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let actions = [a.list, a.list_primary].iter().filter(|b| **b).count()
        + [&a.install, &a.use_key, &a.remove]
            .iter()
            .filter(|k| k.as_deref().is_some_and(|k| !k.is_empty()))
            .count();
    if actions == 0 {
        return Err(anyhow!(
            "Usage: meridian keyring [options]\n\n  One of -list, -list-primary, -install, -use or -remove is required."
        ));
    }
    if actions > 1 {
        return Err(anyhow!("Only a single action is allowed"));
    }
    if !(0..=5).contains(&a.relay_factor) {
        return Err(anyhow!(
            "Error parsing relay factor: Relay factor must be in range: [0, 5]"
        ));
    }
    if a.local_only && !(a.list || a.list_primary) {
        return Err(anyhow!(
            "Error validating local-only: local-only can only be set for list requests"
        ));
    }
    let client = Client::new(&a.http)?;
    let mut query = vec![("relay-factor", a.relay_factor.to_string())];
    if a.list || a.list_primary {
        if a.local_only {
            query.push(("local-only", "true".to_string()));
        }
        println!(
            "==> Gathering installed {}encryption keys...",
            if a.list_primary { "primary " } else { "" }
        );
        let pools = client
            .get("/v1/operator/keyring", &query)
            .map_err(|e| anyhow!("error: {e}"))?;
        let field = if a.list_primary {
            "PrimaryKeys"
        } else {
            "Keys"
        };
        print!("{}", format_pools(&pools, field));
        return Ok(0);
    }
    let (method, key, doing) = if let Some(k) = a.install {
        (
            reqwest::Method::POST,
            k,
            "Installing new gossip encryption key...",
        )
    } else if let Some(k) = a.use_key {
        (
            reqwest::Method::PUT,
            k,
            "Changing primary gossip encryption key...",
        )
    } else {
        let k = a.remove.unwrap_or_default();
        (
            reqwest::Method::DELETE,
            k,
            "Removing gossip encryption key...",
        )
    };
    println!("==> {doing}");
    client
        .call_ok(
            method,
            "/v1/operator/keyring",
            &query,
            Some(json!({ "Key": key }).to_string().into_bytes()),
            &[],
        )
        .map_err(|e| anyhow!("error: {e}"))?;
    Ok(0)
}

/// Each pool as Consul's CLI prints it: a blank line, the pool's name,
/// its members' messages, then `  KEY [n/total]` per key.
fn format_pools(pools: &Value, field: &str) -> String {
    let mut out = String::new();
    for p in pools.as_array().into_iter().flatten() {
        let name = if p["WAN"].as_bool().unwrap_or(false) {
            "WAN".to_string()
        } else {
            format!("{} (LAN)", p["Datacenter"].as_str().unwrap_or_default())
        };
        let segment = p["Segment"].as_str().unwrap_or_default();
        let suffix = if segment.is_empty() {
            String::new()
        } else {
            format!(" [{segment}]")
        };
        out.push_str(&format!("\n{name}{suffix}:\n"));
        for (node, msg) in p["Messages"].as_object().into_iter().flatten() {
            out.push_str(&format!(
                "  ===> {node}: {}\n",
                msg.as_str().unwrap_or_default()
            ));
        }
        let total = p["NumNodes"].as_u64().unwrap_or(0);
        for (key, n) in p[field].as_object().into_iter().flatten() {
            out.push_str(&format!("  {key} [{}/{total}]\n", n.as_u64().unwrap_or(0)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_pools_as_consul_does() {
        let pools = json!([
            {"WAN": true, "Datacenter": "dc1", "Segment": "", "Keys": {"k1=": 3}, "PrimaryKeys": {"k1=": 3}, "NumNodes": 3, "Messages": {}},
            {"WAN": false, "Datacenter": "dc1", "Segment": "", "Keys": {"k1=": 4, "k2=": 2}, "PrimaryKeys": {"k1=": 4}, "NumNodes": 4, "Messages": {}}
        ]);
        assert_eq!(
            format_pools(&pools, "Keys"),
            "\nWAN:\n  k1= [3/3]\n\ndc1 (LAN):\n  k1= [4/4]\n  k2= [2/4]\n"
        );
        assert_eq!(
            format_pools(&pools, "PrimaryKeys"),
            "\nWAN:\n  k1= [3/3]\n\ndc1 (LAN):\n  k1= [4/4]\n"
        );
    }
}
