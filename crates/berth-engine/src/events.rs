//! The event bus: every state change publishes an [`Event`]; `/events` subscribers get the
//! live stream and, with `since`/`until`, the recent past kept in a bounded ring.
//! [`matches`] is Docker's event filter (`daemon/events/filter.go`).

use berth_core::event::{Event, EventType};
use berth_core::filters::Filters;
use chrono::Utc;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::broadcast;

const RING: usize = 1024;

pub struct Events {
    tx: broadcast::Sender<Event>,
    past: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            tx,
            past: Mutex::new(VecDeque::with_capacity(RING)),
        }
    }

    pub fn publish(
        &self,
        typ: EventType,
        action: &str,
        actor_id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let ev = Event {
            typ,
            action: action.to_string(),
            actor_id: actor_id.to_string(),
            attributes,
            time: Utc::now(),
        };
        // Sending under the lock keeps `subscribe` gap-free.
        let mut past = self.past.lock().unwrap_or_else(|p| p.into_inner());
        if past.len() == RING {
            past.pop_front();
        }
        past.push_back(ev.clone());
        let _ = self.tx.send(ev);
    }

    /// The kept past events and a receiver for what comes next, with no gap between them.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let past = self.past.lock().unwrap_or_else(|p| p.into_inner());
        let rx = self.tx.subscribe();
        (past.iter().cloned().collect(), rx)
    }
}

/// The filter keys `/events` accepts.
pub const FILTER_KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// Docker's fuzzy match: an exact value or a prefix of `source`; true without the key.
fn fuzzy(f: &Filters, key: &str, source: &str) -> bool {
    !f.contains(key) || f.get(key).any(|v| source.starts_with(v))
}

fn exact(f: &Filters, key: &str, source: &str) -> bool {
    !f.contains(key) || f.get(key).any(|v| v == source)
}

/// `busybox:latest` → `busybox` (a registry port stays: `host:5000/x:1` → `host:5000/x`).
fn strip_tag(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

/// Whether `e` passes the filters, as Docker decides it.
pub fn matches(f: &Filters, e: &Event) -> bool {
    let name = e.attributes.get("name").map(String::as_str).unwrap_or("");
    // `exec_create`, `exec_start` and `health_status` also match their `: detail` forms.
    let event_ok = if f
        .get("event")
        .any(|v| matches!(v, "exec_create" | "exec_start" | "health_status"))
    {
        fuzzy(f, "event", &e.action)
    } else {
        exact(f, "event", &e.action)
    };
    // Docker matches the actor's id or name whatever the event's type.
    let named = |key: &str| !f.contains(key) || fuzzy(f, key, &e.actor_id) || fuzzy(f, key, name);
    let image_name = if e.typ == EventType::Image {
        name
    } else {
        e.attributes.get("image").map(String::as_str).unwrap_or("")
    };
    let image_ok = exact(f, "image", &e.actor_id)
        || exact(f, "image", image_name)
        || exact(f, "image", strip_tag(&e.actor_id))
        || exact(f, "image", strip_tag(image_name));
    event_ok
        && exact(f, "type", e.typ.as_str())
        && exact(f, "scope", "local")
        && named("container")
        && named("volume")
        && named("network")
        && (!f.contains("daemon") || e.typ == EventType::Daemon)
        && image_ok
        && f.match_labels("label", &e.attributes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(typ: EventType, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            typ,
            action: action.to_string(),
            actor_id: id.to_string(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            time: Utc::now(),
        }
    }

    fn filters(kv: &[(&str, &str)]) -> Filters {
        let mut f = Filters::new();
        for (k, v) in kv {
            f.add(*k, *v);
        }
        f
    }

    #[test]
    fn container_filters_match_ids_by_prefix_and_names_and_exclude_other_types() {
        let start = ev(
            EventType::Container,
            "start",
            "abcdef123",
            &[("name", "web"), ("image", "busybox:latest"), ("app", "x")],
        );
        let vol = ev(EventType::Volume, "create", "data", &[("driver", "local")]);
        assert!(matches(&filters(&[("container", "web")]), &start));
        assert!(matches(&filters(&[("container", "abc")]), &start));
        assert!(!matches(&filters(&[("container", "db")]), &start));
        assert!(!matches(&filters(&[("container", "web")]), &vol));
        assert!(matches(&filters(&[("volume", "data")]), &vol));
        assert!(matches(&filters(&[("image", "busybox")]), &start));
        assert!(matches(&filters(&[("image", "busybox:latest")]), &start));
        assert!(matches(&filters(&[("label", "app=x")]), &start));
        assert!(!matches(&filters(&[("label", "app=y")]), &start));
        assert!(matches(&filters(&[("type", "volume")]), &vol));
        assert!(!matches(&filters(&[("type", "network")]), &vol));
    }

    #[test]
    fn event_filters_are_exact_except_exec_and_health_families() {
        let h = ev(EventType::Container, "health_status: healthy", "a", &[]);
        let e = ev(EventType::Container, "exec_start: sh -c true", "a", &[]);
        let die = ev(EventType::Container, "die", "a", &[]);
        assert!(matches(&filters(&[("event", "health_status")]), &h));
        assert!(matches(&filters(&[("event", "exec_start")]), &e));
        assert!(matches(&filters(&[("event", "die")]), &die));
        assert!(!matches(&filters(&[("event", "di")]), &die));
        assert!(matches(
            &filters(&[("event", "die"), ("event", "start")]),
            &die
        ));
    }

    #[test]
    fn images_match_with_or_without_tag() {
        let tag = ev(
            EventType::Image,
            "tag",
            "sha256:1234",
            &[("name", "localhost:5000/app:v1")],
        );
        assert!(matches(&filters(&[("image", "localhost:5000/app")]), &tag));
        assert!(matches(&filters(&[("image", "sha256:1234")]), &tag));
        assert!(!matches(&filters(&[("image", "app")]), &tag));
        assert_eq!(strip_tag("localhost:5000/app"), "localhost:5000/app");
    }
}
