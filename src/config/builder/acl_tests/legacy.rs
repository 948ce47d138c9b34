//! The ACL keys' names: every legacy one, with its warning, and which
//! name wins within a file and across files.

use std::time::Duration;

use super::*;

#[test]
fn config_acl_every_legacy_name_maps_and_warns_with_the_file() {
    let cfg = built(&[(
        "old.hcl",
        r#"
acl_datacenter             = "Legacy"
acl_default_policy         = "deny"
acl_down_policy            = "deny"
acl_ttl                    = "45s"
acl_token                  = "df"
acl_agent_token            = "ag"
acl_agent_master_token     = "ar"
acl_master_token           = "im"
acl_replication_token      = "rp"
enable_acl_replication     = false
acl_enable_key_list_policy = true
acl_enforce_version_8      = true
"#,
    )]);
    let a = &cfg.acl;
    assert_eq!(cfg.primary_datacenter, "legacy");
    assert!(a.enabled, "acl_datacenter turns ACLs on");
    assert_eq!(
        (a.default_policy, a.down_policy),
        (AclDefaultPolicy::Deny, AclDownPolicy::Deny)
    );
    assert_eq!(a.token_ttl, Duration::from_secs(45));
    assert_eq!(
        a.policy_ttl,
        Duration::from_secs(30),
        "acl_ttl is token_ttl only"
    );
    let t = &a.tokens;
    assert_eq!(
        [
            &t.default,
            &t.agent,
            &t.agent_recovery,
            &t.initial_management,
            &t.replication
        ],
        ["df", "ag", "ar", "im", "rp"]
    );
    assert!(
        a.enable_token_replication,
        "a replication token turns it on, over enable_acl_replication"
    );
    assert!(a.enable_key_list_policy);
    let moved = |old: &str, new: &str| {
        format!("old.hcl: The '{old}' field is deprecated. Use the '{new}' field instead.")
    };
    assert_eq!(
        warnings(&cfg),
        [
            moved("acl_agent_master_token", "acl.tokens.agent_recovery"),
            moved("acl_agent_token", "acl.tokens.agent"),
            moved("acl_token", "acl.tokens.default"),
            moved("acl_master_token", "acl.tokens.initial_management"),
            moved("acl_replication_token", "acl.tokens.replication"),
            moved("enable_acl_replication", "acl.enable_token_replication"),
            moved("acl_datacenter", "primary_datacenter"),
            moved("acl_default_policy", "acl.default_policy"),
            moved("acl_down_policy", "acl.down_policy"),
            moved("acl_ttl", "acl.token_ttl"),
            moved("acl_enable_key_list_policy", "acl.enable_key_list_policy"),
            "old.hcl: config key \"acl_enforce_version_8\" is deprecated and should be removed"
                .into(),
        ]
    );
    // The renamed tokens inside acl.tokens, in JSON.
    let cfg = built(&[(
        "t.json",
        r#"{"acl": {"tokens": {"master": "m", "agent_master": "a"}}}"#,
    )]);
    assert_eq!(
        (
            cfg.acl.tokens.initial_management.as_str(),
            cfg.acl.tokens.agent_recovery.as_str()
        ),
        ("m", "a")
    );
    assert_eq!(
        warnings(&cfg),
        [
            "t.json: The 'acl.tokens.agent_master' field is deprecated. Use the 'acl.tokens.agent_recovery' field instead.",
            "t.json: The 'acl.tokens.master' field is deprecated. Use the 'acl.tokens.initial_management' field instead.",
        ]
    );
    assert!(!cfg.acl.enabled, "tokens alone do not turn ACLs on");
    // enable_acl_replication on its own.
    let cfg = built(&[("r.json", r#"{"enable_acl_replication": true}"#)]);
    assert!(cfg.acl.enable_token_replication);
}

#[test]
fn config_acl_in_one_file_the_current_name_wins_whatever_the_order() {
    let cfg = built(&[(
        "both.hcl",
        r#"
acl_master_token = "top-level"
acl {
  default_policy = "deny"
  tokens {
    master             = "renamed"
    initial_management = "current"
    agent_master       = "renamed"
    agent              = "current"
  }
}
acl_agent_master_token = "top-level"
acl_agent_token        = "legacy"
acl_default_policy     = "allow"
primary_datacenter     = "current"
acl_datacenter         = "legacy"
"#,
    )]);
    let t = &cfg.acl.tokens;
    assert_eq!(
        (t.initial_management.as_str(), t.agent.as_str()),
        ("current", "current")
    );
    assert_eq!(
        t.agent_recovery, "renamed",
        "acl.tokens.agent_master comes before acl_agent_master_token"
    );
    assert_eq!(cfg.acl.default_policy, AclDefaultPolicy::Deny);
    assert_eq!(cfg.primary_datacenter, "current");
    let w = warnings(&cfg);
    assert_eq!(w.len(), 7, "the overridden legacy names still warn: {w:?}");
    // Two legacy names set a flag even over the current key (Consul's deprecated.go).
    let cfg = built(&[(
        "forced.json",
        r#"{"acl": {"enabled": false, "enable_token_replication": false},
            "acl_datacenter": "dc1", "acl_replication_token": "r"}"#,
    )]);
    assert!(cfg.acl.enabled && cfg.acl.enable_token_replication);
}

#[test]
fn config_acl_across_files_the_later_file_wins() {
    let cfg = built(&[
        (
            "a.json",
            r#"{"acl": {"tokens": {"initial_management": "a"}, "token_ttl": "10s"}}"#,
        ),
        ("b.json", r#"{"acl_master_token": "b", "acl_ttl": "20s"}"#),
    ]);
    assert_eq!(cfg.acl.tokens.initial_management, "b");
    assert_eq!(cfg.acl.token_ttl, Duration::from_secs(20));
    let cfg = built(&[
        (
            "a.json",
            r#"{"acl_master_token": "a", "acl_datacenter": "old"}"#,
        ),
        (
            "b.hcl",
            "acl {\n  tokens = { initial_management = \"b\" }\n}",
        ),
    ]);
    assert_eq!(cfg.acl.tokens.initial_management, "b");
    assert_eq!(cfg.primary_datacenter, "old", "b.hcl leaves it alone");
    // The last file to set `acl.enabled` decides, with nothing to warn
    // about either way.
    let on = r#"{"acl": {"enabled": true}}"#;
    let cfg = built(&[("a.json", on), ("b.json", r#"{"acl": {"enabled": false}}"#)]);
    assert!(
        !cfg.acl_enforced() && cfg.warnings.is_empty(),
        "{:?}",
        cfg.warnings
    );
    let cfg = built(&[
        ("a.json", on),
        ("b.json", r#"{"acl": {"default_policy": "deny"}}"#),
        ("c.json", on),
    ]);
    assert!(
        cfg.acl_enforced() && cfg.warnings.is_empty(),
        "{:?}",
        cfg.warnings
    );
}
