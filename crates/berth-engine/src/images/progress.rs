//! Progress of pulls and pushes, in the words of Docker's progress stream.
//!
//! The distribution client reports typed events ([`berth_registry::Progress`]); a pull or
//! push turns them into [`ImageProgress`]: per-layer lines (`a3ed95caeb02: Pull
//! complete`, with byte counts for the bars of `Downloading`, `Extracting` and
//! `Pushing`), lines about the whole transfer (`latest: Pulling from library/busybox`,
//! `Digest: sha256:...`), and the record Docker attaches to a finished push. The API
//! writes them as Docker's JSON messages; the words are Docker's because clients show
//! them as they come.

use berth_core::Digest;
use berth_registry::Progress;
use std::sync::Arc;

/// One progress event of a pull or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageProgress {
    /// `id: status` about one layer (`id` is its 12-hex short digest). `bytes` is
    /// `(current, total)` for the steps that draw a bar.
    Layer {
        id: String,
        status: String,
        bytes: Option<(u64, u64)>,
    },
    /// A line about the whole transfer; `id` is the tag or digest for `Pulling from`,
    /// else empty.
    Message { id: String, text: String },
    /// A tag was pushed: its manifest digest and size (Docker's `PushResult` aux record).
    Pushed {
        tag: String,
        digest: Digest,
        size: u64,
    },
}

impl ImageProgress {
    pub(crate) fn message(text: impl Into<String>) -> Self {
        Self::Message {
            id: String::new(),
            text: text.into(),
        }
    }
}

/// Where a pull or push sends its progress.
pub type ProgressSink = Arc<dyn Fn(ImageProgress) + Send + Sync>;

/// Whether the registry's events belong to a pull or a push: a few read differently
/// (a layer that exists is `Already exists` locally, `Layer already exists` remotely).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transfer {
    Pull,
    Push,
}

/// Docker's line for one event of the distribution client; `None` for the events the
/// pull or push reports itself (the reference being resolved, the final digest).
pub(crate) fn from_registry(p: Progress, transfer: Transfer) -> Option<ImageProgress> {
    let layer = |id: String, status: &str, bytes: Option<(u64, u64)>| ImageProgress::Layer {
        id,
        status: status.to_string(),
        bytes,
    };
    Some(match p {
        Progress::Resolving { .. } | Progress::Digest { .. } => return None,
        Progress::LayerWaiting { id } => layer(id, "Pulling fs layer", None),
        Progress::LayerQueued { id } => layer(id, "Waiting", None),
        Progress::LayerAlreadyExists { id } => match transfer {
            Transfer::Pull => layer(id, "Already exists", None),
            Transfer::Push => layer(id, "Layer already exists", None),
        },
        Progress::LayerDownloading { id, current, total } => {
            layer(id, "Downloading", Some((current, total)))
        }
        Progress::LayerVerifying { id } => layer(id, "Verifying Checksum", None),
        Progress::LayerDownloadComplete { id } => layer(id, "Download complete", None),
        Progress::LayerExtracting { id, current, total } => {
            layer(id, "Extracting", Some((current, total)))
        }
        Progress::LayerPullComplete { id } => layer(id, "Pull complete", None),
        Progress::LayerPreparing { id } => layer(id, "Preparing", None),
        Progress::LayerPushing { id, current, total } => {
            layer(id, "Pushing", Some((current, total)))
        }
        Progress::LayerPushed { id } => layer(id, "Pushed", None),
        Progress::LayerMounted { id, from } => layer(id, &format!("Mounted from {from}"), None),
        Progress::Status(text) => ImageProgress::message(text),
    })
}

/// A sink for the distribution client that translates and forwards to `sink`.
pub(crate) fn registry_sink(
    sink: &ProgressSink,
    transfer: Transfer,
) -> impl Fn(Progress) + Send + Sync + 'static {
    let sink = sink.clone();
    move |p| {
        if let Some(e) = from_registry(p, transfer) {
            sink(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(p: Option<ImageProgress>) -> String {
        match p {
            Some(ImageProgress::Layer { id, status, .. }) => format!("{id}: {status}"),
            other => panic!("not a layer line: {other:?}"),
        }
    }

    #[test]
    fn registry_events_read_as_dockers_pull_lines() {
        let id = || "0123456789ab".to_string();
        let pull = |p| status(from_registry(p, Transfer::Pull));
        assert_eq!(
            pull(Progress::LayerWaiting { id: id() }),
            "0123456789ab: Pulling fs layer"
        );
        assert_eq!(
            pull(Progress::LayerQueued { id: id() }),
            "0123456789ab: Waiting"
        );
        assert_eq!(
            pull(Progress::LayerAlreadyExists { id: id() }),
            "0123456789ab: Already exists"
        );
        assert_eq!(
            pull(Progress::LayerVerifying { id: id() }),
            "0123456789ab: Verifying Checksum"
        );
        assert_eq!(
            from_registry(
                Progress::LayerDownloading {
                    id: id(),
                    current: 5,
                    total: 10
                },
                Transfer::Pull
            ),
            Some(ImageProgress::Layer {
                id: id(),
                status: "Downloading".into(),
                bytes: Some((5, 10))
            })
        );
        assert!(from_registry(
            Progress::Digest {
                digest: Digest::of(b"m")
            },
            Transfer::Pull
        )
        .is_none());
    }

    #[test]
    fn registry_events_read_as_dockers_push_lines() {
        let id = || "0123456789ab".to_string();
        let push = |p| status(from_registry(p, Transfer::Push));
        assert_eq!(
            push(Progress::LayerAlreadyExists { id: id() }),
            "0123456789ab: Layer already exists"
        );
        assert_eq!(
            push(Progress::LayerMounted {
                id: id(),
                from: "library/busybox".into()
            }),
            "0123456789ab: Mounted from library/busybox"
        );
        assert_eq!(
            push(Progress::LayerPreparing { id: id() }),
            "0123456789ab: Preparing"
        );
    }
}
