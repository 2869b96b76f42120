//! [`StorageError`]: every failure of this crate, with the digest, path or key it concerns.
//!
//! Each variant knows its [`ErrorKind`] (missing things are `NotFound`, things in use are
//! `Conflict`, bad input is `InvalidArgument`, the rest `Internal`), so the engine converts
//! it into a [`berth_core::Error`] without losing the message.

use berth_core::error::{ErrorKind, HasKind};
use berth_core::Digest;
use std::io;
use std::path::{Path, PathBuf};

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob not found: {digest}")]
    BlobNotFound { digest: Digest },
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("layer not found: {chain_id}")]
    LayerNotFound { chain_id: Digest },
    #[error("layer {chain_id} is in use by {user}")]
    LayerInUse { chain_id: Digest, user: String },
    #[error("layer diff_id mismatch: expected {expected}, got {actual}")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("invalid layer tar: {reason}")]
    InvalidLayer { reason: String },
    #[error("reading layer tar")]
    LayerRead {
        #[source]
        source: io::Error,
    },
    #[error("invalid image archive: {reason}")]
    InvalidArchive { reason: String },
    #[error("no such snapshot: {key}")]
    SnapshotNotFound { key: String },
    #[error("snapshot already exists: {key}")]
    SnapshotExists { key: String },
    #[error("invalid snapshot key {key:?}")]
    InvalidKey { key: String },
    #[error("mounting overlay at {target}")]
    Mount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unmounting {target}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt metadata {path}")]
    Metadata {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("storage root was set up with the {recorded} driver, not {requested}")]
    DriverMismatch {
        recorded: String,
        requested: &'static str,
    },
    #[error("{what}: {}", join_errors(.errors))]
    Cleanup {
        what: String,
        errors: Vec<StorageError>,
    },
}

fn join_errors(errors: &[StorageError]) -> String {
    errors
        .iter()
        .map(|e| full_message(e))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The message of `err` followed by its sources, as printed at the edge.
pub fn full_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

impl StorageError {
    pub(crate) fn io(action: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        StorageError::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
    pub(crate) fn invalid_layer(reason: impl Into<String>) -> Self {
        StorageError::InvalidLayer {
            reason: reason.into(),
        }
    }
    pub(crate) fn invalid_archive(reason: impl Into<String>) -> Self {
        StorageError::InvalidArchive {
            reason: reason.into(),
        }
    }
}

/// Adds the action and path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: impl AsRef<Path>) -> Result<T>;
}

impl<T, E: Into<io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn ctx(self, action: &'static str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| StorageError::io(action, path, e.into()))
    }
}

impl HasKind for StorageError {
    fn kind(&self) -> ErrorKind {
        match self {
            StorageError::BlobNotFound { .. }
            | StorageError::LayerNotFound { .. }
            | StorageError::SnapshotNotFound { .. } => ErrorKind::NotFound,
            StorageError::LayerInUse { .. } | StorageError::SnapshotExists { .. } => {
                ErrorKind::Conflict
            }
            StorageError::DigestMismatch { .. }
            | StorageError::DiffIdMismatch { .. }
            | StorageError::InvalidLayer { .. }
            | StorageError::LayerRead { .. }
            | StorageError::InvalidArchive { .. }
            | StorageError::InvalidKey { .. }
            | StorageError::DriverMismatch { .. } => ErrorKind::InvalidArgument,
            StorageError::Io { .. }
            | StorageError::Mount { .. }
            | StorageError::Unmount { .. }
            | StorageError::Metadata { .. }
            | StorageError::Cleanup { .. } => ErrorKind::Internal,
        }
    }
}

impl From<StorageError> for berth_core::Error {
    fn from(err: StorageError) -> Self {
        berth_core::Error::new(err.kind(), full_message(&err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_missing_in_use_and_bad_input() {
        let d = Digest::of(b"x");
        assert_eq!(
            StorageError::BlobNotFound { digest: d.clone() }.kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            StorageError::LayerInUse {
                chain_id: d.clone(),
                user: "layer x".into()
            }
            .kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            StorageError::DigestMismatch {
                expected: d.clone(),
                actual: d
            }
            .kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn conversion_to_core_error_keeps_the_source_chain() {
        let err = StorageError::io(
            "reading",
            "/x/y",
            io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
        );
        let core: berth_core::Error = err.into();
        assert_eq!(core.kind(), ErrorKind::Internal);
        assert_eq!(core.message(), "reading /x/y: denied");
    }
}
