//! TLS for the agent's listeners and dialers: one [`Tls`] per protocol
//! (HTTPS, server RPC) built from its [`TlsProtocol`] settings. The
//! certificate, the CA and the `verify_*` switches live behind one lock
//! that [`Tls::reload`] swaps, and the rustls configurations handed out
//! read them through it at every handshake, so a reload reaches new
//! connections without rebuilding listeners or pools. What a reload cannot
//! change (TLS on or off, versions, cipher suites) is fixed at start.

mod client;
mod files;
pub mod settings;
mod verify;

use std::sync::{Arc, RwLock};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use thiserror::Error;

use settings::{TlsConfig, TlsProtocol};

pub use client::ApiClientTls;
pub use files::load_roots;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path}: {reason}")]
    Parse {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("{0}")]
    Config(String),
}

/// The name a server's certificate must carry for `verify_server_hostname`
/// (Consul's `server.<datacenter>.<domain>`); `domain` may end with a dot.
pub fn server_name(datacenter: &str, domain: &str) -> String {
    format!("server.{datacenter}.{}", domain.trim_end_matches('.'))
}

/// Whether `cert` (a peer's end-entity certificate) names `name`, e.g.
/// [`server_name`]: a client certificate from the same CA does not.
pub fn cert_names(cert: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(parsed) = ParsedCertificate::try_from(cert) else {
        return false;
    };
    let Ok(server) = ServerName::try_from(name) else {
        return false;
    };
    rustls::client::verify_server_name(&parsed, &server).is_ok()
}

/// What one protocol's handshakes use now; replaced whole on reload.
#[derive(Debug)]
pub(crate) struct Material {
    pub(crate) key: Option<Arc<rustls::sign::CertifiedKey>>,
    pub(crate) roots: Option<Arc<RootCertStore>>,
    /// Verifies client certificates against `roots`; None without a CA.
    pub(crate) clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    pub(crate) verify_incoming: bool,
    pub(crate) verify_outgoing: bool,
    pub(crate) verify_server_hostname: bool,
}

impl Material {
    fn load(
        p: &TlsProtocol,
        provider: &Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let key = match (&p.cert_file, &p.key_file) {
            (Some(cert), Some(key)) => Some(Arc::new(files::load_key_pair(cert, key, provider)?)),
            (None, None) => None,
            _ => {
                return Err(TlsError::Config(
                    "cert_file and key_file must be given together".into(),
                ))
            }
        };
        let roots = if p.has_ca() {
            Some(Arc::new(load_roots(
                p.ca_file.as_deref(),
                p.ca_path.as_deref(),
            )?))
        } else {
            None
        };
        let clients = match &roots {
            Some(r) => Some(
                rustls::server::WebPkiClientVerifier::builder_with_provider(
                    r.clone(),
                    provider.clone(),
                )
                // Whether a certificate is required is decided per
                // handshake from `verify_incoming` (see verify.rs).
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config(format!("CA: {e}")))?,
            ),
            None => None,
        };
        if p.verify_incoming && roots.is_none() {
            return Err(TlsError::Config(
                "verify_incoming requires ca_file or ca_path".into(),
            ));
        }
        if (p.verify_outgoing || p.verify_server_hostname) && roots.is_none() {
            return Err(TlsError::Config(
                "verify_outgoing requires ca_file or ca_path".into(),
            ));
        }
        Ok(Material {
            key,
            roots,
            clients,
            verify_incoming: p.verify_incoming,
            verify_outgoing: p.verify_outgoing || p.verify_server_hostname,
            verify_server_hostname: p.verify_server_hostname,
        })
    }
}

/// One protocol's TLS: cheap to clone, shared by its listener and dialers.
#[derive(Clone, Debug)]
pub struct Tls {
    current: Arc<RwLock<Arc<Material>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    versions: &'static [&'static rustls::SupportedProtocolVersion],
}

impl Tls {
    /// TLS for a protocol from its settings; None when it has neither a
    /// certificate nor a CA (the protocol stays plaintext).
    pub fn new(p: &TlsProtocol) -> Result<Option<Tls>, TlsError> {
        if p.cert_file.is_none() && p.key_file.is_none() && !p.has_ca() {
            return Ok(None);
        }
        let provider = Arc::new(verify::provider(&p.tls_cipher_suites)?);
        let versions = verify::versions(p.tls_min_version.as_deref())?;
        let material = Material::load(p, &provider)?;
        Ok(Some(Tls {
            current: Arc::new(RwLock::new(Arc::new(material))),
            provider,
            versions,
        }))
    }

    pub(crate) fn material(&self) -> Arc<Material> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the certificate, key and CA again and takes the new
    /// `verify_*` switches; on error the old material stays in use.
    pub fn reload(&self, p: &TlsProtocol) -> Result<(), TlsError> {
        let material = Material::load(p, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(material);
        Ok(())
    }

    /// Whether a certificate is configured to present.
    pub fn has_cert(&self) -> bool {
        self.material().key.is_some()
    }

    pub fn verify_incoming(&self) -> bool {
        self.material().verify_incoming
    }

    /// Whether dialers of this protocol use TLS (`verify_outgoing`).
    pub fn verify_outgoing(&self) -> bool {
        self.material().verify_outgoing
    }

    /// A server configuration for a listener, offering `alpn` (e.g.
    /// `h2`, `http/1.1`). It presents the current certificate and, with a
    /// CA, asks for a client certificate, requiring one with
    /// `verify_incoming`.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(self.versions)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let mut cfg = builder
            .with_client_cert_verifier(Arc::new(verify::Clients(self.clone())))
            .with_cert_resolver(Arc::new(verify::OwnCert(self.clone())));
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(cfg)
    }

    /// A client configuration for dialing a server of this protocol: it
    /// presents the current certificate when asked, checks the server's
    /// chain against the CA and, with `verify_server_hostname`, that the
    /// certificate names the server name dialed (see [`server_name`]).
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<ClientConfig, TlsError> {
        let builder = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(self.versions)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let mut cfg = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verify::Servers(self.clone())))
            .with_client_cert_resolver(Arc::new(verify::OwnCert(self.clone())));
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(cfg)
    }
}

/// The agent's TLS, one per protocol; None where a protocol is plaintext.
/// Built once at start; [`AgentTls::reload`] refreshes what it can.
#[derive(Clone, Debug, Default)]
pub struct AgentTls {
    pub https: Option<Tls>,
    pub internal_rpc: Option<Tls>,
}

impl AgentTls {
    pub fn new(cfg: &TlsConfig) -> Result<Self, TlsError> {
        let https = Tls::new(&cfg.https).map_err(|e| e.within("tls.https"))?;
        let internal_rpc = Tls::new(&cfg.internal_rpc).map_err(|e| e.within("tls.internal_rpc"))?;
        Ok(AgentTls {
            https,
            internal_rpc,
        })
    }

    /// New certificates, CAs and `verify_*` switches for the next
    /// handshakes. As in Consul, a reload cannot turn TLS on or off for a
    /// protocol (its listeners and dialers were chosen at start); nothing
    /// changes unless every protocol's new settings load.
    pub fn reload(&self, cfg: &TlsConfig) -> Result<(), TlsError> {
        let pairs = [
            ("tls.https", &self.https, &cfg.https),
            ("tls.internal_rpc", &self.internal_rpc, &cfg.internal_rpc),
        ];
        for (name, have, want) in pairs {
            let wanted = want.cert_file.is_some() || want.key_file.is_some() || want.has_ca();
            if have.is_some() != wanted {
                return Err(TlsError::Config(format!(
                    "{name}: TLS cannot be turned {} by a reload; restart the agent",
                    if wanted { "on" } else { "off" }
                )));
            }
        }
        // Load everything first, so that a bad file leaves all in place.
        let mut loaded = Vec::new();
        for (name, have, want) in pairs {
            if let Some(tls) = have {
                let m = Material::load(want, &tls.provider).map_err(|e| e.within(name))?;
                loaded.push((tls, m));
            }
        }
        for (tls, m) in loaded {
            *tls.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(m);
        }
        Ok(())
    }
}

impl TlsError {
    /// The same error, naming the config block it came from.
    fn within(self, block: &str) -> TlsError {
        match self {
            TlsError::Config(m) => TlsError::Config(format!("{block}: {m}")),
            other => TlsError::Config(format!("{block}: {other}")),
        }
    }
}

/// Also the certificates other modules' tests handshake with.
#[cfg(test)]
pub(crate) mod tests;
