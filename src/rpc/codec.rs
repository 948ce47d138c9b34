//! Framing of server RPC: a 4-byte big-endian length, then the body. A
//! request's body is its id (4 bytes, big-endian; the connection's
//! requests are answered out of order), its method's tag (one byte) and
//! its arguments; an answer's body is its request's id and
//! `Result<reply, refusal>`. Values are MessagePack with
//! named fields, so optional and defaulted fields survive.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::RpcError;

/// Frames larger than this are refused: Raft batches and snapshot chunks
/// stay well below it, and a corrupt length cannot make us allocate more.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// A body buffer starts at most this big and grows only as bytes arrive,
/// so a peer that announces a large frame and sends nothing costs little.
const INITIAL_BUFFER: usize = 64 * 1024;

pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, RpcError> {
    rmp_serde::to_vec_named(msg).map_err(|e| RpcError::Codec(e.to_string()))
}

pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, RpcError> {
    rmp_serde::from_slice(body).map_err(|e| RpcError::Codec(e.to_string()))
}

/// Writes one frame whose body is `head` followed by `body`.
pub async fn write_frame<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    head: &[u8],
    body: &[u8],
) -> Result<(), RpcError> {
    let len = head.len() + body.len();
    if len > MAX_FRAME {
        return Err(RpcError::Codec(format!(
            "frame of {len} bytes exceeds {MAX_FRAME}"
        )));
    }
    // One write: with TCP_NODELAY each write_all could leave as a packet
    // of its own.
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&(len as u32).to_be_bytes());
    frame.extend_from_slice(head);
    frame.extend_from_slice(body);
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

pub async fn read_frame<R: AsyncReadExt + Unpin>(r: &mut R) -> Result<Vec<u8>, RpcError> {
    let len = r.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(RpcError::Codec(format!(
            "frame of {len} bytes exceeds {MAX_FRAME}"
        )));
    }
    let mut body = Vec::with_capacity(len.min(INITIAL_BUFFER));
    (&mut *r).take(len as u64).read_to_end(&mut body).await?;
    if body.len() < len {
        return Err(RpcError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_round_trips_and_a_short_one_is_an_error() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &[7], b"hello").await.unwrap();
        let mut r = buf.as_slice();
        assert_eq!(read_frame(&mut r).await.unwrap(), b"\x07hello");
        // Announces 1 GiB: refused before any allocation.
        let mut r: &[u8] = &[0x40, 0, 0, 0, 1];
        assert!(matches!(read_frame(&mut r).await, Err(RpcError::Codec(_))));
        // Announces 10 bytes, sends 3.
        let mut r: &[u8] = &[0, 0, 0, 10, 1, 2, 3];
        assert!(matches!(read_frame(&mut r).await, Err(RpcError::Io(_))));
    }
}
