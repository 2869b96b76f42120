//! Content hashes of `COPY`/`ADD` sources, for the build cache and the history text
//! (`COPY file:<hex> in /app/`, `dir:<hex>`, `multi:<hex>`, as Docker writes them).
//!
//! A file's hash covers its kind, mode, size and content; a directory's covers its own
//! mode and every entry below it (relative path and hash), in sorted order. Owners and
//! modification times are left out, as Docker leaves them out: `COPY` sets the owner
//! itself, and a `touch` must not invalidate the cache.
//!
//! The hash is BLAKE3 (Docker's are sha256; the values are berth's own either way): every
//! byte of the context goes through it while the context arrives, and BLAKE3 is a few
//! times faster than sha256, which is most of a fully cached rebuild's time.

use std::collections::BTreeMap;

/// Incremental content hash.
#[derive(Default, Clone)]
pub struct ContentHasher(blake3::Hasher);

impl ContentHasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finish(&self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

impl std::io::Write for ContentHasher {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.update(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The content hash of some bytes.
pub fn digest(data: &[u8]) -> [u8; 32] {
    *blake3::hash(data).as_bytes()
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// The hash inputs of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryHash {
    pub kind: EntryKind,
    pub mode: u32,
    pub size: u64,
    /// Hash of the content (files) or of the target (symlinks); zero for directories.
    pub content: [u8; 32],
}

impl EntryHash {
    /// This entry alone.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = ContentHasher::new();
        let k = match self.kind {
            EntryKind::File => b'f',
            EntryKind::Dir => b'd',
            EntryKind::Symlink => b'l',
        };
        h.update(&[k]);
        h.update(&self.mode.to_be_bytes());
        h.update(&self.size.to_be_bytes());
        h.update(&self.content);
        h.finish()
    }
}

/// The hash of the entry at `rel` in `entries` (by relative path, `""` the root) and,
/// for a directory, of everything below it: `("file" | "dir", hex)`.
pub fn source_hash(
    entries: &BTreeMap<String, EntryHash>,
    rel: &str,
) -> Option<(&'static str, String)> {
    let top = entries.get(rel)?;
    if top.kind != EntryKind::Dir {
        return Some(("file", hex::encode(top.digest())));
    }
    let mut h = ContentHasher::new();
    h.update(&top.digest());
    let prefix = if rel.is_empty() {
        String::new()
    } else {
        format!("{rel}/")
    };
    for (path, e) in entries.range(prefix.clone()..) {
        if !path.starts_with(&prefix) {
            break;
        }
        if path == rel {
            continue;
        }
        h.update(&path.as_bytes()[prefix.len()..]);
        h.update(&[0]);
        h.update(&e.digest());
    }
    Some(("dir", hex::encode(h.finish())))
}

/// Docker's form for several sources: `multi:<hash of their hashes>`.
pub fn multi(hashes: &[(&'static str, String)]) -> String {
    if let [(kind, hex)] = hashes {
        return format!("{kind}:{hex}");
    }
    let mut h = ContentHasher::new();
    for (kind, hex) in hashes {
        h.update(kind.as_bytes());
        h.update(b":");
        h.update(hex.as_bytes());
        h.update(&[0]);
    }
    format!("multi:{}", hex::encode(h.finish()))
}

/// The content hash of some bytes, in hex.
pub fn hex_of(data: &[u8]) -> String {
    hex::encode(digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &[u8], mode: u32) -> EntryHash {
        EntryHash {
            kind: EntryKind::File,
            mode,
            size: content.len() as u64,
            content: digest(content),
        }
    }

    fn dir() -> EntryHash {
        EntryHash {
            kind: EntryKind::Dir,
            mode: 0o755,
            size: 0,
            content: [0; 32],
        }
    }

    #[test]
    fn directories_hash_everything_below_them_only() {
        let mut m = BTreeMap::new();
        m.insert("src".to_string(), dir());
        m.insert("src/a".to_string(), file(b"1", 0o644));
        m.insert("srcx".to_string(), file(b"other", 0o644));
        let before = source_hash(&m, "src").unwrap();
        assert_eq!(before.0, "dir");
        m.insert("srcx".to_string(), file(b"changed", 0o644));
        assert_eq!(
            source_hash(&m, "src").unwrap(),
            before,
            "siblings do not count"
        );
        m.insert("src/a".to_string(), file(b"2", 0o644));
        assert_ne!(source_hash(&m, "src").unwrap(), before);
    }

    #[test]
    fn file_hashes_see_content_and_mode() {
        assert_ne!(file(b"a", 0o644).digest(), file(b"b", 0o644).digest());
        assert_ne!(file(b"a", 0o644).digest(), file(b"a", 0o755).digest());
        assert_eq!(file(b"a", 0o644).digest(), file(b"a", 0o644).digest());
    }

    #[test]
    fn one_source_keeps_its_kind_and_several_are_multi() {
        let a = ("file", "aa".to_string());
        let b = ("dir", "bb".to_string());
        assert_eq!(multi(std::slice::from_ref(&a)), "file:aa");
        assert!(multi(&[a.clone(), b.clone()]).starts_with("multi:"));
        assert_ne!(multi(&[a.clone(), b.clone()]), multi(&[b, a]));
    }
}
