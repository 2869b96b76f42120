//! Computing filesystem changes and writing them as a layer tar.
//!
//! Two sources of changes: an overlayfs upper (or diff) directory, read as is (whiteout
//! devices are deletions, `trusted.overlay.opaque` directories hide their lower
//! contents), and a pair of full trees compared by metadata (vfs). Both give
//! [`Change`]s with Docker's `docker diff` semantics and [`DiffEntry`]s, which
//! [`write_diff_tar`] turns into a tar with OCI/Docker whiteout files, sorted by name so
//! the same changes always give the same bytes.

use crate::apply::{OPAQUE_MARKER, WHITEOUT_PREFIX};
use crate::error::{IoContext, Result};
use crate::fsutil::{self, open_beneath, open_dir, OVERLAY_XATTR_PREFIX};
use crate::recipe::HashingWriter;
use berth_core::Digest;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::OFlags;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What happened to a path, with the numbers of Docker's API (`Kind` in `docker diff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

impl ChangeKind {
    /// The number Docker's API uses: 0 modified, 1 added, 2 deleted.
    pub fn api_kind(self) -> u8 {
        match self {
            ChangeKind::Modified => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        }
    }
    /// The letter `docker diff` prints: C, A or D.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One changed path of a container, absolute inside the container (`/etc/hosts`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

/// One item of a diff to write as a tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DiffEntry {
    /// The file, directory, link or device at this relative path.
    Present(PathBuf),
    /// The path was deleted: written as `.wh.<name>`.
    Whiteout(PathBuf),
    /// The directory hides its lower contents: written as `<dir>/.wh..wh..opq`.
    Opaque(PathBuf),
}

fn abs(rel: &Path) -> String {
    format!("/{}", rel.display())
}

/// The diff stored in an overlay upper or layer diff directory.
pub(crate) fn overlay_entries(upper: &Path) -> io::Result<Vec<DiffEntry>> {
    let mut out = Vec::new();
    walk_overlay(upper, Path::new(""), &mut out)?;
    Ok(out)
}

fn walk_overlay(root: &Path, rel: &Path, out: &mut Vec<DiffEntry>) -> io::Result<()> {
    for name in fsutil::sorted_names(&root.join(rel))? {
        let child = rel.join(&name);
        let path = root.join(&child);
        let meta = fs::symlink_metadata(&path)?;
        if fsutil::is_whiteout(&meta) {
            out.push(DiffEntry::Whiteout(child));
            continue;
        }
        out.push(DiffEntry::Present(child.clone()));
        if meta.is_dir() {
            if fsutil::is_opaque(&path)? {
                out.push(DiffEntry::Opaque(child.clone()));
            }
            walk_overlay(root, &child, out)?;
        }
    }
    Ok(())
}

/// `docker diff` of an overlay upper directory over `lowers` (layer diff dirs, top
/// first), with Docker's rules: present below means modified, directories whose size,
/// mode and mtime are unchanged are skipped, and the parent of an added or deleted path
/// is reported as modified.
pub(crate) fn overlay_changes(upper: &Path, lowers: &[PathBuf]) -> io::Result<Vec<Change>> {
    let mut out = Vec::new();
    let mut changed_dirs = HashSet::new();
    overlay_changes_in(upper, Path::new(""), lowers, &mut changed_dirs, &mut out)?;
    Ok(with_parent_dirs(out))
}

/// Adds every missing ancestor of a change as modified, right before its first
/// descendant: a directory that only contains changes is reported, as Docker does.
fn with_parent_dirs(changes: Vec<Change>) -> Vec<Change> {
    let listed: HashSet<String> = changes.iter().map(|c| c.path.clone()).collect();
    let mut added = HashSet::new();
    let mut out = Vec::with_capacity(changes.len());
    for c in changes {
        let mut ancestors = Vec::new();
        let mut p = Path::new(&c.path).parent();
        while let Some(a) = p.filter(|a| *a != Path::new("/")) {
            let s = a.display().to_string();
            if listed.contains(&s) || added.contains(&s) {
                break;
            }
            ancestors.push(s);
            p = a.parent();
        }
        for a in ancestors.into_iter().rev() {
            added.insert(a.clone());
            out.push(Change {
                kind: ChangeKind::Modified,
                path: a,
            });
        }
        out.push(c);
    }
    out
}

fn overlay_changes_in(
    root: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    changed_dirs: &mut HashSet<PathBuf>,
    out: &mut Vec<Change>,
) -> io::Result<()> {
    for name in fsutil::sorted_names(&root.join(rel))? {
        let child = rel.join(&name);
        let meta = fs::symlink_metadata(root.join(&child))?;
        let mut skip = false;
        let kind = if fsutil::is_whiteout(&meta) {
            ChangeKind::Deleted
        } else {
            let mut kind = ChangeKind::Added;
            for lower in lowers {
                match fs::symlink_metadata(lower.join(&child)) {
                    Ok(lm) => {
                        if lm.is_dir()
                            && meta.is_dir()
                            && lm.size() == meta.size()
                            && lm.mode() == meta.mode()
                            && lm.mtime() == meta.mtime()
                            && lm.mtime_nsec() == meta.mtime_nsec()
                        {
                            skip = true;
                        }
                        kind = ChangeKind::Modified;
                        break;
                    }
                    Err(e)
                        if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(20) => {}
                    Err(e) => return Err(e),
                }
            }
            kind
        };
        if !skip {
            if meta.is_dir() {
                changed_dirs.insert(child.clone());
            }
            if kind != ChangeKind::Modified {
                if let Some(parent) = child.parent().filter(|p| !p.as_os_str().is_empty()) {
                    if changed_dirs.insert(parent.to_path_buf()) {
                        out.push(Change {
                            kind: ChangeKind::Modified,
                            path: abs(parent),
                        });
                    }
                }
            }
            out.push(Change {
                kind,
                path: abs(&child),
            });
        }
        if meta.is_dir() && !fsutil::is_whiteout(&meta) {
            overlay_changes_in(root, &child, lowers, changed_dirs, out)?;
        }
    }
    Ok(())
}

/// `docker diff` between two full trees (vfs): added, deleted and modified paths by
/// metadata (type and mode, owner, device, and for non-directories size and mtime, plus
/// file capabilities), with directories that contain changes reported as modified.
pub(crate) fn tree_changes(old: Option<&Path>, new: &Path) -> io::Result<Vec<Change>> {
    let mut out = Vec::new();
    tree_changes_in(old, new, Path::new(""), true, &mut out)?;
    Ok(out)
}

fn capability(path: &Path) -> io::Result<Option<Vec<u8>>> {
    fsutil::get_xattr(path, "security.capability")
}

fn stat_differs(o: &Metadata, n: &Metadata) -> bool {
    o.mode() != n.mode()
        || o.uid() != n.uid()
        || o.gid() != n.gid()
        || o.rdev() != n.rdev()
        || (!o.is_dir()
            && (o.mtime() != n.mtime() || o.mtime_nsec() != n.mtime_nsec() || o.size() != n.size()))
}

fn tree_changes_in(
    old: Option<&Path>,
    new: &Path,
    rel: &Path,
    recorded: bool,
    out: &mut Vec<Change>,
) -> io::Result<()> {
    let at_entry = out.len();
    let new_names = fsutil::sorted_names(new)?;
    let old_names: Vec<_> = match old {
        Some(o) => fsutil::sorted_names(o)?,
        None => Vec::new(),
    };
    for name in &new_names {
        let child = rel.join(name);
        let npath = new.join(name);
        let nmeta = fs::symlink_metadata(&npath)?;
        let opath = old.map(|o| o.join(name));
        let ometa = match &opath {
            Some(p) => match fs::symlink_metadata(p) {
                Ok(m) => Some(m),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let mut child_recorded = true;
        match &ometa {
            None => out.push(Change {
                kind: ChangeKind::Added,
                path: abs(&child),
            }),
            Some(om) => {
                let o = opath.as_deref().expect("old path");
                if stat_differs(om, &nmeta) || capability(o)? != capability(&npath)? {
                    out.push(Change {
                        kind: ChangeKind::Modified,
                        path: abs(&child),
                    });
                } else {
                    child_recorded = false;
                }
            }
        }
        if nmeta.is_dir() {
            let old_dir = match (&ometa, &opath) {
                (Some(om), Some(p)) if om.is_dir() => Some(p.as_path()),
                _ => None,
            };
            tree_changes_in(old_dir, &npath, &child, child_recorded, out)?;
        }
    }
    let new_set: HashSet<_> = new_names.iter().collect();
    for name in old_names.iter().filter(|n| !new_set.contains(n)) {
        out.push(Change {
            kind: ChangeKind::Deleted,
            path: abs(&rel.join(name)),
        });
    }
    if out.len() > at_entry && !recorded && !rel.as_os_str().is_empty() {
        out.insert(
            at_entry,
            Change {
                kind: ChangeKind::Modified,
                path: abs(rel),
            },
        );
    }
    Ok(())
}

/// The tar entries for a list of changes: deletions become whiteouts.
pub(crate) fn entries_from_changes(changes: &[Change]) -> Vec<DiffEntry> {
    changes
        .iter()
        .map(|c| {
            let rel = PathBuf::from(c.path.trim_start_matches('/'));
            match c.kind {
                ChangeKind::Deleted => DiffEntry::Whiteout(rel),
                _ => DiffEntry::Present(rel),
            }
        })
        .collect()
}

/// Size of the regular files named by `changes` in `root`.
pub(crate) fn changes_size(root: &Path, changes: &[Change]) -> u64 {
    changes
        .iter()
        .filter(|c| c.kind != ChangeKind::Deleted)
        .filter_map(|c| fs::symlink_metadata(root.join(c.path.trim_start_matches('/'))).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// What a written tar hashes to and how long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarSummary {
    pub digest: Digest,
    pub size: u64,
}

fn name_bytes(rel: &Path) -> Vec<u8> {
    rel.as_os_str().as_bytes().to_vec()
}

fn whiteout_name(rel: &Path) -> Vec<u8> {
    let mut n = match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => {
            let mut v = name_bytes(p);
            v.push(b'/');
            v
        }
        None => Vec::new(),
    };
    n.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
    n.extend_from_slice(rel.file_name().map(|f| f.as_bytes()).unwrap_or_default());
    n
}

/// Writes `entries` (paths relative to `root`) as a layer tar, sorted by name.
pub(crate) fn write_diff_tar(
    root: &Path,
    entries: Vec<DiffEntry>,
    w: &mut dyn Write,
) -> Result<TarSummary> {
    let root_fd = open_dir(root).ctx("opening", root)?;
    let mut named: Vec<(Vec<u8>, DiffEntry)> = entries
        .into_iter()
        .map(|e| {
            let name = match &e {
                DiffEntry::Present(p) => name_bytes(p),
                DiffEntry::Whiteout(p) => whiteout_name(p),
                DiffEntry::Opaque(p) => {
                    let mut v = name_bytes(p);
                    v.push(b'/');
                    v.extend_from_slice(OPAQUE_MARKER.as_bytes());
                    v
                }
            };
            (name, e)
        })
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.dedup_by(|a, b| a.0 == b.0);

    let mut out = TarOut {
        w: HashingWriter::new(w),
        links: HashMap::new(),
    };
    for (name, entry) in named {
        out.entry(&root_fd, name, &entry)
            .ctx("writing layer tar entry from", root)?;
    }
    out.w
        .write_all(&[0u8; 1024])
        .ctx("writing layer tar from", root)?;
    out.w.flush().ctx("writing layer tar from", root)?;
    Ok(TarSummary {
        digest: out.w.hasher.clone().finish(),
        size: out.w.size,
    })
}

struct TarOut<'a> {
    w: HashingWriter<&'a mut dyn Write>,
    links: HashMap<(u64, u64), Vec<u8>>,
}

/// Opens the parent of `rel` below `root` without following symlinks, and names `rel`
/// through it (`/proc/self/fd/<parent>/<name>`); the fd must outlive the use of the path.
fn pin(root: &OwnedFd, rel: &Path) -> io::Result<(OwnedFd, PathBuf)> {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let fd = fsutil::open_dir_beneath(root.as_fd(), parent)?;
    let name = rel.file_name().map(Path::new).unwrap_or(Path::new(""));
    let at = fsutil::fd_path(fd.as_fd(), name);
    Ok((fd, at))
}

fn pad(len: u64) -> usize {
    ((512 - (len % 512)) % 512) as usize
}

impl TarOut<'_> {
    fn entry(&mut self, root_fd: &OwnedFd, mut name: Vec<u8>, entry: &DiffEntry) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        match entry {
            DiffEntry::Whiteout(p) => {
                // Keep the whiteout device's owner and time when there is one (overlay).
                let (uid, gid, mtime) =
                    match pin(root_fd, p).and_then(|(_fd, at)| fs::symlink_metadata(at)) {
                        Ok(m) if fsutil::is_whiteout(&m) => (m.uid(), m.gid(), m.mtime()),
                        _ => (0, 0, 0),
                    };
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o600);
                h.set_uid(uid.into());
                h.set_gid(gid.into());
                h.set_mtime(mtime.max(0) as u64);
                self.emit(&mut h, &name, None, &[], None)
            }
            DiffEntry::Opaque(p) => {
                let (_fd, at) = pin(root_fd, p)?;
                let m = fs::symlink_metadata(at)?;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(m.mode() & 0o777);
                h.set_uid(m.uid().into());
                h.set_gid(m.gid().into());
                h.set_mtime(0);
                self.emit(&mut h, &name, None, &[], None)
            }
            DiffEntry::Present(p) => {
                // Through the pinned parent: a running container cannot swap a directory
                // for a symlink under us and make us describe a host file.
                let (_fd, path) = pin(root_fd, p)?;
                let m = fs::symlink_metadata(&path)?;
                let ft = m.file_type();
                h.set_mode(m.mode() & 0o7777);
                h.set_uid(m.uid().into());
                h.set_gid(m.gid().into());
                h.set_mtime(m.mtime().max(0) as u64);
                let xattrs: Vec<_> = fsutil::list_xattrs(&path)?
                    .into_iter()
                    .filter(|(k, _)| {
                        !k.starts_with(OVERLAY_XATTR_PREFIX) && k != "security.selinux"
                    })
                    .collect();
                if ft.is_dir() {
                    h.set_entry_type(tar::EntryType::Directory);
                    name.push(b'/');
                    self.emit(&mut h, &name, None, &xattrs, None)
                } else if ft.is_file() {
                    if m.nlink() > 1 {
                        if let Some(first) = self.links.get(&(m.dev(), m.ino())).cloned() {
                            h.set_entry_type(tar::EntryType::Link);
                            return self.emit(&mut h, &name, Some(&first), &xattrs, None);
                        }
                        self.links.insert((m.dev(), m.ino()), name.clone());
                    }
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(m.len());
                    let fd = open_beneath(root_fd.as_fd(), p, OFlags::RDONLY)?;
                    self.emit(
                        &mut h,
                        &name,
                        None,
                        &xattrs,
                        Some((File::from(fd), m.len())),
                    )
                } else if ft.is_symlink() {
                    h.set_entry_type(tar::EntryType::Symlink);
                    let target = fs::read_link(&path)?;
                    self.emit(
                        &mut h,
                        &name,
                        Some(target.as_os_str().as_bytes()),
                        &xattrs,
                        None,
                    )
                } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                    h.set_entry_type(if ft.is_char_device() {
                        tar::EntryType::Char
                    } else if ft.is_block_device() {
                        tar::EntryType::Block
                    } else {
                        tar::EntryType::Fifo
                    });
                    if !ft.is_fifo() {
                        h.set_device_major(rustix::fs::major(m.rdev()))?;
                        h.set_device_minor(rustix::fs::minor(m.rdev()))?;
                    }
                    self.emit(&mut h, &name, None, &xattrs, None)
                } else {
                    Ok(()) // sockets are not part of a layer
                }
            }
        }
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.write_all(bytes)
    }

    /// Writes a GNU long-name/long-link record carrying `data` of type `kind`.
    fn long(&mut self, kind: tar::EntryType, data: &[u8]) -> io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64 + 1);
        h.set_entry_type(kind);
        h.set_cksum();
        self.raw(h.as_bytes())?;
        self.raw(data)?;
        self.raw(&[0])?;
        self.raw(&vec![0u8; pad(data.len() as u64 + 1)])
    }

    fn emit(
        &mut self,
        h: &mut tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(String, Vec<u8>)],
        data: Option<(File, u64)>,
    ) -> io::Result<()> {
        if !xattrs.is_empty() {
            let mut records = Vec::new();
            for (k, v) in xattrs {
                let body_len = " SCHILY.xattr.".len() + k.len() + 1 + v.len() + 1;
                // The length prefix counts its own digits.
                let mut len = body_len + 1;
                while len.to_string().len() + body_len != len {
                    len = len.to_string().len() + body_len;
                }
                records.extend_from_slice(format!("{len} SCHILY.xattr.{k}=").as_bytes());
                records.extend_from_slice(v);
                records.push(b'\n');
            }
            let mut ph = tar::Header::new_ustar();
            let base = name
                .rsplit(|b| *b == b'/')
                .find(|s| !s.is_empty())
                .unwrap_or(b"x");
            let mut pname = b"PaxHeaders.0/".to_vec();
            pname.extend_from_slice(&base[..base.len().min(80)]);
            ph.as_old_mut().name[..pname.len()].copy_from_slice(&pname);
            ph.set_mode(0o644);
            ph.set_uid(0);
            ph.set_gid(0);
            ph.set_mtime(0);
            ph.set_size(records.len() as u64);
            ph.set_entry_type(tar::EntryType::XHeader);
            ph.set_cksum();
            self.raw(ph.as_bytes())?;
            self.raw(&records)?;
            self.raw(&vec![0u8; pad(records.len() as u64)])?;
        }
        let slot = &mut h.as_old_mut().name;
        if name.len() > slot.len() {
            self.long(tar::EntryType::GNULongName, name)?;
            let slot = &mut h.as_old_mut().name;
            slot.copy_from_slice(&name[..100]);
        } else {
            slot[..name.len()].copy_from_slice(name);
        }
        if let Some(link) = link {
            if link.len() > 100 {
                self.long(tar::EntryType::GNULongLink, link)?;
                h.as_old_mut().linkname.copy_from_slice(&link[..100]);
            } else {
                h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
            }
        }
        h.set_cksum();
        self.raw(h.as_bytes())?;
        if let Some((file, size)) = data {
            // Exactly `size` bytes even if the file changed meanwhile (a running container).
            let mut body = file.take(size).chain(io::repeat(0)).take(size);
            io::copy(&mut body, &mut self.w)?;
            self.raw(&vec![0u8; pad(size)])?;
        }
        Ok(())
    }
}
