//! The ACL keys: both file formats, Consul's defaults and the primary
//! datacenter's fallbacks, errors that name the file and the key; the
//! legacy names and which name wins are in `legacy.rs`.

mod legacy;

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::{AclConfig, AclDefaultPolicy, AclDownPolicy};

/// Builds from `files` (name, text), written in that order into a fresh
/// config dir, plus `flags`.
fn build_with(files: &[(&str, &str)], flags: AgentFlags) -> Result<RuntimeConfig, String> {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    build(&AgentFlags {
        config_dir: vec![d.path().to_path_buf()],
        data_dir: Some(d.path().join("data")),
        ..flags
    })
    .map_err(|e| e.to_string())
}

fn built(files: &[(&str, &str)]) -> RuntimeConfig {
    build_with(files, AgentFlags::default()).unwrap()
}

fn error(file: &str, text: &str) -> String {
    build_with(&[(file, text)], AgentFlags::default()).unwrap_err()
}

/// The warnings, with the temporary dir cut off the file names.
fn warnings(cfg: &RuntimeConfig) -> Vec<String> {
    cfg.warnings
        .iter()
        .map(|w| {
            let (file, rest) = w.split_once(": ").unwrap();
            let name = Path::new(file).file_name().unwrap().to_string_lossy();
            format!("{name}: {rest}")
        })
        .collect()
}

const FULL_HCL: &str = r#"
primary_datacenter = "DC-Main"
acl {
  enabled                  = true
  default_policy           = "deny"
  down_policy              = "async-cache"
  policy_ttl               = "1m"
  role_ttl                 = "2m"
  token_ttl                = "90s"
  enable_key_list_policy   = true
  enable_token_persistence = true
  enable_token_replication = true
  tokens {
    initial_management               = "im"
    default                          = "df"
    agent                            = "ag"
    agent_recovery                   = "ar"
    replication                      = "rp"
    dns                              = "dn"
    config_file_service_registration = "cf"
  }
}
"#;

const FULL_JSON: &str = r#"{
  "primary_datacenter": "DC-Main",
  "acl": {
    "enabled": true, "default_policy": "deny", "down_policy": "async-cache",
    "policy_ttl": "1m", "role_ttl": "2m", "token_ttl": "90s",
    "enable_key_list_policy": true, "enable_token_persistence": true,
    "enable_token_replication": true,
    "tokens": {
      "initial_management": "im", "default": "df", "agent": "ag",
      "agent_recovery": "ar", "replication": "rp", "dns": "dn",
      "config_file_service_registration": "cf"
    }
  }
}"#;

#[test]
fn config_acl_every_key_in_hcl_and_json() {
    for (file, text) in [("acl.hcl", FULL_HCL), ("acl.json", FULL_JSON)] {
        let cfg = built(&[(file, text)]);
        let a = &cfg.acl;
        assert!(a.enabled && cfg.acl_enforced(), "{file}");
        assert_eq!(a.default_policy, AclDefaultPolicy::Deny);
        assert_eq!(a.down_policy, AclDownPolicy::AsyncCache);
        assert_eq!(
            [a.policy_ttl, a.role_ttl, a.token_ttl],
            [60, 120, 90].map(Duration::from_secs)
        );
        assert!(a.enable_key_list_policy && a.enable_token_persistence);
        assert!(a.enable_token_replication);
        let t = &a.tokens;
        assert_eq!(
            [
                &t.initial_management,
                &t.default,
                &t.agent,
                &t.agent_recovery
            ],
            ["im", "df", "ag", "ar"]
        );
        let rest = [&t.replication, &t.dns, &t.config_file_service_registration];
        assert_eq!(rest, ["rp", "dn", "cf"]);
        assert_eq!(
            cfg.primary_datacenter, "dc-main",
            "lowercased as Consul does"
        );
        // Every key is acted on: nothing to warn about.
        assert!(warnings(&cfg).is_empty(), "{:?}", warnings(&cfg));
    }
}

#[test]
fn config_acl_defaults_are_consuls() {
    let cfg = built(&[]);
    assert_eq!(cfg.acl, AclConfig::default());
    let a = &cfg.acl;
    assert!(!a.enabled && !cfg.acl_enforced());
    assert_eq!(
        (a.default_policy.as_str(), a.down_policy.as_str()),
        ("allow", "extend-cache")
    );
    assert_eq!(
        [a.policy_ttl, a.role_ttl, a.token_ttl],
        [Duration::from_secs(30); 3]
    );
    assert!(!a.enable_key_list_policy && !a.enable_token_persistence);
    assert!(!a.enable_token_replication && a.tokens.agent.is_empty());
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    // Unset, the primary datacenter is the agent's own, from a file or a flag.
    assert_eq!(cfg.primary_datacenter, "dc1");
    let cfg = built(&[("dc.json", r#"{"datacenter": "East"}"#)]);
    assert_eq!(cfg.primary_datacenter, "east");
    let flags = AgentFlags {
        datacenter: Some("west".into()),
        ..Default::default()
    };
    let cfg = build_with(&[("dc.json", r#"{"datacenter": "east"}"#)], flags).unwrap();
    assert_eq!(
        cfg.primary_datacenter, "west",
        "the flag's datacenter, known last"
    );
    // An empty primary_datacenter is unset too, as in Consul.
    let cfg = built(&[("p.hcl", "primary_datacenter = \"\"\ndatacenter = \"x\"")]);
    assert_eq!(cfg.primary_datacenter, "x");
}

/// A file, its text, the key the error must name and what it must say.
#[rustfmt::skip]
const BAD: &[(&str, &str, &str, &str)] = &[
    ("p.json", r#"{"acl": {"default_policy": "Deny"}}"#, "acl.default_policy", r#"Unsupported default ACL policy: "Deny" (must be "allow" or "deny")"#),
    ("p.hcl", "acl_default_policy = \"manage\"", "acl_default_policy", "Unsupported default ACL policy"),
    ("d.json", r#"{"acl": {"down_policy": "cache"}}"#, "acl.down_policy", r#"must be "allow", "deny", "extend-cache" or "async-cache""#),
    ("d.hcl", "acl_down_policy = \"x\"", "acl_down_policy", "Unsupported down ACL policy"),
    ("t.json", r#"{"acl": {"token_ttl": "30 seconds"}}"#, "acl.token_ttl", "invalid duration"),
    ("t.hcl", "acl_ttl = \"soon\"", "acl_ttl", "invalid duration"),
    ("r.hcl", "acl { role_ttl = \"-1s\" }", "acl.role_ttl", "negative"),
    ("k.json", r#"{"acl": {"enable": true}}"#, "acl.enable", "unknown acl key"),
    ("k.hcl", "acl {\n  tokens {\n    agnet = \"x\"\n  }\n}", "acl.tokens.agnet", "unknown acl.tokens key"),
    ("k2.json", r#"{"acl": {"tokens.agent": "x"}}"#, "acl.tokens.agent", "unknown acl key"),
    ("k3.json", r#"{"acl": {"disabled_ttl": "30s"}}"#, "acl.disabled_ttl", "unknown acl key"),
    ("b.json", r#"{"acl": {"enabled": "yes"}}"#, "acl.enabled", "expected a boolean"),
    ("s.json", r#"{"acl_token": 5}"#, "acl_token", "expected a string"),
    ("o.json", r#"{"acl": "on"}"#, "acl", "expected an object"),
    ("dc.json", r#"{"primary_datacenter": "dc 1"}"#, "primary_datacenter", "can only contain lowercase alphanumeric"),
    ("dc.hcl", "acl_datacenter = \"dc.1\"", "acl_datacenter", "can only contain lowercase alphanumeric"),
    ("m.json", r#"{"acl": {"tokens": {"managed_service_provider": [{"id": "x"}]}}}"#, "acl.tokens.managed_service_provider[0].id", "unknown"),
];

#[test]
fn config_acl_errors_name_the_file_and_the_key() {
    for &(file, text, key, problem) in BAD {
        let e = error(file, text);
        assert!(
            e.contains(file) && e.contains(&format!(": {key}: ")) && e.contains(problem),
            "{file}: {e}"
        );
    }
    // A bad value is refused even where the current name overrides it.
    let e = error(
        "both.json",
        r#"{"acl_ttl": "x", "acl": {"token_ttl": "1s"}}"#,
    );
    assert!(e.contains("acl_ttl"), "{e}");
}

#[test]
fn config_acl_enterprise_keys_are_accepted_with_consuls_warning() {
    let cfg = built(&[(
        "ent.hcl",
        r#"acl {
  msp_disable_bootstrap = true
  tokens {
    managed_service_provider = [{ accessor_id = "a", secret_id = "s" }]
  }
}"#,
    )]);
    assert_eq!(
        warnings(&cfg),
        [
            "ent.hcl: \"acl.msp_disable_bootstrap\" is a Consul Enterprise configuration and will have no effect",
            "ent.hcl: \"acl.tokens.managed_service_provider\" is a Consul Enterprise configuration and will have no effect",
        ]
    );
}

#[test]
fn config_acl_tokens_are_hidden_from_debug_output_and_validate_reads_acls() {
    let cfg = built(&[(
        "t.json",
        r#"{"acl": {"tokens": {"agent": "s3cr3t-agent"}}}"#,
    )]);
    let shown = format!("{cfg:?}");
    assert!(
        !shown.contains("s3cr3t") && shown.contains("agent: \"hidden\""),
        "{shown}"
    );
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.hcl"), FULL_HCL).unwrap();
    let cfg = validate_paths(&[d.path().to_path_buf()]).unwrap();
    assert!(cfg.acl_enforced() && cfg.primary_datacenter == "dc-main");
    std::fs::write(d.path().join("b.json"), r#"{"acl": {"down_policy": "no"}}"#).unwrap();
    let e = validate_paths(&[d.path().to_path_buf()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("b.json") && e.contains("acl.down_policy"), "{e}");
}

#[test]
fn config_service_and_check_tokens_are_read_and_hidden_from_debug() {
    let cfg = built(&[(
        "svc.hcl",
        r#"
service {
  name  = "web"
  token = "web-secret"
  check { ttl = "10s" }
}
check {
  name  = "mem"
  ttl   = "10s"
  Token = "mem-secret"
}
"#,
    )]);
    assert_eq!(cfg.services[0].token.get(), Some("web-secret"));
    assert_eq!(cfg.checks[0].token.get(), Some("mem-secret"));
    // An inline check names none: its service's is used (see `Local`).
    assert_eq!(cfg.services[0].checks[0].token.get(), None);
    let shown = format!("{:?} {:?}", cfg.services, cfg.checks);
    assert!(
        !shown.contains("secret") && shown.contains("hidden"),
        "{shown}"
    );
}
