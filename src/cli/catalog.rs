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
            let all = every_dc(&http);
            let c = Client::new(&http)?;
            let nodes = match service {
                Some(s) => c.get(&format!("/v1/catalog/service/{}", enc(&s)), &[])?,
                None => c.get("/v1/catalog/nodes", &[])?,
            };
            if !all {
                print!("{}", format_nodes(&nodes, detailed));
                return Ok(0);
            }
            let (answers, failed) = split_by_dc(&nodes);
            let merged: Vec<Value> = answers
                .into_iter()
                .flat_map(|(_, v)| v.as_array().cloned().unwrap_or_default())
                .collect();
            print!("{}", format_nodes(&Value::Array(merged), detailed));
            return Ok(report_failed(&failed));
        }
        CatalogCmd::Services { http, node, tags } => {
            let all = every_dc(&http);
            let c = Client::new(&http)?;
            let answer = match &node {
                Some(n) => c.get(&format!("/v1/catalog/node/{}", enc(n)), &[])?,
                None => c.get("/v1/catalog/services", &[])?,
            };
            let by_node = node.is_some();
            if !all {
                let services = services_of(&answer, by_node);
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
                return Ok(0);
            }
            // `-datacenter '*'` (Meridian's own): one table, a DC column first.
            let (answers, failed) = split_by_dc(&answer);
            let mut rows = vec![if tags {
                vec!["DC".to_string(), "Service".into(), "Tags".into()]
            } else {
                vec!["DC".to_string(), "Service".into()]
            }];
            for (dc, v) in answers {
                for (n, t) in services_of(v, by_node) {
                    let mut row = vec![dc.clone(), n];
                    if tags {
                        row.push(t.join(","));
                    }
                    rows.push(row);
                }
            }
            print!("{}", columnize(&rows));
            return Ok(report_failed(&failed));
        }
    }
    Ok(0)
}

/// Whether `-datacenter '*'` asked every datacenter.
fn every_dc(http: &HttpArgs) -> bool {
    http.datacenter.as_deref() == Some("*")
}

/// Datacenters that answered a `?dc=*` read, with their JSON.
type Answered<'a> = Vec<(String, &'a Value)>;

/// Datacenters that failed, with the error's text.
type Failed = Vec<(String, String)>;

/// A `?dc=*` answer split into the datacenters that answered and those
/// that failed.
fn split_by_dc(v: &Value) -> (Answered<'_>, Failed) {
    let mut answers = Vec::new();
    let mut failed = Vec::new();
    for (dc, a) in v.as_object().into_iter().flatten() {
        match (a.get("Error").and_then(Value::as_str), a.get("Status")) {
            (Some(e), Some(s)) if s.is_u64() => failed.push((dc.clone(), e.to_string())),
            _ => answers.push((dc.clone(), a)),
        }
    }
    (answers, failed)
}

/// Names the datacenters that did not answer on stderr: exit code 2 when
/// any failed (the table holds the others), 0 when none did.
fn report_failed(failed: &[(String, String)]) -> i32 {
    for (dc, e) in failed {
        eprintln!("Error querying datacenter {dc}: {e}");
    }
    if failed.is_empty() {
        0
    } else {
        2
    }
}

/// Service names with their tags, sorted: from `/v1/catalog/services`, or
/// (`by_node`) from `/v1/catalog/node/<node>`.
fn services_of(v: &Value, by_node: bool) -> Vec<(String, Vec<String>)> {
    if !by_node {
        return v
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), strings(v)))
            .collect();
    }
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
    list.sort_by_key(|n| {
        (
            n["Datacenter"].as_str().unwrap_or("").to_string(),
            n["Node"].as_str().unwrap_or("").to_string(),
        )
    });
    for n in list {
        let name = n["Node"].as_str().unwrap_or("").to_string();
        // One row per node, per datacenter (`-datacenter '*'` lists several).
        if !seen.insert((name.clone(), n["Datacenter"].clone().to_string())) {
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

    #[test]
    fn an_every_datacenter_answer_splits_into_answers_and_failures() {
        let v = serde_json::json!({
            "dc1": {"web": ["v1"], "Error": ["a service named Error"]},
            "dc2": {"Error": "No path to datacenter", "Status": 500},
        });
        let (answers, failed) = super::split_by_dc(&v);
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].0, "dc1");
        assert_eq!(
            super::services_of(answers[0].1, false),
            vec![
                (
                    "Error".to_string(),
                    vec!["a service named Error".to_string()]
                ),
                ("web".to_string(), vec!["v1".to_string()])
            ]
        );
        assert_eq!(
            failed,
            vec![("dc2".to_string(), "No path to datacenter".to_string())]
        );
        assert_eq!(super::report_failed(&failed), 2);
    }
}
