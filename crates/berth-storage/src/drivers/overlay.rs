//! The overlay2 driver: layers are diff directories stacked by an overlayfs mount.
//!
//! Each layer gets a short link `<root>/overlay2/l/<8 chars>` → `../../layers/<hex>/diff`
//! so that the mount options of a deep image stay short. Mounting prefers the new mount
//! API with one `lowerdir+` per layer (Linux ≥ 6.8; no length limit); older kernels get
//! a classic `mount(2)` whose option string (one page at most) names the lowers through
//! `/proc/self/fd/<fd of l/>/<link>`, about 30 bytes each, so ~120 layers fit.
//! A container's snapshot directory holds `upper/`, `work/` and `merged/`.

use crate::apply::WhiteoutMode;
use crate::diff::{self, Change, DiffEntry};
use crate::driver::{LowerLayer, SnapshotDriver};
use crate::error::{IoContext, Result, StorageError};
use crate::fsutil;
use rand::Rng;
use rustix::fd::{AsFd, AsRawFd};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount, FsMountFlags, FsOpenFlags,
    MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};
use std::ffi::CString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const LINK_LEN: usize = 8;
const LINK_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Options that keep the upper directory a plain, self-contained diff.
const SAFE_OPTIONS: [(&str, &str); 3] = [
    ("index", "off"),
    ("redirect_dir", "off"),
    ("metacopy", "off"),
];

#[derive(Debug)]
pub(crate) struct Overlay {
    /// `<root>/overlay2`
    home: PathBuf,
}

/// How to mount: the new API with `lowerdir+`, or classic `mount(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MountApi {
    NewFirst,
    /// Only `mount(2)`; tests use it to check the option string of old kernels.
    #[cfg_attr(not(test), allow(dead_code))]
    Legacy,
}

impl Overlay {
    pub fn new(root: &Path) -> Result<Self> {
        let home = root.join("overlay2");
        for d in [home.join("l"), home.join("empty")] {
            fs::create_dir_all(&d).ctx("creating", &d)?;
        }
        let me = Self { home };
        me.remove_dangling_links()?;
        Ok(me)
    }

    fn links(&self) -> PathBuf {
        self.home.join("l")
    }

    /// Links whose layer vanished (a crash between link and rename, or during removal).
    fn remove_dangling_links(&self) -> Result<()> {
        let l = self.links();
        for name in fsutil::sorted_names(&l).ctx("listing", &l)? {
            let p = l.join(&name);
            if fs::metadata(&p).is_err() {
                fsutil::remove_any(&p).ctx("removing dangling link", &p)?;
            }
        }
        Ok(())
    }

    /// Checks that overlayfs works under `root`: mounts a tiny overlay with a whiteout
    /// and an opaque directory and looks through it.
    pub fn probe(root: &Path) -> Result<()> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).ctx("creating", &tmp)?;
        let dir = tempfile::Builder::new()
            .prefix("overlay-probe-")
            .tempdir_in(&tmp)
            .ctx("creating probe in", &tmp)?;
        let d = dir.path();
        for sub in ["lower", "upper", "work", "merged"] {
            fs::create_dir(d.join(sub)).ctx("creating", d.join(sub))?;
        }
        fs::write(d.join("lower/gone"), b"x").ctx("writing", d.join("lower/gone"))?;
        fs::create_dir(d.join("lower/dir")).ctx("creating", d.join("lower/dir"))?;
        fs::write(d.join("lower/dir/hidden"), b"x").ctx("writing", d.join("lower/dir/hidden"))?;
        fs::write(d.join("lower/kept"), b"x").ctx("writing", d.join("lower/kept"))?;
        // The layer diff directories need whiteouts and trusted xattrs.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            d.join("upper/gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .ctx("creating a whiteout in", d)?;
        fs::create_dir(d.join("upper/dir")).ctx("creating", d.join("upper/dir"))?;
        fsutil::set_xattr(&d.join("upper/dir"), fsutil::OPAQUE_XATTR, b"y")
            .ctx("setting trusted xattr in", d)?;
        let merged = d.join("merged");
        mount_overlay(
            &[d.join("lower")],
            &d.join("upper"),
            &d.join("work"),
            &merged,
            MountApi::NewFirst,
        )?;
        let visible = merged.join("kept").exists()
            && !merged.join("gone").exists()
            && !merged.join("dir/hidden").exists();
        unmount_all(&merged)?;
        if !visible {
            return Err(StorageError::Mount {
                target: merged,
                source: io::Error::other("overlay mounted but whiteouts did not hide lower files"),
            });
        }
        Ok(())
    }

    fn lower_paths(&self, lowers: &[LowerLayer]) -> Vec<PathBuf> {
        if lowers.is_empty() {
            return vec![self.home.join("empty")];
        }
        lowers
            .iter()
            .map(|l| match &l.link {
                Some(link) => self.links().join(link),
                None => l.diff(),
            })
            .collect()
    }
}

impl SnapshotDriver for Overlay {
    fn name(&self) -> &'static str {
        "overlay2"
    }

    fn whiteout_mode(&self) -> WhiteoutMode {
        WhiteoutMode::Overlay
    }

    fn diff_needs_parent(&self) -> bool {
        false
    }

    fn prepare_layer(&self, _parent: Option<&LowerLayer>, diff: &Path) -> Result<()> {
        fs::create_dir(diff).ctx("creating", diff)
    }

    fn link_layer(&self, final_dir: &Path) -> Result<Option<String>> {
        let hex = final_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = PathBuf::from("../../layers").join(hex).join("diff");
        let mut rng = rand::thread_rng();
        loop {
            let id: String = (0..LINK_LEN)
                .map(|_| LINK_ALPHABET[rng.gen_range(0..LINK_ALPHABET.len())] as char)
                .collect();
            let link = self.links().join(&id);
            match std::os::unix::fs::symlink(&target, &link) {
                Ok(()) => return Ok(Some(id)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(StorageError::io("creating layer link", link, e)),
            }
        }
    }

    fn unlink_layer(&self, link: &str) -> Result<()> {
        let p = self.links().join(link);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StorageError::io("removing layer link", p, e))
            }
            _ => Ok(()),
        }
    }

    fn layer_entries(
        &self,
        layer: &LowerLayer,
        _parent: Option<&LowerLayer>,
    ) -> Result<(PathBuf, Vec<DiffEntry>)> {
        let diff = layer.diff();
        let entries = diff::overlay_entries(&diff).ctx("reading layer diff", &diff)?;
        Ok((diff, entries))
    }

    fn create_rw(&self, dir: &Path, _lowers: &[LowerLayer]) -> Result<()> {
        for sub in ["upper", "work", "merged"] {
            fs::create_dir(dir.join(sub)).ctx("creating", dir.join(sub))?;
        }
        Ok(())
    }

    fn mount_rw(&self, dir: &Path, lowers: &[LowerLayer]) -> Result<PathBuf> {
        let merged = dir.join("merged");
        if !fsutil::is_mountpoint(&merged) {
            mount_overlay(
                &self.lower_paths(lowers),
                &dir.join("upper"),
                &dir.join("work"),
                &merged,
                MountApi::NewFirst,
            )?;
        }
        Ok(merged)
    }

    fn unmount_rw(&self, dir: &Path) -> Result<()> {
        unmount_all(&dir.join("merged"))
    }

    fn rw_mounted(&self, dir: &Path) -> bool {
        fsutil::is_mountpoint(&dir.join("merged"))
    }

    fn rw_changes(&self, dir: &Path, lowers: &[LowerLayer]) -> Result<Vec<Change>> {
        let upper = dir.join("upper");
        let lower_diffs: Vec<PathBuf> = lowers.iter().map(LowerLayer::diff).collect();
        diff::overlay_changes(&upper, &lower_diffs).ctx("computing changes of", &upper)
    }

    fn rw_entries(&self, dir: &Path, _lowers: &[LowerLayer]) -> Result<(PathBuf, Vec<DiffEntry>)> {
        let upper = dir.join("upper");
        let entries = diff::overlay_entries(&upper).ctx("reading", &upper)?;
        Ok((upper, entries))
    }

    fn rw_size(&self, dir: &Path, _lowers: &[LowerLayer]) -> Result<u64> {
        let upper = dir.join("upper");
        fsutil::tree_size(&upper).ctx("measuring", &upper)
    }
}

/// Mounts an overlay of `lowers` (top first) with `upper` and `work` at `target`.
pub(crate) fn mount_overlay(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    api: MountApi,
) -> Result<()> {
    if api == MountApi::NewFirst {
        match mount_with_fsconfig(lowers, upper, work, target) {
            Ok(()) => return Ok(()),
            // ENOSYS: no new mount API; EINVAL: no `lowerdir+` (Linux < 6.8).
            Err(e) if e == Errno::NOSYS || e == Errno::INVAL => {}
            Err(e) => {
                return Err(StorageError::Mount {
                    target: target.to_path_buf(),
                    source: e.into(),
                })
            }
        }
    }
    mount_legacy(lowers, upper, work, target)
}

fn mount_with_fsconfig(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> rustix::io::Result<()> {
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(fs.as_fd(), "source", "overlay")?;
    for lower in lowers {
        fsconfig_set_string(fs.as_fd(), "lowerdir+", lower.as_path())?;
    }
    fsconfig_set_string(fs.as_fd(), "upperdir", upper)?;
    fsconfig_set_string(fs.as_fd(), "workdir", work)?;
    for (k, v) in SAFE_OPTIONS {
        // Older kernels lack some of these; their defaults are then already off.
        let _ = fsconfig_set_string(fs.as_fd(), k, v);
    }
    fsconfig_create(fs.as_fd())?;
    let mnt = fsmount(
        fs.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::empty(),
    )?;
    move_mount(
        mnt.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
}

/// The page-limited option string of `mount(2)`. Paths are named through
/// `/proc/self/fd/<fd of their parent directory>/<name>` to keep it short: the lowers all
/// live in `l/`, so each costs about 30 bytes.
fn mount_legacy(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    let mut parents: Vec<(PathBuf, rustix::fd::OwnedFd)> = Vec::new();
    let mut short = |p: &Path| -> Result<String> {
        let parent = p.parent().unwrap_or(Path::new("/")).to_path_buf();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let raw = match parents.iter().find(|(d, _)| *d == parent) {
            Some((_, fd)) => fd.as_raw_fd(),
            None => {
                let fd = fsutil::open_dir(&parent).ctx("opening", &parent)?;
                let raw = fd.as_raw_fd();
                parents.push((parent, fd));
                raw
            }
        };
        Ok(format!("/proc/self/fd/{raw}/{name}"))
    };
    let lower_strs = lowers
        .iter()
        .map(|l| short(l))
        .collect::<Result<Vec<_>>>()?;
    let base = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower_strs.join(":"),
        short(upper)?,
        short(work)?
    );
    let with_safe = format!(
        "{base},{}",
        SAFE_OPTIONS.map(|(k, v)| format!("{k}={v}")).join(",")
    );
    let mount_err = |source: io::Error| StorageError::Mount {
        target: target.to_path_buf(),
        source,
    };
    let mut last = Errno::INVAL;
    for data in [with_safe, base] {
        if data.len() >= 4096 {
            return Err(mount_err(io::Error::other(format!(
                "overlay options are {} bytes, over one page",
                data.len()
            ))));
        }
        let c = CString::new(data).map_err(|e| mount_err(io::Error::other(e)))?;
        match rustix::mount::mount(
            "overlay",
            target,
            "overlay",
            MountFlags::empty(),
            c.as_c_str(),
        ) {
            Ok(()) => return Ok(()),
            // An unknown option: retry without the optional ones.
            Err(Errno::INVAL) => last = Errno::INVAL,
            Err(e) => return Err(mount_err(e.into())),
        }
    }
    Err(mount_err(last.into()))
}

/// Unmounts everything stacked on `target`; lazily detaches when busy. Not mounted is fine.
pub(crate) fn unmount_all(target: &Path) -> Result<()> {
    for _ in 0..16 {
        if !fsutil::is_mountpoint(target) {
            return Ok(());
        }
        match rustix::mount::unmount(target, UnmountFlags::empty()) {
            Ok(()) => {}
            Err(Errno::BUSY) => {
                rustix::mount::unmount(target, UnmountFlags::DETACH).map_err(|e| {
                    StorageError::Unmount {
                        target: target.to_path_buf(),
                        source: e.into(),
                    }
                })?
            }
            Err(Errno::INVAL) | Err(Errno::NOENT) => return Ok(()),
            Err(e) => {
                return Err(StorageError::Unmount {
                    target: target.to_path_buf(),
                    source: e.into(),
                })
            }
        }
    }
    Err(StorageError::Unmount {
        target: target.to_path_buf(),
        source: io::Error::other("still mounted after 16 unmounts"),
    })
}
