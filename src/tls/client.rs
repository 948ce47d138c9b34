//! TLS for clients of the agent's HTTPS API (the CLI, the load generator,
//! the agent's own watches): Consul's `-ca-file`, `-ca-path`,
//! `-client-cert`, `-client-key`, `-tls-server-name` and
//! `CONSUL_HTTP_SSL_VERIFY=false`, as a rustls client configuration.
//! Unlike [`super::Tls`] it is read once: a CLI run is short.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, Error, RootCertStore};

use super::verify::{handshake_signatures, Algorithms};
use super::{files, load_roots, TlsError};

/// How an API client checks the agent and proves itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiClientTls {
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// The name the agent's certificate must carry, instead of the host
    /// in the URL (an agent reached by IP with a certificate naming
    /// `server.dc1.consul`).
    pub server_name: Option<String>,
    /// `CONSUL_HTTP_SSL_VERIFY=false`: take any certificate.
    pub insecure: bool,
}

impl ApiClientTls {
    /// The rustls configuration, offering HTTP/1.1 (as over plaintext, so
    /// that load-generator clients keep a connection each). Without a CA
    /// the public web roots are trusted, as a browser would.
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = if self.ca_file.is_some() || self.ca_path.is_some() {
            load_roots(self.ca_file.as_deref(), self.ca_path.as_deref())?
        } else {
            RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }
        };
        let verifier: Arc<dyn ServerCertVerifier> = if self.insecure {
            Arc::new(AnyServer(provider.clone()))
        } else {
            let name = match &self.server_name {
                Some(n) => Some(ServerName::try_from(n.clone()).map_err(|_| {
                    TlsError::Config(format!("tls-server-name: {n:?} is not a valid server name"))
                })?),
                None => None,
            };
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| TlsError::Config(format!("CA: {e}")))?;
            Arc::new(NamedServer {
                webpki,
                name,
                algs: provider.signature_verification_algorithms,
            })
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut cfg = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let pair = files::load_key_pair(cert, key, &provider)?;
                builder
                    .with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(pair)))
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(TlsError::Config(
                    "client-cert and client-key must be given together".into(),
                ))
            }
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

/// The web PKI's checks, against `name` when one was given instead of
/// the name dialed.
#[derive(Debug)]
struct NamedServer {
    webpki: Arc<WebPkiServerVerifier>,
    algs: WebPkiSupportedAlgorithms,
    name: Option<ServerName<'static>>,
}

impl ServerCertVerifier for NamedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let name = self.name.as_ref().unwrap_or(server_name);
        self.webpki
            .verify_server_cert(end_entity, intermediates, name, ocsp, now)
    }

    handshake_signatures!();
}

/// Takes any certificate (`CONSUL_HTTP_SSL_VERIFY=false`); the handshake
/// signatures are still checked, so the peer holds the key it shows.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures!();
}

impl Algorithms for NamedServer {
    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.algs
    }
}

impl Algorithms for AnyServer {
    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.0.signature_verification_algorithms
    }
}
