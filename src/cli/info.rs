//! `meridian info`: the agent's stats in Consul's `key = value` blocks.

use anyhow::Result;
use serde_json::Value;

use super::{Client, HttpArgs};

pub fn run(h: HttpArgs) -> Result<i32> {
    let me = Client::new(&h)?.get("/v1/agent/self", &[])?;
    print!("{}", format(&me["Stats"]));
    Ok(0)
}

pub(crate) fn format(stats: &Value) -> String {
    let mut out = String::new();
    let Some(sections) = stats.as_object() else {
        return out;
    };
    let mut names: Vec<&String> = sections.keys().collect();
    names.sort();
    for name in names {
        out.push_str(&format!("{name}:\n"));
        if let Some(kv) = sections[name].as_object() {
            let mut keys: Vec<&String> = kv.keys().collect();
            keys.sort();
            for k in keys {
                let v = match &kv[k] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.push_str(&format!("\t{k} = {v}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn blocks_are_sorted() {
        let s = serde_json::json!({"raft": {"term": "2", "state": "Leader"}, "agent": {"services": "1"}});
        assert_eq!(
            super::format(&s),
            "agent:\n\tservices = 1\nraft:\n\tstate = Leader\n\tterm = 2\n"
        );
    }
}
