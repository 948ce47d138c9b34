//! `meridian rtt [-wan] NODE [NODE]`: the round trip between two nodes as
//! their network coordinates estimate it, in Consul's words. The second
//! node defaults to the agent's own; with `-wan`, nodes are servers named
//! `NODE.DC` and the WAN coordinates are used.

use super::{Client, HttpArgs};
use crate::structs::coordinate::{Coordinate, CoordinateEntry, DatacenterMap};
use anyhow::{bail, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// Use WAN coordinates (servers, named NODE.DC) instead of LAN ones.
    #[arg(long)]
    wan: bool,
    /// The first node.
    node1: String,
    /// The second node (default: the agent's own).
    node2: Option<String>,
}

pub fn run(a: Args) -> Result<i32> {
    let c = Client::new(&a.http)?;
    let node2 = match a.node2 {
        Some(n) => n,
        None => {
            let me = c.get("/v1/agent/self", &[])?;
            let name = me["Config"]["NodeName"].as_str().unwrap_or_default();
            if a.wan {
                let dc = me["Config"]["Datacenter"].as_str().unwrap_or_default();
                format!("{name}.{dc}")
            } else {
                name.to_string()
            }
        }
    };
    let (c1, c2, source) = if a.wan {
        let maps: Vec<DatacenterMap> =
            serde_json::from_value(c.get("/v1/coordinate/datacenters", &[])?)?;
        (
            wan_coordinate(&maps, &a.node1)?,
            wan_coordinate(&maps, &node2)?,
            "WAN",
        )
    } else {
        let nodes: Vec<CoordinateEntry> =
            serde_json::from_value(c.get("/v1/coordinate/nodes", &dc_query(&a.http))?)?;
        (
            lan_coordinate(&nodes, &a.node1)?,
            lan_coordinate(&nodes, &node2)?,
            "LAN",
        )
    };
    println!("{}", line(&a.node1, &node2, &c1, &c2, source));
    Ok(0)
}

fn dc_query(h: &HttpArgs) -> Vec<(&'static str, String)> {
    h.datacenter.iter().map(|dc| ("dc", dc.clone())).collect()
}

/// Consul's output line.
fn line(n1: &str, n2: &str, c1: &Coordinate, c2: &Coordinate, source: &str) -> String {
    format!(
        "Estimated {n1} <-> {n2} rtt: {:.3} ms (using {source} coordinates)",
        c1.distance_secs(c2) * 1000.0
    )
}

fn lan_coordinate(nodes: &[CoordinateEntry], name: &str) -> Result<Coordinate> {
    match nodes
        .iter()
        .find(|e| e.node.eq_ignore_ascii_case(name) && e.segment.is_empty())
    {
        Some(e) => Ok(e.coord.clone()),
        None => bail!("Could not find a coordinate for node {name:?}"),
    }
}

fn wan_coordinate(maps: &[DatacenterMap], name: &str) -> Result<Coordinate> {
    let Some((node, dc)) = name.rsplit_once('.') else {
        bail!("Node names must be specified as <node name>.<datacenter> with -wan");
    };
    let found = maps
        .iter()
        .filter(|m| m.datacenter.eq_ignore_ascii_case(dc))
        .flat_map(|m| &m.coordinates)
        .find(|e| e.node.eq_ignore_ascii_case(name) || e.node.eq_ignore_ascii_case(node));
    match found {
        Some(e) => Ok(e.coord.clone()),
        None => bail!("Could not find a coordinate for node {name:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_consuls_line_and_finds_nodes_by_name() {
        let mut far = Coordinate::default();
        far.vec[0] = 0.001234;
        let nodes: Vec<CoordinateEntry> = serde_json::from_value(serde_json::json!([
            {"Node": "a", "Segment": "", "Coord": {"Vec": [0,0,0,0,0,0,0,0], "Error": 0.2, "Adjustment": 0.0, "Height": 0.0}},
            {"Node": "B", "Segment": "", "Coord": {"Vec": [0.001234,0,0,0,0,0,0,0], "Error": 0.2, "Adjustment": 0.0, "Height": 0.0}},
        ]))
        .unwrap();
        let (a, b) = (
            lan_coordinate(&nodes, "a").unwrap(),
            lan_coordinate(&nodes, "b").unwrap(),
        );
        assert_eq!(
            line("a", "b", &a, &b, "LAN"),
            "Estimated a <-> b rtt: 1.234 ms (using LAN coordinates)"
        );
        let err = lan_coordinate(&nodes, "zz").unwrap_err().to_string();
        assert_eq!(err, "Could not find a coordinate for node \"zz\"");
        let maps = vec![DatacenterMap {
            datacenter: "dc2".into(),
            area_id: "wan".into(),
            coordinates: vec![CoordinateEntry {
                node: "s1.dc2".into(),
                segment: String::new(),
                coord: far,
            }],
        }];
        assert!(wan_coordinate(&maps, "s1.dc2").is_ok());
        assert!(wan_coordinate(&maps, "s1.dc1").is_err());
        assert!(wan_coordinate(&maps, "s1").is_err());
    }
}
