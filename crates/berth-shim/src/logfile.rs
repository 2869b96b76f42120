//! Docker's `json-file` log format, written by the shim and read by the daemon.
//!
//! Each line of the file is `{"log":"...","stream":"stdout","time":"<RFC 3339, ns>"}`. Output
//! is split at newlines (the newline stays in `log`); a line longer than [`MAX_LINE`] or
//! left unterminated at the end of the stream is written as a partial entry without a
//! trailing newline, as Docker does. Files rotate at `max_size` into `<path>.1`, `<path>.2`,
//! ... up to `max_files` files in all, so a log never grows without bound by default.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest line kept whole before it is written as partial entries.
pub const MAX_LINE: usize = 16 * 1024;
/// Default rotation: 20 MiB per file, 5 files (berth rotates by default; Docker does not).
pub const DEFAULT_MAX_SIZE: u64 = 20 << 20;
pub const DEFAULT_MAX_FILES: u32 = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Rotation settings from `--log-opt max-size=10m --log-opt max-file=3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes; 0 means never rotate.
    pub max_size: u64,
    pub max_files: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// Parses Docker's size strings for `max-size` (`10m`, `1g`, `512k`, `100`); binary
/// multiples, as Docker's `RAMInBytes`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (num, mult) = match lower.char_indices().last()? {
        (i, 'k') => (&lower[..i], 1u64 << 10),
        (i, 'm') => (&lower[..i], 1 << 20),
        (i, 'g') => (&lower[..i], 1 << 30),
        _ => (lower, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    if n < 0.0 {
        return None;
    }
    Some((n * mult as f64) as u64)
}

/// Unix nanoseconds now.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// `2026-11-22T08:00:00.123456789Z` for unix nanoseconds (UTC, always nine digits).
pub fn format_rfc3339_nano(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Writes entries to a `json-file` log with rotation.
pub struct JsonFileWriter {
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    rotation: Rotation,
    /// Unterminated output per stream (stdout, stderr).
    partial: [Vec<u8>; 2],
}

impl JsonFileWriter {
    pub fn open(path: &Path, rotation: Rotation) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 * 1024, file),
            size,
            rotation,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Adds output of one stream; complete lines are written at once.
    pub fn write(&mut self, stream: u8, mut data: &[u8]) -> io::Result<()> {
        let idx = usize::from(stream == crate::proto::STREAM_STDERR);
        let now = format_rfc3339_nano(now_ns());
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let (line, rest) = data.split_at(i + 1);
                    if self.partial[idx].is_empty() {
                        self.entry(idx, line, &now)?;
                    } else {
                        let mut whole = std::mem::take(&mut self.partial[idx]);
                        whole.extend_from_slice(line);
                        self.entry(idx, &whole, &now)?;
                    }
                    data = rest;
                }
                None => {
                    self.partial[idx].extend_from_slice(data);
                    data = &[];
                    while self.partial[idx].len() >= MAX_LINE {
                        let chunk: Vec<u8> = self.partial[idx].drain(..MAX_LINE).collect();
                        self.entry(idx, &chunk, &now)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes what is left unterminated (end of the stream).
    pub fn finish_stream(&mut self, stream: u8) -> io::Result<()> {
        let idx = usize::from(stream == crate::proto::STREAM_STDERR);
        if !self.partial[idx].is_empty() {
            let chunk = std::mem::take(&mut self.partial[idx]);
            self.entry(idx, &chunk, &format_rfc3339_nano(now_ns()))?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn entry(&mut self, idx: usize, line: &[u8], time: &str) -> io::Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: if idx == 0 { "stdout" } else { "stderr" }.to_string(),
            time: time.to_string(),
        };
        let mut bytes = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        bytes.push(b'\n');
        if self.rotation.max_size > 0
            && self.size > 0
            && self.size + bytes.len() as u64 > self.rotation.max_size
        {
            self.rotate()?;
        }
        self.out.write_all(&bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let keep = self.rotation.max_files.max(1);
        for n in (1..keep).rev() {
            let from = rotated_path(&self.path, n - 1);
            if from.exists() {
                std::fs::rename(&from, rotated_path(&self.path, n))?;
            }
        }
        let file = if keep == 1 {
            OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&self.path)?
        } else {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?
        };
        self.out = BufWriter::with_capacity(64 * 1024, file);
        self.size = 0;
        Ok(())
    }
}

/// `<path>` for 0, `<path>.N` for older files.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        path.to_path_buf()
    } else {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }
}

/// The log files of a container, oldest first.
pub fn files_oldest_first(path: &Path, max_files: u32) -> Vec<PathBuf> {
    (0..max_files.max(1))
        .rev()
        .map(|n| rotated_path(path, n))
        .filter(|p| p.exists())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{STREAM_STDERR, STREAM_STDOUT};

    fn read(path: &Path) -> Vec<Entry> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_are_split_and_partials_joined() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut w = JsonFileWriter::open(&p, Rotation::default()).unwrap();
        w.write(STREAM_STDOUT, b"hel").unwrap();
        w.write(STREAM_STDOUT, b"lo\nwor").unwrap();
        w.write(STREAM_STDERR, b"err\n").unwrap();
        w.finish_stream(STREAM_STDOUT).unwrap();
        w.flush().unwrap();
        let e = read(&p);
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].log.as_str(), e[0].stream.as_str()),
            ("hello\n", "stdout")
        );
        assert_eq!(
            (e[1].log.as_str(), e[1].stream.as_str()),
            ("err\n", "stderr")
        );
        assert_eq!(e[2].log, "wor");
    }

    #[test]
    fn files_rotate_and_never_exceed_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut w = JsonFileWriter::open(
            &p,
            Rotation {
                max_size: 200,
                max_files: 3,
            },
        )
        .unwrap();
        for i in 0..100 {
            w.write(STREAM_STDOUT, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        w.flush().unwrap();
        assert!(rotated_path(&p, 2).exists());
        assert!(!rotated_path(&p, 3).exists());
        for f in files_oldest_first(&p, 3) {
            assert!(std::fs::metadata(&f).unwrap().len() <= 200);
        }
        let last = read(&p);
        assert_eq!(last.last().unwrap().log, "line 99\n");
    }

    #[test]
    fn timestamps_are_rfc3339_with_nanoseconds() {
        assert_eq!(format_rfc3339_nano(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339_nano(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
    }

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("x"), None);
    }
}
