//! ACL table tests, with the helpers they share: [`tokens`] (bootstrap
//! and its reset, token writes and their checks, expiry and reaping,
//! resolution) and [`tables`] (policies and roles, the builtins before and
//! after `AclInitialize`, dangling links, blocking-query indexes,
//! snapshots) and [`replication`] (rounds from the primary, local tokens
//! left alone, reaping in a secondary).

mod replication;
mod tables;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::state::acl::*;
use crate::state::command::{apply, Command, CommandResult};
use crate::state::query::{execute, Query, QueryResult};
use crate::state::{StateStore, StoreSnapshot, T_ACL_POLICIES, T_ACL_TOKENS};
use crate::structs::acl::{
    GLOBAL_MANAGEMENT_POLICY_ID, GLOBAL_MANAGEMENT_POLICY_NAME, GLOBAL_MANAGEMENT_RULES,
    GLOBAL_READ_ONLY_POLICY_ID,
};

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_900_000_000 + secs, 0).unwrap()
}

fn waiter() -> Arc<Notify> {
    Arc::new(Notify::new())
}

fn fired(w: &Arc<Notify>) -> bool {
    let fut = w.notified();
    futures::pin_mut!(fut);
    fut.as_mut().enable()
}

fn uuid(n: u32) -> String {
    format!("{n:08x}-1111-2222-3333-444444444444")
}

fn token(n: u32) -> AclToken {
    AclToken {
        accessor_id: uuid(n),
        secret_id: uuid(1000 + n),
        create_time: at(0),
        ..Default::default()
    }
}

fn policy(id: &str, name: &str) -> AclPolicy {
    AclPolicy {
        id: id.into(),
        name: name.into(),
        rules: "key_prefix \"\" { policy = \"read\" }".into(),
        ..Default::default()
    }
}

fn role(id: &str, name: &str, policies: Vec<AclLink>) -> AclRole {
    AclRole {
        id: id.into(),
        name: name.into(),
        policies,
        ..Default::default()
    }
}

fn by_name(name: &str) -> AclLink {
    AclLink::new("", name)
}

fn by_id(id: &str) -> AclLink {
    AclLink::new(id, "")
}

fn bootstrap_token(n: u32) -> AclToken {
    AclToken {
        description: "Bootstrap Token (Global Management)".into(),
        policies: vec![by_id(GLOBAL_MANAGEMENT_POLICY_ID)],
        ..token(n)
    }
}

/// A builtin policy as the binary defines it.
fn s_policy(id: &str) -> AclPolicy {
    builtin_policy(id).unwrap()
}
