//! The layer store: read-only image layers keyed by chain id.
//!
//! A [`Layer`] is identified by its chain id (the OCI rule: the chain of the first layer
//! is its diff_id; then `sha256("<parent chain> <diff_id>")`, see [`chain_id`]).
//! [`Storage::apply_layer`] unpacks into `<root>/tmp/layer-*/`, writes `layer.json`
//! there, and renames the whole directory to `<root>/layers/<chain hex>/`: a layer exists
//! iff that directory exists, and a layer that already exists (a dedupe, or a concurrent
//! apply of the same tar) is kept while the new copy is dropped.
//!
//! [`Storage::layer_tar`] writes a layer back as a tar: the original bytes when the
//! recipe recorded at apply time can rebuild them (so digests match the image config),
//! else a deterministic tar generated from the files.

use crate::apply::apply_tar;
use crate::diff::{write_diff_tar, TarSummary};
use crate::driver::LowerLayer;
use crate::error::{IoContext, Result, StorageError};
use crate::recipe;
use crate::{fsutil, Storage};
use berth_core::Digest;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// One read-only layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub chain_id: Digest,
    /// sha256 of the uncompressed layer tar.
    pub diff_id: Digest,
    /// Chain id of the layer below, if any.
    pub parent: Option<Digest>,
    /// Bytes of regular files unpacked from this layer's tar.
    pub size: u64,
}

/// What `layer.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LayerMeta {
    #[serde(flatten)]
    pub layer: Layer,
    /// overlay2's short link name.
    #[serde(default)]
    pub link: Option<String>,
    /// Whether `recipe.zst` rebuilds the original tar.
    #[serde(default)]
    pub recipe: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BlobRef {
    digest: Digest,
    media_type: String,
}

const LAYER_JSON: &str = "layer.json";
const BLOB_JSON: &str = "blob.json";
const RECIPE: &str = "recipe.zst";
/// Layers unpacked at once by [`Storage::apply_layers`].
const APPLY_WORKERS: usize = 4;

/// A tar waiting for a worker of [`Storage::apply_layers`], with its expected diff_id.
type Job<R> = std::sync::Mutex<Option<(R, Option<Digest>)>>;

/// A layer unpacked into a temp directory, not yet visible.
struct Staged {
    tmp: tempfile::TempDir,
    applied: crate::apply::Applied,
}

/// The chain id of a layer with `diff_id` on top of the chain `parent`.
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// Writes `value` as JSON to `path` atomically (temp file in the same dir, then rename).
///
/// Not fsynced: on ext4 (data=ordered) one fsync flushes every dirty page of the layer
/// just unpacked, which halves apply throughput. Atomicity against a daemon crash comes
/// from the renames; like Docker, a power loss may lose recent layers.
pub(crate) fn write_json_atomic(path: &Path, value: &impl Serialize) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).ctx("creating temp file in", dir)?;
    // Serialized first, then written at once (to_writer on the file is a write per token).
    let bytes = serde_json::to_vec(value).map_err(|source| StorageError::Metadata {
        path: path.to_path_buf(),
        source,
    })?;
    tmp.write_all(&bytes).ctx("writing", tmp.path())?;
    tmp.persist(path)
        .map_err(|e| StorageError::io("writing", path, e.error))?;
    Ok(())
}

/// Reads JSON from `path`; `None` when the file does not exist.
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StorageError::Metadata {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io("reading", path, e)),
    }
}

impl Storage {
    pub(crate) fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.root.join("layers").join(chain.hex())
    }

    pub(crate) fn layer_meta(&self, chain: &Digest) -> Result<Option<LayerMeta>> {
        read_json(&self.layer_dir(chain).join(LAYER_JSON))
    }

    fn require_meta(&self, chain: &Digest) -> Result<LayerMeta> {
        self.layer_meta(chain)?
            .ok_or_else(|| StorageError::LayerNotFound {
                chain_id: chain.clone(),
            })
    }

    pub(crate) fn lower(&self, chain: &Digest) -> Result<LowerLayer> {
        let meta = self.require_meta(chain)?;
        Ok(LowerLayer {
            dir: self.layer_dir(chain),
            link: meta.link,
        })
    }

    /// The layers of the chain ending at `top`, top first.
    pub(crate) fn lowers(&self, top: Option<&Digest>) -> Result<Vec<LowerLayer>> {
        let mut out = Vec::new();
        let mut next = top.cloned();
        while let Some(chain) = next {
            let meta = self.require_meta(&chain)?;
            out.push(LowerLayer {
                dir: self.layer_dir(&chain),
                link: meta.link,
            });
            next = meta.layer.parent;
            if out.len() > 4096 {
                return Err(StorageError::invalid_layer(format!(
                    "layer chain at {chain} is too deep or cyclic"
                )));
            }
        }
        Ok(out)
    }

    /// Unpacks a layer tar (gzip, zstd or plain) on top of the chain `parent`.
    pub fn apply_layer(&self, parent: Option<&Digest>, tar: impl Read) -> Result<Layer> {
        self.apply(parent, tar, None)
    }

    /// Like [`apply_layer`](Self::apply_layer), but fails (leaving nothing) unless the
    /// uncompressed tar hashes to `diff_id`. When the resulting chain already exists the
    /// tar is not read at all.
    pub fn apply_layer_verified(
        &self,
        parent: Option<&Digest>,
        tar: impl Read,
        diff_id: &Digest,
    ) -> Result<Layer> {
        self.apply(parent, tar, Some(diff_id))
    }

    fn apply(
        &self,
        parent: Option<&Digest>,
        tar: impl Read,
        expected: Option<&Digest>,
    ) -> Result<Layer> {
        if let Some(expected) = expected {
            if let Some(meta) = self.layer_meta(&chain_id(parent, expected))? {
                return Ok(meta.layer);
            }
        }
        let parent_lower = parent.map(|p| self.lower(p)).transpose()?;
        let staged = self.stage(parent_lower.as_ref(), tar, expected)?;
        self.commit(staged, parent)
    }

    /// Unpacks a tar into a temp layer directory; nothing is visible yet.
    fn stage(
        &self,
        parent: Option<&LowerLayer>,
        tar: impl Read,
        expected: Option<&Digest>,
    ) -> Result<Staged> {
        let tmp = self.temp_dir("layer-")?;
        let diff = tmp.path().join("diff");
        self.driver.prepare_layer(parent, &diff)?;
        let recipe_path = tmp.path().join(RECIPE);
        let applied = apply_tar(tar, &diff, self.driver.whiteout_mode(), Some(&recipe_path))?;
        if let Some(expected) = expected {
            if applied.diff_id != *expected {
                return Err(StorageError::DiffIdMismatch {
                    expected: expected.clone(),
                    actual: applied.diff_id,
                });
            }
        }
        Ok(Staged { tmp, applied })
    }

    /// Makes a staged layer visible on top of `parent`, or returns the existing one.
    fn commit(&self, staged: Staged, parent: Option<&Digest>) -> Result<Layer> {
        let Staged { tmp, applied } = staged;
        let chain = chain_id(parent, &applied.diff_id);
        let mut meta = LayerMeta {
            layer: Layer {
                chain_id: chain.clone(),
                diff_id: applied.diff_id,
                parent: parent.cloned(),
                size: applied.size,
            },
            link: None,
            recipe: applied.recipe_ok,
        };
        let final_dir = self.layer_dir(&chain);

        let _graph = self.lock_graph();
        if let Some(existing) = self.layer_meta(&chain)? {
            return Ok(existing.layer); // tmp is dropped, and removed
        }
        if let Some(p) = parent {
            self.require_meta(p)?; // removed while we were unpacking
        }
        meta.link = self.driver.link_layer(&final_dir)?;
        let committed = write_json_atomic(&tmp.path().join(LAYER_JSON), &meta).and_then(|()| {
            fsutil::rename_noreplace(tmp.path(), &final_dir).ctx("moving new layer to", &final_dir)
        });
        if let Err(e) = committed {
            if let Some(link) = &meta.link {
                let _ = self.driver.unlink_layer(link);
            }
            return Err(e);
        }
        let _ = tmp.keep(); // renamed away: nothing left to remove
        Ok(meta.layer)
    }

    /// Applies a whole chain of layer tars on top of `parent` (base first), each with its
    /// expected diff_id when known. With overlay2 the tars are unpacked in parallel (a
    /// diff does not depend on the layers below it) and committed in order, so a pull
    /// can feed downloads in as they arrive; vfs applies them one after the other. On
    /// error, the layers below the failing one stay (complete and content-addressed).
    pub fn apply_layers<R: Read + Send>(
        &self,
        parent: Option<&Digest>,
        tars: Vec<(R, Option<Digest>)>,
    ) -> Result<Vec<Layer>> {
        if self.driver.diff_needs_parent() {
            let mut out: Vec<Layer> = Vec::new();
            for (tar, expected) in tars {
                let below = out
                    .last()
                    .map(|l| l.chain_id.clone())
                    .or_else(|| parent.cloned());
                out.push(self.apply(below.as_ref(), tar, expected.as_ref())?);
            }
            return Ok(out);
        }
        // Chains known in advance are skipped without reading their tar.
        let mut known = Vec::with_capacity(tars.len());
        let mut below = Some(parent.cloned());
        for (_, expected) in &tars {
            let chain = match (&below, expected) {
                (Some(b), Some(e)) => Some(chain_id(b.as_ref(), e)),
                _ => None,
            };
            let existing = match &chain {
                Some(c) => self.layer_meta(c)?.map(|m| m.layer),
                None => None,
            };
            below = chain.map(Some);
            known.push(existing);
        }
        let jobs: Vec<Job<R>> = tars
            .into_iter()
            .map(|t| std::sync::Mutex::new(Some(t)))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<std::sync::Mutex<Option<Result<Staged>>>> = (0..jobs.len())
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        let workers = jobs.len().min(APPLY_WORKERS);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= jobs.len() {
                        break;
                    }
                    if known[i].is_some() {
                        continue;
                    }
                    let job = jobs[i].lock().unwrap_or_else(|p| p.into_inner()).take();
                    if let Some((tar, expected)) = job {
                        let staged = self.stage(None, tar, expected.as_ref());
                        *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(staged);
                    }
                });
            }
        });
        let mut out: Vec<Layer> = Vec::with_capacity(jobs.len());
        for (i, result) in results.into_iter().enumerate() {
            let below = out
                .last()
                .map(|l| l.chain_id.clone())
                .or_else(|| parent.cloned());
            let layer = match (
                known[i].take(),
                result.into_inner().unwrap_or_else(|p| p.into_inner()),
            ) {
                (Some(layer), _) => layer,
                (None, Some(staged)) => self.commit(staged?, below.as_ref())?,
                (None, None) => unreachable!("every unknown layer was staged"),
            };
            out.push(layer);
        }
        Ok(out)
    }

    /// The layer with this chain id, if present (unreadable metadata counts as absent;
    /// see [`try_layer`](Self::try_layer)).
    pub fn layer(&self, chain: &Digest) -> Option<Layer> {
        self.try_layer(chain).ok().flatten()
    }

    /// The layer with this chain id, if present; errors when its metadata is unreadable.
    pub fn try_layer(&self, chain: &Digest) -> Result<Option<Layer>> {
        Ok(self.layer_meta(chain)?.map(|m| m.layer))
    }

    /// All layers, sorted by chain id (unreadable ones skipped; see
    /// [`try_layers`](Self::try_layers)).
    pub fn layers(&self) -> Vec<Layer> {
        self.try_layers().unwrap_or_default()
    }

    /// All layers, sorted by chain id.
    pub fn try_layers(&self) -> Result<Vec<Layer>> {
        let dir = self.root.join("layers");
        let mut out = Vec::new();
        for name in fsutil::sorted_names(&dir).ctx("listing", &dir)? {
            let Some(chain) = name.to_str().and_then(|n| Digest::from_hex(n).ok()) else {
                continue;
            };
            if let Some(meta) = self.layer_meta(&chain)? {
                out.push(meta.layer);
            }
        }
        Ok(out)
    }

    /// Removes a layer. Refused (Conflict) while another layer or a container snapshot
    /// names it as parent.
    pub fn remove_layer(&self, chain: &Digest) -> Result<()> {
        let doomed = {
            let _graph = self.lock_graph();
            let meta = self.require_meta(chain)?;
            for other in self.try_layers()? {
                if other.parent.as_ref() == Some(chain) {
                    return Err(StorageError::LayerInUse {
                        chain_id: chain.clone(),
                        user: format!("layer {}", other.chain_id),
                    });
                }
            }
            for key in self.rw_keys()? {
                if self.rw_parent(&key).ok().flatten().as_ref() == Some(chain) {
                    return Err(StorageError::LayerInUse {
                        chain_id: chain.clone(),
                        user: format!("container {key}"),
                    });
                }
            }
            let doomed = self.temp_dir("rm-layer-")?.keep();
            let target = doomed.join("layer");
            let dir = self.layer_dir(chain);
            fs::rename(&dir, &target).ctx("removing layer", &dir)?;
            if let Some(link) = &meta.link {
                self.driver.unlink_layer(link)?;
            }
            doomed
        };
        fs::remove_dir_all(&doomed).ctx("removing", &doomed)
    }

    /// Writes the layer's diff as a tar with OCI whiteouts: its original bytes when they
    /// can be rebuilt (always, except for tars with GNU sparse entries), else a sorted,
    /// deterministic tar generated from the files.
    pub fn layer_tar(&self, chain: &Digest, mut w: impl Write) -> Result<TarSummary> {
        let meta = self.require_meta(chain)?;
        let dir = self.layer_dir(chain);
        if meta.recipe {
            let size = recipe::replay(&dir, &meta.layer.diff_id, &mut w)?;
            return Ok(TarSummary {
                digest: meta.layer.diff_id,
                size,
            });
        }
        self.generated_layer_tar(chain, &mut w)
    }

    /// The size of the tar [`layer_tar`](Self::layer_tar) writes when it rebuilds the
    /// original bytes (whose digest is then the diff_id); `None` when it would generate.
    pub(crate) fn exact_tar_size(&self, chain: &Digest) -> Result<Option<u64>> {
        let meta = self.require_meta(chain)?;
        if !meta.recipe {
            return Ok(None);
        }
        recipe::recorded_size(&self.layer_dir(chain)).map(Some)
    }

    /// The deterministic tar generated from the layer's files (what layer_tar falls back to).
    pub(crate) fn generated_layer_tar(
        &self,
        chain: &Digest,
        w: &mut dyn Write,
    ) -> Result<TarSummary> {
        let meta = self.require_meta(chain)?;
        let me = LowerLayer {
            dir: self.layer_dir(chain),
            link: meta.link,
        };
        let parent = meta
            .layer
            .parent
            .as_ref()
            .map(|p| self.lower(p))
            .transpose()?;
        let (root, entries) = self.driver.layer_entries(&me, parent.as_ref())?;
        write_diff_tar(&root, entries, w)
    }

    /// Remembers the blob (e.g. the compressed download) this layer was made from.
    pub fn set_layer_blob(&self, chain: &Digest, blob: &Digest, media_type: &str) -> Result<()> {
        self.require_meta(chain)?;
        let r = BlobRef {
            digest: blob.clone(),
            media_type: media_type.to_string(),
        };
        write_json_atomic(&self.layer_dir(chain).join(BLOB_JSON), &r)
    }

    /// The blob recorded by [`set_layer_blob`](Self::set_layer_blob): digest and media type.
    pub fn layer_blob(&self, chain: &Digest) -> Result<Option<(Digest, String)>> {
        self.require_meta(chain)?;
        let r: Option<BlobRef> = read_json(&self.layer_dir(chain).join(BLOB_JSON))?;
        Ok(r.map(|r| (r.digest, r.media_type)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{
        drivers, gzip, require_root, tar_names, temp_dir, zstd, TarBuild, TestStore,
    };
    use crate::DriverChoice;
    use berth_core::error::{ErrorKind, HasKind};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use std::sync::Arc;

    fn base_tar() -> Vec<u8> {
        TarBuild::new()
            .dir("etc")
            .file("etc/hostname", b"box\n")
            .file_owned("etc/shadow", b"root:*:1::::::\n", 0, 42)
            .dir("bin")
            .file_mode("bin/tool", b"#!/bin/sh\necho hi\n", 0o4755)
            .hardlink("bin/tool-link", "bin/tool")
            .symlink("bin/sh", "/bin/busybox")
            .dir("dev")
            .chardev("dev/null", 1, 3)
            .fifo("dev/pipe")
            .xattr_next("user.note", b"hello")
            .file("etc/noted", b"n")
            .dir("var/lib/data")
            .file("var/lib/data/db", &vec![7u8; 200_000])
            .finish()
    }

    fn tmp_is_empty(s: &Storage) -> bool {
        fs::read_dir(s.root().join("tmp")).unwrap().count() == 0
    }

    #[test]
    fn chain_id_follows_the_oci_rule() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(chain_id(None, &a), a);
        assert_eq!(
            chain_id(Some(&a), &b),
            Digest::of(format!("{a} {b}").as_bytes())
        );
    }

    #[test]
    fn gzip_zstd_and_plain_layers_give_the_same_diff_id() {
        if !require_root("gzip_zstd_and_plain_layers_give_the_same_diff_id") {
            return;
        }
        let tar = base_tar();
        for choice in drivers() {
            let ids: Vec<Digest> = [tar.clone(), gzip(&tar), zstd(&tar)]
                .iter()
                .map(|input| {
                    let s = TestStore::new(choice);
                    let l = s.apply_layer(None, &input[..]).unwrap();
                    assert_eq!(l.chain_id, l.diff_id);
                    l.diff_id
                })
                .collect();
            assert_eq!(ids[0], Digest::of(&tar));
            assert!(ids.iter().all(|d| *d == ids[0]), "{choice:?}: {ids:?}");
        }
    }

    #[test]
    fn applied_layer_keeps_owners_modes_mtimes_links_devices_and_xattrs() {
        if !require_root("applied_layer_keeps_owners_modes_mtimes_links_devices_and_xattrs") {
            return;
        }
        for choice in drivers() {
            let s = TestStore::new(choice);
            let l = s.apply_layer(None, &base_tar()[..]).unwrap();
            assert_eq!(l.size, 4 + 15 + 18 + 1 + 200_000);
            let d = s.layer_dir(&l.chain_id).join("diff");
            let shadow = fs::symlink_metadata(d.join("etc/shadow")).unwrap();
            assert_eq!(
                (shadow.uid(), shadow.gid(), shadow.mode() & 0o7777),
                (0, 42, 0o640)
            );
            let tool = fs::symlink_metadata(d.join("bin/tool")).unwrap();
            assert_eq!(tool.mode() & 0o7777, 0o4755, "setuid survives chown");
            assert_eq!(tool.mtime(), 1_700_000_000);
            assert_eq!(
                fs::metadata(d.join("etc")).unwrap().mtime(),
                1_700_000_000,
                "dir mtimes are set last"
            );
            assert_eq!(
                tool.ino(),
                fs::symlink_metadata(d.join("bin/tool-link")).unwrap().ino()
            );
            assert_eq!(
                fs::read_link(d.join("bin/sh")).unwrap(),
                Path::new("/bin/busybox")
            );
            let null = fs::symlink_metadata(d.join("dev/null")).unwrap();
            assert!(null.file_type().is_char_device());
            assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
            assert!(fs::symlink_metadata(d.join("dev/pipe"))
                .unwrap()
                .file_type()
                .is_fifo());
            assert_eq!(
                fsutil::get_xattr(&d.join("etc/noted"), "user.note")
                    .unwrap()
                    .as_deref(),
                Some(&b"hello"[..])
            );
            assert!(tmp_is_empty(&s));
            assert_eq!(s.layers(), vec![l.clone()]);
            assert_eq!(s.layer(&l.chain_id), Some(l));
        }
    }

    #[test]
    fn entries_escaping_the_layer_are_refused_and_leave_nothing() {
        if !require_root("entries_escaping_the_layer_are_refused_and_leave_nothing") {
            return;
        }
        let hostile = [
            TarBuild::new()
                .file("ok", b"1")
                .file("../evil", b"x")
                .finish(),
            TarBuild::new().file("/abs-evil", b"x").finish(),
            TarBuild::new().dir("a").file("a/../../evil", b"x").finish(),
            TarBuild::new()
                .hardlink("passwd", "../../../../etc/passwd")
                .finish(),
        ];
        for choice in drivers() {
            let s = TestStore::new(choice);
            for tar in &hostile {
                let err = s.apply_layer(None, &tar[..]).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
                assert!(
                    err.to_string().contains("evil") || err.to_string().contains("passwd"),
                    "{err}"
                );
            }
            assert!(s.layers().is_empty());
            assert!(tmp_is_empty(&s));
            assert!(!s.root().join("evil").exists() && !s.root().join("tmp/evil").exists());
        }
    }

    #[test]
    fn entries_below_a_symlink_never_write_outside_the_layer() {
        if !require_root("entries_below_a_symlink_never_write_outside_the_layer") {
            return;
        }
        let victim = temp_dir();
        let v = victim.path().to_str().unwrap().to_string();
        let hostile = [
            TarBuild::new()
                .symlink("escape", &v)
                .file("escape/pwned", b"x")
                .finish(),
            TarBuild::new()
                .symlink("up", "../../../../../../..")
                .file(&format!("up{v}/pwned"), b"x")
                .finish(),
            TarBuild::new().symlink("d", &v).dir("d/sub").finish(),
            TarBuild::new()
                .symlink("w", &v)
                .whiteout("w/pwned")
                .finish(),
        ];
        for choice in drivers() {
            let s = TestStore::new(choice);
            for tar in &hostile {
                let err = s.apply_layer(None, &tar[..]).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
                assert!(err.to_string().contains("not a directory"), "{err}");
            }
            assert_eq!(
                fs::read_dir(victim.path()).unwrap().count(),
                0,
                "nothing written outside"
            );
            assert!(s.layers().is_empty());
            assert!(tmp_is_empty(&s));
        }
    }

    #[test]
    fn layer_tar_reproduces_the_original_bytes_and_generated_tars_round_trip() {
        if !require_root("layer_tar_reproduces_the_original_bytes_and_generated_tars_round_trip") {
            return;
        }
        for choice in drivers() {
            let s = TestStore::new(choice);
            let base = s.apply_layer(None, &base_tar()[..]).unwrap();
            let upper_tar = TarBuild::new()
                .whiteout("etc/hostname")
                .dir("var/lib")
                .opaque("var/lib")
                .file("var/lib/new", b"n")
                .finish();
            let top = s
                .apply_layer(Some(&base.chain_id), gzip(&upper_tar).as_slice())
                .unwrap();
            for (layer, original) in [(&base, base_tar()), (&top, upper_tar.clone())] {
                let mut out = Vec::new();
                let sum = s.layer_tar(&layer.chain_id, &mut out).unwrap();
                assert_eq!(out, original, "{choice:?}: recipe rebuilds the exact tar");
                assert_eq!(sum.digest, layer.diff_id);
            }
            // The generated (sorted) form is stable through apply → generate.
            let mut gen1 = Vec::new();
            s.generated_layer_tar(&top.chain_id, &mut gen1).unwrap();
            let names = tar_names(&gen1);
            assert!(names.contains(&"etc/.wh.hostname".to_string()), "{names:?}");
            // overlay keeps the opaque marker; vfs sees the hidden directory as deleted.
            let hidden = if choice == DriverChoice::Overlay {
                "var/lib/.wh..wh..opq"
            } else {
                "var/lib/.wh.data"
            };
            assert!(names.contains(&hidden.to_string()), "{names:?}");
            let top2 = s.apply_layer(Some(&base.chain_id), &gen1[..]).unwrap();
            let mut gen2 = Vec::new();
            s.generated_layer_tar(&top2.chain_id, &mut gen2).unwrap();
            assert_eq!(gen1, gen2, "{choice:?}: generated tar is a fixed point");
            let mut exact = Vec::new();
            s.layer_tar(&top2.chain_id, &mut exact).unwrap();
            assert_eq!(exact, gen1);
            assert_eq!(top2.diff_id, Digest::of(&gen1));
        }
    }

    #[test]
    fn tars_that_overwrite_their_own_files_are_still_rebuilt_exactly() {
        if !require_root("tars_that_overwrite_their_own_files_are_still_rebuilt_exactly") {
            return;
        }
        let tar = TarBuild::new()
            .file("dup", b"first")
            .file("dup", b"second, longer")
            .dir("d")
            .file("d/inner", b"inner")
            .file("d", b"a file now")
            .file("gone", b"soon deleted")
            .whiteout("gone")
            .file("linked", b"shared")
            .hardlink("linked2", "linked")
            .file("linked", b"replaced")
            .finish();
        for choice in drivers() {
            let s = TestStore::new(choice);
            let l = s.apply_layer(None, &tar[..]).unwrap();
            let mut out = Vec::new();
            s.layer_tar(&l.chain_id, &mut out).unwrap();
            assert!(out == tar, "{choice:?}: exact bytes despite overwrites");
            let d = s.layer_dir(&l.chain_id).join("diff");
            assert_eq!(fs::read(d.join("dup")).unwrap(), b"second, longer");
            assert_eq!(fs::read(d.join("d")).unwrap(), b"a file now");
            assert_eq!(fs::read(d.join("linked")).unwrap(), b"replaced");
            assert_eq!(fs::read(d.join("linked2")).unwrap(), b"shared");
            assert!(!d.join("gone").is_file());
        }
    }

    #[test]
    fn a_directory_deleted_and_made_again_in_one_layer_hides_the_lower_one() {
        if !require_root("a_directory_deleted_and_made_again_in_one_layer_hides_the_lower_one") {
            return;
        }
        for choice in drivers() {
            let s = TestStore::new(choice);
            let base = TarBuild::new()
                .dir("a")
                .file("a/old", b"o")
                .dir("b")
                .file("b/old", b"o")
                .finish();
            let base = s.apply_layer(None, &base[..]).unwrap();
            let top = TarBuild::new()
                .whiteout("a")
                .dir("a")
                .file("a/new", b"n")
                .whiteout("b")
                .file("b/new", b"n")
                .finish();
            let top = s.apply_layer(Some(&base.chain_id), &top[..]).unwrap();
            s.create_rw("c", Some(&top.chain_id)).unwrap();
            let root = s.mount_rw("c").unwrap();
            for dir in ["a", "b"] {
                assert!(
                    !root.join(dir).join("old").exists(),
                    "{choice:?}: {dir}/old is hidden"
                );
                assert!(
                    root.join(dir).join("new").exists(),
                    "{choice:?}: {dir}/new is there"
                );
            }
        }
    }

    #[test]
    fn a_chain_applied_in_parallel_equals_one_applied_layer_by_layer() {
        if !require_root("a_chain_applied_in_parallel_equals_one_applied_layer_by_layer") {
            return;
        }
        let tars: Vec<Vec<u8>> = (0..6)
            .map(|i| {
                let mut b = TarBuild::new();
                b.dir("etc")
                    .file(&format!("etc/layer{i}"), format!("{i}").as_bytes());
                if i > 0 {
                    b.whiteout(&format!("etc/layer{}", i - 1));
                }
                b.finish()
            })
            .collect();
        for choice in drivers() {
            let seq = TestStore::new(choice);
            let mut parent: Option<Digest> = None;
            let mut expected = Vec::new();
            for t in &tars {
                let l = seq.apply_layer(parent.as_ref(), &t[..]).unwrap();
                parent = Some(l.chain_id.clone());
                expected.push(l);
            }
            let par = TestStore::new(choice);
            let inputs: Vec<(Vec<u8>, Option<Digest>)> = tars
                .iter()
                .enumerate()
                .map(|(i, t)| (if i % 2 == 0 { gzip(t) } else { t.clone() }, None))
                .collect();
            let got = par
                .apply_layers(
                    None,
                    inputs.iter().map(|(t, d)| (&t[..], d.clone())).collect(),
                )
                .unwrap();
            assert_eq!(got, expected, "{choice:?}");
            // Known chains are not read again; a wrong diff_id stops the chain there.
            let mut with_ids: Vec<(&[u8], Option<Digest>)> = tars
                .iter()
                .zip(&expected)
                .map(|(t, l)| (&t[..], Some(l.diff_id.clone())))
                .collect();
            with_ids[0].0 = b"not read: the chain exists";
            assert_eq!(par.apply_layers(None, with_ids).unwrap(), expected);
            let fresh = TestStore::new(choice);
            let mut bad: Vec<(&[u8], Option<Digest>)> = tars
                .iter()
                .zip(&expected)
                .map(|(t, l)| (&t[..], Some(l.diff_id.clone())))
                .collect();
            bad[2].1 = Some(Digest::of(b"wrong"));
            let err = fresh.apply_layers(None, bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
            let mut below_the_bad_one = expected[..2].to_vec();
            below_the_bad_one.sort_by(|a, b| a.chain_id.cmp(&b.chain_id));
            assert_eq!(fresh.layers(), below_the_bad_one);
            assert!(tmp_is_empty(&fresh));
        }
    }

    #[test]
    fn concurrent_applies_of_the_same_layer_both_succeed_and_leave_one() {
        if !require_root("concurrent_applies_of_the_same_layer_both_succeed_and_leave_one") {
            return;
        }
        for choice in drivers() {
            let s = Arc::new(TestStore::new(choice));
            let tar = Arc::new(base_tar());
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let (s, tar) = (s.clone(), tar.clone());
                    std::thread::spawn(move || s.apply_layer(None, &tar[..]).unwrap())
                })
                .collect();
            let layers: Vec<Layer> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            assert!(layers.iter().all(|l| *l == layers[0]));
            assert_eq!(s.layers().len(), 1);
            assert!(tmp_is_empty(&s));
            if choice == DriverChoice::Overlay {
                assert_eq!(
                    fs::read_dir(s.root().join("overlay2/l")).unwrap().count(),
                    1
                );
            }
        }
    }

    #[test]
    fn truncated_or_mismatching_layers_leave_nothing() {
        if !require_root("truncated_or_mismatching_layers_leave_nothing") {
            return;
        }
        let s = TestStore::new(DriverChoice::Overlay);
        let tar = base_tar();
        let err = s.apply_layer(None, &tar[..3000]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let gz = gzip(&tar);
        let err = s.apply_layer(None, &gz[..gz.len() / 2]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        let wrong = Digest::of(b"not it");
        let err = s.apply_layer_verified(None, &tar[..], &wrong).unwrap_err();
        assert!(err.to_string().contains(&wrong.to_string()), "{err}");
        assert!(s.layers().is_empty());
        assert!(tmp_is_empty(&s));
        assert_eq!(
            fs::read_dir(s.root().join("overlay2/l")).unwrap().count(),
            0
        );
        // The right diff_id applies, and a second verified apply does not read the tar.
        let l = s
            .apply_layer_verified(None, &tar[..], &Digest::of(&tar))
            .unwrap();
        assert_eq!(
            s.apply_layer_verified(None, &b"garbage"[..], &l.diff_id)
                .unwrap(),
            l
        );
    }

    #[test]
    fn remove_layer_is_refused_while_a_child_uses_it() {
        if !require_root("remove_layer_is_refused_while_a_child_uses_it") {
            return;
        }
        for choice in drivers() {
            let s = TestStore::new(choice);
            let base = s.apply_layer(None, &base_tar()[..]).unwrap();
            let child = s
                .apply_layer(
                    Some(&base.chain_id),
                    &TarBuild::new().file("x", b"x").finish()[..],
                )
                .unwrap();
            let err = s.remove_layer(&base.chain_id).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Conflict);
            s.create_rw("c1", Some(&child.chain_id)).unwrap();
            assert_eq!(
                s.remove_layer(&child.chain_id).unwrap_err().kind(),
                ErrorKind::Conflict
            );
            s.remove_rw("c1").unwrap();
            s.remove_layer(&child.chain_id).unwrap();
            s.remove_layer(&base.chain_id).unwrap();
            assert!(s.layers().is_empty());
            assert_eq!(
                s.remove_layer(&base.chain_id).unwrap_err().kind(),
                ErrorKind::NotFound
            );
            assert!(tmp_is_empty(&s));
        }
    }

    #[test]
    fn a_layer_remembers_its_source_blob() {
        if !require_root("a_layer_remembers_its_source_blob") {
            return;
        }
        let s = TestStore::new(DriverChoice::Overlay);
        let l = s.apply_layer(None, &base_tar()[..]).unwrap();
        assert_eq!(s.layer_blob(&l.chain_id).unwrap(), None);
        let blob = Digest::of(b"compressed");
        s.set_layer_blob(
            &l.chain_id,
            &blob,
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
        .unwrap();
        assert_eq!(
            s.layer_blob(&l.chain_id).unwrap(),
            Some((
                blob,
                "application/vnd.oci.image.layer.v1.tar+gzip".to_string()
            ))
        );
    }
}

#[cfg(test)]
mod bench {
    use crate::testutil::{gzip, require_root, TestStore};
    use crate::DriverChoice;
    use std::time::Instant;

    /// `cargo test --release -p berth-storage -- --ignored --nocapture apply_throughput`
    #[test]
    #[ignore]
    fn apply_throughput_of_a_64_mib_gzip_layer() {
        if !require_root("apply_throughput_of_a_64_mib_gzip_layer") {
            return;
        }
        // 64 MiB in 2048 files of 32 KiB, half random (incompressible), half text.
        let mut b = tar::Builder::new(Vec::new());
        let mut seed = 0x1234_5678_u64;
        for i in 0..2048u32 {
            let data: Vec<u8> = if i % 2 == 0 {
                (0..32 * 1024)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect()
            } else {
                format!("line {i} of some configuration text\n")
                    .repeat(1000)
                    .into_bytes()[..32 * 1024]
                    .to_vec()
            };
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, format!("d{}/f{i}", i % 32), &data[..])
                .unwrap();
        }
        let tar = b.into_inner().unwrap();
        let gz = gzip(&tar);
        let t = Instant::now();
        let (_, mut r) = crate::compress::decompress(&gz[..]).unwrap();
        let mut h = berth_core::digest::Hasher::new();
        std::io::copy(&mut r, &mut h).unwrap();
        let mib = tar.len() as f64 / (1024.0 * 1024.0);
        println!(
            "gunzip+sha256 alone: {:.0} MiB/s",
            mib / t.elapsed().as_secs_f64()
        );
        for choice in [DriverChoice::Overlay, DriverChoice::Vfs] {
            let s = TestStore::new(choice);
            let t = Instant::now();
            let l = s.apply_layer(None, &gz[..]).unwrap();
            let secs = t.elapsed().as_secs_f64();
            let mib = tar.len() as f64 / (1024.0 * 1024.0);
            println!(
                "{choice:?}: applied {mib:.1} MiB ({:.1} MiB gzip) in {secs:.3}s = {:.0} MiB/s uncompressed",
                gz.len() as f64 / (1024.0 * 1024.0),
                mib / secs
            );
            let plain = TestStore::new(choice);
            let t = Instant::now();
            plain.apply_layer(None, &tar[..]).unwrap();
            println!(
                "{choice:?}: plain tar {:.0} MiB/s",
                mib / t.elapsed().as_secs_f64()
            );
            let t = Instant::now();
            let sum = s.layer_tar(&l.chain_id, std::io::sink()).unwrap();
            println!(
                "{choice:?}: layer_tar {:.0} MiB/s",
                mib / t.elapsed().as_secs_f64()
            );
            assert_eq!(sum.digest, l.diff_id);
        }
    }
}
