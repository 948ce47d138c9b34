//! Gossip encryption (Consul's `encrypt`): every datagram sealed with
//! AES-GCM under a shared key of 16, 24 or 32 bytes, given in base64.
//! A sealed datagram is `[SEALED][nonce: 12][ciphertext + tag: 16]`; the
//! first key of the ring seals, every key is tried to open (so a key can
//! be rotated in before it becomes primary).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use base64::Engine;
use rand::RngCore;

/// First byte of a sealed datagram; plain ones start with a small kind.
pub const SEALED: u8 = 0x80;
const NONCE: usize = 12;

type Aes192Gcm = AesGcm<aes_gcm::aes::Aes192, aes_gcm::aead::consts::U12>;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum KeyError {
    #[error("the key is not valid base64")]
    Base64,
    #[error("the key is {0} bytes; it must be 16, 24 or 32 bytes (AES-128, -192 or -256)")]
    Length(usize),
}

#[derive(Clone)]
enum Cipher {
    A128(Aes128Gcm),
    A192(Aes192Gcm),
    A256(Aes256Gcm),
}

impl Cipher {
    fn seal(&self, nonce: &Nonce<aes_gcm::aead::consts::U12>, data: &[u8]) -> Option<Vec<u8>> {
        match self {
            Cipher::A128(c) => c.encrypt(nonce, data).ok(),
            Cipher::A192(c) => c.encrypt(nonce, data).ok(),
            Cipher::A256(c) => c.encrypt(nonce, data).ok(),
        }
    }

    fn open(&self, nonce: &Nonce<aes_gcm::aead::consts::U12>, data: &[u8]) -> Option<Vec<u8>> {
        match self {
            Cipher::A128(c) => c.decrypt(nonce, data).ok(),
            Cipher::A192(c) => c.decrypt(nonce, data).ok(),
            Cipher::A256(c) => c.decrypt(nonce, data).ok(),
        }
    }
}

/// The keys in use, primary first, and how strict to be with plain text.
#[derive(Clone)]
pub struct Keyring {
    ciphers: Vec<Cipher>,
    /// Refuse datagrams that are not sealed (`encrypt_verify_incoming`).
    pub verify_incoming: bool,
    /// Seal what we send (`encrypt_verify_outgoing`); off only while a
    /// cluster is being switched over to encryption.
    pub verify_outgoing: bool,
}

/// Reads a base64 key as Consul's `encrypt` holds it.
pub fn parse_key(b64: &str) -> Result<Vec<u8>, KeyError> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| KeyError::Base64)?;
    match key.len() {
        16 | 24 | 32 => Ok(key),
        n => Err(KeyError::Length(n)),
    }
}

/// A fresh random 32-byte key in base64 (`meridian keygen`).
pub fn generate_key() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

impl Keyring {
    pub fn new(keys: &[String]) -> Result<Keyring, KeyError> {
        let ciphers = keys
            .iter()
            .map(|k| {
                let key = parse_key(k)?;
                Ok(match key.len() {
                    16 => Cipher::A128(
                        Aes128Gcm::new_from_slice(&key).map_err(|_| KeyError::Length(16))?,
                    ),
                    24 => Cipher::A192(
                        Aes192Gcm::new_from_slice(&key).map_err(|_| KeyError::Length(24))?,
                    ),
                    _ => Cipher::A256(
                        Aes256Gcm::new_from_slice(&key).map_err(|_| KeyError::Length(32))?,
                    ),
                })
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        Ok(Keyring {
            ciphers,
            verify_incoming: true,
            verify_outgoing: true,
        })
    }

    /// What goes on the wire for `packet`.
    pub fn seal(&self, packet: Vec<u8>) -> Vec<u8> {
        let Some(primary) = self.ciphers.first().filter(|_| self.verify_outgoing) else {
            return packet;
        };
        let mut nonce = [0u8; NONCE];
        rand::thread_rng().fill_bytes(&mut nonce);
        match primary.seal(Nonce::from_slice(&nonce), &packet) {
            Some(ct) => {
                let mut out = Vec::with_capacity(1 + NONCE + ct.len());
                out.push(SEALED);
                out.extend_from_slice(&nonce);
                out.extend_from_slice(&ct);
                out
            }
            // AES-GCM only fails on absurd lengths; such a packet is not sent.
            None => Vec::new(),
        }
    }

    /// The packet inside a datagram, or None when no key opens it (or it
    /// is plain text and plain text is refused).
    pub fn open(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        match datagram.split_first() {
            Some((&SEALED, rest)) if rest.len() > NONCE => {
                let (nonce, ct) = rest.split_at(NONCE);
                self.ciphers
                    .iter()
                    .find_map(|c| c.open(Nonce::from_slice(nonce), ct))
            }
            Some(_) if !self.verify_incoming => Some(datagram.to_vec()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_with_every_key_size() {
        for len in [16usize, 24, 32] {
            let key = base64::engine::general_purpose::STANDARD.encode(vec![7u8; len]);
            let ring = Keyring::new(std::slice::from_ref(&key)).expect("valid key");
            let sealed = ring.seal(b"\x00hello".to_vec());
            assert_eq!(sealed[0], SEALED);
            assert_eq!(sealed.len(), 1 + 12 + 6 + 16);
            assert_eq!(ring.open(&sealed).as_deref(), Some(&b"\x00hello"[..]));
        }
    }

    #[test]
    fn refuses_other_keys_tampering_and_plain_text() {
        let a = Keyring::new(&[generate_key()]).expect("key a");
        let b = Keyring::new(&[generate_key()]).expect("key b");
        let mut sealed = a.seal(b"\x00secret".to_vec());
        assert_eq!(b.open(&sealed), None, "another key must not open it");
        assert_eq!(a.open(b"\x00plain"), None, "plain text refused");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(a.open(&sealed), None, "a flipped bit must not open");
    }

    #[test]
    fn a_second_key_opens_during_rotation_and_plain_text_when_allowed() {
        let (old, new) = (generate_key(), generate_key());
        let sender = Keyring::new(std::slice::from_ref(&old)).expect("old");
        let mut receiver = Keyring::new(&[new, old]).expect("ring");
        let sealed = sender.seal(b"\x01x".to_vec());
        assert_eq!(receiver.open(&sealed).as_deref(), Some(&b"\x01x"[..]));
        receiver.verify_incoming = false;
        assert_eq!(
            receiver.open(b"\x00plain").as_deref(),
            Some(&b"\x00plain"[..])
        );
    }

    #[test]
    fn bad_keys_are_named() {
        assert_eq!(parse_key("not base64!").unwrap_err(), KeyError::Base64);
        assert_eq!(parse_key("AAAA").unwrap_err(), KeyError::Length(3));
        assert_eq!(parse_key(&generate_key()).map(|k| k.len()), Ok(32));
    }
}
