//! Capped output pipes for the guest's stdout and stderr.
//!
//! Writes never fail: bytes past the cap are dropped and counted, so a guest that floods its
//! output keeps running (bounded by its time limit) and the host's memory stays bounded. The
//! last [`TAIL_BYTES`] written are kept too, so a traceback printed after a flood survives.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// How much of the end of a truncated stream is kept.
pub const TAIL_BYTES: usize = 8 << 10;

#[derive(Debug, Default)]
struct Inner {
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    cap: usize,
    total: u64,
}

/// A write-only pipe keeping its first `cap` bytes (and its last [`TAIL_BYTES`]).
#[derive(Debug, Clone)]
pub struct CappedPipe {
    inner: Arc<Mutex<Inner>>,
}

/// What a pipe captured.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    /// The first `cap` bytes.
    pub head: Vec<u8>,
    /// The last bytes written past the cap (empty when nothing was dropped).
    pub tail: Vec<u8>,
    /// Whether anything was dropped.
    pub truncated: bool,
}

impl CappedPipe {
    /// A pipe keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        CappedPipe {
            inner: Arc::new(Mutex::new(Inner {
                cap,
                ..Inner::default()
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a writer panicked mid-push; the bytes are still valid.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, bytes: &[u8]) {
        let mut inner = self.lock();
        inner.total += bytes.len() as u64;
        let room = inner.cap.saturating_sub(inner.head.len());
        let (kept, rest) = bytes.split_at(room.min(bytes.len()));
        inner.head.extend_from_slice(kept);
        if !rest.is_empty() {
            let start = rest.len().saturating_sub(TAIL_BYTES);
            inner.tail.extend(&rest[start..]);
            let excess = inner.tail.len().saturating_sub(TAIL_BYTES);
            inner.tail.drain(..excess);
        }
    }

    /// Takes what was captured, leaving the pipe empty (its cap unchanged).
    pub fn take(&self) -> Captured {
        let mut inner = self.lock();
        let truncated = inner.total > inner.head.len() as u64;
        let captured = Captured {
            head: std::mem::take(&mut inner.head),
            tail: inner.tail.drain(..).collect(),
            truncated,
        };
        inner.total = 0;
        captured
    }

    /// Changes the cap for what is written next (sessions set it per turn).
    pub fn set_cap(&self, cap: usize) {
        self.lock().cap = cap;
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1 << 20)
    }
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail_and_flags_truncation() {
        let pipe = CappedPipe::new(4);
        pipe.push(b"ab");
        pipe.push(b"cdef");
        pipe.push(b"gh");
        let c = pipe.take();
        assert_eq!(c.head, b"abcd");
        assert_eq!(c.tail, b"efgh");
        assert!(c.truncated);
        let empty = pipe.take();
        assert!(!empty.truncated && empty.head.is_empty());
    }

    #[test]
    fn tail_is_bounded() {
        let pipe = CappedPipe::new(0);
        for _ in 0..100 {
            pipe.push(&[b'x'; 1000]);
        }
        let c = pipe.take();
        assert_eq!(c.tail.len(), TAIL_BYTES);
        assert!(c.head.is_empty() && c.truncated);
    }
}
