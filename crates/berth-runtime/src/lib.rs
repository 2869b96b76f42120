//! OCI runtime-spec generation, OCI runtime invocation and cgroups for berth.
//!
//! The engine asks this crate three kinds of questions:
//! - **what should the container be?** [`spec::build_spec`] turns a container's configuration
//!   (already merged with its image) into an `oci_spec::runtime::Spec` with Docker's defaults
//!   and semantics: capabilities ([`caps`]), the default seccomp profile ([`seccomp`]), masked
//!   paths, devices, mounts, resources, rlimits and sysctls. [`spec::build_exec_process`] does
//!   the same for `docker exec`. Facts about the host that change the answer (the daemon's own
//!   capabilities and rlimits, the cgroup version, LSMs) come in as a [`host::HostFacts`], so
//!   tests can pin them.
//! - **who is the user?** [`user::resolve_user`] reads `/etc/passwd` and `/etc/group` inside a
//!   rootfs without ever following a symlink out of it.
//! - **what is the runtime doing?** [`oci::Runtime`] runs `runc` or `crun` for the daemon-side
//!   verbs (state, pause, resume, kill, update, delete), and [`cgroups::CgroupLayout`] reads a
//!   container's cgroups (processes, statistics, cleanup) on v1, v2 or hybrid hosts.
//!
//! Every error enum here implements [`berth_core::error::HasKind`] and converts into
//! [`berth_core::Error`] with its whole cause chain in the message.

#![deny(unsafe_code)]

pub mod caps;
pub mod cgroups;
mod error_chain;
pub mod host;
pub mod oci;
pub mod seccomp;
pub mod seccomp_bpf;
pub mod spec;
pub mod user;

pub use cgroups::{
    CgroupBackend, CgroupError, CgroupLayout, CgroupLimits, CgroupStats, CgroupSupport,
};
pub use host::HostFacts;
pub use oci::{default_runtime_for_host, Runtime, RuntimeError, RuntimeState, RuntimeStatus};
pub use spec::{
    build_exec_process, build_spec, EtcFiles, ExecRequest, NamespaceMode, NetworkNamespace,
    SpecError, SpecRequest,
};
pub use user::{resolve_user, ResolvedUser, UserError};
