//! Consul's pretty layouts of tokens, policies and roles
//! (`command/acl/*/formatter.go`): labels padded to one column, links as
//! `   <id> - <name>`. They read the API's JSON as it comes, so a field
//! the server adds later never breaks a listing.

use std::fmt::Write;

use serde_json::Value;

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    list(v, key)
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// Go's `time.Time` as `%v` prints it: `2026-12-02 07:41:19.123456 +0000 UTC`.
fn go_time(text: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S%.f +0000 UTC")
            .to_string(),
        Err(_) => text.to_string(),
    }
}

fn hash(v: &Value) -> String {
    use base64::Engine;
    let raw = s(v, "Hash");
    match base64::engine::general_purpose::STANDARD.decode(raw) {
        Ok(bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Err(_) => raw.to_string(),
    }
}

fn meta_lines(out: &mut String, v: &Value, indent: &str, width: usize) {
    let idx = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let _ = writeln!(out, "{indent}{:<width$}{}", "Hash:", hash(v));
    let _ = writeln!(
        out,
        "{indent}{:<width$}{}",
        "Create Index:",
        idx("CreateIndex")
    );
    let _ = writeln!(
        out,
        "{indent}{:<width$}{}",
        "Modify Index:",
        idx("ModifyIndex")
    );
}

fn links(out: &mut String, v: &Value, key: &str, title: &str, indent: &str) {
    let items = list(v, key);
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}{title}:");
    for l in items {
        let _ = writeln!(out, "{indent}   {} - {}", s(l, "ID"), s(l, "Name"));
    }
}

fn identities(out: &mut String, v: &Value, indent: &str) {
    let services = list(v, "ServiceIdentities");
    if !services.is_empty() {
        let _ = writeln!(out, "{indent}Service Identities:");
        for si in services {
            let dcs = strings(si, "Datacenters");
            let dcs = if dcs.is_empty() {
                "all".to_string()
            } else {
                dcs.join(", ")
            };
            let _ = writeln!(
                out,
                "{indent}   {} (Datacenters: {dcs})",
                s(si, "ServiceName")
            );
        }
    }
    let nodes = list(v, "NodeIdentities");
    if !nodes.is_empty() {
        let _ = writeln!(out, "{indent}Node Identities:");
        for ni in nodes {
            let _ = writeln!(
                out,
                "{indent}   {} (Datacenter: {})",
                s(ni, "NodeName"),
                s(ni, "Datacenter")
            );
        }
    }
}

/// `acl token read` and the other commands that print one token.
pub fn token(t: &Value, meta: bool) -> String {
    let mut out = String::new();
    let w = 18;
    let mut field = |label: &str, value: &str| {
        let _ = writeln!(out, "{:<w$}{value}", format!("{label}:"));
    };
    field("AccessorID", s(t, "AccessorID"));
    field("SecretID", s(t, "SecretID"));
    field("Description", s(t, "Description"));
    let local = t.get("Local").and_then(Value::as_bool).unwrap_or(false);
    field("Local", &local.to_string());
    field("Create Time", &go_time(s(t, "CreateTime")));
    if let Some(exp) = t.get("ExpirationTime").and_then(Value::as_str) {
        field("Expiration Time", &go_time(exp));
    }
    if meta {
        meta_lines(&mut out, t, "", w);
    }
    links(&mut out, t, "Policies", "Policies", "");
    links(&mut out, t, "Roles", "Roles", "");
    identities(&mut out, t, "");
    out
}

/// `acl token list`: each token as `acl token read` shows it, a blank
/// line between them.
pub fn token_list(tokens: &[Value], meta: bool) -> String {
    tokens
        .iter()
        .map(|t| token(t, meta))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `acl policy read`: the policy with its rules.
pub fn policy(p: &Value, meta: bool) -> String {
    let mut out = String::new();
    let w = 14;
    let _ = writeln!(out, "{:<w$}{}", "ID:", s(p, "ID"));
    let _ = writeln!(out, "{:<w$}{}", "Name:", s(p, "Name"));
    let _ = writeln!(out, "{:<w$}{}", "Description:", s(p, "Description"));
    let _ = writeln!(
        out,
        "{:<w$}{}",
        "Datacenters:",
        strings(p, "Datacenters").join(", ")
    );
    if meta {
        meta_lines(&mut out, p, "", w);
    }
    let _ = writeln!(out, "Rules:\n{}", s(p, "Rules"));
    out
}

/// `acl policy list`: each policy under its name, without rules.
pub fn policy_list(policies: &[Value], meta: bool) -> String {
    let mut out = String::new();
    let w = 14;
    for p in policies {
        let _ = writeln!(out, "{}:", s(p, "Name"));
        let _ = writeln!(out, "   {:<w$}{}", "ID:", s(p, "ID"));
        let _ = writeln!(out, "   {:<w$}{}", "Description:", s(p, "Description"));
        let _ = writeln!(
            out,
            "   {:<w$}{}",
            "Datacenters:",
            strings(p, "Datacenters").join(", ")
        );
        if meta {
            meta_lines(&mut out, p, "   ", w);
        }
    }
    out
}

/// `acl role read`.
pub fn role(r: &Value, meta: bool) -> String {
    let mut out = String::new();
    let w = 14;
    let _ = writeln!(out, "{:<w$}{}", "ID:", s(r, "ID"));
    let _ = writeln!(out, "{:<w$}{}", "Name:", s(r, "Name"));
    let _ = writeln!(out, "{:<w$}{}", "Description:", s(r, "Description"));
    if meta {
        meta_lines(&mut out, r, "", w);
    }
    links(&mut out, r, "Policies", "Policies", "");
    identities(&mut out, r, "");
    out
}

/// `acl role list`: each role under its name.
pub fn role_list(roles: &[Value], meta: bool) -> String {
    let mut out = String::new();
    let w = 14;
    for r in roles {
        let _ = writeln!(out, "{}:", s(r, "Name"));
        let _ = writeln!(out, "   {:<w$}{}", "ID:", s(r, "ID"));
        let _ = writeln!(out, "   {:<w$}{}", "Description:", s(r, "Description"));
        if meta {
            meta_lines(&mut out, r, "   ", w);
        }
        links(&mut out, r, "Policies", "Policies", "   ");
        identities(&mut out, r, "   ");
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn token_layout_is_consuls() {
        let t = json!({
            "AccessorID": "a1", "SecretID": "s1", "Description": "web",
            "Local": false, "CreateTime": "2026-12-02T07:41:19.5Z",
            "Policies": [{"ID": "p1", "Name": "ops"}],
            "ServiceIdentities": [{"ServiceName": "web"}, {"ServiceName": "db", "Datacenters": ["dc1", "dc2"]}],
            "NodeIdentities": [{"NodeName": "n1", "Datacenter": "dc1"}],
        });
        assert_eq!(
            token(&t, false),
            "AccessorID:       a1\n\
             SecretID:         s1\n\
             Description:      web\n\
             Local:            false\n\
             Create Time:      2026-12-02 07:41:19.500 +0000 UTC\n\
             Policies:\n   p1 - ops\n\
             Service Identities:\n   web (Datacenters: all)\n   db (Datacenters: dc1, dc2)\n\
             Node Identities:\n   n1 (Datacenter: dc1)\n"
        );
    }

    #[test]
    fn policy_layouts_are_consuls() {
        let p = json!({"ID": "p1", "Name": "ops", "Description": "d", "Rules": "key_prefix \"\" { policy = \"read\" }", "Datacenters": ["dc1"]});
        assert_eq!(
            policy(&p, false),
            "ID:           p1\nName:         ops\nDescription:  d\nDatacenters:  dc1\nRules:\nkey_prefix \"\" { policy = \"read\" }\n"
        );
        assert_eq!(
            policy_list(&[p], false),
            "ops:\n   ID:           p1\n   Description:  d\n   Datacenters:  dc1\n"
        );
    }

    #[test]
    fn role_layout_lists_policies_under_the_role() {
        let r = json!({"ID": "r1", "Name": "web", "Description": "", "Policies": [{"ID": "p1", "Name": "ops"}]});
        assert_eq!(
            role_list(&[r], false),
            "web:\n   ID:           r1\n   Description:  \n   Policies:\n      p1 - ops\n"
        );
    }
}
