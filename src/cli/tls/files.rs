//! The file side of `meridian tls`: new files only (a CA or key is never
//! overwritten), private keys readable by their owner alone and written as
//! SEC1 `EC PRIVATE KEY` as Consul writes them (so Consul's own tools read
//! ours), and the CA read back from PEM whether its key is SEC1 or PKCS #8.

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

/// A P-256 key as SEC1 PEM (`EC PRIVATE KEY`), with the curve named and
/// the public key included, the form Go's `x509.ParseECPrivateKey` (and so
/// `consul tls cert create`) requires.
pub(super) fn sec1_pem(key: &KeyPair) -> Result<String, TlsError> {
    let bad = || TlsError::Generate {
        what: "private key",
        source: rcgen::Error::CouldNotParseKeyPair,
    };
    // PKCS #8: SEQUENCE { version, algorithm, OCTET STRING { ECPrivateKey } },
    // ECPrivateKey: SEQUENCE { version 1, OCTET STRING privateKey, ... }.
    let (info, _) = der_element(key.serialized_der()).ok_or_else(bad)?;
    let (_version, rest) = der_element(der_content(info)?).ok_or_else(bad)?;
    let (_algorithm, rest) = der_element(rest).ok_or_else(bad)?;
    let (octets, _) = der_element(rest).ok_or_else(bad)?;
    let (ec_key, _) = der_element(der_content(octets)?).ok_or_else(bad)?;
    let (_ec_version, rest) = der_element(der_content(ec_key)?).ok_or_else(bad)?;
    let (private, _) = der_element(rest).ok_or_else(bad)?;
    let point = key.public_key_raw();

    let mut body = vec![0x02, 0x01, 0x01];
    body.extend_from_slice(private);
    body.extend_from_slice(&[
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ]);
    let mut bits = vec![0x03];
    bits.extend(der_len(point.len() + 1));
    bits.push(0x00);
    bits.extend_from_slice(point);
    body.push(0xa1);
    body.extend(der_len(bits.len()));
    body.extend(bits);
    let mut der = vec![0x30];
    der.extend(der_len(body.len()));
    der.extend(body);

    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN EC PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END EC PRIVATE KEY-----\n");
    Ok(pem)
}

/// Splits one DER element (tag, length, content) off the front of `b`.
fn der_element(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (header, len) = der_header(b)?;
    (b.len() >= header + len).then(|| b.split_at(header + len))
}

fn der_content(el: &[u8]) -> Result<&[u8], TlsError> {
    der_header(el)
        .and_then(|(header, _)| el.get(header..))
        .ok_or(TlsError::Generate {
            what: "private key",
            source: rcgen::Error::CouldNotParseKeyPair,
        })
}

/// The header size and content length of the DER element at `b`.
fn der_header(b: &[u8]) -> Option<(usize, usize)> {
    let first = *b.get(1)?;
    if first < 0x80 {
        return Some((2, first as usize));
    }
    let k = (first & 0x7f) as usize;
    if k == 0 || k > 4 {
        return None;
    }
    let len = b
        .get(2..2 + k)?
        .iter()
        .fold(0usize, |a, x| (a << 8) | *x as usize);
    Some((2 + k, len))
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
    fn sec1_keys_read_back_as_the_same_key() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let pem = sec1_pem(&key).expect("sec1");
        let (tag, der) = pem_block(&pem).expect("pem");
        assert_eq!(tag, "EC PRIVATE KEY");
        let back = KeyPair::try_from(sec1_p256_to_pkcs8(&der).as_slice()).expect("parses");
        assert_eq!(back.public_key_raw(), key.public_key_raw());
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
