//! Compression detection by magic bytes: gzip, zstd, bzip2, xz or plain streams.
//!
//! Layers, imports and whole image archives may arrive compressed; [`decompress`] peeks
//! at the first bytes and wraps the reader in the right decoder, so callers always read
//! the plain tar stream.

use std::io::{self, BufReader, Read};

/// What a stream is compressed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// Detects the compression of a stream from its first bytes.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else if head.starts_with(BZIP2_MAGIC) {
        Compression::Bzip2
    } else if head.starts_with(XZ_MAGIC) {
        Compression::Xz
    } else {
        Compression::None
    }
}

/// Wraps `reader` in the decoder its magic bytes call for (as Docker does, every format
/// is accepted everywhere: layers, imports and whole archives).
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut reader = reader;
    let mut head = Vec::with_capacity(XZ_MAGIC.len());
    (&mut reader)
        .take(XZ_MAGIC.len() as u64)
        .read_to_end(&mut head)?;
    let kind = detect(&head);
    let buf = BufReader::with_capacity(256 * 1024, io::Cursor::new(head).chain(reader));
    let out: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buf)?),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buf)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(buf)),
    };
    Ok((kind, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(kind: Compression, data: &[u8]) -> Vec<u8> {
        let compressed = match kind {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(data, 1).unwrap(),
            Compression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        };
        let (detected, mut r) = decompress(&compressed[..]).unwrap();
        assert_eq!(detected, kind);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn every_supported_compression_is_detected_and_decoded() {
        let data = b"some tar-ish bytes, long enough to compress".repeat(100);
        for kind in [
            Compression::None,
            Compression::Gzip,
            Compression::Zstd,
            Compression::Bzip2,
            Compression::Xz,
        ] {
            assert_eq!(roundtrip(kind, &data), data);
        }
    }

    #[test]
    fn empty_and_tiny_inputs_are_plain() {
        assert_eq!(decompress(&b""[..]).unwrap().0, Compression::None);
        assert_eq!(decompress(&b"ab"[..]).unwrap().0, Compression::None);
    }
}
