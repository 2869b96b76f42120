//! The build service: `docker build` on top of berth-builder.
//!
//! [`Engine::build`] reads the context (or downloads a remote one), parses the Dockerfile
//! and plans the build before answering, so those errors reach the client as plain API
//! errors; it then runs the build on its own task and streams [`BuildMessage`]s.
//!
//! [`EngineBuilder`] (in [`backend`]) is the engine's side of `berth_builder::BuildBackend`:
//! working containers are writable layers keyed `build-<id>` in storage, mounted, never in
//! the container index (so never in `ps`); [`run`] runs a command in one through the OCI
//! runtime directly (`crun run`, output piped back), [`commit`] turns its upper directory
//! into a layer and an image. The build cache is a table of the state database.
//!
//! The build task always runs to its end, even when the client goes away: then it is
//! cancelled (a running command is killed) and every working container, mount and
//! unreferenced layer it made is removed before it finishes.

pub mod backend;
mod commit;
mod run;

pub use backend::EngineBuilder;
pub use berth_builder::BuildOptions;

use crate::Engine;
use berth_builder::{BuildContext, BuildError, BuildEvent, BuildPlan, Dockerfile};
use berth_core::{Error, Result};
use std::io::Read;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the client asked to build.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub options: BuildOptions,
    /// `remote`: a URL of the context (a tar, or a lone Dockerfile); empty: the body.
    pub remote: String,
}

/// What a build streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildMessage {
    Stream(String),
    /// The image made (Docker's `aux` message).
    ImageId(String),
    /// The build failed; `code` is what the client should exit with.
    Error {
        message: String,
        code: i64,
    },
}

impl Engine {
    /// Where builds keep their context and bundles: the storage's temp directory, which is
    /// emptied when the daemon starts, so a crash leaves nothing behind for long.
    pub(crate) fn build_tmp(&self) -> std::path::PathBuf {
        self.storage.root().join("tmp")
    }

    /// Starts a build. Context, Dockerfile and plan errors come back at once; the build
    /// itself then streams on the returned channel, which ends after the last message.
    /// Dropping the receiver cancels the build.
    pub async fn build(
        self: &Arc<Self>,
        req: BuildRequest,
        body: Box<dyn Read + Send>,
    ) -> Result<mpsc::Receiver<BuildMessage>> {
        let tmp = self.build_tmp();
        let opts = req.options;
        let body: Box<dyn Read + Send> = if req.remote.is_empty() {
            body
        } else {
            if !berth_builder::fetch::is_url(&req.remote) {
                return Err(Error::invalid(format!(
                    "unable to prepare context: {} is not a URL of a tar or a Dockerfile (git contexts are not supported)",
                    req.remote
                )));
            }
            let file = tempfile::NamedTempFile::new_in(&tmp)
                .map_err(|e| Error::from_display("creating a download file", e))?;
            berth_builder::fetch::download(&req.remote, file.path()).await?;
            Box::new(
                file.reopen()
                    .map_err(|e| Error::from_display("reading the download", e))?,
            )
        };
        let name = opts.dockerfile.clone();
        let plan_opts = opts.clone();
        let t0 = std::time::Instant::now();
        let (ctx, df, plan) = Self::blocking(move || {
            let mut ctx = BuildContext::from_reader(body, &tmp, &name)?;
            tracing::debug!(elapsed = ?t0.elapsed(), "build context read");
            let text = ctx.dockerfile(&name)?;
            ctx.apply_dockerignore(&name);
            let df = Dockerfile::parse(&text, &name)?;
            let plan = BuildPlan::new(&df, &plan_opts)?;
            Ok::<_, Error>((ctx, df, plan))
        })
        .await?;
        tracing::debug!(elapsed = ?t0.elapsed(), "build planned");
        let (tx, rx) = mpsc::channel::<BuildMessage>(256);
        let engine = self.clone();
        tokio::spawn(async move {
            let cancel = CancellationToken::new();
            let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<BuildEvent>();
            let builder = EngineBuilder::new(engine.clone());
            let run = async {
                let r =
                    berth_builder::build(&builder, &ctx, &df, &plan, &opts, ev_tx, cancel.clone())
                        .await;
                builder.cleanup().await;
                r
            };
            // Forward events; a client that went away cancels the build.
            let forward = async {
                let mut gone = false;
                loop {
                    tokio::select! {
                        ev = ev_rx.recv() => {
                            let Some(ev) = ev else { break };
                            let msg = match ev {
                                BuildEvent::Stream(s) => BuildMessage::Stream(s),
                                BuildEvent::ImageId(id) => BuildMessage::ImageId(id),
                            };
                            if !gone && tx.send(msg).await.is_err() {
                                gone = true;
                                cancel.cancel();
                            }
                        }
                        _ = tx.closed(), if !gone => {
                            tracing::debug!("build client went away: cancelling");
                            gone = true;
                            cancel.cancel();
                        }
                    }
                }
            };
            let (result, ()) = tokio::join!(run, forward);
            tracing::debug!(elapsed = ?t0.elapsed(), "build done");
            if let Err(e) = result {
                if !matches!(e, BuildError::Cancelled) {
                    tracing::debug!(error = %e, "build failed");
                }
                let _ = tx
                    .send(BuildMessage::Error {
                        message: e.to_string(),
                        code: e.code(),
                    })
                    .await;
            }
            // The context directory can be large: remove it off the async workers.
            let _ = tokio::task::spawn_blocking(move || drop(ctx)).await;
            tracing::debug!(elapsed = ?t0.elapsed(), "build context removed");
        });
        Ok(rx)
    }
}
