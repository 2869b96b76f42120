//! Compose files for berth: the Compose Specification model, loading, merging,
//! interpolation, validation and planning. No I/O with a daemon happens here; the
//! `berth compose` command (in the CLI crate) drives the Engine API with what this crate
//! decides, so it works the same against berthd and dockerd.
//!
//! The flow: [`Project::load`] reads the files ([`load`]: `.env` → YAML → interpolation
//! ([`interpolate`]) → the typed [`model`] (shapes read by [`de`] and [`short`]) →
//! `extends` and file merging ([`merge`]) → normalization and validation, with the
//! dependency order from [`graph`]). Then, per service, [`plan::converge`] compares the
//! wanted containers with the ones the daemon lists (by the labels in [`names`]) and
//! [`Project::create_spec`] ([`container`]) gives each new container's create body.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("compose.yaml"), "services:\n  web:\n    image: busybox\n").unwrap();
//! let p = berth_compose::Project::load(&berth_compose::LoadOptions {
//!     working_dir: dir.path().to_path_buf(),
//!     project_name: Some("demo".into()),
//!     ..Default::default()
//! }).unwrap();
//! assert_eq!(p.network_name("default"), "demo_default");
//! ```

pub mod container;
pub mod de;
pub mod dotenv;
pub mod error;
pub mod graph;
pub mod interpolate;
pub mod load;
pub mod merge;
pub mod model;
pub mod names;
pub mod plan;
pub mod short;

pub use container::{ContainerContext, CreateSpec, SpecError};
pub use error::{Error, Result};
pub use load::{LoadOptions, Project};
pub use model::Service;
