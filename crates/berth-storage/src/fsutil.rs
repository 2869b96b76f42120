//! Small filesystem helpers shared by the drivers: symlink-safe directory opening, xattrs,
//! tree copies that keep every attribute (for vfs), mount-point checks and sizes.
//!
//! Everything here works on trees this crate owns; functions that take paths inside a
//! layer never follow symlinks in the last component, and [`open_dir_beneath`] refuses
//! symlinks anywhere in the path.

use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The overlayfs xattr namespace; never copied into or out of layer tars.
pub const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Opens a directory by absolute or relative path (following symlinks: only for our own
/// store paths, never for paths inside a layer).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens `rel` below `root`, refusing any symlink and any escape (`..`, absolute).
pub fn open_beneath(root: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    Ok(rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// Opens the directory `rel` below `root` without following symlinks.
pub fn open_dir_beneath(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    open_beneath(root, rel, OFlags::RDONLY | OFlags::DIRECTORY)
}

/// A path naming `name` inside the directory `dir` through `/proc/self/fd`, for the calls
/// that only take paths (xattrs). The directory itself is already pinned by the fd.
pub fn fd_path(dir: BorrowedFd<'_>, name: &Path) -> PathBuf {
    let base = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    if name.as_os_str().is_empty() {
        base
    } else {
        base.join(name)
    }
}

/// All xattrs of `path` (not following a final symlink), sorted by name.
pub fn list_xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let len = match rustix::fs::llistxattr_query(path) {
        Ok(n) => n,
        Err(e) if e == rustix::io::Errno::NOTSUP => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    if len == 0 {
        return Ok(Vec::new());
    }
    let mut names = vec![0u8; len + 256];
    let n = rustix::fs::llistxattr(path, &mut names[..])?;
    names.truncate(n);
    let mut out = Vec::new();
    for raw in names.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let Ok(name) = std::str::from_utf8(raw) else {
            continue;
        };
        if let Some(value) = get_xattr(path, name)? {
            out.push((name.to_string(), value));
        }
    }
    out.sort();
    Ok(out)
}

/// One xattr of `path`, `None` when absent.
pub fn get_xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(rustix::io::Errno::RANGE) => {
                let n = rustix::fs::lgetxattr_query(path, name)?;
                buf = vec![0u8; n.max(buf.len() * 2)];
            }
            Err(e) if e == rustix::io::Errno::NODATA || e == rustix::io::Errno::NOTSUP => {
                return Ok(None)
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    Ok(rustix::fs::lsetxattr(
        path,
        name,
        value,
        rustix::fs::XattrFlags::empty(),
    )?)
}

/// Whether `path` is an overlay opaque directory.
pub fn is_opaque(path: &Path) -> io::Result<bool> {
    Ok(get_xattr(path, OPAQUE_XATTR)?.is_some_and(|v| v == b"y"))
}

/// Whether a file type and device number are an overlay whiteout (char device 0:0).
pub fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

pub fn timestamps(sec: i64, nsec: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: nsec as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Sets owner, mode (not for symlinks) and mtime of `name` in `dir`, not following it.
pub fn set_owner_mode_time(
    dir: BorrowedFd<'_>,
    name: &Path,
    uid: u32,
    gid: u32,
    mode: Option<u32>,
    mtime: Option<(i64, i64)>,
) -> io::Result<()> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if let Some(mode) = mode {
        rustix::fs::chmodat(
            dir,
            name,
            Mode::from_raw_mode(mode & 0o7777),
            AtFlags::empty(),
        )?;
    }
    if let Some((sec, nsec)) = mtime {
        rustix::fs::utimensat(dir, name, &timestamps(sec, nsec), AtFlags::SYMLINK_NOFOLLOW)?;
    }
    Ok(())
}

/// Removes a file or a whole tree; a missing path is fine.
pub fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => match fs::remove_dir_all(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        Ok(_) => match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sorted names in a directory.
pub fn sorted_names(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir)? {
        names.push(e?.file_name());
    }
    names.sort();
    Ok(names)
}

/// Bytes used by regular files under `root`, each inode counted once.
pub fn tree_size(root: &Path) -> io::Result<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let m = e.metadata()?;
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                total += m.len();
            }
        }
    }
    Ok(total)
}

/// Copies the tree `src` to `dst` (which must not exist) keeping owners, modes, times,
/// xattrs, hardlinks, symlinks, devices and fifos. Used by the vfs driver.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let mut links = HashMap::new();
    copy_entry(src, dst, &mut links)
}

fn copy_entry(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    let ft = meta.file_type();
    let cwd = rustix::fs::CWD;
    if ft.is_dir() {
        fs::create_dir(dst)?;
        for name in sorted_names(src)? {
            copy_entry(&src.join(&name), &dst.join(&name), links)?;
        }
    } else if ft.is_file() {
        if meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                return fs::hard_link(first, dst);
            }
            links.insert((meta.dev(), meta.ino()), dst.to_path_buf());
        }
        fs::copy(src, dst)?;
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, dst)?;
    } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
        let kind = if ft.is_char_device() {
            FileType::CharacterDevice
        } else if ft.is_block_device() {
            FileType::BlockDevice
        } else {
            FileType::Fifo
        };
        rustix::fs::mknodat(
            cwd,
            dst,
            kind,
            Mode::from_raw_mode(meta.mode() & 0o7777),
            meta.rdev(),
        )?;
    } else {
        return Ok(()); // sockets are not copied
    }
    for (name, value) in list_xattrs(src)? {
        set_xattr(dst, &name, &value)?;
    }
    let mode = (!ft.is_symlink()).then_some(meta.mode());
    set_owner_mode_time(
        cwd,
        dst,
        meta.uid(),
        meta.gid(),
        mode,
        Some((meta.mtime(), meta.mtime_nsec())),
    )
}

/// Renames `from` to `to`, failing with `AlreadyExists` if `to` exists. Falls back to a
/// plain rename (which refuses a non-empty target directory) on filesystems without
/// `RENAME_NOREPLACE`; callers hold the lock that makes that check-then-rename safe.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let cwd = rustix::fs::CWD;
    match rustix::fs::renameat_with(cwd, from, cwd, to, rustix::fs::RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => {
            Err(io::Error::from(io::ErrorKind::AlreadyExists))
        }
        Err(rustix::io::Errno::INVAL) if fs::symlink_metadata(to).is_err() => {
            match fs::rename(from, to) {
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error()) => {
                    Err(io::Error::from(io::ErrorKind::AlreadyExists))
                }
                other => other,
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `path` is the root of a mount (its mount id differs from its parent's).
pub fn is_mountpoint(path: &Path) -> bool {
    let Some(parent) = path.parent() else {
        return true;
    };
    match (mount_id(path), mount_id(parent)) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

fn mount_id(path: &Path) -> Option<u64> {
    let st = rustix::fs::statx(
        rustix::fs::CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW,
        rustix::fs::StatxFlags::MNT_ID,
    )
    .ok()?;
    Some(st.stx_mnt_id)
}
