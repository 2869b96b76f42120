//! Facts about the host that change the spec a container gets: the capabilities and rlimits
//! the daemon itself holds (a container can never get more), the cgroup version (default
//! cgroup namespace), the kernel version and architecture (seccomp rules), and whether
//! AppArmor or SELinux are on.
//!
//! [`HostFacts::current`] detects them once per process; tests build a [`HostFacts`] by hand
//! so the spec they check does not depend on the machine that runs them.

use crate::caps::Capability;
use crate::cgroups::CgroupLayout;
use oci_spec::runtime::PosixRlimitType;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `RLIM_INFINITY` as the OCI spec writes it.
pub const RLIM_INFINITY: u64 = u64::MAX;

/// What the host allows; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Capabilities the daemon holds (its effective set): what `ALL` and `--privileged` give,
    /// since a runtime started by the daemon cannot grant more.
    pub capabilities: Vec<Capability>,
    /// The daemon's own hard rlimits ([`RLIM_INFINITY`] when unlimited); a container's hard
    /// limit is clamped to these because raising one needs `CAP_SYS_RESOURCE`.
    pub hard_limits: Vec<(PosixRlimitType, u64)>,
    /// The host runs the unified (v2) cgroup hierarchy: cgroup namespaces are private by
    /// default, as Docker does.
    pub cgroup_v2: bool,
    pub apparmor: bool,
    pub selinux: bool,
    /// `(major, minor)` of the running kernel, for seccomp rules with a minimum kernel.
    pub kernel: (u32, u32),
    /// The architecture as seccomp profiles name it in `arches` (`amd64`, `arm64`, ...).
    pub arch: &'static str,
    /// Where `/proc/sys` is (to check that a default sysctl exists before setting it).
    pub proc_sys: PathBuf,
    /// Where the host's devices are (for `--privileged`).
    pub dev_root: PathBuf,
}

impl HostFacts {
    /// The facts of this host, detected on first use.
    pub fn current() -> &'static HostFacts {
        static FACTS: OnceLock<HostFacts> = OnceLock::new();
        FACTS.get_or_init(HostFacts::detect)
    }

    /// Detects the facts of this host now.
    pub fn detect() -> HostFacts {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let capabilities = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .map(crate::caps::from_mask)
            .unwrap_or_else(|| crate::caps::ALL.iter().map(|c| c.cap).collect());
        let hard_limits = crate::spec::rlimits::ULIMITS
            .iter()
            .map(|u| {
                let limit = rustix::process::getrlimit(u.resource);
                (u.typ, limit.maximum.unwrap_or(RLIM_INFINITY))
            })
            .collect();
        let cgroup_v2 = CgroupLayout::detect(Path::new("/sys/fs/cgroup"))
            .map(|l| l.is_unified())
            .unwrap_or(false);
        let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .map(|s| s.trim() == "Y")
            .unwrap_or(false);
        let selinux = Path::new("/sys/fs/selinux/enforce").exists();
        HostFacts {
            capabilities,
            hard_limits,
            cgroup_v2,
            apparmor,
            selinux,
            kernel: parse_kernel_release(&rustix::system::uname().release().to_string_lossy()),
            arch: seccomp_arch_name(std::env::consts::ARCH),
            proc_sys: PathBuf::from("/proc/sys"),
            dev_root: PathBuf::from("/dev"),
        }
    }

    /// The daemon's hard limit for `typ` ([`RLIM_INFINITY`] when unknown or unlimited).
    pub fn hard_limit(&self, typ: PosixRlimitType) -> u64 {
        self.hard_limits
            .iter()
            .find(|(t, _)| *t == typ)
            .map(|(_, v)| *v)
            .unwrap_or(RLIM_INFINITY)
    }

    /// Whether `key` (`net.ipv4.ping_group_range`) exists under [`Self::proc_sys`].
    pub fn sysctl_exists(&self, key: &str) -> bool {
        self.proc_sys.join(key.replace('.', "/")).exists()
    }
}

/// `6.1.0-18-amd64` → `(6, 1)`; unparsable parts are 0.
pub fn parse_kernel_release(release: &str) -> (u32, u32) {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// Rust's architecture name → the name seccomp profiles use in `includes.arches`.
pub fn seccomp_arch_name(rust_arch: &str) -> &'static str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64" => "mips64",
        _ => "unknown",
    }
}

#[cfg(test)]
pub(crate) fn test_facts() -> HostFacts {
    HostFacts {
        capabilities: crate::caps::ALL.iter().map(|c| c.cap).collect(),
        hard_limits: vec![
            (PosixRlimitType::RlimitNofile, 20_000),
            (PosixRlimitType::RlimitNproc, 5_000),
        ],
        cgroup_v2: false,
        apparmor: false,
        selinux: false,
        kernel: (6, 1),
        arch: "amd64",
        proc_sys: PathBuf::from("/nonexistent/proc/sys"),
        dev_root: PathBuf::from("/nonexistent/dev"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_release_parses_major_and_minor() {
        assert_eq!(parse_kernel_release("6.18.44-fc-v669"), (6, 18));
        assert_eq!(parse_kernel_release("4.8"), (4, 8));
        assert_eq!(parse_kernel_release("garbage"), (0, 0));
    }

    #[test]
    fn detected_facts_include_the_daemon_hard_nofile_limit() {
        let facts = HostFacts::detect();
        let own = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(
            facts.hard_limit(PosixRlimitType::RlimitNofile),
            own.maximum.unwrap_or(RLIM_INFINITY)
        );
        assert!(!facts.capabilities.is_empty());
    }
}
