//! Transport security settings: `tls { defaults, https, internal_rpc }`
//! (and Consul's deprecated top-level `ca_file`, `verify_incoming`, ...)
//! resolved per protocol. The config builder fills them and the agent's
//! config holds them; they live here, beside what turns them into rustls
//! configurations, so that TLS does not depend on the config.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One protocol's settings after `defaults` and the deprecated top-level
/// keys have been folded in (a key set in the protocol's own block wins,
/// then `tls.defaults`, then the deprecated top-level key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TlsProtocol {
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// `TLSv1_2` unless set; Consul's names (`TLSv1_0` .. `TLSv1_3`).
    pub tls_min_version: Option<String>,
    /// Consul's (Go's) cipher suite names; empty = rustls' defaults.
    pub tls_cipher_suites: Vec<String>,
    /// Require and verify a client certificate from the CA.
    pub verify_incoming: bool,
    /// Dial with TLS and verify the peer's certificate (internal RPC).
    pub verify_outgoing: bool,
    /// The peer server's certificate must name `server.<dc>.<domain>`
    /// (internal RPC).
    pub verify_server_hostname: bool,
}

impl TlsProtocol {
    /// Whether this protocol has a certificate to present.
    pub fn has_cert(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }

    /// Whether a CA is configured to verify peers with.
    pub fn has_ca(&self) -> bool {
        self.ca_file.is_some() || self.ca_path.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TlsConfig {
    /// The HTTPS listener (`ports.https`) and what the agent's own HTTP
    /// clients (watches, checks of its API) trust.
    pub https: TlsProtocol,
    /// Server RPC (port 8300): server to server, client to server, and
    /// across datacenters.
    pub internal_rpc: TlsProtocol,
}

/// The oldest TLS version a listener or dialer accepts (`tls_min_version`),
/// among those rustls speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// Consul's name (`TLSv1_2`), as [`TlsProtocol::tls_min_version`] holds it.
    pub fn from_name(name: &str) -> Option<TlsVersion> {
        match name {
            "TLSv1_2" => Some(TlsVersion::Tls12),
            "TLSv1_3" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

impl TlsProtocol {
    /// The minimum version: TLS 1.2 unless `TLSv1_3` was asked for (the
    /// builder refuses every other name).
    pub fn min_version(&self) -> TlsVersion {
        self.tls_min_version
            .as_deref()
            .and_then(TlsVersion::from_name)
            .unwrap_or(TlsVersion::Tls12)
    }
}

/// The TLS 1.2 cipher suites Consul's agent accepts that rustls also
/// offers (ECDHE with AES-GCM or ChaCha20-Poly1305), by Consul's (Go's)
/// name. TLS 1.3 suites are not configurable, in Consul as in rustls.
pub const CIPHER_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Suites Consul's agent accepts that rustls does not implement (CBC
/// mode): the builder refuses them by name rather than drop them.
pub const CIPHER_SUITES_WITHOUT_RUSTLS: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];
