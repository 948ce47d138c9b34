//! `meridian operator raft list-peers` (in Consul's layout) and
//! `operator raft remove-peer -id=ID | -address=IP:PORT`.

use anyhow::Result;
use serde_json::Value;

use super::{columnize, Client, HttpArgs};

#[derive(Debug, clap::Subcommand)]
pub enum OperatorCmd {
    /// Raft operations.
    Raft {
        #[command(subcommand)]
        cmd: RaftCmd,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum RaftCmd {
    /// Lists the Raft servers and their state.
    ListPeers(HttpArgs),
    /// Removes a server from the Raft configuration.
    RemovePeer(RemovePeerArgs),
}

#[derive(Debug, clap::Args)]
pub struct RemovePeerArgs {
    #[command(flatten)]
    http: HttpArgs,
    /// The server's ID, as list-peers shows it.
    #[arg(long)]
    id: Option<String>,
    /// The server's address, IP:port of its server RPC.
    #[arg(long)]
    address: Option<String>,
}

pub fn run(cmd: OperatorCmd) -> Result<i32> {
    match cmd {
        OperatorCmd::Raft {
            cmd: RaftCmd::ListPeers(h),
        } => {
            let conf = Client::new(&h)?.get("/v1/operator/raft/configuration", &[])?;
            print!("{}", format_peers(&conf));
            Ok(0)
        }
        OperatorCmd::Raft {
            cmd: RaftCmd::RemovePeer(a),
        } => {
            let (key, value, what) = match (&a.id, &a.address) {
                (Some(id), None) => ("id", id.clone(), "id"),
                (None, Some(addr)) => ("address", addr.clone(), "address"),
                _ => {
                    return Err(anyhow::anyhow!(
                        "Error parsing arguments: exactly one of -id or -address is required"
                    ))
                }
            };
            Client::new(&a.http)?
                .call_ok(
                    reqwest::Method::DELETE,
                    "/v1/operator/raft/peer",
                    &[(key, value.clone())],
                    None,
                    &[],
                )
                .map_err(|e| anyhow::anyhow!("Error removing peer: {e}"))?;
            println!("Removed peer with {what} \"{value}\"");
            Ok(0)
        }
    }
}

pub(crate) fn format_peers(conf: &Value) -> String {
    let servers: Vec<&Value> = conf["Servers"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let leader_index = servers
        .iter()
        .find(|s| s["Leader"] == true)
        .and_then(|s| s["LastIndex"].as_u64());
    let mut rows = vec![[
        "Node",
        "ID",
        "Address",
        "State",
        "Voter",
        "RaftProtocol",
        "Commit Index",
        "Trails Leader By",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for s in servers {
        let leader = s["Leader"] == true;
        let index = s["LastIndex"].as_u64().unwrap_or(0);
        let trails = match (leader, leader_index) {
            (true, _) => "-".to_string(),
            (false, Some(l)) => format!("{} commits", l.saturating_sub(index)),
            (false, None) => "-".to_string(),
        };
        rows.push(vec![
            s["Node"].as_str().unwrap_or("").to_string(),
            s["ID"].as_str().unwrap_or("").to_string(),
            s["Address"].as_str().unwrap_or("").to_string(),
            if leader { "leader" } else { "follower" }.to_string(),
            s["Voter"].as_bool().unwrap_or(false).to_string(),
            s["ProtocolVersion"].as_str().unwrap_or("3").to_string(),
            index.to_string(),
            trails,
        ]);
    }
    columnize(&rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn list_peers_layout() {
        let v = serde_json::json!({"Servers": [
            {"ID": "a1", "Node": "s1", "Address": "10.0.0.1:8300", "Leader": true, "Voter": true, "ProtocolVersion": "3", "LastIndex": 10},
            {"ID": "b2", "Node": "s2", "Address": "10.0.0.2:8300", "Leader": false, "Voter": true, "ProtocolVersion": "3", "LastIndex": 8}
        ], "Index": 10});
        let out = super::format_peers(&v);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Node  ID  Address        State     Voter  RaftProtocol  Commit Index  Trails Leader By");
        assert_eq!(
            lines[1],
            "s1    a1  10.0.0.1:8300  leader    true   3             10            -"
        );
        assert_eq!(
            lines[2],
            "s2    b2  10.0.0.2:8300  follower  true   3             8             2 commits"
        );
    }
}
