//! Dockerfile builds for berth: the classic `docker build` (the API's `POST /build`), with
//! BuildKit's parallel stages.
//!
//! The pieces, in the order a build uses them:
//! - [`context`]: the build context the client sent (tar, compressed tar or a lone
//!   Dockerfile), unpacked and hashed; [`dockerignore`] holds Docker's pattern rules;
//! - [`parser`] (directives, comments, continuations, heredocs, flags) and
//!   [`instructions`] (typed instructions and stages), with [`shell`] substituting
//!   variables when the build reaches each instruction;
//! - [`plan`]: options, target, the stages needed, their dependencies and step numbers;
//! - [`exec`]: runs the plan through a [`BuildBackend`] (the engine), with the cache,
//!   history texts and output of Docker's classic builder; [`copy`] and [`rootfs`] do
//!   `COPY`/`ADD`, [`fetch`] downloads URLs, [`output`] orders parallel stages' output.
//!
//! ```no_run
//! # async fn demo<B: berth_builder::BuildBackend>(backend: &B) -> berth_builder::Result<()> {
//! use berth_builder::{BuildContext, BuildOptions, BuildPlan, Dockerfile};
//! let ctx = BuildContext::from_reader(std::io::empty(), "/tmp".as_ref(), "Dockerfile")?;
//! let df = Dockerfile::parse(&ctx.dockerfile("Dockerfile")?, "Dockerfile")?;
//! let opts = BuildOptions::default();
//! let plan = BuildPlan::new(&df, &opts)?;
//! let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
//! let id = berth_builder::build(backend, &ctx, &df, &plan, &opts, tx, Default::default()).await?;
//! # Ok(()) }
//! ```

pub mod backend;
pub mod context;
pub mod copy;
pub mod dockerignore;
pub mod error;
pub mod exec;
pub mod fetch;
pub mod gofmt;
pub mod hash;
pub mod instructions;
pub mod output;
pub mod parser;
pub mod plan;
pub mod rootfs;
pub mod shell;

pub use backend::{
    BuildBackend, BuiltImage, OutputSender, OutputStream, RunRequest, WorkingContainer,
};
pub use context::BuildContext;
pub use error::{BuildError, Result};
pub use exec::build;
pub use instructions::Dockerfile;
pub use output::BuildEvent;
pub use plan::{BuildOptions, BuildPlan};
pub use tokio_util::sync::CancellationToken;
