//! Prepared queries as Consul shows them (`/v1/query`), their validation,
//! and the template rendering that turns a `name_prefix_match` template
//! into the query a name asks for (Consul's `agent/consul/prepared_query`
//! package). Pure: the state store and the HTTP layer share it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::catalog::CheckServiceNode;
use super::go_json::{nullable, parse_go_duration};

/// The only template type Consul knows.
pub const TEMPLATE_NAME_PREFIX_MATCH: &str = "name_prefix_match";

/// Consul's text for an unknown ID or name (DNS maps it to NXDOMAIN).
pub const QUERY_NOT_FOUND: &str = "Query not found";

/// A prepared query (Consul's `structs.PreparedQuery`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct PreparedQuery {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    /// A query bound to a session goes when the session does.
    #[serde(deserialize_with = "nullable")]
    pub session: String,
    /// The token the query runs with; empty: the caller's.
    #[serde(deserialize_with = "nullable")]
    pub token: String,
    #[serde(deserialize_with = "nullable")]
    pub template: QueryTemplate,
    #[serde(deserialize_with = "nullable")]
    pub service: ServiceQuery,
    #[serde(rename = "DNS", deserialize_with = "nullable")]
    pub dns: QueryDns,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryTemplate {
    #[serde(rename = "Type", deserialize_with = "nullable")]
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub regexp: String,
    pub remove_empty_tags: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceQuery {
    #[serde(deserialize_with = "nullable")]
    pub service: String,
    #[serde(deserialize_with = "nullable")]
    pub failover: QueryFailover,
    pub only_passing: bool,
    #[serde(rename = "IgnoreCheckIDs", deserialize_with = "nullable")]
    pub ignore_check_ids: Vec<String>,
    /// `_agent`, `_ip` or a node name: sorts the answer (see
    /// [`order_near`]).
    #[serde(deserialize_with = "nullable")]
    pub near: String,
    /// Tags every instance must have; `!tag` ones it must not.
    #[serde(deserialize_with = "nullable")]
    pub tags: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub node_meta: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub service_meta: BTreeMap<String, String>,
    pub connect: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryFailover {
    #[serde(rename = "NearestN")]
    pub nearest_n: i64,
    #[serde(deserialize_with = "nullable")]
    pub datacenters: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryDns {
    #[serde(rename = "TTL", deserialize_with = "nullable")]
    pub ttl: String,
}

impl PreparedQuery {
    pub fn is_template(&self) -> bool {
        !self.template.kind.is_empty()
    }

    /// The name ACL rules are matched against (Consul's `GetACLPrefix`):
    /// the name, for a template even the empty one; `None` for an unnamed
    /// query, which only management tokens may read.
    pub fn acl_prefix(&self) -> Option<&str> {
        (!self.name.is_empty() || self.is_template()).then_some(self.name.as_str())
    }

    /// Checks a definition as Consul's `parseQuery` does, before it goes
    /// through Raft. The texts are Consul's.
    pub fn validate(&self) -> Result<(), String> {
        if self.is_template() {
            Template::compile(self)?;
        }
        if self.service.service.is_empty() {
            return Err("Must provide a Service name to query".into());
        }
        if self.service.failover.nearest_n < 0 {
            return Err(format!(
                "Bad NearestN '{}', must be >= 0",
                self.service.failover.nearest_n
            ));
        }
        if !self.dns.ttl.is_empty() {
            dns_ttl(&self.dns.ttl)?;
        }
        Ok(())
    }

    /// The `DNS.TTL` in seconds, when set and valid.
    pub fn dns_ttl_secs(&self) -> Option<u32> {
        if self.dns.ttl.is_empty() {
            return None;
        }
        dns_ttl(&self.dns.ttl).ok().map(|d| d.as_secs() as u32)
    }
}

fn dns_ttl(ttl: &str) -> Result<std::time::Duration, String> {
    if ttl.trim_start().starts_with('-') {
        return Err(format!("DNS TTL '{ttl}', must be >=0"));
    }
    parse_go_duration(ttl).map_err(|e| format!("Bad DNS TTL '{ttl}': {e}"))
}

/// A compiled `name_prefix_match` template.
pub struct Template {
    regexp: Option<regex::Regex>,
    remove_empty_tags: bool,
}

/// One `${...}` of a template: what it is replaced with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Var {
    NameFull,
    NamePrefix,
    NameSuffix,
    Match(usize),
    AgentSegment,
}

/// A string of a template, cut into literal text and variables.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

fn parse_interpolation(s: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            out.push(Piece::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated interpolation in {s:?}"))?;
        let expr = after[..end].trim();
        let var = match expr {
            "name.full" => Var::NameFull,
            "name.prefix" => Var::NamePrefix,
            "name.suffix" => Var::NameSuffix,
            "agent.segment" => Var::AgentSegment,
            e => {
                let n = e
                    .strip_prefix("match(")
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| format!("unknown variable accessed: {e}"))?;
                Var::Match(
                    n.trim()
                        .parse()
                        .map_err(|_| format!("match() takes an index, not {n:?}"))?,
                )
            }
        };
        out.push(Piece::Var(var));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

/// What the variables of one rendering stand for.
struct Context<'a> {
    full: &'a str,
    prefix: &'a str,
    suffix: &'a str,
    matches: Vec<&'a str>,
    segment: &'a str,
}

fn render_str(s: &str, ctx: &Context) -> String {
    // Every template string was parsed when the query was created.
    let Ok(pieces) = parse_interpolation(s) else {
        return s.to_string();
    };
    pieces
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => t,
            Piece::Var(Var::NameFull) => ctx.full.to_string(),
            Piece::Var(Var::NamePrefix) => ctx.prefix.to_string(),
            Piece::Var(Var::NameSuffix) => ctx.suffix.to_string(),
            Piece::Var(Var::AgentSegment) => ctx.segment.to_string(),
            Piece::Var(Var::Match(n)) => ctx.matches.get(n).copied().unwrap_or("").to_string(),
        })
        .collect()
}

/// Every string of a query that a template renders (Consul walks the
/// whole definition; the template's own fields and the IDs stay).
fn rendered_strings(q: &mut PreparedQuery) -> Vec<&mut String> {
    let s = &mut q.service;
    let mut out: Vec<&mut String> = vec![&mut s.service, &mut s.near, &mut q.dns.ttl];
    out.extend(s.tags.iter_mut());
    out.extend(s.ignore_check_ids.iter_mut());
    out.extend(s.failover.datacenters.iter_mut());
    out.extend(s.node_meta.values_mut());
    out.extend(s.service_meta.values_mut());
    out
}

impl Template {
    /// Compiles `q`'s template: its type, regexp and every interpolation
    /// (Consul's texts).
    pub fn compile(q: &PreparedQuery) -> Result<Template, String> {
        if q.template.kind != TEMPLATE_NAME_PREFIX_MATCH {
            return Err(format!("Bad Template.Type '{}'", q.template.kind));
        }
        let regexp = if q.template.regexp.is_empty() {
            None
        } else {
            Some(regex::Regex::new(&q.template.regexp).map_err(|e| format!("Bad Regexp: {e}"))?)
        };
        let mut probe = q.clone();
        for s in rendered_strings(&mut probe) {
            parse_interpolation(s).map_err(|e| format!("Failed compiling template: {e}"))?;
        }
        Ok(Template {
            regexp,
            remove_empty_tags: q.template.remove_empty_tags,
        })
    }

    /// The query `name` asks of template `q` (whose name is a prefix of
    /// it), as `/explain` shows it.
    pub fn render(&self, q: &PreparedQuery, name: &str, segment: &str) -> PreparedQuery {
        let prefix = q.name.as_str();
        let suffix = name.get(prefix.len()..).unwrap_or("");
        let captures = self.regexp.as_ref().and_then(|r| r.captures(name));
        let matches: Vec<&str> = match &captures {
            Some(c) => c.iter().map(|m| m.map_or("", |m| m.as_str())).collect(),
            None => Vec::new(),
        };
        let ctx = Context {
            full: name,
            prefix,
            suffix,
            matches,
            segment,
        };
        let mut out = q.clone();
        for s in rendered_strings(&mut out) {
            *s = render_str(s, &ctx);
        }
        if self.remove_empty_tags {
            out.service.tags.retain(|t| !t.is_empty());
        }
        out
    }
}

/// Whether an instance passes the query's tag filter: every plain tag is
/// among its tags, no `!tag` is (case-insensitive, as Consul's).
pub fn tags_pass(have: &[String], want: &[String]) -> bool {
    want.iter().all(|w| match w.strip_prefix('!') {
        Some(not) => !have.iter().any(|h| h.eq_ignore_ascii_case(not)),
        None => have.iter().any(|h| h.eq_ignore_ascii_case(w)),
    })
}

/// The datacenters failover tries, in order: the `nearest_n` nearest
/// other datacenters, then the listed ones not tried yet and known. The
/// one place that decides the order: `by_distance` is nearest first
/// (today the WAN pool's measured RTTs; network coordinates can replace
/// what the caller passes without touching this).
pub fn failover_order(failover: &QueryFailover, by_distance: &[String], own: &str) -> Vec<String> {
    let others: Vec<&String> = by_distance
        .iter()
        .filter(|d| !d.eq_ignore_ascii_case(own))
        .collect();
    let mut out: Vec<String> = others
        .iter()
        .take(failover.nearest_n.max(0) as usize)
        .map(|d| d.to_string())
        .collect();
    for dc in &failover.datacenters {
        // Consul skips datacenters it does not know rather than fail the
        // whole query on a typo.
        let known = by_distance.iter().any(|d| d.eq_ignore_ascii_case(dc));
        if known && !out.iter().any(|d| d.eq_ignore_ascii_case(dc)) {
            out.push(dc.clone());
        }
    }
    out
}

/// Puts the node `near` names first. Without network coordinates nothing
/// more can be said about the rest, which keep their (shuffled) order.
pub fn order_near(nodes: &mut [CheckServiceNode], near: &str) {
    if near.is_empty() {
        return;
    }
    nodes.sort_by_key(|n| n.node.node != near);
}

/// What an execution asks beyond the query's own definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ExecuteOptions {
    /// `?limit=`: at most this many nodes (0: all).
    pub limit: usize,
    /// `?near=`, else the query's `Service.Near`: `_agent` means
    /// `agent_node`, `_ip` the node at `source_ip`.
    pub near: String,
    /// The node of the agent the request came in by.
    pub agent_node: String,
    /// The caller's address (`_ip`).
    pub source_ip: String,
    /// `?connect`: mesh-capable endpoints only.
    pub connect: bool,
    /// `${agent.segment}`.
    pub segment: String,
}

/// An execution's answer (Consul's `PreparedQueryExecuteResponse`), and
/// the rendered query it ran, which the server that runs the failover
/// needs (never shown: it carries the query's token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ExecuteResult {
    pub query: PreparedQuery,
    pub nodes: Vec<CheckServiceNode>,
    pub datacenter: String,
    pub failovers: u32,
}

/// The JSON body of `/execute`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecuteResponse<'a> {
    pub service: &'a str,
    pub nodes: &'a [CheckServiceNode],
    #[serde(rename = "DNS")]
    pub dns: &'a QueryDns,
    pub datacenter: &'a str,
    pub failovers: u32,
}

impl ExecuteResult {
    pub fn response(&self) -> ExecuteResponse<'_> {
        ExecuteResponse {
            service: &self.query.service.service,
            nodes: &self.nodes,
            dns: &self.query.dns,
            datacenter: &self.datacenter,
            failovers: self.failovers,
        }
    }
}

/// Consul's JSON decoder matches field names without regard to case
/// (py-consul sends `{"service": {"service": ...}, "dns": {"ttl": ...}}`);
/// this puts a body's keys in the case the types above expect. Keys of
/// `NodeMeta`/`ServiceMeta` are the user's and stay as they are.
pub fn canonical_keys(v: &mut serde_json::Value) {
    const TOP: &[&str] = &[
        "ID", "Name", "Session", "Token", "Template", "Service", "DNS",
    ];
    const TEMPLATE: &[&str] = &["Type", "Regexp", "RemoveEmptyTags"];
    const SERVICE: &[&str] = &[
        "Service",
        "Failover",
        "OnlyPassing",
        "IgnoreCheckIDs",
        "Near",
        "Tags",
        "NodeMeta",
        "ServiceMeta",
        "Connect",
    ];
    const FAILOVER: &[&str] = &["NearestN", "Datacenters"];
    const DNS: &[&str] = &["TTL"];
    fn fix(v: &mut serde_json::Value, names: &[&str]) {
        let Some(obj) = v.as_object_mut() else {
            return;
        };
        let keys: Vec<String> = obj.keys().cloned().collect();
        for k in keys {
            // Consul's decoder also takes snake_case (`only_passing`).
            let folded = k.replace('_', "");
            if let Some(canon) = names.iter().find(|n| n.eq_ignore_ascii_case(&folded)) {
                if *canon != k {
                    if let Some(val) = obj.remove(&k) {
                        obj.insert(canon.to_string(), val);
                    }
                }
            }
        }
    }
    fix(v, TOP);
    if let Some(t) = v.get_mut("Template") {
        fix(t, TEMPLATE);
    }
    if let Some(d) = v.get_mut("DNS") {
        fix(d, DNS);
    }
    if let Some(s) = v.get_mut("Service") {
        fix(s, SERVICE);
        if let Some(f) = s.get_mut("Failover") {
            fix(f, FAILOVER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(name: &str, regexp: &str, service: &str) -> PreparedQuery {
        PreparedQuery {
            name: name.into(),
            template: QueryTemplate {
                kind: TEMPLATE_NAME_PREFIX_MATCH.into(),
                regexp: regexp.into(),
                remove_empty_tags: false,
            },
            service: ServiceQuery {
                service: service.into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn renders_name_parts_and_matches() {
        let mut q = template("geo-db-", "^geo-db-(.*?)-([^\\-]+?)$", "mysql-${match(1)}");
        q.service.tags = vec!["${match(2)}".into(), "${name.suffix}".into()];
        q.service.near = "${name.full}".into();
        q.service.failover.datacenters = vec!["${name.prefix}x".into()];
        let t = Template::compile(&q).expect("compiles");
        let r = t.render(&q, "geo-db-customer-primary", "seg");
        assert_eq!(r.service.service, "mysql-customer");
        assert_eq!(r.service.tags, vec!["primary", "customer-primary"]);
        assert_eq!(r.service.near, "geo-db-customer-primary");
        assert_eq!(r.service.failover.datacenters, vec!["geo-db-x"]);
        assert_eq!(r.name, "geo-db-", "the name stays the template's");
    }

    #[test]
    fn missing_match_is_empty_and_empty_tags_can_go() {
        let mut q = template("", "^(x)?web(-v[0-9]+)?$", "${name.full}");
        q.service.tags = vec!["${match(2)}".into(), "${agent.segment}".into(), "a".into()];
        let r = Template::compile(&q)
            .expect("compiles")
            .render(&q, "web", "");
        assert_eq!(r.service.service, "web");
        assert_eq!(r.service.tags, vec!["", "", "a"]);
        q.template.remove_empty_tags = true;
        let r = Template::compile(&q)
            .expect("compiles")
            .render(&q, "web", "");
        assert_eq!(r.service.tags, vec!["a"]);
        let r = Template::compile(&q)
            .expect("compiles")
            .render(&q, "web-v2", "alpha");
        assert_eq!(r.service.tags, vec!["-v2", "alpha", "a"]);
    }

    #[test]
    fn bad_templates_are_refused_with_consuls_texts() {
        let mut q = template("a", "", "x");
        q.template.kind = "other".into();
        assert_eq!(q.validate().unwrap_err(), "Bad Template.Type 'other'");
        let q = template("a", "([", "x");
        assert!(q.validate().unwrap_err().starts_with("Bad Regexp: "));
        let q = template("a", "", "${nope}");
        assert!(q
            .validate()
            .unwrap_err()
            .starts_with("Failed compiling template: "));
        let q = template("a", "", "${match(1)");
        assert!(q.validate().is_err());
    }

    #[test]
    fn validation_texts() {
        let mut q = PreparedQuery::default();
        assert_eq!(
            q.validate().unwrap_err(),
            "Must provide a Service name to query"
        );
        q.service.service = "web".into();
        q.service.failover.nearest_n = -1;
        assert_eq!(q.validate().unwrap_err(), "Bad NearestN '-1', must be >= 0");
        q.service.failover.nearest_n = 0;
        q.dns.ttl = "x".into();
        assert!(q.validate().unwrap_err().starts_with("Bad DNS TTL 'x'"));
        q.dns.ttl = "-5s".into();
        assert_eq!(q.validate().unwrap_err(), "DNS TTL '-5s', must be >=0");
        q.dns.ttl = "10s".into();
        assert_eq!(q.validate(), Ok(()));
        assert_eq!(q.dns_ttl_secs(), Some(10));
    }

    #[test]
    fn tag_filter_negates_with_bang() {
        let have = vec!["Primary".to_string(), "v1".to_string()];
        assert!(tags_pass(&have, &["primary".into()]));
        assert!(!tags_pass(&have, &["!primary".into()]));
        assert!(tags_pass(&have, &["!v2".into(), "v1".into()]));
        assert!(!tags_pass(&have, &["v2".into()]));
    }

    #[test]
    fn failover_takes_nearest_then_the_list() {
        let by = ["dc1", "dc3", "dc2", "dc4"].map(String::from).to_vec();
        let f = QueryFailover {
            nearest_n: 1,
            datacenters: vec!["dc4".into(), "dc3".into(), "nowhere".into()],
        };
        assert_eq!(failover_order(&f, &by, "dc1"), vec!["dc3", "dc4"]);
        let f = QueryFailover {
            nearest_n: 0,
            datacenters: vec!["dc2".into()],
        };
        assert_eq!(failover_order(&f, &by, "dc1"), vec!["dc2"]);
        let f = QueryFailover {
            nearest_n: 9,
            datacenters: vec![],
        };
        assert_eq!(failover_order(&f, &by, "dc1"), vec!["dc3", "dc2", "dc4"]);
    }

    #[test]
    fn keys_in_any_case_decode() {
        let mut v = serde_json::json!({
            "name": "q", "service": {"service": "web", "onlypassing": true,
            "failover": {"nearest_n": 2}, "nodemeta": {"rack": "a"}},
            "dns": {"ttl": "5s"}, "template": {"type": "name_prefix_match"}
        });
        canonical_keys(&mut v);
        let q: PreparedQuery = serde_json::from_value(v).expect("decodes");
        assert_eq!(q.name, "q");
        assert_eq!(q.service.service, "web");
        assert!(q.service.only_passing);
        assert_eq!(q.service.failover.nearest_n, 2);
        assert_eq!(
            q.service.node_meta.get("rack").map(String::as_str),
            Some("a")
        );
        assert_eq!(q.dns.ttl, "5s");
        assert!(q.is_template());
    }

    #[test]
    fn nulls_decode_as_absent() {
        let q: PreparedQuery = serde_json::from_str(
            r#"{"Name":"q","Session":null,"Service":{"Service":"web","Tags":null,
                "Failover":{"NearestN":1,"Datacenters":null}},"DNS":null}"#,
        )
        .expect("decodes");
        assert!(q.service.tags.is_empty());
        assert_eq!(q.dns, QueryDns::default());
    }
}
