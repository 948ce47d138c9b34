//! The ACL tables (Consul's `state/acl.go`): tokens by AccessorID (and
//! SecretID), policies and roles by ID (and unique name), and the index
//! ACLs were bootstrapped at; the reads over them, including the
//! resolution of a secret into everything an authorizer needs. The writes
//! and their validation are in [`write`]; what arrives from the primary
//! datacenter or leaves by expiry, as whole rows, in [`replicate`].
//!
//! Builtins: the global-management and global-read-only policies and the
//! anonymous token are stored by the leader's `AclInitialize` (as Consul's
//! leader does in `initializeACLs`), at the index of that entry. Until it
//! has run, every lookup here falls back to the binary's definitions (with
//! indexes 0), so reads, name checks and link resolution behave as if they
//! were stored, and the first write of one of them (an update of the
//! anonymous token, a rename) stores it.
//!
//! Links are stored by ID with the name they had when written; reads give
//! the current name and drop links to policies or roles that were deleted
//! since (Consul keeps the dangling links and filters them on read).

pub mod replicate;
#[cfg(test)]
mod tests;
pub mod write;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub use crate::structs::acl::{
    anonymous_token, builtin_policies, builtin_policy, AclLink, AclNodeIdentity, AclPolicy,
    AclPolicyListStub, AclRole, AclServiceIdentity, AclToken, AclTokenListStub, ResolvedAclToken,
    ANONYMOUS_TOKEN_ID, ANONYMOUS_TOKEN_SECRET,
};
use crate::structs::go_json::go_zero_time;
pub use write::AclError;

use super::watch::{Waiter, WatchKey};
use super::{StateStore, StoreSnapshot, T_ACL_POLICIES, T_ACL_ROLES, T_ACL_TOKENS};

/// The ACL rows of one datacenter, with the lookups that other ACL code
/// goes through (they know about the not-yet-stored builtins).
#[derive(Default)]
pub(crate) struct AclTables {
    /// AccessorID → token.
    tokens: BTreeMap<String, AclToken>,
    /// SecretID → AccessorID; derived from `tokens`.
    secrets: HashMap<String, String>,
    /// ID → policy.
    policies: BTreeMap<String, AclPolicy>,
    /// Name → ID; derived from `policies`.
    policy_names: HashMap<String, String>,
    /// ID → role.
    roles: BTreeMap<String, AclRole>,
    /// Name → ID; derived from `roles`.
    role_names: HashMap<String, String>,
    /// Index of the entry that bootstrapped ACLs, once one did.
    bootstrap_index: Option<u64>,
}

/// One field of a hashed object: a length prefix keeps `("ab", "c")` and
/// `("a", "bc")` apart.
fn hash_field(h: &mut Sha256, field: &str) {
    h.update((field.len() as u64).to_be_bytes());
    h.update(field.as_bytes());
}

fn hash_identities(h: &mut Sha256, svc: &[AclServiceIdentity], nodes: &[AclNodeIdentity]) {
    for s in svc {
        hash_field(h, &s.service_name);
        s.datacenters.iter().for_each(|dc| hash_field(h, dc));
    }
    for n in nodes {
        hash_field(h, &n.node_name);
        hash_field(h, &n.datacenter);
    }
}

/// Content hash of what a token grants and says (not its IDs, times or
/// indexes), as Consul's `SetHash`; replication compares it.
pub(crate) fn token_hash(t: &AclToken) -> Vec<u8> {
    let mut h = Sha256::new();
    hash_field(&mut h, &t.description);
    hash_field(&mut h, if t.local { "local" } else { "global" });
    t.policies.iter().for_each(|l| hash_field(&mut h, &l.id));
    t.roles.iter().for_each(|l| hash_field(&mut h, &l.id));
    hash_identities(&mut h, &t.service_identities, &t.node_identities);
    h.finalize().to_vec()
}

pub(crate) fn policy_hash(p: &AclPolicy) -> Vec<u8> {
    let mut h = Sha256::new();
    hash_field(&mut h, &p.name);
    hash_field(&mut h, &p.description);
    hash_field(&mut h, &p.rules);
    p.datacenters.iter().for_each(|dc| hash_field(&mut h, dc));
    h.finalize().to_vec()
}

pub(crate) fn role_hash(r: &AclRole) -> Vec<u8> {
    let mut h = Sha256::new();
    hash_field(&mut h, &r.name);
    hash_field(&mut h, &r.description);
    r.policies.iter().for_each(|l| hash_field(&mut h, &l.id));
    hash_identities(&mut h, &r.service_identities, &r.node_identities);
    h.finalize().to_vec()
}

/// A builtin policy as shown before `AclInitialize` stores it.
fn unstored_builtin(mut p: AclPolicy) -> AclPolicy {
    p.hash = policy_hash(&p);
    p
}

/// The anonymous token as shown before `AclInitialize` stores it.
fn unstored_anonymous() -> AclToken {
    let mut t = anonymous_token(go_zero_time());
    t.hash = token_hash(&t);
    t
}

impl AclTables {
    pub(crate) fn token(&self, accessor_id: &str) -> Option<Cow<'_, AclToken>> {
        match self.tokens.get(accessor_id) {
            Some(t) => Some(Cow::Borrowed(t)),
            None if accessor_id == ANONYMOUS_TOKEN_ID => Some(Cow::Owned(unstored_anonymous())),
            None => None,
        }
    }

    pub(crate) fn token_by_secret(&self, secret_id: &str) -> Option<Cow<'_, AclToken>> {
        match self.secrets.get(secret_id) {
            Some(accessor) => self.tokens.get(accessor).map(Cow::Borrowed),
            None if secret_id == ANONYMOUS_TOKEN_SECRET
                && !self.tokens.contains_key(ANONYMOUS_TOKEN_ID) =>
            {
                Some(Cow::Owned(unstored_anonymous()))
            }
            None => None,
        }
    }

    /// Every token in AccessorID order, the unstored anonymous one included.
    fn all_tokens(&self) -> Vec<Cow<'_, AclToken>> {
        let mut all: Vec<Cow<'_, AclToken>> = self.tokens.values().map(Cow::Borrowed).collect();
        if !self.tokens.contains_key(ANONYMOUS_TOKEN_ID) {
            all.push(Cow::Owned(unstored_anonymous()));
            all.sort_by(|a, b| a.accessor_id.cmp(&b.accessor_id));
        }
        all
    }

    pub(crate) fn policy(&self, id: &str) -> Option<Cow<'_, AclPolicy>> {
        match self.policies.get(id) {
            Some(p) => Some(Cow::Borrowed(p)),
            None => builtin_policy(id).map(|p| Cow::Owned(unstored_builtin(p))),
        }
    }

    pub(crate) fn policy_by_name(&self, name: &str) -> Option<Cow<'_, AclPolicy>> {
        match self.policy_names.get(name) {
            Some(id) => self.policies.get(id).map(Cow::Borrowed),
            None => builtin_policies()
                .into_iter()
                .find(|b| b.name == name && !self.policies.contains_key(&b.id))
                .map(|p| Cow::Owned(unstored_builtin(p))),
        }
    }

    /// Every policy in name order, unstored builtins included.
    fn all_policies(&self) -> Vec<Cow<'_, AclPolicy>> {
        let mut all: Vec<Cow<'_, AclPolicy>> = self.policies.values().map(Cow::Borrowed).collect();
        for b in builtin_policies() {
            if !self.policies.contains_key(&b.id) {
                all.push(Cow::Owned(unstored_builtin(b)));
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub(crate) fn role(&self, id: &str) -> Option<&AclRole> {
        self.roles.get(id)
    }

    pub(crate) fn role_by_name(&self, name: &str) -> Option<&AclRole> {
        self.role_names.get(name).and_then(|id| self.roles.get(id))
    }

    pub(crate) fn put_token(&mut self, t: AclToken) {
        if let Some(old) = self.tokens.get(&t.accessor_id) {
            self.secrets.remove(&old.secret_id);
        }
        self.secrets
            .insert(t.secret_id.clone(), t.accessor_id.clone());
        self.tokens.insert(t.accessor_id.clone(), t);
    }

    pub(crate) fn drop_token(&mut self, accessor_id: &str) -> Option<AclToken> {
        let t = self.tokens.remove(accessor_id)?;
        self.secrets.remove(&t.secret_id);
        Some(t)
    }

    pub(crate) fn put_policy(&mut self, p: AclPolicy) {
        if let Some(old) = self.policies.get(&p.id) {
            self.policy_names.remove(&old.name);
        }
        self.policy_names.insert(p.name.clone(), p.id.clone());
        self.policies.insert(p.id.clone(), p);
    }

    pub(crate) fn drop_policy(&mut self, id: &str) -> Option<AclPolicy> {
        let p = self.policies.remove(id)?;
        self.policy_names.remove(&p.name);
        Some(p)
    }

    pub(crate) fn put_role(&mut self, r: AclRole) {
        if let Some(old) = self.roles.get(&r.id) {
            self.role_names.remove(&old.name);
        }
        self.role_names.insert(r.name.clone(), r.id.clone());
        self.roles.insert(r.id.clone(), r);
    }

    pub(crate) fn drop_role(&mut self, id: &str) -> Option<AclRole> {
        let r = self.roles.remove(id)?;
        self.role_names.remove(&r.name);
        Some(r)
    }

    /// Links whose target still exists, with its current name.
    fn live_links(
        &self,
        links: &[AclLink],
        name_of: impl Fn(&str) -> Option<String>,
    ) -> Vec<AclLink> {
        links
            .iter()
            .filter_map(|l| name_of(&l.id).map(|name| AclLink::new(&l.id, &name)))
            .collect()
    }

    /// A token as reads show it: links refreshed.
    fn shown_token(&self, t: &AclToken) -> AclToken {
        let mut t = t.clone();
        t.policies = self.live_links(&t.policies, |id| self.policy(id).map(|p| p.name.clone()));
        t.roles = self.live_links(&t.roles, |id| self.role(id).map(|r| r.name.clone()));
        t
    }

    /// A role as reads show it: links refreshed.
    fn shown_role(&self, r: &AclRole) -> AclRole {
        let mut r = r.clone();
        r.policies = self.live_links(&r.policies, |id| self.policy(id).map(|p| p.name.clone()));
        r
    }

    /// The token behind `secret`, unless it expired before `now`, with
    /// what it grants.
    fn resolve(&self, secret: &str, now: DateTime<Utc>) -> Option<ResolvedAclToken> {
        let secret = if secret.is_empty() {
            ANONYMOUS_TOKEN_SECRET
        } else {
            secret
        };
        let stored = self.token_by_secret(secret)?;
        let token = self.shown_token(&stored);
        if token.is_expired(now) {
            return None;
        }
        let roles: Vec<AclRole> = token
            .roles
            .iter()
            .filter_map(|l| self.role(&l.id).map(|r| self.shown_role(r)))
            .collect();
        let mut policies: Vec<AclPolicy> = Vec::new();
        let links = token
            .policies
            .iter()
            .chain(roles.iter().flat_map(|r| &r.policies));
        for link in links {
            if policies.iter().all(|p| p.id != link.id) {
                if let Some(p) = self.policy(&link.id) {
                    policies.push(p.into_owned());
                }
            }
        }
        let service_identities = write::merge_service_identities(
            token
                .service_identities
                .iter()
                .chain(roles.iter().flat_map(|r| &r.service_identities))
                .cloned(),
        );
        let mut node_identities: Vec<AclNodeIdentity> = Vec::new();
        for n in token
            .node_identities
            .iter()
            .chain(roles.iter().flat_map(|r| &r.node_identities))
        {
            if !node_identities.contains(n) {
                node_identities.push(n.clone());
            }
        }
        Some(ResolvedAclToken {
            token,
            policies,
            roles,
            service_identities,
            node_identities,
        })
    }

    pub(crate) fn snapshot_into(&self, snap: &mut StoreSnapshot) {
        snap.acl_tokens = self.tokens.values().cloned().collect();
        snap.acl_policies = self.policies.values().cloned().collect();
        snap.acl_roles = self.roles.values().cloned().collect();
        snap.acl_bootstrap_index = self.bootstrap_index;
    }

    pub(crate) fn restore_from(snap: &mut StoreSnapshot) -> AclTables {
        let mut t = AclTables {
            bootstrap_index: snap.acl_bootstrap_index,
            ..Default::default()
        };
        std::mem::take(&mut snap.acl_tokens)
            .into_iter()
            .for_each(|x| t.put_token(x));
        std::mem::take(&mut snap.acl_policies)
            .into_iter()
            .for_each(|x| t.put_policy(x));
        std::mem::take(&mut snap.acl_roles)
            .into_iter()
            .for_each(|x| t.put_role(x));
        t
    }
}

impl StateStore {
    fn acl_index(&self, tables: &[&str]) -> u64 {
        tables
            .iter()
            .map(|t| self.table_index(t))
            .max()
            .unwrap_or(0)
            .max(1)
    }

    /// One token by AccessorID. The index is the token table's (Consul's).
    pub fn acl_token_get(
        &self,
        accessor_id: &str,
        waiter: Option<&Waiter>,
    ) -> (u64, Option<AclToken>) {
        self.watch(waiter, WatchKey::AclTokens);
        let t = self
            .acl
            .token(accessor_id)
            .map(|t| self.acl.shown_token(&t));
        (self.acl_index(&[T_ACL_TOKENS]), t)
    }

    pub fn acl_token_get_by_secret(
        &self,
        secret_id: &str,
        waiter: Option<&Waiter>,
    ) -> (u64, Option<AclToken>) {
        self.watch(waiter, WatchKey::AclTokens);
        let t = self
            .acl
            .token_by_secret(secret_id)
            .map(|t| self.acl.shown_token(&t));
        (self.acl_index(&[T_ACL_TOKENS]), t)
    }

    /// Tokens in AccessorID order, filtered by linked policy ID, linked
    /// role ID and service-identity name (each optional, all applied).
    pub fn acl_token_list(
        &self,
        policy: Option<&str>,
        role: Option<&str>,
        service_name: Option<&str>,
        waiter: Option<&Waiter>,
    ) -> (u64, Vec<AclTokenListStub>) {
        self.watch(waiter, WatchKey::AclTokens);
        let list = self
            .acl
            .all_tokens()
            .iter()
            .map(|t| self.acl.shown_token(t))
            .filter(|t| policy.is_none_or(|p| t.policies.iter().any(|l| l.id == p)))
            .filter(|t| role.is_none_or(|r| t.roles.iter().any(|l| l.id == r)))
            .filter(|t| {
                service_name
                    .is_none_or(|s| t.service_identities.iter().any(|i| i.service_name == s))
            })
            .map(|t| t.stub())
            .collect();
        (self.acl_index(&[T_ACL_TOKENS]), list)
    }

    pub fn acl_policy_get(&self, id: &str, waiter: Option<&Waiter>) -> (u64, Option<AclPolicy>) {
        self.watch(waiter, WatchKey::AclPolicies);
        let p = self.acl.policy(id).map(Cow::into_owned);
        (self.acl_index(&[T_ACL_POLICIES]), p)
    }

    pub fn acl_policy_get_by_name(
        &self,
        name: &str,
        waiter: Option<&Waiter>,
    ) -> (u64, Option<AclPolicy>) {
        self.watch(waiter, WatchKey::AclPolicies);
        let p = self.acl.policy_by_name(name).map(Cow::into_owned);
        (self.acl_index(&[T_ACL_POLICIES]), p)
    }

    /// Every policy in name order, without rules.
    pub fn acl_policy_list(&self, waiter: Option<&Waiter>) -> (u64, Vec<AclPolicyListStub>) {
        self.watch(waiter, WatchKey::AclPolicies);
        let list = self.acl.all_policies().iter().map(|p| p.stub()).collect();
        (self.acl_index(&[T_ACL_POLICIES]), list)
    }

    pub fn acl_role_get(&self, id: &str, waiter: Option<&Waiter>) -> (u64, Option<AclRole>) {
        self.watch(waiter, WatchKey::AclRoles);
        let r = self.acl.role(id).map(|r| self.acl.shown_role(r));
        (self.acl_index(&[T_ACL_ROLES]), r)
    }

    pub fn acl_role_get_by_name(
        &self,
        name: &str,
        waiter: Option<&Waiter>,
    ) -> (u64, Option<AclRole>) {
        self.watch(waiter, WatchKey::AclRoles);
        let r = self.acl.role_by_name(name).map(|r| self.acl.shown_role(r));
        (self.acl_index(&[T_ACL_ROLES]), r)
    }

    /// Every role in name order, or those linking policy ID `policy`.
    pub fn acl_role_list(
        &self,
        policy: Option<&str>,
        waiter: Option<&Waiter>,
    ) -> (u64, Vec<AclRole>) {
        self.watch(waiter, WatchKey::AclRoles);
        let mut list: Vec<AclRole> = self
            .acl
            .roles
            .values()
            .map(|r| self.acl.shown_role(r))
            .filter(|r| policy.is_none_or(|p| r.policies.iter().any(|l| l.id == p)))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        (self.acl_index(&[T_ACL_ROLES]), list)
    }

    /// The bootstrap index, once ACLs were bootstrapped. Bootstrapping
    /// writes a token, so the token table's index and watch cover it.
    pub fn acl_bootstrap_state(&self, waiter: Option<&Waiter>) -> (u64, Option<u64>) {
        self.watch(waiter, WatchKey::AclTokens);
        (self.acl_index(&[T_ACL_TOKENS]), self.acl.bootstrap_index)
    }

    /// `secret` resolved for authorization as of `now`; `None` for an
    /// unknown or expired secret. Watches, and is indexed by, all three
    /// tables: a change to any of them can change what a token grants.
    pub fn acl_resolve(
        &self,
        secret: &str,
        now: DateTime<Utc>,
        waiter: Option<&Waiter>,
    ) -> (u64, Option<ResolvedAclToken>) {
        for key in [
            WatchKey::AclTokens,
            WatchKey::AclPolicies,
            WatchKey::AclRoles,
        ] {
            self.watch(waiter, key);
        }
        let index = self.acl_index(&[T_ACL_TOKENS, T_ACL_POLICIES, T_ACL_ROLES]);
        (index, self.acl.resolve(secret, now))
    }
}
