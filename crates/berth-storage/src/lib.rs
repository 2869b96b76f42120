//! Content store, layer store, overlay snapshots, layer diff and apply.
