//! Domain types shared by berth's services and its API layer.
//!
//! Nothing here knows about HTTP, the Docker wire format or API versions: the API crate
//! converts between those and these types. The main pieces:
//! - [`error`]: [`ErrorKind`] and the [`Error`] every service returns;
//! - [`id`]: random 64-hex identifiers and their short forms;
//! - [`reference`]: Docker-compatible image references (`busybox` →
//!   `docker.io/library/busybox:latest`) and [`digest::Digest`];
//! - [`container`] and [`image`]: what a container and an image are to the engine;
//! - [`filters`]: `key=value` list filters as `ps -f` and `images -f` use them.

pub mod container;
pub mod digest;
pub mod error;
pub mod event;
pub mod filters;
pub mod id;
pub mod image;
pub mod name;
pub mod network;
pub mod reference;
pub mod signal;
pub mod volume;

pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
