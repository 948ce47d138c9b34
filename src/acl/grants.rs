//! What a token's authorizer is compiled from, and the compiling: one
//! place for the server that decides a request, the client agent that
//! decides its own endpoints and `meridian acl explain`, so the three can
//! never disagree about what a token may do.

use super::{
    node_identity_policy, service_identity_policy, Authorizer, AuthorizerConfig, NamedRules,
    GLOBAL_MANAGEMENT_ID,
};
use crate::structs::acl::ResolvedAclToken;

/// A policy as compiled: its name, rules and the datacenters it is
/// limited to (empty: all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GrantedPolicy {
    pub id: String,
    pub name: String,
    pub rules: String,
    pub datacenters: Vec<String>,
}

/// Everything a token's authorizer is compiled from: its policies (its
/// own, then its roles'), and its and its roles' identities.
#[derive(Debug, Clone, Default)]
pub struct TokenGrants {
    pub accessor_id: String,
    pub policies: Vec<GrantedPolicy>,
    /// (service name, datacenters; empty = all)
    pub services: Vec<(String, Vec<String>)>,
    /// (node name, datacenter)
    pub nodes: Vec<(String, String)>,
}

impl From<&ResolvedAclToken> for TokenGrants {
    fn from(t: &ResolvedAclToken) -> TokenGrants {
        TokenGrants {
            accessor_id: t.token.accessor_id.clone(),
            policies: t
                .policies
                .iter()
                .map(|p| GrantedPolicy {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    rules: p.rules.clone(),
                    datacenters: p.datacenters.clone(),
                })
                .collect(),
            services: t
                .service_identities
                .iter()
                .map(|s| (s.service_name.clone(), s.datacenters.clone()))
                .collect(),
            nodes: t
                .node_identities
                .iter()
                .map(|n| (n.node_name.clone(), n.datacenter.clone()))
                .collect(),
        }
    }
}

impl TokenGrants {
    /// Whether the datacenter changes the answer.
    pub fn needs_datacenter(&self) -> bool {
        !self.nodes.is_empty()
            || self.policies.iter().any(|p| !p.datacenters.is_empty())
            || self.services.iter().any(|(_, dcs)| !dcs.is_empty())
    }

    /// The authorizer a server of `dc` compiles for this token, and a
    /// note for each policy left out because its rules do not parse.
    /// Rules are checked when written; one that no longer parses (an
    /// older binary's) grants nothing rather than failing every request
    /// of the token.
    pub fn compile(&self, dc: &str, config: AuthorizerConfig) -> (Authorizer, Vec<String>) {
        if self.policies.iter().any(|p| p.id == GLOBAL_MANAGEMENT_ID) {
            return (Authorizer::management(), Vec::new());
        }
        let mut rules = Vec::new();
        let mut skipped = Vec::new();
        for p in &self.policies {
            if !p.datacenters.is_empty() && !p.datacenters.iter().any(|d| d == dc) {
                continue;
            }
            match NamedRules::parse(p.name.clone(), &p.rules) {
                Ok(r) => rules.push(r),
                Err(e) => skipped.push(format!(
                    "policy {:?} left out: its rules do not parse: {e}",
                    p.name
                )),
            }
        }
        rules.extend(
            self.services
                .iter()
                .filter_map(|(s, dcs)| service_identity_policy(s, dcs, dc)),
        );
        rules.extend(
            self.nodes
                .iter()
                .filter_map(|(n, ndc)| node_identity_policy(n, ndc, dc)),
        );
        (Authorizer::compile(&rules, config), skipped)
    }
}
