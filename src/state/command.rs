//! Raft entries: one [`Command`] per replicated write, and the one
//! [`apply`] that maps each to a state-store call (Consul's FSM).
//!
//! Adding a write means: a variant, an arm in `apply`, a state-store
//! function and a test.

pub use crate::structs::command::{Command, CommandResult};

use super::StateStore;

pub fn apply(store: &mut StateStore, index: u64, cmd: &Command) -> CommandResult {
    let result = match cmd {
        Command::KvSet {
            key,
            value,
            flags,
            ttl,
        } => match check_ttl(ttl) {
            Err(e) => CommandResult::Rejected(e),
            Ok(()) => CommandResult::Bool(store.kv_set_ttl(
                index,
                key,
                value.clone(),
                *flags,
                ttl.clone(),
            )),
        },
        Command::KvCas {
            key,
            value,
            flags,
            cas,
            ttl,
        } => match check_ttl(ttl) {
            Err(e) => CommandResult::Rejected(e),
            Ok(()) => CommandResult::Bool(store.kv_cas_ttl(
                index,
                key,
                value.clone(),
                *flags,
                *cas,
                ttl.clone(),
            )),
        },
        Command::KvDelete { key } => CommandResult::Bool(store.kv_delete(index, key)),
        Command::KvDeleteCas { key, cas } => {
            CommandResult::Bool(store.kv_delete_cas(index, key, *cas))
        }
        Command::KvDeleteTree { prefix } => {
            CommandResult::Bool(store.kv_delete_tree(index, prefix))
        }
        Command::KvExpire { key, modify_index } => {
            CommandResult::Bool(store.kv_expire(index, key, *modify_index))
        }
        Command::Register(req) => match store.ensure_registration(index, req) {
            Ok(()) => CommandResult::Done,
            Err(e) => CommandResult::Rejected(e.to_string()),
        },
        Command::Deregister(req) => match store.deregister(index, req) {
            Ok(()) => CommandResult::Done,
            Err(e) => CommandResult::Rejected(e.to_string()),
        },
        Command::KvLock {
            key,
            value,
            flags,
            session,
            ttl,
        } => {
            if let Err(e) = check_ttl(ttl) {
                CommandResult::Rejected(e)
            } else if store.sessions().contains_key(session) {
                CommandResult::Bool(store.kv_lock_ttl(
                    index,
                    key,
                    value.clone(),
                    *flags,
                    session,
                    ttl.clone(),
                ))
            } else {
                CommandResult::Rejected(format!("invalid session {session:?}"))
            }
        }
        Command::KvUnlock {
            key,
            value,
            flags,
            session,
            ttl,
        } => match check_ttl(ttl) {
            Err(e) => CommandResult::Rejected(e),
            Ok(()) => CommandResult::Bool(store.kv_unlock_ttl(
                index,
                key,
                value.clone(),
                *flags,
                session,
                ttl.clone(),
            )),
        },
        Command::SessionCreate(sess) => match store.session_create(index, sess.clone()) {
            Ok(()) => CommandResult::Done,
            Err(e) => CommandResult::Rejected(e.to_string()),
        },
        Command::SessionDestroy { id } => {
            store.session_destroy(index, id);
            CommandResult::Bool(true)
        }
        Command::SessionRenew { id } => CommandResult::Session(store.sessions().get(id).cloned()),
        Command::Txn(ops) => CommandResult::Txn(store.txn(index, ops)),
        Command::TxnOps(ops) => CommandResult::Txn(store.txn_ops(index, ops)),
        Command::Restore(snap) => {
            store.restore_at(index, (**snap).clone());
            CommandResult::Done
        }
        Command::Batch(cmds) => {
            CommandResult::Batch(cmds.iter().map(|c| apply(store, index, c)).collect())
        }
        Command::AclInitialize { now } => CommandResult::Bool(store.acl_initialize(index, *now)),
        Command::AclBootstrap { token, reset_index } => acl_result(
            store.acl_bootstrap(index, token.clone(), *reset_index),
            |t| CommandResult::AclToken(Box::new(t)),
        ),
        Command::AclTokenSet { token, create } => {
            acl_result(store.acl_token_set(index, token.clone(), *create), |t| {
                CommandResult::AclToken(Box::new(t))
            })
        }
        Command::AclTokenDelete { accessor_id } => acl_result(
            store.acl_token_delete(index, accessor_id),
            CommandResult::Bool,
        ),
        Command::AclPolicySet { policy, create } => {
            acl_result(store.acl_policy_set(index, policy.clone(), *create), |p| {
                CommandResult::AclPolicy(Box::new(p))
            })
        }
        Command::AclPolicyDelete { id } => {
            acl_result(store.acl_policy_delete(index, id), CommandResult::Bool)
        }
        Command::AclRoleSet { role, create } => {
            acl_result(store.acl_role_set(index, role.clone(), *create), |r| {
                CommandResult::AclRole(Box::new(r))
            })
        }
        Command::AclRoleDelete { id } => CommandResult::Bool(store.acl_role_delete(index, id)),
        Command::AclTokensReapExpired { now, local_only } => {
            CommandResult::AclTokensReaped(store.acl_tokens_reap_expired(index, *now, *local_only))
        }
        Command::AclReplicate(batch) => CommandResult::Bool(store.acl_replicate(index, batch)),
        Command::KvReapTombstones { reap_index } => {
            CommandResult::Bool(store.kv_reap_tombstones(*reap_index) > 0)
        }
        Command::PreparedQuerySet { query, create } => {
            match store.prepared_query_set(index, (**query).clone(), *create) {
                Ok(()) => CommandResult::Done,
                Err(e) => CommandResult::Rejected(e.to_string()),
            }
        }
        Command::PreparedQueryDelete { id } => {
            CommandResult::Bool(store.prepared_query_delete(index, id))
        }
        Command::CoordinateBatchUpdate(updates) => {
            CommandResult::Bool(store.coordinate_batch_update(index, updates) > 0)
        }
    };
    store.note_index(index);
    result
}

/// A KV write's TTL, checked again here: the HTTP layer refuses a bad one
/// with a 400, and an entry that reached Raft another way is refused the
/// same way on every server (the check depends on nothing but the text).
fn check_ttl(ttl: &Option<String>) -> Result<(), String> {
    match ttl.as_deref().map(crate::structs::catalog::parse_kv_ttl) {
        Some(Err(e)) => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// An ACL write's answer: the stored object, or the refusal in Consul's
/// words (what the HTTP layer shows).
fn acl_result<T>(
    r: Result<T, super::acl::AclError>,
    ok: impl FnOnce(T) -> CommandResult,
) -> CommandResult {
    match r {
        Ok(v) => ok(v),
        Err(e) => CommandResult::Rejected(e.to_string()),
    }
}
