//! Policies and roles, the builtins before and after `AclInitialize`,
//! dangling links, blocking-query indexes, snapshots.

use super::*;

#[test]
fn roles_link_policies_and_list_by_policy() {
    let mut s = StateStore::new();
    s.acl_policy_set(1, policy(&uuid(50), "web"), true).unwrap();
    let r = s
        .acl_role_set(2, role(&uuid(60), "web-role", vec![by_name("web")]), true)
        .unwrap();
    assert_eq!(r.policies, [AclLink::new(&uuid(50), "web")]);
    s.acl_role_set(3, role(&uuid(61), "empty", vec![]), true)
        .unwrap();
    assert_eq!(
        s.acl_role_set(4, role(&uuid(62), "bad", vec![by_name("x")]), true),
        Err(AclError::PolicyNameNotFound("x".into()))
    );
    let names = |l: Vec<AclRole>| l.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(names(s.acl_role_list(None, None).1), ["empty", "web-role"]);
    assert_eq!(
        names(s.acl_role_list(Some(&uuid(50)), None).1),
        ["web-role"]
    );
    assert_eq!(
        s.acl_role_get_by_name("web-role", None).1.map(|r| r.id),
        Some(uuid(60))
    );
    assert_eq!(
        s.acl_role_set(5, role(&uuid(63), "w", vec![]), false),
        Err(AclError::RoleNotFound(uuid(63)))
    );
    assert!(s.acl_role_delete(6, &uuid(61)));
    assert!(!s.acl_role_delete(7, &uuid(61)));
}

#[test]
fn policy_and_role_names_are_unique() {
    let mut s = StateStore::new();
    s.acl_policy_set(1, policy(&uuid(50), "web"), true).unwrap();
    assert_eq!(
        s.acl_policy_set(2, policy(&uuid(51), "web"), true),
        Err(AclError::PolicyNameExists("web".into()))
    );
    assert_eq!(
        s.acl_policy_set(2, policy(&uuid(51), GLOBAL_MANAGEMENT_POLICY_NAME), true),
        Err(AclError::PolicyNameExists(
            GLOBAL_MANAGEMENT_POLICY_NAME.into()
        )),
        "a builtin's name is taken before it is stored"
    );
    assert_eq!(
        s.acl_policy_set(2, policy(&uuid(51), "bad name"), true),
        Err(AclError::PolicyName(crate::acl::PolicyNameError::Chars))
    );
    // Renaming frees the old name.
    s.acl_policy_set(3, policy(&uuid(50), "web2"), false)
        .unwrap();
    s.acl_policy_set(4, policy(&uuid(51), "web"), true).unwrap();
    assert_eq!(
        s.acl_policy_get_by_name("web", None).1.map(|p| p.id),
        Some(uuid(51))
    );
    assert_eq!(
        s.acl_policy_set(5, policy(&uuid(52), "x"), false),
        Err(AclError::PolicyNotFound(uuid(52)))
    );

    s.acl_role_set(6, role(&uuid(60), "ops", vec![]), true)
        .unwrap();
    assert_eq!(
        s.acl_role_set(7, role(&uuid(61), "ops", vec![]), true),
        Err(AclError::RoleNameExists("ops".into()))
    );
}

#[test]
fn builtins_are_protected() {
    let mut s = StateStore::new();
    let gm = || s_policy(GLOBAL_MANAGEMENT_POLICY_ID);
    assert_eq!(
        s.acl_policy_delete(1, GLOBAL_MANAGEMENT_POLICY_ID),
        Err(AclError::BuiltinDelete("global-management".into()))
    );
    let changed = AclPolicy {
        rules: "acl = \"read\"".into(),
        ..gm()
    };
    assert_eq!(
        s.acl_policy_set(1, changed, false).unwrap_err().to_string(),
        "Changing the Rules for the builtin global-management policy is not permitted"
    );
    let with_dc = AclPolicy {
        datacenters: vec!["dc1".into()],
        ..gm()
    };
    assert_eq!(
        s.acl_policy_set(1, with_dc, false),
        Err(AclError::BuiltinDatacenters("global-management".into()))
    );
    // A rename is allowed, and stores the builtin.
    let renamed = s
        .acl_policy_set(
            2,
            AclPolicy {
                name: "root".into(),
                ..gm()
            },
            false,
        )
        .unwrap();
    assert_eq!((renamed.create_index, renamed.modify_index), (2, 2));
    assert_eq!(
        s.acl_policy_delete(3, GLOBAL_MANAGEMENT_POLICY_ID),
        Err(AclError::BuiltinDelete("root".into()))
    );
    // The read-only builtin keeps its reserved name through an update.
    let ro = AclPolicy {
        description: "mine".into(),
        ..s_policy(GLOBAL_READ_ONLY_POLICY_ID)
    };
    s.acl_policy_set(4, ro, false).unwrap();
    assert_eq!(
        s.acl_token_delete(5, ANONYMOUS_TOKEN_ID)
            .unwrap_err()
            .to_string(),
        "Delete operation not permitted on the anonymous token"
    );
}

#[test]
fn builtins_show_before_initialize_which_then_stores_them() {
    let mut s = StateStore::new();
    let (idx, list) = s.acl_policy_list(None);
    assert_eq!(idx, 1);
    assert_eq!(
        list.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["builtin/global-read-only", "global-management"]
    );
    assert!(list
        .iter()
        .all(|p| p.create_index == 0 && !p.hash.is_empty()));
    let anon = s.acl_token_get_by_secret("anonymous", None).1.unwrap();
    assert_eq!(anon.accessor_id, ANONYMOUS_TOKEN_ID);
    assert!(anon.policies.is_empty());

    let w = waiter();
    s.acl_resolve("", at(0), Some(&w));
    assert_eq!(
        apply(&mut s, 3, &Command::AclInitialize { now: at(10) }),
        CommandResult::Bool(true)
    );
    assert!(fired(&w));
    let gm = s
        .acl_policy_get(GLOBAL_MANAGEMENT_POLICY_ID, None)
        .1
        .unwrap();
    assert_eq!(
        (gm.create_index, gm.rules.as_str()),
        (3, GLOBAL_MANAGEMENT_RULES)
    );
    let anon = s.acl_token_get(ANONYMOUS_TOKEN_ID, None).1.unwrap();
    assert_eq!((anon.create_index, anon.create_time), (3, at(10)));
    assert!(!s.acl_initialize(4, at(20)), "nothing left to do");
    assert_eq!(s.table_index(T_ACL_POLICIES), 3);

    // Rules from an older binary are brought up to date; the name stays.
    let mut snap = s.snapshot();
    for p in &mut snap.acl_policies {
        p.rules = "old".into();
        p.name = format!("{}-renamed", p.name.replace('/', "-"));
    }
    s.restore(snap);
    assert!(s.acl_initialize(5, at(30)));
    let gm = s
        .acl_policy_get(GLOBAL_MANAGEMENT_POLICY_ID, None)
        .1
        .unwrap();
    assert_eq!(
        (
            gm.name.as_str(),
            gm.rules.as_str(),
            gm.create_index,
            gm.modify_index
        ),
        ("global-management-renamed", GLOBAL_MANAGEMENT_RULES, 3, 5)
    );
}

#[test]
fn dangling_links_are_dropped_on_read_not_on_delete() {
    let mut s = StateStore::new();
    s.acl_policy_set(1, policy(&uuid(50), "web"), true).unwrap();
    let t = AclToken {
        policies: vec![by_name("web")],
        ..token(1)
    };
    s.acl_token_set(2, t, true).unwrap();
    assert_eq!(s.acl_policy_delete(3, &uuid(50)), Ok(true));
    assert_eq!(s.acl_policy_delete(4, &uuid(50)), Ok(false));
    assert!(s
        .acl_token_get(&uuid(1), None)
        .1
        .unwrap()
        .policies
        .is_empty());
    assert_eq!(s.snapshot().acl_tokens[0].policies.len(), 1, "still stored");
}

#[test]
fn every_write_wakes_its_readers_and_moves_the_index() {
    let mut s = StateStore::new();
    let (w_tok, w_pol, w_res) = (waiter(), waiter(), waiter());
    let (i0, _) = s.acl_token_list(None, None, None, Some(&w_tok));
    s.acl_policy_list(Some(&w_pol));
    s.acl_resolve("x", at(0), Some(&w_res));

    s.acl_policy_set(7, policy(&uuid(50), "web"), true).unwrap();
    assert!(fired(&w_pol) && fired(&w_res) && !fired(&w_tok));
    assert_eq!(s.acl_policy_list(None).0, 7);

    let w_pol = waiter();
    s.acl_policy_list(Some(&w_pol));
    s.acl_token_set(8, token(1), true).unwrap();
    assert!(fired(&w_tok) && !fired(&w_pol));
    let (i1, _) = s.acl_token_list(None, None, None, None);
    assert!(i1 > i0);
    let (i2, _) = s.acl_resolve("x", at(0), None);
    assert_eq!(i2, 8);

    let w_tok = waiter();
    s.acl_token_get(&uuid(1), Some(&w_tok));
    s.acl_token_delete(9, &uuid(1)).unwrap();
    assert!(fired(&w_tok));
    assert_eq!(s.acl_token_get(&uuid(1), None), (9, None));
}

#[test]
fn snapshots_carry_the_acl_tables() {
    let mut s = StateStore::new();
    s.acl_initialize(1, at(0));
    s.acl_policy_set(2, policy(&uuid(50), "web"), true).unwrap();
    s.acl_role_set(3, role(&uuid(60), "ops", vec![by_name("web")]), true)
        .unwrap();
    s.acl_bootstrap(4, bootstrap_token(1), None).unwrap();
    let snap = s.snapshot();
    let json = serde_json::to_vec(&snap).unwrap();

    let mut t = StateStore::new();
    let w = waiter();
    t.acl_role_list(None, Some(&w));
    t.restore(serde_json::from_slice(&json).unwrap());
    assert!(fired(&w));
    assert_eq!(t.snapshot(), snap);
    assert_eq!(t.acl_bootstrap_state(None).1, Some(4));
    assert_eq!(
        t.acl_policy_get_by_name("web", None).1.map(|p| p.id),
        Some(uuid(50))
    );
    assert!(t.acl_token_get_by_secret(&uuid(1001), None).1.is_some());
    // Raft entries are MessagePack: the types round-trip there too.
    let bytes = rmp_serde::to_vec_named(&snap).unwrap();
    assert_eq!(
        rmp_serde::from_slice::<StoreSnapshot>(&bytes).unwrap(),
        snap
    );

    // A snapshot from before ACLs existed restores, with the builtins
    // showing as unstored.
    let mut old: serde_json::Value = serde_json::from_slice(&json).unwrap();
    for field in [
        "acl_tokens",
        "acl_policies",
        "acl_roles",
        "acl_bootstrap_index",
    ] {
        old.as_object_mut().unwrap().remove(field);
    }
    t.restore(serde_json::from_value(old).unwrap());
    assert_eq!(t.acl_bootstrap_state(None).1, None);
    assert_eq!(t.acl_policy_list(None).1.len(), 2);
}
