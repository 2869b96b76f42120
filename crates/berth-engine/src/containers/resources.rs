//! Resource limits as Docker checks and adjusts them (`verifyPlatformContainerResources`,
//! `adaptContainerSettings`): what the kernel cannot enforce is discarded with Docker's
//! warning, what makes no sense is refused with Docker's error, and defaults are filled in
//! (memory+swap is twice the memory limit unless given).

use berth_core::container::Resources;
use berth_core::{Error, Result};
use berth_runtime::cgroups::support::cpuset_within;
use berth_runtime::CgroupSupport;

/// Docker's smallest memory limit (6 MiB).
const MIN_MEMORY: i64 = 6 * 1024 * 1024;
const MIN_CPU_SHARES: i64 = 2;
const MAX_CPU_SHARES: i64 = 262_144;

/// Checks `r` against what the host supports, as Docker does at create (`update: false`) and
/// for the values an update sets (`update: true`). Returns Docker's warnings for what was
/// discarded; errors are the client's (400).
pub fn verify(
    r: &mut Resources,
    s: &CgroupSupport,
    ncpu: i64,
    update: bool,
) -> Result<Vec<String>> {
    let mut w = Vec::new();
    let invalid = |m: &str| Err(Error::invalid(m.to_string()));
    // Memory.
    if r.memory != 0 && r.memory < MIN_MEMORY {
        return invalid("Minimum memory limit allowed is 6MB");
    }
    if r.memory > 0 && !s.memory_limit {
        w.push("Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.".to_string());
        r.memory = 0;
        r.memory_swap = -1;
    }
    if r.memory > 0 && r.memory_swap != -1 && !s.swap_limit {
        w.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".to_string());
        r.memory_swap = -1;
    }
    if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
        return invalid("Minimum memoryswap limit should be larger than memory limit, see usage");
    }
    if r.memory == 0 && r.memory_swap > 0 && !update {
        return invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        );
    }
    if r.memory_swappiness.is_some() && !s.memory_swappiness {
        w.push("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.".to_string());
        r.memory_swappiness = None;
    }
    if let Some(v) = r.memory_swappiness {
        if !(0..=100).contains(&v) {
            return Err(Error::invalid(format!(
                "Invalid value: {v}, valid memory swappiness range is 0-100"
            )));
        }
    }
    if r.memory_reservation > 0 && !s.memory_reservation {
        w.push("Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded.".to_string());
        r.memory_reservation = 0;
    }
    if r.memory_reservation > 0 && r.memory_reservation < MIN_MEMORY {
        return invalid("Minimum memory reservation allowed is 6MB");
    }
    if r.memory > 0 && r.memory_reservation > 0 && r.memory < r.memory_reservation {
        return invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        );
    }
    if r.kernel_memory > 0 {
        w.push(
            "Specifying a kernel memory limit is deprecated and will be removed in a future release."
                .to_string(),
        );
        r.kernel_memory = 0;
    }
    if r.oom_kill_disable.is_some() && !s.oom_kill_disable {
        if r.oom_kill_disable == Some(true) {
            w.push(
                "Your kernel does not support OomKillDisable. OomKillDisable discarded."
                    .to_string(),
            );
        }
        r.oom_kill_disable = None;
    }
    if r.oom_kill_disable == Some(true) && r.memory == 0 {
        w.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".to_string());
    }
    if r.pids_limit.is_some() && !s.pids_limit {
        if r.pids_limit.is_some_and(|p| p > 0) {
            w.push("Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.".to_string());
        }
        r.pids_limit = None;
    }

    // CPU.
    if r.nano_cpus > 0 && r.cpu_period > 0 {
        return invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set");
    }
    if r.nano_cpus > 0 && r.cpu_quota > 0 {
        return invalid("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
    }
    if r.nano_cpus > 0 && !s.cpu_cfs {
        return invalid("NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted");
    }
    if r.nano_cpus < 0 || r.nano_cpus > ncpu * 1_000_000_000 {
        return Err(Error::invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if r.cpu_shares > 0 && !s.cpu_shares {
        w.push(
            "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded."
                .to_string(),
        );
        r.cpu_shares = 0;
    }
    if (r.cpu_period != 0 || r.cpu_quota != 0) && !s.cpu_cfs {
        w.push(
            "Your kernel does not support CPU CFS scheduler. CPU period/quota discarded."
                .to_string(),
        );
        r.cpu_period = 0;
        r.cpu_quota = 0;
    }
    if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
        return invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        );
    }
    if r.cpu_quota > 0 && r.cpu_quota < 1000 {
        return invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)");
    }
    if r.cpu_realtime_period > 0
        && r.cpu_realtime_runtime > 0
        && r.cpu_realtime_runtime > r.cpu_realtime_period
    {
        return invalid("cpu-rt-runtime cannot be higher than cpu-rt-period");
    }

    // cpuset.
    if (!r.cpuset_cpus.is_empty() || !r.cpuset_mems.is_empty()) && !s.cpuset {
        w.push(
            "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."
                .to_string(),
        );
        r.cpuset_cpus.clear();
        r.cpuset_mems.clear();
    }
    for (list, available, what, label) in [
        (&r.cpuset_cpus, &s.cpus, "cpus", "CPUs"),
        (&r.cpuset_mems, &s.mems, "mems", "memory nodes"),
    ] {
        match cpuset_within(list, available) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::invalid(format!(
                    "Requested {label} are not available - requested {list}, available: {available}"
                )))
            }
            Err(e) => {
                return Err(Error::invalid(format!(
                    "Invalid value {list} for cpuset {what}: {e}"
                )))
            }
        }
    }

    // blkio.
    if r.blkio_weight > 0 && !s.blkio_weight {
        w.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".to_string());
        r.blkio_weight = 0;
    }
    if r.blkio_weight > 0 && !(10..=1000).contains(&r.blkio_weight) {
        return invalid("Range of blkio weight is from 10 to 1000");
    }
    if !r.blkio_weight_device.is_empty() && !s.blkio_weight_device {
        w.push("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.".to_string());
        r.blkio_weight_device.clear();
    }
    if let Some(d) = r
        .blkio_weight_device
        .iter()
        .find(|d| !(10..=1000).contains(&d.weight))
    {
        return Err(Error::invalid(format!(
            "invalid weight for device: {}:{}, weight must be between 10 and 1000",
            d.path, d.weight
        )));
    }
    for (list, ok, what) in [
        (
            &mut r.blkio_device_read_bps,
            s.blkio_read_bps_device,
            "BPS Block I/O read limit",
        ),
        (
            &mut r.blkio_device_write_bps,
            s.blkio_write_bps_device,
            "BPS Block I/O write limit",
        ),
        (
            &mut r.blkio_device_read_iops,
            s.blkio_read_iops_device,
            "IOPS Block I/O read limit",
        ),
        (
            &mut r.blkio_device_write_iops,
            s.blkio_write_iops_device,
            "IOPS Block I/O write limit",
        ),
    ] {
        if !list.is_empty() && !ok {
            let short = what.split(' ').next().unwrap_or(what);
            let kind = if what.contains("read") {
                "read"
            } else {
                "write"
            };
            w.push(format!(
                "Your kernel does not support {what} or the cgroup is not mounted. Block I/O {short} {kind} limit discarded."
            ));
            list.clear();
        }
    }
    Ok(w)
}

/// Docker's adjustments at create: CPU shares within the kernel's range, and memory+swap
/// twice the memory limit when not given.
pub fn adapt(r: &mut Resources) {
    if r.cpu_shares < 0 {
        r.cpu_shares = MIN_CPU_SHARES;
    } else if r.cpu_shares > MAX_CPU_SHARES {
        r.cpu_shares = MAX_CPU_SHARES;
    }
    if r.memory > 0 && r.memory_swap == 0 {
        r.memory_swap = r.memory * 2;
    }
}

/// Docker's `UpdateContainer` merge: the values an update sets (non-zero) replace the
/// container's, after the checks that keep CPU quota styles apart and memory under its
/// memory+swap limit. `Err` carries Docker's message.
pub fn merge_update(cur: &mut Resources, req: &Resources) -> std::result::Result<(), String> {
    let conflict = |what: &str, set: &str| {
        Err(format!(
            "Conflicting options: {what} cannot be updated as {set} has already been set"
        ))
    };
    if req.nano_cpus > 0 && cur.cpu_period > 0 {
        return conflict("Nano CPUs", "CPU Period");
    }
    if req.nano_cpus > 0 && cur.cpu_quota > 0 {
        return conflict("Nano CPUs", "CPU Quota");
    }
    if req.cpu_period > 0 && cur.nano_cpus > 0 {
        return conflict("CPU Period", "NanoCPUs");
    }
    if req.cpu_quota > 0 && cur.nano_cpus > 0 {
        return conflict("CPU Quota", "NanoCPUs");
    }
    if req.memory != 0 && req.memory > cur.memory_swap && req.memory_swap == 0 {
        return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
    }
    set_if_given(&mut cur.blkio_weight, &req.blkio_weight);
    set_if_given(&mut cur.cpu_shares, &req.cpu_shares);
    set_if_given(&mut cur.nano_cpus, &req.nano_cpus);
    set_if_given(&mut cur.cpu_period, &req.cpu_period);
    set_if_given(&mut cur.cpu_quota, &req.cpu_quota);
    set_if_given(&mut cur.cpuset_cpus, &req.cpuset_cpus);
    set_if_given(&mut cur.cpuset_mems, &req.cpuset_mems);
    set_if_given(&mut cur.memory, &req.memory);
    set_if_given(&mut cur.memory_swap, &req.memory_swap);
    set_if_given(&mut cur.memory_reservation, &req.memory_reservation);
    set_if_given(&mut cur.cpu_realtime_period, &req.cpu_realtime_period);
    set_if_given(&mut cur.cpu_realtime_runtime, &req.cpu_realtime_runtime);
    if req.pids_limit.is_some() {
        cur.pids_limit = req.pids_limit;
    }
    Ok(())
}

/// An update's zero (or empty) value means "unchanged", as in Docker.
fn set_if_given<T: Default + PartialEq + Clone>(cur: &mut T, new: &T) {
    if *new != T::default() {
        *cur = new.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(n: i64) -> i64 {
        n << 20
    }

    fn check(r: &mut Resources) -> Result<Vec<String>> {
        verify(r, &CgroupSupport::all(), 2, false)
    }

    #[test]
    fn memory_rules_follow_docker() {
        let err = |r: Resources| check(&mut r.clone()).unwrap_err().to_string();
        assert_eq!(
            err(Resources {
                memory: mb(4),
                ..Default::default()
            }),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            err(Resources {
                memory: mb(64),
                memory_swap: mb(32),
                ..Default::default()
            }),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            err(Resources {
                memory_swap: mb(32),
                ..Default::default()
            }),
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        );
        assert_eq!(
            err(Resources {
                memory: mb(16),
                memory_reservation: mb(32),
                ..Default::default()
            }),
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        );
        assert_eq!(
            err(Resources {
                memory_swappiness: Some(101),
                ..Default::default()
            }),
            "Invalid value: 101, valid memory swappiness range is 0-100"
        );
        // memory+swap only is fine on update.
        let mut r = Resources {
            memory_swap: mb(32),
            ..Default::default()
        };
        assert!(verify(&mut r, &CgroupSupport::all(), 2, true).is_ok());
    }

    #[test]
    fn swap_defaults_to_twice_memory_and_shares_are_clamped() {
        let mut r = Resources {
            memory: mb(64),
            cpu_shares: -3,
            ..Default::default()
        };
        adapt(&mut r);
        assert_eq!((r.memory_swap, r.cpu_shares), (mb(128), 2));
        let mut r = Resources {
            memory: mb(64),
            memory_swap: -1,
            cpu_shares: 1 << 20,
            ..Default::default()
        };
        adapt(&mut r);
        assert_eq!((r.memory_swap, r.cpu_shares), (-1, 262_144));
    }

    #[test]
    fn unsupported_limits_are_discarded_with_dockers_warnings() {
        let s = CgroupSupport {
            swap_limit: false,
            blkio_weight: false,
            oom_kill_disable: false,
            ..CgroupSupport::all()
        };
        let mut r = Resources {
            memory: mb(64),
            blkio_weight: 300,
            oom_kill_disable: Some(true),
            ..Default::default()
        };
        let w = verify(&mut r, &s, 2, false).unwrap();
        assert_eq!(
            w,
            [
                "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.",
                "Your kernel does not support OomKillDisable. OomKillDisable discarded.",
                "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
            ]
        );
        assert_eq!(
            (r.memory_swap, r.blkio_weight, r.oom_kill_disable),
            (-1, 0, None)
        );
    }

    #[test]
    fn cpu_rules_follow_docker() {
        let err = |r: Resources| check(&mut r.clone()).unwrap_err().to_string();
        assert_eq!(
            err(Resources {
                nano_cpus: 3_000_000_000,
                ..Default::default()
            }),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        assert_eq!(
            err(Resources {
                nano_cpus: 1_000_000_000,
                cpu_period: 50_000,
                ..Default::default()
            }),
            "Conflicting options: Nano CPUs and CPU Period cannot both be set"
        );
        assert_eq!(
            err(Resources {
                cpu_period: 500,
                ..Default::default()
            }),
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        );
        assert_eq!(
            err(Resources {
                cpu_quota: 999,
                ..Default::default()
            }),
            "CPU cfs quota can not be less than 1ms (i.e. 1000)"
        );
        assert_eq!(
            err(Resources {
                blkio_weight: 5,
                ..Default::default()
            }),
            "Range of blkio weight is from 10 to 1000"
        );
    }

    #[test]
    fn cpusets_must_name_available_cpus() {
        let s = CgroupSupport {
            cpus: "0-1".into(),
            mems: "0".into(),
            ..CgroupSupport::all()
        };
        let mut r = Resources {
            cpuset_cpus: "1".into(),
            ..Default::default()
        };
        assert!(verify(&mut r, &s, 2, false).is_ok());
        r.cpuset_cpus = "0-3".into();
        assert_eq!(
            verify(&mut r, &s, 2, false).unwrap_err().to_string(),
            "Requested CPUs are not available - requested 0-3, available: 0-1"
        );
        r.cpuset_cpus = "x".into();
        assert_eq!(
            verify(&mut r, &s, 2, false).unwrap_err().to_string(),
            "Invalid value x for cpuset cpus: invalid format: x"
        );
        r.cpuset_cpus.clear();
        r.cpuset_mems = "1".into();
        assert_eq!(
            verify(&mut r, &s, 2, false).unwrap_err().to_string(),
            "Requested memory nodes are not available - requested 1, available: 0"
        );
    }

    #[test]
    fn updates_merge_like_docker() {
        let mut cur = Resources {
            memory: mb(64),
            memory_swap: mb(128),
            nano_cpus: 1_000_000_000,
            ..Default::default()
        };
        let err = merge_update(
            &mut cur.clone(),
            &Resources {
                memory: mb(256),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.starts_with("Memory limit should be smaller than already set memoryswap"));
        assert!(merge_update(
            &mut cur.clone(),
            &Resources {
                cpu_quota: 50_000,
                ..Default::default()
            }
        )
        .unwrap_err()
        .contains("CPU Quota cannot be updated as NanoCPUs has already been set"));
        merge_update(
            &mut cur,
            &Resources {
                memory: mb(256),
                memory_swap: mb(512),
                pids_limit: Some(0),
                cpu_shares: 512,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (cur.memory, cur.memory_swap, cur.pids_limit, cur.cpu_shares),
            (mb(256), mb(512), Some(0), 512)
        );
        assert_eq!(cur.nano_cpus, 1_000_000_000, "untouched");
    }
}
