//! Framing: every message on the socket (and on a worker's pipes) is a 4-byte big-endian length
//! followed by that many bytes of UTF-8 JSON. The length is checked against
//! [`MAX_FRAME_BYTES`] before anything is allocated.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame body accepted, in bytes: 16 MiB. Code is at most 4 MiB
/// ([`start_sandbox::MAX_CODE_BYTES`]) and output at most a few MiB, so this leaves room for JSON
/// escaping while bounding what one peer can make the daemon buffer.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

/// Bytes in a frame header.
pub const HEADER_BYTES: usize = 4;

/// A framing failure.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The header announced a body over [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes is over the limit of {MAX_FRAME_BYTES} bytes")]
    TooLarge(usize),
    /// The peer closed the stream in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// Reading or writing failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes `body` as one frame.
///
/// # Errors
/// [`FrameError::TooLarge`] when `body` is over [`MAX_FRAME_BYTES`].
pub fn encode(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    let len = checked_len(body.len())?;
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

fn checked_len(len: usize) -> Result<u32, FrameError> {
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    u32::try_from(len).map_err(|_| FrameError::TooLarge(len))
}

/// Decodes one frame from the front of `buf`, removing it: `Ok(None)` when `buf` does not yet
/// hold a whole frame.
///
/// # Errors
/// [`FrameError::TooLarge`] as soon as a header announces too large a body; the stream cannot
/// be resynchronised after that and should be closed.
pub fn decode(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER_BYTES>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*header) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    if buf.len() < HEADER_BYTES + len {
        return Ok(None);
    }
    let body = buf[HEADER_BYTES..HEADER_BYTES + len].to_vec();
    buf.drain(..HEADER_BYTES + len);
    Ok(Some(body))
}

/// Reads one frame: `Ok(None)` on a clean end of stream between frames.
///
/// # Errors
/// [`FrameError::TooLarge`], [`FrameError::Truncated`] or an I/O error.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_BYTES];
    let mut got = 0;
    while got < HEADER_BYTES {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    match r.read_exact(&mut body).await {
        Ok(_) => Ok(Some(body)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// Writes one frame and flushes.
///
/// # Errors
/// [`FrameError::TooLarge`] or an I/O error.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<(), FrameError> {
    let frame = encode(body)?;
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Blocking [`read_frame`] for a worker's pipes.
///
/// # Errors
/// As [`read_frame`].
pub fn read_frame_sync<R: std::io::Read>(r: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_BYTES];
    let mut got = 0;
    while got < HEADER_BYTES {
        let n = r.read(&mut header[got..])?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    match r.read_exact(&mut body) {
        Ok(()) => Ok(Some(body)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// Blocking [`write_frame`] for a worker's pipes.
///
/// # Errors
/// As [`write_frame`].
pub fn write_frame_sync<W: std::io::Write>(w: &mut W, body: &[u8]) -> Result<(), FrameError> {
    let frame = encode(body)?;
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let mut buf = encode(b"{\"id\":1}").unwrap();
        buf.extend(encode(b"").unwrap());
        assert_eq!(decode(&mut buf).unwrap().unwrap(), b"{\"id\":1}");
        assert_eq!(decode(&mut buf).unwrap().unwrap(), b"");
        assert!(decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn oversized_header_is_refused_before_reading_the_body() {
        let mut buf = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes().to_vec();
        assert!(matches!(decode(&mut buf), Err(FrameError::TooLarge(_))));
        let mut r: &[u8] = &u32::MAX.to_be_bytes();
        assert!(matches!(
            read_frame_sync(&mut r),
            Err(FrameError::TooLarge(_))
        ));
    }

    #[test]
    fn truncated_frames_are_reported() {
        let mut r: &[u8] = &[0, 0];
        assert!(matches!(
            read_frame_sync(&mut r),
            Err(FrameError::Truncated)
        ));
        let mut r: &[u8] = &[0, 0, 0, 9, b'x'];
        assert!(matches!(
            read_frame_sync(&mut r),
            Err(FrameError::Truncated)
        ));
        let mut r: &[u8] = &[];
        assert!(read_frame_sync(&mut r).unwrap().is_none());
    }

    proptest! {
        // Arbitrary bytes never panic the decoder; what it returns is consistent with the
        // header it saw.
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = bytes.clone();
            match decode(&mut buf) {
                Ok(Some(body)) => {
                    prop_assert_eq!(buf.len(), bytes.len() - HEADER_BYTES - body.len());
                    prop_assert_eq!(&bytes[HEADER_BYTES..HEADER_BYTES + body.len()], &body[..]);
                }
                Ok(None) => prop_assert_eq!(&buf, &bytes),
                Err(FrameError::TooLarge(n)) => prop_assert!(n > MAX_FRAME_BYTES),
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
            let mut r: &[u8] = &bytes;
            let _ = read_frame_sync(&mut r);
        }

        // Any sequence of bodies survives encoding, concatenation and split delivery.
        #[test]
        fn frames_round_trip_in_any_chunking(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8),
            chunk in 1usize..17,
        ) {
            let mut wire = Vec::new();
            for b in &bodies {
                wire.extend(encode(b).unwrap());
            }
            let mut buf = Vec::new();
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(body) = decode(&mut buf).unwrap() {
                    out.push(body);
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(out, bodies);
        }
    }
}
