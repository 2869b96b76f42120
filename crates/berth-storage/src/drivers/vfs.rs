//! The vfs driver: every layer and every container is a full copy of its tree.
//!
//! Slow and disk-hungry, but it works on any filesystem (including when the data root is
//! itself on overlayfs, where overlay mounts fail). A layer directory is a copy of its
//! parent with the layer tar applied directly (whiteouts delete); a container's
//! snapshot is a copy of its parent layer in `fs/`, and "mounting" returns that
//! directory. Changes are found by comparing the container tree with its parent's.

use crate::apply::WhiteoutMode;
use crate::diff::{self, Change, DiffEntry};
use crate::driver::{LowerLayer, SnapshotDriver};
use crate::error::{IoContext, Result};
use crate::fsutil;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct Vfs;

fn fs_dir(dir: &Path) -> PathBuf {
    dir.join("fs")
}

fn copy_parent(parent: Option<&LowerLayer>, dest: &Path) -> Result<()> {
    match parent {
        Some(p) => fsutil::copy_tree(&p.diff(), dest).ctx("copying parent layer into", dest),
        None => fs::create_dir(dest).ctx("creating", dest),
    }
}

impl SnapshotDriver for Vfs {
    fn name(&self) -> &'static str {
        "vfs"
    }

    fn whiteout_mode(&self) -> WhiteoutMode {
        WhiteoutMode::Direct
    }

    fn diff_needs_parent(&self) -> bool {
        true
    }

    fn prepare_layer(&self, parent: Option<&LowerLayer>, diff: &Path) -> Result<()> {
        copy_parent(parent, diff)
    }

    fn link_layer(&self, _final_dir: &Path) -> Result<Option<String>> {
        Ok(None)
    }

    fn unlink_layer(&self, _link: &str) -> Result<()> {
        Ok(())
    }

    fn layer_entries(
        &self,
        layer: &LowerLayer,
        parent: Option<&LowerLayer>,
    ) -> Result<(PathBuf, Vec<DiffEntry>)> {
        let new = layer.diff();
        let old = parent.map(LowerLayer::diff);
        let changes = diff::tree_changes(old.as_deref(), &new)
            .ctx("comparing layer with its parent", &new)?;
        Ok((new, diff::entries_from_changes(&changes)))
    }

    fn create_rw(&self, dir: &Path, lowers: &[LowerLayer]) -> Result<()> {
        copy_parent(lowers.first(), &fs_dir(dir))
    }

    fn mount_rw(&self, dir: &Path, _lowers: &[LowerLayer]) -> Result<PathBuf> {
        Ok(fs_dir(dir))
    }

    fn unmount_rw(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }

    fn rw_mounted(&self, _dir: &Path) -> bool {
        false
    }

    fn rw_changes(&self, dir: &Path, lowers: &[LowerLayer]) -> Result<Vec<Change>> {
        let new = fs_dir(dir);
        let old = lowers.first().map(LowerLayer::diff);
        diff::tree_changes(old.as_deref(), &new).ctx("computing changes of", &new)
    }

    fn rw_entries(&self, dir: &Path, lowers: &[LowerLayer]) -> Result<(PathBuf, Vec<DiffEntry>)> {
        let changes = self.rw_changes(dir, lowers)?;
        Ok((fs_dir(dir), diff::entries_from_changes(&changes)))
    }

    fn rw_size(&self, dir: &Path, lowers: &[LowerLayer]) -> Result<u64> {
        let changes = self.rw_changes(dir, lowers)?;
        Ok(diff::changes_size(&fs_dir(dir), &changes))
    }
}
