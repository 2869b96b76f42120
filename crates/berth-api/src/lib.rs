//! The Docker Engine HTTP API in front of berth's engine.
//!
//! - [`routes`]: one file per resource, handlers generic over the narrow traits of
//!   [`backend`] (implemented over the engine by [`backend::EngineBackend`]);
//! - [`convert`]: every mapping between Docker's wire models and berth-core's domain types;
//! - [`stream`]: multiplexed framing, hijacked (upgraded) connections, streaming bodies;
//! - [`version`]: `/vX.Y` prefixes and the supported range;
//! - [`server`]: unix and TCP(+TLS) listeners;
//! - [`error`]: the single error-kind → status mapping.

// Docker's inspect objects are large `json!` literals.
#![recursion_limit = "512"]

pub mod backend;
pub mod convert;
pub mod error;
pub mod params;
pub mod routes;
pub mod server;
pub mod stream;
pub mod version;

pub use backend::EngineBackend;
pub use routes::router;
