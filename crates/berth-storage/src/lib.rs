//! Content store, layer store, overlay snapshots, layer diff and apply.
//!
//! [`Storage`] owns everything under one root directory (the daemon's `<data-root>`):
//!
//! ```text
//! <root>/driver                       "overlay2" or "vfs", fixed by the first open
//! <root>/blobs/sha256/<hex>           content store (content.rs)
//! <root>/blobs/tmp/                   blobs being written
//! <root>/layers/<chain hex>/          one read-only layer (layers.rs), present iff complete:
//!     layer.json                      chain_id, diff_id, parent, size, link, recipe
//!     diff/                           overlay: the diff (whiteouts as 0:0 devices);
//!                                     vfs: the full tree
//!     recipe.zst                      rebuilds the original tar bytes (recipe.rs)
//!     stash/, stash.json              files the tar itself overwrote, for the recipe
//!     blob.json                       optional source blob (digest, media type)
//! <root>/overlay2/l/<8 chars>         short links to layers' diff dirs, for mount options
//! <root>/overlay2/empty/              the lower of containers without a parent
//! <root>/containers/<key>/            a container's writable layer (snapshot.rs):
//!     snapshot.json                   key, parent chain id
//!     upper/ work/ merged/            overlay; vfs has fs/
//! <root>/tmp/                         layers and archives in progress; emptied on open
//! ```
//!
//! Layers are keyed by chain id ([`chain_id`]); [`Storage::apply_layer`] unpacks a tar
//! (gzip, zstd, bzip2, xz or plain) into a temp directory and renames it into place, so
//! a crash never leaves a half layer and concurrent applies of the same layer leave one;
//! [`Storage::apply_layers`] unpacks a whole chain in parallel. [`Storage::layer_tar`]
//! gives back the original tar bytes, so digests survive save and push.
//! The driver (overlay2 or vfs, see [`DriverChoice`]) is hidden behind one trait;
//! callers never branch on it. [`archive`] reads and writes `docker save` archives and
//! [`import`] turns a rootfs tarball into a layer.
//!
//! Every method takes `&self` and is safe to call from several threads at once.

mod apply;
pub mod archive;
pub mod compress;
pub mod content;
pub mod copy;
mod diff;
mod driver;
mod drivers;
pub mod error;
pub mod fdpass;
mod fsutil;
pub mod import;
mod layers;
mod recipe;
mod snapshot;

#[cfg(test)]
mod testutil;

pub use content::{BlobWriter, ContentStore};
pub use diff::{Change, ChangeKind, TarSummary};
pub use driver::DriverChoice;
pub use error::{Result, StorageError};
pub use layers::{chain_id, Layer};

use driver::Driver;
use drivers::{overlay::Overlay, vfs::Vfs};
use error::IoContext;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Images' layers and containers' writable layers under one root.
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    content: ContentStore,
    driver: Driver,
    /// Serialises changes to the layer graph (a layer appearing or disappearing, a
    /// snapshot naming a parent), so a layer is never removed under a new child.
    graph: Mutex<()>,
    /// One lock per snapshot key, so mount/unmount/remove of a container are serial.
    key_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Storage {
    /// Opens (creating if needed) the storage under `root` with the chosen driver.
    ///
    /// The driver is recorded in `<root>/driver` on first use; later opens with
    /// [`DriverChoice::Auto`] keep it, and an explicit choice that contradicts it is an
    /// error (the layers of one driver are meaningless to the other).
    pub fn open(root: impl Into<PathBuf>, choice: DriverChoice) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).ctx("creating", &root)?;
        let root = fs::canonicalize(&root).ctx("resolving", &root)?;
        let tmp = root.join("tmp");
        Self::clean_tmp(&tmp)?;
        for d in [root.join("layers"), root.join("containers"), tmp] {
            fs::create_dir_all(&d).ctx("creating", &d)?;
        }
        let content = ContentStore::open_at(&root)?;

        let marker = root.join("driver");
        let recorded = match fs::read_to_string(&marker) {
            Ok(s) => Some(s.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(StorageError::io("reading", &marker, e)),
        };
        let wanted = match (choice, recorded.as_deref()) {
            (DriverChoice::Auto, Some("overlay2")) | (DriverChoice::Overlay, _) => {
                DriverChoice::Overlay
            }
            (DriverChoice::Auto, Some("vfs")) | (DriverChoice::Vfs, _) => DriverChoice::Vfs,
            (DriverChoice::Auto, _) => match Overlay::probe(&root) {
                Ok(()) => DriverChoice::Overlay,
                Err(_) => DriverChoice::Vfs,
            },
        };
        let driver = match wanted {
            DriverChoice::Overlay => {
                if recorded.is_none() {
                    Overlay::probe(&root)?;
                }
                Driver::Overlay(Overlay::new(&root)?)
            }
            _ => Driver::Vfs(Vfs),
        };
        if let Some(rec) = &recorded {
            if rec != driver.name() {
                return Err(StorageError::DriverMismatch {
                    recorded: rec.clone(),
                    requested: driver.name(),
                });
            }
        } else {
            fs::write(&marker, driver.name()).ctx("writing", &marker)?;
        }
        Ok(Self {
            root,
            content,
            driver,
            graph: Mutex::new(()),
            key_locks: Mutex::new(HashMap::new()),
        })
    }

    /// Removes what a crash left in `tmp/`, unmounting first anything still mounted there.
    fn clean_tmp(tmp: &Path) -> Result<()> {
        if !tmp.exists() {
            return Ok(());
        }
        for name in fsutil::sorted_names(tmp).ctx("listing", tmp)? {
            let p = tmp.join(&name);
            drivers::overlay::unmount_all(&p.join("merged"))?;
            fsutil::remove_any(&p).ctx("removing stale", &p)?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `"overlay2"` or `"vfs"`.
    pub fn driver_name(&self) -> &'static str {
        self.driver.name()
    }

    /// The blob store under the same root.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// A fresh temp directory under `<root>/tmp`, removed on drop.
    pub(crate) fn temp_dir(&self, prefix: &str) -> Result<tempfile::TempDir> {
        let tmp = self.root.join("tmp");
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&tmp)
            .ctx("creating temp dir in", &tmp)
    }

    fn lock_graph(&self) -> std::sync::MutexGuard<'_, ()> {
        self.graph.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Storage>();
    }
}
