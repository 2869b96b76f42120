//! Test helpers: the root-test gate, a storage that cleans up after itself (even after a
//! panic), and a builder for layer tars, hostile ones included.

use crate::{DriverChoice, Storage};
use std::io::Write;
use std::ops::Deref;

/// Root tests fail loudly without root, unless `BERTH_SKIP_ROOT_TESTS=1` opts out (and
/// then they say so). Returns whether the test should run.
pub fn require_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("BERTH_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
        // Straight to stderr: the test harness would swallow eprintln! of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "!!!!! SKIPPING root test {test}: not root and BERTH_SKIP_ROOT_TESTS=1 !!!!!"
        );
        return false;
    }
    panic!("{test} needs root (mounts, chown, mknod); run as root or set BERTH_SKIP_ROOT_TESTS=1");
}

/// A storage in a temp dir; on drop, every snapshot is unmounted before the dir goes.
pub struct TestStore {
    pub storage: Storage,
    /// Removed on drop, after the snapshots are unmounted.
    _dir: tempfile::TempDir,
}

impl TestStore {
    pub fn new(choice: DriverChoice) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-storage-test-")
            .tempdir_in(test_base())
            .unwrap();
        let storage = Storage::open(dir.path().join("root"), choice).unwrap();
        Self { storage, _dir: dir }
    }
}

/// Temp dirs go straight under /var/tmp (a real disk, not a possible tmpfs /tmp; each is
/// removed with its test, so nothing stays behind), or under `BERTH_TEST_DIR`.
fn test_base() -> std::path::PathBuf {
    let p = std::env::var_os("BERTH_TEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/var/tmp"));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// A temp dir under the same base as the stores.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-storage-test-")
        .tempdir_in(test_base())
        .unwrap()
}

impl Deref for TestStore {
    type Target = Storage;
    fn deref(&self) -> &Storage {
        &self.storage
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Ok(keys) = self.storage.rw_keys() {
            for k in keys {
                let _ = self.storage.unmount_rw(&k);
            }
        }
    }
}

/// Unmounts a path on drop (for mounts a test makes itself).
pub struct MountGuard(pub std::path::PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = crate::drivers::overlay::unmount_all(&self.0);
    }
}

/// Builds layer tars entry by entry, with full control over names (even hostile ones).
pub struct TarBuild {
    out: Vec<u8>,
    pub mtime: u64,
}

impl Default for TarBuild {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuild {
    pub fn new() -> Self {
        Self {
            out: Vec::new(),
            mtime: 1_700_000_000,
        }
    }

    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime);
        h.set_size(size);
        h
    }

    fn push(
        &mut self,
        mut h: tar::Header,
        name: &str,
        link: Option<&str>,
        data: &[u8],
    ) -> &mut Self {
        // Names are written raw so tests can make entries the tar crate would refuse.
        let n = name.as_bytes();
        assert!(n.len() <= 100, "test names must fit the header");
        h.as_old_mut().name[..n.len()].copy_from_slice(n);
        if let Some(l) = link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        let h = self.header(tar::EntryType::Directory, 0o755, 0);
        self.push(h, &format!("{}/", name.trim_end_matches('/')), None, &[])
    }
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.file_mode(name, data, 0o644)
    }
    pub fn file_mode(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        let h = self.header(tar::EntryType::Regular, mode, data.len() as u64);
        self.push(h, name, None, data)
    }
    pub fn file_owned(&mut self, name: &str, data: &[u8], uid: u64, gid: u64) -> &mut Self {
        let mut h = self.header(tar::EntryType::Regular, 0o640, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.push(h, name, None, data)
    }
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = self.header(tar::EntryType::Symlink, 0o777, 0);
        self.push(h, name, Some(target), &[])
    }
    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = self.header(tar::EntryType::Link, 0o644, 0);
        self.push(h, name, Some(target), &[])
    }
    pub fn fifo(&mut self, name: &str) -> &mut Self {
        let h = self.header(tar::EntryType::Fifo, 0o600, 0);
        self.push(h, name, None, &[])
    }
    pub fn chardev(&mut self, name: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = self.header(tar::EntryType::Char, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.push(h, name, None, &[])
    }
    /// `.wh.<name>` in the parent of `path`.
    pub fn whiteout(&mut self, path: &str) -> &mut Self {
        let (dir, base) = match path.rsplit_once('/') {
            Some((d, b)) => (format!("{d}/"), b),
            None => (String::new(), path),
        };
        self.file(&format!("{dir}.wh.{base}"), b"")
    }
    pub fn opaque(&mut self, dir: &str) -> &mut Self {
        self.file(&format!("{}/.wh..wh..opq", dir.trim_end_matches('/')), b"")
    }
    /// A PAX header with xattrs for the next entry.
    pub fn xattr_next(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let body_len = " SCHILY.xattr.".len() + name.len() + 1 + value.len() + 1;
        let mut len = body_len + 1;
        while len.to_string().len() + body_len != len {
            len = len.to_string().len() + body_len;
        }
        let mut rec = format!("{len} SCHILY.xattr.{name}=").into_bytes();
        rec.extend_from_slice(value);
        rec.push(b'\n');
        let h = self.header(tar::EntryType::XHeader, 0o644, rec.len() as u64);
        self.push(h, "PaxHeaders/x", None, &rec.clone())
    }
    /// The tar, with end-of-archive blocks.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = self.out.clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// Both drivers, for tests that must hold for each.
pub fn drivers() -> [DriverChoice; 2] {
    [DriverChoice::Overlay, DriverChoice::Vfs]
}

/// Entry names of a tar, without trailing slashes.
pub fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            String::from_utf8_lossy(&e.unwrap().path_bytes())
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}
