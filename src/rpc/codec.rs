//! Framing of server RPC: a 4-byte big-endian length, then one MessagePack
//! value (named fields, so optional and defaulted fields survive).

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::RpcError;

/// Frames larger than this are refused: Raft batches and snapshot chunks
/// stay well below it, and a corrupt length cannot make us allocate more.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

pub async fn write_frame<W: AsyncWriteExt + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), RpcError> {
    let body = rmp_serde::to_vec_named(msg).map_err(|e| RpcError::Codec(e.to_string()))?;
    if body.len() > MAX_FRAME {
        return Err(RpcError::Codec(format!(
            "frame of {} bytes exceeds {MAX_FRAME}",
            body.len()
        )));
    }
    w.write_all(&(body.len() as u32).to_be_bytes()).await?;
    w.write_all(&body).await?;
    w.flush().await?;
    Ok(())
}

pub async fn read_frame<R: AsyncReadExt + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> Result<T, RpcError> {
    let len = r.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(RpcError::Codec(format!(
            "frame of {len} bytes exceeds {MAX_FRAME}"
        )));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    rmp_serde::from_slice(&body).map_err(|e| RpcError::Codec(e.to_string()))
}
