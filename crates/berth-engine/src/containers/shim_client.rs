//! The daemon's side of the shim socket: async framing over a unix stream.

use berth_shim::proto::{self, Frame, Request};
use std::io;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

pub struct ShimReader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
}

pub struct ShimWriter {
    wr: OwnedWriteHalf,
    out: Vec<u8>,
}

/// Connects to a shim's socket.
pub async fn connect(path: &Path) -> io::Result<(ShimReader, ShimWriter)> {
    let stream = UnixStream::connect(path).await?;
    let (rd, wr) = stream.into_split();
    Ok((
        ShimReader {
            rd,
            buf: Vec::with_capacity(64 * 1024),
        },
        ShimWriter {
            wr,
            out: Vec::new(),
        },
    ))
}

impl ShimReader {
    /// The next frame, or `None` when the shim closed the connection.
    pub async fn next(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(f) = proto::decode(&mut self.buf, false)? {
                return Ok(Some(f));
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.rd.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

impl ShimWriter {
    pub async fn send(&mut self, req: &Request) -> io::Result<()> {
        self.out.clear();
        proto::encode_json(&mut self.out, req);
        self.wr.write_all(&self.out).await
    }

    pub async fn stdin(&mut self, key: &str, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(proto::MAX_FRAME / 2) {
            self.out.clear();
            proto::encode_stdin(&mut self.out, key, chunk);
            self.wr.write_all(&self.out).await?;
        }
        Ok(())
    }
}

/// Sends one request on a fresh connection and returns the first event that answers it.
pub async fn request(path: &Path, req: &Request) -> io::Result<Option<proto::Event>> {
    let (mut r, mut w) = connect(path).await?;
    w.send(req).await?;
    loop {
        match r.next().await? {
            Some(Frame::Event(e)) => return Ok(Some(e)),
            Some(_) => continue,
            None => return Ok(None),
        }
    }
}

/// Sends a request answered by `Ok` or `Error` (signal, resize, close stdin).
pub async fn command(path: &Path, req: &Request) -> io::Result<()> {
    match request(path, req).await? {
        Some(proto::Event::Ok) => Ok(()),
        Some(proto::Event::Error { message }) => Err(io::Error::other(message)),
        Some(other) => Err(io::Error::other(format!(
            "unexpected answer from shim: {other:?}"
        ))),
        None => Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "shim closed the connection",
        )),
    }
}
