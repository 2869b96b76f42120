//! Paths inside a container's root: resolved the way the kernel would inside the
//! container, so symlinks and `..` can never lead outside it.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Resolves `path` (as seen inside the container) to a host path under `root`. Symlinks
/// are followed as if `root` were `/`; the result never leaves `root`. The last component
/// need not exist.
pub fn secure_join(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .rev()
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let host = root.join(&candidate);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links resolving {}",
                        path.display()
                    )));
                }
                let target = std::fs::read_link(&host)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

/// Creates `dir` (a path inside the container) and its parents under `root`, owned by
/// `uid:gid` when it is new.
pub fn mkdir_in_root(root: &Path, dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let mut cur = PathBuf::from("/");
    for c in dir.components() {
        if let Component::Normal(n) = c {
            cur.push(n);
            let host = secure_join(root, &cur)?;
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(io::Error::other(format!(
                        "{} exists and is not a directory",
                        cur.display()
                    )))
                }
                Err(_) => {
                    std::fs::create_dir(&host)?;
                    let _ = std::os::unix::fs::chown(&host, Some(uid), Some(gid));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_symlinks_stay_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("real")).unwrap();
        symlink("/etc", root.join("etc-link")).unwrap();
        symlink("/real", root.join("abs")).unwrap();
        assert_eq!(
            secure_join(root, Path::new("/etc-link/passwd")).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            secure_join(root, Path::new("/abs/x")).unwrap(),
            root.join("real/x")
        );
    }

    #[test]
    fn dot_dot_cannot_climb_out() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        symlink("../../../../..", root.join("up")).unwrap();
        assert_eq!(
            secure_join(root, Path::new("/../../x")).unwrap(),
            root.join("x")
        );
        assert_eq!(
            secure_join(root, Path::new("/up/etc")).unwrap(),
            root.join("etc")
        );
    }

    #[test]
    fn mkdir_follows_links_inside_the_root_only() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        symlink("/tmp-escape", root.join("w")).unwrap();
        mkdir_in_root(root, Path::new("/w/app"), 0, 0).unwrap();
        assert!(root.join("tmp-escape/app").is_dir());
    }
}
