//! `meridian members [-wan] [-detailed] [-status=REGEX]` in Consul's layout.

use anyhow::Result;
use serde_json::Value;

use super::{columnize, Client, HttpArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    http: HttpArgs,
    /// List the WAN pool (servers of every datacenter).
    #[arg(long)]
    wan: bool,
    /// Show every tag.
    #[arg(long)]
    detailed: bool,
    /// Only members whose status matches (`alive`, `alive|failed`, `^left$`).
    #[arg(long)]
    status: Option<String>,
}

pub fn run(a: Args) -> Result<i32> {
    let c = Client::new(&a.http)?;
    let q: Vec<(&str, String)> = if a.wan {
        vec![("wan", "1".into())]
    } else {
        vec![]
    };
    let members = c.get("/v1/agent/members", &q)?;
    print!("{}", format(&members, a.detailed, a.status.as_deref()));
    Ok(0)
}

fn status_text(n: i64) -> &'static str {
    match n {
        1 => "alive",
        2 => "leaving",
        3 => "left",
        4 => "failed",
        _ => "none",
    }
}

/// Consul takes `-status` as a regular expression; the forms people use
/// are alternations of names, anchored or not (`alive|failed`, `^left$`).
fn status_matches(pattern: &str, status: &str) -> bool {
    pattern.split('|').any(|alt| {
        let (start, end) = (alt.starts_with('^'), alt.ends_with('$') && alt.len() > 1);
        let lit = alt.trim_start_matches('^').trim_end_matches('$');
        match (start, end) {
            (true, true) => status == lit,
            (true, false) => status.starts_with(lit),
            (false, true) => status.ends_with(lit),
            (false, false) => status.contains(lit),
        }
    })
}

pub(crate) fn format(members: &Value, detailed: bool, status: Option<&str>) -> String {
    let mut list: Vec<&Value> = members
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    list.sort_by_key(|m| m["Name"].as_str().unwrap_or("").to_string());
    let header: Vec<String> = if detailed {
        ["Node", "Address", "Status", "Tags"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        [
            "Node",
            "Address",
            "Status",
            "Type",
            "Build",
            "Protocol",
            "DC",
            "Partition",
            "Segment",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut rows = vec![header];
    for m in list {
        let st = status_text(m["Status"].as_i64().unwrap_or(0));
        if status.is_some_and(|s| !status_matches(s, st)) {
            continue;
        }
        let tags = &m["Tags"];
        let tag = |k: &str| tags[k].as_str().unwrap_or("").to_string();
        let addr = format!(
            "{}:{}",
            m["Addr"].as_str().unwrap_or(""),
            m["Port"].as_u64().unwrap_or(0)
        );
        let name = m["Name"].as_str().unwrap_or("").to_string();
        if detailed {
            let all = tags
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            rows.push(vec![name, addr, st.into(), all]);
        } else {
            let server = tag("role") == "consul";
            let build = tag("build").split(':').next().unwrap_or("").to_string();
            rows.push(vec![
                name,
                addr,
                st.into(),
                if server { "server" } else { "client" }.into(),
                build,
                tag("vsn"),
                tag("dc"),
                "default".into(),
                if server { "<all>" } else { "<default>" }.into(),
            ]);
        }
    }
    columnize(&rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_filters_take_consul_style_patterns() {
        use super::status_matches as m;
        assert!(m("alive", "alive"));
        assert!(m("alive|failed", "failed"));
        assert!(!m("alive|failed", "left"));
        assert!(m("^left$", "left"));
        assert!(!m("^left$", "leaving"));
        assert!(m("le", "leaving") && m("le", "left"));
    }

    #[test]
    fn layout_matches_consul() {
        let m = serde_json::json!([
            {"Name": "web-1", "Addr": "10.0.0.2", "Port": 8301, "Status": 4, "Tags": {"role": "node", "dc": "dc1", "build": "0.1.0:meridian", "vsn": "2"}},
            {"Name": "srv-1", "Addr": "10.0.0.1", "Port": 8301, "Status": 1, "Tags": {"role": "consul", "dc": "dc1", "build": "0.1.0:meridian", "vsn": "2"}}
        ]);
        let out = super::format(&m, false, None);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Node   Address        Status  Type    Build  Protocol  DC   Partition  Segment"
        );
        assert_eq!(
            lines[1],
            "srv-1  10.0.0.1:8301  alive   server  0.1.0  2         dc1  default    <all>"
        );
        assert_eq!(
            lines[2],
            "web-1  10.0.0.2:8301  failed  client  0.1.0  2         dc1  default    <default>"
        );
        assert_eq!(super::format(&m, false, Some("alive")).lines().count(), 2);
    }
}
