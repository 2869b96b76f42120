//! The snapshot driver contract and its dispatcher.
//!
//! A driver decides how a layer directory is laid out and how a container's writable
//! layer is made visible: [`overlay`](crate::drivers::overlay) keeps each layer's diff
//! and mounts overlayfs; [`vfs`](crate::drivers::vfs) keeps full copies and needs no
//! mounts. [`Driver`] is the enum the rest of the crate holds; nothing outside this module
//! and the drivers branches on which one it is.

use crate::apply::WhiteoutMode;
use crate::diff::{Change, DiffEntry};
use crate::drivers::{overlay::Overlay, vfs::Vfs};
use crate::error::Result;
use std::path::{Path, PathBuf};

/// Which driver [`Storage::open`](crate::Storage::open) should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriverChoice {
    /// overlay2 when an overlay mount works under the root, else vfs.
    #[default]
    Auto,
    Overlay,
    Vfs,
}

/// One layer below a container or a new layer: its directory in the layer store and,
/// for overlay, its short link name.
#[derive(Debug, Clone)]
pub(crate) struct LowerLayer {
    pub dir: PathBuf,
    pub link: Option<String>,
}

impl LowerLayer {
    /// The layer's content: its diff (overlay) or its full tree (vfs).
    pub fn diff(&self) -> PathBuf {
        self.dir.join("diff")
    }
}

/// What a driver does. `lowers` lists the layers of a snapshot's parent chain, top first.
pub(crate) trait SnapshotDriver: Send + Sync {
    fn name(&self) -> &'static str;
    /// How whiteouts in layer tars are unpacked for this driver.
    fn whiteout_mode(&self) -> WhiteoutMode;
    /// Whether a new layer's directory starts from its parent's content (vfs), so layers
    /// of one chain cannot be unpacked in parallel.
    fn diff_needs_parent(&self) -> bool;
    /// Creates `diff` (absent) as the starting point of a new layer on `parent`.
    fn prepare_layer(&self, parent: Option<&LowerLayer>, diff: &Path) -> Result<()>;
    /// Called before a new layer's directory is renamed to `final_dir`: returns the
    /// short link name the driver made for it, if any.
    fn link_layer(&self, final_dir: &Path) -> Result<Option<String>>;
    /// Forgets a link made by [`link_layer`](Self::link_layer).
    fn unlink_layer(&self, link: &str) -> Result<()>;
    /// The diff of a layer, for writing its tar when no recipe can rebuild it.
    fn layer_entries(
        &self,
        layer: &LowerLayer,
        parent: Option<&LowerLayer>,
    ) -> Result<(PathBuf, Vec<DiffEntry>)>;
    /// Fills the new snapshot directory `dir` for a container on `lowers`.
    fn create_rw(&self, dir: &Path, lowers: &[LowerLayer]) -> Result<()>;
    /// Makes the container's root filesystem visible and returns its path.
    fn mount_rw(&self, dir: &Path, lowers: &[LowerLayer]) -> Result<PathBuf>;
    fn unmount_rw(&self, dir: &Path) -> Result<()>;
    fn rw_mounted(&self, dir: &Path) -> bool;
    fn rw_changes(&self, dir: &Path, lowers: &[LowerLayer]) -> Result<Vec<Change>>;
    /// The root the diff entries are relative to, and the entries.
    fn rw_entries(&self, dir: &Path, lowers: &[LowerLayer]) -> Result<(PathBuf, Vec<DiffEntry>)>;
    fn rw_size(&self, dir: &Path, lowers: &[LowerLayer]) -> Result<u64>;
}

/// The driver in use.
#[derive(Debug)]
pub(crate) enum Driver {
    Overlay(Overlay),
    Vfs(Vfs),
}

impl std::ops::Deref for Driver {
    type Target = dyn SnapshotDriver;
    fn deref(&self) -> &Self::Target {
        match self {
            Driver::Overlay(d) => d,
            Driver::Vfs(d) => d,
        }
    }
}
