//! Layer tar recipes: how to rebuild the exact bytes of an applied layer tar.
//!
//! A layer's diff_id is the sha256 of the *original* uncompressed tar. Regenerating a tar
//! from the unpacked files gives different bytes (header formats, order, padding), and a
//! saved or pushed image whose layer digests differ from its config's `rootfs.diff_ids` is
//! broken. So while applying, every byte of the tar stream that is not file content
//! (headers, PAX records, padding, the end-of-archive blocks) is recorded, and file
//! contents are recorded as references `(path, size)` to the unpacked file. Replaying the
//! recipe against the layer's files yields the original stream, byte for byte. This is
//! the idea of Docker's tar-split, in a small binary format compressed with zstd:
//!
//! ```text
//! "BRTR1\n" then records:  'R' u64le len, bytes   raw stream bytes
//!                          'F' u64le size, u32le len, path   file content
//!                          'E'                                end
//! ```

use crate::error::{IoContext, Result, StorageError};
use crate::fsutil::{open_beneath, open_dir};
use berth_core::digest::Hasher;
use berth_core::Digest;
use rustix::fd::AsFd;
use rustix::fs::OFlags;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const MAGIC: &[u8] = b"BRTR1\n";
const RAW_FLUSH: usize = 1 << 20;

/// Records a recipe while a layer tar streams through.
pub(crate) struct RecipeWriter {
    enc: zstd::stream::write::Encoder<'static, BufWriter<File>>,
    raw: Vec<u8>,
}

impl RecipeWriter {
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path)?;
        let mut enc = zstd::stream::write::Encoder::new(BufWriter::new(file), 3)?;
        enc.write_all(MAGIC)?;
        Ok(Self {
            enc,
            raw: Vec::new(),
        })
    }

    pub fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.raw.extend_from_slice(bytes);
        if self.raw.len() >= RAW_FLUSH {
            self.flush_raw()?;
        }
        Ok(())
    }

    fn flush_raw(&mut self) -> io::Result<()> {
        if !self.raw.is_empty() {
            self.enc.write_all(b"R")?;
            self.enc.write_all(&(self.raw.len() as u64).to_le_bytes())?;
            self.enc.write_all(&self.raw)?;
            self.raw.clear();
        }
        Ok(())
    }

    pub fn file(&mut self, path: &Path, size: u64) -> io::Result<()> {
        self.flush_raw()?;
        let p = path.as_os_str().as_bytes();
        self.enc.write_all(b"F")?;
        self.enc.write_all(&size.to_le_bytes())?;
        self.enc.write_all(&(p.len() as u32).to_le_bytes())?;
        self.enc.write_all(p)
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.flush_raw()?;
        self.enc.write_all(b"E")?;
        let w = self.enc.finish()?;
        w.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    }
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// Writes the original layer tar of the layer in `layer_dir` (its `recipe.zst`, with
/// file contents from `diff/` or `stash/`, never following symlinks), and checks that it
/// hashes to `diff_id`.
pub(crate) fn replay(layer_dir: &Path, diff_id: &Digest, w: &mut dyn Write) -> Result<u64> {
    let recipe = &layer_dir.join("recipe.zst");
    let corrupt = |reason: String| {
        StorageError::io(
            "replaying layer recipe",
            recipe,
            io::Error::new(io::ErrorKind::InvalidData, reason),
        )
    };
    let stash_index = layer_dir.join(crate::apply::STASH_INDEX);
    let stashed: HashMap<u64, String> = match fs::read(&stash_index) {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| corrupt(format!("bad stash index: {e}")))?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
        Err(e) => return Err(StorageError::io("reading", &stash_index, e)),
    };
    let layer_fd = open_dir(layer_dir).ctx("opening", layer_dir)?;
    let diff = layer_dir.join("diff");
    let diff_fd = open_dir(&diff).ctx("opening", &diff)?;
    let mut index = 0u64;
    let file = File::open(recipe).ctx("opening", recipe)?;
    let mut r = BufReader::new(zstd::stream::read::Decoder::new(file).ctx("reading", recipe)?);
    let mut magic = [0u8; 6];
    r.read_exact(&mut magic).ctx("reading", recipe)?;
    if magic != MAGIC {
        return Err(corrupt("bad magic".into()));
    }
    let mut out = HashingWriter {
        inner: w,
        hasher: Hasher::new(),
        size: 0,
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag).ctx("reading", recipe)?;
        match tag[0] {
            b'R' => {
                let len = read_u64(&mut r).ctx("reading", recipe)?;
                let n = io::copy(&mut (&mut r).take(len), &mut out)
                    .ctx("writing layer tar from", recipe)?;
                if n != len {
                    return Err(corrupt("truncated raw record".into()));
                }
            }
            b'F' => {
                let size = read_u64(&mut r).ctx("reading", recipe)?;
                let len = read_u32(&mut r).ctx("reading", recipe)? as usize;
                let mut p = vec![0u8; len];
                r.read_exact(&mut p).ctx("reading", recipe)?;
                let rel = Path::new(OsStr::from_bytes(&p));
                let fd = match stashed.get(&index) {
                    Some(s) => open_beneath(layer_fd.as_fd(), Path::new(s), OFlags::RDONLY),
                    None => open_beneath(diff_fd.as_fd(), rel, OFlags::RDONLY),
                }
                .ctx("opening layer file", rel)?;
                index += 1;
                let mut f = File::from(fd);
                let mut left = size;
                while left > 0 {
                    let want = buf.len().min(left as usize);
                    let n = f.read(&mut buf[..want]).ctx("reading layer file", rel)?;
                    if n == 0 {
                        return Err(corrupt(format!(
                            "{} is shorter than recorded",
                            rel.display()
                        )));
                    }
                    out.write_all(&buf[..n])
                        .ctx("writing layer tar from", rel)?;
                    left -= n as u64;
                }
            }
            b'E' => break,
            other => return Err(corrupt(format!("unknown record {other:#x}"))),
        }
    }
    let actual = out.hasher.finish();
    if actual != *diff_id {
        return Err(StorageError::DiffIdMismatch {
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(out.size)
}

/// The length of the tar a recipe rebuilds, read from the recipe alone.
pub(crate) fn recorded_size(layer_dir: &Path) -> Result<u64> {
    let recipe = &layer_dir.join("recipe.zst");
    let file = File::open(recipe).ctx("opening", recipe)?;
    let mut r = BufReader::new(zstd::stream::read::Decoder::new(file).ctx("reading", recipe)?);
    let mut magic = [0u8; 6];
    r.read_exact(&mut magic).ctx("reading", recipe)?;
    let mut size = 0u64;
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag).ctx("reading", recipe)?;
        match tag[0] {
            b'R' => {
                let len = read_u64(&mut r).ctx("reading", recipe)?;
                io::copy(&mut (&mut r).take(len), &mut io::sink()).ctx("reading", recipe)?;
                size += len;
            }
            b'F' => {
                size += read_u64(&mut r).ctx("reading", recipe)?;
                let len = read_u32(&mut r).ctx("reading", recipe)? as u64;
                io::copy(&mut (&mut r).take(len), &mut io::sink()).ctx("reading", recipe)?;
            }
            b'E' => return Ok(size),
            other => {
                return Err(StorageError::io(
                    "reading",
                    recipe,
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unknown record {other:#x}"),
                    ),
                ))
            }
        }
    }
}

/// A writer that hashes and counts what passes through.
pub(crate) struct HashingWriter<W> {
    pub inner: W,
    pub hasher: Hasher,
    pub size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Hasher::new(),
            size: 0,
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
