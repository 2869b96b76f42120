//! Containers' writable layers ("snapshots"), keyed by a string (the container id).
//!
//! A snapshot lives in `<root>/containers/<key>/` with `snapshot.json` naming its parent
//! chain; it is created in `<root>/tmp` and renamed into place, so it exists iff complete.
//! The driver lays out the rest (overlay: `upper/ work/ merged/`; vfs: `fs/`).
//! Mount, unmount and removal of one key are serialised by a per-key lock; mounting an
//! already mounted snapshot and unmounting an unmounted one are no-ops.

use crate::diff::{write_diff_tar, Change, TarSummary};
use crate::error::{IoContext, Result, StorageError};
use crate::layers::{read_json, write_json_atomic};
use crate::{fsutil, Storage};
use berth_core::Digest;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotMeta {
    key: String,
    parent: Option<Digest>,
}

const SNAPSHOT_JSON: &str = "snapshot.json";

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

impl Storage {
    fn snapshot_dir(&self, key: &str) -> Result<PathBuf> {
        if !valid_key(key) {
            return Err(StorageError::InvalidKey {
                key: key.to_string(),
            });
        }
        Ok(self.root.join("containers").join(key))
    }

    fn snapshot_meta(&self, key: &str) -> Result<SnapshotMeta> {
        let dir = self.snapshot_dir(key)?;
        read_json(&dir.join(SNAPSHOT_JSON))?.ok_or_else(|| StorageError::SnapshotNotFound {
            key: key.to_string(),
        })
    }

    fn key_lock(&self, key: &str) -> Arc<Mutex<()>> {
        let mut locks = self.key_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(key.to_string()).or_default().clone()
    }

    /// Creates the writable layer of container `key` on top of the chain `parent`
    /// (`None`: an empty root filesystem, as for `FROM scratch`).
    pub fn create_rw(&self, key: &str, parent: Option<&Digest>) -> Result<()> {
        let dir = self.snapshot_dir(key)?;
        if dir.exists() {
            return Err(StorageError::SnapshotExists {
                key: key.to_string(),
            });
        }
        let lowers = self.lowers(parent)?;
        let tmp = self.temp_dir("rw-")?;
        self.driver.create_rw(tmp.path(), &lowers)?;
        write_json_atomic(
            &tmp.path().join(SNAPSHOT_JSON),
            &SnapshotMeta {
                key: key.to_string(),
                parent: parent.cloned(),
            },
        )?;
        let _graph = self.lock_graph();
        if let Some(p) = parent {
            if self.layer_meta(p)?.is_none() {
                return Err(StorageError::LayerNotFound {
                    chain_id: p.clone(),
                });
            }
        }
        match fsutil::rename_noreplace(tmp.path(), &dir) {
            Ok(()) => {
                let _ = tmp.keep();
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StorageError::SnapshotExists {
                    key: key.to_string(),
                })
            }
            Err(e) => Err(StorageError::io("creating snapshot", &dir, e)),
        }
    }

    /// The parent chain id of a snapshot.
    pub fn rw_parent(&self, key: &str) -> Result<Option<Digest>> {
        Ok(self.snapshot_meta(key)?.parent)
    }

    /// Mounts the container's root filesystem and returns its path (already mounted: fine).
    pub fn mount_rw(&self, key: &str) -> Result<PathBuf> {
        let lock = self.key_lock(key);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let meta = self.snapshot_meta(key)?;
        let lowers = self.lowers(meta.parent.as_ref())?;
        self.driver.mount_rw(&self.snapshot_dir(key)?, &lowers)
    }

    /// Unmounts the container's root filesystem (not mounted: fine; busy: lazy detach).
    pub fn unmount_rw(&self, key: &str) -> Result<()> {
        let lock = self.key_lock(key);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        self.snapshot_meta(key)?;
        self.driver.unmount_rw(&self.snapshot_dir(key)?)
    }

    /// Unmounts and deletes the writable layer.
    pub fn remove_rw(&self, key: &str) -> Result<()> {
        let lock = self.key_lock(key);
        let doomed = {
            let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
            let dir = self.snapshot_dir(key)?;
            self.snapshot_meta(key)?;
            self.driver.unmount_rw(&dir)?;
            let doomed = self.temp_dir("rm-rw-")?.keep();
            let target = doomed.join("rw");
            {
                let _graph = self.lock_graph();
                fs::rename(&dir, &target).ctx("removing snapshot", &dir)?;
            }
            doomed
        };
        self.key_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        fs::remove_dir_all(&doomed).ctx("removing", &doomed)
    }

    pub fn rw_exists(&self, key: &str) -> bool {
        self.snapshot_meta(key).is_ok()
    }

    pub fn rw_mounted(&self, key: &str) -> bool {
        match self.snapshot_dir(key) {
            Ok(dir) => self.driver.rw_mounted(&dir),
            Err(_) => false,
        }
    }

    /// Keys of all snapshots, sorted.
    pub fn rw_keys(&self) -> Result<Vec<String>> {
        let dir = self.root.join("containers");
        let mut keys = Vec::new();
        for name in fsutil::sorted_names(&dir).ctx("listing", &dir)? {
            if let Some(k) = name.to_str().filter(|k| valid_key(k)) {
                keys.push(k.to_string());
            }
        }
        Ok(keys)
    }

    /// Bytes the container wrote (its upper directory).
    pub fn rw_size(&self, key: &str) -> Result<u64> {
        let meta = self.snapshot_meta(key)?;
        let lowers = self.lowers(meta.parent.as_ref())?;
        self.driver.rw_size(&self.snapshot_dir(key)?, &lowers)
    }

    /// What changed in the container, as `docker diff` reports it.
    pub fn rw_changes(&self, key: &str) -> Result<Vec<Change>> {
        let meta = self.snapshot_meta(key)?;
        let lowers = self.lowers(meta.parent.as_ref())?;
        self.driver.rw_changes(&self.snapshot_dir(key)?, &lowers)
    }

    /// The container's changes as a layer tar (for `docker commit`), with whiteouts.
    pub fn rw_diff_tar(&self, key: &str, mut w: impl Write) -> Result<TarSummary> {
        let meta = self.snapshot_meta(key)?;
        let lowers = self.lowers(meta.parent.as_ref())?;
        let (root, entries) = self.driver.rw_entries(&self.snapshot_dir(key)?, &lowers)?;
        write_diff_tar(&root, entries, &mut w)
    }

    /// At daemon start: unmounts the snapshots for which `keep(key)` is false. Every
    /// failure is reported; one does not stop the others.
    pub fn cleanup_stale_mounts(&self, keep: &dyn Fn(&str) -> bool) -> Result<()> {
        let mut errors = Vec::new();
        for key in self.rw_keys()? {
            if !keep(&key) && self.rw_mounted(&key) {
                if let Err(e) = self.unmount_rw(&key) {
                    errors.push(e);
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(StorageError::Cleanup {
                what: "unmounting stale container filesystems".into(),
                errors,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::ChangeKind;
    use crate::testutil::{drivers, require_root, TarBuild, TestStore};
    use crate::{DriverChoice, Layer};
    use berth_core::error::{ErrorKind, HasKind};
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    fn two_layers(s: &Storage) -> (Layer, Layer) {
        let base = TarBuild::new()
            .dir("etc")
            .file("etc/passwd", b"root:x:0:0\n")
            .file("etc/motd", b"hello\n")
            .dir("opt")
            .dir("opt/old")
            .file("opt/old/a", b"a")
            .file("opt/keep-outside", b"k")
            .dir("srv")
            .file("srv/data", b"d")
            .finish();
        let base = s.apply_layer(None, &base[..]).unwrap();
        let top = TarBuild::new()
            .dir("etc")
            .whiteout("etc/motd")
            .dir("opt/old")
            .opaque("opt/old")
            .file("opt/old/b", b"b")
            .whiteout("srv")
            .file("top", b"t")
            .finish();
        let top = s.apply_layer(Some(&base.chain_id), &top[..]).unwrap();
        (base, top)
    }

    /// Every path in a tree with a short description of what it is.
    fn view(root: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<String, String>) {
            for name in fsutil::sorted_names(&root.join(rel)).unwrap() {
                let r = rel.join(&name);
                let p = root.join(&r);
                let m = fs::symlink_metadata(&p).unwrap();
                let what = if m.is_dir() {
                    format!("dir {:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid())
                } else if m.is_symlink() {
                    format!("link {}", fs::read_link(&p).unwrap().display())
                } else if m.is_file() {
                    format!(
                        "file {:o} {}:{} {:?}",
                        m.mode() & 0o7777,
                        m.uid(),
                        m.gid(),
                        fs::read(&p).unwrap()
                    )
                } else {
                    format!("special {:o} {}", m.mode(), m.rdev())
                };
                out.insert(r.display().to_string(), what);
                if m.is_dir() {
                    walk(root, &r, out);
                }
            }
        }
        walk(root, Path::new(""), &mut out);
        out
    }

    #[test]
    fn whiteouts_and_opaque_dirs_hide_lower_content_when_mounted() {
        if !require_root("whiteouts_and_opaque_dirs_hide_lower_content_when_mounted") {
            return;
        }
        for choice in drivers() {
            let s = TestStore::new(choice);
            let (_, top) = two_layers(&s);
            s.create_rw("c1", Some(&top.chain_id)).unwrap();
            let root = s.mount_rw("c1").unwrap();
            assert_eq!(s.mount_rw("c1").unwrap(), root, "mount is idempotent");
            assert_eq!(s.rw_mounted("c1"), choice == DriverChoice::Overlay);
            assert_eq!(fs::read(root.join("etc/passwd")).unwrap(), b"root:x:0:0\n");
            assert!(
                !root.join("etc/motd").exists(),
                "{choice:?}: whiteout hides the file"
            );
            assert!(
                !root.join("srv").exists(),
                "{choice:?}: whiteout hides the directory"
            );
            assert!(
                !root.join("opt/old/a").exists(),
                "{choice:?}: opaque dir hides lower content"
            );
            assert_eq!(fs::read(root.join("opt/old/b")).unwrap(), b"b");
            assert!(root.join("opt/keep-outside").exists());
            assert_eq!(fs::read(root.join("top")).unwrap(), b"t");
            s.unmount_rw("c1").unwrap();
            s.unmount_rw("c1").unwrap();
            assert!(!s.rw_mounted("c1"));
            s.remove_rw("c1").unwrap();
            assert!(!s.rw_exists("c1"));
            assert_eq!(s.remove_rw("c1").unwrap_err().kind(), ErrorKind::NotFound);
        }
    }

    #[test]
    fn rw_changes_report_added_changed_and_deleted_like_docker() {
        if !require_root("rw_changes_report_added_changed_and_deleted_like_docker") {
            return;
        }
        for choice in drivers() {
            let s = TestStore::new(choice);
            let (_, top) = two_layers(&s);
            s.create_rw("c1", Some(&top.chain_id)).unwrap();
            let root = s.mount_rw("c1").unwrap();
            assert!(s.rw_changes("c1").unwrap().is_empty());
            fs::write(root.join("etc/passwd"), b"root:x:0:0\nme:x:1000:1000\n").unwrap();
            fs::remove_file(root.join("opt/keep-outside")).unwrap();
            fs::create_dir(root.join("newdir")).unwrap();
            fs::write(root.join("newdir/f"), b"f").unwrap();
            let got: Vec<String> = s
                .rw_changes("c1")
                .unwrap()
                .iter()
                .map(|c| format!("{} {}", c.kind.letter(), c.path))
                .collect();
            let want = [
                "C /etc",
                "C /etc/passwd",
                "A /newdir",
                "A /newdir/f",
                "C /opt",
                "D /opt/keep-outside",
            ];
            assert_eq!(got, want, "{choice:?}");
            assert!(s
                .rw_changes("c1")
                .unwrap()
                .iter()
                .all(|c| c.kind != ChangeKind::Deleted || c.path == "/opt/keep-outside"));
            assert!(s.rw_size("c1").unwrap() >= 27);
        }
    }

    #[test]
    fn rw_diff_tar_applied_on_the_parent_reproduces_the_container_view() {
        if !require_root("rw_diff_tar_applied_on_the_parent_reproduces_the_container_view") {
            return;
        }
        for choice in drivers() {
            let s = TestStore::new(choice);
            let (_, top) = two_layers(&s);
            s.create_rw("c1", Some(&top.chain_id)).unwrap();
            let root = s.mount_rw("c1").unwrap();
            fs::write(root.join("etc/passwd"), b"changed\n").unwrap();
            fs::remove_dir_all(root.join("opt")).unwrap();
            fs::create_dir_all(root.join("opt/old")).unwrap();
            fs::write(root.join("opt/old/c"), b"c").unwrap();
            fs::remove_file(root.join("top")).unwrap();
            std::os::unix::fs::symlink("etc/passwd", root.join("pw")).unwrap();
            fs::hard_link(root.join("opt/old/c"), root.join("c-link")).unwrap();
            std::os::unix::fs::chown(root.join("opt/old/c"), Some(7), Some(8)).unwrap();
            let before = view(&root);

            let mut tar = Vec::new();
            let sum = s.rw_diff_tar("c1", &mut tar).unwrap();
            assert_eq!(sum.digest, berth_core::Digest::of(&tar));
            let mut again = Vec::new();
            s.rw_diff_tar("c1", &mut again).unwrap();
            assert_eq!(tar, again, "the diff tar is deterministic");

            let committed = s.apply_layer(Some(&top.chain_id), &tar[..]).unwrap();
            s.create_rw("c2", Some(&committed.chain_id)).unwrap();
            let root2 = s.mount_rw("c2").unwrap();
            assert_eq!(view(&root2), before, "{choice:?}");
            assert!(s.rw_changes("c2").unwrap().is_empty());
        }
    }

    #[test]
    fn scratch_and_single_layer_containers_work() {
        if !require_root("scratch_and_single_layer_containers_work") {
            return;
        }
        for choice in drivers() {
            let s = TestStore::new(choice);
            s.create_rw("scratch", None).unwrap();
            let root = s.mount_rw("scratch").unwrap();
            assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
            fs::write(root.join("hello"), b"hi").unwrap();
            let got: Vec<String> = s
                .rw_changes("scratch")
                .unwrap()
                .iter()
                .map(|c| format!("{} {}", c.kind.letter(), c.path))
                .collect();
            assert_eq!(got, ["A /hello"]);

            let one = s
                .apply_layer(None, &TarBuild::new().file("only", b"1").finish()[..])
                .unwrap();
            s.create_rw("one", Some(&one.chain_id)).unwrap();
            let root = s.mount_rw("one").unwrap();
            assert_eq!(fs::read(root.join("only")).unwrap(), b"1");
            assert_eq!(s.rw_size("one").unwrap(), 0);
            assert!(s.create_rw("one", None).unwrap_err().kind() == ErrorKind::Conflict);
            assert_eq!(
                s.create_rw("../x", None).unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
            let missing = berth_core::Digest::of(b"missing");
            assert_eq!(
                s.create_rw("two", Some(&missing)).unwrap_err().kind(),
                ErrorKind::NotFound
            );
        }
    }

    fn deep_stack(s: &Storage, n: usize) -> berth_core::Digest {
        let mut parent: Option<berth_core::Digest> = None;
        for i in 0..n {
            let tar = TarBuild::new()
                .dir("layers")
                .file(&format!("layers/{i:03}"), format!("{i}").as_bytes())
                .finish();
            parent = Some(s.apply_layer(parent.as_ref(), &tar[..]).unwrap().chain_id);
        }
        parent.unwrap()
    }

    #[test]
    fn a_container_on_120_layers_mounts() {
        if !require_root("a_container_on_120_layers_mounts") {
            return;
        }
        let s = TestStore::new(DriverChoice::Overlay);
        let top = deep_stack(&s, 120);
        let key = "f".repeat(64); // container ids are 64 hex characters
        s.create_rw(&key, Some(&top)).unwrap();
        let root = s.mount_rw(&key).unwrap();
        assert_eq!(fs::read_dir(root.join("layers")).unwrap().count(), 120);
        assert_eq!(fs::read(root.join("layers/000")).unwrap(), b"0");
        assert_eq!(fs::read(root.join("layers/119")).unwrap(), b"119");
    }

    #[test]
    fn the_classic_mount_call_fits_120_layers_in_one_page() {
        if !require_root("the_classic_mount_call_fits_120_layers_in_one_page") {
            return;
        }
        use crate::drivers::overlay::{mount_overlay, MountApi};
        let s = TestStore::new(DriverChoice::Overlay);
        let top = deep_stack(&s, 120);
        let lowers: Vec<_> = s
            .lowers(Some(&top))
            .unwrap()
            .iter()
            .map(|l| s.root().join("overlay2/l").join(l.link.as_ref().unwrap()))
            .collect();
        let dir = crate::testutil::temp_dir();
        let long = dir.path().join("x".repeat(100)).join("y".repeat(60));
        for sub in ["upper", "work", "merged"] {
            fs::create_dir_all(long.join(sub)).unwrap();
        }
        let merged = long.join("merged");
        let _guard = crate::testutil::MountGuard(merged.clone());
        mount_overlay(
            &lowers,
            &long.join("upper"),
            &long.join("work"),
            &merged,
            MountApi::Legacy,
        )
        .unwrap();
        assert_eq!(fs::read_dir(merged.join("layers")).unwrap().count(), 120);
    }

    #[test]
    fn cleanup_stale_mounts_unmounts_only_what_should_not_be_mounted() {
        if !require_root("cleanup_stale_mounts_unmounts_only_what_should_not_be_mounted") {
            return;
        }
        let s = TestStore::new(DriverChoice::Overlay);
        let l = s
            .apply_layer(None, &TarBuild::new().file("f", b"1").finish()[..])
            .unwrap();
        for k in ["running", "stopped"] {
            s.create_rw(k, Some(&l.chain_id)).unwrap();
            s.mount_rw(k).unwrap();
        }
        s.cleanup_stale_mounts(&|k| k == "running").unwrap();
        assert!(s.rw_mounted("running"));
        assert!(!s.rw_mounted("stopped"));
    }

    #[test]
    fn a_busy_mount_is_detached_lazily() {
        if !require_root("a_busy_mount_is_detached_lazily") {
            return;
        }
        let s = TestStore::new(DriverChoice::Overlay);
        let l = s
            .apply_layer(None, &TarBuild::new().file("f", b"1").finish()[..])
            .unwrap();
        s.create_rw("busy", Some(&l.chain_id)).unwrap();
        let root = s.mount_rw("busy").unwrap();
        let open = fs::File::open(root.join("f")).unwrap(); // keeps the mount busy
        s.remove_rw("busy").unwrap();
        assert!(!s.rw_exists("busy"));
        drop(open);
    }

    #[test]
    fn auto_falls_back_to_vfs_when_the_root_is_on_overlayfs() {
        if !require_root("auto_falls_back_to_vfs_when_the_root_is_on_overlayfs") {
            return;
        }
        let outer = TestStore::new(DriverChoice::Overlay);
        assert_eq!(outer.driver_name(), "overlay2");
        outer.create_rw("host", None).unwrap();
        let merged = outer.mount_rw("host").unwrap();
        let inner = Storage::open(merged.join("data-root"), DriverChoice::Auto).unwrap();
        assert_eq!(inner.driver_name(), "vfs");
        let l = inner
            .apply_layer(None, &TarBuild::new().file("f", b"1").finish()[..])
            .unwrap();
        inner.create_rw("c", Some(&l.chain_id)).unwrap();
        assert_eq!(
            fs::read(inner.mount_rw("c").unwrap().join("f")).unwrap(),
            b"1"
        );
        drop(inner);
        // The choice is remembered; contradicting it is an error.
        assert_eq!(
            Storage::open(merged.join("data-root"), DriverChoice::Auto)
                .unwrap()
                .driver_name(),
            "vfs"
        );
        let err = Storage::open(merged.join("data-root"), DriverChoice::Overlay).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    }
}
