//! `docker images`: listing with Docker's filters.

use crate::Engine;
use berth_core::filters::Filters;
use berth_core::image::Image;
use berth_core::reference::Reference;
use berth_core::Result;

#[derive(Debug, Clone, Default)]
pub struct ListImages {
    /// Include intermediate images (untagged parents of other images).
    pub all: bool,
    pub filters: Filters,
}

/// An image with the number of containers using it.
#[derive(Debug, Clone)]
pub struct ImageListing {
    pub image: Image,
    pub containers: i64,
}

/// Docker's reference filter: a glob (`*` within a path component) on the familiar name,
/// matching `repo` or `repo:tag`.
fn reference_matches(pattern: &str, tag_ref: &str) -> bool {
    let Ok(r) = Reference::parse(tag_ref) else {
        return false;
    };
    let familiar_repo = r.familiar_repository();
    let familiar = r.familiar();
    glob(pattern, &familiar) || glob(pattern, &familiar_repo) || glob(pattern, &r.to_string())
}

fn glob(pattern: &str, text: &str) -> bool {
    fn rec(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => {
                rec(&p[1..], t) || (!t.is_empty() && t[0] != b'/' && rec(p, &t[1..]))
            }
            (Some(b'?'), Some(c)) if *c != b'/' => rec(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => rec(&p[1..], &t[1..]),
            _ => false,
        }
    }
    rec(pattern.as_bytes(), text.as_bytes())
}

impl Engine {
    pub fn list_images(&self, req: &ListImages) -> Result<Vec<ImageListing>> {
        req.filters.validate(&[
            "dangling",
            "label",
            "label!",
            "before",
            "since",
            "reference",
            "until",
        ])?;
        let dangling = req.filters.bool_value("dangling")?;
        let before = match req.filters.get("before").next() {
            Some(n) => Some(self.image(n)?.loaded_at),
            None => None,
        };
        let since = match req.filters.get("since").next() {
            Some(n) => Some(self.image(n)?.loaded_at),
            None => None,
        };
        let until = match req.filters.get("until").next() {
            Some(v) => Some(crate::containers::parse_time_filter(v)?),
            None => None,
        };
        let all = self.images.all();
        let parents: std::collections::HashSet<String> = all
            .iter()
            .map(|i| i.config.parent.clone())
            .filter(|p| !p.is_empty())
            .collect();
        let usage = self.containers.image_usage();
        let mut out = Vec::new();
        for img in all {
            let untagged = img.repo_tags.is_empty();
            if !req.all
                && untagged
                && img.repo_digests.is_empty()
                && parents.contains(&img.id.to_string())
                && dangling != Some(true)
            {
                continue;
            }
            if let Some(d) = dangling {
                if d != untagged {
                    continue;
                }
            }
            let created = img.config.created.unwrap_or(img.loaded_at);
            if before.is_some_and(|b| img.loaded_at >= b)
                || since.is_some_and(|s| img.loaded_at <= s)
            {
                continue;
            }
            if until.is_some_and(|u| created > u) {
                continue;
            }
            let labels = img.config.config.labels.clone().unwrap_or_default();
            if !req.filters.match_labels("label", &labels)
                || !req.filters.match_labels_negated("label!", &labels)
            {
                continue;
            }
            let mut image = img;
            if req.filters.contains("reference") {
                let tags: std::collections::BTreeSet<String> = image
                    .repo_tags
                    .iter()
                    .filter(|t| {
                        req.filters
                            .get("reference")
                            .any(|p| reference_matches(p, t))
                    })
                    .cloned()
                    .collect();
                if tags.is_empty() {
                    continue;
                }
                image.repo_tags = tags;
            }
            let containers = usage.get(&image.id.to_string()).copied().unwrap_or(0);
            out.push(ImageListing { image, containers });
        }
        out.sort_by(|a, b| {
            let ca = a.image.config.created.unwrap_or(a.image.loaded_at);
            let cb = b.image.config.created.unwrap_or(b.image.loaded_at);
            cb.cmp(&ca).then_with(|| a.image.id.cmp(&b.image.id))
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filter_globs_like_docker() {
        assert!(reference_matches(
            "busybox",
            "docker.io/library/busybox:latest"
        ));
        assert!(reference_matches(
            "busy*",
            "docker.io/library/busybox:latest"
        ));
        assert!(reference_matches(
            "busybox:lat*",
            "docker.io/library/busybox:latest"
        ));
        assert!(!reference_matches(
            "alpine",
            "docker.io/library/busybox:latest"
        ));
        assert!(reference_matches(
            "localhost:5000/*",
            "localhost:5000/app:v1"
        ));
        assert!(!reference_matches("*", "docker.io/user/app:latest"));
    }
}
