//! The only crate with unsafe code: namespaces, mounts, fd passing.
