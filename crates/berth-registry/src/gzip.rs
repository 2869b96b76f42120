//! The gzip writer push uses for layers without a stored blob: fast, and quick to give
//! up on data that does not compress.
//!
//! Input is cut into 1 MiB blocks. Each block is deflated (miniz_oxide, level 1) and ended
//! with a full flush, which byte-aligns the stream and resets the dictionary, so the
//! blocks are independent. When a block does not shrink by 3% (media, archives, random
//! data), the next seven are written as stored deflate blocks without trying, then a
//! block is tried again; deflating incompressible data costs ten times a copy and gains
//! nothing. The result is an ordinary single-member gzip stream.
//!
//! miniz_oxide is used directly rather than through flate2, whose backend is chosen for
//! the whole build (zlib-rs, picked for decoding, deflates incompressible data at a
//! third of miniz_oxide's level-1 speed here and expands it by 5%).

use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};
use std::io::{self, Write};

/// Input per independently deflated block.
const BLOCK: usize = 1 << 20;
/// Blocks stored without trying after one that did not compress.
const SKIP_AFTER_INCOMPRESSIBLE: u32 = 7;
/// A block "compresses" when its output is below this fraction of its input.
const WORTHWHILE: f64 = 0.97;
/// The largest stored deflate block.
const STORED_MAX: usize = 65_535;

/// A gzip encoder writing to `W`. Call [`finish`](Self::finish) to end the stream.
pub(crate) struct FastGzip<W: Write> {
    out: W,
    deflate: Box<CompressorOxide>,
    crc: crc32fast::Hasher,
    size: u64,
    pending: Vec<u8>,
    buf: Vec<u8>,
    skip: u32,
}

impl<W: Write> FastGzip<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=4 (fastest) OS=255 (unknown), as Go writes.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255])?;
        let flags = create_comp_flags_from_zip_params(1, -15, 0);
        Ok(Self {
            out,
            deflate: Box::new(CompressorOxide::new(flags)),
            crc: crc32fast::Hasher::new(),
            size: 0,
            pending: Vec::with_capacity(BLOCK),
            buf: vec![0u8; 256 * 1024],
            skip: 0,
        })
    }

    /// Deflates `data` ending with `flush`, writing everything produced.
    fn deflate(&mut self, data: &[u8], flush: TDEFLFlush) -> io::Result<u64> {
        let mut pos = 0;
        let mut written = 0u64;
        loop {
            let (status, consumed, produced) =
                compress(&mut self.deflate, &data[pos..], &mut self.buf, flush);
            pos += consumed;
            self.out.write_all(&self.buf[..produced])?;
            written += produced as u64;
            match status {
                TDEFLStatus::Done => return Ok(written),
                TDEFLStatus::Okay if pos == data.len() && produced < self.buf.len() => {
                    return Ok(written)
                }
                TDEFLStatus::Okay => {}
                other => {
                    return Err(io::Error::other(format!("deflate failed: {other:?}")));
                }
            }
        }
    }

    /// Writes `data` as stored deflate blocks (the stream is byte-aligned after a flush).
    fn store(&mut self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(STORED_MAX) {
            let len = chunk.len() as u16;
            let [l0, l1] = len.to_le_bytes();
            let [n0, n1] = (!len).to_le_bytes();
            self.out.write_all(&[0, l0, l1, n0, n1])?;
            self.out.write_all(chunk)?;
        }
        Ok(())
    }

    fn block(&mut self, data: &[u8]) -> io::Result<()> {
        if self.skip > 0 {
            self.skip -= 1;
            return self.store(data);
        }
        let out = self.deflate(data, TDEFLFlush::Full)?;
        if out as f64 > data.len() as f64 * WORTHWHILE {
            self.skip = SKIP_AFTER_INCOMPRESSIBLE;
        }
        Ok(())
    }

    /// Ends the stream (final block, CRC and size) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let rest = std::mem::take(&mut self.pending);
        if self.skip > 0 {
            self.store(&rest)?;
            self.deflate(&[], TDEFLFlush::Finish)?;
        } else {
            self.deflate(&rest, TDEFLFlush::Finish)?;
        }
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&(self.size as u32).to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for FastGzip<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let len = data.len();
        self.crc.update(data);
        self.size += len as u64;
        let mut rest = data;
        while !rest.is_empty() {
            let take = (BLOCK - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == BLOCK {
                let block = std::mem::replace(&mut self.pending, Vec::with_capacity(BLOCK));
                self.block(&block)?;
            }
        }
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn gzip(data: &[u8], piece: usize) -> Vec<u8> {
        let mut gz = FastGzip::new(Vec::new()).unwrap();
        for c in data.chunks(piece) {
            gz.write_all(c).unwrap();
        }
        gz.finish().unwrap()
    }

    fn random(n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut v);
        v
    }

    #[test]
    fn compressible_data_round_trips_and_shrinks() {
        let data = b"layer contents compress well when they repeat; ".repeat(100_000);
        let gz = gzip(&data, 10_000);
        assert!(gz.len() < data.len() / 20, "{}", gz.len());
        assert_eq!(gunzip(&gz), data);
    }

    #[test]
    fn incompressible_data_is_stored_and_mixed_streams_round_trip() {
        let mut data = random(2 << 20);
        data.extend(b"abc".repeat(1 << 20));
        data.extend(random(10 << 20));
        data.extend(b"tail".repeat(1000));
        let gz = gzip(&data, 300_000);
        assert!(
            gz.len() < data.len() + data.len() / 500,
            "stored blocks cost little"
        );
        assert_eq!(gunzip(&gz), data);
    }

    #[test]
    fn empty_and_tiny_inputs_are_valid_gzip() {
        assert_eq!(gunzip(&gzip(b"", 1)), b"");
        assert_eq!(gunzip(&gzip(b"x", 1)), b"x");
        let exact = random(BLOCK);
        assert_eq!(gunzip(&gzip(&exact, BLOCK)), exact);
    }
}
