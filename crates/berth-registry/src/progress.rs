//! [`Progress`]: what a pull or push reports while it works, one event per change, in the
//! terms of Docker's progress lines (`a3ed95caeb02: Pull complete`).
//!
//! Work runs on many tasks and threads; they send events into a channel, and `relay`
//! hands them to the caller's callback on the caller's task, so the callback needs no
//! `'static` lifetime and sees events in the order they were sent.

use berth_core::Digest;
use std::future::Future;
use tokio::sync::mpsc;

/// One progress event. `id` is the 12-hex short digest Docker shows: the blob digest
/// when pulling, the diff_id when pushing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Resolving a reference (Docker: `Pulling from library/busybox`).
    Resolving {
        reference: String,
    },
    /// The manifest digest (`Digest: sha256:...`).
    Digest {
        digest: Digest,
    },
    /// To be fetched (Docker: `Pulling fs layer`), sent for every missing layer before
    /// any download starts.
    LayerWaiting {
        id: String,
    },
    /// Queued behind other transfers until a download or upload slot frees (`Waiting`).
    LayerQueued {
        id: String,
    },
    /// Already present locally (pull) or in the registry (push).
    LayerAlreadyExists {
        id: String,
    },
    LayerDownloading {
        id: String,
        current: u64,
        total: u64,
    },
    LayerVerifying {
        id: String,
    },
    LayerDownloadComplete {
        id: String,
    },
    LayerExtracting {
        id: String,
        current: u64,
        total: u64,
    },
    LayerPullComplete {
        id: String,
    },
    /// Push: working out what to upload (`Preparing`).
    LayerPreparing {
        id: String,
    },
    LayerPushing {
        id: String,
        current: u64,
        total: u64,
    },
    LayerPushed {
        id: String,
    },
    /// Mounted from another repository of the same registry (`Mounted from library/x`).
    LayerMounted {
        id: String,
        from: String,
    },
    Status(String),
}

/// The 12-hex form of a digest, as Docker's progress lines show it.
pub fn short_id(d: &Digest) -> String {
    d.hex()[..12].to_string()
}

pub(crate) type ProgressTx = mpsc::UnboundedSender<Progress>;

/// Sends an event; a caller that went away is not an error of the work.
pub(crate) fn emit(tx: &ProgressTx, p: Progress) {
    let _ = tx.send(p);
}

/// Runs `work`, delivering its progress events to `progress` as they come.
pub(crate) async fn relay<T, F>(
    progress: &(dyn Fn(Progress) + Send + Sync),
    work: impl FnOnce(ProgressTx) -> F,
) -> T
where
    F: Future<Output = T>,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let work = work(tx);
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            Some(p) = rx.recv() => progress(p),
            out = &mut work => {
                while let Ok(p) = rx.try_recv() {
                    progress(p);
                }
                return out;
            }
        }
    }
}

/// Limits byte-count events to about one per `step` bytes (and the last one).
#[derive(Debug)]
pub(crate) struct Throttle {
    next: u64,
    step: u64,
}

impl Throttle {
    pub fn new(total: u64) -> Self {
        let step = (total / 100).max(256 * 1024);
        Self { next: 0, step }
    }

    /// Whether `current` deserves an event.
    pub fn due(&mut self, current: u64, total: u64) -> bool {
        if current >= self.next || current == total {
            self.next = current + self.step;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn short_ids_are_twelve_hex_characters() {
        let d = Digest::of(b"x");
        assert_eq!(short_id(&d), d.hex()[..12]);
    }

    #[tokio::test]
    async fn relay_delivers_every_event_before_returning() {
        let seen = Mutex::new(Vec::new());
        let cb = |p: Progress| seen.lock().unwrap().push(p);
        let out = relay(&cb, |tx| async move {
            for i in 0..100 {
                emit(&tx, Progress::Status(i.to_string()));
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            7
        })
        .await;
        assert_eq!(out, 7);
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 100);
        assert_eq!(seen[99], Progress::Status("99".into()));
    }

    #[test]
    fn throttle_reports_about_a_hundred_times_and_always_the_end() {
        let total = 100 << 20;
        let mut t = Throttle::new(total);
        let mut n = 0;
        let mut last = false;
        let mut cur = 0;
        while cur < total {
            cur = (cur + 32 * 1024).min(total);
            if t.due(cur, total) {
                n += 1;
                last = cur == total;
            }
        }
        assert!((90..=110).contains(&n), "{n}");
        assert!(last);
    }
}
