//! The request path's part in ACLs across datacenters (Consul's
//! `acl_endpoint.go` forwarding): which datacenter an ACL write belongs
//! to, and where `/v1/acl/replication` is answered.
//!
//! The primary datacenter is authoritative for policies, roles and global
//! tokens: their writes (and bootstrap) arriving in a secondary go to the
//! primary, where the token they carry is decided, and come back through
//! replication. A `Local` token is written, and stays, where it was made.

use super::{routed, Router, Target, LEADER_HOLD};
use crate::storage::fsm::read;
use crate::structs::acl_replication::AclReplicationStatus;
use crate::structs::rpc::{self, AclReplicationArgs, Hop, Routed};
use crate::structs::{Command, RequestError, WriteRequest};

/// Whether `command` writes an object the primary datacenter owns. A
/// token update or delete is local when the token stored here is
/// (`stored_local`, asked only for those writes).
fn owned_by_primary(command: &Command, stored_local: impl Fn(&str) -> bool) -> bool {
    match command {
        Command::AclBootstrap { .. }
        | Command::AclPolicySet { .. }
        | Command::AclPolicyDelete { .. }
        | Command::AclRoleSet { .. }
        | Command::AclRoleDelete { .. } => true,
        Command::AclTokenSet { token, create } => {
            !(token.local || (!*create && stored_local(&token.accessor_id)))
        }
        Command::AclTokenDelete { accessor_id } => !stored_local(accessor_id),
        _ => false,
    }
}

impl Router {
    /// Where a write goes: the datacenter it names, except that a write
    /// of an object the primary owns, made for this secondary, goes to
    /// the primary (and names it, so that the primary serves it).
    pub(super) fn write_target(&self, req: &mut WriteRequest) -> Target {
        let target = self.target(req.dc.as_deref());
        let primary = &self.0.primary;
        let Some(local) = self.here(&target) else {
            // Another datacenter's servers, or this datacenter's for a
            // client agent: they route it.
            return target;
        };
        if primary.is_empty() || primary.eq_ignore_ascii_case(&self.0.dc) {
            return target;
        }
        let stored_local = |id: &str| {
            let store = read(local.store());
            store.acl_token_get(id, None).1.is_some_and(|t| t.local)
        };
        if !owned_by_primary(&req.command, stored_local) {
            return target;
        }
        req.dc = Some(primary.clone());
        self.target(req.dc.as_deref())
    }

    /// `/v1/acl/replication` for `args.dc`: its leader's replication
    /// status. Consul asks for no permission beyond reaching the agent.
    pub async fn acl_replication(
        &self,
        args: AclReplicationArgs,
        hop: Hop,
    ) -> Result<AclReplicationStatus, RequestError> {
        let target = self.target(args.dc.as_deref());
        let Some(local) = self.here(&target) else {
            return self
                .remote::<rpc::AclReplication>(&target, routed(args), LEADER_HOLD)
                .await?;
        };
        match Self::leader_addr(local, hop)? {
            None => Ok(local.acl_replication()),
            Some(addr) => {
                let args = Routed {
                    hop: Hop::Leader,
                    req: AclReplicationArgs { dc: None },
                };
                self.leader::<rpc::AclReplication>(&addr, args, LEADER_HOLD)
                    .await?
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateStore;
    use crate::structs::acl::{AclPolicy, AclToken};

    #[test]
    fn policies_roles_bootstrap_and_global_tokens_belong_to_the_primary() {
        let mut s = StateStore::new();
        let local = AclToken {
            accessor_id: "a1111111-1111-1111-1111-111111111111".into(),
            secret_id: "b1111111-1111-1111-1111-111111111111".into(),
            local: true,
            ..Default::default()
        };
        s.acl_token_set(1, local.clone(), true).unwrap();
        let s = |id: &str| s.acl_token_get(id, None).1.is_some_and(|t| t.local);
        let policy = Command::AclPolicySet {
            policy: AclPolicy::default(),
            create: true,
        };
        assert!(owned_by_primary(&policy, s));
        let global = Command::AclTokenSet {
            token: AclToken::default(),
            create: true,
        };
        assert!(owned_by_primary(&global, s));
        let made_local = Command::AclTokenSet {
            token: AclToken {
                local: true,
                ..Default::default()
            },
            create: true,
        };
        assert!(!owned_by_primary(&made_local, s));
        // An update that does not repeat `Local` stays with the local token.
        let update = Command::AclTokenSet {
            token: AclToken {
                accessor_id: local.accessor_id.clone(),
                ..Default::default()
            },
            create: false,
        };
        assert!(!owned_by_primary(&update, s));
        let delete = |id: &str| Command::AclTokenDelete {
            accessor_id: id.into(),
        };
        assert!(!owned_by_primary(&delete(&local.accessor_id), s));
        assert!(owned_by_primary(&delete("not-here"), s));
        assert!(!owned_by_primary(
            &Command::AclTokensReapExpired {
                now: chrono::Utc::now(),
                local_only: true
            },
            s
        ));
    }
}
