//! `COPY` and `ADD`: where sources come from (the context, another stage's root, a URL, a
//! heredoc), what their hash is (the cache key and `COPY file:<hex> in /dst`), and how
//! they land in the working container with Docker's rules:
//!
//! - a directory source copies its *contents*;
//! - with several sources the destination must end in `/`;
//! - a file goes *into* the destination when it ends in `/` or is an existing directory,
//!   else it *becomes* the destination;
//! - a relative destination is relative to `WORKDIR`;
//! - files are owned by root (or `--chown`), keep their mode (or get `--chmod`) and time;
//! - `ADD` of a local tar (plain, gzip, bzip2, xz) unpacks it; `ADD <url>` downloads it
//!   (mode 600, time from `Last-Modified`).

use crate::context::Source;
use crate::error::{BuildError, Result};
use crate::hash;
use crate::rootfs::{self, CopyOptions, Owner};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One source, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceItem {
    pub source: Source,
    /// `ADD` of a local archive: unpack instead of copying.
    pub unpack: bool,
    /// Downloaded files: mode 600 and the server's time.
    pub download: Option<Option<i64>>,
}

/// Everything a `COPY`/`ADD` step will do, known before the cache is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPlan {
    pub instruction: &'static str,
    pub items: Vec<SourceItem>,
    /// The destination as written (substituted); relative ones are joined to `workdir`.
    pub dest: String,
    pub workdir: String,
    pub chown: Option<String>,
    pub chmod: Option<u32>,
}

/// Parses `--chmod` (octal).
pub fn parse_chmod(s: &str) -> Result<u32> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| BuildError::invalid(format!("invalid chmod parameter: {s}")))
}

/// Whether a local file is a tar archive, possibly compressed.
pub fn is_archive(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok((_, mut plain)) = berth_storage::compress::decompress(f) else {
        return false;
    };
    let mut head = Vec::with_capacity(512);
    if (&mut plain).take(512).read_to_end(&mut head).is_err() || head.len() < 512 {
        return false;
    }
    !head.iter().all(|b| *b == 0) && crate::context::is_tar_header(&head)
}

/// A source inside another root (`COPY --from`): absolute or relative to `/`, wildcards
/// allowed in the last component; hashed from disk.
pub fn sources_in_root(
    instruction: &'static str,
    root: &Path,
    specs: &[String],
) -> Result<Vec<Source>> {
    let copy_err = |message: String| BuildError::Copy {
        instruction,
        message,
    };
    let mut out = Vec::new();
    for spec in specs {
        let clean = crate::dockerignore::clean(&format!("/{spec}"));
        let (dir, last) = match clean.rsplit_once('/') {
            Some((d, l)) => (if d.is_empty() { "/" } else { d }, l),
            None => ("/", clean.as_str()),
        };
        let names: Vec<String> = if crate::dockerignore::has_wildcards(last) {
            let host_dir =
                rootfs::resolve(root, Path::new(dir)).map_err(|e| copy_err(e.to_string()))?;
            let mut v: Vec<String> = std::fs::read_dir(&host_dir)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| crate::dockerignore::path_match(last, n))
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        } else {
            vec![last.to_string()]
        };
        for name in names {
            let inside = Path::new(dir).join(&name);
            let host = rootfs::resolve(root, &inside).map_err(|e| copy_err(e.to_string()))?;
            let meta = std::fs::metadata(&host).map_err(|_| {
                copy_err(format!(
                    "file not found in build context or excluded by .dockerignore: stat {spec}: file does not exist"
                ))
            })?;
            let hashes = rootfs::tree_hashes(&host)
                .map_err(|e| BuildError::io(format!("reading {}", inside.display()), e))?;
            let hash = hash::source_hash(&hashes, "")
                .ok_or_else(|| copy_err(format!("cannot read {spec}")))?;
            out.push(Source {
                host,
                name: if name.is_empty() { "/".into() } else { name },
                hash,
                is_dir: meta.is_dir(),
            });
        }
    }
    if out.is_empty() {
        return Err(copy_err("no source files were specified".to_string()));
    }
    Ok(out)
}

impl CopyPlan {
    /// `file:<hex>`, `dir:<hex>` or `multi:<hex>`.
    pub fn hash_text(&self) -> String {
        let hashes: Vec<(&'static str, String)> =
            self.items.iter().map(|i| i.source.hash.clone()).collect();
        hash::multi(&hashes)
    }

    /// Docker's history text (`/bin/sh -c #(nop) COPY file:<hex> in /app/ `).
    pub fn created_by(&self) -> String {
        let mut flags = String::new();
        if let Some(m) = self.chmod {
            flags.push_str(&format!("--chmod={m:o} "));
        }
        if let Some(c) = &self.chown {
            // Docker writes no space after the chown flag; keep its text.
            flags.push_str(&format!("--chown={c}"));
        }
        format!(
            "/bin/sh -c #(nop) {} {flags}{} in {} ",
            self.instruction,
            self.hash_text(),
            self.dest
        )
    }

    /// Checks the destination rules that do not need the image.
    pub fn check(&self) -> Result<()> {
        if self.items.len() > 1 && !self.dest.ends_with('/') {
            return Err(BuildError::invalid(format!(
                "When using {} with more than one source file, the destination must be a directory and end with a /",
                self.instruction
            )));
        }
        Ok(())
    }

    /// The destination as a path inside the container.
    fn dest_path(&self) -> PathBuf {
        let d = if self.dest.starts_with('/') {
            self.dest.clone()
        } else {
            let base = if self.workdir.is_empty() {
                "/"
            } else {
                &self.workdir
            };
            format!("{}/{}", base.trim_end_matches('/'), self.dest)
        };
        PathBuf::from(crate::dockerignore::clean(&d))
    }

    /// Copies everything into the working container at `root` (blocking).
    pub fn execute(&self, root: &Path) -> Result<()> {
        let owner = match &self.chown {
            Some(spec) => resolve_chown(root, spec)?,
            None => (0, 0),
        };
        let dest = self.dest_path();
        let dir_dest = self.dest.ends_with('/')
            || self.dest.ends_with("/.")
            || self.dest == "."
            || self.items.len() > 1;
        let io_err = |e: std::io::Error| BuildError::Copy {
            instruction: self.instruction,
            message: e.to_string(),
        };
        let opts = CopyOptions {
            owner,
            chmod: self.chmod,
        };
        for item in &self.items {
            let src = &item.source;
            if item.unpack {
                let f = std::fs::File::open(&src.host).map_err(io_err)?;
                let (_, plain) = berth_storage::compress::decompress(f).map_err(io_err)?;
                let tar_owner = match &self.chown {
                    Some(_) => Owner::Fixed(owner.0, owner.1),
                    None => Owner::FromTar,
                };
                rootfs::extract_tar(plain, root, &dest, tar_owner, false).map_err(io_err)?;
                continue;
            }
            if src.is_dir {
                rootfs::copy_tree(&src.host, root, &dest, opts).map_err(io_err)?;
                continue;
            }
            let existing_dir = rootfs::resolve(root, &dest)
                .ok()
                .and_then(|h| std::fs::metadata(h).ok())
                .is_some_and(|m| m.is_dir());
            let target = if dir_dest || existing_dir {
                dest.join(&src.name)
            } else {
                dest.clone()
            };
            rootfs::copy_tree(&src.host, root, &target, opts).map_err(io_err)?;
            if let Some(mtime) = item.download {
                let host = rootfs::resolve(root, &target).map_err(io_err)?;
                use std::os::unix::fs::PermissionsExt;
                let mode = self.chmod.unwrap_or(0o600);
                std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode))
                    .map_err(io_err)?;
                if let Some(t) = mtime {
                    rootfs::set_mtime(&host, t, 0).map_err(io_err)?;
                }
            }
        }
        Ok(())
    }
}

/// `--chown=user[:group]` against the image's `/etc/passwd` and `/etc/group`; without a
/// group the gid is the uid, as Docker documents.
pub fn resolve_chown(root: &Path, spec: &str) -> Result<(u32, u32)> {
    let wrap = |e: String| {
        BuildError::invalid(format!(
            "unable to convert uid/gid chown string to host mapping: {e}"
        ))
    };
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = berth_runtime::user::resolve_user(root, user, &[])
        .map_err(|e| wrap(e.to_string()))?
        .uid;
    let gid = match group {
        Some(g) if !g.is_empty() => {
            berth_runtime::user::resolve_user(root, &format!("0:{g}"), &[])
                .map_err(|e| wrap(e.to_string()))?
                .gid
        }
        _ => uid,
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn file_source(dir: &Path, name: &str, data: &[u8]) -> SourceItem {
        let host = dir.join(name);
        std::fs::write(&host, data).unwrap();
        SourceItem {
            source: Source {
                host,
                name: name.to_string(),
                hash: ("file", hash::hex_of(data)),
                is_dir: false,
            },
            unpack: false,
            download: None,
        }
    }

    fn plan(items: Vec<SourceItem>, dest: &str) -> CopyPlan {
        CopyPlan {
            instruction: "COPY",
            items,
            dest: dest.to_string(),
            workdir: "/work".to_string(),
            chown: None,
            chmod: None,
        }
    }

    #[test]
    fn files_go_into_slashed_or_existing_directories() {
        let src = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("existing")).unwrap();
        plan(vec![file_source(src.path(), "a", b"1")], "/new/")
            .execute(root.path())
            .unwrap();
        plan(vec![file_source(src.path(), "a", b"1")], "/existing")
            .execute(root.path())
            .unwrap();
        plan(vec![file_source(src.path(), "a", b"1")], "/renamed")
            .execute(root.path())
            .unwrap();
        plan(vec![file_source(src.path(), "a", b"1")], "rel")
            .execute(root.path())
            .unwrap();
        assert!(root.path().join("new/a").is_file());
        assert!(root.path().join("existing/a").is_file());
        assert!(root.path().join("renamed").is_file());
        assert!(root.path().join("work/rel").is_file());
    }

    #[test]
    fn several_sources_need_a_slashed_destination() {
        let src = tempfile::tempdir().unwrap();
        let p = plan(
            vec![
                file_source(src.path(), "a", b"1"),
                file_source(src.path(), "b", b"2"),
            ],
            "/x",
        );
        assert_eq!(
            p.check().unwrap_err().to_string(),
            "When using COPY with more than one source file, the destination must be a directory and end with a /"
        );
    }

    #[test]
    fn history_text_is_dockers() {
        let src = tempfile::tempdir().unwrap();
        let mut p = plan(vec![file_source(src.path(), "a", b"1")], "/app/");
        assert_eq!(
            p.created_by(),
            format!(
                "/bin/sh -c #(nop) COPY file:{} in /app/ ",
                hash::hex_of(b"1")
            )
        );
        p.chown = Some("1:2".into());
        assert!(p.created_by().contains("COPY --chown=1:2file:"));
    }

    #[test]
    fn chown_names_resolve_in_the_image_and_gid_defaults_to_uid() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "app:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/group"), "staff:x:50:\n").unwrap();
        assert_eq!(resolve_chown(root.path(), "app").unwrap(), (1000, 1000));
        assert_eq!(resolve_chown(root.path(), "app:staff").unwrap(), (1000, 50));
        assert_eq!(resolve_chown(root.path(), "7:8").unwrap(), (7, 8));
        assert!(resolve_chown(root.path(), "nosuch")
            .unwrap_err()
            .to_string()
            .starts_with("unable to convert uid/gid chown string to host mapping"));
    }

    #[test]
    fn archives_are_recognised_by_content() {
        let d = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "x", &b"1"[..]).unwrap();
        std::fs::write(d.path().join("a.tar"), b.into_inner().unwrap()).unwrap();
        std::fs::write(d.path().join("plain.txt"), b"not a tar").unwrap();
        assert!(is_archive(&d.path().join("a.tar")));
        assert!(!is_archive(&d.path().join("plain.txt")));
        let root = tempfile::tempdir().unwrap();
        let item = SourceItem {
            source: Source {
                host: d.path().join("a.tar"),
                name: "a.tar".into(),
                hash: ("file", "x".into()),
                is_dir: false,
            },
            unpack: true,
            download: None,
        };
        plan(vec![item], "/un/").execute(root.path()).unwrap();
        assert_eq!(std::fs::read(root.path().join("un/x")).unwrap(), b"1");
        let m = std::fs::metadata(root.path().join("un")).unwrap();
        assert_eq!(m.mode() & 0o777, 0o755);
    }
}
