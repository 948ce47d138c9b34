//! `meridian catalog datacenters|nodes|services`.

use anyhow::Result;
use serde_json::Value;

use crate::api::enc;

use super::{columnize, Client, HttpArgs};

#[derive(Debug, clap::Subcommand)]
pub enum CatalogCmd {
    /// Lists the known datacenters.
    Datacenters(HttpArgs),
    /// Lists the nodes in the catalog.
    Nodes {
        #[command(flatten)]
        http: HttpArgs,
        /// Only nodes that provide this service.
        #[arg(long)]
        service: Option<String>,
        /// Show the full node ID, tagged addresses and metadata.
        #[arg(long)]
        detailed: bool,
    },
    /// Lists the services in the catalog.
    Services {
        #[command(flatten)]
        http: HttpArgs,
        /// Only services on this node.
        #[arg(long)]
        node: Option<String>,
        /// Show the tags of each service.
        #[arg(long)]
        tags: bool,
    },
}

pub fn run(cmd: CatalogCmd) -> Result<i32> {
    match cmd {
        CatalogCmd::Datacenters(h) => {
            for dc in Client::new(&h)?
                .get("/v1/catalog/datacenters", &[])?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!("{}", dc.as_str().unwrap_or(""));
            }
        }
        CatalogCmd::Nodes {
            http,
            service,
            detailed,
        } => {
            let c = Client::new(&http)?;
            let nodes = match service {
                Some(s) => c.get(&format!("/v1/catalog/service/{}", enc(&s)), &[])?,
                None => c.get("/v1/catalog/nodes", &[])?,
            };
            print!("{}", format_nodes(&nodes, detailed));
        }
        CatalogCmd::Services { http, node, tags } => {
            let c = Client::new(&http)?;
            let services: Vec<(String, Vec<String>)> = match node {
                Some(n) => {
                    let v = c.get(&format!("/v1/catalog/node/{}", enc(&n)), &[])?;
                    let mut out: Vec<(String, Vec<String>)> = v["Services"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(_, s)| {
                            (
                                s["Service"].as_str().unwrap_or("").to_string(),
                                strings(&s["Tags"]),
                            )
                        })
                        .collect();
                    out.sort();
                    out.dedup_by(|a, b| a.0 == b.0);
                    out
                }
                None => c
                    .get("/v1/catalog/services", &[])?
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), strings(v)))
                    .collect(),
            };
            if tags {
                let rows: Vec<Vec<String>> = services
                    .iter()
                    .map(|(n, t)| vec![n.clone(), t.join(",")])
                    .collect();
                print!("{}", columnize(&rows));
            } else {
                for (n, _) in services {
                    println!("{n}");
                }
            }
        }
    }
    Ok(0)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// `Node  ID  Address  DC`, ID cut to 8 characters unless detailed.
/// Accepts `/v1/catalog/nodes` and `/v1/catalog/service/NAME` shapes.
pub(crate) fn format_nodes(nodes: &Value, detailed: bool) -> String {
    let mut rows = vec![vec![
        "Node".to_string(),
        "ID".into(),
        "Address".into(),
        "DC".into(),
    ]];
    let mut seen = std::collections::BTreeSet::new();
    let mut list: Vec<&Value> = nodes
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    list.sort_by_key(|n| n["Node"].as_str().unwrap_or("").to_string());
    for n in list {
        let name = n["Node"].as_str().unwrap_or("").to_string();
        if !seen.insert(name.clone()) {
            continue;
        }
        let id = n["ID"].as_str().unwrap_or("");
        let id = if detailed {
            id.to_string()
        } else {
            id.chars().take(8).collect()
        };
        rows.push(vec![
            name,
            id,
            n["Address"].as_str().unwrap_or("").into(),
            n["Datacenter"].as_str().unwrap_or("").into(),
        ]);
    }
    columnize(&rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn nodes_layout() {
        let v = serde_json::json!([{"Node": "n1", "ID": "40e4a748-2192-161a-0510-9bf59fe950b5", "Address": "10.0.0.1", "Datacenter": "dc1"}]);
        assert_eq!(
            super::format_nodes(&v, false),
            "Node  ID        Address   DC\nn1    40e4a748  10.0.0.1  dc1\n"
        );
    }
}
