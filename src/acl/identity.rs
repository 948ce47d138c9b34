//! The policies Consul synthesizes for service and node identities
//! (`ServiceIdentities` / `NodeIdentities` on tokens and roles), as rules
//! ready to compile, as Consul's rules text (for display), and with
//! Consul's datacenter scoping: a service identity applies in its
//! `Datacenters` (all of them when empty), a node identity only in its one
//! `Datacenter`.
//!
//! Synthesized policies are named `service-identity/<name>` and
//! `node-identity/<name>` so a refusal can say which identity's rule
//! decided. (Consul names them `synthetic-policy-<hash>`, which tells a
//! reader nothing; the name is not stored anywhere.)

use super::access::{AccessLevel, Resource};
use super::rules::{NamedRules, Rule, Rules};

/// The rules of a service identity: write on the service and its sidecar
/// proxy, read on every service and node (for discovery and the proxy's
/// upstreams). Consul's `aclPolicyTemplateServiceIdentity`.
pub fn service_identity_rules(service_name: &str) -> Rules {
    Rules::default()
        .with(Rule::new(
            Resource::Service,
            false,
            service_name,
            AccessLevel::Write,
        ))
        .with(Rule::new(
            Resource::Service,
            false,
            format!("{service_name}-sidecar-proxy"),
            AccessLevel::Write,
        ))
        .with(Rule::new(Resource::Service, true, "", AccessLevel::Read))
        .with(Rule::new(Resource::Node, true, "", AccessLevel::Read))
}

/// The rules of a node identity: write on the node (to register itself
/// and its coordinates), read on every service (anti-entropy compares the
/// node's services with the catalog). Consul's
/// `aclPolicyTemplateNodeIdentity`.
pub fn node_identity_rules(node_name: &str) -> Rules {
    Rules::default()
        .with(Rule::new(
            Resource::Node,
            false,
            node_name,
            AccessLevel::Write,
        ))
        .with(Rule::new(Resource::Service, true, "", AccessLevel::Read))
}

/// Consul's rules text for a service identity, as `acl token read` shows
/// it. Names are valid identity names (lowercase, digits, `-`, `_`), so
/// they need no escaping; [`service_identity_rules`] is the value to use.
pub fn service_identity_rules_text(service_name: &str) -> String {
    format!(
        "\nservice \"{service_name}\" {{\n\tpolicy = \"write\"\n}}\n\
         service \"{service_name}-sidecar-proxy\" {{\n\tpolicy = \"write\"\n}}\n\
         service_prefix \"\" {{\n\tpolicy = \"read\"\n}}\n\
         node_prefix \"\" {{\n\tpolicy = \"read\"\n}}"
    )
}

/// Consul's rules text for a node identity.
pub fn node_identity_rules_text(node_name: &str) -> String {
    format!(
        "\nnode \"{node_name}\" {{\n\tpolicy = \"write\"\n}}\n\
         service_prefix \"\" {{\n\tpolicy = \"read\"\n}}"
    )
}

/// The synthesized policy of a service identity if it applies in
/// `datacenter`: its `datacenters` list names it, or is empty (every
/// datacenter).
pub fn service_identity_policy(
    service_name: &str,
    datacenters: &[String],
    datacenter: &str,
) -> Option<NamedRules> {
    if !datacenters.is_empty() && !datacenters.iter().any(|dc| dc == datacenter) {
        return None;
    }
    Some(NamedRules::new(
        format!("service-identity/{service_name}"),
        service_identity_rules(service_name),
    ))
}

/// The synthesized policy of a node identity if it applies in
/// `datacenter`: a node identity is bound to exactly one datacenter.
pub fn node_identity_policy(
    node_name: &str,
    identity_datacenter: &str,
    datacenter: &str,
) -> Option<NamedRules> {
    if identity_datacenter != datacenter {
        return None;
    }
    Some(NamedRules::new(
        format!("node-identity/{node_name}"),
        node_identity_rules(node_name),
    ))
}
