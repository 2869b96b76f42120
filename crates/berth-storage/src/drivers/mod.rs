//! The snapshot drivers behind [`crate::driver::SnapshotDriver`]: overlay2 and vfs.

pub(crate) mod overlay;
pub(crate) mod vfs;
