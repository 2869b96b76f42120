//! Unpacking a layer tar into a directory, safely and completely.
//!
//! [`apply_tar`] decompresses (gzip, zstd or plain, by magic bytes), hashes the plain tar
//! stream into the diff_id, records the [recipe](crate::recipe) that rebuilds the exact
//! stream, and unpacks every entry keeping owners, modes, mtimes, xattrs, hardlinks,
//! symlinks, devices and fifos.
//!
//! Safety: entry paths that are absolute or contain `..` are refused; every file is
//! created with `*at` calls relative to a directory fd that was opened without following
//! symlinks, so an entry below a symlink (even one planted earlier in the same tar) can
//! never reach outside the destination. Such an entry is refused.
//!
//! Whiteouts (`.wh.NAME`, `.wh..wh..opq`) are converted according to [`WhiteoutMode`]:
//! into overlayfs form (char device 0:0, `trusted.overlay.opaque=y`) when unpacking a
//! diff into its own empty directory, or applied directly (deleting) when unpacking on
//! top of a full copy of the parent (vfs).

use crate::compress::decompress;
use crate::error::{IoContext, Result, StorageError};
use crate::fsutil::{
    self, fd_path, open_dir, open_dir_beneath, OPAQUE_XATTR, OVERLAY_XATTR_PREFIX,
};
use crate::recipe::RecipeWriter;
use berth_core::digest::Hasher;
use berth_core::Digest;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";
pub(crate) const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Beside the recipe: files the tar overwrote, and their index (`stash.json`).
pub(crate) const STASH_DIR: &str = "stash";
pub(crate) const STASH_INDEX: &str = "stash.json";

/// How whiteout entries are materialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhiteoutMode {
    /// Unpacking a diff into an empty directory used as an overlayfs layer.
    Overlay,
    /// Unpacking onto a copy of the parent: whiteouts delete, opaque markers clear.
    Direct,
    /// Copying files into a live tree (`docker cp`): no whiteouts (`.wh.` names are plain
    /// files), and an existing non-directory is never replaced by a directory or the
    /// reverse (Docker's `noOverwriteDirNonDir`).
    Plain,
}

/// The result of unpacking one layer tar.
#[derive(Debug)]
pub(crate) struct Applied {
    pub diff_id: Digest,
    /// Bytes of regular files unpacked.
    pub size: u64,
    /// Whether the recipe reproduces the stream (false when the tar overwrote its own
    /// files, used sparse entries, or the stream was read in an unexpected way).
    pub recipe_ok: bool,
}

struct TapState {
    pos: u64,
    skip: Option<(u64, u64)>,
    /// `None` when nobody needs the diff_id (`cp` into a container).
    hasher: Option<Hasher>,
    recipe: Option<RecipeWriter>,
    recipe_ok: bool,
    recipe_err: Option<io::Error>,
    /// File records written so far (their index names them in `stash.json`).
    file_records: u64,
}

impl TapState {
    fn record(&mut self, bytes: &[u8]) {
        if let Some(r) = self.recipe.as_mut() {
            if let Err(e) = r.raw(bytes) {
                self.recipe_err.get_or_insert(e);
            }
        }
    }

    /// Marks `[start, start+size)` as file content stored as a reference to `path`;
    /// returns the index of the file record.
    fn begin_file(&mut self, path: &Path, start: u64, size: u64) -> Option<u64> {
        if self.recipe.is_none() || !self.recipe_ok {
            return None;
        }
        if self.pos != start {
            // Some payload bytes were already read as raw: cannot reference them.
            self.recipe_ok = false;
            return None;
        }
        self.skip = Some((start, start + size));
        if let Some(r) = self.recipe.as_mut() {
            if let Err(e) = r.file(path, size) {
                self.recipe_err.get_or_insert(e);
            }
        }
        self.file_records += 1;
        Some(self.file_records - 1)
    }
}

/// Reads the plain tar stream, hashing all of it and recording what is not file content.
struct Tap<R> {
    inner: R,
    state: Rc<RefCell<TapState>>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let data = &buf[..n];
        let mut st = self.state.borrow_mut();
        if let Some(h) = st.hasher.as_mut() {
            h.update(data);
        }
        let start = st.pos;
        let end = start + n as u64;
        match st.skip {
            Some((s, e)) if s < end && e > start => {
                let a = (s.max(start) - start) as usize;
                let b = (e.min(end) - start) as usize;
                st.record(&data[..a]);
                st.record(&data[b..]);
            }
            _ => st.record(data),
        }
        st.pos = end;
        Ok(n)
    }
}

/// Unpacks the (possibly compressed) layer tar `input` into `dest`.
pub(crate) fn apply_tar(
    input: impl Read,
    dest: &Path,
    mode: WhiteoutMode,
    recipe: Option<&Path>,
) -> Result<Applied> {
    apply_tar_owned(input, dest, mode, recipe, None, true)
}

/// [`apply_tar`] with every entry owned by `owner` when given; without `hash` the
/// returned diff_id is that of nothing (callers that only extract skip the work).
pub(crate) fn apply_tar_owned(
    input: impl Read,
    dest: &Path,
    mode: WhiteoutMode,
    recipe: Option<&Path>,
    owner: Option<(u32, u32)>,
    hash: bool,
) -> Result<Applied> {
    apply_tar_with(input, dest, mode, recipe, owner, hash, None)
}

/// [`apply_tar_owned`] where regular files marked with [`crate::fdpass::PAX_FROM_FD`] take
/// their content from the next descriptor of `fds` instead of the stream.
pub(crate) fn apply_tar_with(
    input: impl Read,
    dest: &Path,
    mode: WhiteoutMode,
    recipe: Option<&Path>,
    owner: Option<(u32, u32)>,
    hash: bool,
    fds: Option<crate::fdpass::FdQueue>,
) -> Result<Applied> {
    let (_, plain) = decompress(input).map_err(|source| StorageError::LayerRead { source })?;
    let recipe_writer = match recipe {
        Some(p) => Some(RecipeWriter::create(p).ctx("creating", p)?),
        None => None,
    };
    let state = Rc::new(RefCell::new(TapState {
        pos: 0,
        skip: None,
        hasher: hash.then(Hasher::new),
        recipe_ok: recipe_writer.is_some(),
        recipe: recipe_writer,
        recipe_err: None,
        file_records: 0,
    }));
    let mut archive = tar::Archive::new(Tap {
        inner: plain,
        state: state.clone(),
    });
    let root_fd = Rc::new(open_dir(dest).ctx("opening", dest)?);
    let mut x = Extractor {
        root: dest,
        root_fd,
        mode,
        cache: None,
        unpacked: HashSet::new(),
        files: HashMap::new(),
        stash_dir: recipe.and_then(Path::parent).map(|p| p.join(STASH_DIR)),
        stash_fd: None,
        stashed: BTreeMap::new(),
        dir_times: Vec::new(),
        size: 0,
        recipe_ok: true,
        buf: vec![0u8; 1 << 20],
        owner,
        fds,
        pool: None,
    };
    for entry in archive
        .entries()
        .map_err(|source| StorageError::LayerRead { source })?
    {
        let mut entry = entry.map_err(|source| StorageError::LayerRead { source })?;
        x.entry(&mut entry, &state)?;
    }
    // The diff_id covers the whole stream, including the end blocks and record padding.
    let mut tap = archive.into_inner();
    io::copy(&mut tap, &mut io::sink()).map_err(|source| StorageError::LayerRead { source })?;
    if let Some(pool) = x.pool.take() {
        x.size += pool
            .finish()
            .map_err(|e| StorageError::io("copying into", &e.path, e.source))?;
    }
    x.finish_dir_times()?;

    let (recipe_writer, recipe_err, stream_ok, hasher) = {
        let mut st = state.borrow_mut();
        (
            st.recipe.take(),
            st.recipe_err.take(),
            st.recipe_ok,
            st.hasher.take().unwrap_or_default(),
        )
    };
    if let Some(e) = recipe_err {
        return Err(StorageError::io(
            "writing layer recipe",
            recipe.unwrap_or(dest),
            e,
        ));
    }
    let mut recipe_ok = stream_ok && x.recipe_ok;
    if let (Some(w), Some(p)) = (recipe_writer, recipe) {
        w.finish().ctx("writing", p)?;
        if !recipe_ok {
            std::fs::remove_file(p).ctx("removing", p)?;
        } else if !x.stashed.is_empty() {
            let index = p.with_file_name(STASH_INDEX);
            let json = serde_json::to_vec(&x.stashed).expect("stash index serialises");
            std::fs::write(&index, json).ctx("writing", &index)?;
        }
    } else {
        recipe_ok = false;
    }
    Ok(Applied {
        diff_id: hasher.finish(),
        size: x.size,
        recipe_ok,
    })
}

/// Splits a tar entry name into a clean relative path; `None` is the root itself.
pub(crate) fn clean_path(raw: &[u8]) -> Result<Option<PathBuf>> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    if raw.first() == Some(&b'/') {
        return Err(StorageError::invalid_layer(format!(
            "entry {:?} has an absolute path",
            shown()
        )));
    }
    let mut out = PathBuf::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                return Err(StorageError::invalid_layer(format!(
                    "entry {:?} escapes the layer",
                    shown()
                )))
            }
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

/// Sets an entry's xattrs with `set`, as Docker does: overlay metadata only comes from
/// whiteout entries, and xattrs the filesystem cannot store or will not let us set
/// (EPERM: trusted.* on overlayfs, restricted user namespaces) are skipped.
fn set_xattrs(
    xattrs: &[(String, Vec<u8>)],
    mut set: impl FnMut(&str, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    for (key, value) in xattrs {
        if key.starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        match set(key, value) {
            Err(e)
                if e.raw_os_error() == Some(Errno::NOTSUP.raw_os_error())
                    || e.raw_os_error() == Some(Errno::PERM.raw_os_error()) => {}
            r => r?,
        }
    }
    Ok(())
}

/// A regular file's owner, mode, xattrs and time, set through its descriptor (the order
/// of [`Extractor::set_meta`]: chown before chmod, which it would clear set-id bits of).
fn set_file_meta(f: &File, m: &EntryMeta) -> io::Result<()> {
    rustix::fs::fchown(
        f,
        Some(rustix::fs::Uid::from_raw(m.uid)),
        Some(rustix::fs::Gid::from_raw(m.gid)),
    )?;
    rustix::fs::fchmod(f, Mode::from_raw_mode(m.mode & 0o7777))?;
    set_xattrs(&m.xattrs, |key, value| {
        Ok(rustix::fs::fsetxattr(
            f,
            key,
            value,
            rustix::fs::XattrFlags::empty(),
        )?)
    })?;
    rustix::fs::futimens(f, &fsutil::timestamps(m.mtime.0, m.mtime.1))?;
    Ok(())
}

struct EntryMeta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: (i64, i64),
    xattrs: Vec<(String, Vec<u8>)>,
    /// The content comes from a passed descriptor.
    from_fd: bool,
}

struct Extractor<'a> {
    root: &'a Path,
    root_fd: Rc<OwnedFd>,
    mode: WhiteoutMode,
    cache: Option<(PathBuf, Rc<OwnedFd>)>,
    /// Paths created by this layer (Direct mode only), to tell them from the parent's.
    unpacked: HashSet<PathBuf>,
    /// Regular files whose content the recipe references, with their record index.
    files: HashMap<PathBuf, u64>,
    /// Where files the tar itself overwrites are moved, so the recipe can still read
    /// their first content (`<layer>/stash/<record index>`).
    stash_dir: Option<PathBuf>,
    stash_fd: Option<OwnedFd>,
    stashed: BTreeMap<u64, String>,
    dir_times: Vec<(PathBuf, (i64, i64))>,
    size: u64,
    recipe_ok: bool,
    buf: Vec<u8>,
    /// Owner given to every entry instead of the tar's (`docker cp` without `-a`).
    owner: Option<(u32, u32)>,
    /// Descriptors passed along the stream, for entries whose content is not in it.
    fds: Option<crate::fdpass::FdQueue>,
    /// Copies the content of passed descriptors (made on the first one).
    pool: Option<crate::fdpass::CopyPool>,
}

fn read_err(source: io::Error) -> StorageError {
    StorageError::LayerRead { source }
}

fn parse_pax_time(v: &str) -> Option<(i64, i64)> {
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let sec: i64 = s.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nsec = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    Some((sec, if sec < 0 && nsec > 0 { -nsec } else { nsec }))
}

impl Extractor<'_> {
    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        tap: &Rc<RefCell<TapState>>,
    ) -> Result<()> {
        let etype = entry.header().entry_type();
        if matches!(
            etype,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let Some(rel) = clean_path(&raw_path)? else {
            return Ok(());
        };
        let meta = self.entry_meta(entry)?;
        let name = rel
            .file_name()
            .map(OsStr::as_bytes)
            .unwrap_or_default()
            .to_vec();
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if self.mode != WhiteoutMode::Plain {
            if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
                return self.whiteout(&rel, &parent, target, &meta);
            }
        }
        let pfd = self
            .parent_fd(&parent, &rel, true)?
            .expect("created parent");
        let name = Path::new(OsStr::from_bytes(&name)).to_path_buf();
        let is_dir = etype == tar::EntryType::Directory;
        let replaced_whiteout = self.clear_existing(&pfd, &name, &rel, is_dir)?;
        let at = |e: Errno| StorageError::io("unpacking", self.root.join(&rel), e.into());
        match etype {
            tar::EntryType::Directory => {
                match rustix::fs::mkdirat(&*pfd, &name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(at(e)),
                }
                if replaced_whiteout {
                    // Deleted, then made again in the same layer: hide the lower one.
                    self.mark_opaque(&pfd, &name, &rel)?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let fd = rustix::fs::openat(
                    &*pfd,
                    &name,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(at)?;
                if etype != tar::EntryType::GNUSparse {
                    let record =
                        tap.borrow_mut()
                            .begin_file(&rel, entry.raw_file_position(), entry.size());
                    if let Some(index) = record {
                        self.files.insert(rel.clone(), index);
                    }
                } else {
                    self.recipe_ok = false;
                }
                let mut file = File::from(fd);
                if meta.from_fd {
                    let src = self
                        .fds
                        .as_ref()
                        .and_then(|q| q.borrow_mut().pop_front())
                        .ok_or_else(|| {
                            StorageError::invalid_layer(format!(
                                "no descriptor was passed for {}",
                                rel.display()
                            ))
                        })?;
                    // The content, then the owner, mode, xattrs and time, are set on the
                    // pool's threads, through the file's own descriptor.
                    let path = self.root.join(&rel);
                    let pool = self.pool.get_or_insert_with(crate::fdpass::CopyPool::new);
                    pool.submit(src, file, path, move |f, _| set_file_meta(f, &meta))
                        .map_err(|e| StorageError::io("copying into", &e.path, e.source))?;
                    self.mark_unpacked(&rel);
                    return Ok(());
                }
                loop {
                    let n = entry.read(&mut self.buf).map_err(read_err)?;
                    if n == 0 {
                        break;
                    }
                    file.write_all(&self.buf[..n])
                        .ctx("writing", self.root.join(&rel))?;
                    self.size += n as u64;
                }
            }
            tar::EntryType::Link => {
                let target_raw = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                let target = clean_path(&target_raw)?.ok_or_else(|| {
                    StorageError::invalid_layer(format!("hardlink {} has no target", rel.display()))
                })?;
                let missing = || {
                    StorageError::invalid_layer(format!(
                        "hardlink {} points to {}, which is not in the layer",
                        rel.display(),
                        target.display()
                    ))
                };
                let tparent = target.parent().unwrap_or(Path::new(""));
                let tfd = open_dir_beneath(self.root_fd.as_fd(), tparent).map_err(|_| missing())?;
                let tname = target.file_name().ok_or_else(missing)?;
                match rustix::fs::statat(&tfd, tname, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => {}
                    _ => return Err(missing()),
                }
                rustix::fs::linkat(&tfd, tname, &*pfd, &name, AtFlags::empty()).map_err(at)?;
                self.mark_unpacked(&rel);
                return Ok(());
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .unwrap_or_default();
                rustix::fs::symlinkat(OsStr::from_bytes(&target), &*pfd, &name).map_err(at)?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let h = entry.header();
                let (major, minor) = if etype == tar::EntryType::Fifo {
                    (0, 0) // writers often leave the device fields empty for fifos
                } else {
                    (
                        h.device_major().map_err(read_err)?.unwrap_or(0),
                        h.device_minor().map_err(read_err)?.unwrap_or(0),
                    )
                };
                let kind = match etype {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                rustix::fs::mknodat(
                    &*pfd,
                    &name,
                    kind,
                    Mode::from_raw_mode(meta.mode & 0o7777),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(at)?;
            }
            _ => return Ok(()), // unknown entry types are ignored, as Docker does
        }
        self.mark_unpacked(&rel);
        self.set_meta(&pfd, &name, &rel, etype, &meta)
    }

    fn entry_meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<EntryMeta> {
        let (mut uid, mut gid, mut mtime) = (None, None, None);
        let mut xattrs = Vec::new();
        let mut from_fd = false;
        if let Some(exts) = entry.pax_extensions().map_err(read_err)? {
            for ext in exts {
                let ext = ext.map_err(read_err)?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                    continue;
                }
                let value = ext.value().unwrap_or("");
                match key {
                    "uid" => uid = value.parse::<u32>().ok(),
                    "gid" => gid = value.parse::<u32>().ok(),
                    "mtime" => mtime = parse_pax_time(value),
                    crate::fdpass::PAX_FROM_FD => from_fd = self.fds.is_some(),
                    _ => {}
                }
            }
        }
        // Empty numeric fields read as 0, as Go's archive/tar reads them (the header
        // checksum was verified, so this is leniency, not corruption).
        let h = entry.header();
        let uid = uid.unwrap_or_else(|| h.uid().unwrap_or(0) as u32);
        let gid = gid.unwrap_or_else(|| h.gid().unwrap_or(0) as u32);
        let (uid, gid) = self.owner.unwrap_or((uid, gid));
        let mtime = mtime.unwrap_or_else(|| (h.mtime().unwrap_or(0) as i64, 0));
        let mode = h.mode().unwrap_or(0o644);
        Ok(EntryMeta {
            uid,
            gid,
            mode,
            mtime,
            xattrs,
            from_fd,
        })
    }

    fn set_meta(
        &mut self,
        pfd: &OwnedFd,
        name: &Path,
        rel: &Path,
        etype: tar::EntryType,
        m: &EntryMeta,
    ) -> Result<()> {
        let path = self.root.join(rel);
        let symlink = etype == tar::EntryType::Symlink;
        let mode = (!symlink).then_some(m.mode);
        fsutil::set_owner_mode_time(pfd.as_fd(), name, m.uid, m.gid, mode, None)
            .ctx("setting owner and mode of", &path)?;
        set_xattrs(&m.xattrs, |key, value| {
            fsutil::set_xattr(&fd_path(pfd.as_fd(), name), key, value)
        })
        .ctx("setting xattr on", &path)?;
        if etype == tar::EntryType::Directory {
            self.dir_times.push((rel.to_path_buf(), m.mtime));
        } else {
            rustix::fs::utimensat(
                pfd,
                name,
                &fsutil::timestamps(m.mtime.0, m.mtime.1),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| StorageError::io("setting mtime of", &path, e.into()))?;
        }
        Ok(())
    }

    fn mark_unpacked(&mut self, rel: &Path) {
        if self.mode == WhiteoutMode::Direct {
            self.unpacked.insert(rel.to_path_buf());
        }
    }

    /// Removes whatever is at `name` unless both it and the new entry are directories.
    /// Returns whether what was removed is an overlay whiteout.
    fn clear_existing(
        &mut self,
        pfd: &OwnedFd,
        name: &Path,
        rel: &Path,
        new_is_dir: bool,
    ) -> Result<bool> {
        match rustix::fs::statat(pfd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(StorageError::io(
                "inspecting",
                self.root.join(rel),
                e.into(),
            )),
            Ok(st) => {
                let ft = FileType::from_raw_mode(st.st_mode);
                let is_dir = ft == FileType::Directory;
                if is_dir && new_is_dir {
                    return Ok(false);
                }
                if self.mode == WhiteoutMode::Plain && is_dir != new_is_dir {
                    let shown = Path::new("/").join(rel);
                    return Err(StorageError::invalid_layer(if is_dir {
                        format!(
                            "cannot overwrite directory {:?} with non-directory",
                            shown.display().to_string()
                        )
                    } else {
                        format!(
                            "cannot overwrite non-directory {:?} with directory",
                            shown.display().to_string()
                        )
                    }));
                }
                self.remove_at(pfd, name, rel, is_dir)?;
                Ok(ft == FileType::CharacterDevice && st.st_rdev == 0)
            }
        }
    }

    fn mark_opaque(&self, pfd: &OwnedFd, name: &Path, rel: &Path) -> Result<()> {
        fsutil::set_xattr(&fd_path(pfd.as_fd(), name), OPAQUE_XATTR, b"y")
            .ctx("marking opaque", self.root.join(rel))
    }

    /// Moves a file the recipe references out of the way before the tar replaces it.
    fn stash(&mut self, dir: &OwnedFd, name: &Path, rel: &Path) -> Result<()> {
        let Some(index) = self.files.remove(rel) else {
            return Ok(());
        };
        let Some(stash_dir) = self.stash_dir.clone() else {
            self.recipe_ok = false;
            return Ok(());
        };
        if self.stash_fd.is_none() {
            std::fs::create_dir_all(&stash_dir).ctx("creating", &stash_dir)?;
            self.stash_fd = Some(open_dir(&stash_dir).ctx("opening", &stash_dir)?);
        }
        let stash_fd = self.stash_fd.as_ref().expect("stash dir opened");
        rustix::fs::renameat(dir, name, stash_fd, index.to_string()).map_err(|e| {
            StorageError::io("stashing overwritten file", self.root.join(rel), e.into())
        })?;
        self.stashed.insert(index, format!("{STASH_DIR}/{index}"));
        Ok(())
    }

    fn remove_at(&mut self, pfd: &OwnedFd, name: &Path, rel: &Path, is_dir: bool) -> Result<()> {
        if is_dir {
            let inside: Vec<PathBuf> = self
                .files
                .keys()
                .filter(|f| f.starts_with(rel))
                .cloned()
                .collect();
            for f in inside {
                let parent = f.parent().unwrap_or(Path::new(""));
                let Some(fname) = f.file_name() else { continue };
                let fd = open_dir_beneath(self.root_fd.as_fd(), parent)
                    .ctx("opening", self.root.join(parent))?;
                self.stash(&fd, Path::new(fname), &f)?;
            }
            fsutil::remove_any(&fd_path(pfd.as_fd(), name)).ctx("removing", self.root.join(rel))?;
            self.cache = None;
        } else if self.files.contains_key(rel) {
            self.stash(pfd, name, rel)?;
        } else {
            rustix::fs::unlinkat(pfd, name, AtFlags::empty())
                .map_err(|e| StorageError::io("removing", self.root.join(rel), e.into()))?;
        }
        Ok(())
    }

    /// Opens the parent directory of an entry without following symlinks, creating missing
    /// directories when `create`. `Ok(None)`: it does not exist and `create` is false.
    fn parent_fd(
        &mut self,
        parent: &Path,
        entry: &Path,
        create: bool,
    ) -> Result<Option<Rc<OwnedFd>>> {
        if parent.as_os_str().is_empty() {
            return Ok(Some(self.root_fd.clone()));
        }
        if let Some((p, fd)) = &self.cache {
            if p == parent {
                return Ok(Some(fd.clone()));
            }
        }
        let fd = match open_dir_beneath(self.root_fd.as_fd(), parent) {
            Ok(fd) => Rc::new(fd),
            Err(_) => match self.walk_parent(parent, entry, create)? {
                Some(fd) => fd,
                None => return Ok(None),
            },
        };
        self.cache = Some((parent.to_path_buf(), fd.clone()));
        Ok(Some(fd))
    }

    fn walk_parent(
        &mut self,
        parent: &Path,
        entry: &Path,
        create: bool,
    ) -> Result<Option<Rc<OwnedFd>>> {
        let mut cur = self.root_fd.clone();
        let mut acc = PathBuf::new();
        for comp in parent.components() {
            let comp = comp.as_os_str();
            acc.push(comp);
            let io_err = |e: Errno| {
                StorageError::io("creating parent directory", self.root.join(&acc), e.into())
            };
            match rustix::fs::statat(&*cur, comp, AtFlags::SYMLINK_NOFOLLOW) {
                Err(Errno::NOENT) => {
                    if !create {
                        return Ok(None);
                    }
                    rustix::fs::mkdirat(&*cur, comp, Mode::from_raw_mode(0o755)).map_err(io_err)?;
                    self.mark_unpacked(&acc.clone());
                }
                Err(e) => return Err(io_err(e)),
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
                Ok(st)
                    if self.mode == WhiteoutMode::Overlay
                        && create
                        && FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
                        && st.st_rdev == 0 =>
                {
                    // A directory deleted earlier in this layer is made again: opaque.
                    rustix::fs::unlinkat(&*cur, comp, AtFlags::empty()).map_err(io_err)?;
                    rustix::fs::mkdirat(&*cur, comp, Mode::from_raw_mode(0o755)).map_err(io_err)?;
                    fsutil::set_xattr(&fd_path(cur.as_fd(), Path::new(comp)), OPAQUE_XATTR, b"y")
                        .ctx("marking opaque", self.root.join(&acc))?;
                }
                Ok(_) if self.mode == WhiteoutMode::Plain => {
                    return Err(StorageError::invalid_layer(format!(
                        "cannot overwrite non-directory {:?} with directory (symlinks in the destination are not followed)",
                        Path::new("/").join(&acc).display().to_string()
                    )));
                }
                Ok(_) => {
                    let from_parent_layer =
                        self.mode == WhiteoutMode::Direct && !self.unpacked.contains(&acc);
                    if !from_parent_layer {
                        return Err(StorageError::invalid_layer(format!(
                            "entry {} is below {}, which is not a directory (symlinks are never followed)",
                            entry.display(),
                            acc.display()
                        )));
                    }
                    if !create {
                        return Ok(None);
                    }
                    // A non-directory of the parent layer is replaced by a directory, as
                    // an overlay upper directory hides a lower non-directory.
                    rustix::fs::unlinkat(&*cur, comp, AtFlags::empty()).map_err(io_err)?;
                    rustix::fs::mkdirat(&*cur, comp, Mode::from_raw_mode(0o755)).map_err(io_err)?;
                    self.mark_unpacked(&acc.clone());
                }
            }
            let next = rustix::fs::openat(
                &*cur,
                comp,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| StorageError::io("opening", self.root.join(&acc), e.into()))?;
            cur = Rc::new(next);
        }
        Ok(Some(cur))
    }

    fn whiteout(
        &mut self,
        rel: &Path,
        parent: &Path,
        target: &[u8],
        meta: &EntryMeta,
    ) -> Result<()> {
        if rel.file_name().map(OsStr::as_bytes) == Some(OPAQUE_MARKER.as_bytes()) {
            return self.opaque(parent, rel);
        }
        if target.starts_with(WHITEOUT_PREFIX.as_bytes())
            || target.is_empty()
            || target == b"."
            || target == b".."
        {
            return Ok(()); // AUFS metadata (.wh..wh.plnk and friends) is skipped
        }
        let target_name = Path::new(OsStr::from_bytes(target));
        let target_rel = parent.join(target_name);
        match self.mode {
            WhiteoutMode::Overlay => {
                let pfd = self.parent_fd(parent, rel, true)?.expect("created parent");
                self.clear_existing(&pfd, target_name, &target_rel, false)?;
                rustix::fs::mknodat(
                    &*pfd,
                    target_name,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    0,
                )
                .map_err(|e| {
                    StorageError::io("creating whiteout", self.root.join(&target_rel), e.into())
                })?;
                fsutil::set_owner_mode_time(
                    pfd.as_fd(),
                    target_name,
                    meta.uid,
                    meta.gid,
                    None,
                    Some(meta.mtime),
                )
                .ctx("setting owner of whiteout", self.root.join(&target_rel))?;
            }
            WhiteoutMode::Direct => {
                let Some(pfd) = self.parent_fd(parent, rel, false)? else {
                    return Ok(());
                };
                match rustix::fs::statat(&*pfd, target_name, AtFlags::SYMLINK_NOFOLLOW) {
                    Err(Errno::NOENT) => {}
                    Err(e) => {
                        return Err(StorageError::io(
                            "inspecting",
                            self.root.join(&target_rel),
                            e.into(),
                        ))
                    }
                    Ok(st) => {
                        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                        self.remove_at(&pfd, target_name, &target_rel, is_dir)?;
                    }
                }
            }
            WhiteoutMode::Plain => unreachable!("plain extraction has no whiteouts"),
        }
        Ok(())
    }

    fn opaque(&mut self, dir: &Path, rel: &Path) -> Result<()> {
        match self.mode {
            WhiteoutMode::Overlay => {
                let fd = self.parent_fd(dir, rel, true)?.expect("created parent");
                rustix::fs::fsetxattr(&*fd, OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty())
                    .map_err(|e| {
                        StorageError::io("marking opaque", self.root.join(dir), e.into())
                    })?;
            }
            WhiteoutMode::Plain => {}
            WhiteoutMode::Direct => {
                let Some(fd) = self.parent_fd(dir, rel, false)? else {
                    return Ok(());
                };
                let dir_path = fd_path(fd.as_fd(), Path::new(""));
                for name in fsutil::sorted_names(&dir_path).ctx("listing", self.root.join(dir))? {
                    let child = dir.join(&name);
                    if !self.unpacked.contains(&child) {
                        fsutil::remove_any(&dir_path.join(&name))
                            .ctx("removing", self.root.join(&child))?;
                        self.cache = None;
                    }
                }
            }
        }
        Ok(())
    }

    /// Directory mtimes are set last: creating children changes them.
    fn finish_dir_times(&mut self) -> Result<()> {
        self.cache = None;
        for (rel, (sec, nsec)) in std::mem::take(&mut self.dir_times) {
            let parent = rel.parent().unwrap_or(Path::new(""));
            let Some(name) = rel.file_name() else {
                continue;
            };
            let Ok(pfd) = open_dir_beneath(self.root_fd.as_fd(), parent) else {
                continue;
            };
            match rustix::fs::utimensat(
                &pfd,
                name,
                &fsutil::timestamps(sec, nsec),
                AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => {
                    return Err(StorageError::io(
                        "setting mtime of",
                        self.root.join(&rel),
                        e.into(),
                    ))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_refuses_escapes_and_normalises() {
        assert_eq!(clean_path(b"./a/b/").unwrap(), Some(PathBuf::from("a/b")));
        assert_eq!(clean_path(b"./").unwrap(), None);
        assert_eq!(clean_path(b".").unwrap(), None);
        assert!(clean_path(b"/etc/passwd").is_err());
        assert!(clean_path(b"a/../../etc").is_err());
        assert!(clean_path(b"..").is_err());
    }

    #[test]
    fn pax_times_keep_nanoseconds() {
        assert_eq!(
            parse_pax_time("1700000000.5"),
            Some((1700000000, 500_000_000))
        );
        assert_eq!(parse_pax_time("12"), Some((12, 0)));
        assert_eq!(parse_pax_time("x"), None);
    }
}
