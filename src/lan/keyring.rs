//! Gossip encryption (Consul's `encrypt`): every datagram sealed with
//! AES-GCM under a shared key of 16, 24 or 32 bytes, given in base64.
//! A sealed datagram is `[SEALED][nonce: 12][ciphertext + tag: 16]`; the
//! first key of the ring seals, every key is tried to open (so a key can
//! be rotated in before it becomes primary). The ring changes at run time
//! (`meridian keyring`: install, use, remove, with memberlist's rules and
//! texts) and is kept in `<data-dir>/serf/local.keyring` (`remote.keyring`
//! for the WAN pool) as Consul keeps it: a JSON array of base64 keys,
//! primary first.

use std::path::Path;

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

/// Why a change to the ring was refused; the texts are memberlist's,
/// which Consul's answers carry.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RingError {
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("Requested key is not in the keyring")]
    NotInstalled,
    #[error("Removing the primary key is not allowed")]
    RemovePrimary,
}

/// A keyring file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a JSON array of keys: {source}")]
    Format {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("no keys present in keyring: {0}")]
    Empty(String),
    #[error("{path}: {source}")]
    Key {
        path: String,
        #[source]
        source: KeyError,
    },
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
    /// The keys as given (base64), in the order of `ciphers`.
    keys: Vec<String>,
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

fn cipher(b64: &str) -> Result<Cipher, KeyError> {
    let key = parse_key(b64)?;
    Ok(match key.len() {
        16 => Cipher::A128(Aes128Gcm::new_from_slice(&key).map_err(|_| KeyError::Length(16))?),
        24 => Cipher::A192(Aes192Gcm::new_from_slice(&key).map_err(|_| KeyError::Length(24))?),
        _ => Cipher::A256(Aes256Gcm::new_from_slice(&key).map_err(|_| KeyError::Length(32))?),
    })
}

/// The same key however it was spelled (whitespace, padding aside): keys
/// are compared by their bytes, as memberlist compares them.
fn same_key(a: &str, b: &str) -> bool {
    matches!((parse_key(a), parse_key(b)), (Ok(x), Ok(y)) if x == y)
}

/// A key in its canonical base64 spelling, as the ring lists it.
fn canonical(b64: &str) -> Result<String, KeyError> {
    Ok(base64::engine::general_purpose::STANDARD.encode(parse_key(b64)?))
}

impl Keyring {
    pub fn new(keys: &[String]) -> Result<Keyring, KeyError> {
        let keys = keys
            .iter()
            .map(|k| canonical(k))
            .collect::<Result<Vec<_>, KeyError>>()?;
        let ciphers = keys
            .iter()
            .map(|k| cipher(k))
            .collect::<Result<Vec<_>, KeyError>>()?;
        Ok(Keyring {
            keys,
            ciphers,
            verify_incoming: true,
            verify_outgoing: true,
        })
    }

    /// Every key, primary first (base64).
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The key that seals what this member sends.
    pub fn primary(&self) -> Option<&str> {
        self.keys.first().map(String::as_str)
    }

    /// Adds a key that opens datagrams; installing a key twice is a no-op
    /// (a retried or relayed request must not fail).
    pub fn install(&mut self, key: &str) -> Result<bool, RingError> {
        let key = canonical(key)?;
        if self.keys.iter().any(|k| same_key(k, &key)) {
            return Ok(false);
        }
        self.ciphers.push(cipher(&key)?);
        self.keys.push(key);
        Ok(true)
    }

    /// Makes an installed key the primary, the one that seals.
    pub fn use_key(&mut self, key: &str) -> Result<bool, RingError> {
        let key = canonical(key)?;
        let i = self
            .keys
            .iter()
            .position(|k| same_key(k, &key))
            .ok_or(RingError::NotInstalled)?;
        if i == 0 {
            return Ok(false);
        }
        let k = self.keys.remove(i);
        let c = self.ciphers.remove(i);
        self.keys.insert(0, k);
        self.ciphers.insert(0, c);
        Ok(true)
    }

    /// Drops a key that is not the primary; a key not installed is
    /// already gone (memberlist answers the same).
    pub fn remove(&mut self, key: &str) -> Result<bool, RingError> {
        let key = canonical(key)?;
        match self.keys.iter().position(|k| same_key(k, &key)) {
            Some(0) => Err(RingError::RemovePrimary),
            Some(i) => {
                self.keys.remove(i);
                self.ciphers.remove(i);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Reads a keyring file; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<Vec<String>>, FileError> {
        let shown = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(FileError::Io {
                    path: shown,
                    source,
                })
            }
        };
        let keys: Vec<String> =
            serde_json::from_slice(&bytes).map_err(|source| FileError::Format {
                path: shown.clone(),
                source,
            })?;
        if keys.is_empty() {
            return Err(FileError::Empty(shown));
        }
        for k in &keys {
            parse_key(k).map_err(|source| FileError::Key {
                path: shown.clone(),
                source,
            })?;
        }
        Ok(Some(keys))
    }

    /// Writes the keys to `path` atomically (a crash leaves the old file),
    /// readable by its owner only: the keys are the pool's secret.
    pub fn save(&self, path: &Path) -> Result<(), FileError> {
        let io = |source| FileError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("keyring.tmp");
        let body = serde_json::to_vec(&self.keys).map_err(|source| FileError::Format {
            path: path.display().to_string(),
            source,
        })?;
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?;
            f.write_all(&body).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
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
    fn install_use_remove_follow_memberlist_rules() {
        let (old, new) = (generate_key(), generate_key());
        let mut ring = Keyring::new(std::slice::from_ref(&old)).expect("ring");
        assert_eq!(ring.use_key(&new), Err(RingError::NotInstalled));
        assert_eq!(ring.install(&new), Ok(true));
        assert_eq!(ring.install(&new), Ok(false), "installing twice is a no-op");
        assert_eq!(ring.keys(), &[old.clone(), new.clone()]);
        let by_old = ring.seal(b"\x00a".to_vec());
        assert_eq!(ring.use_key(&new), Ok(true));
        assert_eq!(ring.primary(), Some(new.as_str()));
        assert_eq!(
            ring.open(&by_old).as_deref(),
            Some(&b"\x00a"[..]),
            "old still opens"
        );
        assert_eq!(ring.remove(&new), Err(RingError::RemovePrimary));
        assert_eq!(
            RingError::RemovePrimary.to_string(),
            "Removing the primary key is not allowed"
        );
        assert_eq!(ring.remove(&old), Ok(true));
        assert_eq!(ring.remove(&old), Ok(false));
        assert_eq!(ring.open(&by_old), None, "a removed key no longer opens");
        assert_eq!(ring.keys(), std::slice::from_ref(&new));
        assert!(matches!(
            ring.install("AAAA"),
            Err(RingError::Key(KeyError::Length(3)))
        ));
    }

    #[test]
    fn the_file_round_trips_primary_first() {
        let dir = std::env::temp_dir().join(format!(
            "meridian-keyring-{}",
            generate_key().replace(['/', '+', '='], "")
        ));
        let path = dir.join("serf").join("local.keyring");
        assert!(Keyring::load(&path).expect("no file").is_none());
        let (a, b) = (generate_key(), generate_key());
        let mut ring = Keyring::new(std::slice::from_ref(&a)).expect("ring");
        ring.install(&b).expect("install");
        ring.use_key(&b).expect("use");
        ring.save(&path).expect("save");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, serde_json::to_string(&[&b, &a]).expect("json"));
        assert_eq!(Keyring::load(&path).expect("load"), Some(vec![b, a]));
        std::fs::write(&path, "[]").expect("write");
        assert!(matches!(Keyring::load(&path), Err(FileError::Empty(_))));
        std::fs::write(&path, "[\"AAAA\"]").expect("write");
        assert!(matches!(Keyring::load(&path), Err(FileError::Key { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_keys_are_named() {
        assert_eq!(parse_key("not base64!").unwrap_err(), KeyError::Base64);
        assert_eq!(parse_key("AAAA").unwrap_err(), KeyError::Length(3));
        assert_eq!(parse_key(&generate_key()).map(|k| k.len()), Ok(32));
    }
}
