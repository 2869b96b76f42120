//! The image service: the index of images and their references, kept in the state
//! database and mirrored in memory for fast lookups.
//!
//! An image is its config document (whose digest is its id) plus the layers its
//! `rootfs.diff_ids` name, stored by chain id in berth-storage. References are fully
//! qualified (`docker.io/library/busybox:latest`, or `repo@sha256:...` for digests).

pub mod change;
pub mod import;
pub mod list;
mod load;
mod remove;

pub use import::ImportImage;
pub use list::ListImages;
pub use remove::RemovedImage;

use crate::Engine;
use berth_core::event::EventType;
use berth_core::image::{Image, ImageConfig};
use berth_core::reference::Reference;
use berth_core::{Digest, Error, Result};
use chrono::Utc;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;

#[derive(Default)]
struct Inner {
    images: HashMap<Digest, Image>,
    /// Fully qualified reference → image id.
    refs: BTreeMap<String, Digest>,
}

/// In-memory mirror of the images and references tables.
#[derive(Default)]
pub struct ImageIndex {
    inner: RwLock<Inner>,
}

/// Chain ids of an image's layers, base first.
pub fn chain_ids(config: &ImageConfig) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(config.rootfs.diff_ids.len());
    for diff in &config.rootfs.diff_ids {
        let chain = berth_storage::chain_id(out.last(), diff);
        out.push(chain);
    }
    out
}

impl ImageIndex {
    pub fn load(db: &crate::db::Db, storage: &berth_storage::Storage) -> Result<Self> {
        let mut inner = Inner::default();
        for crate::db::ImageRow {
            id,
            config,
            size,
            loaded_at,
        } in db.images()?
        {
            let Ok(digest) = id.parse::<Digest>() else {
                continue;
            };
            let Ok(config) = serde_json::from_slice::<ImageConfig>(&config) else {
                continue;
            };
            // An image whose layers vanished is unusable; keep it listed so it can be removed.
            let _ = storage;
            let loaded_at = chrono::DateTime::parse_from_rfc3339(&loaded_at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|_| Utc::now());
            inner.images.insert(
                digest.clone(),
                Image {
                    id: digest,
                    config,
                    repo_tags: BTreeSet::new(),
                    repo_digests: BTreeSet::new(),
                    size,
                    loaded_at,
                },
            );
        }
        for (reference, image_id, _kind) in db.refs()? {
            let Ok(digest) = image_id.parse::<Digest>() else {
                continue;
            };
            if let Some(img) = inner.images.get_mut(&digest) {
                if reference.contains('@') {
                    img.repo_digests.insert(reference.clone());
                } else {
                    img.repo_tags.insert(reference.clone());
                }
                inner.refs.insert(reference, digest);
            }
        }
        Ok(Self {
            inner: RwLock::new(inner),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn all(&self) -> Vec<Image> {
        self.read().images.values().cloned().collect()
    }

    pub fn by_id(&self, id: &Digest) -> Option<Image> {
        self.read().images.get(id).cloned()
    }

    /// Docker's lookup: a reference (tag defaults to `latest`), then a full or abbreviated
    /// id (`sha256:` optional).
    pub fn resolve(&self, name: &str) -> Result<Image> {
        let inner = self.read();
        if let Ok(r) = Reference::parse_with_default_tag(name) {
            if let Some(id) = inner.refs.get(&r.to_string()) {
                if let Some(img) = inner.images.get(id) {
                    return Ok(img.clone());
                }
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if berth_core::id::is_hex_prefix(hex) {
            let mut found = inner
                .images
                .values()
                .filter(|i| i.id.hex().starts_with(hex));
            if let Some(first) = found.next() {
                if found.next().is_some() {
                    return Err(Error::not_found(format!(
                        "No such image: {name} (ambiguous id prefix)"
                    )));
                }
                return Ok(first.clone());
            }
        }
        let shown = Reference::parse_with_default_tag(name)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| name.to_string());
        Err(Error::not_found(format!("No such image: {shown}")))
    }

    pub(crate) fn insert(&self, img: Image) {
        let mut inner = self.write();
        inner.images.entry(img.id.clone()).or_insert(img);
    }

    pub(crate) fn set_ref(&self, reference: &str, id: &Digest) -> Option<Digest> {
        let mut inner = self.write();
        let old = inner.refs.insert(reference.to_string(), id.clone());
        if let Some(o) = &old {
            if let Some(img) = inner.images.get_mut(o) {
                img.repo_tags.remove(reference);
                img.repo_digests.remove(reference);
            }
        }
        if let Some(img) = inner.images.get_mut(id) {
            if reference.contains('@') {
                img.repo_digests.insert(reference.to_string());
            } else {
                img.repo_tags.insert(reference.to_string());
            }
        }
        old.filter(|o| o != id)
    }

    pub(crate) fn remove_ref(&self, reference: &str) {
        let mut inner = self.write();
        if let Some(id) = inner.refs.remove(reference) {
            if let Some(img) = inner.images.get_mut(&id) {
                img.repo_tags.remove(reference);
                img.repo_digests.remove(reference);
            }
        }
    }

    pub(crate) fn remove_image(&self, id: &Digest) {
        let mut inner = self.write();
        inner.images.remove(id);
        inner.refs.retain(|_, v| v != id);
    }
}

impl Engine {
    /// Looks an image up by name or id.
    pub fn image(&self, name: &str) -> Result<Image> {
        self.images.resolve(name)
    }

    /// Records a new image whose layers are already in storage. Idempotent.
    pub(crate) fn add_image(&self, config_bytes: &[u8]) -> Result<Image> {
        let id = Digest::of(config_bytes);
        if let Some(img) = self.images.by_id(&id) {
            return Ok(img);
        }
        let config: ImageConfig = serde_json::from_slice(config_bytes)
            .map_err(|e| Error::invalid(format!("invalid image config: {e}")))?;
        let mut size = 0i64;
        for chain in chain_ids(&config) {
            let layer = self.storage.layer(&chain).ok_or_else(|| {
                Error::internal(format!(
                    "layer {chain} of image {id} is missing from storage"
                ))
            })?;
            size += layer.size as i64;
        }
        let now = Utc::now();
        self.db
            .put_image(&id.to_string(), config_bytes, size, &now.to_rfc3339())?;
        let img = Image {
            id: id.clone(),
            config,
            repo_tags: BTreeSet::new(),
            repo_digests: BTreeSet::new(),
            size,
            loaded_at: now,
        };
        self.images.insert(img.clone());
        Ok(img)
    }

    /// Points a tag at an image; returns the image it moved away from, if any.
    pub(crate) fn set_tag(&self, reference: &Reference, id: &Digest) -> Result<Option<Digest>> {
        let full = reference.to_string();
        let kind = if reference.digest().is_some() {
            "digest"
        } else {
            "tag"
        };
        self.db.set_ref(&full, &id.to_string(), kind)?;
        let old = self.images.set_ref(&full, id);
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), reference.familiar());
        self.events
            .publish(EventType::Image, "tag", &id.to_string(), attrs);
        Ok(old)
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        let img = self.image(source)?;
        let target = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        let reference = Reference::parse_with_default_tag(&target)?;
        if reference.digest().is_some() {
            return Err(Error::invalid(
                "refusing to create a tag with a digest reference",
            ));
        }
        self.set_tag(&reference, &img.id)?;
        Ok(())
    }

    /// History rows of an image, newest first (`docker history`).
    pub fn image_history(&self, name: &str) -> Result<Vec<HistoryRow>> {
        let img = self.image(name)?;
        let chains = chain_ids(&img.config);
        let mut layer_idx = 0usize;
        let mut rows = Vec::new();
        let history = if img.config.history.is_empty() {
            // Configs without history: one row per layer.
            img.config
                .rootfs
                .diff_ids
                .iter()
                .map(|_| berth_core::image::History::default())
                .collect()
        } else {
            img.config.history.clone()
        };
        for h in &history {
            let size = if h.empty_layer {
                0
            } else {
                let s = chains
                    .get(layer_idx)
                    .and_then(|c| self.storage.layer(c))
                    .map(|l| l.size as i64)
                    .unwrap_or(0);
                layer_idx += 1;
                s
            };
            rows.push(HistoryRow {
                id: "<missing>".to_string(),
                created: h.created.or(img.config.created),
                created_by: h.created_by.clone(),
                size,
                comment: h.comment.clone(),
                tags: Vec::new(),
            });
        }
        rows.reverse();
        // As Docker: the newest row is the image, each older one its parent while the
        // parent is here (local builds make one image per step); `<missing>` after that.
        let mut cur = Some(img);
        for row in rows.iter_mut() {
            let Some(i) = cur.take() else { break };
            row.id = i.id.to_string();
            row.tags = i
                .repo_tags
                .iter()
                .filter_map(|t| Reference::parse(t).ok())
                .map(|r| r.familiar())
                .collect();
            cur = i
                .config
                .parent
                .parse::<Digest>()
                .ok()
                .and_then(|p| self.images.by_id(&p));
        }
        Ok(rows)
    }
}

/// One row of `docker history`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub id: String,
    pub created: Option<chrono::DateTime<Utc>>,
    pub created_by: String,
    pub size: i64,
    pub comment: String,
    pub tags: Vec<String>,
}
