//! All wire ⇄ domain mapping: Docker's JSON models (bollard-stubs) to berth-core types and
//! back, including the filters parameter and timestamps.

pub mod container;
pub mod filters;
pub mod image;
pub mod network;
pub mod progress;
pub mod stats;
pub mod system;
pub mod time;
pub mod volume;
