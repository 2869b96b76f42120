//! `docker image prune`: removes dangling images (no tag), or with `dangling=false` every
//! image no container uses, with dockerd's filters (`until`, `label`, `label!`).
//!
//! Each image goes through [`Engine::remove_image`] without force, so images in use are
//! skipped (as dockerd skips its conflicts) and layers nothing needs are collected; the
//! space reclaimed is the size of the layers that went.

use super::RemovedImage;
use crate::Engine;
use berth_core::event::EventType;
use berth_core::filters::Filters;
use berth_core::Result;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunedImages {
    pub deleted: Vec<RemovedImage>,
    /// Bytes of the layers removed.
    pub space_reclaimed: u64,
}

impl Engine {
    pub async fn prune_images(&self, filters: &Filters) -> Result<PrunedImages> {
        filters.validate(&["dangling", "label", "label!", "until"])?;
        let dangling_only = filters.bool_value("dangling")?.unwrap_or(true);
        let until = match filters.get("until").next() {
            Some(v) => Some(crate::containers::parse_time_filter(v)?),
            None => None,
        };
        let layer_sizes: HashMap<String, u64> = self
            .storage
            .layers()
            .into_iter()
            .map(|l| (l.chain_id.to_string(), l.size))
            .collect();
        let all = self.images.all();
        let parents: HashSet<String> = all.iter().map(|i| i.config.parent.clone()).collect();
        let mut out = PrunedImages::default();
        for img in all {
            let has_children = parents.contains(&img.id.to_string());
            let refs = super::references(&img);
            // Intermediate images go with their children; dangling mode only looks at heads.
            if has_children && (refs.is_empty() || dangling_only) {
                continue;
            }
            if until.is_some_and(|u| img.config.created.is_none_or(|c| c > u)) {
                continue;
            }
            let labels = img.config.config.labels.clone().unwrap_or_default();
            if !filters.match_labels("label", &labels)
                || !filters.match_labels_negated("label!", &labels)
            {
                continue;
            }
            let names = if refs.is_empty() {
                vec![img.id.to_string()]
            } else if !dangling_only || img.repo_tags.is_empty() {
                refs
            } else {
                continue;
            };
            for name in names {
                // In use, or gone with an earlier reference: skipped, as dockerd does.
                if let Ok(removed) = self.remove_image(&name, false, true).await {
                    out.deleted.extend(removed);
                }
            }
        }
        out.space_reclaimed = out
            .deleted
            .iter()
            .filter_map(|r| match r {
                RemovedImage::Deleted(id) => layer_sizes.get(id),
                RemovedImage::Untagged(_) => None,
            })
            .sum();
        let mut attrs = BTreeMap::new();
        attrs.insert("reclaimed".to_string(), out.space_reclaimed.to_string());
        self.events.publish(EventType::Image, "prune", "", attrs);
        Ok(out)
    }
}
