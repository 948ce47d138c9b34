//! Snapshot archives (`/v1/snapshot`, `meridian snapshot`): a consistent
//! copy of one datacenter's state store, in Consul's container shape: a
//! gzipped tar holding `meta.json`, the state and `SHA256SUMS` over both,
//! so a truncated or altered file is refused before anything is restored.
//!
//! The state inside is Meridian's own (`state.json`, the store's tables as
//! JSON), not Consul's Raft FSM encoding: a Consul snapshot cannot be
//! restored here, nor ours into Consul.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::state::StoreSnapshot;

const META: &str = "meta.json";
const STATE: &str = "state.json";
const SUMS: &str = "SHA256SUMS";
/// A restore reads at most this much uncompressed state.
const MAX_UNPACKED: u64 = 1024 * 1024 * 1024;

/// What `meridian snapshot inspect` shows (Consul's `meta.json` fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Meta {
    #[serde(rename = "ID")]
    pub id: String,
    /// Bytes of the state file.
    pub size: u64,
    pub index: u64,
    pub term: u64,
    pub version: u32,
}

#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("failed to read snapshot archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("snapshot archive is missing {0}")]
    Missing(&'static str),
    #[error("SHA256 hash mismatch for snapshot archive file {0:?}")]
    Checksum(String),
    #[error("failed to decode snapshot {0}: {1}")]
    Decode(&'static str, serde_json::Error),
    #[error("snapshot state exceeds {MAX_UNPACKED} bytes")]
    TooLarge,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn add(tar: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    h.set_cksum();
    tar.append_data(&mut h, name, data)
}

/// Packs the state into an archive.
pub fn encode(snap: &StoreSnapshot, term: u64) -> Result<(Meta, Vec<u8>), SnapshotError> {
    let state = serde_json::to_vec(snap).map_err(|e| SnapshotError::Decode(STATE, e))?;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let meta = Meta {
        id: format!("{term}-{}-{millis}", snap.last_index),
        size: state.len() as u64,
        index: snap.last_index,
        term,
        version: 1,
    };
    let meta_json = serde_json::to_vec_pretty(&meta).map_err(|e| SnapshotError::Decode(META, e))?;
    let sums = format!(
        "{}  {META}\n{}  {STATE}\n",
        hex(&Sha256::digest(&meta_json)),
        hex(&Sha256::digest(&state))
    );
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    add(&mut tar, META, &meta_json)?;
    add(&mut tar, STATE, &state)?;
    add(&mut tar, SUMS, sums.as_bytes())?;
    let bytes = tar.into_inner()?.finish()?;
    Ok((meta, bytes))
}

/// Unpacks and verifies an archive.
pub fn decode(archive: &[u8]) -> Result<(Meta, StoreSnapshot), SnapshotError> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let (mut meta, mut state, mut sums) = (None, None, None);
    for entry in tar.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        (&mut entry).take(MAX_UNPACKED + 1).read_to_end(&mut data)?;
        if data.len() as u64 > MAX_UNPACKED {
            return Err(SnapshotError::TooLarge);
        }
        match name.as_str() {
            META => meta = Some(data),
            STATE => state = Some(data),
            SUMS => sums = Some(String::from_utf8_lossy(&data).into_owned()),
            _ => {}
        }
    }
    let meta = meta.ok_or(SnapshotError::Missing(META))?;
    let state = state.ok_or(SnapshotError::Missing(STATE))?;
    let sums = sums.ok_or(SnapshotError::Missing(SUMS))?;
    for (name, data) in [(META, &meta), (STATE, &state)] {
        let want = sums
            .lines()
            .find_map(|l| l.strip_suffix(name).map(|h| h.trim().to_string()))
            .ok_or(SnapshotError::Missing(SUMS))?;
        if want != hex(&Sha256::digest(data)) {
            return Err(SnapshotError::Checksum(name.to_string()));
        }
    }
    let meta: Meta = serde_json::from_slice(&meta).map_err(|e| SnapshotError::Decode(META, e))?;
    let snap: StoreSnapshot =
        serde_json::from_slice(&state).map_err(|e| SnapshotError::Decode(STATE, e))?;
    Ok((meta, snap))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateStore;

    #[test]
    fn round_trip_and_tampering() {
        let mut s = StateStore::new();
        s.kv_set(5, "a/b", vec![0, 1, 2, 255], 42);
        let snap = s.snapshot();
        let (meta, bytes) = encode(&snap, 3).unwrap();
        assert_eq!(meta.index, 5);
        let (meta2, back) = decode(&bytes).unwrap();
        assert_eq!(meta, meta2);
        assert_eq!(back, snap);

        assert!(matches!(
            decode(&bytes[..bytes.len() / 2]),
            Err(SnapshotError::Io(_))
        ));
        assert!(decode(b"not an archive").is_err());

        // A state file changed after the sums were taken is refused.
        let mut tampered = snap.clone();
        tampered.kvs[0].flags = 7;
        let state = serde_json::to_vec(&tampered).unwrap();
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut orig = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        for e in orig.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let data = if name == STATE { state.clone() } else { data };
            add(&mut tar, &name, &data).unwrap();
        }
        let bad = tar.into_inner().unwrap().finish().unwrap();
        assert!(matches!(decode(&bad), Err(SnapshotError::Checksum(n)) if n == STATE));
    }
}
