//! Push: upload the blobs a registry lacks, then the manifest.
//!
//! Layers are pushed concurrently (up to `max_concurrent_uploads`). For each, the
//! compressed blob recorded at pull time ([`Storage::layer_blob`]) is used when the
//! content store still has it: a `HEAD` finds it already in the registry ("Layer already
//! exists"), a cross-repository mount reuses it from another repository of the same
//! registry ("Mounted from ..."), else it is uploaded with one `PUT` of known length.
//! A layer without a stored blob is gzipped (fast level) from [`Storage::layer_tar`] on
//! the fly and streamed with `PATCH` (chunked), its digest computed on the way, and
//! closed with `PUT ?digest=`; the gzip is kept in the content store and recorded as the
//! layer's blob, so the next push of it is a `HEAD`. The config goes next, the manifest
//! last: Docker v2 schema 2, or OCI when a layer is OCI-typed (zstd, plain tar).

use crate::auth::{repository_scope, Credentials};
use crate::error::{RegistryError, Result};
use crate::manifest::{self, Descriptor, ImageManifest};
use crate::progress::{emit, relay, short_id, Progress, ProgressTx, Throttle};
use crate::transport::{error_from_response, Session, Transport};
use crate::Registry;
use berth_core::image::ImageConfig;
use berth_core::reference::Reference;
use berth_core::Digest;
use berth_storage::{BlobWriter, Storage};
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use std::io::{self, Read, Write};
use std::sync::Arc;
use tokio::sync::mpsc;

/// What a push produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedImage {
    pub manifest_digest: Digest,
    /// Size of the manifest in bytes (Docker prints `size: 528`).
    pub size: u64,
    pub media_type: String,
}

/// Bytes per upload chunk handed to the HTTP body.
const CHUNK: usize = 1 << 20;
/// Mount sources tried per blob.
const MOUNT_CANDIDATES: usize = 3;

/// How a layer's blob gets to the registry.
#[derive(Debug, Clone)]
enum Plan {
    /// A compressed blob in the content store.
    Stored {
        digest: Digest,
        size: u64,
        media_type: String,
        mount_from: Vec<String>,
    },
    /// Gzip the layer tar while uploading.
    Generate,
}

struct LayerJob {
    chain: Digest,
    diff_id: Digest,
    size: u64,
    plan: Plan,
}

impl Registry {
    /// Pushes an image: `config` is the raw config (its sha256 is the image id), `layers`
    /// the chain ids of its layers, base first.
    pub async fn push(
        &self,
        storage: Arc<Storage>,
        reference: &Reference,
        config: &[u8],
        layers: &[Digest],
        creds: Option<&Credentials>,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<PushedImage> {
        relay(progress, |tx| {
            self.push_inner(storage, reference, config, layers, creds, tx)
        })
        .await
    }

    async fn push_inner(
        &self,
        storage: Arc<Storage>,
        reference: &Reference,
        config: &[u8],
        layers: &[Digest],
        creds: Option<&Credentials>,
        tx: ProgressTx,
    ) -> Result<PushedImage> {
        let invalid = |reason: String| RegistryError::InvalidPush {
            reference: reference.familiar(),
            reason,
        };
        if reference.digest().is_some() && reference.tag().is_none() {
            return Err(invalid("push by digest is not supported; use a tag".into()));
        }
        let tag = reference
            .tag()
            .unwrap_or(berth_core::reference::DEFAULT_TAG)
            .to_string();
        let parsed: ImageConfig = serde_json::from_slice(config)
            .map_err(|e| invalid(format!("invalid image config: {e}")))?;
        if parsed.rootfs.diff_ids.len() != layers.len() {
            return Err(invalid(format!(
                "the config lists {} diff_ids for {} layers",
                parsed.rootfs.diff_ids.len(),
                layers.len()
            )));
        }
        let host = Transport::registry_host(reference.domain()).to_string();
        let repo = reference.path().to_string();

        let plan_storage = storage.clone();
        let plan_layers = layers.to_vec();
        let diff_ids = parsed.rootfs.diff_ids.clone();
        let sources = self.sources.clone();
        let (plan_host, plan_repo) = (host.clone(), repo.clone());
        let jobs = tokio::task::spawn_blocking(move || {
            let mut jobs = Vec::new();
            for (chain, want) in plan_layers.iter().zip(&diff_ids) {
                let layer =
                    plan_storage
                        .try_layer(chain)?
                        .ok_or_else(|| RegistryError::LayerMissing {
                            chain_id: chain.clone(),
                        })?;
                if layer.diff_id != *want {
                    return Err(RegistryError::InvalidPush {
                        reference: plan_repo.clone(),
                        reason: format!(
                            "layer {chain} has diff_id {}, the config says {want}",
                            layer.diff_id
                        ),
                    });
                }
                let plan = match plan_storage.layer_blob(chain)? {
                    Some((digest, media_type)) if plan_storage.content().exists(&digest) => {
                        Plan::Stored {
                            size: plan_storage.content().size(&digest)?,
                            mount_from: sources.candidates(&digest, &plan_host, &plan_repo),
                            digest,
                            media_type,
                        }
                    }
                    _ => Plan::Generate,
                };
                jobs.push(LayerJob {
                    chain: chain.clone(),
                    diff_id: layer.diff_id,
                    size: layer.size,
                    plan,
                });
            }
            Ok::<_, RegistryError>(jobs)
        })
        .await
        .map_err(|e| RegistryError::internal("planning push", e))??;

        for j in &jobs {
            emit(
                &tx,
                Progress::LayerPreparing {
                    id: short_id(&j.diff_id),
                },
            );
        }
        // One token covers the push and every repository a blob may be mounted from.
        let mut scopes = vec![repository_scope(&repo, &["pull", "push"])];
        for j in &jobs {
            if let Plan::Stored { mount_from, .. } = &j.plan {
                for from in mount_from.iter().take(MOUNT_CANDIDATES) {
                    let s = repository_scope(from, &["pull"]);
                    if !scopes.contains(&s) {
                        scopes.push(s);
                    }
                }
            }
        }
        let alternatives = self.transport.alternatives(&host, false).await?;
        let session = Arc::new(
            self.transport
                .session(&alternatives, &repo, scopes, creds)
                .await?,
        );

        let mut handles = Vec::new();
        for job in jobs {
            let this = self.clone();
            let session = session.clone();
            let storage = storage.clone();
            let tx = tx.clone();
            handles.push(tokio::spawn(async move {
                let _permit = match this.uploads.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        emit(
                            &tx,
                            Progress::LayerQueued {
                                id: short_id(&job.diff_id),
                            },
                        );
                        this.uploads
                            .clone()
                            .acquire_owned()
                            .await
                            .expect("the upload semaphore is never closed")
                    }
                };
                this.push_layer(&session, &storage, job, &tx).await
            }));
        }
        let mut descriptors = Vec::new();
        let mut first_err = None;
        for h in handles {
            match h.await {
                Ok(Ok(d)) => descriptors.push(d),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    first_err.get_or_insert(RegistryError::internal("upload task", e));
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }

        let oci = descriptors
            .iter()
            .any(|d| manifest::is_oci_layer(&d.media_type));
        let config_digest = Digest::of(config);
        let config_type = if oci {
            manifest::OCI_CONFIG
        } else {
            manifest::DOCKER_CONFIG
        };
        if !head_blob(&session, &config_digest).await? {
            let location = start_upload(&session).await?;
            put_bytes(
                &session,
                &location,
                &config_digest,
                Bytes::copy_from_slice(config),
            )
            .await?;
        }
        self.sources.add(&config_digest, &host, &repo);

        let media_type = if oci {
            manifest::OCI_MANIFEST
        } else {
            manifest::DOCKER_MANIFEST
        };
        let layers = descriptors
            .into_iter()
            .map(|mut d| {
                if oci {
                    d.media_type = manifest::oci_layer_type(&d.media_type).to_string();
                }
                d
            })
            .collect();
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(media_type.to_string()),
            config: Descriptor::new(config_type, config.len() as u64, config_digest),
            layers,
            subject: None,
            annotations: None,
        };
        let bytes = m.to_bytes();
        let digest = put_manifest(&session, &tag, media_type, Bytes::from(bytes.clone())).await?;
        emit(
            &tx,
            Progress::Digest {
                digest: digest.clone(),
            },
        );
        Ok(PushedImage {
            manifest_digest: digest,
            size: bytes.len() as u64,
            media_type: media_type.to_string(),
        })
    }

    async fn push_layer(
        &self,
        session: &Session,
        storage: &Arc<Storage>,
        job: LayerJob,
        tx: &ProgressTx,
    ) -> Result<Descriptor> {
        let id = short_id(&job.diff_id);
        let host = session.endpoint_host();
        match job.plan {
            Plan::Stored {
                digest,
                size,
                media_type,
                mount_from,
            } => {
                let desc = Descriptor::new(&media_type, size, digest.clone());
                if head_blob(session, &digest).await? {
                    emit(tx, Progress::LayerAlreadyExists { id });
                    self.sources.add(&digest, &host, &session.repo);
                    return Ok(desc);
                }
                // A refused mount opens an upload session: the last one is used for the
                // upload, earlier ones are cancelled (as Docker does).
                let mut location: Option<Url> = None;
                for from in mount_from.iter().take(MOUNT_CANDIDATES) {
                    if let Some(l) = location.take() {
                        cancel_upload(session, &l).await;
                    }
                    match mount_blob(session, &digest, from).await? {
                        Mount::Mounted => {
                            emit(
                                tx,
                                Progress::LayerMounted {
                                    id,
                                    from: from.clone(),
                                },
                            );
                            self.sources.add(&digest, &host, &session.repo);
                            return Ok(desc);
                        }
                        Mount::Upload(l) => location = Some(l),
                    }
                }
                let location = match location {
                    Some(l) => l,
                    None => start_upload(session).await?,
                };
                let path = storage.content().path(&digest);
                let file = std::fs::File::open(&path).map_err(|e| RegistryError::Io {
                    action: "opening blob",
                    path: path.clone(),
                    source: e,
                })?;
                let (body_tx, body) = upload_body();
                let (id2, tx2) = (id.clone(), tx.clone());
                let reader = tokio::task::spawn_blocking(move || {
                    feed_reader(file, size, &id2, &tx2, body_tx)
                });
                let url = with_digest(&location, &digest);
                let mut headers = HeaderMap::new();
                headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                let resp = session
                    .send_stream(Method::PUT, url.clone(), headers, body)
                    .await;
                let fed = reader
                    .await
                    .map_err(|e| RegistryError::internal("reading blob task", e))?;
                let resp = resp?;
                if resp.status() != StatusCode::CREATED {
                    return Err(error_from_response("PUT", url.as_str(), resp).await);
                }
                fed?;
                emit(tx, Progress::LayerPushed { id });
                self.sources.add(&digest, &host, &session.repo);
                Ok(desc)
            }
            Plan::Generate => {
                let location = start_upload(session).await?;
                let (body_tx, body) = upload_body();
                let (gen_storage, chain, id2, tx2, total) = (
                    storage.clone(),
                    job.chain.clone(),
                    id.clone(),
                    tx.clone(),
                    job.size,
                );
                let producer = tokio::task::spawn_blocking(move || {
                    gzip_layer(&gen_storage, &chain, total, &id2, &tx2, body_tx)
                });
                let mut headers = HeaderMap::new();
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                let resp = session
                    .send_stream(Method::PATCH, location.clone(), headers, body)
                    .await;
                let produced = producer
                    .await
                    .map_err(|e| RegistryError::internal("compressing layer task", e))?;
                let resp = resp?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(error_from_response("PATCH", location.as_str(), resp).await);
                }
                let writer = produced?;
                let next = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(|l| session.resolve_location(l))
                    .transpose()?
                    .unwrap_or(location);
                let digest = writer.digest();
                let size = writer.size();
                // Keep the gzip for the next push while the upload is being closed.
                let keep_storage = storage.clone();
                let keep_chain = job.chain.clone();
                let keep = tokio::task::spawn_blocking(move || {
                    let d = writer.commit(None)?;
                    keep_storage.set_layer_blob(&keep_chain, &d, manifest::DOCKER_LAYER_GZIP)?;
                    Ok::<_, RegistryError>(())
                });
                let closed = put_bytes(session, &next, &digest, Bytes::new()).await;
                match keep.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!("keeping the pushed gzip of {}: {e}", job.chain),
                    Err(e) => tracing::warn!("keeping the pushed gzip of {}: {e}", job.chain),
                }
                closed?;
                emit(tx, Progress::LayerPushed { id });
                self.sources.add(&digest, &host, &session.repo);
                Ok(Descriptor::new(manifest::DOCKER_LAYER_GZIP, size, digest))
            }
        }
    }
}

impl Session {
    /// `host[:port]` of the registry this session talks to.
    fn endpoint_host(&self) -> String {
        self.endpoint.host.clone()
    }
}

/// An HTTP body fed from a blocking thread through a channel.
fn upload_body() -> (mpsc::Sender<io::Result<Bytes>>, reqwest::Body) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (tx, reqwest::Body::wrap_stream(stream))
}

/// Sends a file into an upload body, reporting progress.
fn feed_reader(
    mut file: std::fs::File,
    total: u64,
    id: &str,
    tx: &ProgressTx,
    body: mpsc::Sender<io::Result<Bytes>>,
) -> Result<()> {
    let mut sent = 0u64;
    let mut throttle = Throttle::new(total);
    loop {
        let mut buf = BytesMut::zeroed(CHUNK);
        let n = file
            .read(&mut buf)
            .map_err(|e| RegistryError::internal("reading blob", e))?;
        if n == 0 {
            return Ok(());
        }
        buf.truncate(n);
        sent += n as u64;
        if body.blocking_send(Ok(buf.freeze())).is_err() {
            return Ok(()); // the request ended early; its error is reported
        }
        if throttle.due(sent, total) {
            emit(
                tx,
                Progress::LayerPushing {
                    id: id.to_string(),
                    current: sent,
                    total,
                },
            );
        }
    }
}

/// Writes the layer tar through gzip into both the content store writer (which hashes)
/// and the upload body. Returns the writer, to be committed once the upload is closed.
fn gzip_layer(
    storage: &Storage,
    chain: &Digest,
    total: u64,
    id: &str,
    tx: &ProgressTx,
    body: mpsc::Sender<io::Result<Bytes>>,
) -> Result<BlobWriter> {
    let writer = storage.content().writer()?;
    let tee = Tee {
        writer,
        body,
        buf: BytesMut::with_capacity(CHUNK),
    };
    let gz = crate::gzip::FastGzip::new(tee)
        .map_err(|e| RegistryError::internal("compressing layer", e))?;
    let mut counting = CountingWriter {
        inner: gz,
        count: 0,
        total,
        throttle: Throttle::new(total),
        id: id.to_string(),
        tx: tx.clone(),
    };
    storage.layer_tar(chain, &mut counting)?;
    let gz = counting.inner;
    let mut tee = gz
        .finish()
        .map_err(|e| RegistryError::internal("compressing layer", e))?;
    tee.send_buffered()
        .map_err(|e| RegistryError::internal("uploading layer", e))?;
    Ok(tee.writer)
}

/// Compressed bytes go to the content store and, in chunks, to the upload.
struct Tee {
    writer: BlobWriter,
    body: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
}

impl Tee {
    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.body
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::other("upload ended early"))
    }
}

impl Write for Tee {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.writer.write_all(data)?;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buffered()?;
            self.buf.reserve(CHUNK);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts the uncompressed bytes of a layer for `Pushing x/y` progress.
struct CountingWriter<W> {
    inner: W,
    count: u64,
    total: u64,
    throttle: Throttle,
    id: String,
    tx: ProgressTx,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.count += n as u64;
        let shown = self.count.min(self.total);
        if self.throttle.due(shown, self.total) {
            emit(
                &self.tx,
                Progress::LayerPushing {
                    id: self.id.clone(),
                    current: shown,
                    total: self.total,
                },
            );
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Whether the registry has the blob in this repository.
async fn head_blob(session: &Session, digest: &Digest) -> Result<bool> {
    let url = session.url(&format!("blobs/{digest}"));
    let resp = session
        .send(Method::HEAD, url.clone(), HeaderMap::new(), None)
        .await?;
    match resp.status() {
        StatusCode::OK => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        _ => Err(error_from_response("HEAD", url.as_str(), resp).await),
    }
}

enum Mount {
    Mounted,
    /// The registry did not mount but opened an upload session at this location.
    Upload(Url),
}

/// `POST blobs/uploads/?mount=<digest>&from=<repo>`.
async fn mount_blob(session: &Session, digest: &Digest, from: &str) -> Result<Mount> {
    let mut url = session.url("blobs/uploads/");
    url.query_pairs_mut()
        .append_pair("mount", &digest.to_string())
        .append_pair("from", from);
    let resp = session
        .send(
            Method::POST,
            url.clone(),
            content_length_zero(),
            Some(Bytes::new()),
        )
        .await?;
    match resp.status() {
        StatusCode::CREATED => Ok(Mount::Mounted),
        StatusCode::ACCEPTED => Ok(Mount::Upload(location_of(session, &resp)?)),
        _ => Err(error_from_response("POST", url.as_str(), resp).await),
    }
}

/// `DELETE` on an upload session nobody will use; failures only cost registry space.
async fn cancel_upload(session: &Session, location: &Url) {
    match session
        .send(Method::DELETE, location.clone(), HeaderMap::new(), None)
        .await
    {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::debug!("cancelling upload {location}: status {}", r.status()),
        Err(e) => tracing::debug!("cancelling upload {location}: {e}"),
    }
}

fn content_length_zero() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_LENGTH, HeaderValue::from(0u64));
    h
}

fn location_of(session: &Session, resp: &reqwest::Response) -> Result<Url> {
    let l = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::internal("starting upload", "no Location header"))?;
    session.resolve_location(l)
}

/// `POST blobs/uploads/`: an upload session's location.
async fn start_upload(session: &Session) -> Result<Url> {
    let url = session.url("blobs/uploads/");
    let resp = session
        .send(
            Method::POST,
            url.clone(),
            content_length_zero(),
            Some(Bytes::new()),
        )
        .await?;
    if resp.status() != StatusCode::ACCEPTED {
        return Err(error_from_response("POST", url.as_str(), resp).await);
    }
    location_of(session, &resp)
}

/// The upload location with `digest=` added to its query.
fn with_digest(location: &Url, digest: &Digest) -> Url {
    let mut url = location.clone();
    url.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    url
}

/// Closes an upload with a final `PUT ?digest=` carrying `data`.
async fn put_bytes(session: &Session, location: &Url, digest: &Digest, data: Bytes) -> Result<()> {
    let url = with_digest(location, digest);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(data.len() as u64));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let resp = session
        .send(Method::PUT, url.clone(), headers, Some(data))
        .await?;
    if resp.status() != StatusCode::CREATED {
        return Err(error_from_response("PUT", url.as_str(), resp).await);
    }
    Ok(())
}

/// `PUT manifests/<reference>`; returns the manifest digest.
pub(crate) async fn put_manifest(
    session: &Session,
    reference: &str,
    media_type: &str,
    bytes: Bytes,
) -> Result<Digest> {
    let url = session.url(&format!("manifests/{reference}"));
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(media_type)
            .map_err(|e| RegistryError::internal("manifest media type", e))?,
    );
    let digest = Digest::of(&bytes);
    let resp = session
        .send(Method::PUT, url.clone(), headers, Some(bytes))
        .await?;
    if resp.status() != StatusCode::CREATED {
        return Err(error_from_response("PUT", url.as_str(), resp).await);
    }
    Ok(digest)
}

impl Registry {
    /// Pushes a manifest or index document as is (`PUT manifests/<tag or digest>`), e.g.
    /// an index over manifests pushed before. Returns its digest.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
        creds: Option<&Credentials>,
    ) -> Result<Digest> {
        let host = Transport::registry_host(reference.domain()).to_string();
        let alternatives = self.transport.alternatives(&host, false).await?;
        let scopes = vec![repository_scope(reference.path(), &["pull", "push"])];
        let session = self
            .transport
            .session(&alternatives, reference.path(), scopes, creds)
            .await?;
        let name = match (reference.tag(), reference.digest()) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) => berth_core::reference::DEFAULT_TAG.to_string(),
        };
        put_manifest(&session, &name, media_type, Bytes::copy_from_slice(bytes)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_appended_to_upload_locations_keeping_their_state() {
        let l = Url::parse("http://r:5000/v2/x/blobs/uploads/abc?_state=xyz").unwrap();
        let d = Digest::of(b"x");
        let u = with_digest(&l, &d);
        assert_eq!(
            u.as_str(),
            format!(
                "http://r:5000/v2/x/blobs/uploads/abc?_state=xyz&digest=sha256%3A{}",
                d.hex()
            )
        );
    }
}
