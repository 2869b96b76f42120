//! `docker rm` and `docker container prune`.

use super::ContainerEntry;
use crate::Engine;
use berth_core::container::Status;
use berth_core::filters::Filters;
use berth_core::{Error, Result};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, Default)]
pub struct RemoveOptions {
    pub force: bool,
    /// Remove anonymous volumes too.
    pub volumes: bool,
    /// Remove a link (legacy links; refused).
    pub link: bool,
    /// Clean the files up in the background (the `--rm` path).
    pub lazy: bool,
}

/// What a container leaves on disk.
struct ContainerFiles {
    storage: Arc<berth_storage::Storage>,
    key: String,
    dirs: Vec<std::path::PathBuf>,
    socket: std::path::PathBuf,
}

impl ContainerFiles {
    fn remove(self) -> Vec<String> {
        let mut failures = Vec::new();
        if let Err(e) = self.storage.remove_rw(&self.key) {
            failures.push(format!("removing writable layer: {e}"));
        }
        for d in &self.dirs {
            // A health probe that was starting as the container stopped may still drop its
            // process file in the directory while it is removed: try again.
            let mut attempt = 0;
            loop {
                match std::fs::remove_dir_all(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempt < 10 => {
                        attempt += 1;
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(e) => {
                        failures.push(format!("removing {}: {e}", d.display()));
                        break;
                    }
                }
            }
        }
        let _ = std::fs::remove_file(&self.socket);
        failures
    }
}

impl Engine {
    /// `docker rm [-f] [-v]`.
    pub async fn remove_container(self: &Arc<Self>, name: &str, opts: RemoveOptions) -> Result<()> {
        if opts.link {
            return Err(Error::invalid(
                "Conflict, cannot remove the default link name of the container",
            ));
        }
        let entry = self.container(name)?;
        let status = entry.read(|c| c.state.status);
        if super::is_running(status) && status != Status::Restarting {
            if !opts.force {
                let name = entry.read(|c| c.name.clone());
                return Err(Error::conflict(if status == Status::Paused {
                    format!("cannot remove container \"/{name}\": container is paused and must be unpaused first")
                } else {
                    format!("cannot remove container \"/{name}\": container is running: stop the container before removing or force remove")
                }));
            }
            self.kill_for_removal(&entry).await?;
        }
        let _op = entry.op.lock().await;
        if entry.read(|c| c.state.status == Status::Removing) {
            return Err(Error::conflict(format!(
                "removal of container {} is already in progress",
                entry.id()
            )));
        }
        if super::is_running(entry.read(|c| c.state.status))
            && entry.read(|c| c.state.status) != Status::Restarting
        {
            return Err(Error::conflict(format!(
                "container {} is running again; stop it first",
                entry.id()
            )));
        }
        let lazy = opts.lazy;
        entry.update(|c| c.state.status = Status::Removing);
        let mounts = entry.read(|c| c.mounts.clone());
        self.destroy(&entry, lazy).await?;
        if opts.volumes {
            self.remove_anonymous_volumes(&mounts);
        }
        Ok(())
    }

    async fn kill_for_removal(self: &Arc<Self>, entry: &Arc<ContainerEntry>) -> Result<()> {
        entry.update(|c| c.has_been_manually_stopped = true);
        match self
            .stop_entry(entry, Some(0), Some("SIGKILL".into()))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == berth_core::ErrorKind::NotModified => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes everything a stopped container owns. Cleanup is exhaustive: every failure is
    /// reported, none stops the rest. With `lazy` (`--rm` after an exit), the container is
    /// gone from the index and the database at once and its files follow in the background;
    /// a crash in between leaves only orphans that the next daemon start removes.
    pub(crate) async fn destroy(
        self: &Arc<Self>,
        entry: &Arc<ContainerEntry>,
        lazy: bool,
    ) -> Result<()> {
        let c = entry.snapshot();
        let files = ContainerFiles {
            storage: self.storage.clone(),
            key: c.layer_key.clone(),
            dirs: vec![self.container_dir(&c.id), self.bundle_dir(&c.id)],
            socket: self.shim_socket(&c.id),
        };
        if lazy {
            self.forget(entry, &c.id)?;
            tokio::task::spawn_blocking(move || {
                let failures = files.remove();
                if !failures.is_empty() {
                    tracing::warn!(failures = ?failures, "cleaning up a removed container");
                }
            });
            return Ok(());
        }
        let failures = Self::blocking(move || Ok(files.remove())).await?;
        if !failures.is_empty() {
            entry.update(|c| {
                c.state.status = Status::Dead;
                c.state.dead = true;
            });
            let _ = self.persist(entry);
            return Err(Error::internal(format!(
                "unable to remove container {}: {}",
                c.id,
                failures.join("; ")
            )));
        }
        self.forget(entry, &c.id)
    }

    /// Drops a container from the database and the index and tells waiters. Its init
    /// layer stays for the next container of the image; layer collection (`rmi`) removes
    /// it when nothing uses it.
    fn forget(&self, entry: &Arc<ContainerEntry>, id: &str) -> Result<()> {
        self.db.delete_container(id)?;
        self.containers.remove(id);
        self.execs.container_removed(id);
        self.container_event(entry, "destroy", &[]);
        entry.note_removed();
        Ok(())
    }

    /// Files of containers that no longer exist (a crash during a lazy removal).
    pub(crate) fn remove_orphans(&self) {
        let known: std::collections::HashSet<String> = self
            .containers
            .all()
            .iter()
            .map(|e| e.read(|c| c.layer_key.clone()))
            .collect();
        let ids: std::collections::HashSet<String> =
            self.containers.all().iter().map(|e| e.id()).collect();
        if let Ok(keys) = self.storage.rw_keys() {
            for k in keys.into_iter().filter(|k| !known.contains(k)) {
                let _ = self.storage.remove_rw(&k);
            }
        }
        for dir in [
            self.cfg.data_root.join("containers"),
            self.cfg.exec_root.join("containers"),
        ] {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !ids.contains(&name) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }

    /// `docker container prune`: removes stopped containers matching the filters; returns
    /// their ids and the space reclaimed.
    pub async fn prune_containers(
        self: &Arc<Self>,
        filters: &Filters,
    ) -> Result<(Vec<String>, u64)> {
        filters.validate(&["until", "label", "label!"])?;
        let until = match filters.get("until").next() {
            Some(v) => Some(super::parse_time_filter(v)?),
            None => None,
        };
        let mut removed = Vec::new();
        let mut space = 0u64;
        for entry in self.containers.all() {
            let (status, created, labels, id, key) = entry.read(|c| {
                (
                    c.state.status,
                    c.created,
                    c.config.labels.clone(),
                    c.id.clone(),
                    c.layer_key.clone(),
                )
            });
            if !matches!(status, Status::Exited | Status::Created | Status::Dead) {
                continue;
            }
            if until.is_some_and(|u| created.is_some_and(|c| c >= u)) {
                continue;
            }
            if !filters.match_labels("label", &labels)
                || !filters.match_labels_negated("label!", &labels)
            {
                continue;
            }
            let size = self.storage.rw_size(&key).unwrap_or(0);
            if self
                .remove_container(&id, RemoveOptions::default())
                .await
                .is_ok()
            {
                removed.push(id);
                space += size;
            }
        }
        Ok((removed, space))
    }
}
