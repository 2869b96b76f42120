//! Where blobs came from: (registry host, repository) pairs per blob digest, so a push to
//! another repository of the same registry can mount a blob instead of uploading it
//! (Docker keeps the same record in its distribution metadata store).
//!
//! Kept in memory, and appended as JSON lines to a file when one is configured, so the
//! record survives a daemon restart. The file is only a hint: unreadable lines are
//! skipped, and a mount that the registry refuses falls back to an upload.

use crate::transport::lock;
use berth_core::Digest;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Mutex;

/// Repositories remembered per blob (the newest ones win).
const PER_BLOB: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    digest: Digest,
    host: String,
    repo: String,
}

#[derive(Debug, Default)]
pub(crate) struct BlobSources {
    map: Mutex<HashMap<Digest, Vec<(String, String)>>>,
    file: Option<PathBuf>,
}

impl BlobSources {
    pub fn new(file: Option<PathBuf>) -> Self {
        let s = Self {
            map: Mutex::new(HashMap::new()),
            file,
        };
        if let Some(f) = s.file.as_ref().and_then(|p| std::fs::File::open(p).ok()) {
            let mut map = lock(&s.map);
            for line in std::io::BufReader::new(f).lines().map_while(|l| l.ok()) {
                if let Ok(r) = serde_json::from_str::<Record>(&line) {
                    remember(&mut map, r.digest, r.host, r.repo);
                }
            }
        }
        s
    }

    /// Records that `digest` exists in `repo` on `host`.
    pub fn add(&self, digest: &Digest, host: &str, repo: &str) {
        let added = remember(
            &mut lock(&self.map),
            digest.clone(),
            host.to_string(),
            repo.to_string(),
        );
        if !added {
            return;
        }
        if let Some(path) = &self.file {
            let r = Record {
                digest: digest.clone(),
                host: host.to_string(),
                repo: repo.to_string(),
            };
            let line = serde_json::to_string(&r).expect("records serialise");
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| writeln!(f, "{line}"));
            if let Err(e) = appended {
                tracing::warn!("recording blob source in {}: {e}", path.display());
            }
        }
    }

    /// Other repositories of `host` known to hold `digest`, newest first.
    pub fn candidates(&self, digest: &Digest, host: &str, except_repo: &str) -> Vec<String> {
        lock(&self.map)
            .get(digest)
            .map(|v| {
                v.iter()
                    .rev()
                    .filter(|(h, r)| h == host && r != except_repo)
                    .map(|(_, r)| r.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Adds a pair (moving it to newest); false when it was already the newest.
fn remember(
    map: &mut HashMap<Digest, Vec<(String, String)>>,
    digest: Digest,
    host: String,
    repo: String,
) -> bool {
    let v = map.entry(digest).or_default();
    let pair = (host, repo);
    if v.last() == Some(&pair) {
        return false;
    }
    v.retain(|p| *p != pair);
    v.push(pair);
    if v.len() > PER_BLOB {
        v.remove(0);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_other_repositories_on_the_same_host_newest_first() {
        let s = BlobSources::new(None);
        let d = Digest::of(b"blob");
        s.add(&d, "reg:5000", "a");
        s.add(&d, "reg:5000", "b");
        s.add(&d, "other:5000", "c");
        assert_eq!(s.candidates(&d, "reg:5000", "x"), vec!["b", "a"]);
        assert_eq!(s.candidates(&d, "reg:5000", "b"), vec!["a"]);
        assert!(s
            .candidates(&Digest::of(b"none"), "reg:5000", "x")
            .is_empty());
    }

    #[test]
    fn records_survive_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sources.jsonl");
        let d = Digest::of(b"blob");
        BlobSources::new(Some(f.clone())).add(&d, "reg:5000", "lib/a");
        let again = BlobSources::new(Some(f));
        assert_eq!(again.candidates(&d, "reg:5000", "z"), vec!["lib/a"]);
    }
}
