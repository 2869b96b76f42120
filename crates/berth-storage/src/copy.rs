//! Copying files in and out of a container's tree (`docker cp`, `docker export`).
//!
//! [`extract_into`] unpacks a tar into an existing directory with the confinement of layer
//! extraction: every entry is created with `*at` calls relative to directories opened
//! without following symlinks, so nothing in the archive and no symlink already in the
//! destination can lead a write outside it. [`archive_path`] writes a file or a directory
//! tree as a tar without following symlinks.

use crate::apply::{apply_tar_owned, WhiteoutMode};
use crate::error::{IoContext, Result};
use std::io::{Read, Write};
use std::path::Path;

/// Unpacks `tar` (plain, gzip, zstd, bzip2 or xz) into the directory `dest`. With
/// `owner`, every entry gets that uid and gid instead of the archive's.
pub fn extract_into(tar: impl Read, dest: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    apply_tar_owned(tar, dest, WhiteoutMode::Plain, None, owner, false)?;
    Ok(())
}

/// What [`walk_tree`] does with a regular file: the builder, its path and entry name, and
/// its metadata.
pub type FileEntry<'a, W> =
    dyn FnMut(&mut tar::Builder<W>, &Path, &str, &std::fs::Metadata) -> std::io::Result<()> + 'a;

/// Appends the tree at `fs` as entries named from `name`, directories recursively in
/// lexical order, never following symlinks; regular files go to `file`, everything else is
/// appended as it is.
pub fn walk_tree<W: Write>(
    b: &mut tar::Builder<W>,
    fs: &Path,
    name: &str,
    file: &mut FileEntry<'_, W>,
) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(fs)?;
    if m.is_dir() {
        let dir_name = format!("{}/", name.trim_end_matches('/'));
        b.append_path_with_name(fs, &dir_name)?;
        let mut children: Vec<_> = std::fs::read_dir(fs)?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        children.sort();
        for c in children {
            let child = format!("{dir_name}{}", c.to_string_lossy());
            walk_tree(b, &fs.join(&c), &child, file)?;
        }
    } else if m.is_file() {
        file(b, fs, name, &m)?;
    } else {
        b.append_path_with_name(fs, name)?;
    }
    Ok(())
}

/// Writes `src` (a file, symlink or directory on the host) as a tar whose entries are
/// named from `name` (`name`, `name/...`). Symlinks are stored as links, never followed.
pub fn archive_path(src: &Path, name: &str, w: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    let meta = std::fs::symlink_metadata(src).ctx("reading", src)?;
    if meta.is_dir() {
        b.append_dir_all(name, src).ctx("archiving", src)?;
    } else {
        b.append_path_with_name(src, name).ctx("archiving", src)?;
    }
    b.into_inner().map(drop).ctx("finishing archive of", src)?;
    Ok(())
}

/// Writes a whole tree as a tar rooted at `.` (`docker export`), skipping the directories
/// in `skip` (mount points whose content belongs to volumes) but keeping them empty.
pub fn archive_tree(root: &Path, skip: &[&Path], w: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    append_dir(&mut b, root, Path::new(""), skip)?;
    b.into_inner().map(drop).ctx("finishing archive of", root)?;
    Ok(())
}

fn append_dir<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    skip: &[&Path],
) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .ctx("listing", &dir)?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for name in names {
        let child_rel = rel.join(&name);
        let host = root.join(&child_rel);
        let meta = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(_) => continue,
        };
        b.append_path_with_name(&host, &child_rel)
            .ctx("archiving", &host)?;
        if meta.is_dir() && !skip.iter().any(|s| *s == Path::new("/").join(&child_rel)) {
            append_dir(b, root, &child_rel, skip)?;
        }
    }
    Ok(())
}

/// Copies the contents of directory `src` into the existing empty directory `dst`, and
/// gives `dst` the owner and mode of `src` (Docker's copy of image content into a new
/// volume). Owners, modes, times, xattrs, links and devices are kept.
pub fn copy_dir_contents(src: &Path, dst: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    for name in crate::fsutil::sorted_names(src).ctx("listing", src)? {
        crate::fsutil::copy_tree(&src.join(&name), &dst.join(&name))
            .ctx("copying", src.join(&name))?;
    }
    let meta = std::fs::metadata(src).ctx("reading", src)?;
    crate::fsutil::set_owner_mode_time(
        rustix::fs::CWD,
        dst,
        meta.uid(),
        meta.gid(),
        Some(meta.mode()),
        None,
    )
    .ctx("setting owner of", dst)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(1000);
            h.set_gid(1000);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn a_symlink_in_the_destination_is_never_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.path().join("escape")).unwrap();
        let err =
            extract_into(&tar_of(&[("escape/pwned", b"x")])[..], root.path(), None).unwrap_err();
        assert!(
            err.to_string().contains("cannot overwrite non-directory"),
            "{err}"
        );
        assert!(!outside.path().join("pwned").exists());
    }

    #[test]
    fn files_get_the_given_owner_and_whiteout_names_stay_plain() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let root = tempfile::tempdir().unwrap();
        extract_into(
            &tar_of(&[("a/b.txt", b"hi"), (".wh.keep", b"k")])[..],
            root.path(),
            Some((0, 0)),
        )
        .unwrap();
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(root.path().join("a/b.txt")).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0));
        assert_eq!(std::fs::read(root.path().join(".wh.keep")).unwrap(), b"k");
    }

    #[test]
    fn a_file_does_not_replace_a_directory() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("d")).unwrap();
        let err = extract_into(&tar_of(&[("d", b"x")])[..], root.path(), None).unwrap_err();
        assert!(
            err.to_string().contains("cannot overwrite directory"),
            "{err}"
        );
    }

    #[test]
    fn archives_keep_symlinks_as_links_and_name_the_root() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("dir")).unwrap();
        std::fs::write(src.path().join("dir/f"), b"data").unwrap();
        symlink("/etc/passwd", src.path().join("dir/link")).unwrap();
        let mut out = Vec::new();
        archive_path(&src.path().join("dir"), "copy", &mut out).unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let mut names: Vec<(String, bool)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type().is_symlink(),
                )
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                ("copy/".into(), false),
                ("copy/f".into(), false),
                ("copy/link".into(), true)
            ]
        );
    }
}
