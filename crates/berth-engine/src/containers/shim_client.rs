//! The daemon's side of the shim socket: async framing over a unix stream.

use berth_shim::proto::{self, Frame, Request};
use std::io;
use std::path::Path;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// The first read takes up to this much; a read that fills its room doubles the next, up
/// to [`MAX_READ`]. Most connections (a container's watch, a health probe) carry a few
/// small events, so they never need more than this; output streams grow to full reads.
const FIRST_READ: usize = 4 * 1024;
const MAX_READ: usize = 64 * 1024;

pub struct ShimReader {
    rd: OwnedReadHalf,
    /// Bytes read and not yet decoded. Reads go straight into its spare capacity, and it
    /// is allocated only once the socket is readable and freed once drained: a connection
    /// that waits (a container's watch, for its whole life) holds no buffer, neither here
    /// nor on the stack of the future that awaits [`ShimReader::next`].
    buf: Vec<u8>,
    read_size: usize,
}

pub struct ShimWriter {
    wr: OwnedWriteHalf,
    out: Vec<u8>,
}

/// Connects to a shim's socket.
pub async fn connect(path: &Path) -> io::Result<(ShimReader, ShimWriter)> {
    Ok(split(UnixStream::connect(path).await?))
}

fn split(stream: UnixStream) -> (ShimReader, ShimWriter) {
    let (rd, wr) = stream.into_split();
    (
        ShimReader {
            rd,
            buf: Vec::new(),
            read_size: FIRST_READ,
        },
        ShimWriter {
            wr,
            out: Vec::new(),
        },
    )
}

impl ShimReader {
    /// The next frame, or `None` when the shim closed the connection.
    pub async fn next(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(f) = proto::decode(&mut self.buf, false)? {
                return Ok(Some(f));
            }
            if self.buf.is_empty() {
                self.buf = Vec::new();
            }
            self.rd.readable().await?;
            self.buf.reserve(self.read_size);
            let room = self.buf.capacity() - self.buf.len();
            match self.rd.try_read_buf(&mut self.buf) {
                Ok(0) => return Ok(None),
                Ok(n) if n == room => self.read_size = (self.read_size * 2).min(MAX_READ),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use berth_shim::proto::Event;

    /// Tasks that follow a shim (a container's watch, its health checks) hold this future
    /// for the container's whole life: it must not carry a read buffer.
    #[tokio::test]
    async fn waiting_for_a_frame_holds_no_buffer() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let (mut r, _w) = split(a);
        assert!(std::mem::size_of_val(&r.next()) < 512);
        let mut out = Vec::new();
        proto::encode_json(&mut out, &Event::Ok);
        b.write_all(&out).await.unwrap();
        assert!(matches!(
            r.next().await.unwrap(),
            Some(Frame::Event(Event::Ok))
        ));
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), r.next());
        assert!(waiting.await.is_err());
        assert_eq!(r.buf.capacity(), 0);
    }

    #[tokio::test]
    async fn frames_larger_than_a_read_arrive_whole() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let (mut r, _w) = split(a);
        let data = vec![7u8; 300 * 1024];
        let mut out = Vec::new();
        proto::encode_output(&mut out, "exec1", 1, &data);
        proto::encode_json(&mut out, &Event::Ok);
        let writer = tokio::spawn(async move { b.write_all(&out).await });
        match r.next().await.unwrap() {
            Some(Frame::Output { key, data: got, .. }) => {
                assert_eq!((key.as_str(), got.len()), ("exec1", data.len()));
            }
            other => panic!("unexpected frame {other:?}"),
        }
        assert!(matches!(
            r.next().await.unwrap(),
            Some(Frame::Event(Event::Ok))
        ));
        assert_eq!(r.read_size, MAX_READ);
        writer.await.unwrap().unwrap();
    }
}
