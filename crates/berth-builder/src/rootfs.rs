//! Writing into a root filesystem (a working container's, or the build context's) as if it
//! were `/`: every path is resolved inside the root, symlinks included, so an image whose
//! `/app` links to `/etc` makes `COPY x /app/` write the image's `/etc`, never the host's.
//!
//! - [`resolve`]: a path inside the root → the host path it names;
//! - [`mkdir_all`]: `mkdir -p` inside the root, new directories owned as asked;
//! - [`extract_tar`]: unpacks a tar under a directory of the root (the build context, and
//!   `ADD` of local archives), hashing file contents on the way when asked;
//! - [`copy_tree`]: copies a host file or directory to a path in the root (`COPY`).

use crate::hash::{self, ContentHasher, EntryHash, EntryKind};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

const MAX_LINKS: usize = 255;

/// Splits a path inside the root into its normal components, `..` kept as `..`.
fn parts(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Resolves `path` (as seen inside `root`) to a host path under `root`, following
/// symlinks as if `root` were `/`. The last component need not exist; with `follow_last`
/// false it is not followed when it is a symlink.
pub fn resolve_with(root: &Path, path: &Path, follow_last: bool) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<OsString> = parts(path);
    pending.reverse();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let host = root.join(&candidate);
        let last = pending.is_empty();
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !last) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links resolving {}",
                        path.display()
                    )));
                }
                let target = fs::read_link(&host)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                let mut t = parts(&target);
                t.reverse();
                pending.extend(t);
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

/// [`resolve_with`] following every symlink.
pub fn resolve(root: &Path, path: &Path) -> io::Result<PathBuf> {
    resolve_with(root, path, true)
}

/// Creates `dir` (inside `root`) and its missing parents with `mode`, owned by `owner`
/// when new; returns the host path.
pub fn mkdir_all(root: &Path, dir: &Path, mode: u32, owner: (u32, u32)) -> io::Result<PathBuf> {
    let mut cur = PathBuf::from("/");
    let mut host = root.to_path_buf();
    for c in parts(dir) {
        cur.push(&c);
        host = resolve(root, &cur)?;
        match fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a directory", cur.display()),
                ))
            }
            Err(_) => {
                // A symlink may point at a path whose parents are missing too.
                fs::create_dir_all(&host)?;
                fs::set_permissions(&host, fs::Permissions::from_mode(mode))?;
                std::os::unix::fs::lchown(&host, Some(owner.0), Some(owner.1))?;
            }
        }
    }
    Ok(host)
}

/// Removes whatever is at `host` unless it is a directory and `keep_dir` is set.
fn clear(host: &Path, keep_dir: bool) -> io::Result<bool> {
    match fs::symlink_metadata(host) {
        Ok(m) if m.is_dir() => {
            if keep_dir {
                return Ok(true);
            }
            fs::remove_dir_all(host)?;
        }
        Ok(_) => fs::remove_file(host)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(false)
}

/// Sets the modification (and access) time of `host` without following a symlink.
pub fn set_mtime(host: &Path, secs: i64, nanos: i64) -> io::Result<()> {
    let ts = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nanos as _,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        host,
        &rustix::fs::Timestamps {
            last_access: ts,
            last_modification: ts,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(io::Error::from)
}

/// Ownership of written entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// As recorded in the tar (ADD of an archive).
    FromTar,
    /// Everything owned by this uid:gid.
    Fixed(u32, u32),
}

/// What [`extract_tar`] made: entry hashes by path relative to the destination, when asked.
pub type Hashes = BTreeMap<String, EntryHash>;

/// Unpacks `tar` under `dest` (a directory inside `root`, created if missing).
pub fn extract_tar(
    tar: impl Read,
    root: &Path,
    dest: &Path,
    owner: Owner,
    hash: bool,
) -> io::Result<Hashes> {
    let dir_owner = match owner {
        Owner::Fixed(u, g) => (u, g),
        Owner::FromTar => (0, 0),
    };
    mkdir_all(root, dest, 0o755, dir_owner)?;
    let mut archive = tar::Archive::new(tar);
    let mut hashes = Hashes::new();
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let rel = crate::dockerignore::clean(&raw.to_string_lossy());
        let rel = rel.trim_start_matches('/').to_string();
        if rel == "." || rel.is_empty() {
            continue;
        }
        if rel == ".." || rel.starts_with("../") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("invalid path in archive: {}", raw.display()),
            ));
        }
        let inside = dest.join(&rel);
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = header.mtime().unwrap_or(0) as i64;
        let (uid, gid) = match owner {
            Owner::Fixed(u, g) => (u, g),
            Owner::FromTar => (
                header.uid().unwrap_or(0) as u32,
                header.gid().unwrap_or(0) as u32,
            ),
        };
        if let Some(parent) = inside.parent() {
            mkdir_all(root, parent, 0o755, dir_owner)?;
        }
        let host = resolve_with(root, &inside, false)?;
        let kind = header.entry_type();
        let mut content_hash = [0u8; 32];
        let mut size = 0u64;
        let entry_kind = match kind {
            tar::EntryType::Directory => {
                let existed = clear(&host, true)?;
                if !existed {
                    fs::create_dir(&host)?;
                }
                fs::set_permissions(&host, fs::Permissions::from_mode(mode))?;
                std::os::unix::fs::lchown(&host, Some(uid), Some(gid))?;
                dir_times.push((host.clone(), mtime));
                EntryKind::Dir
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                clear(&host, false)?;
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&host)?;
                let mut hasher = hash.then(ContentHasher::new);
                let mut buf = vec![0u8; 1024 * 1024];
                loop {
                    let n = entry.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    f.write_all(&buf[..n])?;
                    if let Some(h) = hasher.as_mut() {
                        h.update(&buf[..n]);
                    }
                    size += n as u64;
                }
                drop(f);
                if let Some(h) = hasher {
                    content_hash = h.finish();
                }
                std::os::unix::fs::lchown(&host, Some(uid), Some(gid))?;
                fs::set_permissions(&host, fs::Permissions::from_mode(mode))?;
                set_mtime(&host, mtime, 0)?;
                EntryKind::File
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                clear(&host, false)?;
                std::os::unix::fs::symlink(&target, &host)?;
                std::os::unix::fs::lchown(&host, Some(uid), Some(gid))?;
                set_mtime(&host, mtime, 0)?;
                content_hash = hash::digest(target.as_os_str().as_encoded_bytes());
                EntryKind::Symlink
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let target_rel = crate::dockerignore::clean(&target.to_string_lossy());
                let target_rel = target_rel.trim_start_matches('/');
                if target_rel.starts_with("..") {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("invalid hard link target in archive: {}", target.display()),
                    ));
                }
                let source = resolve_with(root, &dest.join(target_rel), false)?;
                clear(&host, false)?;
                fs::hard_link(&source, &host)?;
                if let Some(h) = hashes.get(target_rel) {
                    content_hash = h.content;
                    size = h.size;
                }
                EntryKind::File
            }
            // Devices, fifos and extension headers are not build content.
            _ => continue,
        };
        if hash {
            hashes.insert(
                rel,
                EntryHash {
                    kind: entry_kind,
                    mode,
                    size,
                    content: content_hash,
                },
            );
        }
    }
    // Directory times last: writing inside a directory changes its time.
    for (host, mtime) in dir_times.into_iter().rev() {
        set_mtime(&host, mtime, 0)?;
    }
    Ok(hashes)
}

/// How [`copy_tree`] writes what it copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyOptions {
    pub owner: (u32, u32),
    /// `--chmod`: replaces the mode of every copied file and directory.
    pub chmod: Option<u32>,
}

/// Copies the host file or directory `src` to `dest` inside `root`. A directory's
/// *contents* go into `dest` (created if missing); a file becomes `dest`. Symlinks inside
/// directories are copied as symlinks; times and modes are kept, ownership is `owner`.
pub fn copy_tree(src: &Path, root: &Path, dest: &Path, opts: CopyOptions) -> io::Result<()> {
    let meta = fs::metadata(src)?;
    if meta.is_dir() {
        let host = mkdir_all(
            root,
            dest,
            opts.chmod.unwrap_or(meta.mode() & 0o7777),
            opts.owner,
        )?;
        copy_dir_contents(src, root, dest, &host, opts)?;
        Ok(())
    } else {
        if let Some(parent) = dest.parent() {
            mkdir_all(root, parent, 0o755, opts.owner)?;
        }
        let host = resolve(root, dest)?;
        if fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("cannot overwrite directory {} with a file", dest.display()),
            ));
        }
        copy_entry(src, &meta_of(src, true)?, &host, root, dest, opts)
    }
}

fn meta_of(path: &Path, follow: bool) -> io::Result<fs::Metadata> {
    if follow {
        fs::metadata(path)
    } else {
        fs::symlink_metadata(path)
    }
}

fn copy_dir_contents(
    src: &Path,
    root: &Path,
    dest: &Path,
    dest_host: &Path,
    opts: CopyOptions,
) -> io::Result<()> {
    let mut names: Vec<OsString> = fs::read_dir(src)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let s = src.join(&name);
        let d = dest.join(&name);
        let meta = fs::symlink_metadata(&s)?;
        let mut host = dest_host.join(&name);
        if meta.is_dir() {
            // An existing symlink to a directory (merged /usr) is followed, inside the root.
            if fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink()) {
                host = resolve(root, &d)?;
            }
            let existed = clear(&host, true)?;
            if !existed {
                fs::create_dir(&host)?;
                fs::set_permissions(
                    &host,
                    fs::Permissions::from_mode(opts.chmod.unwrap_or(meta.mode() & 0o7777)),
                )?;
                std::os::unix::fs::lchown(&host, Some(opts.owner.0), Some(opts.owner.1))?;
            }
            copy_dir_contents(&s, root, &d, &host, opts)?;
            set_mtime(&host, meta.mtime(), meta.mtime_nsec())?;
        } else {
            copy_entry(&s, &meta, &host, root, &d, opts)?;
        }
    }
    Ok(())
}

/// Copies one non-directory entry to `host` (replacing what is there).
fn copy_entry(
    src: &Path,
    meta: &fs::Metadata,
    host: &Path,
    _root: &Path,
    _dest: &Path,
    opts: CopyOptions,
) -> io::Result<()> {
    clear(host, false)?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(src)?;
        std::os::unix::fs::symlink(&target, host)?;
        std::os::unix::fs::lchown(host, Some(opts.owner.0), Some(opts.owner.1))?;
    } else if ft.is_file() {
        let mut from = fs::File::open(src)?;
        let mut to = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(host)?;
        io::copy(&mut from, &mut to)?;
        drop(to);
        std::os::unix::fs::lchown(host, Some(opts.owner.0), Some(opts.owner.1))?;
        fs::set_permissions(
            host,
            fs::Permissions::from_mode(opts.chmod.unwrap_or(meta.mode() & 0o7777)),
        )?;
    } else {
        // Sockets, fifos and devices are not copied.
        return Ok(());
    }
    set_mtime(host, meta.mtime(), meta.mtime_nsec())
}

/// Hashes of the entries of a host tree at `path`: `""` for `path` itself, then each
/// entry below it by its relative path (what `COPY --from` hashes for its cache key).
pub fn tree_hashes(path: &Path) -> io::Result<Hashes> {
    let mut out = Hashes::new();
    fn walk(base: &Path, rel: &str, out: &mut Hashes) -> io::Result<()> {
        let p = if rel.is_empty() {
            base.to_path_buf()
        } else {
            base.join(rel)
        };
        let meta = fs::symlink_metadata(&p)?;
        let mode = meta.mode() & 0o7777;
        if meta.is_dir() {
            out.insert(
                rel.to_string(),
                EntryHash {
                    kind: EntryKind::Dir,
                    mode,
                    size: 0,
                    content: [0; 32],
                },
            );
            let mut names: Vec<String> = fs::read_dir(&p)?
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<io::Result<_>>()?;
            names.sort();
            for n in names {
                let child = if rel.is_empty() {
                    n
                } else {
                    format!("{rel}/{n}")
                };
                walk(base, &child, out)?;
            }
        } else if meta.file_type().is_symlink() {
            let t = fs::read_link(&p)?;
            out.insert(
                rel.to_string(),
                EntryHash {
                    kind: EntryKind::Symlink,
                    mode,
                    size: 0,
                    content: hash::digest(t.as_os_str().as_encoded_bytes()),
                },
            );
        } else if meta.is_file() {
            let mut h = ContentHasher::new();
            io::copy(&mut fs::File::open(&p)?, &mut h)?;
            out.insert(
                rel.to_string(),
                EntryHash {
                    kind: EntryKind::File,
                    mode,
                    size: meta.len(),
                    content: h.finish(),
                },
            );
        }
        Ok(())
    }
    // The top is followed when it is a symlink, as COPY follows its sources.
    let top = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    walk(&top, "", &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/etc", root.join("app")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        assert_eq!(
            resolve(root, Path::new("/app/x")).unwrap(),
            root.join("etc/x")
        );
        assert_eq!(
            resolve(root, Path::new("/up/etc")).unwrap(),
            root.join("etc")
        );
        assert_eq!(
            resolve(root, Path::new("/../../x")).unwrap(),
            root.join("x")
        );
        assert_eq!(
            resolve_with(root, Path::new("/app"), false).unwrap(),
            root.join("app")
        );
    }

    #[test]
    fn mkdir_all_creates_only_what_is_missing() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir(root.join("tmp")).unwrap();
        fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        let host = mkdir_all(root, Path::new("/tmp/a/b"), 0o755, (0, 0)).unwrap();
        assert_eq!(host, root.join("tmp/a/b"));
        assert_eq!(
            fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
            0o1777
        );
        fs::write(root.join("file"), b"x").unwrap();
        assert!(mkdir_all(root, Path::new("/file/sub"), 0o755, (0, 0)).is_err());
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o640);
            h.set_mtime(1_600_000_000);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn tars_unpack_with_modes_times_and_hashes() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let tar = tar_of(&[("a/b.txt", b"hello"), ("./c", b"")]);
        let h = extract_tar(&tar[..], root, Path::new("/dst"), Owner::Fixed(0, 0), true).unwrap();
        let m = fs::metadata(root.join("dst/a/b.txt")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!(m.mtime(), 1_600_000_000);
        assert_eq!(fs::read(root.join("dst/a/b.txt")).unwrap(), b"hello");
        assert_eq!(h["a/b.txt"].size, 5);
        assert!(h.contains_key("c"));
    }

    #[test]
    fn tar_entries_cannot_escape_through_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = d.path();
        symlink(outside.path(), root.join("evil")).unwrap();
        let tar = tar_of(&[("evil/x", b"gotcha")]);
        extract_tar(&tar[..], root, Path::new("/"), Owner::Fixed(0, 0), false).unwrap();
        assert!(!outside.path().join("x").exists());
        assert!(root
            .join(outside.path().strip_prefix("/").unwrap())
            .join("x")
            .exists());
    }

    #[test]
    fn copies_take_contents_of_directories_and_keep_symlinks() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("d/inner")).unwrap();
        fs::write(src.path().join("d/inner/f"), b"x").unwrap();
        symlink("inner/f", src.path().join("d/link")).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let opts = CopyOptions {
            owner: (0, 0),
            chmod: None,
        };
        copy_tree(&src.path().join("d"), dst.path(), Path::new("/out"), opts).unwrap();
        assert_eq!(fs::read(dst.path().join("out/inner/f")).unwrap(), b"x");
        assert_eq!(
            fs::read_link(dst.path().join("out/link")).unwrap(),
            PathBuf::from("inner/f")
        );
        copy_tree(
            &src.path().join("d/inner/f"),
            dst.path(),
            Path::new("/single"),
            CopyOptions {
                chmod: Some(0o600),
                ..opts
            },
        )
        .unwrap();
        let m = fs::metadata(dst.path().join("single")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600);
    }

    #[test]
    fn tree_hashes_change_with_content_and_mode() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("x")).unwrap();
        fs::write(d.path().join("x/f"), b"1").unwrap();
        let a = tree_hashes(&d.path().join("x")).unwrap();
        fs::write(d.path().join("x/f"), b"2").unwrap();
        let b = tree_hashes(&d.path().join("x")).unwrap();
        assert_ne!(a["f"], b["f"]);
        fs::set_permissions(d.path().join("x/f"), fs::Permissions::from_mode(0o700)).unwrap();
        let c = tree_hashes(&d.path().join("x")).unwrap();
        assert_ne!(b["f"], c["f"]);
    }
}
