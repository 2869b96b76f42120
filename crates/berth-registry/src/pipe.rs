//! Byte pipes between the download tasks and the extracting threads.
//!
//! A download streams each chunk into the content store and into a [`ChunkSender`]; the
//! layer extractor reads the other end as an ordinary `Read` ([`ChannelReader`]). The
//! channel is bounded, so a slow extractor slows its download rather than filling memory.
//! The reader sees end-of-stream only after the download verified the blob's digest; a
//! mismatch or an interrupted download reads as an error, so the layer being unpacked is
//! dropped instead of committed.

use crate::progress::{emit, Progress, ProgressTx, Throttle};
use bytes::Bytes;
use std::io::{self, Read};
use std::sync::mpsc;

/// Chunks in flight per layer.
const DEPTH: usize = 64;

enum Chunk {
    Data(Bytes),
    End,
    Failed(String),
}

/// The writing end of a pipe.
#[derive(Debug)]
pub(crate) struct ChunkSender {
    tx: mpsc::SyncSender<Chunk>,
}

/// The reading end of a pipe.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    cur: Bytes,
    ended: bool,
}

pub(crate) fn pipe() -> (ChunkSender, ChannelReader) {
    let (tx, rx) = mpsc::sync_channel(DEPTH);
    (
        ChunkSender { tx },
        ChannelReader {
            rx,
            cur: Bytes::new(),
            ended: false,
        },
    )
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chunk::Data(b) => write!(f, "Data({})", b.len()),
            Chunk::End => f.write_str("End"),
            Chunk::Failed(m) => write!(f, "Failed({m})"),
        }
    }
}

impl ChunkSender {
    /// Sends a chunk; false when the reader is gone (its extraction failed).
    pub fn send(&self, data: Bytes) -> bool {
        data.is_empty() || self.tx.send(Chunk::Data(data)).is_ok()
    }

    /// Ends the stream successfully (after verification).
    pub fn finish(self) {
        let _ = self.tx.send(Chunk::End);
    }

    /// Ends the stream with an error the reader returns.
    pub fn fail(self, message: impl Into<String>) {
        let _ = self.tx.send(Chunk::Failed(message.into()));
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.cur.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Chunk::Data(b)) => self.cur = b,
                Ok(Chunk::End) => self.ended = true,
                Ok(Chunk::Failed(m)) => return Err(io::Error::other(m)),
                Err(_) => return Err(io::Error::other("download interrupted")),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// A reader that reports how much of a layer blob the extractor consumed.
pub(crate) struct ExtractProgress<R> {
    inner: R,
    id: String,
    current: u64,
    total: u64,
    throttle: Throttle,
    tx: ProgressTx,
}

impl<R: Read> ExtractProgress<R> {
    pub fn new(inner: R, id: String, total: u64, tx: ProgressTx) -> Self {
        Self {
            inner,
            id,
            current: 0,
            total,
            throttle: Throttle::new(total),
            tx,
        }
    }
}

impl<R: Read> Read for ExtractProgress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.current += n as u64;
        if n > 0 && self.throttle.due(self.current, self.total) {
            emit(
                &self.tx,
                Progress::LayerExtracting {
                    id: self.id.clone(),
                    current: self.current,
                    total: self.total,
                },
            );
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_sees_all_chunks_then_end() {
        let (tx, mut rx) = pipe();
        let t = std::thread::spawn(move || {
            for i in 0..200u8 {
                assert!(tx.send(Bytes::from(vec![i; 1000])));
            }
            tx.finish();
        });
        let mut out = Vec::new();
        rx.read_to_end(&mut out).unwrap();
        t.join().unwrap();
        assert_eq!(out.len(), 200_000);
        assert_eq!(out[199_999], 199);
    }

    #[test]
    fn a_failed_or_abandoned_stream_reads_as_an_error() {
        let (tx, mut rx) = pipe();
        tx.send(Bytes::from_static(b"abc"));
        tx.fail("filesystem layer verification failed");
        let mut out = Vec::new();
        let err = rx.read_to_end(&mut out).unwrap_err();
        assert!(err.to_string().contains("verification failed"));

        let (tx, mut rx) = pipe();
        drop(tx);
        assert!(rx.read(&mut [0u8; 4]).is_err(), "no End means interrupted");
    }
}
