//! `meridian acl explain`: whether a token may do something, and the rule
//! or default that decides it, in the words of the 403 the request would
//! get, without making the request.
//!
//! It fetches what the server would compile (the token through
//! `/v1/acl/token/self` with that token, its policies and its roles'
//! policies by ID, its identities), compiles them here with the crate's
//! [`Authorizer`] as a server of the datacenter would (policies outside
//! the datacenter left out, identities synthesized), and decides with the
//! agent's `default_policy`, which it reads from the
//! `X-Consul-Default-ACL-Policy` header of the agent's answer (Consul puts
//! it on every response) unless `-default-policy` says otherwise.

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

use super::super::{Client, HttpArgs};
use crate::acl::{
    permission_denied_message, Access, Authorizer, AuthorizerConfig, Decision, DefaultPolicy,
    GrantedPolicy as Policy, Resource, TokenGrants, GLOBAL_MANAGEMENT_ID,
};
use crate::api::{enc, TokenArgs};

/// The response header that carries the agent's `acl.default_policy`.
pub const DEFAULT_POLICY_HEADER: &str = "X-Consul-Default-ACL-Policy";

/// Exit code of a refused permission (1 stays "the command failed").
const DENIED: i32 = 2;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `-token` (or `-token-file`, or the environment) is the token explained.
    #[command(flatten)]
    http: HttpArgs,
    /// The resource: key, service, node, agent, session, event, query,
    /// intention, acl, operator, keyring, mesh or peering.
    #[arg(long)]
    resource: String,
    /// The resource's name (none for acl, operator, keyring, mesh, peering).
    #[arg(long, default_value = "")]
    name: String,
    /// read, list or write.
    #[arg(long)]
    access: String,
    /// The default policy to decide with (default: the agent's, from its
    /// X-Consul-Default-ACL-Policy header).
    #[arg(long = "default-policy")]
    default_policy: Option<String>,
    /// A token with acl:read to read the policies and roles with (default:
    /// when -token or -token-file names the explained token, the token of
    /// the environment, else the explained token itself).
    #[arg(long = "reader-token")]
    reader_token: Option<String>,
}

/// A permission to explain, parsed from the flags.
#[derive(Debug, Clone)]
pub struct Permission {
    pub resource: Resource,
    pub access: Access,
    pub name: String,
}

impl Permission {
    pub fn parse(resource: &str, access: &str, name: &str) -> Result<Permission> {
        let resource = Resource::ALL
            .into_iter()
            .find(|r| r.as_str() == resource)
            .ok_or_else(|| {
                let all: Vec<&str> = Resource::ALL.iter().map(|r| r.as_str()).collect();
                anyhow!("Invalid -resource {resource:?}: one of {}", all.join(", "))
            })?;
        let access = match access {
            "read" => Access::Read,
            "list" => Access::List,
            "write" => Access::Write,
            other => bail!("Invalid -access {other:?}: one of read, list, write"),
        };
        if !resource.is_named() && !name.is_empty() {
            bail!("-name is not taken by resource {resource}: it has one value per policy");
        }
        Ok(Permission {
            resource,
            access,
            name: name.to_string(),
        })
    }

    pub fn decide(&self, authz: &Authorizer) -> Decision {
        authz.check(self.resource, self.access, &self.name)
    }

    /// The 403's text when refused; the same sentence turned around when
    /// allowed.
    pub fn explain(&self, accessor_id: &str, decision: &Decision) -> String {
        if !decision.allowed {
            return permission_denied_message(
                accessor_id,
                self.resource,
                self.access,
                &self.name,
                decision,
            );
        }
        let on = if self.name.is_empty() {
            String::new()
        } else {
            format!(" on \"{}\"", self.name)
        };
        format!(
            "token with AccessorID '{accessor_id}' has permission '{}:{}'{on}, {decision}",
            self.resource, self.access
        )
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn link_ids(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|l| str_of(l, "ID")).collect())
        .unwrap_or_default()
}

/// Adds a token's or role's identities to `g`.
fn add_identities(g: &mut TokenGrants, v: &Value) {
    for si in v
        .get("ServiceIdentities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        g.services
            .push((str_of(si, "ServiceName"), strings(si, "Datacenters")));
    }
    for ni in v
        .get("NodeIdentities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        g.nodes
            .push((str_of(ni, "NodeName"), str_of(ni, "Datacenter")));
    }
}

/// Reads a policy by ID; the builtin management policy needs no rules.
fn fetch_policy(reader: &Client, id: &str) -> Result<Policy> {
    if id == GLOBAL_MANAGEMENT_ID {
        return Ok(Policy {
            id: id.to_string(),
            ..Default::default()
        });
    }
    let p = reader
        .get(&format!("/v1/acl/policy/{}", enc(id)), &[])
        .map_err(|e| anyhow!("Error reading policy {id:?} (reading policies needs acl:read; see -reader-token): {e}"))?;
    Ok(Policy {
        id: id.to_string(),
        name: str_of(&p, "Name"),
        rules: str_of(&p, "Rules"),
        datacenters: strings(&p, "Datacenters"),
    })
}

/// The token behind the client's token, with its policies, its roles'
/// policies and every identity; and the agent's default policy header.
fn fetch_grants(c: &Client, reader: &Client) -> Result<(TokenGrants, Option<String>)> {
    let reply = c
        .call_ok(reqwest::Method::GET, "/v1/acl/token/self", &[], None, &[])
        .map_err(|e| anyhow!("Error reading the token: {e}"))?;
    let header = reply
        .headers
        .get(DEFAULT_POLICY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let token = reply.json()?;
    let mut g = TokenGrants {
        accessor_id: str_of(&token, "AccessorID"),
        ..Default::default()
    };
    let mut policy_ids = link_ids(&token, "Policies");
    add_identities(&mut g, &token);
    for role_id in link_ids(&token, "Roles") {
        let role = reader
            .get(&format!("/v1/acl/role/{}", enc(&role_id)), &[])
            .map_err(|e| anyhow!("Error reading role {role_id:?} (reading roles needs acl:read; see -reader-token): {e}"))?;
        policy_ids.extend(link_ids(&role, "Policies"));
        add_identities(&mut g, &role);
    }
    // A policy linked both directly and through a role compiles once.
    let mut seen = std::collections::HashSet::new();
    policy_ids.retain(|id| seen.insert(id.clone()));
    for id in policy_ids {
        g.policies.push(fetch_policy(reader, &id)?);
    }
    Ok((g, header))
}

/// The token to read policies and roles with. An operator typically has a
/// token of their own in CONSUL_HTTP_TOKEN and explains another with
/// -token; the explained token can rarely read ACLs itself.
fn reader_token(a: &Args) -> Result<Option<String>> {
    if let Some(t) = &a.reader_token {
        return Ok(Some(t.clone()));
    }
    let explained_by_flag = a.http.auth.token.is_some() || a.http.auth.token_file.is_some();
    if explained_by_flag {
        return Ok(TokenArgs::default().resolve()?);
    }
    Ok(None)
}

pub fn run(a: Args) -> Result<i32> {
    let permission = Permission::parse(&a.resource, &a.access, &a.name)?;
    let c = Client::new(&a.http)?;
    if c.token().is_none() {
        bail!("acl explain needs the token to explain: -token, -token-file, CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE");
    }
    let reader = match reader_token(&a)? {
        Some(t) => c.with_token(Some(t)),
        None => c.clone(),
    };
    let (grants, header) = fetch_grants(&c, &reader)?;
    let default_policy = match a.default_policy.as_deref().or(header.as_deref()) {
        Some(p) => DefaultPolicy::parse(p)
            .ok_or_else(|| anyhow!("Invalid default policy {p:?}: allow or deny"))?,
        None => bail!(
            "The agent did not say its default policy (no {DEFAULT_POLICY_HEADER} header): give -default-policy allow or deny"
        ),
    };
    let dc = if grants.needs_datacenter() {
        match &a.http.datacenter {
            Some(dc) => dc.clone(),
            None => {
                let me = reader.get("/v1/agent/self", &[]).map_err(|e| {
                    anyhow!("Error reading the agent's datacenter (or give -datacenter): {e}")
                })?;
                me.pointer("/Config/Datacenter")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            }
        }
    } else {
        String::new()
    };
    let config = AuthorizerConfig {
        default_policy,
        enable_key_list_policy: false,
    };
    let (authz, skipped) = grants.compile(&dc, config);
    for note in skipped {
        eprintln!("Warning: {note}");
    }
    let decision = permission.decide(&authz);
    println!("{}", permission.explain(&grants.accessor_id, &decision));
    Ok(if decision.allowed { 0 } else { DENIED })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(rules: &str, datacenters: &[&str]) -> TokenGrants {
        TokenGrants {
            accessor_id: "6a1253d2-1785-24fd-91c2-f8e78c745511".into(),
            policies: vec![Policy {
                id: "p1".into(),
                name: "ops".into(),
                rules: rules.into(),
                datacenters: datacenters.iter().map(|s| s.to_string()).collect(),
            }],
            ..Default::default()
        }
    }

    fn config(default_policy: DefaultPolicy) -> AuthorizerConfig {
        AuthorizerConfig {
            default_policy,
            enable_key_list_policy: false,
        }
    }

    #[test]
    fn a_denial_reads_as_the_403_body() {
        let g = grants(
            "key_prefix \"\" { policy = \"write\" }\nkey_prefix \"db/\" { policy = \"deny\" }",
            &[],
        );
        let authz = g.compile("dc1", config(DefaultPolicy::Deny)).0;
        let p = Permission::parse("key", "write", "db/x").unwrap();
        let d = p.decide(&authz);
        assert!(!d.allowed);
        assert_eq!(
            p.explain(&g.accessor_id, &d),
            "Permission denied: token with AccessorID '6a1253d2-1785-24fd-91c2-f8e78c745511' \
             lacks permission 'key:write' on \"db/x\", denied by rule key_prefix \"db/\" \
             policy \"deny\" in policy \"ops\""
        );
        let p = Permission::parse("key", "write", "app/x").unwrap();
        let d = p.decide(&authz);
        assert_eq!(
            p.explain(&g.accessor_id, &d),
            "token with AccessorID '6a1253d2-1785-24fd-91c2-f8e78c745511' has permission \
             'key:write' on \"app/x\", allowed by rule key_prefix \"\" policy \"write\" in policy \"ops\""
        );
    }

    #[test]
    fn the_default_policy_decides_what_no_rule_matches() {
        let g = grants("key_prefix \"app/\" { policy = \"read\" }", &[]);
        let p = Permission::parse("service", "read", "web").unwrap();
        let deny = p.decide(&g.compile("dc1", config(DefaultPolicy::Deny)).0);
        assert!(!deny.allowed);
        assert!(p
            .explain(&g.accessor_id, &deny)
            .ends_with("denied by default_policy \"deny\""));
        let allow = p.decide(&g.compile("dc1", config(DefaultPolicy::Allow)).0);
        assert!(allow.allowed);
        assert!(p
            .explain(&g.accessor_id, &allow)
            .ends_with("allowed by default_policy \"allow\""));
    }

    #[test]
    fn policies_of_other_datacenters_and_identities_compile_as_on_a_server() {
        let mut g = grants("key_prefix \"\" { policy = \"write\" }", &["dc2"]);
        g.nodes.push(("n1".into(), "dc1".into()));
        assert!(g.needs_datacenter());
        let authz = g.compile("dc1", config(DefaultPolicy::Deny)).0;
        assert!(!authz.allowed(Resource::Key, Access::Write, "a"));
        let d = Permission::parse("node", "write", "n1")
            .unwrap()
            .decide(&authz);
        assert!(d.allowed, "{d}");
        assert!(
            d.to_string().contains("in policy \"node-identity/n1\""),
            "{d}"
        );
        let authz = g.compile("dc2", config(DefaultPolicy::Deny)).0;
        assert!(authz.allowed(Resource::Key, Access::Write, "a"));
        assert!(!authz.allowed(Resource::Node, Access::Write, "n1"));
    }

    #[test]
    fn a_policy_that_does_not_parse_grants_nothing_and_is_named() {
        let mut g = grants("key_prefix \"\" { policy = \"write\" }", &[]);
        g.policies.push(Policy {
            id: "p2".into(),
            name: "broken".into(),
            rules: "key_prefix {".into(),
            datacenters: vec![],
        });
        let (authz, skipped) = g.compile("dc1", config(DefaultPolicy::Deny));
        assert!(authz.allowed(Resource::Key, Access::Write, "a"));
        assert_eq!(skipped.len(), 1);
        assert!(
            skipped[0].starts_with("policy \"broken\" left out"),
            "{skipped:?}"
        );
    }

    #[test]
    fn flags_are_checked_with_their_names() {
        let e = Permission::parse("kv", "read", "a")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("Invalid -resource \"kv\""), "{e}");
        let e = Permission::parse("key", "rw", "a").unwrap_err().to_string();
        assert!(e.starts_with("Invalid -access \"rw\""), "{e}");
        let e = Permission::parse("operator", "read", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("-name"), "{e}");
        let mut g = grants("", &[]);
        g.policies[0].id = GLOBAL_MANAGEMENT_ID.into();
        let authz = g.compile("dc1", config(DefaultPolicy::Deny)).0;
        assert!(authz.allowed(Resource::Acl, Access::Write, ""));
    }
}
