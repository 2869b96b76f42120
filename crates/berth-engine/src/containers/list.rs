//! `docker ps`: listing with Docker's filters, newest first.

use crate::Engine;
use berth_core::container::{Container, Status};
use berth_core::filters::Filters;
use berth_core::Result;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct ListContainers {
    pub all: bool,
    /// Only the newest N (`-n`, `-l` is 1); 0 or less: no limit.
    pub limit: i64,
    /// Compute the writable layer size (`-s`).
    pub size: bool,
    pub filters: Filters,
}

/// A container as `ps` shows it.
#[derive(Debug, Clone)]
pub struct ContainerListing {
    pub container: Arc<Container>,
    pub size_rw: Option<i64>,
    pub size_root_fs: Option<i64>,
}

const KEYS: &[&str] = &[
    "id",
    "name",
    "label",
    "label!",
    "status",
    "ancestor",
    "exited",
    "before",
    "since",
    "health",
    "volume",
    "network",
    "publish",
    "expose",
    "isolation",
    "is-task",
];

impl Engine {
    pub fn list_containers(&self, req: &ListContainers) -> Result<Vec<ContainerListing>> {
        let f = &req.filters;
        f.validate(KEYS)?;
        for s in f.get("status") {
            if Status::parse(s).is_none() {
                return Err(berth_core::Error::invalid(format!(
                    "invalid filter 'status={s}'"
                )));
            }
        }
        let mut all: Vec<Arc<Container>> =
            self.containers.all().iter().map(|e| e.snapshot()).collect();
        all.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
        let position = |name: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>> {
            let e = self.container(name)?;
            Ok(e.read(|c| c.created))
        };
        let before = match f.get("before").next() {
            Some(n) => position(n)?,
            None => None,
        };
        let since = match f.get("since").next() {
            Some(n) => position(n)?,
            None => None,
        };
        let ancestors: Vec<String> = f
            .get("ancestor")
            .filter_map(|a| {
                self.image(a)
                    .ok()
                    .map(|i| i.id.to_string())
                    .or_else(|| Some(format!("!{a}")))
            })
            .collect();
        let mut exited_codes = Vec::new();
        for v in f.get("exited") {
            exited_codes.push(
                v.parse::<i64>().map_err(|_| {
                    berth_core::Error::invalid(format!("invalid filter 'exited={v}'"))
                })?,
            );
        }
        // Without -a, only running containers, unless a filter asks for other states.
        let show_all = req.all
            || f.contains("status")
            || f.contains("exited")
            || f.contains("before")
            || f.contains("since");
        let mut out = Vec::new();
        for c in all {
            if !show_all && !c.state.is_running() && c.state.status != Status::Restarting {
                continue;
            }
            if !f.matches_any("id", |v| c.id.starts_with(v)) {
                continue;
            }
            if !f.matches_any("name", |v| name_matches(v, &c.name)) {
                continue;
            }
            if !f.match_labels("label", &c.config.labels)
                || !f.match_labels_negated("label!", &c.config.labels)
            {
                continue;
            }
            if !f.matches_any("status", |v| v == c.state.status.as_str()) {
                continue;
            }
            if f.contains("exited")
                && !(c.state.status == Status::Exited && exited_codes.contains(&c.state.exit_code))
            {
                continue;
            }
            if f.contains("ancestor")
                && !ancestors.iter().any(|a| {
                    *a == c.image_id || a.strip_prefix('!') == Some(c.config.image.as_str())
                })
            {
                continue;
            }
            if before.is_some_and(|b| c.created >= Some(b))
                || since.is_some_and(|s| c.created <= Some(s))
            {
                continue;
            }
            if f.contains("health") {
                let h = c
                    .state
                    .health
                    .as_ref()
                    .map(|h| h.status.as_str())
                    .unwrap_or("none");
                if !f.matches_any("health", |v| v == h) {
                    continue;
                }
            }
            if f.contains("volume")
                && !c.mounts.iter().any(|m| {
                    f.get("volume")
                        .any(|v| v == m.name || v == m.destination || v == m.source)
                })
            {
                continue;
            }
            if f.contains("network")
                && !f.matches_any("network", |v| v == c.host_config.network_mode)
            {
                continue;
            }
            if f.contains("expose")
                && !c
                    .config
                    .exposed_ports
                    .iter()
                    .any(|p| f.get("expose").any(|v| port_matches(v, p)))
            {
                continue;
            }
            if f.contains("publish")
                && !c
                    .host_config
                    .port_bindings
                    .keys()
                    .any(|p| f.get("publish").any(|v| port_matches(v, p)))
            {
                continue;
            }
            if f.contains("isolation")
                && !f.matches_any("isolation", |v| {
                    v == "default" || v == c.host_config.isolation
                })
            {
                continue;
            }
            if f.bool_value("is-task")? == Some(true) {
                continue;
            }
            out.push(c);
            if req.limit > 0 && out.len() as i64 >= req.limit {
                break;
            }
        }
        Ok(out
            .into_iter()
            .map(|c| {
                let (size_rw, size_root_fs) = if req.size {
                    let rw = self.storage.rw_size(&c.layer_key).unwrap_or(0) as i64;
                    let img = c
                        .image_id
                        .parse()
                        .ok()
                        .and_then(|d| self.images.by_id(&d))
                        .map(|i| i.size)
                        .unwrap_or(0);
                    (Some(rw), Some(rw + img))
                } else {
                    (None, None)
                };
                ContainerListing {
                    container: c,
                    size_rw,
                    size_root_fs,
                }
            })
            .collect())
    }
}

/// Docker matches names as a regular expression; plain text is a substring match, and
/// `^`/`$` anchor it. Other regex syntax is matched literally.
fn name_matches(pattern: &str, name: &str) -> bool {
    let p = pattern.trim_start_matches('/');
    let (anchored_start, p) = match p.strip_prefix('^') {
        Some(rest) => (true, rest.trim_start_matches('/')),
        None => (false, p),
    };
    let (anchored_end, p) = match p.strip_suffix('$') {
        Some(rest) => (true, rest),
        None => (false, p),
    };
    match (anchored_start, anchored_end) {
        (true, true) => name == p,
        (true, false) => name.starts_with(p),
        (false, true) => name.ends_with(p),
        (false, false) => name.contains(p),
    }
}

/// `80`, `80/tcp`, `8000-8100/tcp` against `80/tcp`.
fn port_matches(filter: &str, port: &str) -> bool {
    let (fp, fproto) = filter.split_once('/').unwrap_or((filter, "tcp"));
    let (p, proto) = port.split_once('/').unwrap_or((port, "tcp"));
    if fproto != proto {
        return false;
    }
    let Ok(n) = p.parse::<u32>() else {
        return false;
    };
    match fp.split_once('-') {
        Some((a, b)) => {
            matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if a <= n && n <= b)
        }
        None => fp.parse::<u32>().is_ok_and(|x| x == n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_filters_match_substrings_and_anchors() {
        assert!(name_matches("web", "my-web-1"));
        assert!(name_matches("^web", "web-1"));
        assert!(!name_matches("^web$", "web-1"));
        assert!(name_matches("/web", "web"));
    }

    #[test]
    fn port_filters_accept_ranges() {
        assert!(port_matches("80", "80/tcp"));
        assert!(port_matches("8000-8100/tcp", "8080/tcp"));
        assert!(!port_matches("53", "53/udp"));
    }
}
