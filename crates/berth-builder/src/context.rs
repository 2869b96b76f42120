//! The build context: what the client sent (a tar, maybe compressed, or a bare Dockerfile),
//! unpacked into a private directory, with every entry hashed on the way in so that a
//! fully cached rebuild never reads a file twice.
//!
//! [`BuildContext::sources`] resolves `COPY`/`ADD` sources the way Docker does: relative to
//! the context root, never outside it, with `filepath.Match` wildcards, following a
//! top-level symlink inside the context.

use crate::dockerignore::{self, Matcher};
use crate::error::{BuildError, Result};
use crate::hash::{self, EntryHash, EntryKind};
use crate::rootfs::{self, Hashes, Owner};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

/// One resolved `COPY`/`ADD` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Where it is on the host (inside the context or a stage's root).
    pub host: PathBuf,
    /// Its base name (what `COPY a /dir/` names the copy).
    pub name: String,
    /// `file:<hex>` or `dir:<hex>` half of the cache key.
    pub hash: (&'static str, String),
    pub is_dir: bool,
}

/// An unpacked build context. The directory goes away with the value.
#[derive(Debug)]
pub struct BuildContext {
    dir: tempfile::TempDir,
    hashes: Hashes,
}

/// Whether a 512-byte block is a tar header (its checksum adds up) or the zero block of an
/// empty archive.
pub(crate) fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    if block[..512].iter().all(|b| *b == 0) {
        return true;
    }
    let field = String::from_utf8_lossy(&block[148..156]);
    let Ok(want) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return false;
    };
    let sum: u32 = block[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == want
}

impl BuildContext {
    /// Unpacks a context stream into a new directory under `tmp`. A stream that is not a
    /// tar (after decompression) is a Dockerfile on its own (`docker build - < Dockerfile`),
    /// stored as `dockerfile_name`.
    pub fn from_reader(reader: impl Read, tmp: &Path, dockerfile_name: &str) -> Result<Self> {
        std::fs::create_dir_all(tmp)
            .map_err(|e| BuildError::io(format!("creating {}", tmp.display()), e))?;
        let dir = tempfile::Builder::new()
            .prefix("context-")
            .tempdir_in(tmp)
            .map_err(|e| BuildError::io("creating the context directory", e))?;
        let (_, mut plain) =
            berth_storage::compress::decompress(reader).map_err(|e| BuildError::Context {
                message: e.to_string(),
            })?;
        let mut head = Vec::with_capacity(512);
        (&mut plain)
            .take(512)
            .read_to_end(&mut head)
            .map_err(|e| BuildError::Context {
                message: e.to_string(),
            })?;
        let stream = Cursor::new(head.clone()).chain(plain);
        let mut ctx = Self {
            dir,
            hashes: Hashes::new(),
        };
        if head.is_empty() || is_tar_header(&head) {
            ctx.hashes = rootfs::extract_tar(
                stream,
                ctx.dir.path(),
                Path::new("/"),
                Owner::Fixed(0, 0),
                true,
            )
            .map_err(|e| BuildError::Context {
                message: e.to_string(),
            })?;
        } else {
            let mut text = Vec::new();
            let mut stream = stream;
            stream
                .read_to_end(&mut text)
                .map_err(|e| BuildError::Context {
                    message: e.to_string(),
                })?;
            ctx.add_file(dockerfile_name, &text)?;
        }
        // Directories the tar only implies (no entry of their own) are sources too.
        let implied: Vec<String> = ctx
            .hashes
            .keys()
            .flat_map(|k| {
                let mut v = Vec::new();
                let mut p = k.as_str();
                while let Some((parent, _)) = p.rsplit_once('/') {
                    v.push(parent.to_string());
                    p = parent;
                }
                v
            })
            .collect();
        for d in implied {
            ctx.hashes.entry(d).or_insert(EntryHash {
                kind: EntryKind::Dir,
                mode: 0o755,
                size: 0,
                content: [0; 32],
            });
        }
        ctx.hashes.insert(
            String::new(),
            EntryHash {
                kind: EntryKind::Dir,
                mode: 0o755,
                size: 0,
                content: [0; 32],
            },
        );
        Ok(ctx)
    }

    /// Adds (or replaces) a file in the context.
    pub fn add_file(&mut self, rel: &str, content: &[u8]) -> Result<()> {
        let rel = dockerignore::clean(rel).trim_start_matches('/').to_string();
        let host = rootfs::resolve(self.dir.path(), Path::new(&rel))
            .map_err(|e| BuildError::io(format!("adding {rel} to the context"), e))?;
        if let Some(parent) = host.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| BuildError::io("adding to the context", e))?;
        }
        std::fs::write(&host, content).map_err(|e| BuildError::io("adding to the context", e))?;
        self.hashes.insert(
            rel,
            EntryHash {
                kind: EntryKind::File,
                mode: 0o644,
                size: content.len() as u64,
                content: hash::digest(content),
            },
        );
        Ok(())
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The Dockerfile's text (`Cannot locate specified Dockerfile` when it is missing).
    pub fn dockerfile(&self, name: &str) -> Result<String> {
        let rel = dockerignore::clean(name)
            .trim_start_matches('/')
            .to_string();
        let not_found = || BuildError::DockerfileNotFound {
            file: name.to_string(),
        };
        if rel.starts_with("..") {
            return Err(not_found());
        }
        let host = rootfs::resolve(self.root(), Path::new(&rel)).map_err(|_| not_found())?;
        let bytes = std::fs::read(&host).map_err(|_| not_found())?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The daemon's part of `.dockerignore` (the client filters the rest): the
    /// `.dockerignore` file and the Dockerfile leave the context when they are excluded.
    pub fn apply_dockerignore(&mut self, dockerfile: &str) {
        let Ok(text) = std::fs::read_to_string(self.root().join(".dockerignore")) else {
            return;
        };
        let m = Matcher::parse(&text);
        for f in [".dockerignore", dockerfile] {
            let rel = dockerignore::clean(f).trim_start_matches('/').to_string();
            if m.excluded(&rel) {
                let _ = std::fs::remove_file(self.root().join(&rel));
                self.hashes.remove(&rel);
            }
        }
    }

    /// Resolves `COPY`/`ADD` sources (as written, substituted) against the context.
    pub fn sources(&self, instruction: &'static str, specs: &[String]) -> Result<Vec<Source>> {
        let copy_err = |message: String| BuildError::Copy {
            instruction,
            message,
        };
        let mut out = Vec::new();
        for spec in specs {
            let rel = dockerignore::clean(spec)
                .trim_start_matches('/')
                .to_string();
            let rel = if rel == "." { String::new() } else { rel };
            if rel == ".." || rel.starts_with("../") {
                return Err(copy_err(format!(
                    "forbidden path outside the build context: {spec} ()"
                )));
            }
            if dockerignore::has_wildcards(&rel) {
                let matches: Vec<String> = self
                    .hashes
                    .keys()
                    .filter(|p| !p.is_empty() && dockerignore::path_match(&rel, p))
                    .cloned()
                    .collect();
                for m in matches {
                    out.push(self.source(&m).ok_or_else(|| {
                        copy_err(format!("file not found in build context: {m}"))
                    })?);
                }
                continue;
            }
            let src = self.source(&rel).ok_or_else(|| {
                copy_err(format!(
                    "file not found in build context or excluded by .dockerignore: stat {spec}: file does not exist"
                ))
            })?;
            out.push(src);
        }
        if out.is_empty() {
            return Err(copy_err("no source files were specified".to_string()));
        }
        Ok(out)
    }

    /// One source by its clean relative path; a symlink is followed inside the context.
    fn source(&self, rel: &str) -> Option<Source> {
        let host = rootfs::resolve(self.root(), Path::new(rel)).ok()?;
        let resolved = host
            .strip_prefix(self.root())
            .ok()?
            .to_string_lossy()
            .into_owned();
        let meta = std::fs::metadata(&host).ok()?;
        let hash = match hash::source_hash(&self.hashes, &resolved) {
            Some(h) => h,
            // Not seen on the way in (made by a symlink's target): hash it from disk.
            None => hash::source_hash(&rootfs::tree_hashes(&host).ok()?, "")?,
        };
        let name = Path::new(rel)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Some(Source {
            host,
            name,
            hash,
            is_dir: meta.is_dir(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn ctx(entries: &[(&str, &[u8])]) -> (tempfile::TempDir, BuildContext) {
        let tmp = tempfile::tempdir().unwrap();
        let c = BuildContext::from_reader(&tar_of(entries)[..], tmp.path(), "Dockerfile").unwrap();
        (tmp, c)
    }

    #[test]
    fn a_plain_dockerfile_stream_is_a_context_of_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let c =
            BuildContext::from_reader(&b"FROM busybox\n"[..], tmp.path(), "Dockerfile").unwrap();
        assert_eq!(c.dockerfile("Dockerfile").unwrap(), "FROM busybox\n");
    }

    #[test]
    fn compressed_tars_are_unpacked() {
        use std::io::Write;
        let tar = tar_of(&[("Dockerfile", b"FROM x\n"), ("src/a", b"1")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let c =
            BuildContext::from_reader(&gz.finish().unwrap()[..], tmp.path(), "Dockerfile").unwrap();
        assert_eq!(c.dockerfile("./Dockerfile").unwrap(), "FROM x\n");
        assert!(c.root().join("src/a").is_file());
    }

    #[test]
    fn missing_dockerfile_reads_like_docker() {
        let (_t, c) = ctx(&[("a", b"")]);
        assert_eq!(
            c.dockerfile("Dockerfile").unwrap_err().to_string(),
            "Cannot locate specified Dockerfile: Dockerfile"
        );
    }

    #[test]
    fn sources_resolve_wildcards_and_refuse_escapes() {
        let (_t, c) = ctx(&[
            ("src/one", b"1"),
            ("src/inner/two", b"2"),
            ("top.txt", b"t"),
        ]);
        let s = c.sources("COPY", &["src/*".into()]).unwrap();
        let names: Vec<_> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["inner", "one"]);
        assert!(s[0].is_dir && s[0].hash.0 == "dir");
        assert_eq!(s[1].hash.0, "file");
        assert_eq!(
            c.sources("COPY", &["../x".into()]).unwrap_err().to_string(),
            "COPY failed: forbidden path outside the build context: ../x ()"
        );
        assert_eq!(
            c.sources("COPY", &["nos*".into()]).unwrap_err().to_string(),
            "COPY failed: no source files were specified"
        );
        assert_eq!(
            c.sources("COPY", &["nosuch".into()]).unwrap_err().to_string(),
            "COPY failed: file not found in build context or excluded by .dockerignore: stat nosuch: file does not exist"
        );
        let all = c.sources("COPY", &[".".into()]).unwrap();
        assert!(all[0].is_dir);
    }

    #[test]
    fn source_hashes_follow_content() {
        let (_t, a) = ctx(&[("f", b"1")]);
        let (_u, b) = ctx(&[("f", b"2")]);
        let (_v, c) = ctx(&[("f", b"1"), ("g", b"x")]);
        let h = |c: &BuildContext| c.sources("COPY", &["f".into()]).unwrap()[0].hash.clone();
        assert_ne!(h(&a), h(&b));
        assert_eq!(h(&a), h(&c));
    }

    #[test]
    fn an_excluded_dockerfile_and_dockerignore_leave_the_context() {
        let (_t, mut c) = ctx(&[
            ("Dockerfile", b"FROM x\n"),
            (".dockerignore", b"Dockerfile\n.dockerignore\n"),
            ("keep", b""),
        ]);
        let text = c.dockerfile("Dockerfile").unwrap();
        c.apply_dockerignore("Dockerfile");
        assert_eq!(text, "FROM x\n");
        assert!(!c.root().join("Dockerfile").exists());
        assert!(!c.root().join(".dockerignore").exists());
        assert!(c.root().join("keep").exists());
    }
}
