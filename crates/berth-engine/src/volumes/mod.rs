//! The volume service: named and anonymous volumes of the `local` driver.
//!
//! A volume is a directory `<data-root>/volumes/<name>/_data`, recorded in the state
//! database. With driver options (`-o type=tmpfs -o device=tmpfs -o o=size=10m`, or
//! `type=none,o=bind,device=/path`) the local driver mounts that on `_data` while a running
//! container uses the volume, as Docker's does. Volumes are never removed by container
//! operations except anonymous ones with `rm -v` / `run --rm`.

use crate::Engine;
use berth_core::container::{MountType, Status};
use berth_core::event::EventType;
use berth_core::filters::Filters;
use berth_core::volume::{validate_name, Volume, ANONYMOUS_LABEL};
use berth_core::{Error, Result};
use chrono::Utc;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

const OPTION_KEYS: &[&str] = &["type", "device", "o", "size"];

/// A `volume create` request.
#[derive(Debug, Clone, Default)]
pub struct CreateVolume {
    /// Empty: an anonymous volume with a random name.
    pub name: String,
    pub driver: String,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Default)]
pub struct VolumeIndex {
    volumes: RwLock<HashMap<String, Volume>>,
    /// Running containers using each volume whose source the driver mounted.
    mounted: Mutex<HashMap<String, usize>>,
}

impl VolumeIndex {
    pub fn load(db: &crate::db::Db) -> Result<Self> {
        let mut m = HashMap::new();
        for doc in db.volumes()? {
            if let Ok(v) = serde_json::from_str::<Volume>(&doc) {
                m.insert(v.name.clone(), v);
            }
        }
        Ok(Self {
            volumes: RwLock::new(m),
            mounted: Mutex::new(HashMap::new()),
        })
    }

    pub fn get(&self, name: &str) -> Option<Volume> {
        self.volumes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn all(&self) -> Vec<Volume> {
        self.volumes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// Parses the local driver's `o` option into mount flags and data.
fn mount_options(o: &str) -> (rustix::mount::MountFlags, String) {
    use rustix::mount::MountFlags as F;
    let mut flags = F::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "ro" => flags |= F::RDONLY,
            "rw" => {}
            "bind" => flags |= F::BIND,
            "rbind" => flags |= F::BIND | F::REC,
            "nosuid" => flags |= F::NOSUID,
            "nodev" => flags |= F::NODEV,
            "noexec" => flags |= F::NOEXEC,
            "noatime" => flags |= F::NOATIME,
            other => data.push(other.to_string()),
        }
    }
    (flags, data.join(","))
}

impl Engine {
    fn volume_dir(&self, name: &str) -> PathBuf {
        self.cfg.data_root.join("volumes").join(name)
    }

    /// `docker volume create`. Creating a volume that exists returns it (Docker's rule),
    /// unless the driver differs.
    pub fn create_volume(&self, req: CreateVolume) -> Result<Volume> {
        let driver = if req.driver.is_empty() {
            "local".to_string()
        } else {
            req.driver.clone()
        };
        if driver != "local" {
            return Err(Error::not_found(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        for k in req.options.keys() {
            if !OPTION_KEYS.contains(&k.as_str()) {
                return Err(Error::invalid(format!("invalid option key: {k:?}")));
            }
        }
        let mut labels = req.labels.clone();
        let name = if req.name.is_empty() {
            labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
            berth_core::id::new_id()
        } else {
            validate_name(&req.name)?;
            req.name.clone()
        };
        if let Some(v) = self.volumes.get(&name) {
            return Ok(v);
        }
        let dir = self.volume_dir(&name);
        let data = dir.join("_data");
        std::fs::create_dir_all(&data)
            .map_err(|e| Error::from_display(format!("creating volume {name}"), e))?;
        let v = Volume {
            name: name.clone(),
            driver,
            mountpoint: data.display().to_string(),
            created_at: Some(Utc::now()),
            labels,
            options: req.options,
        };
        let doc = serde_json::to_string(&v).map_err(|e| Error::internal(e.to_string()))?;
        if let Err(e) = self.db.put_volume(&name, &doc) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.volumes
            .volumes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), v.clone());
        self.volume_event(&v, "create");
        Ok(v)
    }

    fn volume_event(&self, v: &Volume, action: &str) {
        let mut attrs = BTreeMap::new();
        attrs.insert("driver".to_string(), v.driver.clone());
        self.events
            .publish(EventType::Volume, action, &v.name, attrs);
    }

    pub fn volume(&self, name: &str) -> Result<Volume> {
        self.volumes
            .get(name)
            .ok_or_else(|| Error::not_found(format!("get {name}: no such volume")))
    }

    /// Containers (running or not) whose mounts use the volume.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.containers
            .all()
            .iter()
            .filter(|e| {
                e.read(|c| {
                    c.mounts
                        .iter()
                        .any(|m| m.typ == MountType::Volume && m.name == name)
                })
            })
            .map(|e| e.id())
            .collect()
    }

    /// `docker volume ls` with `dangling`, `name`, `label`, `driver` filters.
    pub fn list_volumes(&self, f: &Filters) -> Result<Vec<Volume>> {
        f.validate(&["dangling", "name", "label", "label!", "driver"])?;
        let dangling = f.bool_value("dangling")?;
        let mut out: Vec<Volume> = self
            .volumes
            .all()
            .into_iter()
            .filter(|v| dangling.is_none_or(|d| d == self.volume_users(&v.name).is_empty()))
            .filter(|v| f.matches_any("name", |n| v.name.contains(n)))
            .filter(|v| f.matches_any("driver", |d| v.driver == d))
            .filter(|v| {
                f.match_labels("label", &v.labels) && f.match_labels_negated("label!", &v.labels)
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `docker volume rm`: refused while any container uses it.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let Some(v) = self.volumes.get(name) else {
            if force {
                return Ok(());
            }
            return Err(Error::not_found(format!("get {name}: no such volume")));
        };
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(Error::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let dir = self.volume_dir(name);
        let data = dir.join("_data");
        if berth_storage_is_mountpoint(&data) {
            let _ = rustix::mount::unmount(&data, rustix::mount::UnmountFlags::DETACH);
        }
        std::fs::remove_dir_all(&dir)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| Error::from_display(format!("remove {name}"), e))?;
        self.db.delete_volume(name)?;
        self.volumes
            .volumes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.volume_event(&v, "destroy");
        Ok(())
    }

    /// `docker volume prune`: unused anonymous volumes, or with `all=true` every unused one.
    pub fn prune_volumes(&self, f: &Filters) -> Result<(Vec<String>, u64)> {
        f.validate(&["label", "label!", "all"])?;
        let all = f.bool_value("all")?.unwrap_or(false);
        let mut removed = Vec::new();
        let mut space = 0;
        for v in self.volumes.all() {
            if !all && !v.is_anonymous() {
                continue;
            }
            if !f.match_labels("label", &v.labels) || !f.match_labels_negated("label!", &v.labels) {
                continue;
            }
            if !self.volume_users(&v.name).is_empty() {
                continue;
            }
            let size = dir_size(Path::new(&v.mountpoint));
            if self.remove_volume(&v.name, false).is_ok() {
                removed.push(v.name);
                space += size;
            }
        }
        Ok((removed, space))
    }

    /// Mounts a volume's driver source on `_data` if it has one (tmpfs, a device, a bind),
    /// counting users; a no-op for plain volumes.
    pub(crate) fn mount_volume_source(&self, v: &Volume) -> Result<()> {
        let Some(typ) = v.options.get("type").filter(|t| !t.is_empty()) else {
            return Ok(());
        };
        let mut mounted = self
            .volumes
            .mounted
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let count = mounted.entry(v.name.clone()).or_insert(0);
        let data = Path::new(&v.mountpoint);
        if *count == 0 && !berth_storage_is_mountpoint(data) {
            let device = v
                .options
                .get("device")
                .cloned()
                .unwrap_or_else(|| typ.clone());
            let (flags, mut opts) =
                mount_options(v.options.get("o").map(String::as_str).unwrap_or(""));
            if let Some(size) = v.options.get("size") {
                opts = if opts.is_empty() {
                    format!("size={size}")
                } else {
                    format!("{opts},size={size}")
                };
            }
            let fstype = if typ == "none" {
                None
            } else {
                Some(typ.as_str())
            };
            let data_opt = std::ffi::CString::new(opts.clone())
                .map_err(|_| Error::invalid("volume options contain a NUL byte"))?;
            rustix::mount::mount(device.as_str(), data, fstype.unwrap_or(""), flags, Some(data_opt.as_c_str()))
                .map_err(|e| Error::invalid(format!("error while mounting volume '{}': failed to mount local volume: mount {device}:{}, flags: {:#x}, data: {opts}: {e}", v.mountpoint, v.mountpoint, flags.bits())))?;
        }
        *count += 1;
        Ok(())
    }

    /// Drops one user of a driver-mounted volume, unmounting it with the last.
    pub(crate) fn release_volume_source(&self, v: &Volume) {
        if !v.options.contains_key("type") {
            return;
        }
        let mut mounted = self
            .volumes
            .mounted
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = mounted.get_mut(&v.name) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                mounted.remove(&v.name);
                let _ = rustix::mount::unmount(
                    Path::new(&v.mountpoint),
                    rustix::mount::UnmountFlags::DETACH,
                );
            }
        }
    }

    /// After a daemon restart: driver-mounted volumes of running containers are counted
    /// again; those nobody runs with are unmounted.
    pub(crate) fn restore_volume_mounts(&self) {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for e in self.containers.all() {
            e.read(|c| {
                if matches!(c.state.status, Status::Running | Status::Paused) {
                    for m in c.mounts.iter().filter(|m| m.typ == MountType::Volume) {
                        *counts.entry(m.name.clone()).or_insert(0) += 1;
                    }
                }
            });
        }
        let mut mounted = self
            .volumes
            .mounted
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for v in self
            .volumes
            .all()
            .into_iter()
            .filter(|v| v.options.contains_key("type"))
        {
            match counts.get(&v.name) {
                Some(n) => {
                    mounted.insert(v.name.clone(), *n);
                }
                None => {
                    if berth_storage_is_mountpoint(Path::new(&v.mountpoint)) {
                        let _ = rustix::mount::unmount(
                            Path::new(&v.mountpoint),
                            rustix::mount::UnmountFlags::DETACH,
                        );
                    }
                }
            }
        }
    }
}

fn berth_storage_is_mountpoint(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(p), p.parent().map(std::fs::metadata)) {
        (Ok(m), Some(Ok(parent))) => m.dev() != parent.dev(),
        _ => false,
    }
}

/// Bytes used by the files under `dir` (not following symlinks).
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_driver_options_split_flags_from_data() {
        let (flags, data) = mount_options("size=10m,uid=1000,ro,nosuid");
        assert!(
            flags.contains(rustix::mount::MountFlags::RDONLY)
                && flags.contains(rustix::mount::MountFlags::NOSUID)
        );
        assert_eq!(data, "size=10m,uid=1000");
    }
}
