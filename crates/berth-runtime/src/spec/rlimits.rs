//! `--ulimit name=soft[:hard]` → the process's rlimits.
//!
//! Raising a hard limit needs `CAP_SYS_RESOURCE`, which the daemon may not have (it does
//! not on hosts that run it in a restricted VM or container); the runtime would then fail to
//! start the container. So every hard limit is clamped to the daemon's own hard limit, and
//! every soft limit to its (clamped) hard limit: a container gets as close to what was asked
//! as the host allows, and never fails for it. No rlimit is set unless asked for, so the
//! container inherits the daemon's.

use super::SpecError;
use crate::host::{HostFacts, RLIM_INFINITY};
use berth_core::container::Ulimit;
use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};
use rustix::process::Resource;

/// A ulimit name as Docker spells it, with its OCI type and the host resource.
pub(crate) struct UlimitKind {
    pub name: &'static str,
    pub typ: PosixRlimitType,
    pub resource: Resource,
}

const fn kind(name: &'static str, typ: PosixRlimitType, resource: Resource) -> UlimitKind {
    UlimitKind {
        name,
        typ,
        resource,
    }
}

pub(crate) const ULIMITS: &[UlimitKind] = &[
    kind("as", PosixRlimitType::RlimitAs, Resource::As),
    kind("core", PosixRlimitType::RlimitCore, Resource::Core),
    kind("cpu", PosixRlimitType::RlimitCpu, Resource::Cpu),
    kind("data", PosixRlimitType::RlimitData, Resource::Data),
    kind("fsize", PosixRlimitType::RlimitFsize, Resource::Fsize),
    kind("locks", PosixRlimitType::RlimitLocks, Resource::Locks),
    kind("memlock", PosixRlimitType::RlimitMemlock, Resource::Memlock),
    kind(
        "msgqueue",
        PosixRlimitType::RlimitMsgqueue,
        Resource::Msgqueue,
    ),
    kind("nice", PosixRlimitType::RlimitNice, Resource::Nice),
    kind("nofile", PosixRlimitType::RlimitNofile, Resource::Nofile),
    kind("nproc", PosixRlimitType::RlimitNproc, Resource::Nproc),
    kind("rss", PosixRlimitType::RlimitRss, Resource::Rss),
    kind("rtprio", PosixRlimitType::RlimitRtprio, Resource::Rtprio),
    kind("rttime", PosixRlimitType::RlimitRttime, Resource::Rttime),
    kind(
        "sigpending",
        PosixRlimitType::RlimitSigpending,
        Resource::Sigpending,
    ),
    kind("stack", PosixRlimitType::RlimitStack, Resource::Stack),
];

/// Docker's `-1` (and any negative value) means unlimited.
fn to_limit(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(RLIM_INFINITY)
}

/// The rlimits for `ulimits`, validated like Docker and clamped to the host (module docs).
/// A name given twice keeps its last value.
pub(crate) fn build(ulimits: &[Ulimit], facts: &HostFacts) -> Result<Vec<PosixRlimit>, SpecError> {
    let mut out: Vec<PosixRlimit> = Vec::new();
    for ulimit in ulimits {
        let lower = ulimit.name.to_ascii_lowercase();
        let kind =
            ULIMITS
                .iter()
                .find(|k| k.name == lower)
                .ok_or_else(|| SpecError::InvalidUlimit {
                    name: ulimit.name.clone(),
                })?;
        let (soft, hard) = (to_limit(ulimit.soft), to_limit(ulimit.hard));
        if soft > hard {
            return Err(SpecError::UlimitSoftAboveHard {
                soft: ulimit.soft,
                hard: ulimit.hard,
            });
        }
        let hard = hard.min(facts.hard_limit(kind.typ));
        let soft = soft.min(hard);
        let rlimit = PosixRlimitBuilder::default()
            .typ(kind.typ)
            .soft(soft)
            .hard(hard)
            .build()
            .map_err(|source| SpecError::Build { source })?;
        out.retain(|r| r.typ() != kind.typ);
        out.push(rlimit);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::test_facts;

    fn ulimit(name: &str, soft: i64, hard: i64) -> Ulimit {
        Ulimit {
            name: name.to_string(),
            soft,
            hard,
        }
    }

    #[test]
    fn limits_within_the_host_are_kept() {
        let r = build(&[ulimit("nofile", 1024, 4096)], &test_facts()).unwrap();
        assert_eq!(
            (r[0].typ(), r[0].soft(), r[0].hard()),
            (PosixRlimitType::RlimitNofile, 1024, 4096)
        );
    }

    #[test]
    fn hard_limit_above_the_daemons_is_clamped_and_soft_follows() {
        // The test host's hard nofile limit is 20000.
        let r = build(&[ulimit("nofile", 1_048_576, 1_048_576)], &test_facts()).unwrap();
        assert_eq!((r[0].soft(), r[0].hard()), (20_000, 20_000));
        let r = build(&[ulimit("NPROC", 100, -1)], &test_facts()).unwrap();
        assert_eq!((r[0].soft(), r[0].hard()), (100, 5_000));
    }

    #[test]
    fn unlimited_stays_unlimited_where_the_host_is_unlimited() {
        let r = build(&[ulimit("core", -1, -1)], &test_facts()).unwrap();
        assert_eq!((r[0].soft(), r[0].hard()), (RLIM_INFINITY, RLIM_INFINITY));
    }

    #[test]
    fn soft_above_hard_is_refused_with_dockers_message() {
        let err = build(&[ulimit("nofile", 200, 100)], &test_facts()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ulimit soft limit must be less than or equal to hard limit: 200 > 100"
        );
    }

    #[test]
    fn unknown_ulimit_names_are_refused() {
        let err = build(&[ulimit("bogus", 1, 1)], &test_facts()).unwrap_err();
        assert_eq!(err.to_string(), "invalid ulimit type: bogus");
    }

    #[test]
    fn no_ulimits_means_no_rlimits() {
        assert!(build(&[], &test_facts()).unwrap().is_empty());
    }
}
