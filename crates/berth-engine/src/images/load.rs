//! `docker load` and `docker save`: image archives in and out.

use crate::Engine;
use berth_core::event::EventType;
use berth_core::reference::Reference;
use berth_core::{Digest, Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::sync::Arc;

impl Engine {
    /// Loads every image of an archive; returns the lines `docker load` prints.
    pub async fn load_images(
        self: &Arc<Self>,
        archive: impl Read + Send + 'static,
    ) -> Result<Vec<String>> {
        let _gc = self.layer_gc.read().await;
        let storage = self.storage.clone();
        let loaded =
            Self::blocking(move || Ok(berth_storage::archive::read_archive(&storage, archive)?))
                .await?;
        if loaded.is_empty() {
            return Err(Error::invalid("no images found in the archive"));
        }
        let mut lines = Vec::new();
        for li in loaded {
            let img = self.add_image(&li.config)?;
            if li.repo_tags.is_empty() {
                lines.push(format!("Loaded image ID: {}", img.id));
            }
            for tag in &li.repo_tags {
                let reference = Reference::parse_with_default_tag(tag)?;
                if let Some(old) = self.set_tag(&reference, &img.id)? {
                    lines.push(format!(
                        "The image {} already exists, renaming the old one with ID {old} to empty string",
                        reference.familiar()
                    ));
                }
                lines.push(format!("Loaded image: {}", reference.familiar()));
            }
            let mut attrs = BTreeMap::new();
            attrs.insert("name".to_string(), img.id.to_string());
            self.events
                .publish(EventType::Image, "load", &img.id.to_string(), attrs);
        }
        Ok(lines)
    }

    /// Resolves `docker save` arguments into archive entries. A repository without a tag
    /// saves all its tags; an id saves the image without tags.
    pub fn save_plan(&self, names: &[String]) -> Result<Vec<berth_storage::archive::ArchiveImage>> {
        let mut by_id: BTreeMap<Digest, BTreeSet<String>> = BTreeMap::new();
        for name in names {
            let explicit = Reference::parse(name).ok();
            match explicit {
                Some(r)
                    if r.tag().is_none()
                        && r.digest().is_none()
                        && self.images.resolve(name).is_ok()
                        && !is_id_like(name) =>
                {
                    let repo = r.repository();
                    let mut any = false;
                    for img in self.images.all() {
                        for t in &img.repo_tags {
                            if Reference::parse(t)
                                .map(|x| x.repository() == repo)
                                .unwrap_or(false)
                            {
                                by_id
                                    .entry(img.id.clone())
                                    .or_default()
                                    .insert(Reference::parse(t)?.familiar());
                                any = true;
                            }
                        }
                    }
                    if !any {
                        let img = self.image(name)?;
                        by_id.entry(img.id).or_default();
                    }
                }
                _ => {
                    let img = self.image(name)?;
                    let entry = by_id.entry(img.id.clone()).or_default();
                    if let Ok(r) = Reference::parse_with_default_tag(name) {
                        if r.digest().is_none() && img.repo_tags.contains(&r.to_string()) {
                            entry.insert(r.familiar());
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (id, tags) in by_id {
            let img = self
                .images
                .by_id(&id)
                .ok_or_else(|| Error::not_found(format!("No such image: {id}")))?;
            let config = self.image_config_bytes(&id)?;
            out.push(berth_storage::archive::ArchiveImage {
                config,
                layers: super::chain_ids(&img.config),
                repo_tags: tags.into_iter().collect(),
            });
        }
        Ok(out)
    }

    /// Writes the archive for `plan` to `w` (blocking; call from a blocking thread).
    pub fn write_save(
        &self,
        plan: &[berth_storage::archive::ArchiveImage],
        w: impl Write,
    ) -> Result<()> {
        berth_storage::archive::write_archive(&self.storage, plan, w)?;
        Ok(())
    }

    /// The original config bytes of an image (its id is their digest).
    pub(crate) fn image_config_bytes(&self, id: &Digest) -> Result<Vec<u8>> {
        self.db
            .image_config(&id.to_string())?
            .ok_or_else(|| Error::not_found(format!("No such image: {id}")))
    }
}

fn is_id_like(name: &str) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    name.starts_with("sha256:") || (hex.len() == 64 && berth_core::id::is_hex_prefix(hex))
}
