//! Streams to clients: Docker's 8-byte-header multiplexing, hijacked connections for
//! attach and exec (HTTP upgrade), and plain streaming bodies.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_engine::containers::attach::{Input, OutputChunk};
use berth_engine::containers::AttachStreams;
use bytes::Bytes;
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// One multiplexed frame: `[stream, 0, 0, 0, len (u32 BE)] + data`.
pub fn frame(stream: u8, data: &[u8]) -> Bytes {
    let mut b = Vec::with_capacity(8 + data.len());
    frame_into(&mut b, stream, data);
    Bytes::from(b)
}

/// Appends one multiplexed frame to `out`.
pub fn frame_into(out: &mut Vec<u8>, stream: u8, data: &[u8]) {
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
}

/// Whether the client asked to hijack the connection (`Connection: Upgrade`, `Upgrade: tcp`).
pub fn wants_upgrade(h: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, want: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.to_ascii_lowercase().contains(want))
                .unwrap_or(false)
        })
    };
    has(header::CONNECTION, "upgrade") && h.contains_key(header::UPGRADE)
}

fn content_type(multiplexed: bool) -> &'static str {
    if multiplexed {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    }
}

/// The `101 UPGRADED` answer that hands the connection over.
pub fn upgrade_response(multiplexed: bool) -> Response {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, content_type(multiplexed))
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn encode(chunk: &OutputChunk, multiplexed: bool) -> Bytes {
    if multiplexed {
        frame(chunk.stream, &chunk.data)
    } else {
        chunk.data.clone()
    }
}

/// Pumps an attach session over an upgraded connection until the output ends.
pub async fn pump_hijacked(
    on: hyper::upgrade::OnUpgrade,
    streams: AttachStreams,
    multiplexed: bool,
    preface: Option<Bytes>,
) {
    let Ok(upgraded) = on.await else { return };
    pump_upgraded(upgraded, streams, multiplexed, preface).await
}

/// [`pump_hijacked`] on a connection already upgraded.
pub async fn pump_upgraded(
    upgraded: hyper::upgrade::Upgraded,
    mut streams: AttachStreams,
    multiplexed: bool,
    preface: Option<Bytes>,
) {
    let (mut rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
    if let Some(p) = preface {
        let _ = wr.write_all(&p).await;
    }
    let input = streams.input.take();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    if let Some(tx) = &input {
                        let _ = tx.send(Input::Eof).await;
                    }
                    // Keep the sender alive so the session is not seen as detached.
                    std::future::pending::<()>().await;
                }
                Ok(n) => {
                    if let Some(tx) = &input {
                        if tx
                            .send(Input::Data(Bytes::copy_from_slice(&buf[..n])))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        }
    });
    while let Some(chunk) = streams.output.recv().await {
        if wr.write_all(&encode(&chunk, multiplexed)).await.is_err() {
            break;
        }
        // Coalesce what is already queued into the same flush.
        while let Ok(more) = streams.output.try_recv() {
            if wr.write_all(&encode(&more, multiplexed)).await.is_err() {
                break;
            }
        }
        if wr.flush().await.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
    reader.abort();
}

/// The plain `200 OK` form: output only, as a streaming body.
pub fn streaming_output(output: mpsc::Receiver<OutputChunk>, multiplexed: bool) -> Response {
    let stream =
        tokio_stream_from(output).map(move |c| Ok::<_, std::io::Error>(encode(&c, multiplexed)));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type(multiplexed))
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A receiver as a stream.
pub fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Newline-delimited JSON messages as a streaming body (`/events`, pull progress, load).
pub fn json_lines<S>(stream: S) -> Response
where
    S: futures_util::Stream<Item = serde_json::Value> + Send + 'static,
{
    let body = stream.map(|v| {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(line))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Aborts the task when dropped: a long operation stops when its client goes away.
struct AbortOnDrop(tokio::task::JoinHandle<berth_core::Result<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The state of a progress stream.
struct Progress {
    rx: mpsc::UnboundedReceiver<serde_json::Value>,
    task: AbortOnDrop,
    pending: std::collections::VecDeque<serde_json::Value>,
    finished: bool,
}

impl Progress {
    /// Records the end of the work: what it still said, then its error if it failed.
    fn finish(&mut self, result: Result<berth_core::Result<()>, tokio::task::JoinError>) {
        self.finished = true;
        while let Ok(m) = self.rx.try_recv() {
            self.pending.push_back(m);
        }
        let err = match result {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.message().to_string(),
            Err(e) => format!("internal error: {e}"),
        };
        self.pending
            .push_back(crate::convert::progress::error_out(&err));
    }
}

/// Docker's progress stream for a long operation (pull, push): `work` runs on its own
/// task and sends JSON messages to the other end of `rx`. As dockerd, a failure before
/// the first message is an ordinary error response (with its status); once messages
/// flowed, the answer is `200` and a failure is the last message
/// (`{"errorDetail":..,"error":..}`). The work is aborted when the client goes away.
pub async fn progress_stream<F>(
    work: F,
    rx: mpsc::UnboundedReceiver<serde_json::Value>,
) -> Result<Response, crate::error::ApiError>
where
    F: std::future::Future<Output = berth_core::Result<()>> + Send + 'static,
{
    let mut st = Progress {
        rx,
        task: AbortOnDrop(tokio::spawn(work)),
        pending: std::collections::VecDeque::new(),
        finished: false,
    };
    tokio::select! {
        biased;
        Some(m) = st.rx.recv() => st.pending.push_back(m),
        r = &mut st.task.0 => {
            st.finished = true;
            if st.rx.is_empty() {
                return match r {
                    Ok(Ok(())) => Ok(json_lines(futures_util::stream::empty())),
                    Ok(Err(e)) => Err(crate::error::ApiError(e)),
                    Err(e) => Err(crate::error::ApiError(berth_core::Error::internal(e.to_string()))),
                };
            }
            st.finish(r);
        }
    }
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(m) = st.pending.pop_front() {
                return Some((m, st));
            }
            if st.finished {
                return None;
            }
            tokio::select! {
                biased;
                Some(m) = st.rx.recv() => return Some((m, st)),
                r = &mut st.task.0 => st.finish(r),
            }
        }
    });
    Ok(json_lines(stream))
}

const CHUNK: usize = 256 * 1024;

/// A blocking writer feeding a streaming response.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// A tar produced by `job` on a blocking thread, streamed as `application/x-tar`.
pub fn archive_response(job: berth_engine::ArchiveJob, what: &'static str) -> Response {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let result = job(&mut w)
            .and_then(|_| std::io::Write::flush(&mut w).map_err(berth_core::Error::from));
        if let Err(e) = result {
            tracing::warn!(error = %e, "{what} failed");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-tar")
        .body(Body::from_stream(tokio_stream_from(rx)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_dockers_header() {
        let f = frame(2, b"hi");
        assert_eq!(&f[..], &[2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
    }

    #[test]
    fn upgrade_needs_both_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "Upgrade".parse().unwrap());
        assert!(!wants_upgrade(&h));
        h.insert(header::UPGRADE, "tcp".parse().unwrap());
        assert!(wants_upgrade(&h));
    }
}
