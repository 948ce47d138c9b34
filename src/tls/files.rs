//! Certificates, keys and CAs read from PEM files, with errors that name
//! the file. Keys may be PKCS #8, SEC1 (what `meridian tls` and Consul
//! write) or PKCS #1.

use std::path::Path;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

use super::TlsError;

fn parse_err(what: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Parse {
        what,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parse_err(what, path, e))
}

/// The certificate chain in `cert` and the key in `key`, checked to
/// belong together: a mismatched pair would fail every handshake later
/// with a less helpful error.
pub(super) fn load_key_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = certs("certificate", cert)?;
    if chain.is_empty() {
        return Err(parse_err("certificate", cert, "no certificate found"));
    }
    let der =
        PrivateKeyDer::from_pem_slice(&read("key", key)?).map_err(|e| parse_err("key", key, e))?;
    CertifiedKey::from_der(chain, der, provider).map_err(|e| {
        parse_err(
            "key",
            key,
            format!("does not match certificate {}: {e}", cert.display()),
        )
    })
}

/// The CAs of `ca_file` and of every file in `ca_path` (as Consul, files
/// without certificates in the directory are passed over); at least one
/// must be found.
pub fn load_roots(
    ca_file: Option<&Path>,
    ca_path: Option<&Path>,
) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let mut add = |path: &Path, must: bool| -> Result<(), TlsError> {
        let found = certs("CA", path)?;
        if found.is_empty() && must {
            return Err(parse_err("CA", path, "no certificate found"));
        }
        for c in found {
            roots.add(c).map_err(|e| parse_err("CA", path, e))?;
        }
        Ok(())
    };
    if let Some(f) = ca_file {
        add(f, true)?;
    }
    if let Some(dir) = ca_path {
        let entries = std::fs::read_dir(dir).map_err(|source| TlsError::Read {
            what: "CA directory",
            path: dir.display().to_string(),
            source,
        })?;
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            // A file that is not PEM (a README, a key) is passed over.
            if certs("CA", &f).is_ok() {
                add(&f, false)?;
            }
        }
        if roots.is_empty() {
            return Err(parse_err("CA directory", dir, "no CA certificate found"));
        }
    }
    Ok(roots)
}
