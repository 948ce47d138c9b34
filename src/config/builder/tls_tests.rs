//! `tls`, its deprecated top-level names, `ports.https`/`ports.http`,
//! `limits`, `addresses`, `pid_file`, and the keys refused or ignored:
//! both file formats, Consul's precedence and warnings, and errors that
//! name the file and the key.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::TlsVersion;

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
    .map_err(|e| {
        // The temporary dir cut off, as in the acl tests.
        e.to_string()
            .replace(&format!("{}/", d.path().display()), "")
    })
}

fn built(files: &[(&str, &str)]) -> RuntimeConfig {
    build_with(files, AgentFlags::default()).unwrap()
}

fn error(file: &str, text: &str) -> String {
    build_with(&[(file, text)], AgentFlags::default()).unwrap_err()
}

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

fn p(s: &str) -> Option<PathBuf> {
    Some(PathBuf::from(s))
}

const PRECEDENCE_HCL: &str = r#"
ca_file   = "/old/ca.pem"
ca_path   = "/old/cas"
cert_file = "/old/cert.pem"
key_file  = "/old/key.pem"
verify_incoming_rpc = true
tls {
  defaults {
    ca_file   = "/defaults/ca.pem"
    cert_file = "/defaults/cert.pem"
    key_file  = "/defaults/key.pem"
    tls_min_version = "TLSv1_3"
  }
  https {
    cert_file = "/https/cert.pem"
    key_file  = "/https/key.pem"
    tls_min_version = "TLSv1_2"
    tls_cipher_suites = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
  }
  internal_rpc {
    verify_server_hostname = true
  }
}
ports { https = 0 }
"#;

const PRECEDENCE_JSON: &str = r#"{
  "ca_file": "/old/ca.pem",
  "ca_path": "/old/cas",
  "cert_file": "/old/cert.pem",
  "key_file": "/old/key.pem",
  "verify_incoming_rpc": true,
  "tls": {
    "defaults": {
      "ca_file": "/defaults/ca.pem",
      "cert_file": "/defaults/cert.pem",
      "key_file": "/defaults/key.pem",
      "tls_min_version": "TLSv1_3"
    },
    "https": {
      "cert_file": "/https/cert.pem",
      "key_file": "/https/key.pem",
      "tls_min_version": "TLSv1_2",
      "tls_cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
    },
    "internal_rpc": {"verify_server_hostname": true}
  },
  "ports": {"https": 0}
}"#;

#[test]
fn config_tls_block_then_defaults_then_deprecated_in_hcl_and_json() {
    for (name, text) in [("t.hcl", PRECEDENCE_HCL), ("t.json", PRECEDENCE_JSON)] {
        let cfg = built(&[(name, text)]);
        let (https, rpc) = (&cfg.tls.https, &cfg.tls.internal_rpc);
        // The block's own keys win, then tls.defaults, then the deprecated
        // top-level key where the file gives no tls.defaults one.
        assert_eq!(https.cert_file, p("/https/cert.pem"), "{name}");
        assert_eq!(https.ca_file, p("/defaults/ca.pem"), "{name}");
        assert_eq!(https.ca_path, p("/old/cas"), "{name}");
        assert_eq!(rpc.cert_file, p("/defaults/cert.pem"), "{name}");
        assert_eq!(https.min_version(), TlsVersion::Tls12, "{name}");
        assert_eq!(rpc.min_version(), TlsVersion::Tls13, "{name}");
        assert_eq!(
            https.tls_cipher_suites,
            [
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            ]
        );
        // verify_incoming_rpc moved to tls.internal_rpc only.
        assert!(rpc.verify_incoming && !https.verify_incoming, "{name}");
        // verify_server_hostname implies verify_outgoing (CVE-2018-19653).
        assert!(rpc.verify_server_hostname && rpc.verify_outgoing, "{name}");
        assert!(!https.verify_outgoing && !https.verify_server_hostname);
        assert_eq!(cfg.ports.https, Some(0), "{name}");
        assert_eq!(
            warnings(&cfg),
            [
                "The 'ca_file' field is deprecated. Use the 'tls.defaults.ca_file' field instead.",
                "The 'ca_path' field is deprecated. Use the 'tls.defaults.ca_path' field instead.",
                "The 'cert_file' field is deprecated. Use the 'tls.defaults.cert_file' field instead.",
                "The 'key_file' field is deprecated. Use the 'tls.defaults.key_file' field instead.",
                "The 'verify_incoming_rpc' field is deprecated. Use the 'tls.internal_rpc.verify_incoming' field instead.",
            ]
            .map(|w| format!("{name}: {w}"))
        );
    }
}

#[test]
fn config_tls_deprecated_keys_alone_set_both_protocols() {
    let cfg = built(&[(
        "old.json",
        r#"{"ca_file": "/ca.pem", "cert_file": "/c.pem", "key_file": "/k.pem",
            "verify_incoming": true, "verify_outgoing": true, "verify_server_hostname": true,
            "tls_min_version": "tls13", "tls_prefer_server_cipher_suites": true}"#,
    )]);
    for proto in [&cfg.tls.https, &cfg.tls.internal_rpc] {
        assert_eq!(proto.ca_file, p("/ca.pem"));
        assert!(proto.has_cert() && proto.verify_incoming && proto.verify_outgoing);
        assert_eq!(proto.tls_min_version.as_deref(), Some("TLSv1_3"));
    }
    assert!(cfg.tls.internal_rpc.verify_server_hostname);
    assert!(!cfg.tls.https.verify_server_hostname);
    let w = warnings(&cfg);
    assert!(w.contains(&"old.json: 'tls_min_version' value 'tls13' is deprecated, please specify 'TLSv1_3' instead".to_string()), "{w:?}");
    assert!(w.contains(&"old.json: The 'tls_prefer_server_cipher_suites' field is deprecated and will be ignored.".to_string()), "{w:?}");
    assert!(w.contains(&"old.json: The 'verify_server_hostname' field is deprecated. Use the 'tls.internal_rpc.verify_server_hostname' field instead.".to_string()), "{w:?}");
}

#[test]
fn config_tls_later_file_wins_key_by_key() {
    let cfg = built(&[
        (
            "a.hcl",
            "tls { defaults { ca_file = \"/a/ca.pem\"\n cert_file = \"/a/c.pem\"\n key_file = \"/a/k.pem\" } }\n",
        ),
        ("b.json", r#"{"tls": {"defaults": {"ca_file": "/b/ca.pem"}}}"#),
        // A deprecated key in a later file still beats an earlier file's
        // tls.defaults: Consul folds it into its own file's defaults.
        ("c.json", r#"{"key_file": "/c/k.pem"}"#),
    ]);
    let rpc = &cfg.tls.internal_rpc;
    assert_eq!(rpc.ca_file, p("/b/ca.pem"));
    assert_eq!(rpc.cert_file, p("/a/c.pem"));
    assert_eq!(rpc.key_file, p("/c/k.pem"));
}

#[test]
fn config_tls_rules_across_keys_name_the_file_and_the_key() {
    let cases = [
        (
            r#"{"tls": {"defaults": {"verify_incoming": true, "cert_file": "/c", "key_file": "/k"}}}"#,
            "Error parsing x.json: tls.defaults.verify_incoming: VerifyIncoming set but no CA certificates were provided",
        ),
        (
            r#"{"tls": {"https": {"verify_incoming": true, "ca_file": "/ca"}}}"#,
            "Error parsing x.json: tls.https.verify_incoming: VerifyIncoming requires either a Cert and Key pair in the configuration file, or auto_encrypt/auto_config be enabled",
        ),
        (
            r#"{"verify_outgoing": true}"#,
            "Error parsing x.json: verify_outgoing: VerifyOutgoing set but no CA certificates were provided",
        ),
        (
            r#"{"tls": {"internal_rpc": {"verify_server_hostname": true}}}"#,
            "Error parsing x.json: tls.internal_rpc.verify_server_hostname: VerifyOutgoing set but no CA certificates were provided",
        ),
        (
            r#"{"tls": {"defaults": {"cert_file": "/c"}}}"#,
            "Error parsing x.json: tls.defaults.cert_file: cert_file is set without key_file",
        ),
        (
            r#"{"tls": {"https": {"key_file": "/k"}}}"#,
            "Error parsing x.json: tls.https.key_file: key_file is set without cert_file",
        ),
        (
            r#"{"ports": {"https": 8501}}"#,
            "Error parsing x.json: ports.https: HTTPS needs a certificate: set cert_file and key_file in tls.https or tls.defaults",
        ),
        (
            r#"{"tls": {"https": {"verfy_incoming": true}}}"#,
            "Error parsing x.json: tls.https.verfy_incoming: unknown tls.https key",
        ),
        (
            r#"{"tls": {"http": {}}}"#,
            "Error parsing x.json: tls.http: unknown tls block",
        ),
        (
            r#"{"tls": {"https": {"verify_server_hostname": true}}}"#,
            "Error parsing x.json: tls.https.verify_server_hostname: verify_server_hostname is only valid in the tls.internal_rpc stanza",
        ),
        (
            r#"{"tls": {"grpc": {"verify_outgoing": true}}}"#,
            "Error parsing x.json: tls.grpc.verify_outgoing: verify_outgoing is not valid in the tls.grpc stanza",
        ),
        (
            r#"{"tls": {"defaults": {"use_auto_cert": true}}}"#,
            "Error parsing x.json: tls.defaults.use_auto_cert: use_auto_cert is only valid in the tls.grpc stanza",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(error("x.json", text), want);
    }
    // A rule broken across files names the file that set the key.
    let e = build_with(
        &[
            ("a.json", r#"{"tls": {"https": {"verify_incoming": true}}}"#),
            (
                "b.json",
                r#"{"tls": {"https": {"cert_file": "/c", "key_file": "/k"}}}"#,
            ),
        ],
        AgentFlags::default(),
    )
    .unwrap_err();
    assert!(
        e.starts_with(
            "Error parsing a.json: tls.https.verify_incoming: VerifyIncoming set but no CA"
        ),
        "{e}"
    );
    // The flag is named when it asks for HTTPS without a certificate.
    let e = build_with(
        &[],
        AgentFlags {
            https_port: Some(8501),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        e.starts_with("Invalid flag -https-port: HTTPS needs a certificate"),
        "{e}"
    );
}

#[test]
fn config_tls_versions_and_cipher_suites_rustls_can_give() {
    let cases = [
        (
            r#"{"tls": {"https": {"tls_min_version": "TLSv1_1"}}}"#,
            "Error parsing x.json: tls.https.tls_min_version: TLSv1_1 is not supported by Meridian (rustls speaks TLS 1.2 and 1.3 only)",
        ),
        (
            r#"{"tls_min_version": "tls10"}"#,
            "Error parsing x.json: tls_min_version: TLSv1_0 is not supported by Meridian (rustls speaks TLS 1.2 and 1.3 only)",
        ),
        // The old names are Consul's only at the deprecated top level.
        (
            r#"{"tls": {"defaults": {"tls_min_version": "tls12"}}}"#,
            "Error parsing x.json: tls.defaults.tls_min_version: invalid TLS version: no matching TLS version found for tls12, please specify one of [TLS_AUTO, TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3]",
        ),
        (
            r#"{"tls": {"internal_rpc": {"tls_cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}}}"#,
            "Error parsing x.json: tls.internal_rpc.tls_cipher_suites: TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA is not supported by Meridian (rustls has no CBC cipher suites)",
        ),
        (
            r#"{"tls_cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_RC4_128_SHA"}"#,
            "Error parsing x.json: tls_cipher_suites: invalid TLS cipher suites: no matching Consul Agent TLS cipher suite found for TLS_RSA_WITH_RC4_128_SHA",
        ),
        (
            r#"{"tls": {"https": {"tls_min_version": "TLSv1_3", "tls_cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}}}"#,
            "Error parsing x.json: tls.https.tls_cipher_suites: TLS 1.3 cipher suites are not configurable",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(error("x.json", text), want);
    }
    // Suites inherited by a protocol whose minimum is TLS 1.3 are left out,
    // as Consul does; TLS_AUTO in a block overrides the defaults' version.
    let cfg = built(&[(
        "v.hcl",
        r#"
tls {
  defaults {
    tls_cipher_suites = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    tls_min_version   = "TLSv1_2"
  }
  https { tls_min_version = "TLSv1_3" }
  internal_rpc { tls_min_version = "TLS_AUTO" }
}
"#,
    )]);
    assert!(cfg.tls.https.tls_cipher_suites.is_empty());
    assert_eq!(cfg.tls.https.min_version(), TlsVersion::Tls13);
    assert_eq!(cfg.tls.internal_rpc.tls_min_version, None);
    assert_eq!(
        cfg.tls.internal_rpc.tls_cipher_suites,
        ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]
    );
}

#[test]
fn config_ports_https_and_http_off() {
    let tls = r#"tls { https { cert_file = "/c"
key_file = "/k" } }
"#;
    let cfg = built(&[(
        "p.hcl",
        &format!("{tls}ports {{ https = 8501\nhttp = -1 }}\n"),
    )]);
    assert_eq!((cfg.ports.https, cfg.ports.http), (Some(8501), None));
    let cfg = built(&[("p.hcl", &format!("{tls}ports {{ https = -1 }}\n"))]);
    assert_eq!(cfg.ports.https, None);
    let cfg = build_with(
        &[("p.hcl", tls)],
        AgentFlags {
            https_port: Some(0),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(cfg.ports.https, Some(0), "0 binds any free port");
    // The flag turning HTTPS off lifts the need for a certificate.
    let cfg = build_with(
        &[("p.json", r#"{"ports": {"https": 8501}}"#)],
        AgentFlags {
            https_port: Some(-1),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(cfg.ports.https, None);
}

#[test]
fn config_watches_need_an_api_to_run_against() {
    let watch =
        r#"{"watches": [{"type": "key", "key": "k", "args": ["true"]}], "ports": {"http": -1}}"#;
    assert_eq!(
        error("w.json", watch),
        "watches need the agent's HTTP or HTTPS API, and ports.http and ports.https are both off"
    );
}

#[test]
fn config_limits_in_hcl_and_json() {
    let hcl = r#"
limits {
  http_max_conns_per_client = 5
  rpc_max_conns_per_client  = 7
  rpc_handshake_timeout     = "1s"
  https_handshake_timeout   = "2s"
  kv_max_value_size         = 1024
  txn_max_req_len           = 2048
  rpc_rate                  = 10.5
}
"#;
    let json = r#"{"limits": {"http_max_conns_per_client": 5, "rpc_max_conns_per_client": 7,
        "rpc_handshake_timeout": "1s", "https_handshake_timeout": "2s",
        "kv_max_value_size": 1024, "txn_max_req_len": 2048, "rpc_rate": 10.5}}"#;
    for (name, text) in [("l.hcl", hcl), ("l.json", json)] {
        let cfg = built(&[(name, text)]);
        assert_eq!(cfg.limits.http_max_conns_per_client, 5);
        assert_eq!(cfg.limits.rpc_max_conns_per_client, 7);
        assert_eq!(cfg.limits.rpc_handshake_timeout, Duration::from_secs(1));
        assert_eq!(cfg.limits.https_handshake_timeout, Duration::from_secs(2));
        assert_eq!((cfg.kv_max_value_size, cfg.txn_max_req_len), (1024, 2048));
        assert_eq!(
            warnings(&cfg),
            [format!(
                "{name}: these keys are accepted but have no effect in Meridian: limits.rpc_rate"
            )]
        );
    }
    assert_eq!(
        error("l.json", r#"{"limits": {"rpc_handshake_timeout": "soon"}}"#),
        "Error parsing l.json: limits.rpc_handshake_timeout: invalid duration \"soon\""
    );
    assert_eq!(
        error("l.json", r#"{"limits": {"http_max_conn_per_client": 1}}"#),
        "Error parsing l.json: limits.http_max_conn_per_client: unknown limits key"
    );
    let defaults = built(&[]);
    assert_eq!(defaults.limits, crate::config::Limits::default());
    assert_eq!(defaults.limits.http_max_conns_per_client, 200);
    assert_eq!(defaults.limits.rpc_max_conns_per_client, 100);
}

#[test]
fn config_addresses_replace_client_addr_per_listener_and_pid_file() {
    let cfg = built(&[(
        "a.hcl",
        "client_addr = \"127.0.0.2\"\naddresses { http = \"127.0.0.3 127.0.0.4\"\ndns = \"127.0.0.5\" }\npid_file = \"/run/m.pid\"\n",
    )]);
    let ips = |v: &[&str]| {
        v.iter()
            .map(|a| a.parse().unwrap())
            .collect::<Vec<IpAddr>>()
    };
    assert_eq!(cfg.http_addrs(), ips(&["127.0.0.3", "127.0.0.4"]));
    assert_eq!(cfg.dns_addrs(), ips(&["127.0.0.5"]));
    assert_eq!(cfg.https_addrs(), ips(&["127.0.0.2"]));
    assert_eq!(cfg.pid_file, p("/run/m.pid"));
    assert_eq!(
        error("a.json", r#"{"addresses": {"http": "localhost"}}"#),
        "Error parsing a.json: addresses.http: \"localhost\" is not an IP address"
    );
    let cfg = build_with(
        &[],
        AgentFlags {
            pid_file: p("/tmp/flag.pid"),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(cfg.pid_file, p("/tmp/flag.pid"));
}

#[test]
fn config_refused_keys_stop_the_build_and_off_is_accepted() {
    for (text, key) in [
        ("auto_encrypt { tls = true }\n", "auto_encrypt"),
        ("auto_config { enabled = true }\n", "auto_config"),
        ("connect { enabled = true }\n", "connect"),
        ("segment = \"alpha\"\n", "segment"),
        ("serf_lan = \"10.0.0.1\"\n", "serf_lan"),
        ("http_config { block_endpoints = [\"/v1/acl\"] }\n", "http_config.block_endpoints"),
        (
            "service { name = \"web\"\nconnect { sidecar_service {} } }\n",
            "service.connect",
        ),
        (
            "check { name = \"d\"\nargs = [\"true\"]\ninterval = \"1s\"\ndocker_container_id = \"f00\" }\nenable_script_checks = true\n",
            "check.docker_container_id",
        ),
    ] {
        assert_eq!(
            error("r.hcl", text),
            format!("Error parsing r.hcl: {key}: not supported by Meridian")
        );
    }
    let cfg = built(&[(
        "off.hcl",
        "connect { enabled = false }\nhttp_config { block_endpoints = [] }\ndisable_update_check = true\n",
    )]);
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn config_ignored_keys_make_one_warning_per_file() {
    let cfg = built(&[(
        "i.hcl",
        r#"
telemetry { prometheus_retention_time = "1m" }
performance { raft_multiplier = 1 }
ui_config { metrics_provider = "prometheus" }
ports { grpc = 8502 }
tls { grpc { ca_file = "/ca" } }
"#,
    )]);
    assert_eq!(
        warnings(&cfg),
        ["i.hcl: these keys are accepted but have no effect in Meridian: performance.raft_multiplier, ports.grpc, ui_config.metrics_provider, tls.grpc"]
    );
    // Still typed: a wrong type is an error, not a warning.
    assert_eq!(
        error("i.json", r#"{"ports": {"grpc": "many"}}"#),
        "Error parsing i.json: ports.grpc: expected an integer, got \"many\""
    );
}
