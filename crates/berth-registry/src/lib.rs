//! The distribution client behind `pull`, `push`, `login` and `search`.
//!
//! [`Registry`] is the entry point: built once from a [`RegistryConfig`] (insecure
//! registries, mirrors, the certs.d directory) and cheap to clone, it keeps the HTTP
//! clients, tokens and blob downloads that its clones share. Its operations live one per
//! module:
//! - [`pull`]: resolve a reference ([`Registry::resolve`]) and pull an image into a
//!   [`berth_storage::Storage`] ([`Registry::pull`]), downloading, verifying and unpacking
//!   layers in one pipeline; [`Registry::list_tags`] for `pull -a`;
//! - [`push`]: upload missing blobs (mounting them from another repository when possible)
//!   and the manifest ([`Registry::push`]);
//! - [`login`] and [`search`]: `POST /auth` and Docker Hub's `/v1/search`;
//! - [`config`]: the docker CLI's `config.json` and credential helpers, shared by the CLI
//!   and the daemon.
//!
//! Below them, [`transport`] picks endpoints (Docker Hub, mirrors, HTTPS then HTTP for
//! insecure registries) and TLS settings, [`auth`] parses credentials and challenges and
//! runs the token flow, and [`manifest`] and [`platform`] read manifests and choose the
//! platform of an index.
//!
//! HTTP goes through `reqwest` with a rustls configuration built here per registry (ring,
//! system roots plus certs.d CAs, client certificates, no verification for insecure
//! registries) rather than through `oci-client`, whose TLS settings are client-wide and
//! which has no client certificates and no mirrors; a pull also tees each blob's stream
//! into the content store and the layer extractor, which needs the raw response stream.
//!
//! ```no_run
//! # async fn f(storage: std::sync::Arc<berth_storage::Storage>) -> Result<(), berth_registry::RegistryError> {
//! use berth_registry::{Platform, Registry, RegistryConfig};
//! let registry = Registry::new(RegistryConfig::default());
//! let reference = berth_core::reference::Reference::parse_with_default_tag("busybox").unwrap();
//! let image = registry
//!     .pull(storage, &reference, &Platform::host(), None, &|p| println!("{p:?}"))
//!     .await?;
//! println!("pulled {}", image.manifest_digest);
//! # Ok(()) }
//! ```

pub mod auth;
pub mod config;
pub mod error;
mod gzip;
pub mod login;
pub mod manifest;
mod pipe;
pub mod platform;
pub mod progress;
pub mod pull;
pub mod push;
pub mod search;
mod sources;
pub mod transport;

pub use auth::{Credentials, RegistryAuths};
pub use error::{RegistryError, Result};
pub use login::LoginResult;
pub use platform::Platform;
pub use progress::Progress;
pub use pull::{PulledImage, ResolvedManifest};
pub use push::PushedImage;
pub use search::SearchResult;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Where the per-registry certificates live by default (Docker's `/etc/docker/certs.d`).
pub const DEFAULT_CERTS_DIR: &str = "/etc/berth/certs.d";

/// How to reach registries (the registry part of `daemon.json`).
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// `insecure-registries`: `host[:port]` names or CIDRs. Loopback is always insecure.
    pub insecure_registries: Vec<String>,
    /// `registry-mirrors`: tried first, in order, when pulling from Docker Hub.
    pub mirrors: Vec<String>,
    /// Mirrors per registry domain (`"127.0.0.1:5000" => ["http://127.0.0.1:5001"]`),
    /// for any registry; beyond Docker.
    pub per_registry_mirrors: BTreeMap<String, Vec<String>>,
    /// `certs.d`: `HOST:PORT/*.crt` CAs, `*.cert`/`*.key` client certificates.
    pub certs_dir: PathBuf,
    /// Layer downloads at once for one pull (Docker: 3).
    pub max_concurrent_downloads: usize,
    /// Layer uploads at once for one push (Docker: 5).
    pub max_concurrent_uploads: usize,
    /// Where blob origins are kept across restarts (for cross-repository mounts).
    pub blob_sources_file: Option<PathBuf>,
    /// Treat 127.0.0.0/8, ::1 and `localhost` as insecure (plain HTTP, unverified TLS),
    /// as Docker always does. `false` holds loopback registries to the rules of any
    /// other; tests use it to exercise verified TLS and its errors on 127.0.0.1.
    pub insecure_loopback: bool,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            mirrors: Vec::new(),
            per_registry_mirrors: BTreeMap::new(),
            certs_dir: PathBuf::from(DEFAULT_CERTS_DIR),
            max_concurrent_downloads: 8,
            max_concurrent_uploads: 5,
            blob_sources_file: None,
            insecure_loopback: true,
        }
    }
}

/// The distribution client. Clones share connections, tokens and in-flight downloads.
#[derive(Debug, Clone)]
pub struct Registry {
    transport: Arc<transport::Transport>,
    flights: Arc<pull::Flights>,
    sources: Arc<sources::BlobSources>,
    downloads: Arc<Semaphore>,
    uploads: Arc<Semaphore>,
}

impl Registry {
    pub fn new(cfg: RegistryConfig) -> Self {
        let downloads = Arc::new(Semaphore::new(cfg.max_concurrent_downloads.max(1)));
        let uploads = Arc::new(Semaphore::new(cfg.max_concurrent_uploads.max(1)));
        let sources = Arc::new(sources::BlobSources::new(cfg.blob_sources_file.clone()));
        Self {
            transport: Arc::new(transport::Transport::new(cfg)),
            flights: Arc::new(pull::Flights::default()),
            sources,
            downloads,
            uploads,
        }
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.transport.cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_cheap_to_share_between_tasks() {
        fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
        assert_send_sync_clone::<Registry>();
    }
}
