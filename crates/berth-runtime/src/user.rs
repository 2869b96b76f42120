//! Resolves `--user` (`name|uid[:group|gid]`) and `--group-add` against a container's own
//! `/etc/passwd` and `/etc/group`, with Docker's semantics and error messages.
//!
//! The files are read *inside* the rootfs: every symlink is resolved as if the rootfs were
//! `/` (`openat2(RESOLVE_IN_ROOT)`, or an equivalent walk on kernels without it), so an
//! image whose `/etc/passwd` points at `/../../etc/shadow` never makes the daemon read a host
//! file. Only regular files are read, opened non-blocking, so a FIFO cannot hang the daemon.
//!
//! ```no_run
//! # use std::path::Path;
//! let user = berth_runtime::user::resolve_user(Path::new("/rootfs"), "www-data", &[]).unwrap();
//! assert_eq!(user.uid, 33);
//! ```

use berth_core::error::{ErrorKind, HasKind};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

/// The largest id Docker accepts (ids must fit a signed 32-bit integer).
const MAX_ID: u64 = (1 << 31) - 1;
/// Files larger than this are refused rather than read into memory.
const MAX_FILE_BYTES: u64 = 16 << 20;
/// As many symlinks as the kernel follows before `ELOOP`.
const MAX_SYMLINKS: usize = 40;

/// Who a container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// The primary gid first (as Docker passes it), then the groups that list the user in
    /// `/etc/group`, then `--group-add`; without duplicates.
    pub additional_gids: Vec<u32>,
    /// The home directory from `/etc/passwd`, or `/` when the user has no entry.
    pub home: String,
}

/// Why a user or group could not be resolved; the wording is Docker's.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {name}: no matching entries in passwd file")]
    NoSuchUser { name: String },
    #[error("unable to find group {name}: no matching entries in group file")]
    NoSuchGroup { name: String },
    #[error("uids and gids must be in range 0-{MAX_ID}")]
    OutOfRange { value: String },
    #[error("reading {path} in the container's rootfs")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for UserError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Read { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidArgument,
        }
    }
}
crate::error_chain::into_core_error!(UserError);

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// A `user` or `group` half of a user spec.
enum IdArg {
    Numeric(u32),
    Name(String),
}

impl IdArg {
    fn parse(raw: &str) -> Result<Option<IdArg>, UserError> {
        if raw.is_empty() {
            return Ok(None);
        }
        // Anything that looks like a (signed) decimal number is an id, and must be in range.
        let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return match raw.parse::<i64>() {
                Ok(n) if (0..=MAX_ID as i64).contains(&n) => Ok(Some(IdArg::Numeric(n as u32))),
                _ => Err(UserError::OutOfRange {
                    value: raw.to_string(),
                }),
            };
        }
        Ok(Some(IdArg::Name(raw.to_string())))
    }
}

/// Resolves `user_spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, ...) and `group_add`
/// (names or gids) against the files in `rootfs`. A missing file is fine for numeric ids; a
/// name that no entry matches is an error with Docker's message.
pub fn resolve_user(
    rootfs: &Path,
    user_spec: &str,
    group_add: &[String],
) -> Result<ResolvedUser, UserError> {
    let passwd = read_in_root(rootfs, "etc/passwd")?.map(|text| parse_passwd(&text));
    let group = read_in_root(rootfs, "etc/group")?.map(|text| parse_group(&text));
    resolve_with(passwd.as_deref(), group.as_deref(), user_spec, group_add)
}

fn resolve_with(
    passwd: Option<&[PasswdEntry]>,
    group: Option<&[GroupEntry]>,
    user_spec: &str,
    group_add: &[String],
) -> Result<ResolvedUser, UserError> {
    let (user_part, group_part) = user_spec.split_once(':').unwrap_or((user_spec, ""));
    let user_arg = IdArg::parse(user_part)?;
    let group_arg = IdArg::parse(group_part)?;

    let matched = passwd.unwrap_or_default().iter().find(|u| match &user_arg {
        None => u.uid == 0,
        Some(IdArg::Numeric(uid)) => u.uid == *uid,
        Some(IdArg::Name(name)) => u.name == *name,
    });
    let (uid, mut gid, home) = match (matched, &user_arg) {
        (Some(entry), _) => (entry.uid, entry.gid, entry.home.clone()),
        (None, Some(IdArg::Numeric(uid))) => (*uid, 0, String::new()),
        (None, Some(IdArg::Name(name))) => {
            return Err(UserError::NoSuchUser { name: name.clone() })
        }
        (None, None) => (0, 0, String::new()),
    };

    let groups = group.unwrap_or_default();
    let mut additional_gids = Vec::new();
    match &group_arg {
        Some(arg) => gid = lookup_group(groups, arg)?,
        // Supplementary groups only come with the implicit form, as in Docker.
        None => {
            if let Some(entry) = matched {
                additional_gids.extend(
                    groups
                        .iter()
                        .filter(|g| g.members.contains(&entry.name))
                        .map(|g| g.gid),
                );
            }
        }
    }
    additional_gids.insert(0, gid);
    for raw in group_add {
        let arg = IdArg::parse(raw)?.ok_or_else(|| UserError::NoSuchGroup { name: raw.clone() })?;
        additional_gids.push(lookup_group(groups, &arg)?);
    }
    let mut unique = Vec::with_capacity(additional_gids.len());
    for g in additional_gids {
        if !unique.contains(&g) {
            unique.push(g);
        }
    }

    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: unique,
        home: if home.is_empty() {
            "/".to_string()
        } else {
            home
        },
    })
}

/// The gid a group argument names: the first entry that matches, else a bare number as it
/// is; a name no entry has is an error.
fn lookup_group(groups: &[GroupEntry], arg: &IdArg) -> Result<u32, UserError> {
    let found = groups.iter().find(|g| match arg {
        IdArg::Numeric(gid) => g.gid == *gid,
        IdArg::Name(name) => g.name == *name,
    });
    match (found, arg) {
        (Some(entry), _) => Ok(entry.gid),
        (None, IdArg::Numeric(gid)) => Ok(*gid),
        (None, IdArg::Name(name)) => Err(UserError::NoSuchGroup { name: name.clone() }),
    }
}

/// The `:`-separated fields of each line of a passwd or group file, without blank lines and
/// comments.
fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| line.split(':').collect())
}

/// `name:password:uid:gid:gecos:home:shell` lines; lines whose ids do not parse are skipped
/// (rather than read as id 0).
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// `name:password:gid:member,member` lines.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text)
        .filter_map(|f| {
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Reads `rel` (relative to `rootfs`) with symlinks resolved inside `rootfs`; `None` when it
/// does not exist there.
pub(crate) fn read_in_root(rootfs: &Path, rel: &str) -> Result<Option<String>, UserError> {
    let read_err = |source: std::io::Error| UserError::Read {
        path: format!("/{rel}"),
        source,
    };
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| read_err(e.into()))?;
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let opened = match rustix::fs::openat2(
        &root,
        rel,
        flags,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Err(Errno::NOSYS) => open_by_walk(rootfs, Path::new(rel), flags),
        other => other,
    };
    match opened {
        Ok(fd) => read_regular(fd).map(Some).map_err(read_err),
        Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(None),
        Err(e) => Err(read_err(e.into())),
    }
}

/// The fallback for kernels without `openat2`: resolve in user space, then open the result
/// without following a final symlink.
fn open_by_walk(rootfs: &Path, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let resolved =
        resolve_in_root(rootfs, rel).map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    rustix::fs::open(&resolved, flags | OFlags::NOFOLLOW, Mode::empty())
}

/// `rel` resolved as if `root` were `/`: `..` never climbs above it and absolute symlink
/// targets restart from it. Returns a path under `root` (which may not exist).
pub(crate) fn resolve_in_root(root: &Path, rel: &Path) -> std::io::Result<PathBuf> {
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, rel);
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved
            .iter()
            .fold(root.to_path_buf(), |p, c| p.join(c))
            .join(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(std::io::Error::from_raw_os_error(
                        Errno::LOOP.raw_os_error(),
                    ));
                }
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                push_components(&mut pending, &target);
            }
            _ => resolved.push(part),
        }
    }
    Ok(resolved.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

/// Pushes the components of `path` so that popping yields them in order.
fn push_components(stack: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

fn read_regular(fd: OwnedFd) -> std::io::Result<String> {
    let file = std::fs::File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut text = String::new();
    file.take(MAX_FILE_BYTES).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
";
    const GROUP: &str = "\
root:x:0:
daemon:x:1:
www-data:x:33:
app:x:1000:
audio:x:29:app,www-data
video:x:44:app
";

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        dir
    }

    #[test]
    fn empty_user_is_root_with_its_home() {
        let dir = rootfs();
        let user = resolve_user(dir.path(), "", &[]).unwrap();
        assert_eq!((user.uid, user.gid, user.home.as_str()), (0, 0, "/root"));
        assert_eq!(user.additional_gids, vec![0]);
    }

    #[test]
    fn name_resolves_with_supplementary_groups_from_the_group_file() {
        let dir = rootfs();
        let user = resolve_user(dir.path(), "app", &[]).unwrap();
        assert_eq!((user.uid, user.gid), (1000, 1000));
        assert_eq!(user.additional_gids, vec![1000, 29, 44]);
        assert_eq!(user.home, "/home/app");
    }

    #[test]
    fn explicit_group_replaces_the_primary_group_and_drops_supplementary_ones() {
        let dir = rootfs();
        let user = resolve_user(dir.path(), "app:audio", &[]).unwrap();
        assert_eq!((user.uid, user.gid), (1000, 29));
        assert_eq!(user.additional_gids, vec![29]);
        let user = resolve_user(dir.path(), "www-data:4242", &[]).unwrap();
        assert_eq!((user.uid, user.gid), (33, 4242));
    }

    #[test]
    fn numeric_uid_matches_an_entry_or_stands_alone() {
        let dir = rootfs();
        let user = resolve_user(dir.path(), "33", &[]).unwrap();
        assert_eq!(
            (user.uid, user.gid, user.home.as_str()),
            (33, 33, "/var/www")
        );
        let user = resolve_user(dir.path(), "4000", &[]).unwrap();
        assert_eq!((user.uid, user.gid, user.home.as_str()), (4000, 0, "/"));
    }

    #[test]
    fn numeric_ids_work_without_passwd_or_group_files() {
        let dir = tempfile::tempdir().unwrap();
        let user = resolve_user(dir.path(), "1234:5678", &["99".to_string()]).unwrap();
        assert_eq!((user.uid, user.gid), (1234, 5678));
        assert_eq!(user.additional_gids, vec![5678, 99]);
    }

    #[test]
    fn unknown_user_name_gives_dockers_error() {
        let dir = rootfs();
        let err = resolve_user(dir.path(), "nobody-here", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user nobody-here: no matching entries in passwd file"
        );
        let empty = tempfile::tempdir().unwrap();
        let err = resolve_user(empty.path(), "app", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find user app: no matching entries in passwd file"
        );
    }

    #[test]
    fn unknown_group_name_gives_dockers_error() {
        let dir = rootfs();
        let err = resolve_user(dir.path(), "app:nogroup", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
        let err = resolve_user(dir.path(), "app", &["wheel".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find group wheel: no matching entries in group file"
        );
    }

    #[test]
    fn group_add_takes_names_and_gids_without_duplicates() {
        let dir = rootfs();
        let add = ["video".to_string(), "29".to_string(), "5000".to_string()];
        let user = resolve_user(dir.path(), "app", &add).unwrap();
        assert_eq!(user.additional_gids, vec![1000, 29, 44, 5000]);
    }

    #[test]
    fn out_of_range_ids_are_refused() {
        let dir = rootfs();
        let err = resolve_user(dir.path(), "4294967296", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "uids and gids must be in range 0-2147483647"
        );
        assert!(resolve_user(dir.path(), "1:-1", &[]).is_err());
    }

    #[test]
    fn symlinked_passwd_pointing_outside_the_rootfs_is_not_read_from_the_host() {
        let host = tempfile::tempdir().unwrap();
        let secret = host.path().join("passwd");
        fs::write(&secret, "evil:x:0:0::/:/bin/sh\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        // Absolute, and relative with enough `..` to climb out of any rootfs.
        std::os::unix::fs::symlink(&secret, dir.path().join("etc/passwd")).unwrap();
        let climb = format!("../../../../../../../../..{}", secret.display());
        std::os::unix::fs::symlink(&climb, dir.path().join("etc/group")).unwrap();

        let err = resolve_user(dir.path(), "evil", &[]).unwrap_err();
        assert!(matches!(err, UserError::NoSuchUser { .. }), "{err}");
        assert!(read_in_root(dir.path(), "etc/group").unwrap().is_none());
    }

    #[test]
    fn symlinks_inside_the_rootfs_are_followed_from_its_root() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::create_dir_all(dir.path().join("usr/lib")).unwrap();
        fs::write(dir.path().join("usr/lib/passwd"), PASSWD).unwrap();
        std::os::unix::fs::symlink("/usr/lib/passwd", dir.path().join("etc/passwd")).unwrap();
        let user = resolve_user(dir.path(), "app", &[]).unwrap();
        assert_eq!(user.uid, 1000);
    }

    #[test]
    fn user_space_walk_clamps_symlinks_to_the_root() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/../../../../etc/shadow", dir.path().join("etc/passwd"))
            .unwrap();
        let resolved = resolve_in_root(dir.path(), Path::new("etc/passwd")).unwrap();
        assert_eq!(resolved, dir.path().join("etc/shadow"));
        std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
        assert!(resolve_in_root(dir.path(), Path::new("loop")).is_err());
    }

    #[test]
    fn a_fifo_in_place_of_passwd_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("etc/passwd"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let err = resolve_user(dir.path(), "app", &[]).unwrap_err();
        assert!(matches!(err, UserError::Read { .. }), "{err}");
    }
}
