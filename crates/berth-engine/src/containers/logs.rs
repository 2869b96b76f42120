//! `docker logs`: reading the log the shim writes (`json-file` or `local`, rotated files
//! plain or gzipped), with `--tail`, `--since`, `--until`, `--timestamps` and `--follow`
//! (which also follows rotation).
//!
//! The files are streamed, never loaded whole: a reader decodes up to [`BATCH_BYTES`] at a
//! time on a blocking thread and hands the lines over in batches, so a 100 MB log costs a
//! few hundred KiB of memory and one channel message per batch rather than per line.
//! `--tail N` counts the last N entries of all streams, as Docker's does, by reading the
//! files backwards (newlines in `json-file`, the trailing lengths in `local`).

use super::log_config::LogSettings;
use crate::Engine;
use berth_core::container::Status;
use berth_core::{Error, Result};
use berth_shim::logfile::{self, Decoded, LogFile, LogFormat};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const FOLLOW_POLL: Duration = Duration::from_millis(50);
/// Bytes decoded per batch.
const BATCH_BYTES: usize = 1 << 20;
/// Rotated files looked at (more than any `max-file` in use).
const MAX_FILES: u32 = 100;

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub timestamps: bool,
    /// `None`: all.
    pub tail: Option<usize>,
}

/// One log message for the client; stream 1 stdout, 2 stderr.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub stream: u8,
    pub data: Vec<u8>,
    pub time: Option<DateTime<Utc>>,
}

impl From<Decoded> for LogLine {
    fn from(d: Decoded) -> LogLine {
        LogLine {
            stream: d.stream,
            data: d.line,
            time: (d.time_ns != 0).then(|| DateTime::from_timestamp_nanos(d.time_ns)),
        }
    }
}

/// Every entry of a log (all rotated files), oldest first. For `attach?logs=1`.
pub fn read_log_file_all(format: LogFormat, path: &Path) -> Vec<LogLine> {
    let files = logfile::files_oldest_first(path, MAX_FILES);
    let mut reader = LogReader::new(format, files, None);
    let mut out = Vec::new();
    while let Ok((batch, more)) = reader.read_batch() {
        out.extend(batch.into_iter().map(LogLine::from));
        if !more {
            break;
        }
    }
    out
}

/// Docker's fixed-width RFC 3339 with nanoseconds, as `logs -t` prints it.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// Splits a byte stream into entries of one format.
struct FrameDecoder {
    format: LogFormat,
    buf: Vec<u8>,
    pos: usize,
}

impl FrameDecoder {
    fn new(format: LogFormat) -> Self {
        Self {
            format,
            buf: Vec::new(),
            pos: 0,
        }
    }

    fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > (1 << 20) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete entry; `Some(None)` for a complete but unreadable one.
    fn next(&mut self) -> Option<Option<Decoded>> {
        let rest = &self.buf[self.pos..];
        match self.format {
            LogFormat::JsonFile => {
                let n = memchr_newline(rest)?;
                self.pos += n + 1;
                Some(logfile::decode_json_line(&rest[..n]))
            }
            LogFormat::Local => {
                let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
                let frame = rest.get(4..4 + len + 4)?;
                self.pos += len + 8;
                Some(logfile::decode_local_entry(&frame[..len]))
            }
        }
    }

    /// Forgets what was buffered (a new file begins).
    fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Where reading starts: a file of the list and, in it, a byte offset (plain files) or a
/// number of entries to skip (gzipped ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Start {
    file: usize,
    offset: u64,
    skip: usize,
}

/// Entries in a whole file, counted forward (gzipped files).
fn count_entries(f: &LogFile, format: LogFormat) -> io::Result<usize> {
    let mut input = open_file(f)?;
    let mut dec = FrameDecoder::new(format);
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0;
    loop {
        let got = input.read(&mut buf)?;
        if got == 0 {
            return Ok(n);
        }
        dec.feed(&buf[..got]);
        while dec.next().is_some() {
            n += 1;
        }
    }
}

/// The offset where the last `want` entries of a plain file begin, or the number of entries
/// the file has when it has fewer.
fn tail_offset(path: &Path, format: LogFormat, want: usize) -> io::Result<Result<u64, usize>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    match format {
        LogFormat::JsonFile => {
            // Entries end with a newline: the start of the last `want` is just after the
            // (want+1)-th newline from the end (a trailing partial line does not count).
            let mut pos = len;
            let mut seen = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            let mut first_block = true;
            while pos > 0 {
                let n = (pos as usize).min(buf.len());
                pos -= n as u64;
                file.seek(SeekFrom::Start(pos))?;
                file.read_exact(&mut buf[..n])?;
                let mut block = &buf[..n];
                if first_block {
                    // Whatever follows the last newline is not a complete entry.
                    match memchr_rev(block) {
                        Some(i) => block = &block[..=i],
                        None => block = &[],
                    }
                    first_block = false;
                }
                for i in (0..block.len()).rev() {
                    if block[i] == b'\n' {
                        seen += 1;
                        if seen == want + 1 {
                            return Ok(Ok(pos + i as u64 + 1));
                        }
                    }
                }
            }
            Ok(Err(seen))
        }
        LogFormat::Local => {
            let mut pos = len;
            let mut seen = 0usize;
            let mut lenbuf = [0u8; 4];
            while pos >= 8 && seen < want {
                file.seek(SeekFrom::Start(pos - 4))?;
                file.read_exact(&mut lenbuf)?;
                let n = u64::from(u32::from_be_bytes(lenbuf));
                if n + 8 > pos {
                    break;
                }
                pos -= n + 8;
                seen += 1;
            }
            if seen == want {
                Ok(Ok(pos))
            } else {
                Ok(Err(seen))
            }
        }
    }
}

fn memchr_rev(b: &[u8]) -> Option<usize> {
    b.iter().rposition(|&c| c == b'\n')
}

/// Where reading must start for `--tail want` over `files` (oldest first).
fn tail_start(files: &[LogFile], format: LogFormat, want: usize) -> Start {
    if want == 0 {
        // Nothing of the past: the end of the newest file (where `--follow` goes on).
        let Some(last) = files.len().checked_sub(1) else {
            return Start::default();
        };
        let offset = std::fs::metadata(&files[last].path).map_or(0, |m| m.len());
        return Start {
            file: last,
            offset,
            skip: 0,
        };
    }
    let mut need = want;
    for (i, f) in files.iter().enumerate().rev() {
        if need == 0 {
            return Start {
                file: i + 1,
                ..Default::default()
            };
        }
        if f.gz {
            let n = count_entries(f, format).unwrap_or(0);
            if n >= need {
                return Start {
                    file: i,
                    offset: 0,
                    skip: n - need,
                };
            }
            need -= n;
        } else {
            match tail_offset(&f.path, format, need) {
                Ok(Ok(offset)) => {
                    return Start {
                        file: i,
                        offset,
                        skip: 0,
                    }
                }
                Ok(Err(n)) => need -= n,
                Err(_) => {}
            }
        }
    }
    Start::default()
}

fn open_file(f: &LogFile) -> io::Result<Box<dyn Read + Send>> {
    let file = File::open(&f.path)?;
    Ok(if f.gz {
        Box::new(flate2::read::GzDecoder::new(io::BufReader::new(file)))
    } else {
        Box::new(file)
    })
}

/// Reads a log's files in order; the last one can be followed.
struct LogReader {
    files: VecDeque<LogFile>,
    current: Option<(Box<dyn Read + Send>, Option<u64>)>,
    decoder: FrameDecoder,
    skip: usize,
    buf: Vec<u8>,
}

impl LogReader {
    fn new(format: LogFormat, files: Vec<LogFile>, tail: Option<usize>) -> Self {
        let start = match tail {
            Some(n) => tail_start(&files, format, n),
            None => Start::default(),
        };
        let mut files: VecDeque<LogFile> = files.into_iter().skip(start.file).collect();
        let mut current = None;
        if start.offset > 0 || start.skip > 0 {
            if let Some(f) = files.pop_front() {
                current = open_at(&f, start.offset).ok();
            }
        }
        Self {
            files,
            current,
            decoder: FrameDecoder::new(format),
            skip: start.skip,
            buf: vec![0u8; 256 * 1024],
        }
    }

    /// Decodes up to about [`BATCH_BYTES`]; `false` once everything was read (more may be
    /// written to the last file later).
    fn read_batch(&mut self) -> io::Result<(Vec<Decoded>, bool)> {
        let mut out = Vec::new();
        let mut read = 0;
        while read < BATCH_BYTES {
            if self.current.is_none() {
                let Some(f) = self.files.pop_front() else {
                    return Ok((out, false));
                };
                match open_at(&f, 0) {
                    Ok(c) => self.current = Some(c),
                    Err(_) => continue,
                }
                self.decoder.clear();
            }
            let Some((input, _)) = self.current.as_mut() else {
                continue;
            };
            let n = input.read(&mut self.buf)?;
            if n == 0 {
                if self.files.is_empty() {
                    return Ok((out, false));
                }
                self.current = None;
                continue;
            }
            read += n;
            self.decoder.feed(&self.buf[..n]);
            while let Some(entry) = self.decoder.next() {
                if self.skip > 0 {
                    self.skip -= 1;
                    continue;
                }
                if let Some(e) = entry {
                    out.push(e);
                }
            }
        }
        Ok((out, true))
    }

    /// The inode of the file being read (plain files only), to notice rotation.
    fn current_inode(&self) -> Option<u64> {
        self.current.as_ref().and_then(|(_, ino)| *ino)
    }

    /// Rotation happened: what is left of the old file is read on, then `path` anew.
    fn switch_to(&mut self, path: &Path) {
        self.files.push_back(LogFile {
            path: path.to_path_buf(),
            gz: false,
        });
    }
}

fn open_at(f: &LogFile, offset: u64) -> io::Result<(Box<dyn Read + Send>, Option<u64>)> {
    if f.gz {
        return Ok((open_file(f)?, None));
    }
    let mut file = File::open(&f.path)?;
    let ino = file.metadata()?.ino();
    if offset > 0 {
        file.seek(SeekFrom::Start(offset))?;
    }
    Ok((Box::new(file), Some(ino)))
}

struct Filter {
    opts: LogsOptions,
}

impl Filter {
    fn accept(&self, l: &Decoded) -> bool {
        let stream_ok = if l.stream == 2 {
            self.opts.stderr
        } else {
            self.opts.stdout
        };
        if !stream_ok {
            return false;
        }
        let t = l.time_ns;
        if let Some(s) = self.opts.since {
            if t < s.timestamp_nanos_opt().unwrap_or(i64::MIN) {
                return false;
            }
        }
        true
    }

    /// Past `--until`: nothing after this is wanted.
    fn past_until(&self, l: &Decoded) -> bool {
        self.opts
            .until
            .is_some_and(|u| l.time_ns > u.timestamp_nanos_opt().unwrap_or(i64::MAX))
    }

    fn render(&self, d: Decoded) -> LogLine {
        let mut l = LogLine::from(d);
        if self.opts.timestamps {
            let mut data = format_timestamp(l.time.unwrap_or_else(Utc::now)).into_bytes();
            data.push(b' ');
            data.extend_from_slice(&l.data);
            l.data = data;
        }
        l
    }

    /// The lines of a batch to send, and whether `--until` was passed.
    fn select(&self, batch: Vec<Decoded>) -> (Vec<LogLine>, bool) {
        let mut out = Vec::with_capacity(batch.len());
        for d in batch {
            if self.past_until(&d) {
                return (out, true);
            }
            if self.accept(&d) {
                out.push(self.render(d));
            }
        }
        (out, false)
    }
}

impl Engine {
    /// Streams a container's log in batches of lines. The receiver ends when everything
    /// asked for was sent (with `follow`, after the container stopped and the log was read
    /// to its end).
    pub fn container_logs(
        self: &Arc<Self>,
        name: &str,
        opts: LogsOptions,
    ) -> Result<(bool, mpsc::Receiver<Vec<LogLine>>)> {
        let entry = self.container(name)?;
        let c = entry.snapshot();
        let Some(LogSettings { format, path, .. }) = self.log_settings(&c)? else {
            return Err(Error::invalid(
                "configured logging driver does not support reading",
            ));
        };
        let tty = c.config.tty;
        let (tx, rx) = mpsc::channel(8);
        let mut life = entry.lifecycle();
        let filter = Arc::new(Filter { opts });
        tokio::spawn(async move {
            let tail = filter.opts.tail;
            let files_path = path.clone();
            let reader = tokio::task::spawn_blocking(move || {
                LogReader::new(
                    format,
                    logfile::files_oldest_first(&files_path, MAX_FILES),
                    tail,
                )
            })
            .await;
            let Ok(mut reader) = reader else { return };
            let follow = filter.opts.follow && filter.opts.until.is_none_or(|u| u > Utc::now());
            loop {
                let f = filter.clone();
                let step = tokio::task::spawn_blocking(move || {
                    let r = reader.read_batch();
                    (reader, r.map(|(batch, more)| (f.select(batch), more)))
                })
                .await;
                let Ok((r, result)) = step else { return };
                reader = r;
                let Ok(((lines, past_until), more)) = result else {
                    return;
                };
                if !lines.is_empty() && tx.send(lines).await.is_err() {
                    return;
                }
                if past_until {
                    return;
                }
                if more {
                    continue;
                }
                if !follow {
                    return;
                }
                // At the end of the newest file: wait for more, a rotation, or the end.
                let rotated = match (std::fs::metadata(&path), reader.current_inode()) {
                    (Ok(now), Some(ours)) => now.ino() != ours,
                    (Ok(_), None) => true,
                    _ => false,
                };
                if rotated {
                    reader.switch_to(&path);
                    continue;
                }
                let status = life.borrow().status;
                if !matches!(
                    status,
                    Status::Running | Status::Paused | Status::Restarting
                ) {
                    // One last read for what the shim flushed on exit.
                    let f = filter.clone();
                    let last = tokio::task::spawn_blocking(move || {
                        reader.read_batch().map(|(b, _)| f.select(b).0)
                    })
                    .await;
                    if let Ok(Ok(lines)) = last {
                        if !lines.is_empty() {
                            let _ = tx.send(lines).await;
                        }
                    }
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(FOLLOW_POLL) => {}
                    _ = life.changed() => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok((tty, rx))
    }
}

impl From<LogLine> for Bytes {
    fn from(l: LogLine) -> Bytes {
        Bytes::from(l.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_shim::logfile::{LogWriter, Rotation};
    use berth_shim::proto::{STREAM_STDERR, STREAM_STDOUT};
    use std::path::PathBuf;

    fn write_log(dir: &Path, format: LogFormat, n: usize, rotation: Rotation) -> PathBuf {
        let p = dir.join("log");
        let mut w = LogWriter::open(&p, format, rotation).unwrap();
        for i in 0..n {
            let stream = if i % 3 == 2 {
                STREAM_STDERR
            } else {
                STREAM_STDOUT
            };
            w.write(stream, format!("line {i}\n").as_bytes()).unwrap();
        }
        w.close().unwrap();
        p
    }

    fn read_all(p: &Path, format: LogFormat, tail: Option<usize>) -> Vec<String> {
        let mut r = LogReader::new(format, logfile::files_oldest_first(p, MAX_FILES), tail);
        let mut out = Vec::new();
        loop {
            let (batch, more) = r.read_batch().unwrap();
            out.extend(
                batch
                    .into_iter()
                    .map(|d| String::from_utf8(d.line).unwrap()),
            );
            if !more {
                return out;
            }
        }
    }

    /// Calls `check` with a log of `lines` lines written in each format, rotated every 400
    /// bytes, with and without compression.
    fn each_rotated_log(lines: usize, check: impl Fn(&Path, LogFormat, bool)) {
        for format in [LogFormat::JsonFile, LogFormat::Local] {
            for compress in [false, true] {
                let dir = tempfile::tempdir().unwrap();
                let rotation = Rotation {
                    max_size: 400,
                    max_files: 50,
                    compress,
                };
                check(
                    &write_log(dir.path(), format, lines, rotation),
                    format,
                    compress,
                );
            }
        }
    }

    #[test]
    fn every_format_reads_back_across_rotated_and_gzipped_files() {
        each_rotated_log(200, |p, format, compress| {
            let lines = read_all(p, format, None);
            assert_eq!(lines.len(), 200, "{format:?} compress={compress}");
            assert_eq!(lines[0], "line 0\n");
            assert_eq!(lines[199], "line 199\n");
        });
    }

    #[test]
    fn tail_counts_entries_from_the_end_across_files() {
        each_rotated_log(100, |p, format, compress| {
            let files = logfile::files_oldest_first(p, MAX_FILES);
            let end = tail_start(&files, format, 0);
            assert_eq!(end.file, files.len() - 1);
            assert_eq!(end.offset, std::fs::metadata(p).unwrap().len());
            for n in [0usize, 1, 7, 30, 99, 100, 500] {
                let lines = read_all(p, format, Some(n));
                assert_eq!(lines.len(), n.min(100), "{format:?} {compress} tail {n}");
                if n > 0 {
                    assert_eq!(lines.last().unwrap(), "line 99\n");
                    assert_eq!(lines[0], format!("line {}\n", 100 - n.min(100)));
                }
            }
        });
    }

    #[test]
    fn filters_pick_streams_and_stop_at_until() {
        let opts = LogsOptions {
            stdout: false,
            stderr: true,
            until: Some(DateTime::from_timestamp_nanos(2000)),
            ..Default::default()
        };
        let f = Filter { opts };
        let d = |stream, t| Decoded {
            stream,
            line: b"x\n".to_vec(),
            time_ns: t,
        };
        let (lines, past) = f.select(vec![d(1, 1000), d(2, 1500), d(2, 2500), d(2, 1600)]);
        assert_eq!(lines.len(), 1);
        assert!(past);
    }
}
