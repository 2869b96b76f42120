//! `docker logs`: reading the `json-file` log the shim writes, with `--tail`, `--since`,
//! `--until`, `--timestamps` and `--follow` (which also follows rotation).

use crate::Engine;
use berth_core::{Error, Result};
use berth_shim::logfile::{self, Entry};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const FOLLOW_POLL: Duration = Duration::from_millis(50);

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

fn parse_entry(line: &[u8]) -> Option<LogLine> {
    let e: Entry = serde_json::from_slice(line).ok()?;
    let stream = if e.stream == "stderr" { 2 } else { 1 };
    let time = DateTime::parse_from_rfc3339(&e.time)
        .ok()
        .map(|t| t.with_timezone(&Utc));
    Some(LogLine {
        stream,
        data: e.log.into_bytes(),
        time,
    })
}

/// Every entry of a log (all rotated files), oldest first. For `attach?logs=1`.
pub fn read_log_file_all(path: &str) -> Vec<LogLine> {
    let mut out = Vec::new();
    for f in logfile::files_oldest_first(Path::new(path), 100) {
        if let Ok(file) = std::fs::File::open(&f) {
            for line in BufReader::new(file)
                .split(b'\n')
                .map_while(std::result::Result::ok)
            {
                if let Some(l) = parse_entry(&line) {
                    out.push(l);
                }
            }
        }
    }
    out
}

/// Docker's fixed-width RFC 3339 with nanoseconds, as `logs -t` prints it.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

struct Filter {
    opts: LogsOptions,
}

impl Filter {
    fn accept(&self, l: &LogLine) -> bool {
        let stream_ok = if l.stream == 2 {
            self.opts.stderr
        } else {
            self.opts.stdout
        };
        if !stream_ok {
            return false;
        }
        if let (Some(s), Some(t)) = (self.opts.since, l.time) {
            if t < s {
                return false;
            }
        }
        if let (Some(u), Some(t)) = (self.opts.until, l.time) {
            if t > u {
                return false;
            }
        }
        true
    }
    fn render(&self, mut l: LogLine) -> LogLine {
        if self.opts.timestamps {
            let mut data = format_timestamp(l.time.unwrap_or_else(Utc::now)).into_bytes();
            data.push(b' ');
            data.extend_from_slice(&l.data);
            l.data = data;
        }
        l
    }
}

/// Reads complete lines from `reader`, keeping a partial last line for later.
fn read_lines(
    reader: &mut impl Read,
    partial: &mut Vec<u8>,
    out: &mut Vec<LogLine>,
) -> std::io::Result<usize> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
        let mut start = 0;
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                if partial.is_empty() {
                    if let Some(l) = parse_entry(&buf[start..i]) {
                        out.push(l);
                    }
                } else {
                    partial.extend_from_slice(&buf[start..i]);
                    if let Some(l) = parse_entry(partial) {
                        out.push(l);
                    }
                    partial.clear();
                }
                start = i + 1;
            }
        }
        partial.extend_from_slice(&buf[start..n]);
    }
}

impl Engine {
    /// Streams a container's log. The receiver ends when everything asked for was sent
    /// (with `follow`, after the container stopped and the log was read to its end).
    pub fn container_logs(
        self: &Arc<Self>,
        name: &str,
        opts: LogsOptions,
    ) -> Result<(bool, mpsc::Receiver<LogLine>)> {
        let entry = self.container(name)?;
        let (tty, log_path, log_opts) = entry.read(|c| {
            (
                c.config.tty,
                c.log_path.clone(),
                c.host_config.log_config.clone(),
            )
        });
        let driver = if log_opts.driver.is_empty() {
            self.cfg.log_driver.clone()
        } else {
            log_opts.driver.clone()
        };
        if log_path.is_empty() || driver == "none" {
            return Err(Error::invalid(
                "configured logging driver does not support reading".to_string(),
            ));
        }
        let (tx, rx) = mpsc::channel(256);
        let mut life = entry.lifecycle();
        let filter = Filter { opts };
        tokio::spawn(async move {
            let path = PathBuf::from(log_path);
            let files = logfile::files_oldest_first(&path, 100);
            let current_path = path.clone();
            // The current file is followed; older ones are read once.
            let (history, current) = tokio::task::spawn_blocking(move || {
                let mut lines = Vec::new();
                let mut cur: Option<(std::fs::File, Vec<u8>)> = None;
                for f in &files {
                    let Ok(mut file) = std::fs::File::open(f) else {
                        continue;
                    };
                    let mut partial = Vec::new();
                    let _ = read_lines(&mut file, &mut partial, &mut lines);
                    if f == &current_path {
                        cur = Some((file, partial));
                    }
                }
                (lines, cur)
            })
            .await
            .unwrap_or_default();
            let mut selected: VecDeque<LogLine> =
                history.into_iter().filter(|l| filter.accept(l)).collect();
            if let Some(n) = filter.opts.tail {
                while selected.len() > n {
                    selected.pop_front();
                }
            }
            for l in selected {
                if tx.send(filter.render(l)).await.is_err() {
                    return;
                }
            }
            if !filter.opts.follow {
                return;
            }
            if filter.opts.until.is_some_and(|u| u < Utc::now()) {
                return;
            }
            let (mut file, mut partial) = match current {
                Some(c) => c,
                None => match std::fs::File::open(&path) {
                    Ok(f) => (f, Vec::new()),
                    Err(_) => {
                        if !life
                            .borrow()
                            .status
                            .eq(&berth_core::container::Status::Running)
                        {
                            return;
                        }
                        let f = loop {
                            tokio::time::sleep(FOLLOW_POLL).await;
                            if let Ok(f) = std::fs::File::open(&path) {
                                break f;
                            }
                        };
                        (f, Vec::new())
                    }
                },
            };
            loop {
                let mut fresh = Vec::new();
                let _ = read_lines(&mut file, &mut partial, &mut fresh);
                for l in fresh {
                    if filter
                        .opts
                        .until
                        .is_some_and(|u| l.time.is_some_and(|t| t > u))
                    {
                        return;
                    }
                    if filter.accept(&l) && tx.send(filter.render(l)).await.is_err() {
                        return;
                    }
                }
                // Rotated: finish the old file, then continue with the new one.
                let rotated = match (std::fs::metadata(&path), file.metadata()) {
                    (Ok(now), Ok(ours)) => now.ino() != ours.ino(),
                    _ => false,
                };
                if rotated {
                    let mut rest = Vec::new();
                    let _ = read_lines(&mut file, &mut partial, &mut rest);
                    for l in rest {
                        if filter.accept(&l) && tx.send(filter.render(l)).await.is_err() {
                            return;
                        }
                    }
                    match std::fs::File::open(&path) {
                        Ok(f) => {
                            file = f;
                            partial.clear();
                            continue;
                        }
                        Err(_) => return,
                    }
                }
                let running = berth_core::container::Status::Running == life.borrow().status
                    || life.borrow().status == berth_core::container::Status::Paused
                    || life.borrow().status == berth_core::container::Status::Restarting;
                if !running {
                    // One last read for what the shim flushed on exit.
                    let mut rest = Vec::new();
                    let _ = read_lines(&mut file, &mut partial, &mut rest);
                    for l in rest {
                        if filter.accept(&l) && tx.send(filter.render(l)).await.is_err() {
                            return;
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
