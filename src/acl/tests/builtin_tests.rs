//! The builtin policies, service and node identities, and name checks.

use crate::acl::{
    global_management, global_read_only, node_identity_policy, node_identity_rules,
    node_identity_rules_text, service_identity_policy, service_identity_rules,
    service_identity_rules_text, valid_node_identity_name, valid_role_name,
    valid_service_identity_name, validate_policy_name, Access, Authorizer, AuthorizerConfig,
    DefaultPolicy, PolicyNameError, Resource, Rules, GLOBAL_MANAGEMENT_NAME,
    GLOBAL_MANAGEMENT_RULES, GLOBAL_READ_ONLY_NAME, GLOBAL_READ_ONLY_RULES,
};

use Access::{List, Read, Write};

const NAMES: [&str; 4] = ["", "x", "app/config", "web-sidecar-proxy"];

fn parse(text: &str) -> Rules {
    match Rules::parse(text) {
        Ok(rules) => rules,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

#[test]
fn acl_builtin_texts_match_the_built_rules() {
    assert_eq!(parse(GLOBAL_MANAGEMENT_RULES), global_management().rules);
    assert_eq!(parse(GLOBAL_READ_ONLY_RULES), global_read_only().rules);
    assert_eq!(global_management().name, GLOBAL_MANAGEMENT_NAME);
    assert_eq!(global_read_only().name, GLOBAL_READ_ONLY_NAME);
}

#[test]
fn acl_builtin_management_allows_everything() {
    let authz = Authorizer::management();
    for resource in Resource::ALL {
        for access in [Read, List, Write] {
            for name in NAMES {
                let d = authz.check(resource, access, name);
                assert!(d.allowed, "{resource}:{access} on {name:?}: {d}");
                assert!(
                    d.to_string().ends_with("in policy \"global-management\""),
                    "{d}"
                );
            }
        }
        if resource.is_named() {
            assert!(authz.check_all(resource, Write).allowed, "{resource}");
            assert!(authz.check_any(resource, Write).allowed, "{resource}");
        }
    }
    assert!(authz.key_write_prefix("").allowed);
    assert_eq!(
        authz.check(Resource::Key, Write, "a").to_string(),
        r#"allowed by rule key_prefix "" policy "write" in policy "global-management""#
    );
    assert_eq!(
        authz.check(Resource::Acl, Write, "").to_string(),
        r#"allowed by rule acl = "write" in policy "global-management""#
    );
}

#[test]
fn acl_builtin_read_only_reads_everything() {
    for list_policy in [false, true] {
        let config = AuthorizerConfig {
            default_policy: DefaultPolicy::Allow,
            enable_key_list_policy: list_policy,
        };
        let authz = Authorizer::global_read_only(config);
        for resource in Resource::ALL {
            for name in NAMES {
                let read = authz.check(resource, Read, name);
                assert!(read.allowed, "{resource}:read {read}");
                let write = authz.check(resource, Write, name);
                assert!(!write.allowed, "{resource}:write {write}");
                assert!(
                    write
                        .to_string()
                        .ends_with("in policy \"builtin/global-read-only\""),
                    "{write}"
                );
            }
            if resource.is_named() {
                assert!(authz.check_all(resource, Read).allowed, "{resource}");
                assert!(!authz.check_any(resource, Write).allowed, "{resource}");
            }
        }
        // `read` on keys is not `list`: with the list policy on, the KV
        // store cannot be listed (as in Consul).
        assert_eq!(authz.check(Resource::Key, List, "").allowed, !list_policy);
        assert!(!authz.key_write_prefix("").allowed);
    }
    let authz = Authorizer::global_read_only(AuthorizerConfig::default());
    assert_eq!(
        authz.check(Resource::Service, Write, "web").to_string(),
        r#"denied by rule service_prefix "" policy "read" in policy "builtin/global-read-only""#
    );
    assert_eq!(
        authz.check(Resource::Intention, Read, "web").to_string(),
        r#"allowed by rule service_prefix "" intentions "read" in policy "builtin/global-read-only""#
    );
}

#[test]
fn acl_identity_rules_match_consul_templates() {
    assert_eq!(
        parse(&service_identity_rules_text("web")),
        service_identity_rules("web")
    );
    assert_eq!(
        parse(&node_identity_rules_text("node-1")),
        node_identity_rules("node-1")
    );
    assert_eq!(
        service_identity_rules_text("web"),
        "\nservice \"web\" {\n\tpolicy = \"write\"\n}\nservice \"web-sidecar-proxy\" {\n\tpolicy = \"write\"\n}\n\
         service_prefix \"\" {\n\tpolicy = \"read\"\n}\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}"
    );
    assert_eq!(
        node_identity_rules_text("node-1"),
        "\nnode \"node-1\" {\n\tpolicy = \"write\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}"
    );
}

#[test]
fn acl_identity_service_grants() {
    let policy = match service_identity_policy("web", &[], "dc1") {
        Some(p) => p,
        None => panic!("applies everywhere"),
    };
    assert_eq!(policy.name, "service-identity/web");
    let authz = Authorizer::compile(&[policy], AuthorizerConfig::default());
    let rows: &[(Resource, Access, &str, &str)] = &[
        (
            Resource::Service,
            Write,
            "web",
            r#"allowed by rule service "web" policy "write" in policy "service-identity/web""#,
        ),
        (
            Resource::Service,
            Write,
            "web-sidecar-proxy",
            r#"allowed by rule service "web-sidecar-proxy" policy "write" in policy "service-identity/web""#,
        ),
        (
            Resource::Service,
            Write,
            "webx",
            r#"denied by rule service_prefix "" policy "read" in policy "service-identity/web""#,
        ),
        (
            Resource::Service,
            Read,
            "db",
            r#"allowed by rule service_prefix "" policy "read" in policy "service-identity/web""#,
        ),
        (
            Resource::Node,
            Read,
            "n1",
            r#"allowed by rule node_prefix "" policy "read" in policy "service-identity/web""#,
        ),
        (
            Resource::Node,
            Write,
            "n1",
            r#"denied by rule node_prefix "" policy "read" in policy "service-identity/web""#,
        ),
        (
            Resource::Key,
            Read,
            "k",
            r#"denied by default_policy "deny""#,
        ),
    ];
    for (resource, access, name, expected) in rows {
        assert_eq!(authz.check(*resource, *access, name).to_string(), *expected);
    }
}

#[test]
fn acl_identity_node_grants() {
    let policy = match node_identity_policy("node-1", "dc1", "dc1") {
        Some(p) => p,
        None => panic!("applies in its datacenter"),
    };
    assert_eq!(policy.name, "node-identity/node-1");
    let authz = Authorizer::compile(&[policy], AuthorizerConfig::default());
    let rows: &[(Resource, Access, &str, &str)] = &[
        (
            Resource::Node,
            Write,
            "node-1",
            r#"allowed by rule node "node-1" policy "write" in policy "node-identity/node-1""#,
        ),
        // No node_prefix in a node identity: other nodes fall to the default.
        (
            Resource::Node,
            Read,
            "node-2",
            r#"denied by default_policy "deny""#,
        ),
        (
            Resource::Service,
            Read,
            "web",
            r#"allowed by rule service_prefix "" policy "read" in policy "node-identity/node-1""#,
        ),
        (
            Resource::Service,
            Write,
            "web",
            r#"denied by rule service_prefix "" policy "read" in policy "node-identity/node-1""#,
        ),
    ];
    for (resource, access, name, expected) in rows {
        assert_eq!(authz.check(*resource, *access, name).to_string(), *expected);
    }
}

#[test]
fn acl_identity_datacenter_scoping() {
    let dcs = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let service_cases: &[(&[&str], &str, bool)] = &[
        (&[], "dc1", true),
        (&["dc1"], "dc1", true),
        (&["dc1", "dc2"], "dc2", true),
        (&["dc2"], "dc1", false),
    ];
    for (list, here, applies) in service_cases {
        assert_eq!(
            service_identity_policy("web", &dcs(list), here).is_some(),
            *applies,
            "{list:?} in {here}"
        );
    }
    let node_cases = [
        ("dc1", "dc1", true),
        ("dc1", "dc2", false),
        ("", "dc1", false),
    ];
    for (bound, here, applies) in node_cases {
        assert_eq!(
            node_identity_policy("n", bound, here).is_some(),
            applies,
            "{bound} in {here}"
        );
    }
}

#[test]
fn acl_names() {
    let long_ok = "a".repeat(128);
    let long_bad = "a".repeat(129);
    let policy_cases: &[(&str, bool)] = &[
        ("ops", true),
        ("Ops-Team_2", true),
        (&long_ok, true),
        (&long_bad, false),
        ("", false),
        ("builtin/global-read-only", false),
        ("has space", false),
        ("dot.name", false),
        ("ünï", false),
        // Consul's current rule: one '/' inside a name, never leading.
        ("team/web", true),
        ("team/", true),
        ("/web", false),
        ("a/b/c", false),
        ("web*", false),
    ];
    for (name, valid) in policy_cases {
        assert_eq!(validate_policy_name(name).is_ok(), *valid, "{name:?}");
    }
    // The texts the API answers with (400), Consul's words.
    for (name, error) in [
        (long_bad.as_str(), PolicyNameError::Length),
        ("", PolicyNameError::Length),
        ("builtin/x", PolicyNameError::Reserved),
        ("/x", PolicyNameError::Reserved),
        ("a b", PolicyNameError::Chars),
    ] {
        assert_eq!(validate_policy_name(name), Err(error), "{name:?}");
    }
    assert!(valid_role_name("ops_team-1") && valid_role_name(&"r".repeat(256)));
    for bad in ["ops team", "", "a/b", &"r".repeat(257)] {
        assert!(!valid_role_name(bad), "{bad:?}");
    }
    let long_id = "a".repeat(256);
    let too_long_id = "a".repeat(257);
    let identity_cases: &[(&str, bool)] = &[
        ("web", true),
        ("web-1_a", true),
        ("a", true),
        ("0", true),
        (&long_id, true),
        (&too_long_id, false),
        ("", false),
        ("Web", false),
        ("-web", false),
        ("web-", false),
        ("_web", false),
        ("web.1", false),
    ];
    for (name, valid) in identity_cases {
        assert_eq!(valid_service_identity_name(name), *valid, "{name:?}");
        assert_eq!(valid_node_identity_name(name), *valid, "{name:?}");
    }
}
