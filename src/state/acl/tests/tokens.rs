//! Bootstrap and its reset, token writes and their checks, expiry and
//! reaping, resolution.

use super::*;

#[test]
fn bootstrap_works_once_then_reports_its_index() {
    let mut s = StateStore::new();
    assert_eq!(s.acl_bootstrap_state(None).1, None);
    let t = s.acl_bootstrap(5, bootstrap_token(1), None).unwrap();
    assert_eq!(
        t.policies,
        [AclLink::new(
            GLOBAL_MANAGEMENT_POLICY_ID,
            GLOBAL_MANAGEMENT_POLICY_NAME
        )]
    );
    assert_eq!((t.create_index, t.modify_index), (5, 5));
    assert!(!t.hash.is_empty());
    assert_eq!(s.acl_bootstrap_state(None), (5, Some(5)));

    let again = apply(
        &mut s,
        6,
        &Command::AclBootstrap {
            token: bootstrap_token(2),
            reset_index: None,
        },
    );
    assert_eq!(
        again,
        CommandResult::Rejected("ACL bootstrap no longer allowed (reset index: 5)".into())
    );
    assert!(s.acl_token_get(&uuid(2), None).1.is_none());
}

#[test]
fn the_reset_index_allows_exactly_one_more_bootstrap() {
    let mut s = StateStore::new();
    s.acl_bootstrap(5, bootstrap_token(1), None).unwrap();
    assert_eq!(
        s.acl_bootstrap(6, bootstrap_token(2), Some(4)),
        Err(AclError::InvalidResetIndex {
            specified: 4,
            reset_index: 5
        })
    );
    assert_eq!(
        AclError::InvalidResetIndex {
            specified: 4,
            reset_index: 5
        }
        .to_string(),
        "Invalid bootstrap reset index (specified 4, reset index: 5)"
    );
    s.acl_bootstrap(7, bootstrap_token(2), Some(5)).unwrap();
    assert_eq!(s.acl_bootstrap_state(None).1, Some(7));
    assert_eq!(
        s.acl_bootstrap(8, bootstrap_token(3), Some(5)),
        Err(AclError::InvalidResetIndex {
            specified: 5,
            reset_index: 7
        }),
        "a reset index works once"
    );
    assert!(
        s.acl_token_get(&uuid(1), None).1.is_some(),
        "the old token stays"
    );
}

#[test]
fn tokens_link_policies_by_name_or_id_and_store_both() {
    let mut s = StateStore::new();
    s.acl_policy_set(1, policy(&uuid(50), "web"), true).unwrap();
    s.acl_policy_set(2, policy(&uuid(51), "db"), true).unwrap();
    let t = AclToken {
        policies: vec![by_name("web"), by_id(&uuid(51)), by_id(&uuid(50))],
        ..token(1)
    };
    let stored = s.acl_token_set(3, t, true).unwrap();
    assert_eq!(
        stored.policies,
        [
            AclLink::new(&uuid(50), "web"),
            AclLink::new(&uuid(51), "db")
        ],
        "names resolved, duplicates dropped"
    );
    let (idx, read) = s.acl_token_get_by_secret(&uuid(1001), None);
    assert_eq!((idx, read), (3, Some(stored)));
}

#[test]
fn an_unknown_policy_or_role_is_refused_and_nothing_is_written() {
    let mut s = StateStore::new();
    for (links, roles, msg) in [
        (
            vec![by_name("nope")],
            vec![],
            "No such ACL policy with name \"nope\"",
        ),
        (
            vec![by_id(&uuid(9))],
            vec![],
            "No such ACL policy with ID \"00000009-1111-2222-3333-444444444444\"",
        ),
        (
            vec![],
            vec![by_name("r")],
            "No such ACL role with name \"r\"",
        ),
    ] {
        let t = AclToken {
            policies: links,
            roles,
            ..token(1)
        };
        let r = apply(
            &mut s,
            4,
            &Command::AclTokenSet {
                token: t,
                create: true,
            },
        );
        assert_eq!(r, CommandResult::Rejected(msg.into()));
    }
    assert_eq!(s.table_index(T_ACL_TOKENS), 0);
    assert!(s.acl_token_get(&uuid(1), None).1.is_none());
    assert_eq!(s.snapshot().acl_tokens, []);
}

#[test]
fn token_lists_filter_by_policy_role_and_service_name() {
    let mut s = StateStore::new();
    s.acl_policy_set(1, policy(&uuid(50), "web"), true).unwrap();
    s.acl_role_set(2, role(&uuid(60), "ops", vec![]), true)
        .unwrap();
    let svc = AclServiceIdentity {
        service_name: "api".into(),
        datacenters: vec![],
    };
    let tokens = [
        AclToken {
            policies: vec![by_name("web")],
            ..token(1)
        },
        AclToken {
            roles: vec![by_name("ops")],
            ..token(2)
        },
        AclToken {
            service_identities: vec![svc],
            ..token(3)
        },
    ];
    for (i, t) in tokens.into_iter().enumerate() {
        s.acl_token_set(10 + i as u64, t, true).unwrap();
    }
    let ids = |l: Vec<AclTokenListStub>| l.into_iter().map(|t| t.accessor_id).collect::<Vec<_>>();
    let (idx, all) = s.acl_token_list(None, None, None, None);
    assert_eq!(idx, 12);
    assert_eq!(
        ids(all),
        [ANONYMOUS_TOKEN_ID.to_string(), uuid(1), uuid(2), uuid(3)]
    );
    assert_eq!(
        ids(s.acl_token_list(Some(&uuid(50)), None, None, None).1),
        [uuid(1)]
    );
    assert_eq!(
        ids(s.acl_token_list(None, Some(&uuid(60)), None, None).1),
        [uuid(2)]
    );
    let by_service = s.acl_token_list(None, None, Some("api"), None).1;
    assert_eq!(by_service[0].secret_id, uuid(1003), "stubs keep the secret");
    assert_eq!(ids(by_service), [uuid(3)]);
}

#[test]
fn token_updates_keep_what_consul_keeps() {
    let mut s = StateStore::new();
    let created = s
        .acl_token_set(
            1,
            AclToken {
                expiration_ttl: Some(Duration::from_secs(60)),
                ..token(1)
            },
            true,
        )
        .unwrap();
    assert_eq!(created.expiration_time, Some(at(60)));
    assert_eq!(created.expiration_ttl, None, "never stored");
    let update = || AclToken {
        secret_id: String::new(),
        create_time: at(500),
        description: "new".into(),
        ..token(1)
    };
    let updated = s.acl_token_set(2, update(), false).unwrap();
    assert_eq!(
        (
            updated.secret_id.as_str(),
            updated.create_time,
            updated.expiration_time,
            updated.create_index,
            updated.modify_index
        ),
        (uuid(1001).as_str(), at(0), Some(at(60)), 1, 2)
    );
    let cases = [
        (
            AclToken {
                secret_id: uuid(7),
                ..update()
            },
            AclError::SecretIdChange,
        ),
        (
            AclToken {
                local: true,
                ..update()
            },
            AclError::LocalToggle(uuid(1)),
        ),
        (
            AclToken {
                expiration_time: Some(at(99)),
                ..update()
            },
            AclError::ExpirationChange(uuid(1)),
        ),
        (
            AclToken {
                accessor_id: uuid(2),
                ..update()
            },
            AclError::TokenNotFound(uuid(2)),
        ),
    ];
    for (t, err) in cases {
        assert_eq!(s.acl_token_set(3, t, false), Err(err));
    }
    assert_eq!(
        s.acl_token_set(3, token(1), true),
        Err(AclError::AccessorIdInUse)
    );
    let reuse_secret = AclToken {
        secret_id: uuid(1),
        ..token(2)
    };
    assert_eq!(
        s.acl_token_set(3, reuse_secret, true),
        Err(AclError::SecretIdInUse),
        "an ID in use as an AccessorID can't be a SecretID"
    );
    let both = AclToken {
        expiration_ttl: Some(Duration::from_secs(1)),
        expiration_time: Some(at(5)),
        ..token(3)
    };
    assert_eq!(
        s.acl_token_set(3, both, true),
        Err(AclError::TtlAndExpirationTime)
    );
}

#[test]
fn expired_tokens_are_reaped_at_the_leaders_time() {
    let mut s = StateStore::new();
    for (n, ttl) in [(1, 10), (2, 20), (3, 30)] {
        let t = AclToken {
            expiration_ttl: Some(Duration::from_secs(ttl)),
            ..token(n)
        };
        s.acl_token_set(n as u64, t, true).unwrap();
    }
    s.acl_token_set(4, token(4), true).unwrap();
    let w = waiter();
    s.acl_token_list(None, None, None, Some(&w));
    assert_eq!(
        apply(
            &mut s,
            5,
            &Command::AclTokensReapExpired {
                now: at(5),
                local_only: false,
            }
        ),
        CommandResult::AclTokensReaped(vec![])
    );
    assert!(!fired(&w), "nothing reaped, nothing woken");
    assert_eq!(s.table_index(T_ACL_TOKENS), 4);
    assert_eq!(
        apply(
            &mut s,
            6,
            &Command::AclTokensReapExpired {
                now: at(20),
                local_only: false,
            }
        ),
        CommandResult::AclTokensReaped(vec![uuid(1)]),
        "a token expiring exactly now is still valid"
    );
    assert!(fired(&w));
    assert_eq!(
        s.acl_tokens_reap_expired(7, at(31), false),
        [uuid(2), uuid(3)]
    );
    let left: Vec<String> = s
        .acl_token_list(None, None, None, None)
        .1
        .into_iter()
        .map(|t| t.accessor_id)
        .collect();
    assert_eq!(left, [ANONYMOUS_TOKEN_ID.to_string(), uuid(4)]);
}

#[test]
fn resolution_goes_through_roles_and_identities() {
    let mut s = StateStore::new();
    s.acl_policy_set(1, policy(&uuid(50), "web"), true).unwrap();
    s.acl_policy_set(2, policy(&uuid(51), "db"), true).unwrap();
    let mut r = role(&uuid(60), "ops", vec![by_name("db"), by_name("web")]);
    r.service_identities = vec![AclServiceIdentity {
        service_name: "api".into(),
        datacenters: vec!["dc2".into()],
    }];
    r.node_identities = vec![AclNodeIdentity {
        node_name: "n1".into(),
        datacenter: "dc1".into(),
    }];
    s.acl_role_set(3, r, true).unwrap();
    let t = AclToken {
        policies: vec![by_name("web")],
        roles: vec![by_name("ops")],
        service_identities: vec![AclServiceIdentity {
            service_name: "api".into(),
            datacenters: vec!["dc1".into()],
        }],
        node_identities: vec![AclNodeIdentity {
            node_name: "n1".into(),
            datacenter: "dc1".into(),
        }],
        expiration_time: Some(at(100)),
        ..token(1)
    };
    s.acl_token_set(4, t, true).unwrap();

    let (idx, resolved) = s.acl_resolve(&uuid(1001), at(50), None);
    let resolved = resolved.unwrap();
    assert_eq!(idx, 4);
    assert_eq!(
        resolved
            .policies
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["web", "db"],
        "direct first, then the role's, once each"
    );
    assert_eq!(resolved.policies[0].rules, policy("", "").rules);
    assert_eq!(resolved.roles.len(), 1);
    assert_eq!(resolved.service_identities.len(), 1);
    assert_eq!(resolved.service_identities[0].datacenters, ["dc1", "dc2"]);
    assert_eq!(resolved.node_identities.len(), 1);

    assert!(
        s.acl_resolve(&uuid(1001), at(101), None).1.is_none(),
        "expired"
    );
    assert!(s.acl_resolve("unknown", at(0), None).1.is_none());
    let anon = s.acl_resolve("", at(0), None).1.unwrap();
    assert_eq!(anon.token.accessor_id, ANONYMOUS_TOKEN_ID);

    // A deleted policy drops out of links and resolution; a renamed role
    // shows its new name.
    s.acl_policy_delete(5, &uuid(51)).unwrap();
    s.acl_role_set(6, role(&uuid(60), "ops2", vec![by_id(&uuid(51))]), false)
        .unwrap_err();
    s.acl_role_set(6, role(&uuid(60), "ops2", vec![by_id(&uuid(50))]), false)
        .unwrap();
    let r = execute(
        &s,
        &Query::AclResolve {
            secret: uuid(1001),
            now: at(0),
        },
        None,
    );
    let QueryResult::AclResolved(Some(r)) = r.1 else {
        panic!("{r:?}")
    };
    assert_eq!(r.token.roles, [AclLink::new(&uuid(60), "ops2")]);
    assert_eq!(r.policies.len(), 1);
}

#[test]
fn token_commands_round_trip_through_messagepack() {
    let cmd = Command::AclTokenSet {
        token: AclToken {
            policies: vec![by_name("web")],
            expiration_time: Some(at(3)),
            expiration_ttl: Some(Duration::from_secs(2)),
            ..token(1)
        },
        create: true,
    };
    let bytes = rmp_serde::to_vec_named(&cmd).unwrap();
    assert_eq!(rmp_serde::from_slice::<Command>(&bytes).unwrap(), cmd);
}
