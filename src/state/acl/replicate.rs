//! ACL rows that arrive or leave whole: a secondary datacenter's
//! replication rounds from the primary (Consul's `ACLPolicyBatchSet`,
//! `ACLRoleBatchSet`, `ACLTokenBatchSet` with `FromReplication`, and their
//! deletes), the batch reads that feed them, and the reaping of expired
//! tokens.
//!
//! Replicated rows are stored as the primary has them (IDs, names,
//! secrets, links, expiry) without the checks a user's write gets: the
//! primary made them, and a link may point at a policy or role whose own
//! round has not arrived yet (reads drop such links until it does). Only
//! the indexes are this datacenter's. `Local` tokens belong to the
//! datacenter they were made in: a round never stores, replaces or
//! deletes one.

use chrono::{DateTime, Utc};

use super::{policy_hash, role_hash, token_hash, AclPolicy, AclToken};
use crate::state::watch::Waiter;
use crate::state::watch::WatchKey;
use crate::state::{StateStore, T_ACL_POLICIES, T_ACL_TOKENS};
use crate::structs::acl_replication::{AclReplicationBatch, AclReplicationKind};

impl StateStore {
    /// The policies of `ids` that exist, whole, in the order asked.
    pub fn acl_policy_batch(
        &self,
        ids: &[String],
        waiter: Option<&Waiter>,
    ) -> (u64, Vec<AclPolicy>) {
        self.watch(waiter, WatchKey::AclPolicies);
        let list = ids
            .iter()
            .filter_map(|id| self.acl.policy(id).map(|p| p.into_owned()))
            .collect();
        (self.acl_index(&[T_ACL_POLICIES]), list)
    }

    /// The tokens of `accessor_ids` that exist, whole and as stored (links
    /// by the IDs they were written with), in the order asked.
    pub fn acl_token_batch(
        &self,
        accessor_ids: &[String],
        waiter: Option<&Waiter>,
    ) -> (u64, Vec<AclToken>) {
        self.watch(waiter, WatchKey::AclTokens);
        let list = accessor_ids
            .iter()
            .filter_map(|id| self.acl.token(id).map(|t| t.into_owned()))
            .collect();
        (self.acl_index(&[T_ACL_TOKENS]), list)
    }

    /// Applies one replication round; true when anything changed.
    pub fn acl_replicate(&mut self, index: u64, batch: &AclReplicationBatch) -> bool {
        match batch.kind {
            AclReplicationKind::Policies => self.replicate_policies(index, batch),
            AclReplicationKind::Roles => self.replicate_roles(index, batch),
            AclReplicationKind::Tokens => self.replicate_tokens(index, batch),
        }
    }

    fn replicate_policies(&mut self, index: u64, batch: &AclReplicationBatch) -> bool {
        let mut changed = false;
        for id in &batch.deletes {
            changed |= self.acl.drop_policy(id).is_some();
        }
        for p in &batch.policies {
            // The primary is authoritative for names: a row here that
            // holds the name under another ID is one the primary deleted.
            if let Some(other) = self.acl.policy_names.get(&p.name).cloned() {
                if other != p.id {
                    self.acl.drop_policy(&other);
                }
            }
            let mut p = p.clone();
            p.create_index = match self.acl.policies.get(&p.id) {
                Some(old) if old.create_index != 0 => old.create_index,
                _ => index,
            };
            p.modify_index = index;
            p.hash = policy_hash(&p);
            self.acl.put_policy(p);
            changed = true;
        }
        if changed {
            self.acl_policies_changed(index);
        }
        changed
    }

    fn replicate_roles(&mut self, index: u64, batch: &AclReplicationBatch) -> bool {
        let mut changed = false;
        for id in &batch.deletes {
            changed |= self.acl.drop_role(id).is_some();
        }
        for r in &batch.roles {
            if let Some(other) = self.acl.role_names.get(&r.name).cloned() {
                if other != r.id {
                    self.acl.drop_role(&other);
                }
            }
            let mut r = r.clone();
            r.create_index = self
                .acl
                .roles
                .get(&r.id)
                .map_or(index, |old| old.create_index);
            r.modify_index = index;
            r.hash = role_hash(&r);
            self.acl.put_role(r);
            changed = true;
        }
        if changed {
            self.acl_roles_changed(index);
        }
        changed
    }

    /// Whether the row stored under `accessor_id` is a local token.
    fn local_token(&self, accessor_id: &str) -> bool {
        self.acl.tokens.get(accessor_id).is_some_and(|t| t.local)
    }

    fn replicate_tokens(&mut self, index: u64, batch: &AclReplicationBatch) -> bool {
        let mut changed = false;
        for id in &batch.deletes {
            if !self.local_token(id) {
                changed |= self.acl.drop_token(id).is_some();
            }
        }
        for t in &batch.tokens {
            if t.local || self.local_token(&t.accessor_id) {
                tracing::warn!(accessor_id = %t.accessor_id, "not replicating over a local token");
                continue;
            }
            // A secret held by another global row: that row is one the
            // primary deleted. A local token keeps its secret.
            if let Some(other) = self.acl.secrets.get(&t.secret_id).cloned() {
                if other != t.accessor_id {
                    if self.local_token(&other) {
                        tracing::warn!(accessor_id = %t.accessor_id, "a local token has this token's secret; not replicated");
                        continue;
                    }
                    self.acl.drop_token(&other);
                }
            }
            let mut t = t.clone();
            t.expiration_ttl = None;
            t.create_index = match self.acl.tokens.get(&t.accessor_id) {
                Some(old) if old.create_index != 0 => old.create_index,
                _ => index,
            };
            t.modify_index = index;
            t.hash = token_hash(&t);
            self.acl.put_token(t);
            changed = true;
        }
        if changed {
            self.acl_tokens_changed(index);
        }
        changed
    }

    /// Deletes the tokens that expired before `now` (with `local_only`,
    /// only `Local` ones: a secondary leaves global tokens to the primary,
    /// whose deletion then replicates); their AccessorIDs.
    pub fn acl_tokens_reap_expired(
        &mut self,
        index: u64,
        now: DateTime<Utc>,
        local_only: bool,
    ) -> Vec<String> {
        let expired: Vec<String> = self
            .acl
            .tokens
            .values()
            .filter(|t| t.is_expired(now) && (t.local || !local_only))
            .map(|t| t.accessor_id.clone())
            .collect();
        for id in &expired {
            self.acl.drop_token(id);
        }
        if !expired.is_empty() {
            self.acl_tokens_changed(index);
        }
        expired
    }
}
