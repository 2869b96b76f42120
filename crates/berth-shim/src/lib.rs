//! The per-container monitor ("shim") and the protocol the daemon speaks to it.
//!
//! One `berth-shim` process runs beside each running container. It starts the container
//! through the OCI runtime (`runc run -d`), becomes the subreaper of its processes, holds
//! their stdio (pipes or the pty master), writes the container's log file itself (so logs
//! keep being written while the daemon is down), records the exit status in the bundle, and
//! serves a unix socket on which the daemon attaches, sends stdin, resizes, signals and
//! starts exec processes. It is single-threaded and has no async runtime.
//!
//! - [`proto`]: frames exchanged on the shim socket, shared with the daemon;
//! - [`logfile`]: the `json-file` and `local` log formats with rotation and compression,
//!   shared with the daemon's reader;
//! - [`oom`]: counting and watching OOM kills in the container's memory cgroup;
//! - [`launch`]: the command-line contract between the daemon and the shim binary.

pub mod launch;
pub mod logfile;
pub mod oom;
pub mod proto;
