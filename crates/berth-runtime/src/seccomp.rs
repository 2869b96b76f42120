//! Seccomp: Docker's default profile as Rust data, Docker-format profile files, and the
//! resolution of a profile's conditional rules into the runtime-spec `LinuxSeccomp` for one
//! container.
//!
//! A [`Profile`] is Docker's JSON format: a default action, an `archMap`, and rules that may
//! carry `includes`/`excludes` conditions on capabilities, architectures and the kernel
//! version. [`resolve`] keeps the rules whose conditions hold for a container (its bounding
//! capabilities, the host's architecture and kernel) and drops the conditions, which is what
//! runc and crun understand.
//!
//! The default profile ([`default_profile`]) follows Docker's semantics: everything not
//! listed fails with `EPERM`; a large allow-list of ordinary syscalls; `clone` only without
//! namespace flags and `clone3` failing with `ENOSYS` (so libcs fall back to `clone`) unless
//! the container has `CAP_SYS_ADMIN`; a few `personality` values; `socket` for every address
//! family but `AF_VSOCK` and `AF_ALG`; and the syscalls that each of `CAP_SYS_ADMIN`,
//! `CAP_SYS_BOOT`, `CAP_SYS_MODULE`, `CAP_SYS_PTRACE`, `CAP_SYS_TIME`, ... unlock. Syscall
//! names the host's libseccomp does not know are skipped by the runtimes.

use crate::caps::{self, Capability};
use crate::host::HostFacts;
use berth_core::error::{ErrorKind, HasKind};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::PathBuf;

/// Why a seccomp profile could not be used; the wording follows Docker's.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("Decoding seccomp profile failed")]
    Decode {
        #[source]
        source: serde_json::Error,
    },
    #[error("opening seccomp profile ({path}) failed")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "both 'architectures' and 'archMap' are specified in the seccomp profile, use either \
         'architectures' or 'archMap'"
    )]
    ArchitecturesAndArchMap,
    #[error(
        "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or \
         'names'"
    )]
    NameAndNames,
    #[error("the seccomp profile has rules but no defaultAction")]
    NoDefaultAction,
    #[error("building the seccomp filter")]
    Build {
        #[source]
        source: oci_spec::OciSpecError,
    },
}

impl HasKind for SeccompError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Build { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidArgument,
        }
    }
}
crate::error_chain::into_core_error!(SeccompError);

/// A seccomp profile in Docker's JSON format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<LinuxSeccompAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub architectures: Vec<Arch>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arch_map: Vec<ArchMapEntry>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub syscalls: Vec<Rule>,
}

/// A native architecture and the ones that can run on it (`x86_64` runs `x86` and `x32`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMapEntry {
    pub architecture: Arch,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sub_architectures: Vec<Arch>,
}

/// One rule: an action for some syscalls, optionally only for some argument values, and
/// only when `includes` holds and `excludes` does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub names: Vec<String>,
    /// The old single-name form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub action: LinuxSeccompAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<LinuxSeccompArg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Condition::is_empty")]
    pub includes: Condition,
    #[serde(default, skip_serializing_if = "Condition::is_empty")]
    pub excludes: Condition,
}

/// When a rule applies: all listed capabilities held (for `includes`; any, for `excludes`),
/// the host architecture listed, the kernel at least this version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub caps: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arches: Vec<String>,
    #[serde(
        default,
        deserialize_with = "kernel_version_de",
        serialize_with = "kernel_version_ser",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_kernel: Option<(u32, u32)>,
}

impl Condition {
    fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

fn kernel_version_de<'de, D: Deserializer<'de>>(de: D) -> Result<Option<(u32, u32)>, D::Error> {
    let Some(text) = Option::<String>::deserialize(de)? else {
        return Ok(None);
    };
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || {
        serde::de::Error::custom(format!(
            "invalid kernel version: {text:?}, expected \"<kernel>.<major>\""
        ))
    };
    let (major, minor) = text.split_once('.').ok_or_else(bad)?;
    let version = (
        major.parse().map_err(|_| bad())?,
        minor.parse().map_err(|_| bad())?,
    );
    if version == (0, 0) {
        return Err(bad());
    }
    Ok(Some(version))
}

fn kernel_version_ser<S: Serializer>(v: &Option<(u32, u32)>, ser: S) -> Result<S::Ok, S::Error> {
    match v {
        Some((major, minor)) => ser.serialize_str(&format!("{major}.{minor}")),
        None => ser.serialize_none(),
    }
}

/// Parses a Docker-format profile (the text of `--security-opt seccomp=profile.json`).
pub fn load_profile(json: &str) -> Result<Profile, SeccompError> {
    serde_json::from_str(json).map_err(|source| SeccompError::Decode { source })
}

/// The seccomp arch of the host's native architecture (as [`HostFacts::arch`] names it).
fn native_arch(arch: &str) -> Option<Arch> {
    Some(match arch {
        "amd64" => Arch::ScmpArchX86_64,
        "x86" => Arch::ScmpArchX86,
        "arm64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        "loong64" => Arch::ScmpArchLoongarch64,
        "mips64" => Arch::ScmpArchMips64,
        "ppc64le" => Arch::ScmpArchPpc64le,
        _ => return None,
    })
}

/// The rules of `profile` that apply to a container with bounding set `caps` on this host,
/// as the runtime-spec filter; `None` when the profile disables seccomp (no default action
/// and no rules).
pub fn resolve(
    profile: &Profile,
    caps: &[Capability],
    facts: &HostFacts,
) -> Result<Option<LinuxSeccomp>, SeccompError> {
    if profile.default_action.is_none() && profile.syscalls.is_empty() {
        return Ok(None);
    }
    let default_action = profile
        .default_action
        .ok_or(SeccompError::NoDefaultAction)?;
    if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
        return Err(SeccompError::ArchitecturesAndArchMap);
    }
    let mut architectures = profile.architectures.clone();
    if let Some(native) = native_arch(facts.arch) {
        if let Some(entry) = profile.arch_map.iter().find(|e| e.architecture == native) {
            architectures.push(entry.architecture);
            architectures.extend(entry.sub_architectures.iter().copied());
        }
    }
    let cap_names: Vec<&str> = caps.iter().map(|c| caps::name(*c)).collect();
    let has_cap = |name: &String| cap_names.contains(&name.to_ascii_uppercase().as_str());

    let mut syscalls = Vec::new();
    for rule in &profile.syscalls {
        let names = match (&rule.name, rule.names.is_empty()) {
            (Some(_), false) => return Err(SeccompError::NameAndNames),
            (Some(name), true) => vec![name.clone()],
            (None, _) => rule.names.clone(),
        };
        let ex = &rule.excludes;
        if ex.arches.iter().any(|a| a == facts.arch)
            || ex.caps.iter().any(has_cap)
            || ex.min_kernel.is_some_and(|k| facts.kernel >= k)
        {
            continue;
        }
        let inc = &rule.includes;
        if (!inc.arches.is_empty() && !inc.arches.iter().any(|a| a == facts.arch))
            || !inc.caps.iter().all(has_cap)
            || inc.min_kernel.is_some_and(|k| facts.kernel < k)
        {
            continue;
        }
        let mut syscall = LinuxSyscall::default();
        syscall.set_names(names);
        syscall.set_action(rule.action);
        syscall.set_errno_ret(rule.errno_ret);
        syscall.set_args((!rule.args.is_empty()).then(|| rule.args.clone()));
        syscalls.push(syscall);
    }

    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(default_action);
    seccomp.set_default_errno_ret(profile.default_errno_ret);
    seccomp.set_architectures((!architectures.is_empty()).then_some(architectures));
    seccomp.set_flags((!profile.flags.is_empty()).then(|| profile.flags.clone()));
    seccomp.set_listener_path(profile.listener_path.clone());
    seccomp.set_listener_metadata(profile.listener_metadata.clone());
    seccomp.set_syscalls(Some(syscalls));
    Ok(Some(seccomp))
}

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;
/// `CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
/// CLONE_NEWCGROUP`: creating any namespace needs `CAP_SYS_ADMIN`.
const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000 | 0x0200_0000;

/// Syscalls any container may make: files and directories.
#[rustfmt::skip]
const FILE_SYSCALLS: &[&str] = &[
    "access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd", "chmod", "fchmod", "fchmodat",
    "fchmodat2", "chown", "chown32", "fchown", "fchown32", "fchownat", "lchown", "lchown32",
    "creat", "open", "openat", "openat2", "name_to_handle_at", "close", "close_range", "dup",
    "dup2", "dup3", "fcntl", "fcntl64", "flock", "read", "readv", "pread64", "preadv", "preadv2",
    "write", "writev", "pwrite64", "pwritev", "pwritev2", "lseek", "_llseek", "sendfile",
    "sendfile64", "splice", "tee", "vmsplice", "copy_file_range", "readahead", "fadvise64",
    "fadvise64_64", "fallocate", "truncate", "truncate64", "ftruncate", "ftruncate64", "fsync",
    "fdatasync", "sync", "syncfs", "sync_file_range", "stat", "stat64", "lstat", "lstat64", "fstat",
    "fstat64", "fstatat64", "newfstatat", "statx", "statfs", "statfs64", "fstatfs", "fstatfs64",
    "getdents", "getdents64", "mkdir", "mkdirat", "mknod", "mknodat", "rmdir", "link", "linkat",
    "unlink", "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat", "rename", "renameat",
    "renameat2", "umask", "utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
    "getxattr", "getxattrat", "lgetxattr", "fgetxattr", "setxattr", "setxattrat", "lsetxattr",
    "fsetxattr", "listxattr", "listxattrat", "llistxattr", "flistxattr", "removexattr",
    "removexattrat", "lremovexattr", "fremovexattr", "inotify_init", "inotify_init1",
    "inotify_add_watch", "inotify_rm_watch", "fanotify_mark", "io_setup", "io_destroy", "io_submit",
    "io_cancel", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioctl", "cachestat",
    "statmount", "listmount", "landlock_create_ruleset", "landlock_add_rule",
    "landlock_restrict_self",
];

/// Processes, threads, credentials, scheduling and limits.
#[rustfmt::skip]
const PROCESS_SYSCALLS: &[&str] = &[
    "execve", "execveat", "exit", "exit_group", "fork", "vfork", "wait4", "waitid", "waitpid",
    "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid", "getuid",
    "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32", "getresuid",
    "getresuid32", "getresgid", "getresgid32", "setuid", "setuid32", "setgid", "setgid32",
    "setreuid", "setreuid32", "setregid", "setregid32", "setresuid", "setresuid32", "setresgid",
    "setresgid32", "setfsuid", "setfsuid32", "setfsgid", "setfsgid32", "getgroups", "getgroups32",
    "setgroups", "setgroups32", "capget", "capset", "prctl", "seccomp", "getpriority",
    "setpriority", "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr",
    "sched_setattr", "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
    "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "ioprio_get", "ioprio_set", "getrlimit", "ugetrlimit",
    "setrlimit", "prlimit64", "getrusage", "times", "getcpu", "set_tid_address", "set_robust_list",
    "get_robust_list", "rseq", "get_thread_area", "set_thread_area", "futex", "futex_time64",
    "futex_waitv", "futex_wait", "futex_wake", "futex_requeue", "pidfd_open", "pidfd_send_signal",
    "process_mrelease", "restart_syscall", "sysinfo", "uname", "riscv_hwprobe", "uretprobe",
    "map_shadow_stack",
];

/// Memory.
#[rustfmt::skip]
const MEMORY_SYSCALLS: &[&str] = &[
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock",
    "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages", "membarrier", "memfd_create",
    "memfd_secret", "mseal", "pkey_alloc", "pkey_free", "pkey_mprotect",
];

/// Signals, timers and clocks (reading them; setting the clock needs `CAP_SYS_TIME`).
#[rustfmt::skip]
const SIGNAL_AND_TIME_SYSCALLS: &[&str] = &[
    "kill", "tkill", "tgkill", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "sigaltstack", "sigprocmask", "sigreturn", "signalfd", "signalfd4",
    "alarm", "getitimer", "setitimer", "nanosleep", "clock_nanosleep", "clock_nanosleep_time64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_adjtime",
    "clock_adjtime64", "adjtimex", "gettimeofday", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "getrandom",
];

/// Polling, sockets (but `socket` itself, which has argument rules) and System V / POSIX IPC.
#[rustfmt::skip]
const IO_AND_IPC_SYSCALLS: &[&str] = &[
    "select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait", "epoll_wait_old",
    "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "pipe", "pipe2", "socketpair",
    "socketcall", "bind", "connect", "listen", "accept", "accept4", "getsockname", "getpeername",
    "getsockopt", "setsockopt", "shutdown", "send", "sendto", "sendmsg", "sendmmsg", "recv",
    "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64", "ipc", "msgget", "msgctl", "msgsnd",
    "msgrcv", "semget", "semctl", "semop", "semtimedop", "semtimedop_time64", "shmget", "shmctl",
    "shmat", "shmdt", "mq_open", "mq_unlink", "mq_getsetattr", "mq_notify", "mq_timedsend",
    "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
];

/// Only with `CAP_SYS_ADMIN`: mounts, namespaces, BPF and perf, quotas, host and domain
/// names, the kernel log.
#[rustfmt::skip]
const SYS_ADMIN_SYSCALLS: &[&str] = &[
    "mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "unshare", "setns", "clone", "clone3", "sethostname", "setdomainname",
    "quotactl", "quotactl_fd", "bpf", "perf_event_open", "fanotify_init", "lookup_dcookie",
    "syslog", "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules",
];

/// A rule as written in this file; converted to a [`Rule`] by [`default_profile`].
struct RuleDef {
    names: &'static [&'static str],
    action: LinuxSeccompAction,
    errno: Option<u32>,
    /// `(index, value, op)`; several entries of one rule must all match.
    args: &'static [(usize, u64, LinuxSeccompOperator)],
    when_caps: &'static [&'static str],
    when_arches: &'static [&'static str],
    min_kernel: Option<(u32, u32)>,
    unless_caps: &'static [&'static str],
    unless_arches: &'static [&'static str],
}

const ALLOW: RuleDef = RuleDef {
    names: &[],
    action: LinuxSeccompAction::ScmpActAllow,
    errno: None,
    args: &[],
    when_caps: &[],
    when_arches: &[],
    min_kernel: None,
    unless_caps: &[],
    unless_arches: &[],
};

const fn allow_with_cap(cap: &'static [&'static str], names: &'static [&'static str]) -> RuleDef {
    RuleDef {
        names,
        when_caps: cap,
        ..ALLOW
    }
}

const fn allow_on(arches: &'static [&'static str], names: &'static [&'static str]) -> RuleDef {
    RuleDef {
        names,
        when_arches: arches,
        ..ALLOW
    }
}

const fn allow_arg(
    name: &'static [&'static str],
    args: &'static [(usize, u64, LinuxSeccompOperator)],
) -> RuleDef {
    RuleDef {
        names: name,
        args,
        ..ALLOW
    }
}

use LinuxSeccompOperator::{
    ScmpCmpEq as EQ, ScmpCmpGt as GT, ScmpCmpLt as LT, ScmpCmpMaskedEq as MASKED_EQ,
};

/// Everything past the plain allow-lists, in the order the runtime sees them.
const CONDITIONAL_RULES: &[RuleDef] = &[
    // Debugging other processes of the container: safe since 4.8 fixed the seccomp bypass.
    RuleDef {
        names: &["ptrace", "process_vm_readv", "process_vm_writev"],
        min_kernel: Some((4, 8)),
        ..ALLOW
    },
    // socket(2) for all families below AF_ALG, the one between AF_ALG and AF_VSOCK, and above.
    allow_arg(&["socket"], &[(0, AF_ALG, LT)]),
    allow_arg(&["socket"], &[(0, AF_ALG + 1, EQ)]),
    allow_arg(&["socket"], &[(0, AF_VSOCK, GT)]),
    // personality(2): PER_LINUX, PER_LINUX32, UNAME26 variants, and the query value.
    allow_arg(&["personality"], &[(0, 0x0, EQ)]),
    allow_arg(&["personality"], &[(0, 0x8, EQ)]),
    allow_arg(&["personality"], &[(0, 0x20000, EQ)]),
    allow_arg(&["personality"], &[(0, 0x20008, EQ)]),
    allow_arg(&["personality"], &[(0, 0xffff_ffff, EQ)]),
    // Architecture-specific helpers.
    allow_on(&["ppc64le"], &["sync_file_range2", "swapcontext"]),
    allow_on(
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
    allow_on(&["amd64", "x32"], &["arch_prctl"]),
    allow_on(&["amd64", "x32", "x86"], &["modify_ldt"]),
    allow_on(
        &["s390", "s390x"],
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
    allow_on(&["riscv64"], &["riscv_flush_icache"]),
    // What each capability unlocks.
    allow_with_cap(&["CAP_DAC_READ_SEARCH"], &["open_by_handle_at"]),
    allow_with_cap(&["CAP_SYS_ADMIN"], SYS_ADMIN_SYSCALLS),
    // Without CAP_SYS_ADMIN, clone(2) only when it creates no namespace (flags are the first
    // argument everywhere but on s390, where they are the second).
    RuleDef {
        names: &["clone"],
        args: &[(0, CLONE_NAMESPACE_FLAGS, MASKED_EQ)],
        unless_caps: &["CAP_SYS_ADMIN"],
        unless_arches: &["s390", "s390x"],
        ..ALLOW
    },
    RuleDef {
        names: &["clone"],
        args: &[(1, CLONE_NAMESPACE_FLAGS, MASKED_EQ)],
        when_arches: &["s390", "s390x"],
        unless_caps: &["CAP_SYS_ADMIN"],
        ..ALLOW
    },
    // clone3 passes its flags in memory a filter cannot read: ENOSYS makes libcs use clone.
    RuleDef {
        names: &["clone3"],
        action: LinuxSeccompAction::ScmpActErrno,
        errno: Some(ENOSYS),
        unless_caps: &["CAP_SYS_ADMIN"],
        ..ALLOW
    },
    allow_with_cap(&["CAP_SYS_BOOT"], &["reboot"]),
    allow_with_cap(&["CAP_SYS_CHROOT"], &["chroot"]),
    allow_with_cap(
        &["CAP_SYS_MODULE"],
        &["init_module", "finit_module", "delete_module"],
    ),
    allow_with_cap(&["CAP_SYS_PACCT"], &["acct"]),
    allow_with_cap(
        &["CAP_SYS_PTRACE"],
        &[
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "process_madvise",
            "kcmp",
            "pidfd_getfd",
        ],
    ),
    allow_with_cap(&["CAP_SYS_RAWIO"], &["iopl", "ioperm"]),
    allow_with_cap(
        &["CAP_SYS_TIME"],
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    allow_with_cap(&["CAP_SYS_TTY_CONFIG"], &["vhangup"]),
    allow_with_cap(
        &["CAP_SYS_NICE"],
        &[
            "mbind",
            "get_mempolicy",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    allow_with_cap(&["CAP_SYSLOG"], &["syslog"]),
    allow_with_cap(&["CAP_BPF"], &["bpf"]),
    allow_with_cap(&["CAP_PERFMON"], &["perf_event_open"]),
];

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn rule_from(def: &RuleDef) -> Rule {
    let args = def
        .args
        .iter()
        .map(|&(index, value, op)| {
            LinuxSeccompArgBuilder::default()
                .index(index)
                .value(value)
                .value_two(0u64)
                .op(op)
                .build()
                .expect("every field of a seccomp argument is set")
        })
        .collect();
    Rule {
        names: strings(def.names),
        name: None,
        action: def.action,
        errno_ret: def.errno,
        args,
        comment: None,
        includes: Condition {
            caps: strings(def.when_caps),
            arches: strings(def.when_arches),
            min_kernel: def.min_kernel,
        },
        excludes: Condition {
            caps: strings(def.unless_caps),
            arches: strings(def.unless_arches),
            min_kernel: None,
        },
    }
}

/// Docker's default seccomp profile (see the module docs).
pub fn default_profile() -> Profile {
    let allowed: Vec<String> = [
        FILE_SYSCALLS,
        PROCESS_SYSCALLS,
        MEMORY_SYSCALLS,
        SIGNAL_AND_TIME_SYSCALLS,
        IO_AND_IPC_SYSCALLS,
    ]
    .concat()
    .into_iter()
    .map(str::to_string)
    .collect();
    let mut syscalls = vec![Rule {
        names: allowed,
        name: None,
        action: LinuxSeccompAction::ScmpActAllow,
        errno_ret: None,
        args: Vec::new(),
        comment: None,
        includes: Condition::default(),
        excludes: Condition::default(),
    }];
    syscalls.extend(CONDITIONAL_RULES.iter().map(rule_from));
    let entry = |architecture, subs: &[Arch]| ArchMapEntry {
        architecture,
        sub_architectures: subs.to_vec(),
    };
    Profile {
        default_action: Some(LinuxSeccompAction::ScmpActErrno),
        default_errno_ret: Some(EPERM),
        arch_map: vec![
            entry(
                Arch::ScmpArchX86_64,
                &[Arch::ScmpArchX86, Arch::ScmpArchX32],
            ),
            entry(Arch::ScmpArchAarch64, &[Arch::ScmpArchArm]),
            entry(
                Arch::ScmpArchMips64,
                &[Arch::ScmpArchMips, Arch::ScmpArchMips64n32],
            ),
            entry(
                Arch::ScmpArchMips64n32,
                &[Arch::ScmpArchMips, Arch::ScmpArchMips64],
            ),
            entry(
                Arch::ScmpArchMipsel64,
                &[Arch::ScmpArchMipsel, Arch::ScmpArchMipsel64n32],
            ),
            entry(
                Arch::ScmpArchMipsel64n32,
                &[Arch::ScmpArchMipsel, Arch::ScmpArchMipsel64],
            ),
            entry(Arch::ScmpArchS390x, &[Arch::ScmpArchS390]),
            entry(Arch::ScmpArchRiscv64, &[]),
            entry(Arch::ScmpArchLoongarch64, &[]),
        ],
        syscalls,
        ..Profile::default()
    }
}

/// The default profile resolved for a container with bounding set `caps` on this host.
pub fn default_filter(
    caps: &[Capability],
    facts: &HostFacts,
) -> Result<LinuxSeccomp, SeccompError> {
    resolve(&default_profile(), caps, facts)?.ok_or(SeccompError::NoDefaultAction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::test_facts;

    fn filter(caps: &[Capability]) -> LinuxSeccomp {
        default_filter(caps, &test_facts()).unwrap()
    }

    /// Whether `name` is allowed unconditionally (by a rule without argument checks).
    fn allowed(seccomp: &LinuxSeccomp, name: &str) -> bool {
        seccomp.syscalls().as_ref().unwrap().iter().any(|s| {
            s.names().iter().any(|n| n == name)
                && s.action() == LinuxSeccompAction::ScmpActAllow
                && s.args().as_ref().is_none_or(|a| a.is_empty())
        })
    }

    fn rules_for<'a>(seccomp: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        seccomp
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|s| s.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn default_action_is_eperm_on_the_native_and_compat_arches() {
        let seccomp = filter(caps::DEFAULT);
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(seccomp.default_errno_ret(), Some(1));
        assert_eq!(
            seccomp.architectures().clone().unwrap(),
            vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
    }

    #[test]
    fn aarch64_hosts_get_the_arm_compat_arch() {
        let facts = HostFacts {
            arch: "arm64",
            ..test_facts()
        };
        let seccomp = default_filter(caps::DEFAULT, &facts).unwrap();
        assert_eq!(
            seccomp.architectures().clone().unwrap(),
            vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
        );
        assert!(allowed(&seccomp, "cacheflush"));
        assert!(!allowed(&seccomp, "arch_prctl"));
    }

    #[test]
    fn ordinary_syscalls_are_allowed() {
        let seccomp = filter(caps::DEFAULT);
        for name in [
            "read",
            "openat",
            "execve",
            "futex",
            "epoll_wait",
            "arch_prctl",
            "chroot",
        ] {
            assert!(allowed(&seccomp, name), "{name}");
        }
    }

    #[test]
    fn mount_is_allowed_only_with_cap_sys_admin() {
        assert!(!allowed(&filter(caps::DEFAULT), "mount"));
        let mut with_admin = caps::DEFAULT.to_vec();
        with_admin.push(Capability::SysAdmin);
        assert!(allowed(&filter(&with_admin), "mount"));
        assert!(allowed(&filter(&with_admin), "unshare"));
    }

    #[test]
    fn reboot_is_allowed_only_with_cap_sys_boot() {
        assert!(!allowed(&filter(caps::DEFAULT), "reboot"));
        assert!(allowed(&filter(&[Capability::SysBoot]), "reboot"));
    }

    #[test]
    fn each_capability_unlocks_its_syscalls() {
        for (cap, name) in [
            (Capability::SysModule, "init_module"),
            (Capability::SysTime, "settimeofday"),
            (Capability::SysPacct, "acct"),
            (Capability::SysRawio, "iopl"),
            (Capability::SysTtyConfig, "vhangup"),
            (Capability::SysNice, "mbind"),
            (Capability::Syslog, "syslog"),
            (Capability::Bpf, "bpf"),
            (Capability::Perfmon, "perf_event_open"),
            (Capability::SysPtrace, "kcmp"),
            (Capability::DacReadSearch, "open_by_handle_at"),
        ] {
            assert!(
                !allowed(&filter(caps::DEFAULT), name),
                "{name} without {cap}"
            );
            assert!(allowed(&filter(&[cap]), name), "{name} with {cap}");
        }
    }

    #[test]
    fn clone_without_cap_sys_admin_is_limited_to_no_namespace_flags() {
        let seccomp = filter(caps::DEFAULT);
        let clone = rules_for(&seccomp, "clone");
        assert_eq!(clone.len(), 1);
        let arg = &clone[0].args().as_ref().unwrap()[0];
        assert_eq!(
            (arg.index(), arg.value(), arg.op()),
            (0, 0x7e02_0000, LinuxSeccompOperator::ScmpCmpMaskedEq)
        );
        let clone3 = rules_for(&seccomp, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
    }

    #[test]
    fn clone_with_cap_sys_admin_is_unconditional() {
        let seccomp = filter(&[Capability::SysAdmin]);
        assert!(allowed(&seccomp, "clone"));
        assert!(allowed(&seccomp, "clone3"));
        assert!(rules_for(&seccomp, "clone")
            .iter()
            .all(|r| r.args().is_none()));
        assert!(rules_for(&seccomp, "clone3")
            .iter()
            .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow));
    }

    #[test]
    fn socket_is_refused_for_vsock_and_alg_only() {
        let seccomp = filter(caps::DEFAULT);
        let rules = rules_for(&seccomp, "socket");
        let permits = |family: u64| {
            rules.iter().any(|r| {
                r.args().as_ref().unwrap().iter().all(|a| match a.op() {
                    LinuxSeccompOperator::ScmpCmpLt => family < a.value(),
                    LinuxSeccompOperator::ScmpCmpEq => family == a.value(),
                    LinuxSeccompOperator::ScmpCmpGt => family > a.value(),
                    _ => false,
                })
            })
        };
        assert!(
            permits(1) && permits(2) && permits(10) && permits(16) && permits(39) && permits(44)
        );
        assert!(!permits(40), "AF_VSOCK");
        assert!(!permits(38), "AF_ALG");
    }

    #[test]
    fn personality_allows_only_the_safe_values() {
        let seccomp = filter(caps::DEFAULT);
        let values: Vec<u64> = rules_for(&seccomp, "personality")
            .iter()
            .map(|r| r.args().as_ref().unwrap()[0].value())
            .collect();
        assert_eq!(values, vec![0, 8, 0x20000, 0x20008, 0xffff_ffff]);
    }

    #[test]
    fn ptrace_needs_kernel_4_8_or_cap_sys_ptrace() {
        assert!(allowed(&filter(caps::DEFAULT), "ptrace"));
        let old = HostFacts {
            kernel: (4, 4),
            ..test_facts()
        };
        assert!(!allowed(
            &default_filter(caps::DEFAULT, &old).unwrap(),
            "ptrace"
        ));
        assert!(allowed(
            &default_filter(&[Capability::SysPtrace], &old).unwrap(),
            "ptrace"
        ));
    }

    #[test]
    fn docker_format_profile_files_load_and_resolve() {
        let json = r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}
            ],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": null},
                {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}
            ]
        }"#;
        let profile = load_profile(json).unwrap();
        let seccomp = resolve(&profile, caps::DEFAULT, &test_facts())
            .unwrap()
            .unwrap();
        assert_eq!(
            seccomp.architectures().clone().unwrap(),
            vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86]
        );
        assert!(allowed(&seccomp, "read"));
        assert!(allowed(&seccomp, "ptrace"));
        assert!(!allowed(&seccomp, "mount"));
        assert_eq!(rules_for(&seccomp, "kill")[0].errno_ret(), Some(13));
    }

    #[test]
    fn profile_without_default_action_or_rules_disables_seccomp() {
        let profile = load_profile("{}").unwrap();
        assert!(resolve(&profile, caps::DEFAULT, &test_facts())
            .unwrap()
            .is_none());
    }

    #[test]
    fn bad_profiles_are_refused_with_dockers_messages() {
        let err = load_profile("{not json").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("Decoding seccomp profile failed"));
        let both = load_profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
                "archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
        )
        .unwrap();
        assert!(matches!(
            resolve(&both, caps::DEFAULT, &test_facts()),
            Err(SeccompError::ArchitecturesAndArchMap)
        ));
        let names = load_profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        assert!(matches!(
            resolve(&names, caps::DEFAULT, &test_facts()),
            Err(SeccompError::NameAndNames)
        ));
    }

    #[test]
    fn default_profile_round_trips_through_dockers_json_format() {
        let profile = default_profile();
        let json = serde_json::to_string(&profile).unwrap();
        assert!(json.contains(r#""defaultAction":"SCMP_ACT_ERRNO""#));
        assert!(json.contains(r#""minKernel":"4.8""#));
        assert_eq!(load_profile(&json).unwrap(), profile);
    }
}
