//! Pull: resolve a reference to a platform manifest, fetch the config, and download,
//! verify and unpack the missing layers in one pipeline.
//!
//! Every missing layer is downloaded at once (up to `max_concurrent_downloads`); each
//! download streams its bytes into the content store (the compressed blob is kept so push
//! and save can reuse it) and, through a bounded `pipe`, into
//! [`Storage::apply_layers`], which unpacks the layers in parallel and commits them in
//! order. The blob's sha256 is computed while streaming; the extractor sees the end of a
//! stream only after it matched, and storage verifies each diff_id, so nothing unverified
//! is ever committed. Layers whose chain already exists are reported as "Already
//! exists" and not fetched; blobs already in the content store are unpacked from there.
//!
//! `Flights` makes concurrent pulls share downloads: the first pull that needs a blob
//! downloads it, the others wait for it to land in the content store and unpack from
//! there.

use crate::auth::{repository_scope, Credentials};
use crate::error::{RegistryError, Result};
use crate::manifest::{self, Descriptor, ImageManifest, Manifest};
use crate::pipe::{self, ChunkSender, ExtractProgress};
use crate::platform::Platform;
use crate::progress::{emit, relay, short_id, Progress, ProgressTx, Throttle};
use crate::transport::{error_from_response, lock, read_limited, transport_error, Session};
use crate::Registry;
use berth_core::image::ImageConfig;
use berth_core::reference::Reference;
use berth_core::Digest;
use berth_storage::{chain_id, Layer, Storage};
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{watch, OwnedSemaphorePermit};

/// A reference resolved to the manifest of one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedManifest {
    /// Digest of the document the reference names (an index for multi-platform images):
    /// what `RepoDigests` records.
    pub digest: Digest,
    /// Media type of that document.
    pub media_type: String,
    /// Digest of the platform's image manifest (equal to `digest` without an index).
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub manifest: ImageManifest,
    /// The image id to be.
    pub config_digest: Digest,
}

/// What a pull produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The raw config bytes; the image id is their sha256.
    pub config: Vec<u8>,
    /// The digest the reference resolved to (an index for multi-platform images).
    pub manifest_digest: Digest,
    /// Media type of that document.
    pub media_type: String,
    /// The platform manifest that was pulled.
    pub platform_manifest_digest: Digest,
    pub manifest: ImageManifest,
    /// The image's layers, base first.
    pub layers: Vec<Layer>,
}

/// Blob downloads in progress, shared by concurrent pulls.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<Digest, watch::Receiver<Option<FlightResult>>>>,
}

type FlightResult = std::result::Result<(), Arc<RegistryError>>;

enum Role {
    Leader(FlightGuard),
    Follower(watch::Receiver<Option<FlightResult>>),
}

/// Held by the pull that downloads a blob; tells the waiters how it went, also when the
/// download is dropped half-way.
struct FlightGuard {
    flights: Arc<Flights>,
    digest: Digest,
    tx: watch::Sender<Option<FlightResult>>,
    done: bool,
}

impl FlightGuard {
    fn finish(mut self, result: FlightResult) {
        self.done = true;
        lock(&self.flights.map).remove(&self.digest);
        let _ = self.tx.send(Some(result));
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.flights.map).remove(&self.digest);
            let _ = self.tx.send(Some(Err(Arc::new(RegistryError::Interrupted {
                digest: self.digest.clone(),
            }))));
        }
    }
}

impl Flights {
    fn join(self: &Arc<Self>, digest: &Digest) -> Role {
        let mut map = lock(&self.map);
        if let Some(rx) = map.get(digest) {
            return Role::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(digest.clone(), rx);
        Role::Leader(FlightGuard {
            flights: self.clone(),
            digest: digest.clone(),
            tx,
            done: false,
        })
    }
}

/// Set when the pull that started the work is dropped; downloads stop at the next chunk.
#[derive(Debug, Default)]
struct Cancel(Arc<AtomicBool>);

impl Drop for Cancel {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Registry {
    /// Pulls `reference` for `platform` into `storage`: the layers end up in the layer
    /// store, their compressed blobs in the content store; the config bytes are returned
    /// for the caller to record the image.
    pub async fn pull(
        &self,
        storage: Arc<Storage>,
        reference: &Reference,
        platform: &Platform,
        creds: Option<&Credentials>,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<PulledImage> {
        relay(progress, |tx| {
            self.pull_inner(storage, reference, platform, creds, tx)
        })
        .await
    }

    /// Resolves `reference` to the manifest for `platform` (one or two requests), without
    /// downloading blobs: how the engine finds out that an image is already present.
    pub async fn resolve(
        &self,
        reference: &Reference,
        platform: &Platform,
        creds: Option<&Credentials>,
    ) -> Result<ResolvedManifest> {
        let (_, resolved) = self.open_and_resolve(reference, platform, creds).await?;
        Ok(resolved)
    }

    /// Tries each endpoint group (mirrors, then the registry) until one resolves.
    async fn open_and_resolve(
        &self,
        reference: &Reference,
        platform: &Platform,
        creds: Option<&Credentials>,
    ) -> Result<(Arc<Session>, ResolvedManifest)> {
        let groups = self.transport.pull_endpoints(reference.domain()).await?;
        let scopes = vec![repository_scope(reference.path(), &["pull"])];
        let mut last = None;
        let had_creds = creds.is_some_and(|c| !c.is_empty());
        for group in groups {
            let mirror = group.first().is_some_and(|e| e.mirror);
            let attempt = async {
                let session = self
                    .transport
                    .session(&group, reference.path(), scopes.clone(), creds)
                    .await?;
                let session = Arc::new(session);
                let resolved = resolve_with(&session, reference, platform).await?;
                Ok::<_, RegistryError>((session, resolved))
            };
            match attempt.await {
                Ok(found) => return Ok(found),
                Err(e) if mirror && e.is_fallback() => {
                    tracing::info!("mirror failed for {reference}, trying the next endpoint: {e}");
                    last = Some(e);
                }
                Err(e) => return Err(translate_pull_error(e, reference, had_creds)),
            }
        }
        Err(translate_pull_error(
            last.unwrap_or_else(|| RegistryError::internal("pull", "no endpoints")),
            reference,
            had_creds,
        ))
    }

    async fn pull_inner(
        &self,
        storage: Arc<Storage>,
        reference: &Reference,
        platform: &Platform,
        creds: Option<&Credentials>,
        tx: ProgressTx,
    ) -> Result<PulledImage> {
        emit(
            &tx,
            Progress::Resolving {
                reference: reference.familiar(),
            },
        );
        let (session, resolved) = self.open_and_resolve(reference, platform, creds).await?;
        let had_creds = creds.is_some_and(|c| !c.is_empty());
        let out = self
            .fetch_image(session, storage, reference, resolved, &tx)
            .await
            .map_err(|e| translate_pull_error(e, reference, had_creds))?;
        emit(
            &tx,
            Progress::Digest {
                digest: out.manifest_digest.clone(),
            },
        );
        Ok(out)
    }

    async fn fetch_image(
        &self,
        session: Arc<Session>,
        storage: Arc<Storage>,
        reference: &Reference,
        resolved: ResolvedManifest,
        tx: &ProgressTx,
    ) -> Result<PulledImage> {
        let manifest = resolved.manifest.clone();
        let config = fetch_small_blob(&session, &manifest.config).await?;
        let parsed: ImageConfig =
            serde_json::from_slice(&config).map_err(|e| RegistryError::InvalidConfig {
                digest: manifest.config.digest.clone(),
                reason: e.to_string(),
            })?;
        let diff_ids = parsed.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(RegistryError::InvalidManifest {
                reference: reference.to_string(),
                reason: format!(
                    "the config lists {} diff_ids, the manifest {} layers",
                    diff_ids.len(),
                    manifest.layers.len()
                ),
            });
        }
        let origin = crate::transport::Transport::registry_host(reference.domain()).to_string();
        for d in manifest.layers.iter().chain([&manifest.config]) {
            self.sources.add(&d.digest, &origin, reference.path());
        }

        let mut chains = Vec::with_capacity(diff_ids.len());
        let mut below: Option<Digest> = None;
        for d in &diff_ids {
            let c = chain_id(below.as_ref(), d);
            chains.push(c.clone());
            below = Some(c);
        }
        // A layer exists only on top of its parent, so the present ones are a prefix.
        let mut present = Vec::new();
        for c in &chains {
            match storage.try_layer(c)? {
                Some(l) => present.push(l),
                None => break,
            }
        }
        for d in &manifest.layers[..present.len()] {
            emit(
                tx,
                Progress::LayerAlreadyExists {
                    id: short_id(&d.digest),
                },
            );
        }
        let first_missing = present.len();
        if first_missing == chains.len() {
            return Ok(pulled(resolved, config.to_vec(), present));
        }
        let missing: Vec<(Descriptor, Digest)> = manifest.layers[first_missing..]
            .iter()
            .cloned()
            .zip(diff_ids[first_missing..].iter().cloned())
            .collect();
        for (d, _) in &missing {
            emit(
                tx,
                Progress::LayerWaiting {
                    id: short_id(&d.digest),
                },
            );
        }

        let cancel = Cancel::default();
        let mut inputs: Vec<(Box<dyn Read + Send>, Option<Digest>)> = Vec::new();
        let mut feeds: Vec<(Descriptor, ChunkSender)> = Vec::new();
        for (desc, diff_id) in &missing {
            let id = short_id(&desc.digest);
            let source: Box<dyn Read + Send> = match storage.content().open(&desc.digest) {
                Ok(f) => {
                    emit(tx, Progress::LayerDownloadComplete { id: id.clone() });
                    Box::new(f)
                }
                Err(_) => {
                    let (sender, reader) = pipe::pipe();
                    feeds.push((desc.clone(), sender));
                    Box::new(reader)
                }
            };
            let reader = ExtractProgress::new(source, id, desc.size, tx.clone());
            inputs.push((Box::new(reader), Some(diff_id.clone())));
        }

        let parent = present.last().map(|l| l.chain_id.clone());
        let apply_storage = storage.clone();
        let apply = tokio::task::spawn_blocking(move || {
            apply_storage.apply_layers(parent.as_ref(), inputs)
        });
        let downloads = async {
            let mut handles = Vec::new();
            // Permits are taken in layer order, so the extractor (which also takes layers
            // in order) always has a running download for the layer it waits on.
            let ids: Vec<String> = feeds.iter().map(|(d, _)| short_id(&d.digest)).collect();
            let mut queued = false;
            for (i, (desc, sender)) in feeds.into_iter().enumerate() {
                let permit = match self.downloads.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        // This layer and every one after it wait for a slot.
                        if !queued {
                            queued = true;
                            for id in &ids[i..] {
                                emit(tx, Progress::LayerQueued { id: id.clone() });
                            }
                        }
                        self.downloads
                            .clone()
                            .acquire_owned()
                            .await
                            .expect("the download semaphore is never closed")
                    }
                };
                let job = BlobJob {
                    registry: self.clone(),
                    session: session.clone(),
                    storage: storage.clone(),
                    desc,
                    cancel: cancel.0.clone(),
                    tx: tx.clone(),
                };
                handles.push(tokio::spawn(job.run(sender, permit)));
            }
            let mut results = Vec::new();
            for h in handles {
                results.push(
                    h.await
                        .unwrap_or_else(|e| Err(RegistryError::internal("download task", e))),
                );
            }
            results
        };
        let (applied, results) = tokio::join!(apply, downloads);
        let applied = applied.map_err(|e| RegistryError::internal("unpacking task", e))?;
        // A download failure is the cause of the extractor's read error: report it first,
        // except an interruption caused by the extractor stopping.
        let mut interrupted = None;
        for r in results {
            match r {
                Err(RegistryError::Interrupted { digest }) => interrupted = Some(digest),
                Err(e) => return Err(e),
                Ok(()) => {}
            }
        }
        let new_layers = applied?;
        if let Some(digest) = interrupted {
            return Err(RegistryError::Interrupted { digest });
        }

        let record_storage = storage.clone();
        let records: Vec<(Digest, Descriptor)> = new_layers
            .iter()
            .map(|l| l.chain_id.clone())
            .zip(missing.iter().map(|(d, _)| d.clone()))
            .collect();
        tokio::task::spawn_blocking(move || {
            for (chain, desc) in records {
                if record_storage.content().exists(&desc.digest) {
                    record_storage.set_layer_blob(&chain, &desc.digest, &desc.media_type)?;
                }
            }
            Ok::<_, RegistryError>(())
        })
        .await
        .map_err(|e| RegistryError::internal("recording layer blobs", e))??;
        for (d, _) in &missing {
            emit(
                tx,
                Progress::LayerPullComplete {
                    id: short_id(&d.digest),
                },
            );
        }
        let mut layers = present;
        layers.extend(new_layers);
        Ok(pulled(resolved, config.to_vec(), layers))
    }

    /// The tags of a repository (`pull -a`), following pagination.
    pub async fn list_tags(
        &self,
        repo: &Reference,
        creds: Option<&Credentials>,
    ) -> Result<Vec<String>> {
        let groups = self.transport.pull_endpoints(repo.domain()).await?;
        let origin = groups.last().cloned().unwrap_or_default();
        let scopes = vec![repository_scope(repo.path(), &["pull"])];
        let session = self
            .transport
            .session(&origin, repo.path(), scopes, creds)
            .await?;
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let had_creds = creds.is_some_and(|c| !c.is_empty());
        let mut url = session.url("tags/list");
        let mut out = Vec::new();
        for _ in 0..1000 {
            let resp = session
                .send(Method::GET, url.clone(), HeaderMap::new(), None)
                .await?;
            if !resp.status().is_success() {
                let e = error_from_response("GET", url.as_str(), resp).await;
                return Err(translate_pull_error(e, repo, had_creds));
            }
            let next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = resp
                .bytes()
                .await
                .map_err(|e| transport_error("GET", url.as_str(), &e))?;
            let tags: Tags = serde_json::from_slice(&body)
                .map_err(|e| RegistryError::internal("decoding tag list", e))?;
            out.extend(tags.tags.unwrap_or_default());
            match next {
                Some(n) => url = session.resolve_location(&n)?,
                None => break,
            }
        }
        Ok(out)
    }
}

fn pulled(resolved: ResolvedManifest, config: Vec<u8>, layers: Vec<Layer>) -> PulledImage {
    PulledImage {
        config,
        manifest_digest: resolved.digest,
        media_type: resolved.media_type,
        platform_manifest_digest: resolved.manifest_digest,
        manifest: resolved.manifest,
        layers,
    }
}

/// `<url>; rel="next"` from a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// Docker's wording for errors of a pull (`translatePullError` in moby).
fn translate_pull_error(e: RegistryError, reference: &Reference, had_creds: bool) -> RegistryError {
    let code = e.remote_code();
    match code.as_deref() {
        Some("DENIED") => RegistryError::PullAccessDenied {
            repository: reference.familiar_repository(),
            cause: Box::new(e),
        },
        // A token registry answers an anonymous pull of a private or missing repository
        // with 401 even after the token dance (Docker Hub does).
        Some("UNAUTHORIZED") if !had_creds => RegistryError::PullAccessDenied {
            repository: reference.familiar_repository(),
            cause: Box::new(e),
        },
        Some("MANIFEST_UNKNOWN") => RegistryError::ManifestNotFound {
            reference: reference.familiar(),
            cause: Box::new(e),
        },
        Some("NAME_UNKNOWN") => RegistryError::RepositoryNotFound {
            repository: reference.familiar_repository(),
            cause: Box::new(e),
        },
        _ => e,
    }
}

/// Fetches the manifest named by `reference` and, for an index, the one for `platform`.
async fn resolve_with(
    session: &Session,
    reference: &Reference,
    platform: &Platform,
) -> Result<ResolvedManifest> {
    let name = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => berth_core::reference::DEFAULT_TAG.to_string(),
    };
    let shown = reference.to_string();
    let (bytes, content_type, digest) =
        fetch_manifest(session, &name, reference.digest(), &shown).await?;
    let media_type_of = |m: &Manifest, ct: &Option<String>| -> String {
        let from_header = ct
            .as_deref()
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
            .filter(|c| {
                [
                    manifest::DOCKER_MANIFEST,
                    manifest::OCI_MANIFEST,
                    manifest::DOCKER_MANIFEST_LIST,
                    manifest::OCI_INDEX,
                ]
                .contains(&c.as_str())
            });
        from_header.unwrap_or_else(|| match m {
            Manifest::Image(i) => i.media_type_or_oci().to_string(),
            Manifest::Index(i) => i.media_type_or_oci().to_string(),
        })
    };
    let top = Manifest::parse(content_type.as_deref(), &bytes, &shown)?;
    let top_type = media_type_of(&top, &content_type);
    let mut current = top;
    let mut current_digest = digest.clone();
    let mut current_type = top_type.clone();
    // An index may name another index (rare); follow at most two levels.
    for _ in 0..3 {
        match current {
            Manifest::Image(m) => {
                return Ok(ResolvedManifest {
                    digest,
                    media_type: top_type,
                    manifest_digest: current_digest,
                    manifest_media_type: current_type,
                    config_digest: m.config.digest.clone(),
                    manifest: *m,
                })
            }
            Manifest::Index(idx) => {
                let entry = idx
                    .select(platform)
                    .ok_or_else(|| RegistryError::NoMatchingPlatform {
                        platform: platform.to_string(),
                    })?
                    .clone();
                let (b, ct, d) = fetch_manifest(
                    session,
                    &entry.digest.to_string(),
                    Some(&entry.digest),
                    &shown,
                )
                .await?;
                current = Manifest::parse(ct.as_deref(), &b, &shown)?;
                current_type = media_type_of(&current, &ct);
                current_digest = d;
            }
        }
    }
    Err(RegistryError::InvalidManifest {
        reference: shown,
        reason: "indexes nested too deeply".into(),
    })
}

/// GETs a manifest (verifying it against `expected` when pulling by digest).
async fn fetch_manifest(
    session: &Session,
    name: &str,
    expected: Option<&Digest>,
    shown: &str,
) -> Result<(bytes::Bytes, Option<String>, Digest)> {
    let url = session.url(&format!("manifests/{name}"));
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(manifest::ACCEPT));
    let resp = session
        .send(Method::GET, url.clone(), headers, None)
        .await?;
    if resp.status() != StatusCode::OK {
        return Err(error_from_response("GET", url.as_str(), resp).await);
    }
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = read_limited(resp, manifest::MAX_MANIFEST_SIZE)
        .await
        .ok_or_else(|| RegistryError::InvalidManifest {
            reference: shown.to_string(),
            reason: format!(
                "manifest too large (over {} bytes) or truncated",
                manifest::MAX_MANIFEST_SIZE
            ),
        })?;
    let digest = Digest::of(&bytes);
    if let Some(expected) = expected {
        if *expected != digest {
            return Err(RegistryError::ManifestDigestMismatch {
                digest: expected.clone(),
                actual: digest,
            });
        }
    }
    Ok((bytes, content_type, digest))
}

/// GETs a small blob (a config) into memory, verified.
async fn fetch_small_blob(session: &Session, desc: &Descriptor) -> Result<bytes::Bytes> {
    const LIMIT: usize = 64 << 20;
    let resp = get_blob(session, &desc.digest).await?;
    let url = session.url(&format!("blobs/{}", desc.digest));
    let bytes = read_limited(resp, LIMIT)
        .await
        .ok_or_else(|| transport_failure("GET", url.as_str(), "config blob unreadable"))?;
    let actual = Digest::of(&bytes);
    if actual != desc.digest {
        return Err(RegistryError::LayerDigestMismatch {
            digest: desc.digest.clone(),
            actual,
        });
    }
    Ok(bytes)
}

fn transport_failure(method: &str, url: &str, reason: &str) -> RegistryError {
    RegistryError::Transport {
        method: method.to_string(),
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

/// Starts a blob GET (redirects followed), failing on any status but 200.
async fn get_blob(session: &Session, digest: &Digest) -> Result<reqwest::Response> {
    let url = session.url(&format!("blobs/{digest}"));
    let resp = session
        .send(Method::GET, url.clone(), HeaderMap::new(), None)
        .await?;
    if resp.status() != StatusCode::OK {
        return Err(error_from_response("GET", url.as_str(), resp).await);
    }
    Ok(resp)
}

/// One layer blob to bring into the content store and the extractor.
struct BlobJob {
    registry: Registry,
    session: Arc<Session>,
    storage: Arc<Storage>,
    desc: Descriptor,
    cancel: Arc<AtomicBool>,
    tx: ProgressTx,
}

impl BlobJob {
    /// Downloads the blob, or waits for the pull already downloading it and then feeds
    /// the extractor from the content store.
    async fn run(self, sender: ChunkSender, _permit: OwnedSemaphorePermit) -> Result<()> {
        let digest = self.desc.digest.clone();
        let mut waited = false;
        loop {
            match self.registry.flights.join(&digest) {
                Role::Follower(mut rx) => {
                    waited = true;
                    let outcome = loop {
                        if let Some(r) = rx.borrow_and_update().clone() {
                            break r;
                        }
                        if rx.changed().await.is_err() {
                            break Err(Arc::new(RegistryError::Interrupted {
                                digest: digest.clone(),
                            }));
                        }
                    };
                    match outcome {
                        Ok(()) => return self.feed_from_store(sender).await,
                        // The other pull was dropped: download it ourselves.
                        Err(e) if matches!(*e, RegistryError::Interrupted { .. }) => continue,
                        Err(e) => {
                            sender.fail(e.to_string());
                            return Err(RegistryError::Shared(e));
                        }
                    }
                }
                Role::Leader(guard) => {
                    if waited && self.storage.content().exists(&digest) {
                        guard.finish(Ok(()));
                        return self.feed_from_store(sender).await;
                    }
                    return match self.download(sender).await {
                        Ok(()) => {
                            guard.finish(Ok(()));
                            Ok(())
                        }
                        Err(RegistryError::Interrupted { digest }) => {
                            drop(guard); // waiters retry
                            Err(RegistryError::Interrupted { digest })
                        }
                        Err(e) => {
                            let e = Arc::new(e);
                            guard.finish(Err(e.clone()));
                            Err(RegistryError::Shared(e))
                        }
                    };
                }
            }
        }
    }

    /// Streams a stored blob into the extractor.
    async fn feed_from_store(self, sender: ChunkSender) -> Result<()> {
        let storage = self.storage.clone();
        let digest = self.desc.digest.clone();
        let id = short_id(&digest);
        emit(&self.tx, Progress::LayerDownloadComplete { id });
        tokio::task::spawn_blocking(move || {
            let mut f = storage.content().open(&digest)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf).map_err(|e| RegistryError::Io {
                    action: "reading blob",
                    path: storage.content().path(&digest),
                    source: e,
                })?;
                if n == 0 {
                    sender.finish();
                    return Ok(());
                }
                if !sender.send(bytes::Bytes::copy_from_slice(&buf[..n])) {
                    return Err(RegistryError::Interrupted { digest });
                }
            }
        })
        .await
        .map_err(|e| RegistryError::internal("reading blob task", e))?
    }

    /// Downloads the blob: every chunk goes to the content store writer (which hashes
    /// it) and to the extractor; the extractor gets its end-of-stream only once the
    /// digest matched, and the blob is committed after that.
    async fn download(&self, sender: ChunkSender) -> Result<()> {
        let desc = self.desc.clone();
        let id = short_id(&desc.digest);
        let resp = match get_blob(&self.session, &desc.digest).await {
            Ok(r) => r,
            Err(e) => {
                sender.fail(e.to_string());
                return Err(e);
            }
        };
        let url = resp.url().to_string();
        let total = if desc.size > 0 {
            desc.size
        } else {
            resp.content_length().unwrap_or(0)
        };
        let mut stream = Box::pin(resp.bytes_stream());
        let storage = self.storage.clone();
        let cancel = self.cancel.clone();
        let tx = self.tx.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let fail = |sender: ChunkSender, e: RegistryError| {
                sender.fail(e.to_string());
                Err(e)
            };
            let mut writer = match storage.content().writer() {
                Ok(w) => w,
                Err(e) => return fail(sender, e.into()),
            };
            let mut got: u64 = 0;
            let mut extracting = true;
            let mut throttle = Throttle::new(total);
            emit(
                &tx,
                Progress::LayerDownloading {
                    id: id.clone(),
                    current: 0,
                    total,
                },
            );
            while let Some(chunk) = handle.block_on(stream.next()) {
                if cancel.load(Ordering::SeqCst) {
                    return fail(
                        sender,
                        RegistryError::Interrupted {
                            digest: desc.digest.clone(),
                        },
                    );
                }
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => return fail(sender, transport_error("GET", &url, &e)),
                };
                got += chunk.len() as u64;
                if desc.size > 0 && got > desc.size {
                    return fail(
                        sender,
                        RegistryError::BlobTooLarge {
                            digest: desc.digest.clone(),
                            size: desc.size,
                        },
                    );
                }
                if let Err(e) = writer.write_all(&chunk) {
                    return fail(
                        sender,
                        RegistryError::Io {
                            action: "writing blob",
                            path: storage.content().path(&desc.digest),
                            source: e,
                        },
                    );
                }
                // When the extractor failed (a corrupt stream, say), the download goes on
                // into the content store only, so a bad blob is still named as such.
                if extracting && !sender.send(chunk) {
                    extracting = false;
                }
                if throttle.due(got, total) {
                    emit(
                        &tx,
                        Progress::LayerDownloading {
                            id: id.clone(),
                            current: got,
                            total,
                        },
                    );
                }
            }
            emit(&tx, Progress::LayerVerifying { id: id.clone() });
            let actual = writer.digest();
            if actual != desc.digest {
                return fail(
                    sender,
                    RegistryError::LayerDigestMismatch {
                        digest: desc.digest.clone(),
                        actual,
                    },
                );
            }
            sender.finish();
            emit(&tx, Progress::LayerDownloadComplete { id });
            writer.commit(Some(&desc.digest))?;
            if !extracting {
                // The blob is sound: the extractor's own error is the one to report.
                return Err(RegistryError::Interrupted {
                    digest: desc.digest.clone(),
                });
            }
            Ok(())
        })
        .await
        .map_err(|e| RegistryError::internal("download task", e))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(
            next_link(r#"</v2/x/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/x/tags/list?last=b&n=2")
        );
        assert_eq!(next_link(r#"</a>; rel="prev""#), None);
    }

    #[test]
    fn pull_errors_take_dockers_wording() {
        let r = Reference::parse_with_default_tag("127.0.0.1:5000/app:nope").unwrap();
        let remote = |status, code: &str, msg: &str| RegistryError::Remote {
            status,
            code: crate::error::errcode_text(code),
            message: msg.into(),
        };
        let e = translate_pull_error(
            remote(404, "MANIFEST_UNKNOWN", "manifest unknown"),
            &r,
            false,
        );
        assert_eq!(
            e.to_string(),
            "manifest for 127.0.0.1:5000/app:nope not found: manifest unknown: manifest unknown"
        );
        let e = translate_pull_error(
            remote(401, "UNAUTHORIZED", "authentication required"),
            &r,
            false,
        );
        assert!(e
            .to_string()
            .starts_with("pull access denied for 127.0.0.1:5000/app, repository does not exist or may require 'docker login'"));
        let e = translate_pull_error(
            remote(401, "UNAUTHORIZED", "authentication required"),
            &r,
            true,
        );
        assert_eq!(e.to_string(), "unauthorized: authentication required");
    }

    #[tokio::test]
    async fn a_dropped_leader_lets_waiters_take_over() {
        let flights = Arc::new(Flights::default());
        let d = Digest::of(b"blob");
        let Role::Leader(guard) = flights.join(&d) else {
            panic!("first is leader")
        };
        let Role::Follower(mut rx) = flights.join(&d) else {
            panic!("second follows")
        };
        drop(guard);
        rx.changed().await.unwrap();
        let r = rx.borrow().clone().unwrap();
        assert!(matches!(*r.unwrap_err(), RegistryError::Interrupted { .. }));
        assert!(matches!(flights.join(&d), Role::Leader(_)));
    }
}
