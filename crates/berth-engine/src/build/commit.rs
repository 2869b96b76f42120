//! Commit of a working container: its changes become a layer on top of its image's chain
//! (streamed from the diff straight into the layer store, no temp tar) and the config
//! the builder made becomes an image. A step that changed nothing makes no layer: its
//! history entry is marked `empty_layer`, as Docker does.
//!
//! The runtime creates mount points (`/etc/hosts`, `/proc`, ...) that the image lacks; Docker
//! keeps them out of layers with an init layer under the container. Here they are removed
//! from the writable layer before the diff: the empty files and directories the runtime
//! made, and the directories overlayfs copied up only to hold them.

use super::backend::{working_key, EngineBuilder};
use crate::Engine;
use berth_builder::{BuiltImage, WorkingContainer};
use berth_core::image::ImageConfig;
use berth_core::Error;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The directory holding a snapshot's changes: overlay's `upper/`, vfs's full tree `fs/`
/// (the layout berth-storage documents for `<root>/containers/<key>/`).
fn changes_dir(storage: &berth_storage::Storage, key: &str) -> PathBuf {
    let dir = storage.root().join("containers").join(key);
    if storage.driver_name() == "overlay2" {
        dir.join("upper")
    } else {
        dir.join("fs")
    }
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

/// Removes the mount points the runtime created (`created`, paths inside the container)
/// from `changes` (the writable layer's directory), with the directories that exist only
/// to hold them. `lower` tells whether a directory exists below the writable layer.
fn scrub_mountpoints(
    changes: &Path,
    created: &[PathBuf],
    overlay: bool,
    lower_dir_meta: &dyn Fn(&Path) -> Option<std::fs::Metadata>,
) -> io::Result<()> {
    let mut parents: Vec<PathBuf> = Vec::new();
    for m in created {
        let rel = m.strip_prefix("/").unwrap_or(m);
        let host = changes.join(rel);
        let Ok(meta) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        let removable =
            (meta.is_file() && meta.len() == 0) || (meta.is_dir() && is_empty_dir(&host));
        if !removable {
            continue;
        }
        if meta.is_dir() {
            std::fs::remove_dir(&host)?;
        } else {
            std::fs::remove_file(&host)?;
        }
        let mut p = rel.parent();
        while let Some(dir) = p.filter(|d| !d.as_os_str().is_empty()) {
            parents.push(dir.to_path_buf());
            p = dir.parent();
        }
    }
    if !overlay {
        return Ok(());
    }
    // Deepest first: a copied-up directory left empty, and unchanged, goes too.
    parents.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    parents.dedup();
    for dir in parents {
        let host = changes.join(&dir);
        let Ok(meta) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        if !meta.is_dir() || !is_empty_dir(&host) {
            continue;
        }
        let Some(lower) = lower_dir_meta(&dir) else {
            continue;
        };
        if lower.mode() == meta.mode() && lower.uid() == meta.uid() && lower.gid() == meta.gid() {
            std::fs::remove_dir(&host)?;
        }
    }
    Ok(())
}

impl EngineBuilder {
    pub(crate) async fn commit_working(
        &self,
        wc: &WorkingContainer,
        mut config: ImageConfig,
    ) -> berth_builder::Result<BuiltImage> {
        let key = working_key(&wc.id);
        let created = self
            .live()
            .get(&wc.id)
            .map(|s| s.created_mountpoints.clone())
            .unwrap_or_default();
        // No layer may be collected between its creation and the image that uses it.
        let _gc = self.engine.layer_gc.read().await;
        let storage = self.engine.storage.clone();
        let layer = Engine::blocking(move || {
            storage.unmount_rw(&key)?;
            let parent = storage.rw_parent(&key)?;
            if !created.is_empty() {
                let changes = changes_dir(&storage, &key);
                let overlay = storage.driver_name() == "overlay2";
                // What is below the writable layer: a scratch mount of the parent chain
                // would be costly; the chain's layers are searched top down instead.
                let lowers: Vec<PathBuf> = {
                    let mut v = Vec::new();
                    let mut cur = parent.clone();
                    while let Some(c) = cur {
                        v.push(storage.root().join("layers").join(c.hex()).join("diff"));
                        cur = storage.layer(&c).and_then(|l| l.parent);
                    }
                    v
                };
                let lower = |rel: &Path| -> Option<std::fs::Metadata> {
                    lowers
                        .iter()
                        .find_map(|l| std::fs::symlink_metadata(l.join(rel)).ok())
                        .filter(|m| m.is_dir())
                };
                scrub_mountpoints(&changes, &created, overlay, &lower)
                    .map_err(|e| Error::from_display("cleaning mount points", e))?;
            }
            if storage.rw_changes(&key)?.is_empty() {
                return Ok(None);
            }
            let (reader, writer) =
                rustix::pipe::pipe().map_err(|e| Error::from_display("creating a pipe", e))?;
            let mut reader = std::fs::File::from(reader);
            let writer = std::fs::File::from(writer);
            std::thread::scope(|s| {
                let tar = s.spawn(|| {
                    let mut w = io::BufWriter::with_capacity(256 * 1024, writer);
                    let r = storage.rw_diff_tar(&key, &mut w);
                    let flushed = io::Write::flush(&mut w);
                    drop(w);
                    r.map(drop)
                        .map_err(Error::from)
                        .and(flushed.map_err(Error::from))
                });
                let applied = storage.apply_layer(parent.as_ref(), &mut reader);
                // Unblock the writer if the reader stopped early.
                drop(reader);
                let written = tar
                    .join()
                    .map_err(|_| Error::internal("diff writer panicked"))?;
                let layer = applied?;
                written?;
                Ok(Some(layer))
            })
        })
        .await?;
        match layer {
            Some(l) => config.rootfs.diff_ids.push(l.diff_id),
            None => {
                if let Some(h) = config.history.last_mut() {
                    h.empty_layer = true;
                }
            }
        }
        if config.rootfs.typ.is_empty() {
            config.rootfs.typ = "layers".into();
        }
        let bytes = serde_json::to_vec(&config).map_err(|e| Error::internal(e.to_string()))?;
        let img = self.engine.add_image(&bytes)?;
        Ok(BuiltImage {
            id: img.id.to_string(),
            config: img.config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_made_mount_points_leave_the_layer() {
        let lower = tempfile::tempdir().unwrap();
        std::fs::create_dir(lower.path().join("etc")).unwrap();
        let upper = tempfile::tempdir().unwrap();
        // The runtime made /etc/hosts (so overlay copied /etc up) and /proc.
        std::fs::create_dir(upper.path().join("etc")).unwrap();
        std::fs::write(upper.path().join("etc/hosts"), b"").unwrap();
        std::fs::create_dir(upper.path().join("proc")).unwrap();
        // The command wrote a file of its own.
        std::fs::create_dir(upper.path().join("app")).unwrap();
        std::fs::write(upper.path().join("app/out"), b"x").unwrap();
        let created = vec![PathBuf::from("/etc/hosts"), PathBuf::from("/proc")];
        let lower_meta = |rel: &Path| std::fs::symlink_metadata(lower.path().join(rel)).ok();
        scrub_mountpoints(upper.path(), &created, true, &lower_meta).unwrap();
        assert!(!upper.path().join("etc").exists());
        assert!(!upper.path().join("proc").exists());
        assert!(upper.path().join("app/out").exists());
    }

    #[test]
    fn mount_points_the_command_filled_are_kept() {
        let upper = tempfile::tempdir().unwrap();
        std::fs::create_dir(upper.path().join("etc")).unwrap();
        std::fs::write(upper.path().join("etc/hosts"), b"127.0.0.1 me\n").unwrap();
        let created = vec![PathBuf::from("/etc/hosts")];
        scrub_mountpoints(upper.path(), &created, true, &|_| None).unwrap();
        assert!(upper.path().join("etc/hosts").exists());
    }
}
