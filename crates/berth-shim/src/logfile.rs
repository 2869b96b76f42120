//! Container log files in Docker's two on-disk formats, written by the shim and read by the
//! daemon.
//!
//! - `json-file`: one JSON object a line, `{"log":"...","stream":"stdout","time":"<RFC 3339,
//!   ns>"}`, escaped as Go's encoder escapes (`<` is `\u003c`), so tools that read Docker's
//!   files read berth's.
//! - `local`: Docker's binary format: each entry is a big-endian `u32` length, a protobuf
//!   `LogEntry` (`source`, `time_nano`, `line`, `partial`, `partial_log_metadata`) and the
//!   length again (so the file can be read backwards). The line is stored without its newline.
//!
//! Output is split at newlines; a line longer than [`MAX_LINE`] is written as partial
//! entries, as Docker does. Files rotate at `max_size` into `<path>.1`, `<path>.2`, ... up to
//! `max_files` files in all (so a log never grows without bound by default); with `compress`
//! the rotated files are gzipped (`<path>.1.gz`) by a helper thread, off the output path.

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
/// The `local` driver's file name inside its directory, as Docker names it.
pub const LOCAL_FILE: &str = "container.log";

/// One `json-file` line, for readers that want the general JSON path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// The on-disk format of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    JsonFile,
    Local,
}

impl LogFormat {
    /// The format of a logging driver (`none` has none).
    pub fn of_driver(driver: &str) -> Option<LogFormat> {
        match driver {
            "json-file" => Some(LogFormat::JsonFile),
            "local" => Some(LogFormat::Local),
            _ => None,
        }
    }
}

/// Rotation settings from `--log-opt max-size=10m --log-opt max-file=3 --log-opt compress=true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes; 0 means never rotate.
    pub max_size: u64,
    pub max_files: u32,
    pub compress: bool,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
            compress: false,
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

/// Unix nanoseconds of an RFC 3339 time (`Z` or `±hh:mm`, 0 to 9 fraction digits).
pub fn parse_rfc3339_nano(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        std::str::from_utf8(b.get(r)?).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut digits = 0;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if digits < 9 {
                nanos = nanos * 10 + i64::from(c - b'0');
                digits += 1;
            }
            i += 1;
        }
        nanos *= 10i64.pow(9 - digits);
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = (oh * 3600 + om * 60) * 1_000_000_000;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    Some(secs * 1_000_000_000 + nanos - offset)
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

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Appends `s` as the body of a JSON string, escaped as Go's `encoding/json` does (HTML
/// characters and U+2028/U+2029 as `\u` escapes), which is what Docker's files contain.
pub fn escape_json(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (esc, width): (&[u8], usize) = match c {
            b'"' => (b"\\\"", 1),
            b'\\' => (b"\\\\", 1),
            b'\n' => (b"\\n", 1),
            b'\r' => (b"\\r", 1),
            b'\t' => (b"\\t", 1),
            b'<' => (b"\\u003c", 1),
            b'>' => (b"\\u003e", 1),
            b'&' => (b"\\u0026", 1),
            0..=0x1f => (b"", 1),
            0xe2 if b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xa8 | 0xa9)) => (
                if b[i + 2] == 0xa8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                },
                3,
            ),
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&b[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        i += width;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
}

/// One `json-file` line for `line` (its newline, if any, included).
pub fn encode_json_entry(out: &mut Vec<u8>, line: &[u8], stream: &str, time: &str) {
    out.extend_from_slice(b"{\"log\":\"");
    escape_json(out, &String::from_utf8_lossy(line));
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// A decoded log entry: stream 1 stdout, 2 stderr; the line as the container wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub stream: u8,
    pub line: Vec<u8>,
    pub time_ns: i64,
}

fn stream_id(source: &[u8]) -> u8 {
    if source == b"stderr" {
        2
    } else {
        1
    }
}

/// Decodes one `json-file` line (without its newline). The lines berth writes take a fast
/// path; anything else goes through a full JSON parser.
pub fn decode_json_line(line: &[u8]) -> Option<Decoded> {
    decode_json_fast(line).or_else(|| {
        let e: Entry = serde_json::from_slice(line).ok()?;
        Some(Decoded {
            stream: stream_id(e.stream.as_bytes()),
            line: e.log.into_bytes(),
            time_ns: parse_rfc3339_nano(&e.time).unwrap_or(0),
        })
    })
}

fn decode_json_fast(line: &[u8]) -> Option<Decoded> {
    let rest = line.strip_prefix(b"{\"log\":\"")?;
    let mut log = Vec::with_capacity(rest.len());
    let mut i = 0;
    loop {
        let c = *rest.get(i)?;
        match c {
            b'"' => break,
            b'\\' => {
                let e = *rest.get(i + 1)?;
                match e {
                    b'n' => log.push(b'\n'),
                    b't' => log.push(b'\t'),
                    b'r' => log.push(b'\r'),
                    b'"' | b'\\' | b'/' => log.push(e),
                    b'b' => log.push(8),
                    b'f' => log.push(12),
                    b'u' => {
                        let hex = std::str::from_utf8(rest.get(i + 2..i + 6)?).ok()?;
                        let cp = u32::from_str_radix(hex, 16).ok()?;
                        // Surrogate pairs are rare enough for the slow path.
                        let ch = char::from_u32(cp)?;
                        let mut buf = [0u8; 4];
                        log.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        i += 4;
                    }
                    _ => return None,
                }
                i += 2;
                continue;
            }
            _ => {
                let end = rest[i..]
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\')
                    .map_or(rest.len(), |p| i + p);
                log.extend_from_slice(&rest[i..end]);
                i = end;
                continue;
            }
        }
    }
    let rest = rest[i..].strip_prefix(b"\",\"stream\":\"")?;
    let q = rest.iter().position(|&b| b == b'"')?;
    let stream = stream_id(&rest[..q]);
    let rest = rest[q..].strip_prefix(b"\",\"time\":\"")?;
    let q = rest.iter().position(|&b| b == b'"')?;
    let time_ns = parse_rfc3339_nano(std::str::from_utf8(&rest[..q]).ok()?)?;
    if &rest[q..] != b"\"}" {
        return None;
    }
    Some(Decoded {
        stream,
        line: log,
        time_ns,
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes_field(out: &mut Vec<u8>, field: u8, data: &[u8]) {
    out.push((field << 3) | 2);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// How a `local` entry relates to its neighbours (Docker's `PartialLogEntryMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialMeta {
    pub last: bool,
    pub id: String,
    pub ordinal: i32,
}

/// One framed `local` entry: length, protobuf `LogEntry`, length.
pub fn encode_local_entry(
    out: &mut Vec<u8>,
    line: &[u8],
    stream: &str,
    time_ns: i64,
    partial: Option<&PartialMeta>,
) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    put_bytes_field(out, 1, stream.as_bytes());
    out.push(2 << 3);
    put_varint(out, time_ns as u64);
    put_bytes_field(out, 3, line);
    if let Some(p) = partial {
        out.push(4 << 3);
        out.push(1);
        let mut meta = Vec::with_capacity(16 + p.id.len());
        if p.last {
            meta.push(1 << 3);
            meta.push(1);
        }
        put_bytes_field(&mut meta, 2, p.id.as_bytes());
        if p.ordinal != 0 {
            meta.push(3 << 3);
            put_varint(&mut meta, i64::from(p.ordinal) as u64);
        }
        put_bytes_field(out, 5, &meta);
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
}

fn get_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Decodes a protobuf `LogEntry` (the bytes between the two lengths). As Docker's reader
/// does, a newline is added back unless the entry is a partial one that is not the last.
pub fn decode_local_entry(b: &[u8]) -> Option<Decoded> {
    let (mut stream, mut line, mut time_ns) = (1, Vec::new(), 0i64);
    let (mut partial, mut last) = (false, false);
    let mut i = 0;
    while i < b.len() {
        let key = get_varint(b, &mut i)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = get_varint(b, &mut i)?;
                match field {
                    2 => time_ns = v as i64,
                    4 => partial = v != 0,
                    _ => {}
                }
            }
            2 => {
                let len = get_varint(b, &mut i)? as usize;
                let data = b.get(i..i.checked_add(len)?)?;
                i += len;
                match field {
                    1 => stream = stream_id(data),
                    3 => line = data.to_vec(),
                    5 => {
                        let mut j = 0;
                        while j < data.len() {
                            let k = get_varint(data, &mut j)?;
                            match k & 7 {
                                0 => {
                                    let v = get_varint(data, &mut j)?;
                                    if k >> 3 == 1 {
                                        last = v != 0;
                                    }
                                }
                                2 => {
                                    let l = get_varint(data, &mut j)? as usize;
                                    j = j.checked_add(l)?;
                                }
                                _ => return None,
                            }
                        }
                    }
                    _ => {}
                }
            }
            1 => i += 8,
            5 => i += 4,
            _ => return None,
        }
    }
    if !partial || last {
        line.push(b'\n');
    }
    Some(Decoded {
        stream,
        line,
        time_ns,
    })
}

/// Writes a container's output to its log file, with rotation.
pub struct LogWriter {
    format: LogFormat,
    path: PathBuf,
    out: BufWriter<File>,
    size: u64,
    rotation: Rotation,
    /// Unterminated output per stream (stdout, stderr).
    partial: [Vec<u8>; 2],
    /// `local`: the partial-message id and ordinal of a long line being split, per stream.
    split: [Option<(String, i32)>; 2],
    entry: Vec<u8>,
    /// The last timestamp formatted, reused for every line of one read.
    time: (i64, String),
    compressing: Option<std::thread::JoinHandle<()>>,
}

impl LogWriter {
    pub fn open(path: &Path, format: LogFormat, rotation: Rotation) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            format,
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(64 * 1024, file),
            size,
            rotation,
            partial: [Vec::new(), Vec::new()],
            split: [None, None],
            entry: Vec::with_capacity(1024),
            time: (0, format_rfc3339_nano(0)),
            compressing: None,
        })
    }

    /// Adds output of one stream; complete lines are written at once.
    pub fn write(&mut self, stream: u8, mut data: &[u8]) -> io::Result<()> {
        let idx = usize::from(stream == crate::proto::STREAM_STDERR);
        let now = now_ns();
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let (line, rest) = data.split_at(i + 1);
                    if self.partial[idx].is_empty() {
                        self.entry(idx, line, true, now)?;
                    } else {
                        let mut whole = std::mem::take(&mut self.partial[idx]);
                        whole.extend_from_slice(line);
                        self.entry(idx, &whole, true, now)?;
                        whole.clear();
                        self.partial[idx] = whole;
                    }
                    data = rest;
                }
                None => {
                    self.partial[idx].extend_from_slice(data);
                    data = &[];
                    while self.partial[idx].len() >= MAX_LINE {
                        let chunk: Vec<u8> = self.partial[idx].drain(..MAX_LINE).collect();
                        self.entry(idx, &chunk, false, now)?;
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
            self.entry(idx, &chunk, false, now_ns())?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and waits for a compression in progress (the shim is about to leave).
    pub fn close(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if let Some(t) = self.compressing.take() {
            let _ = t.join();
        }
        Ok(())
    }

    /// One entry: `line` ends with its newline when `complete`.
    fn entry(&mut self, idx: usize, line: &[u8], complete: bool, now: i64) -> io::Result<()> {
        let stream = if idx == 0 { "stdout" } else { "stderr" };
        self.entry.clear();
        match self.format {
            LogFormat::JsonFile => {
                if self.time.0 != now {
                    self.time = (now, format_rfc3339_nano(now));
                }
                encode_json_entry(&mut self.entry, line, stream, &self.time.1)
            }
            LogFormat::Local => {
                let body = line.strip_suffix(b"\n").unwrap_or(line);
                let meta = match (&mut self.split[idx], complete) {
                    (None, true) => None,
                    (Some((id, ordinal)), true) => {
                        let m = PartialMeta {
                            last: true,
                            id: id.clone(),
                            ordinal: *ordinal + 1,
                        };
                        self.split[idx] = None;
                        Some(m)
                    }
                    (split, false) => {
                        let (id, ordinal) =
                            split.get_or_insert_with(|| (format!("{now:x}{idx}"), 0));
                        *ordinal += 1;
                        Some(PartialMeta {
                            last: false,
                            id: id.clone(),
                            ordinal: *ordinal,
                        })
                    }
                };
                encode_local_entry(&mut self.entry, body, stream, now, meta.as_ref());
            }
        }
        let n = self.entry.len() as u64;
        if self.rotation.max_size > 0 && self.size > 0 && self.size + n > self.rotation.max_size {
            self.rotate()?;
        }
        self.out.write_all(&self.entry)?;
        self.size += n;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let keep = self.rotation.max_files.max(1);
        if keep == 1 {
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&self.path)?;
            self.out = BufWriter::with_capacity(64 * 1024, file);
            self.size = 0;
            return Ok(());
        }
        // The previous rotated file must be compressed before the names shift.
        if let Some(t) = self.compressing.take() {
            let _ = t.join();
        }
        // `.N-1` → `.N` (plain or gzipped alike), oldest first; the current file becomes `.1`.
        for n in (2..keep).rev() {
            for gz in [false, true] {
                let from = rotated_path(&self.path, n - 1, gz);
                if from.exists() {
                    std::fs::rename(&from, rotated_path(&self.path, n, gz))?;
                }
            }
        }
        std::fs::rename(&self.path, rotated_path(&self.path, 1, false))?;
        if self.rotation.compress {
            let plain = rotated_path(&self.path, 1, false);
            self.compressing = Some(std::thread::spawn(move || compress_file(&plain)));
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.out = BufWriter::with_capacity(64 * 1024, file);
        self.size = 0;
        Ok(())
    }
}

/// `<path>.N` → `<path>.N.gz` (written under a temporary name, then the plain file goes).
fn compress_file(plain: &Path) {
    let gz = {
        let mut s = plain.as_os_str().to_owned();
        s.push(".gz");
        PathBuf::from(s)
    };
    let tmp = {
        let mut s = gz.as_os_str().to_owned();
        s.push(".tmp");
        PathBuf::from(s)
    };
    let result = (|| -> io::Result<()> {
        let mut input = File::open(plain)?;
        let out = File::create(&tmp)?;
        let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
        io::copy(&mut input, &mut enc)?;
        enc.finish()?.sync_all()?;
        std::fs::rename(&tmp, &gz)?;
        std::fs::remove_file(plain)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// `<path>` for 0, `<path>.N` (or `<path>.N.gz`) for older files.
pub fn rotated_path(path: &Path, n: u32, gz: bool) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    if gz {
        s.push(".gz");
    }
    PathBuf::from(s)
}

/// A log file and whether it is gzipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    pub path: PathBuf,
    pub gz: bool,
}

/// The files of a container's log, oldest first (rotated files plain or gzipped; a plain
/// one is preferred while its compression is under way).
pub fn files_oldest_first(path: &Path, max_files: u32) -> Vec<LogFile> {
    (0..max_files.max(1))
        .rev()
        .filter_map(|n| {
            let plain = rotated_path(path, n, false);
            if plain.exists() {
                return Some(LogFile {
                    path: plain,
                    gz: false,
                });
            }
            let gz = rotated_path(path, n, true);
            (n > 0 && gz.exists()).then_some(LogFile { path: gz, gz: true })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{STREAM_STDERR, STREAM_STDOUT};

    fn read_json(path: &Path) -> Vec<Decoded> {
        std::fs::read(path)
            .unwrap()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| decode_json_line(l).unwrap())
            .collect()
    }

    fn read_local(path: &Path) -> Vec<Decoded> {
        let b = std::fs::read(path).unwrap();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let n = u32::from_be_bytes(b[i..i + 4].try_into().unwrap()) as usize;
            out.push(decode_local_entry(&b[i + 4..i + 4 + n]).unwrap());
            assert_eq!(&b[i + 4 + n..i + 8 + n], &b[i..i + 4], "trailing length");
            i += n + 8;
        }
        out
    }

    #[test]
    fn lines_are_split_and_partials_joined() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&p, LogFormat::JsonFile, Rotation::default()).unwrap();
        w.write(STREAM_STDOUT, b"hel").unwrap();
        w.write(STREAM_STDOUT, b"lo\nwor").unwrap();
        w.write(STREAM_STDERR, b"err\n").unwrap();
        w.finish_stream(STREAM_STDOUT).unwrap();
        w.flush().unwrap();
        let e = read_json(&p);
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].line.as_slice(), e[0].stream), (&b"hello\n"[..], 1));
        assert_eq!((e[1].line.as_slice(), e[1].stream), (&b"err\n"[..], 2));
        assert_eq!(e[2].line, b"wor");
        assert!(e[0].time_ns > 1_700_000_000_000_000_000);
    }

    #[test]
    fn json_is_escaped_as_docker_writes_it_and_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&p, LogFormat::JsonFile, Rotation::default()).unwrap();
        let line = "a \"q\" \\ <b>&\t\u{1} é \u{2028}\n";
        w.write(STREAM_STDOUT, line.as_bytes()).unwrap();
        w.flush().unwrap();
        let raw = std::fs::read_to_string(&p).unwrap();
        assert!(
            raw.starts_with(
                r#"{"log":"a \"q\" \\ \u003cb\u003e\u0026\t\u0001 é \u2028\n","stream":"stdout","time":""#
            ),
            "{raw}"
        );
        let e: Entry = serde_json::from_str(raw.trim_end()).unwrap();
        assert_eq!(e.log, line);
        assert_eq!(read_json(&p)[0].line, line.as_bytes());
    }

    #[test]
    fn other_writers_lines_are_read_through_the_json_parser() {
        let d = decode_json_line(
            br#"{"time":"2023-11-14T22:13:20.5+01:00","stream":"stderr","log":"x\ud83d\ude00\n"}"#,
        )
        .unwrap();
        assert_eq!(d.stream, 2);
        assert_eq!(d.line, "x\u{1F600}\n".as_bytes());
        assert_eq!(d.time_ns, 1_700_000_000_500_000_000 - 3_600_000_000_000);
        assert!(decode_json_line(b"not json").is_none());
    }

    #[test]
    fn local_entries_round_trip_with_partial_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(LOCAL_FILE);
        let mut w = LogWriter::open(&p, LogFormat::Local, Rotation::default()).unwrap();
        w.write(STREAM_STDOUT, b"one\n").unwrap();
        let long = vec![b'x'; MAX_LINE + 10];
        w.write(STREAM_STDERR, &long).unwrap();
        w.write(STREAM_STDERR, b"end\n").unwrap();
        w.write(STREAM_STDOUT, b"tail").unwrap();
        w.finish_stream(STREAM_STDOUT).unwrap();
        w.flush().unwrap();
        let e = read_local(&p);
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].line, b"one\n");
        // The first part of a split line has no newline; the last part gets it back.
        assert_eq!((e[1].stream, e[1].line.len()), (2, MAX_LINE));
        assert_eq!(e[2].line, b"xxxxxxxxxxend\n");
        assert_eq!(e[3].line, b"tail");
    }

    #[test]
    fn files_rotate_and_never_exceed_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let rotation = Rotation {
            max_size: 200,
            max_files: 3,
            compress: false,
        };
        let mut w = LogWriter::open(&p, LogFormat::JsonFile, rotation).unwrap();
        for i in 0..100 {
            w.write(STREAM_STDOUT, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        w.flush().unwrap();
        assert!(rotated_path(&p, 2, false).exists());
        assert!(!rotated_path(&p, 3, false).exists());
        for f in files_oldest_first(&p, 3) {
            assert!(std::fs::metadata(&f.path).unwrap().len() <= 200);
        }
        assert_eq!(read_json(&p).last().unwrap().line, b"line 99\n");
    }

    #[test]
    fn compressed_rotations_are_gzipped_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let rotation = Rotation {
            max_size: 300,
            max_files: 4,
            compress: true,
        };
        let mut w = LogWriter::open(&p, LogFormat::JsonFile, rotation).unwrap();
        for i in 0..60 {
            w.write(STREAM_STDOUT, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        w.close().unwrap();
        let files = files_oldest_first(&p, 4);
        assert_eq!(files.len(), 4);
        assert!(files[..3].iter().all(|f| f.gz), "{files:?}");
        assert!(!files[3].gz);
        let mut text = String::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(File::open(&files[2].path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let first = decode_json_line(text.lines().next().unwrap().as_bytes()).unwrap();
        assert!(String::from_utf8(first.line).unwrap().starts_with("line "));
        assert!(!rotated_path(&p, 1, false).exists(), "plain file replaced");
    }

    #[test]
    fn timestamps_are_rfc3339_with_nanoseconds_both_ways() {
        assert_eq!(format_rfc3339_nano(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339_nano(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        for ns in [0, 1_700_000_000_123_456_789, 951_782_400_000_000_001] {
            assert_eq!(parse_rfc3339_nano(&format_rfc3339_nano(ns)), Some(ns));
        }
        assert_eq!(
            parse_rfc3339_nano("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(parse_rfc3339_nano("yesterday"), None);
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
