//! [`BuildBackend`]: what the builder needs from the engine, and nothing more. The builder
//! never sees HTTP, the API's JSON, or the engine's internals; the engine implements this
//! trait over its services (images, storage, runtime, the state database).
//!
//! A build step works on a *working container*: a writable layer on top of an image (or
//! on nothing, for `FROM scratch`), mounted, so the builder can copy files into its root
//! and the engine can run commands in it. [`BuildBackend::commit`] turns its changes into
//! a new image; [`BuildBackend::remove_working`] drops it. Working containers are internal:
//! they never appear in `ps`, and the builder removes every one it made, whatever happens.

use crate::error::Result;
use berth_core::image::ImageConfig;
use bytes::Bytes;
use std::future::Future;
use std::path::PathBuf;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// An image the build starts from or made.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltImage {
    /// `sha256:<hex>`.
    pub id: String,
    pub config: ImageConfig,
}

/// A writable layer on top of an image, mounted at `rootfs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingContainer {
    /// 64 hex characters; its first 12 are what ` ---> Running in` shows.
    pub id: String,
    /// The mounted root filesystem (the builder writes `COPY`/`ADD` files here).
    pub rootfs: PathBuf,
    /// The image it was made from (`None`: an empty root, for `FROM scratch`).
    pub image: Option<String>,
}

/// A command to run in a working container (`RUN`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunRequest {
    /// The full command (the SHELL already prepended for the shell form).
    pub args: Vec<String>,
    /// `KEY=value`: the image's environment and the build arguments in scope.
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    /// `default`, `none`, `host` (the build's `--network` or `RUN --network`).
    pub network_mode: String,
    /// `--add-host name:ip` entries.
    pub extra_hosts: Vec<String>,
    /// Bytes of `/dev/shm` (0: the default).
    pub shm_size: i64,
    /// Fed to the command's standard input (a `RUN <<EOF` script with a `#!` line).
    pub stdin: Option<Vec<u8>>,
}

/// Which stream a chunk of `RUN` output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Output of a running command, as it comes.
pub type OutputSender = mpsc::UnboundedSender<(OutputStream, Bytes)>;

/// The engine, as the builder drives it.
pub trait BuildBackend: Send + Sync {
    /// The local image with this reference or id, if there is one.
    fn image(&self, name: &str) -> Result<Option<BuiltImage>>;

    /// Fetches an image from its registry (`FROM` of an image that is not here, `--pull`).
    fn pull(&self, name: &str, platform: &str) -> impl Future<Output = Result<BuiltImage>> + Send;

    /// Makes and mounts a working container on top of `image` (an id; `None`: empty).
    fn create_working(
        &self,
        image: Option<&str>,
    ) -> impl Future<Output = Result<WorkingContainer>> + Send;

    /// Runs a command in the working container, streaming its output to `output`; returns
    /// its exit code. When `cancel` fires, the command is killed and the call fails.
    fn run(
        &self,
        wc: &WorkingContainer,
        req: RunRequest,
        output: OutputSender,
        cancel: CancellationToken,
    ) -> impl Future<Output = Result<i64>> + Send;

    /// Stores the working container's changes as a new image whose config is `config`
    /// (parent, history and run config set by the builder): the backend appends the new
    /// layer's diff id to `config.rootfs`, or marks the last history entry `empty_layer`
    /// when nothing changed.
    fn commit(
        &self,
        wc: &WorkingContainer,
        config: ImageConfig,
    ) -> impl Future<Output = Result<BuiltImage>> + Send;

    /// Unmounts and deletes a working container (also after failures and cancellation).
    fn remove_working(&self, wc: &WorkingContainer) -> impl Future<Output = Result<()>> + Send;

    /// Stores an image whose layers already exist (metadata-only steps).
    fn store_image(&self, config: ImageConfig) -> Result<BuiltImage>;

    /// Points `reference` (`name[:tag]`) at an image.
    fn tag(&self, image_id: &str, reference: &str) -> Result<()>;

    /// The image a previous build made for `key` on top of `parent`, if it still exists.
    fn cache_get(&self, parent: &str, key: &str) -> Result<Option<BuiltImage>>;

    /// Remembers that `key` on top of `parent` made `image_id`.
    fn cache_put(&self, parent: &str, key: &str, image_id: &str) -> Result<()>;
}
