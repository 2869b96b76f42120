//! `POST /build`: the legacy build endpoint the docker CLI uses without buildx. The body is
//! the context (a tar, maybe compressed, or a lone Dockerfile); the answer streams Docker's
//! JSON messages (`{"stream": ...}`, `{"aux": {"ID": ...}}`, and on failure
//! `{"errorDetail": {"code": N, "message": ...}, "error": ...}`).
//!
//! With `q=1` the output is held back: a successful build answers only with the image id,
//! a failed one with everything it printed, then the error (as Docker's daemon does).

use crate::backend::Backend;
use crate::error::{bad_request, ApiResult};
use crate::params::Params;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use berth_engine::build::{BuildMessage, BuildOptions, BuildRequest};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// How long a silent build waits before checking the client is still there.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new().route("/build", post(build::<B>))
}

/// A JSON object parameter (`buildargs`, `labels`); empty or absent: none.
fn json_map<T: serde::de::DeserializeOwned>(
    p: &Params,
    key: &str,
) -> ApiResult<BTreeMap<String, T>> {
    match p.get(key).filter(|v| !v.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(v) => serde_json::from_str(v).map_err(|e| bad_request(format!("invalid {key}: {e}"))),
    }
}

/// The build options of a `POST /build` query, as Docker reads them.
pub fn options(p: &Params) -> ApiResult<BuildOptions> {
    let dockerfile = p.string("dockerfile");
    let mut extra_hosts = Vec::new();
    for v in p.all("extrahosts") {
        extra_hosts.extend(v.split(',').filter(|s| !s.is_empty()).map(str::to_string));
    }
    Ok(BuildOptions {
        dockerfile: if dockerfile.is_empty() {
            "Dockerfile".to_string()
        } else {
            dockerfile
        },
        tags: p.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        build_args: json_map(p, "buildargs")?,
        target: p.string("target"),
        no_cache: p.bool("nocache"),
        pull: p.bool("pull"),
        labels: json_map(p, "labels")?,
        remove: p.bool_or("rm", true),
        force_remove: p.bool("forcerm"),
        network_mode: p.string("networkmode"),
        platform: p.string("platform"),
        shm_size: p.int("shmsize")?.unwrap_or(0),
        extra_hosts,
    })
}

/// The request body as a blocking reader, in chunks of about a megabyte: the context can
/// be large, and handing it over frame by frame costs a thread wake-up per frame.
fn context_reader(req: Request) -> Box<dyn std::io::Read + Send> {
    const CHUNK: usize = 1 << 20;
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::spawn(async move {
        let mut body = req.into_body().into_data_stream();
        let mut acc = bytes::BytesMut::new();
        while let Some(frame) = body.next().await {
            match frame {
                Ok(b) if acc.is_empty() && b.len() >= CHUNK => {
                    if tx.send(Ok(b)).await.is_err() {
                        return;
                    }
                }
                Ok(b) => {
                    acc.extend_from_slice(&b);
                    if acc.len() >= CHUNK && tx.send(Ok(acc.split().freeze())).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
            }
        }
        if !acc.is_empty() {
            let _ = tx.send(Ok(acc.freeze())).await;
        }
    });
    Box::new(ChannelReader {
        rx,
        cur: Bytes::new(),
    })
}

/// Reads what [`context_reader`]'s task receives (on a blocking thread).
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

fn to_json(m: &BuildMessage) -> Value {
    match m {
        BuildMessage::Stream(s) => json!({ "stream": s }),
        BuildMessage::ImageId(id) => json!({ "aux": { "ID": id } }),
        BuildMessage::Error { message, code } => json!({
            "errorDetail": { "code": code, "message": message },
            "error": message,
        }),
    }
}

async fn build<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    if p.get("version") == Some("2") {
        return Err(bad_request(
            "BuildKit sessions (version=2) are not supported: use the classic builder (DOCKER_BUILDKIT=0)",
        ));
    }
    let options = options(&p)?;
    let quiet = p.bool("q");
    let remote = p.string("remote");
    let body = context_reader(req);
    let mut rx = b.build(BuildRequest { options, remote }, body).await?;
    let (tx, out) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let line = |v: Value| {
            let mut b = serde_json::to_vec(&v).unwrap_or_default();
            b.push(b'\n');
            Bytes::from(b)
        };
        let mut held = Vec::new();
        let mut image = None;
        loop {
            // While a step is quiet, a bare newline now and then (JSON decoders skip
            // whitespace) finds out whether the client is still there; when it is not,
            // `rx` is dropped, which cancels the build.
            let m = tokio::select! {
                m = rx.recv() => m,
                _ = tokio::time::sleep(HEARTBEAT) => {
                    if tx.send(Bytes::from_static(b"\n")).await.is_err() {
                        return;
                    }
                    continue;
                }
                _ = tx.closed() => return,
            };
            let Some(m) = m else { break };
            if !quiet {
                if tx.send(line(to_json(&m))).await.is_err() {
                    return;
                }
                continue;
            }
            match &m {
                BuildMessage::ImageId(id) => image = Some(id.clone()),
                BuildMessage::Error { .. } => {
                    for h in held.drain(..) {
                        if tx.send(line(h)).await.is_err() {
                            return;
                        }
                    }
                    let _ = tx.send(line(to_json(&m))).await;
                    return;
                }
                BuildMessage::Stream(_) => held.push(to_json(&m)),
            }
        }
        if let Some(id) = image {
            let _ = tx.send(line(json!({ "stream": format!("{id}\n") }))).await;
        }
    });
    let body = crate::stream::tokio_stream_from(out).map(Ok::<_, std::io::Error>);
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_become_build_options() {
        let p = Params::parse(Some(
            "t=a%3A1&t=b&dockerfile=docker%2FDockerfile&buildargs=%7B%22A%22%3A%221%22%2C%22B%22%3Anull%7D&labels=%7B%22l%22%3A%22v%22%7D&rm=0&forcerm=1&nocache=1&shmsize=1024&extrahosts=h%3A1.2.3.4,g%3A5.6.7.8&target=t",
        ));
        let o = options(&p).unwrap();
        assert_eq!(o.tags, vec!["a:1", "b"]);
        assert_eq!(o.dockerfile, "docker/Dockerfile");
        assert_eq!(o.build_args["A"].as_deref(), Some("1"));
        assert_eq!(o.build_args["B"], None);
        assert_eq!(o.labels["l"], "v");
        assert!(!o.remove && o.force_remove && o.no_cache);
        assert_eq!(o.shm_size, 1024);
        assert_eq!(o.extra_hosts, vec!["h:1.2.3.4", "g:5.6.7.8"]);
        assert_eq!(o.target, "t");
    }

    #[test]
    fn defaults_are_dockers() {
        let o = options(&Params::parse(None)).unwrap();
        assert_eq!(o.dockerfile, "Dockerfile");
        assert!(o.remove);
        assert!(o.build_args.is_empty());
        assert!(options(&Params::parse(Some("buildargs=notjson"))).is_err());
    }

    #[test]
    fn errors_carry_the_exit_code() {
        let v = to_json(&BuildMessage::Error {
            message: "boom".into(),
            code: 3,
        });
        assert_eq!(v["errorDetail"]["code"], 3);
        assert_eq!(v["error"], "boom");
        assert_eq!(
            to_json(&BuildMessage::ImageId("sha256:x".into()))["aux"]["ID"],
            "sha256:x"
        );
    }
}
