//! Linux capabilities as Docker hands them out: the default set, `--cap-add`/`--cap-drop`
//! (with or without the `CAP_` prefix, any case, and the `ALL` keyword) and `--privileged`.
//!
//! "All capabilities" means all the daemon itself holds ([`HostFacts::capabilities`]), as
//! Docker does: asking for one the daemon lacks gives Docker's "not available" error instead
//! of a runtime failure at start.
//!
//! [`HostFacts::capabilities`]: crate::host::HostFacts::capabilities

use berth_core::error::{ErrorKind, HasKind};
pub use oci_spec::runtime::Capability;

/// One capability: the OCI enum value, its kernel name and its bit number.
#[derive(Debug, Clone, Copy)]
pub struct CapInfo {
    pub cap: Capability,
    pub name: &'static str,
    pub bit: u8,
}

const fn info(cap: Capability, name: &'static str, bit: u8) -> CapInfo {
    CapInfo { cap, name, bit }
}

/// Every capability the OCI spec knows, in kernel bit order.
pub const ALL: &[CapInfo] = &[
    info(Capability::Chown, "CAP_CHOWN", 0),
    info(Capability::DacOverride, "CAP_DAC_OVERRIDE", 1),
    info(Capability::DacReadSearch, "CAP_DAC_READ_SEARCH", 2),
    info(Capability::Fowner, "CAP_FOWNER", 3),
    info(Capability::Fsetid, "CAP_FSETID", 4),
    info(Capability::Kill, "CAP_KILL", 5),
    info(Capability::Setgid, "CAP_SETGID", 6),
    info(Capability::Setuid, "CAP_SETUID", 7),
    info(Capability::Setpcap, "CAP_SETPCAP", 8),
    info(Capability::LinuxImmutable, "CAP_LINUX_IMMUTABLE", 9),
    info(Capability::NetBindService, "CAP_NET_BIND_SERVICE", 10),
    info(Capability::NetBroadcast, "CAP_NET_BROADCAST", 11),
    info(Capability::NetAdmin, "CAP_NET_ADMIN", 12),
    info(Capability::NetRaw, "CAP_NET_RAW", 13),
    info(Capability::IpcLock, "CAP_IPC_LOCK", 14),
    info(Capability::IpcOwner, "CAP_IPC_OWNER", 15),
    info(Capability::SysModule, "CAP_SYS_MODULE", 16),
    info(Capability::SysRawio, "CAP_SYS_RAWIO", 17),
    info(Capability::SysChroot, "CAP_SYS_CHROOT", 18),
    info(Capability::SysPtrace, "CAP_SYS_PTRACE", 19),
    info(Capability::SysPacct, "CAP_SYS_PACCT", 20),
    info(Capability::SysAdmin, "CAP_SYS_ADMIN", 21),
    info(Capability::SysBoot, "CAP_SYS_BOOT", 22),
    info(Capability::SysNice, "CAP_SYS_NICE", 23),
    info(Capability::SysResource, "CAP_SYS_RESOURCE", 24),
    info(Capability::SysTime, "CAP_SYS_TIME", 25),
    info(Capability::SysTtyConfig, "CAP_SYS_TTY_CONFIG", 26),
    info(Capability::Mknod, "CAP_MKNOD", 27),
    info(Capability::Lease, "CAP_LEASE", 28),
    info(Capability::AuditWrite, "CAP_AUDIT_WRITE", 29),
    info(Capability::AuditControl, "CAP_AUDIT_CONTROL", 30),
    info(Capability::Setfcap, "CAP_SETFCAP", 31),
    info(Capability::MacOverride, "CAP_MAC_OVERRIDE", 32),
    info(Capability::MacAdmin, "CAP_MAC_ADMIN", 33),
    info(Capability::Syslog, "CAP_SYSLOG", 34),
    info(Capability::WakeAlarm, "CAP_WAKE_ALARM", 35),
    info(Capability::BlockSuspend, "CAP_BLOCK_SUSPEND", 36),
    info(Capability::AuditRead, "CAP_AUDIT_READ", 37),
    info(Capability::Perfmon, "CAP_PERFMON", 38),
    info(Capability::Bpf, "CAP_BPF", 39),
    info(Capability::CheckpointRestore, "CAP_CHECKPOINT_RESTORE", 40),
];

/// Docker's default capability set, in Docker's order.
pub const DEFAULT: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Why a `--cap-add`/`--cap-drop` list was refused; the wording is Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    #[error("unknown capability: {name:?}")]
    Unknown { name: String },
    #[error(
        "capability not supported by your kernel or not available in the current environment: {name:?}"
    )]
    Unavailable { name: String },
}

impl HasKind for CapabilityError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}
crate::error_chain::into_core_error!(CapabilityError);

/// The kernel name (`CAP_SYS_ADMIN`) of a capability.
pub fn name(cap: Capability) -> &'static str {
    ALL.iter()
        .find(|c| c.cap == cap)
        .map(|c| c.name)
        .unwrap_or("CAP_UNKNOWN")
}

/// The kernel bit number of a capability.
pub fn bit(cap: Capability) -> u8 {
    ALL.iter()
        .find(|c| c.cap == cap)
        .map(|c| c.bit)
        .unwrap_or(63)
}

/// `sys_admin`, `CAP_SYS_ADMIN`, `Sys_Admin` → the capability.
pub fn parse(name: &str) -> Option<Capability> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    ALL.iter().find(|c| c.name == full).map(|c| c.cap)
}

/// The capabilities whose bits are set in `mask` (as `/proc/self/status` prints them).
pub fn from_mask(mask: u64) -> Vec<Capability> {
    ALL.iter()
        .filter(|c| mask & (1u64 << c.bit) != 0)
        .map(|c| c.cap)
        .collect()
}

/// The bit mask of `caps`, comparable with `CapBnd:` in `/proc/PID/status`.
pub fn to_mask(caps: &[Capability]) -> u64 {
    caps.iter().fold(0, |m, c| m | (1u64 << bit(*c)))
}

/// One normalized `--cap-add`/`--cap-drop` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requested {
    All,
    One(Capability),
}

fn normalize(list: &[String], available: &[Capability]) -> Result<Vec<Requested>, CapabilityError> {
    list.iter()
        .map(|raw| {
            let upper = raw.to_ascii_uppercase();
            if upper == "ALL" {
                return Ok(Requested::All);
            }
            let full = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            let cap =
                parse(&full).ok_or_else(|| CapabilityError::Unknown { name: full.clone() })?;
            if !available.contains(&cap) {
                return Err(CapabilityError::Unavailable { name: full });
            }
            Ok(Requested::One(cap))
        })
        .collect()
}

/// The capability set of a container, as Docker computes it: `--privileged` gives every
/// available capability; `--cap-add ALL` gives all but the dropped ones; `--cap-drop ALL`
/// keeps only the added ones; otherwise the defaults minus drops plus adds.
pub fn container_capabilities(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    available: &[Capability],
) -> Result<Vec<Capability>, CapabilityError> {
    if privileged {
        return Ok(available.to_vec());
    }
    if cap_add.is_empty() && cap_drop.is_empty() {
        return Ok(DEFAULT.to_vec());
    }
    let drops = normalize(cap_drop, available)?;
    let adds = normalize(cap_add, available)?;
    let dropped = |c: &Capability| drops.contains(&Requested::One(*c));
    let added = adds.iter().filter_map(|r| match r {
        Requested::One(c) => Some(*c),
        Requested::All => None,
    });
    let caps: Vec<Capability> = if adds.contains(&Requested::All) {
        available.iter().copied().filter(|c| !dropped(c)).collect()
    } else if drops.contains(&Requested::All) {
        added.collect()
    } else {
        DEFAULT
            .iter()
            .copied()
            .filter(|c| !dropped(c))
            .chain(added)
            .collect()
    };
    let mut unique = Vec::with_capacity(caps.len());
    for cap in caps {
        if !unique.contains(&cap) {
            unique.push(cap);
        }
    }
    Ok(unique)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Capability> {
        ALL.iter().map(|c| c.cap).collect()
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_set_is_dockers_bounding_mask() {
        let caps = container_capabilities(&[], &[], false, &all()).unwrap();
        assert_eq!(caps.len(), 14);
        assert_eq!(to_mask(&caps), 0xa804_25fb);
    }

    #[test]
    fn cap_add_accepts_any_case_with_or_without_prefix() {
        let caps = container_capabilities(
            &strings(&["sys_admin", "CAP_net_admin"]),
            &[],
            false,
            &all(),
        )
        .unwrap();
        assert!(caps.contains(&Capability::SysAdmin));
        assert!(caps.contains(&Capability::NetAdmin));
        assert_eq!(caps.len(), 16);
    }

    #[test]
    fn cap_drop_removes_from_the_defaults() {
        let caps =
            container_capabilities(&[], &strings(&["chown", "CAP_KILL"]), false, &all()).unwrap();
        assert!(!caps.contains(&Capability::Chown));
        assert!(!caps.contains(&Capability::Kill));
        assert_eq!(caps.len(), 12);
    }

    #[test]
    fn cap_drop_all_keeps_only_the_added_ones() {
        let caps = container_capabilities(
            &strings(&["NET_BIND_SERVICE"]),
            &strings(&["all"]),
            false,
            &all(),
        )
        .unwrap();
        assert_eq!(caps, vec![Capability::NetBindService]);
    }

    #[test]
    fn cap_add_all_gives_every_available_capability_but_the_dropped() {
        let available = vec![Capability::Chown, Capability::SysAdmin, Capability::Kill];
        let caps =
            container_capabilities(&strings(&["ALL"]), &strings(&["kill"]), false, &available)
                .unwrap();
        assert_eq!(caps, vec![Capability::Chown, Capability::SysAdmin]);
    }

    #[test]
    fn privileged_gives_exactly_the_available_capabilities() {
        let available = from_mask(0x1ff_feff_ffff);
        let caps = container_capabilities(&[], &[], true, &available).unwrap();
        assert!(!caps.contains(&Capability::SysResource));
        assert_eq!(caps.len(), 40);
    }

    #[test]
    fn unknown_capability_is_refused_with_dockers_message() {
        let err = container_capabilities(&strings(&["foo"]), &[], false, &all()).unwrap_err();
        assert_eq!(err.to_string(), r#"unknown capability: "CAP_FOO""#);
    }

    #[test]
    fn capability_missing_from_the_daemon_is_refused_as_unavailable() {
        let available = from_mask(0x1ff_feff_ffff);
        let err = container_capabilities(&strings(&["sys_resource"]), &[], false, &available)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "capability not supported by your kernel or not available in the current \
             environment: \"CAP_SYS_RESOURCE\""
        );
    }

    #[test]
    fn mask_round_trips_every_capability() {
        assert_eq!(from_mask(to_mask(&all())), all());
    }
}
