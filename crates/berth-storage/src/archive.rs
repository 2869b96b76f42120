//! Image archives: what `docker save` writes and `docker load` reads.
//!
//! [`write_archive`] writes what Docker 25+ writes, which old and new Docker both load:
//! an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>` with each
//! config, uncompressed layer tar and OCI manifest) plus the legacy `manifest.json` and
//! `repositories` that point into the same blobs. Layers shared by several images are
//! written once.
//!
//! [`read_archive`] accepts that format, the legacy docker-archive of Docker ≤ 24
//! (`manifest.json`, `<id>/layer.tar`, `<config hex>.json`, shared layers as symlinks),
//! and a plain OCI layout (`index.json` only; tags from the
//! `io.containerd.image.name` / `org.opencontainers.image.ref.name` annotations), whole
//! or gzip/zstd-compressed. Because `manifest.json` may come last, the archive is first
//! spooled into a temp directory under the storage root (removed afterwards, also on
//! error). Every blob is checked against its name or descriptor, every layer against
//! the config's `rootfs.diff_ids`; on any error only layers that were completely and
//! correctly applied remain (they are content-addressed and harmless).

use crate::apply::clean_path;
use crate::compress::decompress;
use crate::error::{IoContext, Result, StorageError};
use crate::{Layer, Storage};
use berth_core::digest::Hasher;
use berth_core::error::HasKind;
use berth_core::reference::Reference;
use berth_core::Digest;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
const MEDIA_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One image to save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveImage {
    /// The raw image config JSON; its sha256 is the image id.
    pub config: Vec<u8>,
    /// Chain ids of the image's layers, base first.
    pub layers: Vec<Digest>,
    /// Tags in familiar form (`busybox:latest`).
    pub repo_tags: Vec<String>,
}

/// One image loaded from an archive; its layers are in the layer store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    pub config: Vec<u8>,
    /// The image id.
    pub config_digest: Digest,
    /// Base first.
    pub layers: Vec<Layer>,
    /// Familiar form (`busybox:latest`).
    pub repo_tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Index {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    media_type: String,
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    media_type: String,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Debug, Serialize, Deserialize)]
struct LegacyEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

#[derive(Debug, Deserialize)]
struct ConfigRootFs {
    rootfs: Option<RootFs>,
}

/// The platform an image config declares, as index descriptors carry it.
fn config_platform(config: &[u8]) -> Option<Platform> {
    let p: Platform = serde_json::from_slice(config).ok()?;
    (!p.os.is_empty() && !p.architecture.is_empty()).then_some(p)
}

fn diff_ids(config: &[u8], what: &str) -> Result<Vec<Digest>> {
    let c: ConfigRootFs = serde_json::from_slice(config).map_err(|e| {
        StorageError::invalid_archive(format!("image config {what} is not valid: {e}"))
    })?;
    Ok(c.rootfs.map(|r| r.diff_ids).unwrap_or_default())
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn parse_tag(tag: &str) -> Result<Reference> {
    Reference::parse_with_default_tag(tag)
        .ok()
        .filter(|r| r.tag().is_some())
        .ok_or_else(|| StorageError::invalid_archive(format!("invalid repository tag {tag:?}")))
}

// ---------------------------------------------------------------------------------------
// Writing

enum BlobSource {
    Bytes(Vec<u8>),
    File(PathBuf),
    /// The exact tar of this layer (chain id), streamed straight into the archive.
    Layer(Digest),
}

/// Writes `images` as a `docker save` archive to `w`.
pub fn write_archive(storage: &Storage, images: &[ArchiveImage], w: impl Write) -> Result<()> {
    let spool = storage.temp_dir("save-")?;
    let mut blobs: BTreeMap<Digest, (BlobSource, u64)> = BTreeMap::new();
    let mut layer_blobs: HashMap<Digest, Descriptor> = HashMap::new();
    let mut index = Index {
        schema_version: 2,
        media_type: MEDIA_OCI_INDEX.into(),
        manifests: Vec::new(),
    };
    let mut legacy = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();

    for (n, image) in images.iter().enumerate() {
        let config_digest = Digest::of(&image.config);
        let expected_diff_ids = diff_ids(&image.config, &config_digest.to_string())?;
        let platform = config_platform(&image.config);
        let mut layer_descs = Vec::new();
        for (i, chain) in image.layers.iter().enumerate() {
            let layer = storage
                .try_layer(chain)?
                .ok_or_else(|| StorageError::LayerNotFound {
                    chain_id: chain.clone(),
                })?;
            if expected_diff_ids
                .get(i)
                .is_some_and(|d| *d != layer.diff_id)
            {
                return Err(StorageError::DiffIdMismatch {
                    expected: expected_diff_ids[i].clone(),
                    actual: layer.diff_id,
                });
            }
            if let Some(desc) = layer_blobs.get(chain) {
                layer_descs.push(desc.clone());
                continue;
            }
            let desc = layer_blob(storage, &layer, spool.path(), &mut blobs, n, i)?;
            layer_blobs.insert(chain.clone(), desc.clone());
            layer_descs.push(desc);
        }
        if !expected_diff_ids.is_empty() && expected_diff_ids.len() != image.layers.len() {
            return Err(StorageError::invalid_archive(format!(
                "image {config_digest} has {} diff_ids in its config but {} layers",
                expected_diff_ids.len(),
                image.layers.len()
            )));
        }
        let config_size = image.config.len() as u64;
        blobs.insert(
            config_digest.clone(),
            (BlobSource::Bytes(image.config.clone()), config_size),
        );
        let manifest = Manifest {
            schema_version: 2,
            media_type: MEDIA_OCI_MANIFEST.into(),
            config: Descriptor {
                media_type: MEDIA_OCI_CONFIG.into(),
                digest: config_digest.clone(),
                size: config_size,
                annotations: BTreeMap::new(),
                platform: None,
            },
            layers: layer_descs.clone(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        let manifest_digest = Digest::of(&manifest_bytes);
        let manifest_size = manifest_bytes.len() as u64;
        blobs.insert(
            manifest_digest.clone(),
            (BlobSource::Bytes(manifest_bytes), manifest_size),
        );

        let refs = image
            .repo_tags
            .iter()
            .map(|t| parse_tag(t))
            .collect::<Result<Vec<_>>>()?;
        let descriptor = |annotations| Descriptor {
            media_type: MEDIA_OCI_MANIFEST.into(),
            digest: manifest_digest.clone(),
            size: manifest_size,
            annotations,
            platform: platform.clone(),
        };
        if refs.is_empty() {
            index.manifests.push(descriptor(BTreeMap::new()));
        }
        for r in &refs {
            let tag = r.tag().unwrap_or("latest").to_string();
            index.manifests.push(descriptor(BTreeMap::from([
                (ANNOTATION_IMAGE_NAME.to_string(), r.to_string()),
                (ANNOTATION_REF_NAME.to_string(), tag.clone()),
            ])));
            if let Some(top) = layer_descs.last() {
                repositories
                    .entry(r.familiar_repository())
                    .or_default()
                    .insert(tag, top.digest.hex().to_string());
            }
        }
        legacy.push(LegacyEntry {
            config: blob_name(&config_digest),
            repo_tags: Some(refs.iter().map(Reference::familiar).collect()),
            layers: layer_descs.iter().map(|d| blob_name(&d.digest)).collect(),
        });
    }

    let mut out = tar::Builder::new(w);
    let err = |e: io::Error| StorageError::io("writing image archive from", spool.path(), e);
    append_dir(&mut out, "blobs/").map_err(err)?;
    append_dir(&mut out, "blobs/sha256/").map_err(err)?;
    for (digest, (source, size)) in &blobs {
        match source {
            BlobSource::Bytes(b) => {
                append_file(&mut out, &blob_name(digest), *size, &b[..]).map_err(err)?
            }
            BlobSource::File(p) => append_file(
                &mut out,
                &blob_name(digest),
                *size,
                File::open(p).map_err(err)?,
            )
            .map_err(err)?,
            BlobSource::Layer(chain) => {
                let mut h = header(tar::EntryType::Regular, 0o644, *size);
                h.set_path(blob_name(digest)).map_err(err)?;
                h.set_cksum();
                let w = out.get_mut();
                w.write_all(h.as_bytes()).map_err(err)?;
                let sum = storage.layer_tar(chain, &mut *w)?;
                if sum.size != *size {
                    return Err(StorageError::io(
                        "writing image archive",
                        spool.path(),
                        io::Error::other(format!(
                            "layer {chain} was {} bytes, its recipe says {size}",
                            sum.size
                        )),
                    ));
                }
                w.write_all(&vec![0u8; ((512 - size % 512) % 512) as usize])
                    .map_err(err)?;
            }
        }
    }
    let json = |v: &dyn erased::Json| v.bytes();
    for (name, bytes) in [
        ("index.json", json(&index)),
        ("manifest.json", json(&legacy)),
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("repositories", json(&repositories)),
    ] {
        append_file(&mut out, name, bytes.len() as u64, &bytes[..]).map_err(err)?;
    }
    out.into_inner().map_err(err)?.flush().map_err(err)?;
    Ok(())
}

mod erased {
    /// Serialises heterogeneous values in one loop.
    pub trait Json {
        fn bytes(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Json for T {
        fn bytes(&self) -> Vec<u8> {
            serde_json::to_vec(self).expect("archive metadata serialises")
        }
    }
}

/// Finds or makes the uncompressed tar blob of `layer`.
fn layer_blob(
    storage: &Storage,
    layer: &Layer,
    spool: &Path,
    blobs: &mut BTreeMap<Digest, (BlobSource, u64)>,
    image: usize,
    index: usize,
) -> Result<Descriptor> {
    let desc = |digest: Digest, size| Descriptor {
        media_type: MEDIA_OCI_LAYER.into(),
        digest,
        size,
        annotations: BTreeMap::new(),
        platform: None,
    };
    // The pulled blob itself when it is the uncompressed tar.
    if let Some((blob, media)) = storage.layer_blob(&layer.chain_id)? {
        let plain = media == MEDIA_OCI_LAYER || media == MEDIA_DOCKER_LAYER;
        if plain && blob == layer.diff_id && storage.content().exists(&blob) {
            let size = storage.content().size(&blob)?;
            blobs.insert(
                blob.clone(),
                (BlobSource::File(storage.content().path(&blob)), size),
            );
            return Ok(desc(blob, size));
        }
    }
    // Rebuilt from its recipe: digest and size are known without writing it anywhere.
    if let Some(size) = storage.exact_tar_size(&layer.chain_id)? {
        blobs.insert(
            layer.diff_id.clone(),
            (BlobSource::Layer(layer.chain_id.clone()), size),
        );
        return Ok(desc(layer.diff_id.clone(), size));
    }
    let path = spool.join(format!("layer-{image}-{index}.tar"));
    let file = File::create(&path).ctx("creating", &path)?;
    let mut w = io::BufWriter::new(file);
    let sum = storage.layer_tar(&layer.chain_id, &mut w)?;
    w.into_inner()
        .map_err(|e| e.into_error())
        .ctx("writing", &path)?;
    blobs
        .entry(sum.digest.clone())
        .or_insert((BlobSource::File(path), sum.size));
    Ok(desc(sum.digest, sum.size))
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

fn append_dir<W: Write>(out: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    out.append_data(&mut h, name, io::empty())
}

fn append_file<W: Write>(
    out: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    data: impl Read,
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, 0o644, size);
    out.append_data(&mut h, name, data.take(size))
}

// ---------------------------------------------------------------------------------------
// Reading

/// A file of the archive, spooled to disk.
#[derive(Debug, Clone)]
struct Spooled {
    path: PathBuf,
    digest: Digest,
    size: u64,
}

/// The archive's files by name, after spooling.
struct SpoolDir {
    files: HashMap<String, Spooled>,
    symlinks: HashMap<String, String>,
}

impl SpoolDir {
    fn resolve(&self, name: &str) -> Result<&Spooled> {
        let mut name = normalise(name).ok_or_else(|| missing(name))?;
        for _ in 0..16 {
            if let Some(f) = self.files.get(&name) {
                return Ok(f);
            }
            match self.symlinks.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        Err(missing(&name))
    }

    fn has(&self, name: &str) -> bool {
        self.resolve(name).is_ok()
    }

    fn read(&self, name: &str) -> Result<Vec<u8>> {
        let f = self.resolve(name)?;
        fs::read(&f.path).ctx("reading spooled", &f.path)
    }

    /// Reads a blob named by digest, checking the content hashes to its name.
    fn blob(&self, d: &Descriptor) -> Result<&Spooled> {
        let f = self.resolve(&blob_name(&d.digest))?;
        if f.digest != d.digest {
            return Err(StorageError::invalid_archive(format!(
                "blob {} has digest {}",
                blob_name(&d.digest),
                f.digest
            )));
        }
        if d.size != 0 && f.size != d.size {
            return Err(StorageError::invalid_archive(format!(
                "blob {} has {} bytes, its descriptor says {}",
                blob_name(&d.digest),
                f.size,
                d.size
            )));
        }
        Ok(f)
    }
}

fn missing(name: &str) -> StorageError {
    StorageError::invalid_archive(format!("the archive has no file {name}"))
}

/// `a/./b/../c` → `a/c`; `None` when it climbs out of the archive.
fn normalise(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// If `name` is `blobs/sha256/<hex>` (or `<hex>.json`), the digest its content must have.
fn digest_in_name(name: &str) -> Option<Digest> {
    let name = normalise(name)?;
    if let Some(hex) = name.strip_prefix("blobs/sha256/") {
        return Digest::from_hex(hex).ok();
    }
    name.strip_suffix(".json")
        .and_then(|hex| Digest::from_hex(hex).ok())
}

fn spool(r: impl Read, dir: &Path) -> Result<SpoolDir> {
    let corrupt = |e: io::Error| {
        StorageError::invalid_archive(format!("the archive is truncated or corrupt: {e}"))
    };
    let (_, plain) = decompress(r).map_err(corrupt)?;
    let mut archive = tar::Archive::new(plain);
    let mut files = HashMap::new();
    let mut symlinks = HashMap::new();
    let mut hardlinks = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for (n, entry) in archive.entries().map_err(corrupt)?.enumerate() {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry.path_bytes().into_owned();
        let Some(rel) =
            clean_path(&raw).map_err(|e| StorageError::invalid_archive(e.to_string()))?
        else {
            continue;
        };
        let name = rel.to_string_lossy().into_owned();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let path = dir.join(format!("{n}"));
                let mut file = File::create(&path).ctx("creating", &path)?;
                let mut hasher = Hasher::new();
                let mut size = 0u64;
                loop {
                    let k = entry.read(&mut buf).map_err(corrupt)?;
                    if k == 0 {
                        break;
                    }
                    hasher.update(&buf[..k]);
                    file.write_all(&buf[..k]).ctx("writing", &path)?;
                    size += k as u64;
                }
                files.insert(
                    name,
                    Spooled {
                        path,
                        digest: hasher.finish(),
                        size,
                    },
                );
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let is_hard = entry.header().entry_type() == tar::EntryType::Link;
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let resolved = if is_hard || target.starts_with('/') {
                    normalise(&target)
                } else {
                    let parent = Path::new(&name)
                        .parent()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    normalise(&format!("{parent}/{target}"))
                };
                if let Some(t) = resolved {
                    if is_hard {
                        hardlinks.push((name, t));
                    } else {
                        symlinks.insert(name, t);
                    }
                }
            }
            _ => {}
        }
    }
    // Drain the end of the stream so a truncated compressed archive is noticed.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(corrupt)?;
    for (name, target) in hardlinks {
        if let Some(f) = files.get(&target).cloned() {
            files.insert(name, f);
        }
    }
    Ok(SpoolDir { files, symlinks })
}

/// An image found in the archive, before its layers are applied.
struct Found {
    config_name: String,
    config: Option<Descriptor>,
    layers: Vec<(String, Option<Descriptor>)>,
    repo_tags: Vec<String>,
}

/// Reads a `docker save` archive (legacy, combined or plain OCI; optionally compressed),
/// applying its layers. Returns the images in the order the archive lists them.
pub fn read_archive(storage: &Storage, r: impl Read) -> Result<Vec<LoadedImage>> {
    let tmp = storage.temp_dir("load-")?;
    let dir = tmp.path().to_path_buf();
    let result = read_spooled(storage, r, &dir);
    drop(tmp);
    result
}

fn read_spooled(storage: &Storage, r: impl Read, dir: &Path) -> Result<Vec<LoadedImage>> {
    let spool = spool(r, dir)?;
    let found = if spool.has("manifest.json") {
        legacy_images(&spool)?
    } else if spool.has("index.json") {
        oci_images(&spool)?
    } else {
        return Err(StorageError::invalid_archive(
            "it has neither manifest.json nor index.json (truncated, or not an image archive)",
        ));
    };
    let mut out: Vec<LoadedImage> = Vec::new();
    for image in found {
        let config = match &image.config {
            Some(d) => fs::read(&spool.blob(d)?.path).ctx("reading spooled", dir)?,
            None => spool.read(&image.config_name)?,
        };
        let config_digest = Digest::of(&config);
        if let Some(expected) = digest_in_name(&image.config_name) {
            if expected != config_digest {
                return Err(StorageError::invalid_archive(format!(
                    "config {} has digest {config_digest}",
                    image.config_name
                )));
            }
        }
        let ids = diff_ids(&config, &image.config_name)?;
        if ids.len() != image.layers.len() {
            return Err(StorageError::invalid_archive(format!(
                "config {} lists {} layers but the manifest has {}",
                image.config_name,
                ids.len(),
                image.layers.len()
            )));
        }
        let mut tars = Vec::with_capacity(ids.len());
        for ((name, desc), diff_id) in image.layers.iter().zip(&ids) {
            let file = match desc {
                Some(d) => spool.blob(d)?,
                None => spool.resolve(name)?,
            };
            if let Some(expected) = digest_in_name(name) {
                if expected != file.digest {
                    return Err(StorageError::invalid_archive(format!(
                        "layer {name} has digest {}",
                        file.digest
                    )));
                }
            }
            let f = File::open(&file.path).ctx("opening spooled", &file.path)?;
            tars.push((io::BufReader::new(f), Some(diff_id.clone())));
        }
        let layers = storage.apply_layers(None, tars).map_err(|e| {
            if e.kind() == berth_core::ErrorKind::InvalidArgument {
                StorageError::invalid_archive(format!(
                    "a layer of image {config_digest}: {}",
                    crate::error::full_message(&e)
                ))
            } else {
                e
            }
        })?;
        match out.iter_mut().find(|i| i.config_digest == config_digest) {
            Some(existing) => {
                for t in image.repo_tags {
                    if !existing.repo_tags.contains(&t) {
                        existing.repo_tags.push(t);
                    }
                }
            }
            None => out.push(LoadedImage {
                config,
                config_digest,
                layers,
                repo_tags: image.repo_tags,
            }),
        }
    }
    Ok(out)
}

fn familiar_tags(tags: impl IntoIterator<Item = String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let f = parse_tag(&t)?.familiar();
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}

fn legacy_images(spool: &SpoolDir) -> Result<Vec<Found>> {
    let bytes = spool.read("manifest.json")?;
    let entries: Vec<LegacyEntry> = serde_json::from_slice(&bytes)
        .map_err(|e| StorageError::invalid_archive(format!("manifest.json is not valid: {e}")))?;
    entries
        .into_iter()
        .map(|e| {
            Ok(Found {
                config_name: e.config,
                config: None,
                layers: e.layers.into_iter().map(|l| (l, None)).collect(),
                repo_tags: familiar_tags(e.repo_tags.unwrap_or_default())?,
            })
        })
        .collect()
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn is_index(media: &str) -> bool {
    media == MEDIA_OCI_INDEX || media == MEDIA_DOCKER_MANIFEST_LIST
}

fn oci_images(spool: &SpoolDir) -> Result<Vec<Found>> {
    let bytes = spool.read("index.json")?;
    let index: Index = serde_json::from_slice(&bytes)
        .map_err(|e| StorageError::invalid_archive(format!("index.json is not valid: {e}")))?;
    let mut out = Vec::new();
    for desc in &index.manifests {
        let tag = desc
            .annotations
            .get(ANNOTATION_IMAGE_NAME)
            .cloned()
            .or_else(|| {
                desc.annotations
                    .get(ANNOTATION_REF_NAME)
                    .filter(|r| r.contains(':') || r.contains('/'))
                    .cloned()
            });
        let manifest = resolve_manifest(spool, desc, 0)?;
        out.push(Found {
            config_name: blob_name(&manifest.config.digest),
            config: Some(manifest.config.clone()),
            layers: manifest
                .layers
                .iter()
                .map(|l| (blob_name(&l.digest), Some(l.clone())))
                .collect(),
            repo_tags: familiar_tags(tag)?,
        });
    }
    Ok(out)
}

/// Follows nested indexes down to the manifest for this host's platform.
fn resolve_manifest(spool: &SpoolDir, desc: &Descriptor, depth: usize) -> Result<Manifest> {
    if depth > 4 {
        return Err(StorageError::invalid_archive("indexes nest too deeply"));
    }
    let bytes =
        fs::read(&spool.blob(desc)?.path).ctx("reading spooled blob", blob_name(&desc.digest))?;
    let looks_like_index = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map(|v| v.get("manifests").is_some())
        .unwrap_or(false);
    if is_index(&desc.media_type) || looks_like_index {
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
            StorageError::invalid_archive(format!("index {} is not valid: {e}", desc.digest))
        })?;
        let chosen = index
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == host_arch())
            })
            .or_else(|| (index.manifests.len() == 1).then(|| &index.manifests[0]))
            .ok_or_else(|| {
                StorageError::invalid_archive(format!(
                    "index {} has no image for linux/{}",
                    desc.digest,
                    host_arch()
                ))
            })?;
        return resolve_manifest(spool, chosen, depth + 1);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        StorageError::invalid_archive(format!("manifest {} is not valid: {e}", desc.digest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{gzip, require_root, temp_dir, TarBuild, TestStore};
    use crate::DriverChoice;
    use berth_core::error::ErrorKind;
    use std::process::Command;

    fn config(diff_ids: &[&Digest], label: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Labels": {"which": label}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [],
        }))
        .unwrap()
    }

    /// Two images sharing a base layer, in a fresh store.
    fn two_images(s: &Storage) -> Vec<ArchiveImage> {
        let base = s
            .apply_layer(
                None,
                &TarBuild::new()
                    .dir("etc")
                    .file("etc/os-release", b"ID=test\n")
                    .finish()[..],
            )
            .unwrap();
        let app = s
            .apply_layer(
                Some(&base.chain_id),
                &gzip(
                    &TarBuild::new()
                        .dir("app")
                        .file("app/run", b"#!/bin/sh\n")
                        .whiteout("etc/os-release")
                        .finish(),
                )[..],
            )
            .unwrap();
        vec![
            ArchiveImage {
                config: config(&[&base.diff_id, &app.diff_id], "app"),
                layers: vec![base.chain_id.clone(), app.chain_id.clone()],
                repo_tags: vec!["example/app:1.0".into(), "example/app:latest".into()],
            },
            ArchiveImage {
                config: config(&[&base.diff_id], "base"),
                layers: vec![base.chain_id],
                repo_tags: vec!["base:latest".into()],
            },
        ]
    }

    fn names(tar: &[u8]) -> Vec<String> {
        crate::testutil::tar_names(tar)
    }

    fn tmp_is_empty(s: &Storage) -> bool {
        fs::read_dir(s.root().join("tmp")).unwrap().count() == 0
    }

    #[test]
    fn written_archives_read_back_into_a_fresh_store_with_the_same_ids_and_tags() {
        if !require_root("written_archives_read_back_into_a_fresh_store_with_the_same_ids_and_tags")
        {
            return;
        }
        let a = TestStore::new(DriverChoice::Overlay);
        let images = two_images(&a);
        let mut tar = Vec::new();
        write_archive(&a, &images, &mut tar).unwrap();
        let n = names(&tar);
        for f in ["oci-layout", "index.json", "manifest.json", "repositories"] {
            assert!(n.contains(&f.to_string()), "{n:?}");
        }
        // 2 configs + 2 manifests + 2 layers (the shared base once).
        assert_eq!(
            n.iter().filter(|x| x.starts_with("blobs/sha256/")).count(),
            6,
            "{n:?}"
        );
        let mut again = Vec::new();
        write_archive(&a, &images, &mut again).unwrap();
        assert_eq!(tar, again, "saving is deterministic");

        let spool = temp_dir();
        tar::Archive::new(&tar[..]).unpack(spool.path()).unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(spool.path().join("index.json")).unwrap()).unwrap();
        let ann = &index["manifests"][0]["annotations"];
        assert_eq!(ann[ANNOTATION_IMAGE_NAME], "docker.io/example/app:1.0");
        assert_eq!(ann[ANNOTATION_REF_NAME], "1.0");
        assert_eq!(
            index["manifests"][0]["platform"],
            serde_json::json!({"architecture": "amd64", "os": "linux"})
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(spool.path().join("manifest.json")).unwrap()).unwrap();
        assert_eq!(
            manifest[0]["RepoTags"],
            serde_json::json!(["example/app:1.0", "example/app:latest"])
        );
        assert_eq!(
            manifest[0]["Config"],
            format!("blobs/sha256/{}", Digest::of(&images[0].config).hex())
        );

        for choice in [DriverChoice::Overlay, DriverChoice::Vfs] {
            let b = TestStore::new(choice);
            let loaded = read_archive(&b, &tar[..]).unwrap();
            assert_eq!(loaded.len(), 2);
            for (img, l) in images.iter().zip(&loaded) {
                assert_eq!(l.config_digest, Digest::of(&img.config));
                assert_eq!(l.config, img.config);
                assert_eq!(
                    l.layers
                        .iter()
                        .map(|x| x.chain_id.clone())
                        .collect::<Vec<_>>(),
                    img.layers
                );
                assert_eq!(l.repo_tags, img.repo_tags);
            }
            assert!(tmp_is_empty(&b));
            // Re-saving from the new store gives the same bytes: layer tars are exact.
            let mut resaved = Vec::new();
            write_archive(&b, &images, &mut resaved).unwrap();
            assert_eq!(resaved, tar, "{choice:?}");
        }
    }

    fn legacy_archive() -> (Vec<u8>, Vec<u8>, Digest) {
        let layer = TarBuild::new()
            .dir("bin")
            .file("bin/hello", b"hello")
            .finish();
        let diff_id = Digest::of(&layer);
        let cfg = config(&[&diff_id], "legacy");
        let cfg_digest = Digest::of(&cfg);
        let id = "a".repeat(64);
        let id2 = "b".repeat(64);
        let mut b = TarBuild::new();
        b.dir(&id)
            .file(&format!("{id}/VERSION"), b"1.0")
            .file(&format!("{id}/layer.tar"), &layer);
        b.dir(&id2)
            .symlink(&format!("{id2}/layer.tar"), &format!("../{id}/layer.tar"));
        b.file(&format!("{}.json", cfg_digest.hex()), &cfg);
        b.file(
            "repositories",
            format!(r#"{{"hello":{{"latest":"{id}"}}}}"#).as_bytes(),
        );
        let manifest = serde_json::json!([
            {"Config": format!("{}.json", cfg_digest.hex()), "RepoTags": ["hello:latest"], "Layers": [format!("{id}/layer.tar")]},
            {"Config": format!("{}.json", cfg_digest.hex()), "RepoTags": ["docker.io/library/hello:v1"], "Layers": [format!("{id2}/layer.tar")]},
        ]);
        b.file("manifest.json", manifest.to_string().as_bytes()); // last, as Docker writes it
        (b.finish(), cfg, cfg_digest)
    }

    #[test]
    fn a_legacy_docker_archive_with_shared_layer_symlinks_loads() {
        if !require_root("a_legacy_docker_archive_with_shared_layer_symlinks_loads") {
            return;
        }
        let s = TestStore::new(DriverChoice::Overlay);
        let (tar, cfg, cfg_digest) = legacy_archive();
        let loaded = read_archive(&s, &gzip(&tar)[..]).unwrap();
        assert_eq!(loaded.len(), 1, "same config twice is one image");
        assert_eq!(loaded[0].config, cfg);
        assert_eq!(loaded[0].config_digest, cfg_digest);
        assert_eq!(loaded[0].repo_tags, ["hello:latest", "hello:v1"]);
        assert_eq!(s.layers().len(), 1);
        assert!(tmp_is_empty(&s));
    }

    #[test]
    fn a_plain_oci_layout_loads_with_tags_from_annotations() {
        if !require_root("a_plain_oci_layout_loads_with_tags_from_annotations") {
            return;
        }
        let s = TestStore::new(DriverChoice::Overlay);
        let layer = TarBuild::new().file("hello", b"oci").finish();
        let blob = gzip(&layer);
        let cfg = config(&[&Digest::of(&layer)], "oci");
        let desc = |media: &str, bytes: &[u8]| serde_json::json!({"mediaType": media, "digest": Digest::of(bytes), "size": bytes.len()});
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
            "config": desc(MEDIA_OCI_CONFIG, &cfg),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", &blob)],
        }))
        .unwrap();
        let mut m1 = desc(MEDIA_OCI_MANIFEST, &manifest);
        m1["annotations"] = serde_json::json!({ANNOTATION_IMAGE_NAME: "registry.local:5000/team/hello:2", ANNOTATION_REF_NAME: "2"});
        let mut m2 = desc(MEDIA_OCI_MANIFEST, &manifest);
        m2["annotations"] = serde_json::json!({ANNOTATION_REF_NAME: "hello:skopeo"});
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [m1, m2]});
        let mut b = TarBuild::new();
        b.file("index.json", index.to_string().as_bytes())
            .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        for bytes in [&blob, &cfg, &manifest] {
            b.file(&blob_name(&Digest::of(bytes)), bytes);
        }
        let loaded = read_archive(&s, &b.finish()[..]).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            loaded[0].repo_tags,
            ["registry.local:5000/team/hello:2", "hello:skopeo"]
        );
        assert_eq!(loaded[0].layers[0].diff_id, Digest::of(&layer));
    }

    #[test]
    fn truncated_or_corrupt_archives_give_clear_errors_and_leave_nothing() {
        if !require_root("truncated_or_corrupt_archives_give_clear_errors_and_leave_nothing") {
            return;
        }
        let a = TestStore::new(DriverChoice::Overlay);
        let images = two_images(&a);
        let mut tar = Vec::new();
        write_archive(&a, &images, &mut tar).unwrap();
        let s = TestStore::new(DriverChoice::Overlay);
        for cut in [700, tar.len() / 2, tar.len() - 3000] {
            let err = read_archive(&s, &tar[..cut]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
            let msg = err.to_string();
            assert!(msg.contains("truncated"), "cut at {cut}: {msg}");
        }
        let gz = gzip(&tar);
        let err = read_archive(&s, &gz[..gz.len() - 100]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(s.layers().is_empty());
        assert!(tmp_is_empty(&s));

        // A legacy archive whose config names a different diff_id.
        let wrong = config(&[&Digest::of(b"other")], "legacy");
        let mut b = TarBuild::new();
        let layer = TarBuild::new().file("x", b"x").finish();
        b.file("l.tar", &layer).file("c.json", &wrong);
        b.file(
            "manifest.json",
            br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l.tar"]}]"#,
        );
        let err = read_archive(&s, &b.finish()[..]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&Digest::of(b"other").to_string())
                && msg.contains(&Digest::of(&layer).to_string()),
            "{msg}"
        );
        assert!(
            s.layers().is_empty(),
            "a layer that does not match its diff_id is not kept"
        );

        // A blob whose content does not match its name.
        let mut b = TarBuild::new();
        b.file(&blob_name(&Digest::of(b"claimed")), &layer)
            .file("c.json", &config(&[&Digest::of(&layer)], "x"));
        b.file(
            "manifest.json",
            format!(
                r#"[{{"Config":"c.json","Layers":["{}"]}}]"#,
                blob_name(&Digest::of(b"claimed"))
            )
            .as_bytes(),
        );
        let err = read_archive(&s, &b.finish()[..]).unwrap_err();
        assert!(
            err.to_string().contains(&Digest::of(&layer).to_string()),
            "{err}"
        );
        // A missing layer file.
        let mut b = TarBuild::new();
        b.file("c.json", &config(&[&Digest::of(&layer)], "x"));
        b.file(
            "manifest.json",
            br#"[{"Config":"c.json","Layers":["nope/layer.tar"]}]"#,
        );
        let err = read_archive(&s, &b.finish()[..]).unwrap_err();
        assert!(err.to_string().contains("nope/layer.tar"), "{err}");
        assert!(s.layers().is_empty());
        assert!(tmp_is_empty(&s));
    }

    fn skopeo(args: &[&str]) -> String {
        let out = Command::new("skopeo")
            .arg("--insecure-policy")
            .args(args)
            .output()
            .expect("skopeo must be installed (apt-get install skopeo) for the archive compatibility tests");
        assert!(
            out.status.success(),
            "skopeo {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Tars up a directory (an OCI layout written by skopeo) in memory.
    fn tar_dir(dir: &Path) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        b.append_dir_all(".", dir).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn skopeo_reads_our_archives_and_we_read_skopeos() {
        if !require_root("skopeo_reads_our_archives_and_we_read_skopeos") {
            return;
        }
        let a = TestStore::new(DriverChoice::Overlay);
        let images = two_images(&a);
        let work = temp_dir();
        let saved = work.path().join("saved.tar");
        write_archive(&a, &images[..1], File::create(&saved).unwrap()).unwrap();
        let saved_s = saved.to_str().unwrap();

        let inspect: serde_json::Value =
            serde_json::from_str(&skopeo(&["inspect", &format!("docker-archive:{saved_s}")]))
                .unwrap();
        assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2, "{inspect}");
        assert_eq!(inspect["Labels"]["which"], "app");
        let raw_cfg = skopeo(&[
            "inspect",
            "--config",
            "--raw",
            &format!("docker-archive:{saved_s}"),
        ]);
        assert_eq!(
            Digest::of(raw_cfg.as_bytes()),
            Digest::of(&images[0].config)
        );

        // docker-archive → OCI layout by skopeo, then read that layout back.
        let oci = work.path().join("oci");
        skopeo(&[
            "copy",
            &format!("docker-archive:{saved_s}"),
            &format!("oci:{}:example/app:1.0", oci.display()),
        ]);
        let b = TestStore::new(DriverChoice::Overlay);
        let loaded = read_archive(&b, &tar_dir(&oci)[..]).unwrap();
        assert_eq!(loaded.len(), 1);
        // skopeo rewrites a Docker config as an OCI one, so the id changes; the layers do not.
        assert_eq!(loaded[0].config_digest, Digest::of(&loaded[0].config));
        assert_eq!(
            loaded[0]
                .layers
                .iter()
                .map(|l| l.chain_id.clone())
                .collect::<Vec<_>>(),
            images[0].layers
        );
        assert_eq!(loaded[0].repo_tags, ["example/app:1.0"]);

        // OCI layout → docker-archive by skopeo (Docker ≤ 24 format), read back.
        let back = work.path().join("back.tar");
        skopeo(&[
            "copy",
            &format!("oci:{}:example/app:1.0", oci.display()),
            &format!("docker-archive:{}:example/app:2.0", back.display()),
        ]);
        let c = TestStore::new(DriverChoice::Vfs);
        let loaded = read_archive(&c, File::open(&back).unwrap()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].repo_tags, ["example/app:2.0"]);
        assert_eq!(
            loaded[0]
                .layers
                .iter()
                .map(|l| l.chain_id.clone())
                .collect::<Vec<_>>(),
            images[0].layers
        );
    }

    fn docker(host: &str, args: &[&str]) -> String {
        let out = Command::new("docker")
            .arg("-H")
            .arg(host)
            .args(args)
            .output()
            .expect("docker CLI");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Against a real Docker daemon: `BERTH_TEST_DOCKER_HOST=unix:///path/docker.sock
    /// cargo test -p berth-storage -- --ignored real_docker`.
    #[test]
    #[ignore]
    fn a_real_docker_daemon_loads_our_archive_and_we_load_its_save() {
        let Ok(host) = std::env::var("BERTH_TEST_DOCKER_HOST") else {
            panic!("set BERTH_TEST_DOCKER_HOST to the socket of a Docker daemon to run this test");
        };
        let s = TestStore::new(DriverChoice::Overlay);
        let busybox = fs::read("/bin/busybox").expect("a static /bin/busybox");
        let base = TarBuild::new()
            .dir("bin")
            .file_mode("bin/busybox", &busybox, 0o755)
            .symlink("bin/sh", "busybox")
            .symlink("bin/cat", "busybox")
            .dir("etc")
            .file("etc/hello", b"hello\n")
            .finish();
        let base = s.apply_layer(None, &base[..]).unwrap();
        let top = TarBuild::new()
            .dir("etc")
            .whiteout("etc/hello")
            .file("etc/new", b"from berth\n")
            .finish();
        let top = s
            .apply_layer(Some(&base.chain_id), &gzip(&top)[..])
            .unwrap();
        let cfg = config(&[&base.diff_id, &top.diff_id], "docker");
        let image = ArchiveImage {
            config: cfg.clone(),
            layers: vec![base.chain_id.clone(), top.chain_id.clone()],
            repo_tags: vec!["berth-test/busybox:1".into()],
        };
        let work = temp_dir();
        let ours = work.path().join("ours.tar");
        write_archive(&s, &[image], File::create(&ours).unwrap()).unwrap();

        let loaded = docker(&host, &["load", "-i", ours.to_str().unwrap()]);
        assert!(loaded.contains("berth-test/busybox:1"), "{loaded}");
        let id = docker(
            &host,
            &[
                "image",
                "inspect",
                "--format",
                "{{.Id}}",
                "berth-test/busybox:1",
            ],
        );
        assert_eq!(id.trim(), Digest::of(&cfg).to_string());
        let run = docker(
            &host,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "berth-test/busybox:1",
                "/bin/sh",
                "-c",
                "cat /etc/new; test -e /etc/hello || echo gone",
            ],
        );
        assert_eq!(run, "from berth\ngone\n");

        let theirs = work.path().join("theirs.tar");
        docker(
            &host,
            &[
                "save",
                "-o",
                theirs.to_str().unwrap(),
                "berth-test/busybox:1",
            ],
        );
        docker(&host, &["rmi", "berth-test/busybox:1"]);
        let fresh = TestStore::new(DriverChoice::Vfs);
        let back = read_archive(&fresh, File::open(&theirs).unwrap()).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].config_digest, Digest::of(&cfg));
        assert_eq!(back[0].repo_tags, ["berth-test/busybox:1"]);
        assert_eq!(back[0].layers.last().unwrap().chain_id, top.chain_id);
    }
}
