//! Replication rounds from the primary datacenter and the secondary's
//! reaper.

use super::*;
use crate::structs::acl_replication::{AclReplicationBatch, AclReplicationKind};

fn round(kind: AclReplicationKind) -> AclReplicationBatch {
    AclReplicationBatch::new(kind)
}

fn replicate(s: &mut StateStore, index: u64, batch: AclReplicationBatch) -> CommandResult {
    apply(s, index, &Command::AclReplicate(Box::new(batch)))
}

/// A policy as the primary stored it (its own indexes and hash).
fn primary_policy(id: &str, name: &str, rules: &str) -> AclPolicy {
    let mut p = policy(id, name);
    p.rules = rules.into();
    p.create_index = 900;
    p.modify_index = 950;
    p.hash = policy_hash(&p);
    p
}

#[test]
fn policies_arrive_as_the_primary_has_them_with_local_indexes() {
    let mut s = StateStore::new();
    let w = waiter();
    s.acl_policy_list(Some(&w));
    let mut r = round(AclReplicationKind::Policies);
    r.policies = vec![primary_policy(
        "p1",
        "ops",
        "key \"a\" { policy = \"write\" }",
    )];
    assert_eq!(replicate(&mut s, 7, r), CommandResult::Bool(true));
    assert!(fired(&w), "blocking reads of policies wake");
    let (index, p) = s.acl_policy_get_by_name("ops", None);
    let p = p.unwrap();
    assert_eq!(index, 7);
    assert_eq!(
        (p.id.as_str(), p.create_index, p.modify_index),
        ("p1", 7, 7)
    );
    assert_eq!(p.rules, "key \"a\" { policy = \"write\" }");
    assert_eq!(
        p.hash,
        policy_hash(&p),
        "same content, same hash as the primary's"
    );

    // An update keeps the create index; a deletion and a new policy with
    // the deleted one's name arrive together.
    let mut r = round(AclReplicationKind::Policies);
    r.policies = vec![primary_policy(
        "p1",
        "ops",
        "key \"a\" { policy = \"deny\" }",
    )];
    replicate(&mut s, 8, r);
    let p = s.acl_policy_get("p1", None).1.unwrap();
    assert_eq!((p.create_index, p.modify_index), (7, 8));
    let mut r = round(AclReplicationKind::Policies);
    r.policies = vec![primary_policy("p2", "ops", "")];
    replicate(&mut s, 9, r);
    assert!(
        s.acl_policy_get("p1", None).1.is_none(),
        "the name's old holder is gone"
    );
    assert_eq!(s.acl_policy_get_by_name("ops", None).1.unwrap().id, "p2");
    let mut r = round(AclReplicationKind::Policies);
    r.deletes = vec!["p2".into()];
    assert_eq!(replicate(&mut s, 10, r), CommandResult::Bool(true));
    assert!(s.acl_policy_get("p2", None).1.is_none());
    let mut r = round(AclReplicationKind::Policies);
    r.deletes = vec!["p2".into()];
    assert_eq!(replicate(&mut s, 11, r), CommandResult::Bool(false));
    assert_eq!(
        s.table_index(T_ACL_POLICIES),
        10,
        "nothing changed, index kept"
    );
}

#[test]
fn global_tokens_replicate_with_links_that_arrive_later_and_local_ones_stay() {
    let mut s = StateStore::new();
    let mine = AclToken {
        local: true,
        ..token(1)
    };
    s.acl_token_set(1, mine.clone(), true).unwrap();

    let global = AclToken {
        policies: vec![AclLink::new("p9", "later")],
        create_index: 40,
        modify_index: 41,
        ..token(2)
    };
    let mut r = round(AclReplicationKind::Tokens);
    r.tokens = vec![global.clone()];
    replicate(&mut s, 2, r);
    let stored = s.acl_token_get(&uuid(2), None).1.unwrap();
    assert_eq!(stored.secret_id, global.secret_id, "the secret travels");
    assert!(
        stored.policies.is_empty(),
        "a link to a policy not yet here reads as absent"
    );
    let mut r = round(AclReplicationKind::Policies);
    r.policies = vec![primary_policy("p9", "later", "")];
    replicate(&mut s, 3, r);
    let stored = s.acl_token_get(&uuid(2), None).1.unwrap();
    assert_eq!(stored.policies, vec![AclLink::new("p9", "later")]);
    let resolved = s.acl_resolve(&global.secret_id, at(1), None).1.unwrap();
    assert_eq!(
        resolved.policies.len(),
        1,
        "the replicated token decides here"
    );

    // A round never replaces, deletes or stores a local token.
    let mut r = round(AclReplicationKind::Tokens);
    r.deletes = vec![uuid(1)];
    r.tokens = vec![
        AclToken {
            description: "over it".into(),
            ..token(1)
        },
        AclToken {
            local: true,
            ..token(3)
        },
    ];
    assert_eq!(replicate(&mut s, 4, r), CommandResult::Bool(false));
    assert_eq!(s.acl_token_get(&uuid(1), None).1.unwrap().description, "");
    assert!(s.acl_token_get(&uuid(3), None).1.is_none());

    let mut r = round(AclReplicationKind::Tokens);
    r.deletes = vec![uuid(2)];
    assert_eq!(replicate(&mut s, 5, r), CommandResult::Bool(true));
    assert!(s.acl_resolve(&global.secret_id, at(1), None).1.is_none());
    assert!(s.acl_resolve(&mine.secret_id, at(1), None).1.is_some());
}

#[test]
fn roles_replicate_and_batch_reads_return_whole_rows() {
    let mut s = StateStore::new();
    let mut r = round(AclReplicationKind::Roles);
    r.roles = vec![role("r1", "web", vec![AclLink::new("p1", "ops")])];
    replicate(&mut s, 3, r);
    assert_eq!(
        s.acl_role_get_by_name("web", None).1.unwrap().modify_index,
        3
    );

    s.acl_policy_set(4, policy("p1", "ops"), true).unwrap();
    s.acl_token_set(5, token(7), true).unwrap();
    let (i, p) = s.acl_policy_batch(&["p1".into(), "nope".into()], None);
    assert_eq!(
        (i, p.len(), p[0].rules.as_str()),
        (4, 1, policy("p1", "ops").rules.as_str())
    );
    let q = Query::AclTokenBatch {
        accessor_ids: vec![uuid(7)],
    };
    match execute(&s, &q, None) {
        (5, QueryResult::AclTokenBatch(t)) => assert_eq!(t[0].secret_id, uuid(1007)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_secondary_reaps_only_its_local_tokens() {
    let mut s = StateStore::new();
    for (n, local) in [(1, false), (2, true)] {
        let t = AclToken {
            local,
            expiration_ttl: Some(Duration::from_secs(10)),
            ..token(n)
        };
        s.acl_token_set(n as u64, t, true).unwrap();
    }
    let secondary = Command::AclTokensReapExpired {
        now: at(60),
        local_only: true,
    };
    assert_eq!(
        apply(&mut s, 3, &secondary),
        CommandResult::AclTokensReaped(vec![uuid(2)])
    );
    assert!(
        s.acl_token_get(&uuid(1), None).1.is_some(),
        "the primary reaps the global one"
    );
    assert!(
        s.acl_resolve(&uuid(1001), at(60), None).1.is_none(),
        "though it no longer works once expired"
    );
}
