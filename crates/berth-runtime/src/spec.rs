//! The OCI runtime spec of a container ([`build_spec`]) and of an exec process
//! ([`build_exec_process`]), with Docker's defaults and semantics.
//!
//! The engine describes the container in a [`SpecRequest`]: its configuration (already
//! merged with the image), its host configuration, the resolved command, where its rootfs is
//! mounted, and the namespaces it joins. Each concern lives in its own module: [`mounts`]
//! (default filesystems, tmpfs, masked paths), `devices`, [`resources`], `rlimits`,
//! `security` (`--security-opt`), `sysctl`, plus [`crate::caps`] and [`crate::seccomp`].
//!
//! ```no_run
//! # use berth_core::container::{ContainerConfig, HostConfig};
//! # use berth_runtime::spec::*;
//! let (config, host) = (ContainerConfig::default(), HostConfig::default());
//! let spec = build_spec(&SpecRequest {
//!     id: "abc",
//!     config: &config,
//!     host: &host,
//!     args: vec!["sh".into()],
//!     rootfs: "/var/lib/berth/rootfs/abc".into(),
//!     hostname: "abc".into(),
//!     etc_files: EtcFiles::default(),
//!     extra_mounts: vec![],
//!     network: NetworkNamespace::New,
//!     ipc: NamespaceMode::Private,
//!     pid: NamespaceMode::Private,
//!     uts: NamespaceMode::Private,
//!     cgroups_path: "/berth/abc".into(),
//!     init: None,
//!     shm_path: None,
//! })
//! .unwrap();
//! spec.save("/run/berth/abc/config.json").unwrap();
//! ```

pub(crate) mod devices;
pub mod mounts;
pub mod resources;
pub use resources::{cgroup_limits, linux_resources};
pub(crate) mod rlimits;
pub(crate) mod security;
pub(crate) mod sysctl;

use crate::caps::{self, CapabilityError};
use crate::host::HostFacts;
use crate::seccomp::{self, SeccompError};
use crate::user::{resolve_user, ResolvedUser, UserError};
use berth_core::container::{ContainerConfig, HostConfig};
use berth_core::error::{ErrorKind, HasKind};
use oci_spec::runtime::{
    BoxBuilder as ConsoleSizeBuilder, Capabilities, LinuxBuilder, LinuxCapabilities,
    LinuxNamespace, LinuxNamespaceType, Mount, Process, Root, Spec, User,
};
use security::SeccompChoice;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Where `--init` puts the init binary inside the container, as Docker does.
pub const INIT_PATH_IN_CONTAINER: &str = "/sbin/docker-init";
/// The `PATH` a container gets when its environment has none.
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The annotation that carries a container's `--group-add` (comma-separated) in its spec,
/// so exec processes that run as another user get the groups too.
pub const GROUP_ADD_ANNOTATION: &str = "io.berth.group-add";
/// The runtime-spec version the generated specs declare.
pub const OCI_VERSION: &str = "1.0.2-dev";

/// Why a spec could not be built. Messages a Docker client may match keep Docker's (or
/// runc's) wording.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("no command specified")]
    NoCommand,
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error("invalid --security-opt 1: {opt:?}")]
    MalformedSecurityOpt { opt: String },
    #[error("invalid --security-opt 2: {opt:?}")]
    UnknownSecurityOpt { opt: String },
    #[error("invalid ulimit type: {name}")]
    InvalidUlimit { name: String },
    #[error("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")]
    UlimitSoftAboveHard { soft: i64, hard: i64 },
    #[error("sysctl {key:?} not allowed in host network namespace")]
    SysctlHostNetwork { key: String },
    #[error("sysctl {key:?} is not allowed in the hosts ipc namespace")]
    SysctlHostIpc { key: String },
    #[error("sysctl {key:?} is not allowed as it conflicts with the OCI \"hostname\" field")]
    SysctlHostname { key: String },
    #[error("sysctl {key:?} is not in a separate kernel namespace")]
    SysctlNotNamespaced { key: String },
    #[error("Invalid value {value}, range for oom score adj is [-1000, 1000]")]
    OomScoreAdj { value: i64 },
    #[error("invalid CPU shares ({value}): value must be a positive integer")]
    InvalidCpuShares { value: i64 },
    #[error("invalid cgroup namespace mode: {mode}")]
    InvalidCgroupnsMode { mode: String },
    #[error("invalid device cgroup rule format: '{rule}'")]
    InvalidDeviceCgroupRule { rule: String },
    #[error("invalid device permissions: {permissions}")]
    InvalidDevicePermissions { permissions: String },
    #[error("error gathering device information while adding custom device {path:?}: {reason}")]
    Device { path: String, reason: String },
    #[error("stat {path}")]
    DeviceStat {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Invalid tmpfs option {option:?}")]
    InvalidTmpfsOption { option: String },
    #[error("invalid mount path: '{path}' mount path must be absolute")]
    InvalidMountPath { path: String },
    #[error("invalid specification: destination can't be '/'")]
    MountOnRoot,
    #[error("building the OCI spec")]
    Build {
        #[source]
        source: oci_spec::OciSpecError,
    },
}

impl HasKind for SpecError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Capability(e) => e.kind(),
            Self::Seccomp(e) => e.kind(),
            Self::User(e) => e.kind(),
            Self::Build { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidArgument,
        }
    }
}
crate::error_chain::into_core_error!(SpecError);

/// Host files bind-mounted over `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
}

/// The network namespace of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkNamespace {
    /// A fresh, empty namespace (only `lo`).
    New,
    /// The host's (no namespace in the spec).
    Host,
    /// Join an existing namespace (a bridge network's, or another container's).
    Path(PathBuf),
}

/// The IPC, PID or UTS namespace of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceMode {
    Private,
    Host,
    /// Join an existing namespace (`/proc/PID/ns/x` for `container:NAME` modes).
    Path(PathBuf),
}

impl NamespaceMode {
    pub fn is_private(&self) -> bool {
        matches!(self, Self::Private)
    }
    /// Not the host's: private, or another container's.
    fn is_isolated(&self) -> bool {
        !matches!(self, Self::Host)
    }
}

/// Everything [`build_spec`] needs to know about one container.
#[derive(Debug, Clone)]
pub struct SpecRequest<'a> {
    pub id: &'a str,
    /// Already merged with the image's defaults by the engine.
    pub config: &'a ContainerConfig,
    pub host: &'a HostConfig,
    /// The resolved entrypoint + cmd (non-empty).
    pub args: Vec<String>,
    /// The mounted rootfs (absolute).
    pub rootfs: PathBuf,
    pub hostname: String,
    pub etc_files: EtcFiles,
    /// Volumes and binds, as the engine resolved them.
    pub extra_mounts: Vec<Mount>,
    pub network: NetworkNamespace,
    pub ipc: NamespaceMode,
    pub pid: NamespaceMode,
    pub uts: NamespaceMode,
    /// cgroupfs style, e.g. `/berth/<id>`.
    pub cgroups_path: String,
    /// Host path of an init binary for `--init`.
    pub init: Option<PathBuf>,
    /// A host directory to bind at `/dev/shm`; when `None`, a tmpfs of `host.shm_size`.
    pub shm_path: Option<PathBuf>,
}

/// What `docker exec` asks for.
#[derive(Debug, Clone)]
pub struct ExecRequest<'a> {
    pub args: Vec<String>,
    /// `KEY=value` entries that override the container's.
    pub env: Vec<String>,
    /// Empty: the container's user.
    pub user: String,
    /// Empty: the container's working directory.
    pub working_dir: String,
    pub tty: bool,
    pub privileged: bool,
    /// The container's mounted rootfs, to resolve `user` against.
    pub rootfs: &'a Path,
}

/// Docker's `ReplaceOrAppendEnvValues`: `KEY=value` replaces or appends, a bare `KEY`
/// removes.
pub fn replace_or_append_env(base: Vec<String>, overrides: &[String]) -> Vec<String> {
    let key = |e: &str| {
        e.split_once('=')
            .map(|(k, _)| k.to_string())
            .unwrap_or_else(|| e.to_string())
    };
    let mut env: Vec<Option<String>> = base.into_iter().map(Some).collect();
    for value in overrides {
        let k = key(value);
        let existing = env
            .iter()
            .position(|e| e.as_deref().is_some_and(|e| key(e) == k));
        match (value.contains('='), existing) {
            (true, Some(i)) => env[i] = Some(value.clone()),
            (true, None) => env.push(Some(value.clone())),
            (false, Some(i)) => env[i] = None,
            (false, None) => {}
        }
    }
    env.into_iter().flatten().collect()
}

/// A container's environment as Docker builds it: `PATH`, `HOSTNAME` and (with a tty)
/// `TERM=xterm`, overridden by the configured environment.
pub fn container_env(config_env: &[String], hostname: &str, tty: bool) -> Vec<String> {
    let mut base = vec![DEFAULT_PATH_ENV.to_string(), format!("HOSTNAME={hostname}")];
    if tty {
        base.push("TERM=xterm".to_string());
    }
    replace_or_append_env(base, config_env)
}

fn capability_sets(list: &[caps::Capability]) -> LinuxCapabilities {
    let set: Capabilities = list.iter().copied().collect();
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(set.clone()));
    c.set_effective(Some(set.clone()));
    c.set_permitted(Some(set));
    // Inheritable and ambient stay empty, so a non-root process keeps no capability.
    c.set_inheritable(None);
    c.set_ambient(None);
    c
}

fn oci_user(user: &ResolvedUser) -> User {
    let mut u = User::default();
    u.set_uid(user.uid);
    u.set_gid(user.gid);
    u.set_additional_gids(Some(user.additional_gids.clone()));
    u
}

fn namespace(typ: LinuxNamespaceType, path: Option<&Path>) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns.set_path(path.map(Path::to_path_buf));
    ns
}

fn mode_namespace(typ: LinuxNamespaceType, mode: &NamespaceMode) -> Option<LinuxNamespace> {
    match mode {
        NamespaceMode::Private => Some(namespace(typ, None)),
        NamespaceMode::Path(p) => Some(namespace(typ, Some(p))),
        NamespaceMode::Host => None,
    }
}

fn namespaces(req: &SpecRequest, facts: &HostFacts) -> Result<Vec<LinuxNamespace>, SpecError> {
    let mut list = vec![namespace(LinuxNamespaceType::Mount, None)];
    list.extend(mode_namespace(LinuxNamespaceType::Pid, &req.pid));
    list.extend(mode_namespace(LinuxNamespaceType::Ipc, &req.ipc));
    list.extend(mode_namespace(LinuxNamespaceType::Uts, &req.uts));
    match &req.network {
        NetworkNamespace::New => list.push(namespace(LinuxNamespaceType::Network, None)),
        NetworkNamespace::Path(p) => list.push(namespace(LinuxNamespaceType::Network, Some(p))),
        NetworkNamespace::Host => {}
    }
    let private_cgroupns = match req.host.cgroupns_mode.as_str() {
        "" => facts.cgroup_v2,
        "private" => true,
        "host" => false,
        other => {
            return Err(SpecError::InvalidCgroupnsMode {
                mode: other.to_string(),
            })
        }
    };
    if private_cgroupns {
        list.push(namespace(LinuxNamespaceType::Cgroup, None));
    }
    Ok(list)
}

/// The seccomp filter for a container, per `--security-opt seccomp=` and `--privileged`.
fn seccomp_filter(
    choice: &SeccompChoice,
    privileged: bool,
    caps: &[caps::Capability],
    facts: &HostFacts,
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, SpecError> {
    Ok(match choice {
        SeccompChoice::Unconfined => None,
        SeccompChoice::Unset if privileged => None,
        SeccompChoice::Unset | SeccompChoice::Builtin => {
            Some(seccomp::default_filter(caps, facts)?)
        }
        SeccompChoice::Custom(json) => {
            seccomp::resolve(&seccomp::load_profile(json)?, caps, facts)?
        }
    })
}

/// The OCI spec of a container on this host; see [`build_spec_with`].
pub fn build_spec(req: &SpecRequest) -> Result<Spec, SpecError> {
    build_spec_with(req, HostFacts::current())
}

/// The OCI spec of a container, given the facts of the host it runs on.
pub fn build_spec_with(req: &SpecRequest, facts: &HostFacts) -> Result<Spec, SpecError> {
    let (config, host) = (req.config, req.host);
    if req.args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    if !(-1000..=1000).contains(&host.oom_score_adj) {
        return Err(SpecError::OomScoreAdj {
            value: host.oom_score_adj,
        });
    }
    let security = security::parse(&host.security_opt)?;
    let capabilities = caps::container_capabilities(
        &host.cap_add,
        &host.cap_drop,
        host.privileged,
        &facts.capabilities,
    )?;
    let user = resolve_user(&req.rootfs, &config.user, &host.group_add)?;

    // Process.
    let mut args = req.args.clone();
    if let (Some(_), true) = (&req.init, req.pid.is_private()) {
        args.splice(0..0, [INIT_PATH_IN_CONTAINER.to_string(), "--".to_string()]);
    }
    let mut process = Process::default();
    process.set_args(Some(args));
    process.set_env(Some(container_env(&config.env, &req.hostname, config.tty)));
    process.set_cwd(PathBuf::from(if config.working_dir.is_empty() {
        "/"
    } else {
        &config.working_dir
    }));
    process.set_terminal(Some(config.tty));
    if let (true, Some([height, width])) = (config.tty, host.console_size) {
        if height > 0 || width > 0 {
            let size = ConsoleSizeBuilder::default()
                .height(u64::from(height))
                .width(u64::from(width))
                .build()
                .map_err(|source| SpecError::Build { source })?;
            process.set_console_size(Some(size));
        }
    }
    process.set_user(oci_user(&user));
    process.set_capabilities(Some(capability_sets(&capabilities)));
    let rlimits = rlimits::build(&host.resources.ulimits, facts)?;
    process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    process.set_no_new_privileges(Some(security.no_new_privileges));
    process.set_oom_score_adj(Some(host.oom_score_adj as i32));
    process.set_apparmor_profile(match (&security.apparmor, facts.apparmor) {
        (Some(profile), true) => Some(profile.clone()),
        (None, true) if host.privileged => Some("unconfined".to_string()),
        _ => None,
    });

    // Linux.
    let namespaces = namespaces(req, facts)?;
    let mut sysctls: BTreeMap<String, String> = BTreeMap::new();
    let joined_other_container = host.network_mode.starts_with("container:");
    if !matches!(req.network, NetworkNamespace::Host) && !joined_other_container {
        sysctls.extend(sysctl::network_defaults(facts));
    }
    if req.uts.is_private() && !config.domainname.is_empty() {
        sysctls.insert("kernel.domainname".to_string(), config.domainname.clone());
    }
    sysctls.extend(host.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())));
    sysctl::validate(
        &host.sysctls,
        sysctl::SysctlNamespaces {
            ipc: req.ipc.is_isolated(),
            net: !matches!(req.network, NetworkNamespace::Host),
            uts: req.uts.is_isolated(),
        },
    )?;

    let (devices, device_rules) = devices::build(host, &facts.dev_root)?;
    let mut resources = resources::linux_resources(&host.resources)?;
    resources.set_devices(Some(device_rules));
    let (masked, readonly) = mounts::masked_and_readonly_paths(req);
    let seccomp = seccomp_filter(&security.seccomp, host.privileged, &capabilities, facts)?;

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(&req.cgroups_path))
        .resources(resources)
        .devices(devices)
        .sysctl(sysctls.into_iter().collect::<HashMap<_, _>>())
        .masked_paths(masked)
        .readonly_paths(readonly)
        .build()
        .map_err(|source| SpecError::Build { source })?;
    linux.set_seccomp(seccomp);

    let mut root = Root::default();
    root.set_path(req.rootfs.clone());
    root.set_readonly(Some(host.readonly_rootfs));

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.to_string());
    spec.set_root(Some(root));
    spec.set_mounts(Some(mounts::build(req, security.writable_cgroups)?));
    spec.set_process(Some(process));
    spec.set_hostname(req.uts.is_private().then(|| req.hostname.clone()));
    spec.set_domainname(None);
    spec.set_annotations(
        (!host.group_add.is_empty())
            .then(|| HashMap::from([(GROUP_ADD_ANNOTATION.to_string(), host.group_add.join(","))])),
    );
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// The process of `docker exec` in a container that runs `container_spec`; see
/// [`build_exec_process_with`].
pub fn build_exec_process(container_spec: &Spec, req: &ExecRequest) -> Result<Process, SpecError> {
    build_exec_process_with(container_spec, req, HostFacts::current())
}

/// The process for `runc exec --process`: the container's environment overridden by the
/// exec's, its user (or the one asked for, resolved in the rootfs), its capabilities (all the
/// daemon has with `--privileged`), and the same no-new-privileges, AppArmor profile,
/// rlimits and OOM score as the container's process. Seccomp is the container's: the
/// runtime applies it to every process it starts in the container.
pub fn build_exec_process_with(
    container_spec: &Spec,
    req: &ExecRequest,
    facts: &HostFacts,
) -> Result<Process, SpecError> {
    if req.args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let base = container_spec.process().clone().unwrap_or_default();
    let mut env = replace_or_append_env(base.env().clone().unwrap_or_default(), &req.env);
    if req.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_string());
    }

    let mut process = Process::default();
    process.set_args(Some(req.args.clone()));
    process.set_env(Some(env));
    process.set_cwd(if req.working_dir.is_empty() {
        base.cwd().clone()
    } else {
        PathBuf::from(&req.working_dir)
    });
    process.set_terminal(Some(req.tty));
    process.set_console_size(None);
    if req.user.is_empty() {
        process.set_user(base.user().clone());
    } else {
        // `--group-add` applies to exec processes too; the container's spec carries it.
        let group_add: Vec<String> = container_spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(GROUP_ADD_ANNOTATION))
            .map(|list| {
                list.split(',')
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        process.set_user(oci_user(&resolve_user(req.rootfs, &req.user, &group_add)?));
    }
    let capabilities = if req.privileged {
        Some(capability_sets(&facts.capabilities))
    } else {
        base.capabilities().clone()
    };
    process.set_capabilities(capabilities);
    process.set_rlimits(base.rlimits().clone());
    process.set_no_new_privileges(base.no_new_privileges());
    process.set_apparmor_profile(base.apparmor_profile().clone());
    process.set_selinux_label(base.selinux_label().clone());
    process.set_oom_score_adj(base.oom_score_adj());
    Ok(process)
}

#[cfg(test)]
mod tests;
