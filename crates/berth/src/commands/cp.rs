//! `cp`: copies between a container and the local filesystem through
//! `HEAD|GET|PUT /containers/{id}/archive`, with docker's copy semantics (moby's
//! `pkg/archive` copy rules).
//!
//! Both directions move a tar whose entries are named after the source's last path element
//! (`dir/…`, or `./…` for `dir/.`). Before extracting, [`prepare`] decides from the source
//! and destination what docker decides: a destination directory that exists receives the
//! entries as they are; otherwise the entries are renamed (rebased) to the destination's
//! name and extracted into its parent. The container side states paths with the
//! `X-Docker-Container-Path-Stat` header (base64 JSON with Go `os.FileMode` bits).

use super::{esc, Ctx};
use crate::client::{empty_body, reader_body, Client, ClientError};
use crate::flags::Parsed;
use base64::Engine as _;
use serde_json::Value as Json;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Go's `os.ModeDir`, `os.ModeSymlink`, `os.ModeDevice`, `os.ModeIrregular`.
pub const MODE_DIR: u64 = 1 << 31;
pub const MODE_SYMLINK: u64 = 1 << 27;
pub const MODE_DEVICE: u64 = 1 << 26;
pub const MODE_IRREGULAR: u64 = 1 << 19;

/// What the daemon says about a container path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u64,
    pub link_target: String,
}

impl PathStat {
    /// Decodes the `X-Docker-Container-Path-Stat` header.
    pub fn from_header(value: &str) -> anyhow::Result<Self> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(value.trim()))?;
        let v: Json = serde_json::from_slice(&raw)?;
        Ok(Self {
            name: v["name"].as_str().unwrap_or("").to_string(),
            size: v["size"].as_i64().unwrap_or(0),
            mode: v["mode"].as_u64().unwrap_or(0),
            link_target: v["linkTarget"].as_str().unwrap_or("").to_string(),
        })
    }

    pub fn is_dir(&self) -> bool {
        self.mode & MODE_DIR != 0
    }
}

/// Splits `container:path`; absolute paths and `./x:y` are local.
pub fn split_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

fn has_trailing_sep(p: &str) -> bool {
    p.ends_with('/')
}

fn specifies_current_dir(p: &str) -> bool {
    p == "." || p.ends_with("/.")
}

/// Go's `filepath.Clean` for slash paths.
pub fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// moby's `SplitPathDirEntry`: dir and base of a cleaned path, keeping a trailing `/.`.
pub fn split_dir_entry(p: &str) -> (String, String) {
    let mut cleaned = clean(p);
    if specifies_current_dir(p) {
        cleaned = if cleaned == "/" {
            "/.".to_string()
        } else {
            format!("{cleaned}/.")
        };
    }
    match cleaned.rfind('/') {
        Some(0) => ("/".to_string(), cleaned[1..].to_string()),
        Some(i) => (cleaned[..i].to_string(), cleaned[i + 1..].to_string()),
        None => (".".to_string(), cleaned),
    }
}

/// moby's `PreserveTrailingDotOrSeparator`.
fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_string();
    if specifies_current_dir(original) && !specifies_current_dir(&out) {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push('.');
    }
    if has_trailing_sep(original) && !has_trailing_sep(&out) {
        out.push('/');
    }
    out
}

/// An absolute local path, keeping docker's meaningful trailing `/` or `/.`.
pub fn resolve_local(p: &str) -> anyhow::Result<String> {
    let abs = if p.starts_with('/') {
        clean(p)
    } else {
        let cwd = std::env::current_dir()?;
        clean(&format!("{}/{p}", cwd.display()))
    };
    Ok(preserve_trailing(&abs, p))
}

/// moby's `GetRebaseName`.
pub fn rebase_name(path: &str, resolved: &str) -> (String, String) {
    let mut resolved = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&resolved) {
        resolved.push_str("/.");
    }
    if has_trailing_sep(path) && !has_trailing_sep(&resolved) {
        resolved.push('/');
    }
    let base = |s: &str| split_dir_entry(s).1;
    let rebase = if base(path) != base(&resolved) {
        base(path)
    } else {
        String::new()
    };
    (resolved, rebase)
}

/// One side of a copy: moby's `CopyInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyInfo {
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
    pub rebase_name: String,
}

/// Errors worded as moby's archive package words them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CopyError {
    #[error("cannot copy directory")]
    CannotCopyDir,
    #[error("no such directory")]
    DirNotExists,
    #[error("not a directory")]
    NotDirectory,
}

/// How to extract the source archive: into which directory, renaming which base name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub dst_dir: String,
    /// `(old, new)` first-element rename for every entry, when needed.
    pub rebase: Option<(String, String)>,
}

/// moby's `PrepareArchiveCopy`.
pub fn prepare(src: &CopyInfo, dst: &CopyInfo) -> Result<Prepared, CopyError> {
    let (dst_dir, dst_base) = split_dir_entry(&dst.path);
    let (_, mut src_base) = split_dir_entry(&src.path);
    if !src.rebase_name.is_empty() {
        src_base = src.rebase_name.clone();
    }
    if dst.exists && dst.is_dir {
        return Ok(Prepared {
            dst_dir: dst.path.clone(),
            rebase: None,
        });
    }
    if dst.exists && src.is_dir {
        return Err(CopyError::CannotCopyDir);
    }
    if !dst.exists
        && !src.is_dir
        && (has_trailing_sep(&dst.path) || specifies_current_dir(&dst.path))
    {
        return Err(CopyError::DirNotExists);
    }
    Ok(Prepared {
        dst_dir,
        rebase: Some((src_base, dst_base)),
    })
}

/// moby's `RebaseArchiveEntries` on one name: the first occurrence of `old` becomes `new`
/// (an `old` of `/` means the empty prefix).
pub fn rebase_entry(name: &str, old: &str, new: &str) -> String {
    let old = if old == "/" { "" } else { old };
    name.replacen(old, new, 1)
}

/// moby's `CopyInfoDestinationPath` for a local destination.
pub fn local_destination(path: &str) -> anyhow::Result<CopyInfo> {
    let mut path = path.to_string();
    let original = path.clone();
    let mut n = 0;
    loop {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if !m.file_type().is_symlink() => {
                return Ok(CopyInfo {
                    path,
                    exists: true,
                    is_dir: m.is_dir(),
                    ..Default::default()
                })
            }
            Ok(_) => {
                n += 1;
                if n > 10 {
                    anyhow::bail!("too many symlinks in {original}");
                }
                let target = std::fs::read_link(&path)?.to_string_lossy().into_owned();
                path = if target.starts_with('/') {
                    target
                } else {
                    clean(&format!("{}/{target}", split_dir_entry(&path).0))
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent = split_dir_entry(&path).0;
                let m = std::fs::metadata(&parent).map_err(|e| {
                    anyhow::anyhow!("stat {parent}: {}", crate::opts::io_reason(&e))
                })?;
                if !m.is_dir() {
                    return Err(CopyError::NotDirectory.into());
                }
                return Ok(CopyInfo {
                    path,
                    ..Default::default()
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn safe_relative(name: &str) -> anyhow::Result<PathBuf> {
    let p = Path::new(name);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir | Component::RootDir => {}
            _ => anyhow::bail!("invalid tar entry name {name:?}: breaks out of the destination"),
        }
    }
    Ok(out)
}

/// Extracts a tar into `dir` (docker's `Untar` with `NoLchown` and
/// `NoOverwriteDirNonDir`), renaming entries as `rebase` says.
/// Unpacks a tar at `dir` by docker's rules (the `rebase` renaming first), where entries marked by `berth_storage::fdpass` take their content from the
/// next descriptor of `fds`; returns what those add to the plain stream's byte count.
pub fn untar_with(
    r: impl Read,
    dir: &Path,
    rebase: Option<&(String, String)>,
    fds: Option<berth_storage::fdpass::FdQueue>,
) -> anyhow::Result<i64> {
    let extra = Arc::new(AtomicI64::new(0));
    let mut pool = None;
    let mut ar = tar::Archive::new(r);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    let mut dirs = Vec::new();
    for entry in ar.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = match rebase {
            Some((old, new)) => rebase_entry(&raw, old, new),
            None => raw,
        };
        let rel = safe_relative(&name)?;
        let target = dir.join(&rel);
        let kind = entry.header().entry_type();
        if let Ok(existing) = std::fs::symlink_metadata(&target) {
            if existing.is_dir() && !kind.is_dir() {
                anyhow::bail!(
                    "cannot overwrite directory {:?} with non-directory {:?}",
                    target.display().to_string(),
                    name
                );
            }
            if !existing.is_dir() && kind.is_dir() {
                anyhow::bail!(
                    "cannot overwrite non-directory {:?} with directory {:?}",
                    target.display().to_string(),
                    name
                );
            }
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if kind.is_hard_link() {
            let link = entry
                .link_name()?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let link = match rebase {
                Some((old, new)) => rebase_entry(&link, old, new),
                None => link,
            };
            let _ = std::fs::remove_file(&target);
            std::fs::hard_link(dir.join(safe_relative(&link)?), &target)?;
            continue;
        }
        if let Some(q) = fds.as_ref() {
            if berth_storage::fdpass::is_from_fd(&mut entry)? {
                let src = q
                    .borrow_mut()
                    .pop_front()
                    .ok_or_else(|| anyhow::anyhow!("no descriptor came for {name:?}"))?;
                let pool = pool.get_or_insert_with(berth_storage::fdpass::CopyPool::new);
                copy_passed_file(pool, &entry, src, &target, extra.clone())?;
                continue;
            }
        }
        entry.unpack(&target)?;
        if kind.is_dir() {
            // Directory times are set after their contents are written.
            if let Ok(mtime) = entry.header().mtime() {
                dirs.push((target, mtime));
            }
        }
    }
    // Read the stream to its end (the trailing zero blocks), as docker counts every byte.
    std::io::copy(&mut ar.into_inner(), &mut std::io::sink())?;
    if let Some(pool) = pool {
        pool.finish()?;
    }
    for (d, mtime) in dirs.into_iter().rev() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
        if let Ok(f) = std::fs::File::open(&d) {
            let _ = f.set_modified(t);
        }
    }
    Ok(extra.load(Ordering::Relaxed))
}

/// Creates a marked entry's file and has `pool` copy it from the passed descriptor `src`,
/// then give it the entry's mode and time (as `unpack` would); what the content adds to
/// the plain stream's byte count, minus the marker's, is added to `extra`.
fn copy_passed_file<R: Read>(
    pool: &berth_storage::fdpass::CopyPool,
    entry: &tar::Entry<'_, R>,
    src: std::os::fd::OwnedFd,
    target: &Path,
    extra: Arc<AtomicI64>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let h = entry.header();
    let (mode, mtime) = (h.mode()? & 0o7777, h.mtime()?);
    if std::fs::symlink_metadata(target).is_ok() {
        std::fs::remove_file(target)?;
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)?;
    pool.submit(src, f, target.to_path_buf(), move |f, n| {
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime))?;
        extra.fetch_add(
            berth_storage::fdpass::plain_size_delta(n),
            Ordering::Relaxed,
        );
        Ok(())
    })?;
    Ok(())
}

/// moby's `TarResourceRebase` for a local source: entries named after the source's last
/// element (or its rebase name), directories recursively in lexical order. `top` renames
/// that first element, which is what `RebaseArchiveEntries` does to such a tar.
pub fn tar_local(src: &CopyInfo, top: Option<&str>, w: impl Write) -> anyhow::Result<()> {
    let (dir, base) = split_dir_entry(&src.path);
    let top = match top {
        Some(t) => t.to_string(),
        None if src.rebase_name.is_empty() => base.clone(),
        None => src.rebase_name.clone(),
    };
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    let root = Path::new(&dir).join(&base);
    berth_storage::copy::walk_tree(&mut b, &root, &top, &mut |b, fs, name, _| {
        b.append_path_with_name(fs, name)
    })?;
    b.finish()?;
    Ok(())
}

/// A reader that counts bytes through it, for the `Successfully copied` line.
struct Counting<R> {
    inner: R,
    total: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads an HTTP body as a blocking reader fed by a task (the tar crate reads blocking).
fn body_reader(mut body: hyper::body::Incoming) -> impl Read + Send {
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<bytes::Bytes>>(16);
    tokio::spawn(async move {
        while let Some(c) = crate::client::next_chunk(&mut body).await {
            let item = c.map_err(std::io::Error::other);
            let stop = item.is_err();
            if tx.send(item).is_err() || stop {
                return;
            }
        }
    });
    ChannelReader {
        rx,
        buf: bytes::Bytes::new(),
    }
}

struct ChannelReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    buf: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.buf = b,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

async fn stat_path(
    client: &Client,
    container: &str,
    path: &str,
) -> crate::client::Result<PathStat> {
    let res = client
        .send(
            hyper::Method::HEAD,
            &format!("/containers/{}/archive", esc(container)),
            &[("path", path.to_string())],
            empty_body(),
            &[],
        )
        .await?;
    let header = res
        .headers()
        .get("X-Docker-Container-Path-Stat")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    PathStat::from_header(header).map_err(ClientError::Other)
}

fn validate_mode(mode: u64) -> Option<&'static str> {
    if mode & MODE_DEVICE != 0 {
        Some("got a device")
    } else if mode & MODE_IRREGULAR != 0 {
        Some("got an irregular file")
    } else {
        None
    }
}

fn copied_line(total: u64, to: &str) {
    eprintln!(
        "Successfully copied {} to {to}",
        crate::units::human_size_precision(total as f64, 3)
    );
}

pub async fn cp(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let (source, dest) = (&p.args[0], &p.args[1]);
    if source.is_empty() {
        anyhow::bail!("source can not be empty");
    }
    if dest.is_empty() {
        anyhow::bail!("destination can not be empty");
    }
    // docker prints the summary line only when stdout is a terminal, unless -q.
    let quiet = p.bool("quiet") || !crate::term::stdout_is_tty();
    let follow = p.bool("follow-link");
    match (split_arg(source), split_arg(dest)) {
        ((Some(c), src), (None, dst)) => from_container(ctx, c, src, dst, follow, quiet).await,
        ((None, src), (Some(c), dst)) => {
            to_container(ctx, c, src, dst, follow, quiet, p.bool("archive")).await
        }
        ((Some(_), _), (Some(_), _)) => {
            anyhow::bail!("copying between containers is not supported")
        }
        _ => anyhow::bail!("must specify at least one container source"),
    }
}

async fn from_container(
    ctx: &mut Ctx,
    container: &str,
    src: &str,
    dst: &str,
    follow: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let dst = if dst == "-" {
        dst.to_string()
    } else {
        resolve_local(dst)?
    };
    if dst != "-" {
        // docker's ValidateOutputPath: the parent must exist and be a directory.
        let parent = split_dir_entry(&dst).0;
        match std::fs::metadata(&parent) {
            Ok(m) if !m.is_dir() => {
                anyhow::bail!("invalid output path: {parent:?} is not a directory")
            }
            Err(_) => anyhow::bail!("invalid output path: directory {parent:?} does not exist"),
            _ => {}
        }
    }
    let client = ctx.client().await?.clone();
    let mut src_path = src.to_string();
    let mut rebase = String::new();
    if follow {
        if let Ok(st) = stat_path(&client, container, src).await {
            if st.mode & MODE_SYMLINK != 0 {
                let mut target = st.link_target.clone();
                if !target.starts_with('/') {
                    target = clean(&format!("{}/{target}", split_dir_entry(src).0));
                }
                let (t, r) = rebase_name(src, &target);
                src_path = t;
                rebase = r;
            }
        }
    }
    if dst != "-" {
        if let Some(socket) = client.unix_socket() {
            let api_path = format!(
                "/v{}/containers/{}/berth-archive-fds?path={}",
                client.version(),
                esc(container),
                esc(&src_path)
            );
            let (socket, dst2, src_path, rebase) = (
                socket.to_path_buf(),
                dst.clone(),
                src_path.clone(),
                rebase.clone(),
            );
            let done = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<u64>> {
                let Some((stat, reader)) = super::cp_fds::download(&socket, &api_path)? else {
                    return Ok(None);
                };
                let fds = reader.queue();
                let mut counted = Counting {
                    inner: reader,
                    total: Arc::new(AtomicU64::new(0)),
                };
                let total = counted.total.clone();
                let src_info = CopyInfo {
                    path: src_path,
                    exists: true,
                    is_dir: stat.is_dir(),
                    rebase_name: rebase,
                };
                let extra = untar_copy(&mut counted, src_info, &dst2, Some(fds))?;
                Ok(Some(
                    total.load(Ordering::Relaxed).saturating_add_signed(extra),
                ))
            })
            .await??;
            if let Some(total) = done {
                if !quiet {
                    copied_line(total, &dst);
                }
                return Ok(());
            }
        }
    }
    let res = client
        .send(
            hyper::Method::GET,
            &format!("/containers/{}/archive", esc(container)),
            &[("path", src_path.clone())],
            empty_body(),
            &[],
        )
        .await?;
    let stat = res
        .headers()
        .get("X-Docker-Container-Path-Stat")
        .and_then(|v| v.to_str().ok())
        .map(PathStat::from_header)
        .transpose()?
        .unwrap_or_default();
    let body = res.into_body();
    if dst == "-" {
        let mut body = body;
        let mut out = std::io::stdout().lock();
        while let Some(c) = crate::client::next_chunk(&mut body).await {
            out.write_all(&c?)?;
        }
        out.flush()?;
        return Ok(());
    }
    let src_info = CopyInfo {
        path: src_path,
        exists: true,
        is_dir: stat.is_dir(),
        rebase_name: rebase,
    };
    let total = Arc::new(AtomicU64::new(0));
    let mut reader = Counting {
        inner: body_reader(body),
        total: total.clone(),
    };
    let dst2 = dst.clone();
    let result = tokio::task::spawn_blocking(move || {
        untar_copy(&mut reader, src_info, &dst2, None).map(drop)
    })
    .await?;
    if !quiet {
        copied_line(total.load(Ordering::Relaxed), &dst);
    }
    result
}

/// Unpacks a container's tar of `src_info` at the local `dst` by docker's copy rules;
/// returns what passed descriptors add to the byte count.
fn untar_copy(
    reader: &mut dyn Read,
    src_info: CopyInfo,
    dst: &str,
    fds: Option<berth_storage::fdpass::FdQueue>,
) -> anyhow::Result<i64> {
    // A followed link's entries carry the target's name; rename them back first.
    let mut src_info = src_info;
    let mut pre_rebase = None;
    if !src_info.rebase_name.is_empty() {
        let (_, base) = split_dir_entry(&src_info.path);
        pre_rebase = Some((base, src_info.rebase_name.clone()));
        src_info.path = format!(
            "{}/{}",
            split_dir_entry(&src_info.path).0,
            src_info.rebase_name
        );
        src_info.rebase_name.clear();
    }
    let dst_info = local_destination(dst)?;
    let prepared = prepare(&src_info, &dst_info)?;
    let rebase = match (pre_rebase, prepared.rebase) {
        (Some((a, _)), Some((_, new))) => Some((a, new)),
        (Some(pre), None) => Some(pre),
        (None, r) => r,
    };
    untar_with(reader, Path::new(&prepared.dst_dir), rebase.as_ref(), fds)
}

async fn to_container(
    ctx: &mut Ctx,
    container: &str,
    src: &str,
    dst: &str,
    follow: bool,
    quiet: bool,
    archive: bool,
) -> anyhow::Result<()> {
    let src = if src == "-" {
        src.to_string()
    } else {
        resolve_local(src)?
    };
    let client = ctx.client().await?.clone();
    let mut dst_info = CopyInfo {
        path: dst.to_string(),
        ..Default::default()
    };
    let mut stat = stat_path(&client, container, dst).await;
    if let Ok(st) = &stat {
        if st.mode & MODE_SYMLINK != 0 {
            let mut target = st.link_target.clone();
            if !target.starts_with('/') {
                target = clean(&format!("{}/{target}", split_dir_entry(dst).0));
            }
            dst_info.path = target.clone();
            stat = stat_path(&client, container, &target).await;
            if let Some(e) = stat.as_ref().ok().and_then(|s| validate_mode(s.mode)) {
                anyhow::bail!(
                    "destination \"{container}:{dst}\" must be a directory or a regular file: {e}"
                );
            }
        }
    }
    if let Some(e) = stat.as_ref().ok().and_then(|s| validate_mode(s.mode)) {
        anyhow::bail!(
            "destination \"{container}:{dst}\" must be a directory or a regular file: {e}"
        );
    }
    if let Err(e) = &stat {
        if matches!(
            e,
            ClientError::Connect { .. } | ClientError::Permission { .. }
        ) {
            return Err(stat.unwrap_err().into());
        }
    }
    if let Ok(st) = &stat {
        dst_info.exists = true;
        dst_info.is_dir = st.is_dir();
    }
    let total = Arc::new(AtomicU64::new(0));
    let (dst_dir, body) = if src == "-" {
        if !dst_info.is_dir {
            anyhow::bail!("destination \"{container}:{dst}\" must be a directory");
        }
        (dst_info.path.clone(), reader_body(tokio::io::stdin()))
    } else {
        let src_info = local_source(&src, follow)?;
        let prepared = prepare(&src_info, &dst_info)?;
        if let Some(socket) = client.unix_socket() {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("path", &prepared.dst_dir);
            q.append_pair("noOverwriteDirNonDir", "true");
            if archive {
                q.append_pair("copyUIDGID", "true");
            }
            let api_path = format!(
                "/v{}/containers/{}/berth-archive-fds?{}",
                client.version(),
                esc(container),
                q.finish()
            );
            let (socket, info) = (socket.to_path_buf(), src_info.clone());
            let top = prepared.rebase.as_ref().map(|(_, new)| new.clone());
            let sent = tokio::task::spawn_blocking(move || {
                super::cp_fds::upload(&socket, &api_path, &info, top.as_deref())
            })
            .await??;
            if let super::cp_fds::Sent::Done(total) = sent {
                if !quiet {
                    copied_line(total, &format!("{container}:{}", dst_info.path));
                }
                return Ok(());
            }
        }
        let (r, w) = tokio::io::duplex(1 << 20);
        let rebase = prepared.rebase.clone();
        let counter = total.clone();
        let rt = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            // Large writes: every write to the bridge is a hand-off to the runtime.
            let w = std::io::BufWriter::with_capacity(
                1 << 20,
                tokio_util_bridge::SyncWriter::new(rt, w),
            );
            let mut w = CountingWriter {
                inner: w,
                total: counter,
            };
            let top = rebase.as_ref().map(|(_, new)| new.as_str());
            let res = tar_local(&src_info, top, &mut w)
                .and_then(|()| std::io::Write::flush(&mut w.inner).map_err(Into::into));
            if let Err(e) = res {
                eprintln!("{e:#}");
            }
        });
        (prepared.dst_dir, reader_body(r))
    };
    let mut q = vec![
        ("path", dst_dir),
        ("noOverwriteDirNonDir", "true".to_string()),
    ];
    if archive {
        q.push(("copyUIDGID", "true".to_string()));
    }
    let res = client
        .send(
            hyper::Method::PUT,
            &format!("/containers/{}/archive", esc(container)),
            &q,
            body,
            &[("Content-Type", "text/plain".to_string())],
        )
        .await;
    if !quiet {
        copied_line(
            total.load(Ordering::Relaxed),
            &format!("{container}:{}", dst_info.path),
        );
    }
    res?;
    Ok(())
}

/// moby's `CopyInfoSourcePath` for a local source.
pub fn local_source(path: &str, follow: bool) -> anyhow::Result<CopyInfo> {
    let (resolved, rebase) = if follow {
        let r = std::fs::canonicalize(path.trim_end_matches("/.").trim_end_matches('/'))
            .map_err(|e| anyhow::anyhow!("lstat {path}: {}", crate::opts::io_reason(&e)))?;
        rebase_name(path, &r.to_string_lossy())
    } else {
        let (dir, base) = match path.rfind('/') {
            Some(i) => (&path[..=i], &path[i + 1..]),
            None => ("", path),
        };
        let dir = if dir.is_empty() { "." } else { dir };
        let rdir = std::fs::canonicalize(dir)
            .map_err(|e| anyhow::anyhow!("lstat {dir}: {}", crate::opts::io_reason(&e)))?;
        let rdir = rdir.to_string_lossy();
        let resolved = if rdir == "/" {
            format!("/{base}")
        } else {
            format!("{rdir}/{base}")
        };
        let mut rebase = String::new();
        if has_trailing_sep(path) && split_dir_entry(path).1 != split_dir_entry(&resolved).1 {
            rebase = split_dir_entry(path).1;
        }
        (resolved, rebase)
    };
    let m = std::fs::symlink_metadata(&resolved).map_err(|e| {
        anyhow::anyhow!("lstat {}: {}", clean(&resolved), crate::opts::io_reason(&e))
    })?;
    Ok(CopyInfo {
        path: resolved,
        exists: true,
        is_dir: m.is_dir(),
        rebase_name: rebase,
    })
}

struct CountingWriter<W> {
    inner: W,
    total: Arc<AtomicU64>,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.total.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A blocking `Write` over a tokio duplex half, for tar building on a plain thread.
mod tokio_util_bridge {
    use std::io::Write;
    use tokio::io::AsyncWriteExt;

    pub struct SyncWriter {
        rt: tokio::runtime::Handle,
        w: tokio::io::DuplexStream,
    }

    impl SyncWriter {
        pub fn new(rt: tokio::runtime::Handle, w: tokio::io::DuplexStream) -> Self {
            Self { rt, w }
        }
    }

    impl Write for SyncWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.rt.block_on(self.w.write(buf))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.rt.block_on(self.w.flush())
        }
    }

    impl Drop for SyncWriter {
        fn drop(&mut self) {
            let _ = self.rt.block_on(self.w.shutdown());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_split_into_container_and_path() {
        assert_eq!(split_arg("c1:/etc"), (Some("c1"), "/etc"));
        assert_eq!(split_arg("/abs:x"), (None, "/abs:x"));
        assert_eq!(split_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_arg("file"), (None, "file"));
    }

    #[test]
    fn path_entries_keep_a_trailing_dot() {
        assert_eq!(split_dir_entry("/etc/."), ("/etc".into(), ".".into()));
        assert_eq!(split_dir_entry("/etc/"), ("/".into(), "etc".into()));
        assert_eq!(split_dir_entry("/"), ("/".into(), "".into()));
        assert_eq!(split_dir_entry("a/b"), ("a".into(), "b".into()));
        assert_eq!(preserve_trailing("/x/y", "y/."), "/x/y/.");
        assert_eq!(preserve_trailing("/x/y", "y/"), "/x/y/");
    }

    #[test]
    fn stat_header_decodes_go_file_modes() {
        let h = base64::engine::general_purpose::STANDARD.encode(
            r#"{"name":"etc","size":4096,"mode":2147484141,"mtime":"2024-01-01T00:00:00Z","linkTarget":""}"#,
        );
        let s = PathStat::from_header(&h).unwrap();
        assert!(s.is_dir());
        assert_eq!(s.name, "etc");
        assert_eq!(s.mode & 0o777, 0o755);
    }

    fn info(path: &str, exists: bool, is_dir: bool) -> CopyInfo {
        CopyInfo {
            path: path.into(),
            exists,
            is_dir,
            rebase_name: String::new(),
        }
    }

    #[test]
    fn copies_follow_docker_rules() {
        // file -> existing dir: extracted as is into the dir.
        assert_eq!(
            prepare(&info("/a/f", true, false), &info("/d", true, true)).unwrap(),
            Prepared {
                dst_dir: "/d".into(),
                rebase: None
            }
        );
        // file -> new or existing file: renamed into the parent.
        assert_eq!(
            prepare(&info("/a/f", true, false), &info("/d/g", false, false)).unwrap(),
            Prepared {
                dst_dir: "/d".into(),
                rebase: Some(("f".into(), "g".into()))
            }
        );
        // dir -> new path: the dir takes the new name.
        assert_eq!(
            prepare(&info("/a/src", true, true), &info("/d/new", false, false)).unwrap(),
            Prepared {
                dst_dir: "/d".into(),
                rebase: Some(("src".into(), "new".into()))
            }
        );
        // dir/. -> new path: its contents land in the new dir.
        assert_eq!(
            prepare(&info("/a/src/.", true, true), &info("/d/new", false, false)).unwrap(),
            Prepared {
                dst_dir: "/d".into(),
                rebase: Some((".".into(), "new".into()))
            }
        );
        assert_eq!(
            prepare(&info("/a/src", true, true), &info("/d/file", true, false)),
            Err(CopyError::CannotCopyDir)
        );
        assert_eq!(
            prepare(&info("/a/f", true, false), &info("/d/nodir/", false, false)),
            Err(CopyError::DirNotExists)
        );
    }

    #[test]
    fn rebasing_replaces_the_first_occurrence() {
        assert_eq!(rebase_entry("src/a/src", "src", "new"), "new/a/src");
        assert_eq!(rebase_entry("./x", ".", "new"), "new/x");
        assert_eq!(rebase_entry("/etc", "/", "x"), "x/etc");
    }

    #[test]
    fn local_trees_round_trip_with_rebased_names() {
        let base = std::env::temp_dir().join(format!("berth-cp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("src/sub")).unwrap();
        std::fs::write(base.join("src/a.txt"), "hello\n").unwrap();
        std::fs::write(base.join("src/sub/b"), "x\n").unwrap();
        std::os::unix::fs::symlink("a.txt", base.join("src/link")).unwrap();
        let src = local_source(&format!("{}/src", base.display()), false).unwrap();
        let mut tarball = Vec::new();
        tar_local(&src, None, &mut tarball).unwrap();
        let names: Vec<String> = tar::Archive::new(&tarball[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            ["src/", "src/a.txt", "src/link", "src/sub/", "src/sub/b"]
        );
        let out = base.join("out");
        std::fs::create_dir(&out).unwrap();
        let dst = local_destination(&format!("{}/copy", out.display())).unwrap();
        let prepared = prepare(&src, &dst).unwrap();
        untar_with(
            &tarball[..],
            Path::new(&prepared.dst_dir),
            prepared.rebase.as_ref(),
            None,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("copy/sub/b")).unwrap(),
            "x\n"
        );
        assert_eq!(
            std::fs::read_link(out.join("copy/link")).unwrap(),
            PathBuf::from("a.txt")
        );
        let _ = std::fs::remove_dir_all(&base);
    }
}
