//! The container service: lifecycle (create, start, stop, kill, restart, pause, remove),
//! attach and logs, exec, and the monitors that follow each running container's shim.
//!
//! Every container is a [`ContainerEntry`] in the in-memory [`ContainerIndex`], written
//! through to the state database on every change. Lifecycle operations on one container
//! are serialised by its `op` lock; waiting for an exit never holds it. Waiters (`wait`,
//! `stop`, attach sessions waiting for a start) follow the [`Lifecycle`] watch channel.

pub mod archive;
pub mod attach;
pub mod commit;
mod create;
pub mod etc;
pub mod exec;
mod init_layer;
pub mod list;
pub mod logs;
mod monitor;
mod mounts;
pub mod ops;
pub mod remove;
mod restore;
mod shim_client;
pub mod start;
mod stop;
pub mod wait;

pub use attach::{AttachOptions, AttachStreams};
pub use create::CreateContainer;
pub use list::{ContainerListing, ListContainers};
pub use logs::{LogLine, LogsOptions};
pub use ops::UpdateContainer;
pub use wait::WaitCondition;

use crate::Engine;
use berth_core::container::{Container, Status};
use berth_core::event::EventType;
use berth_core::{Error, Result};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// What waiters follow: counters that only grow, so a waiter can tell "the next exit"
/// from one that happened before it started waiting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lifecycle {
    pub status: Status,
    /// Number of starts so far.
    pub starts: u64,
    /// Number of exits so far, and the last exit code.
    pub exits: u64,
    pub exit_code: i64,
    pub error: String,
    pub removed: bool,
}

pub struct ContainerEntry {
    /// Copy-on-write: readers (`ps`, inspect) take a cheap `Arc` clone.
    data: RwLock<Arc<Container>>,
    pub(crate) op: tokio::sync::Mutex<()>,
    life: watch::Sender<Lifecycle>,
    /// Attach sessions waiting for the container to start; the start holds output for them.
    pub(crate) pending_attach: AtomicUsize,
    /// The current restart delay.
    backoff: std::sync::Mutex<std::time::Duration>,
}

impl ContainerEntry {
    pub(crate) fn new(c: Container) -> Arc<Self> {
        let life = Lifecycle {
            status: c.state.status,
            exit_code: c.state.exit_code,
            ..Default::default()
        };
        Arc::new(Self {
            data: RwLock::new(Arc::new(c)),
            op: tokio::sync::Mutex::new(()),
            life: watch::channel(life).0,
            pending_attach: AtomicUsize::new(0),
            backoff: std::sync::Mutex::new(std::time::Duration::ZERO),
        })
    }

    /// The container as it is now (shared, immutable).
    pub fn snapshot(&self) -> Arc<Container> {
        self.data.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn id(&self) -> String {
        self.data
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .id
            .clone()
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&Container) -> T) -> T {
        f(&self.data.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn update<T>(&self, f: impl FnOnce(&mut Container) -> T) -> T {
        let mut guard = self.data.write().unwrap_or_else(|p| p.into_inner());
        let out = f(Arc::make_mut(&mut guard));
        let status = guard.state.status;
        drop(guard);
        self.life.send_modify(|l| l.status = status);
        out
    }

    pub(crate) fn lifecycle(&self) -> watch::Receiver<Lifecycle> {
        self.life.subscribe()
    }

    pub(crate) fn note_start(&self) {
        self.life.send_modify(|l| {
            l.starts += 1;
            l.status = Status::Running;
        });
    }

    pub(crate) fn note_exit(&self, code: i64, error: &str) {
        self.life.send_modify(|l| {
            l.exits += 1;
            l.exit_code = code;
            l.error = error.to_string();
        });
    }

    pub(crate) fn note_removed(&self) {
        self.life.send_modify(|l| l.removed = true);
    }
}

/// All containers, by id, with a name index.
#[derive(Default)]
pub struct ContainerIndex {
    inner: RwLock<IndexInner>,
}

#[derive(Default)]
struct IndexInner {
    by_id: HashMap<String, Arc<ContainerEntry>>,
    by_name: HashMap<String, String>,
}

impl ContainerIndex {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, IndexInner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, IndexInner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves `name` for `id`; Docker's 409 message when it is taken.
    pub(crate) fn reserve_name(&self, name: &str, id: &str) -> Result<()> {
        let mut inner = self.write();
        if let Some(owner) = inner.by_name.get(name) {
            if owner != id {
                return Err(Error::conflict(format!(
                    "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
        }
        inner.by_name.insert(name.to_string(), id.to_string());
        Ok(())
    }

    pub(crate) fn release_name(&self, name: &str, id: &str) {
        let mut inner = self.write();
        if inner.by_name.get(name).is_some_and(|o| o == id) {
            inner.by_name.remove(name);
        }
    }

    pub(crate) fn insert(&self, entry: Arc<ContainerEntry>) {
        let (id, name) = entry.read(|c| (c.id.clone(), c.name.clone()));
        let mut inner = self.write();
        inner.by_name.insert(name, id.clone());
        inner.by_id.insert(id, entry);
    }

    pub(crate) fn remove(&self, id: &str) {
        let mut inner = self.write();
        if let Some(e) = inner.by_id.remove(id) {
            let name = e.read(|c| c.name.clone());
            if inner.by_name.get(&name).is_some_and(|o| o == id) {
                inner.by_name.remove(&name);
            }
        }
    }

    pub fn all(&self) -> Vec<Arc<ContainerEntry>> {
        self.read().by_id.values().cloned().collect()
    }

    /// Docker's lookup order: full id, name, then a unique id prefix.
    pub fn get(&self, name_or_id: &str) -> Result<Arc<ContainerEntry>> {
        let inner = self.read();
        let key = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(e) = inner.by_id.get(key) {
            return Ok(e.clone());
        }
        if let Some(id) = inner.by_name.get(key) {
            if let Some(e) = inner.by_id.get(id) {
                return Ok(e.clone());
            }
        }
        if !key.is_empty() && berth_core::id::is_hex_prefix(key) {
            let mut found = inner.by_id.iter().filter(|(id, _)| id.starts_with(key));
            if let Some((_, e)) = found.next() {
                if found.next().is_some() {
                    return Err(Error::invalid(format!(
                        "Multiple IDs found with provided prefix: {key}"
                    )));
                }
                return Ok(e.clone());
            }
        }
        Err(no_such_container(name_or_id))
    }

    /// Image id → number of containers using it.
    pub fn image_usage(&self) -> HashMap<String, i64> {
        let mut m = HashMap::new();
        for e in self.read().by_id.values() {
            *m.entry(e.read(|c| c.image_id.clone())).or_insert(0) += 1;
        }
        m
    }

    /// (container id, running) of the containers created from an image.
    pub fn users_of_image(&self, image_id: &str) -> Vec<(String, bool)> {
        let mut v: Vec<(String, bool)> = self
            .read()
            .by_id
            .values()
            .filter_map(|e| {
                e.read(|c| (c.image_id == image_id).then(|| (c.id.clone(), c.state.is_running())))
            })
            .collect();
        v.sort_by_key(|(_, running)| !*running);
        v
    }

    pub fn parent_chains(&self) -> Vec<String> {
        self.read()
            .by_id
            .values()
            .map(|e| e.read(|c| c.parent_chain.clone()))
            .filter(|c| !c.is_empty())
            .collect()
    }

    pub fn count_by_status(&self) -> (usize, usize, usize) {
        let (mut running, mut paused, mut stopped) = (0, 0, 0);
        for e in self.read().by_id.values() {
            match e.read(|c| c.state.status) {
                Status::Running | Status::Restarting => running += 1,
                Status::Paused => paused += 1,
                _ => stopped += 1,
            }
        }
        (running, paused, stopped)
    }
}

/// How much of the id names a shim socket.
pub const SHIM_SOCKET_ID_LEN: usize = 20;

/// Longest exec root whose shim and console sockets fit a unix socket path.
pub const MAX_EXEC_ROOT_LEN: usize = 107 - "/s/".len() - SHIM_SOCKET_ID_LEN - ".123456789012".len();

pub fn no_such_container(name: &str) -> Error {
    Error::not_found(format!("No such container: {name}"))
}

/// Parses `--since`/`--until` values: RFC 3339 times, unix seconds (with a fraction), or
/// durations before now (`10m`, `1h30m`, `45s`).
pub fn parse_time_filter(v: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(secs) = v.parse::<f64>() {
        let ns = (secs * 1e9) as i64;
        return Ok(DateTime::from_timestamp_nanos(ns));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t.and_utc());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    let d = parse_go_duration(v)
        .ok_or_else(|| Error::invalid(format!("invalid time or duration: {v:?}")))?;
    Ok(Utc::now() - d)
}

/// Go's `time.ParseDuration` for the units people use (`ns us ms s m h`).
pub fn parse_go_duration(s: &str) -> Option<chrono::Duration> {
    let mut total_ns: f64 = 0.0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total_ns += n * mult;
        rest = &rest[unit_end..];
    }
    Some(chrono::Duration::nanoseconds(total_ns as i64))
}

impl Engine {
    pub fn container(&self, name_or_id: &str) -> Result<Arc<ContainerEntry>> {
        self.containers.get(name_or_id)
    }

    /// Writes the container's current record to the state database.
    pub(crate) fn persist(&self, entry: &ContainerEntry) -> Result<()> {
        let (id, name, doc) =
            entry.read(|c| (c.id.clone(), c.name.clone(), serde_json::to_string(c)));
        let doc = doc.map_err(|e| Error::internal(format!("encoding container {id}: {e}")))?;
        self.db.put_container(&id, &name, &doc)
    }

    /// Publishes a container event with Docker's attributes (name, image, labels).
    pub(crate) fn container_event(
        &self,
        entry: &ContainerEntry,
        action: &str,
        extra: &[(&str, String)],
    ) {
        let (id, attrs) = entry.read(|c| {
            let mut a: BTreeMap<String, String> = c.config.labels.clone();
            a.insert("name".into(), c.name.clone());
            a.insert("image".into(), c.config.image.clone());
            (c.id.clone(), a)
        });
        let mut attrs = attrs;
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        self.events
            .publish(EventType::Container, action, &id, attrs);
    }

    pub(crate) fn container_dir(&self, id: &str) -> std::path::PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }

    pub(crate) fn bundle_dir(&self, id: &str) -> std::path::PathBuf {
        self.cfg.exec_root.join("containers").join(id)
    }

    /// The shim's socket: short, since unix socket paths are limited to 107 bytes.
    pub(crate) fn shim_socket(&self, id: &str) -> std::path::PathBuf {
        self.cfg
            .exec_root
            .join("s")
            .join(&id[..id.len().min(SHIM_SOCKET_ID_LEN)])
    }

    pub fn count_containers(&self) -> (usize, usize, usize) {
        self.containers.count_by_status()
    }
}

/// Runs `f` when dropped unless disarmed: the undo of a half-done operation.
pub(crate) struct Undo<F: FnOnce()> {
    f: Option<F>,
}

impl<F: FnOnce()> Undo<F> {
    pub fn new(f: F) -> Self {
        Self { f: Some(f) }
    }
    pub fn disarm(mut self) {
        self.f = None;
    }
}

impl<F: FnOnce()> Drop for Undo<F> {
    fn drop(&mut self) {
        if let Some(f) = self.f.take() {
            f();
        }
    }
}

pub(crate) fn is_running(status: Status) -> bool {
    matches!(
        status,
        Status::Running | Status::Paused | Status::Restarting
    )
}

pub(crate) fn pending_attach_count(entry: &ContainerEntry) -> usize {
    entry.pending_attach.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        assert_eq!(
            parse_go_duration("10m").unwrap(),
            chrono::Duration::minutes(10)
        );
        assert_eq!(
            parse_go_duration("1h30m").unwrap(),
            chrono::Duration::minutes(90)
        );
        assert_eq!(
            parse_go_duration("1.5s").unwrap(),
            chrono::Duration::milliseconds(1500)
        );
        assert!(parse_go_duration("10x").is_none());
    }

    #[test]
    fn time_filters_accept_unix_and_rfc3339() {
        assert_eq!(
            parse_time_filter("1700000000").unwrap().timestamp(),
            1_700_000_000
        );
        assert_eq!(
            parse_time_filter("2023-11-14T22:13:20Z")
                .unwrap()
                .timestamp(),
            1_700_000_000
        );
        assert!(parse_time_filter("soon").is_err());
    }
}
