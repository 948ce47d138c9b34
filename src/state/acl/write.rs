//! ACL writes: bootstrap, initialization of the builtins, token, policy and
//! role upserts and deletes, and the reaping of expired tokens, with the
//! checks Consul's endpoints and state store make on them, worded as
//! Consul words them.
//!
//! Every check runs before anything is written, so a refused write leaves
//! the tables as they were. Nothing here reads a clock or draws a random
//! ID: the leader puts times and IDs in the command, and every server
//! applying it computes the same result.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use thiserror::Error;

use super::{
    builtin_policies, builtin_policy, policy_hash, role_hash, token_hash, AclLink, AclNodeIdentity,
    AclPolicy, AclRole, AclServiceIdentity, AclToken, ANONYMOUS_TOKEN_ID,
};
use crate::acl::{
    valid_role_name, valid_service_identity_name, validate_policy_name, PolicyNameError,
};
use crate::state::watch::WatchKey;
use crate::state::{StateStore, T_ACL_POLICIES, T_ACL_ROLES, T_ACL_TOKENS};
use crate::structs::acl::{anonymous_token, is_reserved_id, RESERVED_ID_PREFIX};
use crate::structs::go_json::go_zero_time;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AclError {
    #[error("ACL bootstrap no longer allowed (reset index: {0})")]
    BootstrapNotAllowed(u64),
    #[error("Invalid bootstrap reset index (specified {specified}, reset index: {reset_index})")]
    InvalidResetIndex { specified: u64, reset_index: u64 },
    #[error("Missing ACL Token AccessorID")]
    MissingAccessorId,
    #[error("Missing ACL Token SecretID")]
    MissingSecretId,
    #[error("Invalid Token: AccessorID is already in use")]
    AccessorIdInUse,
    #[error("Invalid Token: SecretID is already in use")]
    SecretIdInUse,
    #[error("Invalid Token: {0} - UUIDs with the prefix {RESERVED_ID_PREFIX:?} are reserved")]
    ReservedTokenId(&'static str),
    #[error("Cannot find token {0:?}")]
    TokenNotFound(String),
    #[error("Changing a token's SecretID is not permitted")]
    SecretIdChange,
    #[error("Cannot toggle local mode of {0}")]
    LocalToggle(String),
    #[error("Cannot change expiration time of {0}")]
    ExpirationChange(String),
    #[error("Token Expiration TTL and Expiration Time cannot both be set")]
    TtlAndExpirationTime,
    #[error("Token Expiration TTL is too large")]
    TtlTooLarge,
    #[error("ExpirationTime cannot be before CreateTime")]
    ExpirationBeforeCreate,
    #[error("Delete operation not permitted on the anonymous token")]
    AnonymousDelete,
    #[error("No such ACL policy with name {0:?}")]
    PolicyNameNotFound(String),
    #[error("No such ACL policy with ID {0:?}")]
    PolicyIdNotFound(String),
    #[error("No such ACL role with name {0:?}")]
    RoleNameNotFound(String),
    #[error("No such ACL role with ID {0:?}")]
    RoleIdNotFound(String),
    #[error("Service identity is missing the service name field on this {0}")]
    ServiceIdentityMissingName(&'static str),
    #[error("Service identity {0:?} has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed")]
    ServiceIdentityInvalidName(String),
    #[error("Service identity {0:?} cannot specify a list of datacenters on a local token")]
    ServiceIdentityLocalDatacenters(String),
    #[error("Node identity is missing the node name field on this {0}")]
    NodeIdentityMissingName(&'static str),
    #[error("Node identity is missing the datacenter field on this {0}")]
    NodeIdentityMissingDatacenter(&'static str),
    #[error("Node identity has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed")]
    NodeIdentityInvalidName,
    #[error("Missing ACL Policy ID")]
    MissingPolicyId,
    #[error("Invalid Policy: no Name is set")]
    MissingPolicyName,
    #[error(transparent)]
    PolicyName(#[from] PolicyNameError),
    #[error("Invalid Policy: A Policy with Name {0:?} already exists")]
    PolicyNameExists(String),
    #[error("Invalid Policy: ID {0} is already in use")]
    PolicyIdInUse(String),
    #[error("Invalid Policy: IDs with the prefix {RESERVED_ID_PREFIX:?} are reserved")]
    ReservedPolicyId,
    #[error("cannot find policy {0}")]
    PolicyNotFound(String),
    #[error("Changing the Rules for the builtin {0} policy is not permitted")]
    BuiltinRules(String),
    #[error("Changing the Datacenters of the {0} policy is not permitted")]
    BuiltinDatacenters(String),
    #[error("Delete operation not permitted on the builtin {0} policy")]
    BuiltinDelete(String),
    #[error("Missing ACL Role ID")]
    MissingRoleId,
    #[error("Invalid Role: no Name is set")]
    MissingRoleName,
    #[error("Invalid Role: invalid Name. Only alphanumeric characters, '-' and '_' are allowed")]
    RoleNameChars,
    #[error("Invalid Role: A Role with Name {0:?} already exists")]
    RoleNameExists(String),
    #[error("Invalid Role: ID {0} is already in use")]
    RoleIdInUse(String),
    #[error("cannot find role {0}")]
    RoleNotFound(String),
}

/// One identity per service name, datacenters merged (sorted, once each),
/// in the order the names first appear.
pub(crate) fn merge_service_identities(
    ids: impl IntoIterator<Item = AclServiceIdentity>,
) -> Vec<AclServiceIdentity> {
    let mut out: Vec<AclServiceIdentity> = Vec::new();
    for id in ids {
        match out.iter_mut().find(|o| o.service_name == id.service_name) {
            Some(o) => o.datacenters.extend(id.datacenters),
            None => out.push(id),
        }
    }
    for o in &mut out {
        o.datacenters.sort();
        o.datacenters.dedup();
    }
    out
}

fn check_service_identities(
    ids: Vec<AclServiceIdentity>,
    on: &'static str,
    local: bool,
) -> Result<Vec<AclServiceIdentity>, AclError> {
    for id in &ids {
        if id.service_name.is_empty() {
            return Err(AclError::ServiceIdentityMissingName(on));
        }
        if local && !id.datacenters.is_empty() {
            return Err(AclError::ServiceIdentityLocalDatacenters(
                id.service_name.clone(),
            ));
        }
        if !valid_service_identity_name(&id.service_name) {
            return Err(AclError::ServiceIdentityInvalidName(
                id.service_name.clone(),
            ));
        }
    }
    Ok(merge_service_identities(ids))
}

fn check_node_identities(
    ids: Vec<AclNodeIdentity>,
    on: &'static str,
) -> Result<Vec<AclNodeIdentity>, AclError> {
    let mut out: Vec<AclNodeIdentity> = Vec::new();
    for id in ids {
        if id.node_name.is_empty() {
            return Err(AclError::NodeIdentityMissingName(on));
        }
        if id.datacenter.is_empty() {
            return Err(AclError::NodeIdentityMissingDatacenter(on));
        }
        if !valid_service_identity_name(&id.node_name) {
            return Err(AclError::NodeIdentityInvalidName);
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

impl StateStore {
    /// Links to policies, by ID or by name, as stored: ID and current
    /// name, once per ID. Every target must exist.
    fn acl_policy_links(&self, links: &[AclLink]) -> Result<Vec<AclLink>, AclError> {
        let mut out: Vec<AclLink> = Vec::new();
        for l in links {
            let p = if l.id.is_empty() {
                self.acl
                    .policy_by_name(&l.name)
                    .ok_or_else(|| AclError::PolicyNameNotFound(l.name.clone()))?
            } else {
                self.acl
                    .policy(&l.id)
                    .ok_or_else(|| AclError::PolicyIdNotFound(l.id.clone()))?
            };
            if out.iter().all(|o| o.id != p.id) {
                out.push(AclLink::new(&p.id, &p.name));
            }
        }
        Ok(out)
    }

    /// Links to roles, likewise.
    fn acl_role_links(&self, links: &[AclLink]) -> Result<Vec<AclLink>, AclError> {
        let mut out: Vec<AclLink> = Vec::new();
        for l in links {
            let r = if l.id.is_empty() {
                self.acl
                    .role_by_name(&l.name)
                    .ok_or_else(|| AclError::RoleNameNotFound(l.name.clone()))?
            } else {
                self.acl
                    .role(&l.id)
                    .ok_or_else(|| AclError::RoleIdNotFound(l.id.clone()))?
            };
            if out.iter().all(|o| o.id != r.id) {
                out.push(AclLink::new(&r.id, &r.name));
            }
        }
        Ok(out)
    }

    fn acl_id_in_use(&self, id: &str) -> bool {
        self.acl.token(id).is_some() || self.acl.token_by_secret(id).is_some()
    }

    /// The token as it will be stored, or why it can't be.
    fn acl_token_checked(
        &self,
        index: u64,
        mut token: AclToken,
        create: bool,
    ) -> Result<AclToken, AclError> {
        if token.accessor_id.is_empty() {
            return Err(AclError::MissingAccessorId);
        }
        // Go clients send the zero time for "no expiry".
        if token.expiration_time == Some(go_zero_time()) {
            token.expiration_time = None;
        }
        if create {
            if token.secret_id.is_empty() {
                return Err(AclError::MissingSecretId);
            }
            // Consul refuses an ID that any token uses, as either ID.
            if self.acl_id_in_use(&token.accessor_id) {
                return Err(AclError::AccessorIdInUse);
            }
            if self.acl_id_in_use(&token.secret_id) {
                return Err(AclError::SecretIdInUse);
            }
            if is_reserved_id(&token.accessor_id) {
                return Err(AclError::ReservedTokenId("AccessorID"));
            }
            if is_reserved_id(&token.secret_id) {
                return Err(AclError::ReservedTokenId("SecretID"));
            }
            if let Some(ttl) = token.expiration_ttl.take() {
                if token.expiration_time.is_some() {
                    return Err(AclError::TtlAndExpirationTime);
                }
                let ttl = chrono::Duration::from_std(ttl).map_err(|_| AclError::TtlTooLarge)?;
                let at = token
                    .create_time
                    .checked_add_signed(ttl)
                    .ok_or(AclError::TtlTooLarge)?;
                token.expiration_time = Some(at);
            }
            if token.expiration_time.is_some_and(|t| t < token.create_time) {
                return Err(AclError::ExpirationBeforeCreate);
            }
            token.create_index = index;
        } else {
            let existing = self
                .acl
                .token(&token.accessor_id)
                .ok_or_else(|| AclError::TokenNotFound(token.accessor_id.clone()))?;
            if token.secret_id.is_empty() {
                token.secret_id = existing.secret_id.clone();
            } else if token.secret_id != existing.secret_id {
                return Err(AclError::SecretIdChange);
            }
            if token.local != existing.local {
                return Err(AclError::LocalToggle(token.accessor_id));
            }
            let expiry_changes = token.expiration_time.is_some()
                && token.expiration_time != existing.expiration_time;
            if token.expiration_ttl.is_some() || expiry_changes {
                return Err(AclError::ExpirationChange(token.accessor_id));
            }
            token.expiration_time = existing.expiration_time;
            token.create_time = existing.create_time;
            // An unstored builtin (index 0) is created by this write.
            token.create_index = match existing.create_index {
                0 => index,
                i => i,
            };
        }
        token.policies = self.acl_policy_links(&token.policies)?;
        token.roles = self.acl_role_links(&token.roles)?;
        token.service_identities =
            check_service_identities(token.service_identities, "token", token.local)?;
        token.node_identities = check_node_identities(token.node_identities, "token")?;
        token.modify_index = index;
        token.hash = token_hash(&token);
        Ok(token)
    }

    pub(super) fn acl_tokens_changed(&mut self, index: u64) {
        self.bump(T_ACL_TOKENS, index);
        self.fire(WatchKey::AclTokens);
    }

    pub(super) fn acl_policies_changed(&mut self, index: u64) {
        self.bump(T_ACL_POLICIES, index);
        self.fire(WatchKey::AclPolicies);
    }

    pub(super) fn acl_roles_changed(&mut self, index: u64) {
        self.bump(T_ACL_ROLES, index);
        self.fire(WatchKey::AclRoles);
    }

    /// Stores the builtin policies the binary defines (bringing the rules
    /// of stored ones up to date; names and descriptions stay as users set
    /// them) and the anonymous token, created at `now`. True when
    /// anything changed.
    pub fn acl_initialize(&mut self, index: u64, now: DateTime<Utc>) -> bool {
        let mut policies_changed = false;
        for builtin in builtin_policies() {
            let policy = match self.acl.policies.get(&builtin.id) {
                None => AclPolicy {
                    create_index: index,
                    ..builtin
                },
                Some(p) if p.rules != builtin.rules => AclPolicy {
                    rules: builtin.rules,
                    ..p.clone()
                },
                Some(_) => continue,
            };
            let policy = AclPolicy {
                modify_index: index,
                hash: policy_hash(&policy),
                ..policy
            };
            self.acl.put_policy(policy);
            policies_changed = true;
        }
        if policies_changed {
            self.acl_policies_changed(index);
        }
        let anonymous_missing = !self.acl.tokens.contains_key(ANONYMOUS_TOKEN_ID);
        if anonymous_missing {
            let mut anon = anonymous_token(now);
            anon.create_index = index;
            anon.modify_index = index;
            anon.hash = token_hash(&anon);
            self.acl.put_token(anon);
            self.acl_tokens_changed(index);
        }
        policies_changed || anonymous_missing
    }

    /// Stores the first management token, once; again only with the reset
    /// index (the index of the last bootstrap) that an operator copied
    /// from the refusal into the server's `acl-bootstrap-reset` file.
    pub fn acl_bootstrap(
        &mut self,
        index: u64,
        token: AclToken,
        reset_index: Option<u64>,
    ) -> Result<AclToken, AclError> {
        if let Some(done_at) = self.acl.bootstrap_index {
            match reset_index {
                None => return Err(AclError::BootstrapNotAllowed(done_at)),
                Some(r) if r != done_at => {
                    return Err(AclError::InvalidResetIndex {
                        specified: r,
                        reset_index: done_at,
                    })
                }
                Some(_) => {}
            }
        }
        let token = self.acl_token_checked(index, token, true)?;
        self.acl.put_token(token.clone());
        self.acl.bootstrap_index = Some(index);
        self.acl_tokens_changed(index);
        Ok(token)
    }

    /// Creates or updates a token; see `Command::AclTokenSet`.
    pub fn acl_token_set(
        &mut self,
        index: u64,
        token: AclToken,
        create: bool,
    ) -> Result<AclToken, AclError> {
        let token = self.acl_token_checked(index, token, create)?;
        self.acl.put_token(token.clone());
        self.acl_tokens_changed(index);
        Ok(token)
    }

    /// True when the token existed.
    pub fn acl_token_delete(&mut self, index: u64, accessor_id: &str) -> Result<bool, AclError> {
        if accessor_id == ANONYMOUS_TOKEN_ID {
            return Err(AclError::AnonymousDelete);
        }
        let existed = self.acl.drop_token(accessor_id).is_some();
        if existed {
            self.acl_tokens_changed(index);
        }
        Ok(existed)
    }

    /// Creates or updates a policy. The rules' syntax is the caller's to
    /// check (the ACL language is not the state store's).
    pub fn acl_policy_set(
        &mut self,
        index: u64,
        mut policy: AclPolicy,
        create: bool,
    ) -> Result<AclPolicy, AclError> {
        if policy.id.is_empty() {
            return Err(AclError::MissingPolicyId);
        }
        if policy.name.is_empty() {
            return Err(AclError::MissingPolicyName);
        }
        let existing = self.acl.policy(&policy.id).map(Cow::into_owned);
        match (&existing, create) {
            (Some(_), true) => return Err(AclError::PolicyIdInUse(policy.id)),
            (None, true) if is_reserved_id(&policy.id) => return Err(AclError::ReservedPolicyId),
            (None, false) => return Err(AclError::PolicyNotFound(policy.id)),
            _ => {}
        }
        // A builtin keeps its `builtin/` name through an update.
        if existing.as_ref().map(|p| p.name.as_str()) != Some(policy.name.as_str()) {
            validate_policy_name(&policy.name)?;
        }
        if let Some(other) = self.acl.policy_by_name(&policy.name) {
            if other.id != policy.id {
                return Err(AclError::PolicyNameExists(policy.name));
            }
        }
        if let Some(builtin) = builtin_policy(&policy.id) {
            if policy.rules != builtin.rules {
                return Err(AclError::BuiltinRules(builtin.name));
            }
            if !policy.datacenters.is_empty() {
                return Err(AclError::BuiltinDatacenters(builtin.name));
            }
        }
        policy.create_index = match existing.map(|p| p.create_index) {
            Some(i) if i != 0 => i,
            _ => index,
        };
        policy.modify_index = index;
        policy.hash = policy_hash(&policy);
        self.acl.put_policy(policy.clone());
        self.acl_policies_changed(index);
        Ok(policy)
    }

    /// True when the policy existed. Links to it stay where they are.
    pub fn acl_policy_delete(&mut self, index: u64, id: &str) -> Result<bool, AclError> {
        if let Some(builtin) = builtin_policy(id) {
            let name = self.acl.policy(id).map_or(builtin.name, |p| p.name.clone());
            return Err(AclError::BuiltinDelete(name));
        }
        let existed = self.acl.drop_policy(id).is_some();
        if existed {
            self.acl_policies_changed(index);
        }
        Ok(existed)
    }

    pub fn acl_role_set(
        &mut self,
        index: u64,
        mut role: AclRole,
        create: bool,
    ) -> Result<AclRole, AclError> {
        if role.id.is_empty() {
            return Err(AclError::MissingRoleId);
        }
        if role.name.is_empty() {
            return Err(AclError::MissingRoleName);
        }
        if !valid_role_name(&role.name) {
            return Err(AclError::RoleNameChars);
        }
        let existing_index = self.acl.role(&role.id).map(|r| r.create_index);
        match (existing_index, create) {
            (Some(_), true) => return Err(AclError::RoleIdInUse(role.id)),
            (None, false) => return Err(AclError::RoleNotFound(role.id)),
            _ => {}
        }
        if let Some(other) = self.acl.role_by_name(&role.name) {
            if other.id != role.id {
                return Err(AclError::RoleNameExists(role.name));
            }
        }
        role.policies = self.acl_policy_links(&role.policies)?;
        role.service_identities = check_service_identities(role.service_identities, "role", false)?;
        role.node_identities = check_node_identities(role.node_identities, "role")?;
        role.create_index = existing_index.unwrap_or(index);
        role.modify_index = index;
        role.hash = role_hash(&role);
        self.acl.put_role(role.clone());
        self.acl_roles_changed(index);
        Ok(role)
    }

    /// True when the role existed. Links to it stay where they are.
    pub fn acl_role_delete(&mut self, index: u64, id: &str) -> bool {
        let existed = self.acl.drop_role(id).is_some();
        if existed {
            self.acl_roles_changed(index);
        }
        existed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_identities_merge_datacenters() {
        let si = |n: &str, dcs: &[&str]| AclServiceIdentity {
            service_name: n.into(),
            datacenters: dcs.iter().map(|d| d.to_string()).collect(),
        };
        let merged = merge_service_identities([
            si("web", &["dc2"]),
            si("db", &[]),
            si("web", &["dc1", "dc2"]),
        ]);
        assert_eq!(merged, [si("web", &["dc1", "dc2"]), si("db", &[])]);
    }
}
