//! `docker rmi`: untag and delete with Docker's conflict rules, then collect layers that
//! nothing uses any more.

use crate::Engine;
use berth_core::event::EventType;
use berth_core::id::short;
use berth_core::image::Image;
use berth_core::reference::Reference;
use berth_core::{Digest, Error, Result};
use std::collections::{BTreeMap, HashSet};

/// One line of `docker rmi` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemovedImage {
    Untagged(String),
    Deleted(String),
}

impl Engine {
    pub async fn remove_image(
        &self,
        name: &str,
        force: bool,
        prune: bool,
    ) -> Result<Vec<RemovedImage>> {
        let _gc = self.layer_gc.write().await;
        let img = self.image(name)?;
        let users = self.containers.users_of_image(&img.id.to_string());
        let running = users
            .iter()
            .find(|(_, running)| *running)
            .map(|(id, _)| id.clone());
        let any_user = users.first().map(|(id, _)| id.clone());
        let refs = super::references(&img);
        let by_ref = Reference::parse_with_default_tag(name)
            .ok()
            .map(|r| r.to_string())
            .filter(|r| refs.contains(r));
        let mut out = Vec::new();
        if let Some(reference) = by_ref {
            if is_single_reference(&refs) && !force {
                if let Some(c) = &any_user {
                    return Err(Error::conflict(format!(
                        "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                        short(c),
                        short(img.id.hex())
                    )));
                }
            }
            self.untag(&reference, &img, &mut out)?;
            let mut remaining: Vec<Reference> = refs
                .iter()
                .filter(|r| **r != reference)
                .filter_map(|r| Reference::parse(r).ok())
                .collect();
            // The last tag of a repository takes that repository's digests with it.
            if let Ok(removed) = Reference::parse(&reference) {
                let repo = removed.repository();
                let tag_left = remaining
                    .iter()
                    .any(|r| r.digest().is_none() && r.repository() == repo);
                if removed.digest().is_none() && !tag_left {
                    let (digests, others): (Vec<_>, Vec<_>) = remaining
                        .into_iter()
                        .partition(|r| r.digest().is_some() && r.repository() == repo);
                    for d in digests {
                        self.untag(&d.to_string(), &img, &mut out)?;
                    }
                    remaining = others;
                }
            }
            if !remaining.is_empty() || any_user.is_some() {
                return Ok(out);
            }
        } else {
            if refs.len() > 1 && !is_single_reference(&refs) && !force {
                return Err(Error::conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    short(img.id.hex())
                )));
            }
            if let Some(c) = &running {
                return Err(Error::conflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                    short(img.id.hex()),
                    short(c)
                )));
            }
            if let (Some(c), false) = (&any_user, force) {
                return Err(Error::conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                    short(img.id.hex()),
                    short(c)
                )));
            }
            for r in &refs {
                self.untag(r, &img, &mut out)?;
            }
        }
        self.delete_image_record(&img, &mut out)?;
        if prune {
            // Untagged parents (from builds) that nothing else uses go too.
            let mut parent = img.config.parent.clone();
            while let Ok(pid) = parent.parse::<Digest>() {
                let Some(p) = self.images.by_id(&pid) else {
                    break;
                };
                let has_children = self
                    .images
                    .all()
                    .iter()
                    .any(|i| i.config.parent == p.id.to_string());
                if !p.repo_tags.is_empty()
                    || has_children
                    || !self.containers.users_of_image(&p.id.to_string()).is_empty()
                {
                    break;
                }
                self.delete_image_record(&p, &mut out)?;
                parent = p.config.parent.clone();
            }
        }
        for chain in self.collect_layers()? {
            out.push(RemovedImage::Deleted(chain.to_string()));
        }
        Ok(out)
    }

    fn untag(&self, reference: &str, img: &Image, out: &mut Vec<RemovedImage>) -> Result<()> {
        self.db.delete_ref(reference)?;
        self.images.remove_ref(reference);
        let shown = Reference::parse(reference)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| reference.to_string());
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), shown.clone());
        self.events
            .publish(EventType::Image, "untag", &img.id.to_string(), attrs);
        out.push(RemovedImage::Untagged(shown));
        Ok(())
    }

    fn delete_image_record(&self, img: &Image, out: &mut Vec<RemovedImage>) -> Result<()> {
        self.db.delete_image(&img.id.to_string())?;
        self.images.remove_image(&img.id);
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), img.id.to_string());
        self.events
            .publish(EventType::Image, "delete", &img.id.to_string(), attrs);
        out.push(RemovedImage::Deleted(img.id.to_string()));
        Ok(())
    }

    /// Removes layers that no image and no container needs; returns their chain ids.
    /// Callers hold `layer_gc` for writing.
    pub(crate) fn collect_layers(&self) -> Result<Vec<Digest>> {
        let mut used: HashSet<Digest> = HashSet::new();
        for img in self.images.all() {
            used.extend(super::chain_ids(&img.config));
        }
        for chain in self.containers.parent_chains() {
            let mut cur = chain.parse::<Digest>().ok();
            while let Some(c) = cur {
                if !used.insert(c.clone()) {
                    break;
                }
                cur = self.storage.layer(&c).and_then(|l| l.parent);
            }
        }
        let mut removed = Vec::new();
        loop {
            let layers = self.storage.layers();
            let parents: HashSet<Digest> = layers.iter().filter_map(|l| l.parent.clone()).collect();
            let victims: Vec<Digest> = layers
                .iter()
                .filter(|l| !used.contains(&l.chain_id) && !parents.contains(&l.chain_id))
                .map(|l| l.chain_id.clone())
                .collect();
            if victims.is_empty() {
                break;
            }
            for v in victims {
                let blob = self.storage.layer_blob(&v).ok().flatten();
                self.storage.remove_layer(&v)?;
                if let Some((digest, _)) = blob {
                    self.remove_unused_blob(&digest);
                }
                removed.push(v);
            }
        }
        Ok(removed)
    }

    /// Removes a compressed layer blob (kept from a pull or push) once no layer records
    /// it. Best effort: a blob left behind only costs disk space.
    fn remove_unused_blob(&self, digest: &Digest) {
        let used = self.storage.layers().iter().any(
            |l| matches!(self.storage.layer_blob(&l.chain_id), Ok(Some((d, _))) if d == *digest),
        );
        if !used && self.storage.content().exists(digest) {
            if let Err(e) = self.storage.content().remove(digest) {
                tracing::warn!("removing blob {digest}: {e}");
            }
        }
    }
}

/// dockerd's `isSingleReference`: one tag, or only digests, of one repository (possibly
/// with that repository's digests beside the tag).
fn is_single_reference(refs: &[String]) -> bool {
    let parsed: Vec<Reference> = refs
        .iter()
        .filter_map(|r| Reference::parse(r).ok())
        .collect();
    if parsed.len() <= 1 {
        return parsed.len() == 1;
    }
    let mut single: Option<&Reference> = None;
    let mut digest_repos = std::collections::BTreeSet::new();
    for r in &parsed {
        if r.digest().is_some() {
            digest_repos.insert(r.repository());
        } else if single.is_none() {
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&parsed[0]);
    digest_repos.len() == 1 && digest_repos.contains(&single.repository())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_with_its_own_digests_is_a_single_reference() {
        let tag = "127.0.0.1:5000/bb:v1".to_string();
        let dig = format!("127.0.0.1:5000/bb@{}", Digest::of(b"m"));
        let other = format!("127.0.0.1:5000/cc@{}", Digest::of(b"m"));
        assert!(is_single_reference(std::slice::from_ref(&tag)));
        assert!(is_single_reference(&[tag.clone(), dig.clone()]));
        assert!(!is_single_reference(&[tag.clone(), other.clone()]));
        assert!(!is_single_reference(&[
            tag,
            "127.0.0.1:5000/bb:v2".to_string()
        ]));
        assert!(!is_single_reference(&[dig, other]));
    }
}
