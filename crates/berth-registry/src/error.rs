//! [`RegistryError`]: every failure of the distribution client, worded as Docker words it.
//!
//! Clients match on some of these messages (`manifest unknown`, `unauthorized:
//! authentication required`, `pull access denied for ...`), so the texts follow moby's.
//! Each variant knows its [`ErrorKind`]; [`From<RegistryError> for berth_core::Error`]
//! keeps the whole source chain in the message.

use berth_core::error::{ErrorKind, HasKind};
use berth_core::Digest;
use berth_storage::StorageError;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached or spoke no usable HTTP(S); `reason` reads like
    /// Go's net/http errors (`dial tcp 127.0.0.1:1: connect: connection refused`,
    /// `http: server gave HTTP response to HTTPS client`).
    #[error("{method} \"{url}\": {reason}")]
    Transport {
        method: String,
        url: String,
        reason: String,
    },
    /// An error document (or status) from the registry, as distribution's errcode prints
    /// it: `manifest unknown: manifest unknown`.
    #[error("{code}: {message}")]
    Remote {
        status: u16,
        /// Lower case with spaces (`manifest unknown`), as Go's `errcode.ErrorCode` prints.
        code: String,
        message: String,
    },
    /// A response the client cannot use (unexpected status without an error body).
    #[error("{method} \"{url}\": unexpected status {status}")]
    UnexpectedStatus {
        method: String,
        url: String,
        status: u16,
    },
    #[error("pull access denied for {repository}, repository does not exist or may require 'docker login': {cause}")]
    PullAccessDenied {
        repository: String,
        cause: Box<RegistryError>,
    },
    #[error("manifest for {reference} not found: {cause}")]
    ManifestNotFound {
        reference: String,
        cause: Box<RegistryError>,
    },
    #[error("repository {repository} not found: {cause}")]
    RepositoryNotFound {
        repository: String,
        cause: Box<RegistryError>,
    },
    #[error("no basic auth credentials")]
    NoBasicCredentials,
    #[error("{method} \"{url}\": {cause}")]
    TokenFetch {
        method: String,
        url: String,
        cause: Box<RegistryError>,
    },
    #[error("login attempt to {url} failed with status: {status}")]
    LoginFailed { url: String, status: String },
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingPlatform { platform: String },
    #[error("[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. Suggest the author of {reference} to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/")]
    Schema1 { reference: String },
    #[error("unsupported manifest media type {media_type:?} for {reference}")]
    UnsupportedManifest {
        reference: String,
        media_type: String,
    },
    #[error("invalid manifest for {reference}: {reason}")]
    InvalidManifest { reference: String, reason: String },
    #[error("manifest verification failed for digest {digest}")]
    ManifestDigestMismatch { digest: Digest, actual: Digest },
    #[error("filesystem layer verification failed for digest {digest}")]
    LayerDigestMismatch { digest: Digest, actual: Digest },
    #[error("blob {digest} is larger than its descriptor says ({size} bytes)")]
    BlobTooLarge { digest: Digest, size: u64 },
    #[error("invalid image config {digest}: {reason}")]
    InvalidConfig { digest: Digest, reason: String },
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform { input: String, reason: String },
    #[error("invalid X-Registry-Auth header: {reason}")]
    InvalidAuthHeader { reason: String },
    #[error("invalid registry address {input:?}: {reason}")]
    InvalidAddress { input: String, reason: String },
    #[error("limit {limit} is outside the range of [1, 100]")]
    SearchLimit { limit: usize },
    #[error("cannot push {reference}: {reason}")]
    InvalidPush { reference: String, reason: String },
    #[error("layer {chain_id} not found in storage")]
    LayerMissing { chain_id: Digest },
    #[error("download of {digest} was interrupted")]
    Interrupted { digest: Digest },
    #[error("storage")]
    Storage {
        #[from]
        source: StorageError,
    },
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid docker config {}: {reason}", path.display())]
    DockerConfig { path: PathBuf, reason: String },
    #[error("credential helper docker-credential-{helper}: {message}")]
    CredentialHelper { helper: String, message: String },
    #[error("tls configuration for {host}: {reason}")]
    TlsConfig { host: String, reason: String },
    /// The same failure seen by several waiters (a blob download shared by two pulls).
    #[error(transparent)]
    Shared(Arc<RegistryError>),
    #[error("{what}: {reason}")]
    Internal { what: &'static str, reason: String },
}

impl RegistryError {
    pub(crate) fn internal(what: &'static str, reason: impl ToString) -> Self {
        RegistryError::Internal {
            what,
            reason: reason.to_string(),
        }
    }

    /// The registry error code (`MANIFEST_UNKNOWN` style, upper case with underscores)
    /// when this is an error document from the registry.
    pub fn remote_code(&self) -> Option<String> {
        match self {
            RegistryError::Remote { code, .. } => Some(code.to_uppercase().replace(' ', "_")),
            RegistryError::Shared(e) => e.remote_code(),
            _ => None,
        }
    }

    /// The HTTP status of a registry error document.
    pub fn remote_status(&self) -> Option<u16> {
        match self {
            RegistryError::Remote { status, .. } => Some(*status),
            RegistryError::UnexpectedStatus { status, .. } => Some(*status),
            RegistryError::Shared(e) => e.remote_status(),
            _ => None,
        }
    }

    /// Whether trying the next endpoint (a mirror's origin, HTTP after HTTPS) makes sense.
    pub(crate) fn is_fallback(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            RegistryError::Remote { status, .. }
            | RegistryError::UnexpectedStatus { status, .. } => {
                matches!(status, 401 | 403 | 404 | 429) || *status >= 500
            }
            RegistryError::TokenFetch { .. } | RegistryError::NoBasicCredentials => true,
            RegistryError::Shared(e) => e.is_fallback(),
            _ => false,
        }
    }
}

/// Upper-case errcode (`MANIFEST_UNKNOWN`) to the printed form (`manifest unknown`).
pub(crate) fn errcode_text(code: &str) -> String {
    code.to_lowercase().replace('_', " ")
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

impl HasKind for RegistryError {
    fn kind(&self) -> ErrorKind {
        use RegistryError as E;
        match self {
            E::Transport { .. } => ErrorKind::Unavailable,
            E::Remote { status, .. } | E::UnexpectedStatus { status, .. } => match status {
                400 => ErrorKind::InvalidArgument,
                401 => ErrorKind::Unauthorized,
                403 => ErrorKind::Forbidden,
                404 => ErrorKind::NotFound,
                405 | 501 => ErrorKind::NotImplemented,
                429 | 502..=504 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            E::PullAccessDenied { .. }
            | E::ManifestNotFound { .. }
            | E::RepositoryNotFound { .. }
            | E::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            E::NoBasicCredentials | E::LoginFailed { .. } => ErrorKind::Unauthorized,
            E::TokenFetch { cause, .. } => match cause.kind() {
                ErrorKind::Unauthorized | ErrorKind::Forbidden => ErrorKind::Unauthorized,
                k => k,
            },
            E::Schema1 { .. }
            | E::UnsupportedManifest { .. }
            | E::InvalidManifest { .. }
            | E::ManifestDigestMismatch { .. }
            | E::LayerDigestMismatch { .. }
            | E::BlobTooLarge { .. }
            | E::InvalidConfig { .. }
            | E::InvalidPlatform { .. }
            | E::InvalidAuthHeader { .. }
            | E::InvalidAddress { .. }
            | E::SearchLimit { .. }
            | E::InvalidPush { .. } => ErrorKind::InvalidArgument,
            E::LayerMissing { .. } => ErrorKind::NotFound,
            E::Interrupted { .. } => ErrorKind::Unavailable,
            E::Storage { source } => source.kind(),
            E::Shared(e) => e.kind(),
            E::Io { .. }
            | E::DockerConfig { .. }
            | E::CredentialHelper { .. }
            | E::TlsConfig { .. }
            | E::Internal { .. } => ErrorKind::Internal,
        }
    }
}

impl From<RegistryError> for berth_core::Error {
    fn from(err: RegistryError) -> Self {
        berth_core::Error::new(err.kind(), full_message(&err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(status: u16, code: &str, message: &str) -> RegistryError {
        RegistryError::Remote {
            status,
            code: errcode_text(code),
            message: message.into(),
        }
    }

    #[test]
    fn registry_error_documents_print_like_distribution_errcodes() {
        let e = remote(404, "MANIFEST_UNKNOWN", "manifest unknown");
        assert_eq!(e.to_string(), "manifest unknown: manifest unknown");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.remote_code().as_deref(), Some("MANIFEST_UNKNOWN"));
        let e = remote(401, "UNAUTHORIZED", "authentication required");
        assert_eq!(e.to_string(), "unauthorized: authentication required");
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }

    #[test]
    fn pull_access_denied_keeps_docker_wording() {
        let e = RegistryError::PullAccessDenied {
            repository: "nope".into(),
            cause: Box::new(remote(
                403,
                "DENIED",
                "requested access to the resource is denied",
            )),
        };
        assert_eq!(
            e.to_string(),
            "pull access denied for nope, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn conversion_to_core_error_keeps_the_chain() {
        let e = RegistryError::Storage {
            source: StorageError::DigestMismatch {
                expected: Digest::of(b"a"),
                actual: Digest::of(b"b"),
            },
        };
        let core: berth_core::Error = e.into();
        assert!(core.message().starts_with("storage: digest mismatch"));
        assert_eq!(core.kind(), ErrorKind::InvalidArgument);
    }
}
