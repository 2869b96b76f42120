//! Container output and input streams: docker's multiplexed framing, detach keys, and the
//! hijacked attach loop.
//!
//! Without a TTY the daemon frames output as `[stream, 0, 0, 0, len(u32 BE)]` + payload
//! ([`Demuxer`]); with one it sends raw bytes. [`DetachDetector`] is moby's escape proxy:
//! it holds back bytes that may start the detach sequence. [`pump`] runs one attached session
//! as docker's `hijackedIOStreamer` does, half-closing the connection when stdin ends.

use crate::client::{next_chunk, Hijacked};
use bytes::Bytes;
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Which output a demultiplexed chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Stdout,
    Stderr,
    /// Stream 3: an error the daemon reports in band.
    System,
}

/// Incremental decoder of docker's stdcopy framing.
#[derive(Default)]
pub struct Demuxer {
    buf: Vec<u8>,
}

impl Demuxer {
    /// Adds bytes and returns every complete frame.
    pub fn feed(&mut self, data: &[u8]) -> Vec<(Channel, Vec<u8>)> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 8 {
                break;
            }
            let len =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + len {
                break;
            }
            let ch = match self.buf[0] {
                0 | 1 => Channel::Stdout,
                2 => Channel::Stderr,
                _ => Channel::System,
            };
            out.push((ch, self.buf[8..8 + len].to_vec()));
            self.buf.drain(..8 + len);
        }
        out
    }
}

/// Parses `ctrl-p,ctrl-q` into bytes, as moby's `term.ToBytes`.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        let lower = key.to_ascii_lowercase();
        if key.len() > 1 && !lower.starts_with("ctrl-") {
            return Err(format!("Unknown character: '{key}'"));
        }
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        let rest = &lower[5..];
        let b = rest.as_bytes();
        if b.len() != 1 {
            return Err(format!("Unknown character: '{key}'"));
        }
        let c = b[0];
        let code = match c {
            b'a'..=b'z' => c - b'a' + 1,
            b'@' => 0,
            b'[' => 27,
            b'\\' => 28,
            b']' => 29,
            b'^' => 30,
            b'_' => 31,
            _ => return Err(format!("Unknown character: '{key}'")),
        };
        out.push(code);
    }
    Ok(out)
}

pub const DEFAULT_DETACH_KEYS: &[u8] = &[16, 17];

/// Watches input for the detach sequence, holding back a partial match.
pub struct DetachDetector {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachDetector {
    pub fn new(keys: Vec<u8>) -> Self {
        Self { keys, matched: 0 }
    }

    /// Returns the bytes to forward and whether the full sequence was typed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &c in input {
            if self.keys.is_empty() {
                out.push(c);
                continue;
            }
            if c == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // Mismatch: release what was held, then reconsider this byte.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if c == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(c);
            }
        }
        (out, false)
    }
}

/// How an attached session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The daemon closed the output stream.
    OutputDone,
    /// The user typed the detach sequence.
    Detached,
    /// Stdin ended and there was no output to wait for.
    InputDone,
}

fn write_out(ch: Channel, data: &[u8], tty: bool) {
    // With a TTY the container's stderr arrives on stdout anyway.
    let res = if ch == Channel::Stderr && !tty {
        let mut e = std::io::stderr().lock();
        e.write_all(data).and_then(|_| e.flush())
    } else {
        let mut o = std::io::stdout().lock();
        o.write_all(data).and_then(|_| o.flush())
    };
    let _ = res;
}

/// Options of one attached session.
pub struct PumpOptions {
    pub tty: bool,
    pub stdin: bool,
    pub output: bool,
    /// Detach sequence to watch for on stdin (TTY sessions, as docker).
    pub detach_keys: Option<Vec<u8>>,
}

/// Reads stdin on a plain thread (it blocks in `read`, and must survive a raw terminal).
fn spawn_stdin_reader() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match std::io::Read::read(&mut stdin, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Runs an attached session until the output ends or the user detaches.
pub async fn pump(h: Hijacked, opts: PumpOptions) -> anyhow::Result<Ended> {
    let (io, leftover) = match h {
        Hijacked::Body(mut body) => {
            let mut demux = Demuxer::default();
            while let Some(chunk) = next_chunk(&mut body).await {
                let chunk = chunk?;
                emit(&mut demux, &chunk, opts.tty)?;
            }
            return Ok(Ended::OutputDone);
        }
        Hijacked::Stream { io, leftover } => (io, leftover),
    };
    let (mut rd, mut wr) = tokio::io::split(io);
    let tty = opts.tty;
    let mut output = tokio::spawn(async move {
        let mut demux = Demuxer::default();
        emit(&mut demux, &leftover, tty)?;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, anyhow::Error>(());
            }
            emit(&mut demux, &Bytes::copy_from_slice(&buf[..n]), tty)?;
        }
    });
    let detach_keys = opts.detach_keys.clone();
    let want_stdin = opts.stdin;
    let mut input = tokio::spawn(async move {
        if want_stdin {
            let mut rx = spawn_stdin_reader();
            let mut detector = detach_keys.map(DetachDetector::new);
            while let Some(data) = rx.recv().await {
                let (fwd, detached) = match detector.as_mut() {
                    Some(d) => d.feed(&data),
                    None => (data, false),
                };
                if !fwd.is_empty() && wr.write_all(&fwd).await.is_err() {
                    break;
                }
                if detached {
                    return true;
                }
            }
        }
        // Half-close so the daemon closes the container's stdin; keep reading output.
        let _ = wr.shutdown().await;
        false
    });
    tokio::select! {
        r = &mut output => {
            input.abort();
            r??;
            Ok(Ended::OutputDone)
        }
        detached = &mut input => {
            if detached.unwrap_or(false) {
                output.abort();
                return Ok(Ended::Detached);
            }
            if !opts.output {
                output.abort();
                return Ok(Ended::InputDone);
            }
            output.await??;
            Ok(Ended::OutputDone)
        }
    }
}

fn emit(demux: &mut Demuxer, data: &Bytes, tty: bool) -> anyhow::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    if tty {
        write_out(Channel::Stdout, data, true);
        return Ok(());
    }
    for (ch, frame) in demux.feed(data) {
        if ch == Channel::System {
            anyhow::bail!("{}", String::from_utf8_lossy(&frame));
        }
        write_out(ch, &frame, false);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![stream, 0, 0, 0];
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn demuxer_splits_frames_by_stream() {
        let mut d = Demuxer::default();
        let mut bytes = frame(1, b"out\n");
        bytes.extend(frame(2, b"err\n"));
        let got = d.feed(&bytes);
        assert_eq!(
            got,
            vec![
                (Channel::Stdout, b"out\n".to_vec()),
                (Channel::Stderr, b"err\n".to_vec())
            ]
        );
    }

    #[test]
    fn demuxer_waits_for_partial_frames() {
        let mut d = Demuxer::default();
        let bytes = frame(1, b"hello");
        assert!(d.feed(&bytes[..3]).is_empty());
        assert!(d.feed(&bytes[3..9]).is_empty());
        assert_eq!(
            d.feed(&bytes[9..]),
            vec![(Channel::Stdout, b"hello".to_vec())]
        );
    }

    #[test]
    fn detach_keys_parse_like_moby() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(
            parse_detach_keys("a,ctrl-@,ctrl-[").unwrap(),
            vec![b'a', 0, 27]
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }

    #[test]
    fn the_detach_sequence_is_caught_and_not_forwarded() {
        let mut d = DetachDetector::new(vec![16, 17]);
        assert_eq!(d.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(d.feed(b"\x11rest"), (vec![], true));
    }

    #[test]
    fn a_partial_sequence_is_released_on_mismatch() {
        let mut d = DetachDetector::new(vec![16, 17]);
        assert_eq!(d.feed(b"\x10x"), (b"\x10x".to_vec(), false));
        assert_eq!(d.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
    }
}
