//! The content store: immutable blobs addressed by their sha256 digest.
//!
//! A blob lives at `<root>/blobs/sha256/<hex>`. Writers go through a [`BlobWriter`], which
//! streams into a temp file under `<root>/blobs/tmp/` while hashing, and on
//! [`commit`](BlobWriter::commit) verifies the digest and renames the file into place, so a
//! blob path exists only for complete, verified content. A writer dropped without commit
//! (or a crash) leaves only a temp file, which [`ContentStore::open_at`] removes.
//!
//! ```no_run
//! # use berth_storage::content::ContentStore;
//! let store = ContentStore::open_at("/var/lib/berth").unwrap();
//! let digest = store.put(b"hello").unwrap();
//! assert!(store.exists(&digest));
//! ```

use crate::error::{IoContext, Result, StorageError};
use berth_core::digest::Hasher;
use berth_core::Digest;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Blobs by digest under one root.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store under `root`, removing temp files of writes that
    /// never committed.
    pub fn open_at(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        let blobs = root.join("blobs").join("sha256");
        let tmp = root.join("blobs").join("tmp");
        fs::create_dir_all(&blobs).ctx("creating", &blobs)?;
        if tmp.exists() {
            fs::remove_dir_all(&tmp).ctx("removing stale temp files in", &tmp)?;
        }
        fs::create_dir_all(&tmp).ctx("creating", &tmp)?;
        Ok(Self { blobs, tmp })
    }

    /// Where the blob with `digest` is (or would be) stored.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Size in bytes of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        match fs::metadata(self.path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::BlobNotFound {
                digest: digest.clone(),
            }),
            Err(e) => Err(StorageError::io("reading", self.path(digest), e)),
        }
    }

    /// Opens a stored blob for reading.
    pub fn open(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        match File::open(&path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::BlobNotFound {
                digest: digest.clone(),
            }),
            Err(e) => Err(StorageError::io("opening", path, e)),
        }
    }

    /// Stores `data`, returning its digest. Storing existing content is a no-op.
    pub fn put(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::of(data);
        if self.exists(&digest) {
            return Ok(digest);
        }
        let mut w = self.writer()?;
        w.write_all(data).ctx("writing", w.temp_path())?;
        w.commit(Some(&digest))
    }

    /// Starts writing a blob whose digest is known only at the end.
    pub fn writer(&self) -> Result<BlobWriter> {
        let file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&self.tmp)
            .ctx("creating temp file in", &self.tmp)?;
        Ok(BlobWriter {
            file,
            hasher: Hasher::new(),
            size: 0,
            blobs: self.blobs.clone(),
        })
    }

    /// Removes a blob. Removing a missing blob is `BlobNotFound`.
    pub fn remove(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::BlobNotFound {
                digest: digest.clone(),
            }),
            Err(e) => Err(StorageError::io("removing", path, e)),
        }
    }

    /// Digests of all stored blobs, sorted.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.blobs).ctx("listing", &self.blobs)? {
            let entry = entry.ctx("listing", &self.blobs)?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A blob being written: bytes go to a temp file and through a sha256 hasher.
pub struct BlobWriter {
    file: tempfile::NamedTempFile,
    hasher: Hasher,
    size: u64,
    blobs: PathBuf,
}

impl BlobWriter {
    fn temp_path(&self) -> PathBuf {
        self.file.path().to_path_buf()
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        self.hasher.clone().finish()
    }

    /// Verifies the content against `expected` (when given) and moves it into the store.
    /// On mismatch the temp file is deleted and the error names both digests.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<Digest> {
        let actual = self.hasher.finish();
        if let Some(expected) = expected {
            if *expected != actual {
                // Dropping the NamedTempFile deletes it.
                return Err(StorageError::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        self.file.flush().ctx("writing", self.file.path())?;
        self.file
            .as_file()
            .sync_data()
            .ctx("syncing", self.file.path())?;
        let dest = self.blobs.join(actual.hex());
        let temp = self.file.path().to_path_buf();
        self.file
            .persist(&dest)
            .map_err(|e| StorageError::io("storing blob", &temp, e.error))?;
        Ok(actual)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::error::{ErrorKind, HasKind};

    fn tmp_count(root: &Path) -> usize {
        fs::read_dir(root.join("blobs/tmp")).unwrap().count()
    }

    #[test]
    fn put_then_open_returns_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open_at(dir.path()).unwrap();
        let d = store.put(b"hello world").unwrap();
        assert_eq!(d, Digest::of(b"hello world"));
        let mut s = String::new();
        io::Read::read_to_string(&mut store.open(&d).unwrap(), &mut s).unwrap();
        assert_eq!(s, "hello world");
        assert_eq!(store.size(&d).unwrap(), 11);
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        assert_eq!(
            store.path(&d),
            dir.path().join("blobs/sha256").join(d.hex())
        );
    }

    #[test]
    fn digest_verification_failure_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open_at(dir.path()).unwrap();
        let wrong = Digest::of(b"something else");
        let mut w = store.writer().unwrap();
        w.write_all(b"actual content").unwrap();
        let err = w.commit(Some(&wrong)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&wrong.to_string()), "{msg}");
        assert!(
            msg.contains(&Digest::of(b"actual content").to_string()),
            "{msg}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(store.list().unwrap().is_empty());
        assert_eq!(tmp_count(dir.path()), 0);
        assert!(!store.exists(&Digest::of(b"actual content")));
    }

    #[test]
    fn missing_blob_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open_at(dir.path()).unwrap();
        let d = Digest::of(b"nope");
        assert_eq!(store.open(&d).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(store.remove(&d).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(store.size(&d).unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn open_removes_temp_files_left_by_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open_at(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"partial").unwrap();
        std::mem::forget(w); // as if the process died mid-write
        assert_eq!(tmp_count(dir.path()), 1);
        let store = ContentStore::open_at(dir.path()).unwrap();
        assert_eq!(tmp_count(dir.path()), 0);
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn remove_deletes_a_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open_at(dir.path()).unwrap();
        let d = store.put(b"x").unwrap();
        store.remove(&d).unwrap();
        assert!(!store.exists(&d));
    }
}
