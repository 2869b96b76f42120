//! OCI runtime-spec generation and OCI runtime invocation.
