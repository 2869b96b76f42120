//! Files in and out of containers: `docker cp` (the archive endpoints), `export`, `diff`.
//!
//! Paths are resolved the way the container sees them: symlinks are followed inside the
//! container's root, and a path under a volume or bind mount lands in that mount's source.
//! Writes then go through berth-storage's confined extraction, which never follows a
//! symlink, so neither a hostile archive nor a hostile symlink in the container can reach
//! the host's files.

use crate::Engine;
use berth_core::container::{Container, MountType};
use berth_core::{Error, Result};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// `X-Docker-Container-Path-Stat`: what `docker cp` learns about a path first.
#[derive(Debug, Clone, PartialEq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits.
    pub mode: u32,
    pub mtime: chrono::DateTime<chrono::Utc>,
    pub link_target: String,
}

/// Go `os.FileMode` type bits.
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHARDEV: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

pub fn go_file_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let m = meta.permissions().mode();
    let mut out = m & 0o777;
    let ft = meta.file_type();
    if ft.is_dir() {
        out |= GO_DIR;
    } else if ft.is_symlink() {
        out |= GO_SYMLINK;
    } else if ft.is_fifo() {
        out |= GO_PIPE;
    } else if ft.is_socket() {
        out |= GO_SOCKET;
    } else if ft.is_char_device() {
        out |= GO_DEVICE | GO_CHARDEV;
    } else if ft.is_block_device() {
        out |= GO_DEVICE;
    }
    if m & 0o4000 != 0 {
        out |= GO_SETUID;
    }
    if m & 0o2000 != 0 {
        out |= GO_SETGID;
    }
    if m & 0o1000 != 0 {
        out |= GO_STICKY;
    }
    out
}

/// A container's filesystem as the container sees it, from the host.
pub(crate) struct ContainerFs {
    rootfs: PathBuf,
    read_only_root: bool,
    /// (destination, source, read-only), longest destination first.
    mounts: Vec<(PathBuf, PathBuf, bool)>,
    unmount_key: Option<(Arc<berth_storage::Storage>, String)>,
}

impl Drop for ContainerFs {
    fn drop(&mut self) {
        if let Some((storage, key)) = self.unmount_key.take() {
            let _ = storage.unmount_rw(&key);
        }
    }
}

/// Where a container path lives on the host.
pub(crate) struct Resolved {
    pub host: PathBuf,
    pub read_only: bool,
    /// The mount (or rootfs) directory the path is inside, for confinement.
    pub base: PathBuf,
}

impl ContainerFs {
    fn base_of(&self, vpath: &Path) -> (PathBuf, PathBuf, bool) {
        for (dest, src, ro) in &self.mounts {
            if let Ok(rest) = vpath.strip_prefix(dest) {
                return (src.clone(), rest.to_path_buf(), *ro);
            }
        }
        (
            self.rootfs.clone(),
            vpath.strip_prefix("/").unwrap_or(vpath).to_path_buf(),
            self.read_only_root,
        )
    }

    /// Resolves a container path. Symlinks in the middle are always followed (inside the
    /// container); the last element only with `follow_last`.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<Resolved> {
        let mut pending: Vec<std::ffi::OsString> = Vec::new();
        for c in Path::new(path).components().rev() {
            match c {
                Component::Normal(n) => pending.push(n.to_os_string()),
                Component::ParentDir => pending.push("..".into()),
                _ => {}
            }
        }
        let mut vpath = PathBuf::from("/");
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                vpath.pop();
                continue;
            }
            let candidate = vpath.join(&part);
            let (base, rel, _) = self.base_of(&candidate);
            let host = base.join(&rel);
            let last = pending.is_empty();
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() && (!last || follow_last) => {
                    hops += 1;
                    if hops > 40 {
                        return Err(Error::invalid(format!(
                            "too many levels of symbolic links: {path}"
                        )));
                    }
                    let target = std::fs::read_link(&host)?;
                    if target.is_absolute() {
                        vpath = PathBuf::from("/");
                    }
                    for c in target.components().rev() {
                        match c {
                            Component::Normal(n) => pending.push(n.to_os_string()),
                            Component::ParentDir => pending.push("..".into()),
                            _ => {}
                        }
                    }
                }
                _ => vpath = candidate,
            }
        }
        let (base, rel, ro) = self.base_of(&vpath);
        Ok(Resolved {
            host: base.join(rel),
            read_only: ro,
            base,
        })
    }
}

fn not_found(path: &str, c: &Container) -> Error {
    Error::not_found(format!(
        "Could not find the file {path} in container {}",
        c.name
    ))
}

/// Unpacks into a resolved directory, with the owner every entry gets (if any).
type Extract =
    Box<dyn FnOnce(&Path, Option<(u32, u32)>) -> berth_storage::error::Result<()> + Send>;

impl Engine {
    /// The container's filesystem, mounted for the time of the operation when stopped.
    pub(crate) fn container_fs(&self, c: &Container) -> Result<ContainerFs> {
        let was_mounted = self.storage.rw_mounted(&c.layer_key);
        let rootfs = self.storage.mount_rw(&c.layer_key)?;
        let mut mounts: Vec<(PathBuf, PathBuf, bool)> = c
            .mounts
            .iter()
            .filter(|m| m.typ != MountType::Tmpfs)
            .map(|m| {
                (
                    PathBuf::from(&m.destination),
                    PathBuf::from(&m.source),
                    !m.rw,
                )
            })
            .collect();
        mounts.sort_by_key(|(d, _, _)| std::cmp::Reverse(d.components().count()));
        Ok(ContainerFs {
            rootfs,
            read_only_root: c.host_config.readonly_rootfs,
            mounts,
            unmount_key: (!was_mounted && !c.state.is_running())
                .then(|| (self.storage.clone(), c.layer_key.clone())),
        })
    }

    fn stat_resolved(&self, c: &Container, path: &str, r: &Resolved) -> Result<PathStat> {
        let meta = std::fs::symlink_metadata(&r.host).map_err(|_| not_found(path, c))?;
        let link_target = if meta.file_type().is_symlink() {
            std::fs::read_link(&r.host)
                .map(|t| t.display().to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let name = Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        let mtime = meta
            .modified()
            .map(chrono::DateTime::<chrono::Utc>::from)
            .unwrap_or_default();
        Ok(PathStat {
            name,
            size: meta.len() as i64,
            mode: go_file_mode(&meta),
            mtime,
            link_target,
        })
    }

    /// `HEAD /containers/{id}/archive`.
    pub async fn stat_container_path(self: &Arc<Self>, name: &str, path: &str) -> Result<PathStat> {
        let c = self.container(name)?.snapshot();
        let engine = self.clone();
        let path = path.to_string();
        Self::blocking(move || {
            let fs = engine.container_fs(&c)?;
            let r = fs.resolve(&path, false)?;
            engine.stat_resolved(&c, &path, &r)
        })
        .await
    }

    /// `GET /containers/{id}/archive`: the stat and a writer producing the tar.
    pub async fn read_container_path(
        self: &Arc<Self>,
        name: &str,
        path: &str,
    ) -> Result<(PathStat, crate::ArchiveJob)> {
        self.read_path_with(name, path, |fs, host, name| {
            Box::new(move |w: &mut dyn std::io::Write| {
                let _keep_mounted = &fs;
                berth_storage::copy::archive_path(&host, &name, w).map_err(Error::from)
            }) as crate::ArchiveJob
        })
        .await
    }

    /// [`Self::read_container_path`] for a local client: the tar goes on its socket with
    /// regular files passed as descriptors (see `berth_storage::fdpass`).
    pub async fn read_container_path_fds(
        self: &Arc<Self>,
        name: &str,
        path: &str,
    ) -> Result<(PathStat, crate::SocketArchiveJob)> {
        self.read_path_with(name, path, |fs, host, name| {
            Box::new(move |sock| {
                let _keep_mounted = &fs;
                berth_storage::fdpass::archive_path_to_socket(&host, &name, sock)
                    .map_err(Error::from)
            }) as crate::SocketArchiveJob
        })
        .await
    }

    /// Resolves `path` in the container and makes the job that archives it from the
    /// mounted filesystem (kept mounted by the job), the host path and the entry name.
    async fn read_path_with<J: Send + 'static>(
        self: &Arc<Self>,
        name: &str,
        path: &str,
        job: impl FnOnce(ContainerFs, PathBuf, String) -> J + Send + 'static,
    ) -> Result<(PathStat, J)> {
        let c = self.container(name)?.snapshot();
        let engine = self.clone();
        let path = path.to_string();
        Self::blocking(move || {
            let fs = engine.container_fs(&c)?;
            let r = fs.resolve(&path, false)?;
            let stat = engine.stat_resolved(&c, &path, &r)?;
            // `/dir/.` copies the directory's contents under its own name.
            let name = if path.ends_with("/.") {
                ".".to_string()
            } else {
                stat.name.clone()
            };
            Ok((stat, job(fs, r.host, name)))
        })
        .await
    }

    /// `PUT /containers/{id}/archive`: unpacks a tar into the directory at `path`.
    pub async fn write_container_path(
        self: &Arc<Self>,
        name: &str,
        path: &str,
        tar: Box<dyn std::io::Read + Send>,
        copy_uid_gid: bool,
    ) -> Result<()> {
        self.write_path_with(
            name,
            path,
            copy_uid_gid,
            Box::new(move |dest, owner| berth_storage::copy::extract_into(tar, dest, owner)),
        )
        .await
    }

    /// [`Self::write_container_path`] from a local client that passes the files' content as
    /// descriptors along the tar (see `berth_storage::fdpass`).
    pub async fn write_container_path_fds(
        self: &Arc<Self>,
        name: &str,
        path: &str,
        sock: std::os::unix::net::UnixStream,
        prefix: Vec<u8>,
        copy_uid_gid: bool,
    ) -> Result<()> {
        self.write_path_with(
            name,
            path,
            copy_uid_gid,
            Box::new(move |dest, owner| {
                berth_storage::fdpass::extract_from_socket(sock, prefix, dest, owner)
            }),
        )
        .await
    }

    async fn write_path_with(
        self: &Arc<Self>,
        name: &str,
        path: &str,
        copy_uid_gid: bool,
        extract: Extract,
    ) -> Result<()> {
        let c = self.container(name)?.snapshot();
        let engine = self.clone();
        let path = path.to_string();
        Self::blocking(move || {
            let fs = engine.container_fs(&c)?;
            let r = fs.resolve(&path, true)?;
            let meta = std::fs::metadata(&r.host).map_err(|_| not_found(&path, &c))?;
            if !meta.is_dir() {
                return Err(Error::invalid("extraction point is not a directory"));
            }
            if r.read_only {
                return Err(Error::new(
                    berth_core::ErrorKind::Forbidden,
                    if r.base == fs.rootfs {
                        "container rootfs is marked read-only"
                    } else {
                        "mounted volume is marked read-only"
                    },
                ));
            }
            let owner = if copy_uid_gid { None } else { Some((0, 0)) };
            extract(&r.host, owner).map_err(Error::from)
        })
        .await
    }

    /// `GET /containers/{id}/export`: the container's filesystem (not its volumes).
    pub async fn export_container(self: &Arc<Self>, name: &str) -> Result<crate::ArchiveJob> {
        let c = self.container(name)?.snapshot();
        let engine = self.clone();
        Self::blocking(move || {
            let fs = engine.container_fs(&c)?;
            let skip: Vec<PathBuf> = c
                .mounts
                .iter()
                .map(|m| PathBuf::from(&m.destination))
                .collect();
            let job: crate::ArchiveJob = Box::new(move |w: &mut dyn std::io::Write| {
                let skip_refs: Vec<&Path> = skip.iter().map(PathBuf::as_path).collect();
                berth_storage::copy::archive_tree(&fs.rootfs, &skip_refs, w).map_err(Error::from)
            });
            Ok(job)
        })
        .await
    }

    /// `GET /containers/{id}/changes`: (kind 0 modified, 1 added, 2 deleted; path).
    pub async fn container_changes(self: &Arc<Self>, name: &str) -> Result<Vec<(u8, String)>> {
        let c = self.container(name)?.snapshot();
        let storage = self.storage.clone();
        Self::blocking(move || {
            let changes = storage.rw_changes(&c.layer_key)?;
            Ok(changes
                .into_iter()
                .map(|ch| (ch.kind.api_kind(), ch.path))
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fs_with(root: &Path, mounts: Vec<(&str, &Path)>) -> ContainerFs {
        ContainerFs {
            rootfs: root.to_path_buf(),
            read_only_root: false,
            mounts: mounts
                .into_iter()
                .map(|(d, s)| (PathBuf::from(d), s.to_path_buf(), false))
                .collect(),
            unmount_key: None,
        }
    }

    #[test]
    fn hostile_symlinks_resolve_inside_the_container() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        symlink("/etc", root.path().join("evil")).unwrap();
        symlink("../../../../../../etc", root.path().join("evil2")).unwrap();
        let fs = fs_with(root.path(), vec![]);
        assert_eq!(
            fs.resolve("/evil/passwd", true).unwrap().host,
            root.path().join("etc/passwd")
        );
        assert_eq!(
            fs.resolve("/evil2/passwd", true).unwrap().host,
            root.path().join("etc/passwd")
        );
        assert_eq!(
            fs.resolve("/evil", true).unwrap().host,
            root.path().join("etc")
        );
        assert_eq!(
            fs.resolve("/evil", false).unwrap().host,
            root.path().join("evil")
        );
    }

    #[test]
    fn paths_under_mounts_go_to_their_sources() {
        let root = tempfile::tempdir().unwrap();
        let vol = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("data")).unwrap();
        let fs = fs_with(root.path(), vec![("/data", vol.path())]);
        assert_eq!(
            fs.resolve("/data/x", true).unwrap().host,
            vol.path().join("x")
        );
        symlink("/data", root.path().join("link")).unwrap();
        assert_eq!(
            fs.resolve("/link/y", true).unwrap().host,
            vol.path().join("y")
        );
    }

    #[test]
    fn go_modes_mark_directories_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let m = std::fs::symlink_metadata(d.path()).unwrap();
        assert_eq!(go_file_mode(&m) & GO_DIR, GO_DIR);
        symlink("x", d.path().join("l")).unwrap();
        let m = std::fs::symlink_metadata(d.path().join("l")).unwrap();
        assert_eq!(go_file_mode(&m) & GO_SYMLINK, GO_SYMLINK);
    }
}
