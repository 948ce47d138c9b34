//! `replication` (Meridian's own, hashicorp/consul#6869): KV prefixes a
//! server's datacenter copies from another datacenter. Consul has no such
//! block (consul-replicate is a separate daemon); without it no KV data
//! crosses datacenters.

use serde::{Deserialize, Serialize};

/// `replication { source = "dc1" prefixes = ["config/global/"] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvReplication {
    /// The datacenter the prefixes are copied from.
    pub source: String,
    /// KV prefixes, each copied as a whole; keys under them refuse local
    /// writes.
    pub prefixes: Vec<String>,
    /// `replication.token`: the token the source is read with (else the
    /// agent's default).
    pub token: Option<String>,
    /// The file that declared the block, for errors that judge it later.
    pub declared_in: String,
}

impl KvReplication {
    /// The replicated prefix `key` falls under, if any.
    pub fn covering(&self, key: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .find(|p| key.starts_with(p.as_str()))
            .map(String::as_str)
    }

    /// The replicated prefix a delete of the tree under `prefix` would
    /// reach into, if any (either one holds the other).
    pub fn overlapping(&self, prefix: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .find(|p| prefix.starts_with(p.as_str()) || p.starts_with(prefix))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_trees_meet_the_prefixes() {
        let r = KvReplication {
            source: "dc1".into(),
            prefixes: vec!["config/global/".into()],
            token: None,
            declared_in: "a.hcl".into(),
        };
        assert_eq!(r.covering("config/global/x"), Some("config/global/"));
        assert_eq!(r.covering("config/local/x"), None);
        assert_eq!(r.overlapping("config/"), Some("config/global/"));
        assert_eq!(r.overlapping("config/global/a/"), Some("config/global/"));
        assert_eq!(r.overlapping("other/"), None);
    }
}
