//! The rustls hooks that read a [`Tls`]'s current material at every
//! handshake (so a reload reaches the next connection), and the
//! versions and cipher suites fixed at start.

use std::sync::Arc;

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{DistinguishedName, Error, SignatureScheme, SupportedCipherSuite};

use super::{Tls, TlsError};

/// rustls' ring provider, its TLS 1.2 suites narrowed to `suites` when
/// given (Consul's `tls_cipher_suites` applies to TLS 1.2 only; TLS 1.3's
/// suites are always on). Names are Go's, as Consul takes them.
pub(super) fn provider(suites: &[String]) -> Result<CryptoProvider, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if suites.is_empty() {
        return Ok(provider);
    }
    let all = std::mem::take(&mut provider.cipher_suites);
    let mut chosen: Vec<SupportedCipherSuite> = all
        .iter()
        .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_)))
        .copied()
        .collect();
    for name in suites {
        let found = all.iter().find(|s| {
            let ours = format!("{:?}", s.suite());
            matches!(s, SupportedCipherSuite::Tls12(_))
                && (ours == *name || ours == format!("{name}_SHA256"))
        });
        match found {
            Some(s) => chosen.push(*s),
            None => {
                return Err(TlsError::Config(format!(
                    "tls_cipher_suites: {name} is not supported"
                )))
            }
        }
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

/// The protocol versions from `tls_min_version` (TLS 1.2 when unset);
/// rustls has nothing older.
pub(super) fn versions(
    min: Option<&str>,
) -> Result<&'static [&'static rustls::SupportedProtocolVersion], TlsError> {
    static BOTH: &[&rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    match min.map(str::to_ascii_lowercase).as_deref() {
        None | Some("tlsv1_2") | Some("tls12") => Ok(BOTH),
        Some("tlsv1_3") | Some("tls13") => Ok(TLS13),
        Some(other) => Err(TlsError::Config(format!(
            "tls_min_version: {other} is not supported (TLSv1_2 or TLSv1_3)"
        ))),
    }
}

/// The signature algorithms a verifier checks handshakes with.
pub(super) trait Algorithms {
    fn algorithms(&self) -> &WebPkiSupportedAlgorithms;
}

/// The handshake-signature half of a certificate verifier, the same in
/// every verifier of this crate: rustls' own checks with the verifier's
/// [`Algorithms`].
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            let algs = $crate::tls::verify::Algorithms::algorithms(self);
            rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            let algs = $crate::tls::verify::Algorithms::algorithms(self);
            rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            $crate::tls::verify::Algorithms::algorithms(self).supported_schemes()
        }
    };
}
pub(super) use handshake_signatures;

impl Algorithms for Clients {
    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.0.provider.signature_verification_algorithms
    }
}

impl Algorithms for Servers {
    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.0.provider.signature_verification_algorithms
    }
}

/// Presents this agent's current certificate, as a server and as a
/// client.
#[derive(Debug)]
pub(super) struct OwnCert(pub(super) Tls);

impl rustls::server::ResolvesServerCert for OwnCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.material().key.clone()
    }
}

impl rustls::client::ResolvesClientCert for OwnCert {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.material().key.clone()
    }

    fn has_certs(&self) -> bool {
        self.0.has_cert()
    }
}

/// Asks for a client certificate only with `verify_incoming` (as Consul,
/// so browsers are not prompted otherwise) and then requires one from the
/// CA.
#[derive(Debug)]
pub(super) struct Clients(pub(super) Tls);

impl ClientCertVerifier for Clients {
    fn offer_client_auth(&self) -> bool {
        let m = self.0.material();
        m.verify_incoming && m.clients.is_some()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.material().verify_incoming
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The hints would borrow from material a reload may replace; an
        // agent has one certificate to offer anyway.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match &self.0.material().clients {
            Some(v) => v.verify_client_cert(end_entity, intermediates, now),
            None => Err(Error::General("no CA to verify client certificates".into())),
        }
    }

    handshake_signatures!();
}

/// Checks a server's chain against the current CA and, with
/// `verify_server_hostname`, that it names the server name dialed.
/// Without it any certificate from the CA is taken, as in Consul.
#[derive(Debug)]
pub(super) struct Servers(pub(super) Tls);

impl ServerCertVerifier for Servers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let m = self.0.material();
        let Some(roots) = &m.roots else {
            return Err(Error::General("no CA to verify servers with".into()));
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.algorithms().all,
        )?;
        if m.verify_server_hostname {
            rustls::client::verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures!();
}
