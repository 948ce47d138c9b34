//! `limits`: what one client address may hold open on the agent's
//! listeners, and how long it may take to say who it is.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `limits` that bound what one client address can cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Connections one IP may hold open on the HTTP(S) listeners (0 = no
    /// limit), `http_max_conns_per_client`.
    pub http_max_conns_per_client: u32,
    /// Connections one IP may hold open on server RPC (0 = no limit),
    /// `rpc_max_conns_per_client`.
    pub rpc_max_conns_per_client: u32,
    /// A new RPC connection must finish its TLS handshake and send its
    /// first frame within this, `rpc_handshake_timeout`.
    pub rpc_handshake_timeout: Duration,
    /// A new HTTPS connection must finish its TLS handshake within this,
    /// `https_handshake_timeout`.
    pub https_handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            http_max_conns_per_client: 200,
            rpc_max_conns_per_client: 100,
            rpc_handshake_timeout: Duration::from_secs(5),
            https_handshake_timeout: Duration::from_secs(5),
        }
    }
}
