//! The file side of `meridian tls`: new files only (a CA or key is never
//! overwritten), private keys readable by their owner alone, and the CA read
//! back from PEM, whether its key is PKCS #8 (ours) or SEC1 (`EC PRIVATE
//! KEY`, what `consul tls ca create` writes), so Consul's CA files work too.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use rcgen::{Issuer, KeyPair};

use super::TlsError;

pub(super) fn exists(path: &str) -> bool {
    // symlink_metadata: a dangling link still occupies the name.
    Path::new(path).symlink_metadata().is_ok()
}

/// Writes a file that must not exist yet; `private` files get mode 0600.
pub(super) fn write_new(path: &str, contents: &str, private: bool) -> Result<(), TlsError> {
    let write_err = |source| TlsError::Write {
        path: path.to_string(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                TlsError::Exists(path.to_string())
            } else {
                write_err(e)
            }
        })?;
    file.write_all(contents.as_bytes()).map_err(write_err)?;
    file.sync_all().map_err(write_err)
}

/// The CA's certificate (PEM text) and its signer, checked to belong
/// together: a mismatched key would sign certificates nothing verifies.
pub(super) fn load_ca(
    ca_path: &str,
    key_path: &str,
) -> Result<(String, Issuer<'static, KeyPair>), TlsError> {
    let read = |what, path: &str| {
        std::fs::read_to_string(path).map_err(|source| TlsError::Read {
            what,
            path: path.to_string(),
            source,
        })
    };
    let parse_err = |what, path: &str, reason: String| TlsError::Parse {
        what,
        path: path.to_string(),
        reason,
    };
    let ca_pem = read("CA", ca_path)?;
    let key_pem = read("CA key", key_path)?;

    let (tag, der) = pem_block(&key_pem)
        .ok_or_else(|| parse_err("CA key", key_path, "no PEM-encoded data found".into()))?;
    let pkcs8 = match tag.as_str() {
        "PRIVATE KEY" => der,
        "EC PRIVATE KEY" => sec1_p256_to_pkcs8(&der),
        other => {
            return Err(parse_err(
                "CA key",
                key_path,
                format!("unknown PEM block type for signing key: {other}"),
            ))
        }
    };
    let key = KeyPair::try_from(pkcs8.as_slice())
        .map_err(|e| parse_err("CA key", key_path, e.to_string()))?;

    let (ca_tag, ca_der) = pem_block(&ca_pem)
        .ok_or_else(|| parse_err("CA", ca_path, "no PEM-encoded data found".into()))?;
    if ca_tag != "CERTIFICATE" {
        return Err(parse_err(
            "CA",
            ca_path,
            "first PEM-block should be CERTIFICATE type".into(),
        ));
    }
    // The certificate's subject public key info carries the key's public
    // point verbatim, so its presence is the match.
    let point = key.public_key_raw();
    if !ca_der.windows(point.len()).any(|w| w == point) {
        return Err(parse_err(
            "CA key",
            key_path,
            format!("it is not the key of {ca_path}"),
        ));
    }
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, key)
        .map_err(|e| parse_err("CA", ca_path, e.to_string()))?;
    Ok((ca_pem, issuer))
}

/// The first PEM block of `text`: its label and decoded bytes.
fn pem_block(text: &str) -> Option<(String, Vec<u8>)> {
    let mut lines = text.lines().map(str::trim);
    let tag = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))?
        .to_string();
    let end = format!("-----END {tag}-----");
    let mut body = String::new();
    for line in lines {
        if line == end {
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .ok()?;
            return Some((tag, der));
        }
        body.push_str(line);
    }
    None
}

/// Wraps a SEC1 `ECPrivateKey` of curve P-256 in a PKCS #8 PrivateKeyInfo
/// (RFC 5208/5915), the one form the signing library reads.
fn sec1_p256_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    // version 0, then AlgorithmIdentifier { id-ecPublicKey, prime256v1 }.
    const HEAD: &[u8] = &[
        0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
        0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    let mut octets = vec![0x04];
    octets.extend(der_len(sec1.len()));
    octets.extend_from_slice(sec1);
    let mut out = vec![0x30];
    out.extend(der_len(HEAD.len() + octets.len()));
    out.extend_from_slice(HEAD);
    out.extend(octets);
    out
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let bytes: Vec<u8> = n
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_short_and_long_form() {
        assert_eq!(der_len(5), vec![5]);
        assert_eq!(der_len(0x80), vec![0x81, 0x80]);
        assert_eq!(der_len(0x1234), vec![0x82, 0x12, 0x34]);
    }

    #[test]
    fn pem_block_reads_label_and_body() {
        let text =
            "junk\n-----BEGIN EC PRIVATE KEY-----\nAAEC\nAw==\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(
            pem_block(text),
            Some(("EC PRIVATE KEY".to_string(), vec![0, 1, 2, 3]))
        );
        assert_eq!(pem_block("-----BEGIN X-----\nAAEC\n"), None);
    }
}
