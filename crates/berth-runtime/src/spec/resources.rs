//! `HostConfig.Resources` → `linux.resources`, mapped as Docker maps them: zero means "not
//! set", `--cpus` becomes a CFS quota over a 100ms period, a non-positive pids limit means
//! unlimited (`-1`, which also lifts an earlier limit on update), and blkio device paths are
//! turned into `major:minor` by a `stat` of the host device.

use super::SpecError;
use crate::cgroups::{CgroupLimits, DeviceThrottle, DeviceWeight, ThrottleKind};
use berth_core::container::{Resources, ThrottleDevice};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources, LinuxThrottleDevice,
    LinuxThrottleDeviceBuilder, LinuxWeightDevice, LinuxWeightDeviceBuilder,
};
use std::os::unix::fs::MetadataExt;

/// The CFS period Docker uses for `--cpus`, in microseconds.
const NANO_CPUS_PERIOD_US: u64 = 100_000;

fn device_numbers(path: &str) -> Result<(i64, i64), SpecError> {
    let meta = std::fs::metadata(path).map_err(|source| SpecError::DeviceStat {
        path: path.to_string(),
        source,
    })?;
    let rdev = meta.rdev();
    Ok((
        i64::from(rustix::fs::major(rdev)),
        i64::from(rustix::fs::minor(rdev)),
    ))
}

fn throttles(list: &[ThrottleDevice]) -> Result<Option<Vec<LinuxThrottleDevice>>, SpecError> {
    if list.is_empty() {
        return Ok(None);
    }
    list.iter()
        .map(|t| {
            let (major, minor) = device_numbers(&t.path)?;
            LinuxThrottleDeviceBuilder::default()
                .major(major)
                .minor(minor)
                .rate(t.rate)
                .build()
                .map_err(|source| SpecError::Build { source })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn memory(r: &Resources) -> Option<LinuxMemory> {
    let mut m = LinuxMemory::default();
    let positive = |v: i64| (v > 0).then_some(v);
    m.set_limit(positive(r.memory));
    m.set_reservation(positive(r.memory_reservation));
    m.set_swap(positive(r.memory_swap));
    m.set_swappiness(r.memory_swappiness.and_then(|s| u64::try_from(s).ok()));
    m.set_disable_oom_killer(r.oom_kill_disable);
    (m != LinuxMemory::default()).then_some(m)
}

fn cpu(r: &Resources) -> Result<Option<LinuxCpu>, SpecError> {
    let mut c = LinuxCpu::default();
    if r.cpu_shares != 0 {
        let shares = u64::try_from(r.cpu_shares).map_err(|_| SpecError::InvalidCpuShares {
            value: r.cpu_shares,
        })?;
        c.set_shares(Some(shares));
    }
    if !r.cpuset_cpus.is_empty() {
        c.set_cpus(Some(r.cpuset_cpus.clone()));
    }
    if !r.cpuset_mems.is_empty() {
        c.set_mems(Some(r.cpuset_mems.clone()));
    }
    if r.nano_cpus > 0 {
        c.set_period(Some(NANO_CPUS_PERIOD_US));
        c.set_quota(Some(
            r.nano_cpus * NANO_CPUS_PERIOD_US as i64 / 1_000_000_000,
        ));
    }
    if r.cpu_period != 0 {
        c.set_period(u64::try_from(r.cpu_period).ok());
    }
    if r.cpu_quota != 0 {
        c.set_quota(Some(r.cpu_quota));
    }
    if r.cpu_realtime_period != 0 {
        c.set_realtime_period(u64::try_from(r.cpu_realtime_period).ok());
    }
    if r.cpu_realtime_runtime != 0 {
        c.set_realtime_runtime(Some(r.cpu_realtime_runtime));
    }
    Ok((c != LinuxCpu::default()).then_some(c))
}

fn block_io(r: &Resources) -> Result<Option<LinuxBlockIo>, SpecError> {
    let mut b = LinuxBlockIo::default();
    if r.blkio_weight != 0 {
        b.set_weight(Some(r.blkio_weight));
    }
    if !r.blkio_weight_device.is_empty() {
        let devices = r
            .blkio_weight_device
            .iter()
            .map(|w| {
                let (major, minor) = device_numbers(&w.path)?;
                LinuxWeightDeviceBuilder::default()
                    .major(major)
                    .minor(minor)
                    .weight(w.weight)
                    .build()
                    .map_err(|source| SpecError::Build { source })
            })
            .collect::<Result<Vec<LinuxWeightDevice>, _>>()?;
        b.set_weight_device(Some(devices));
    }
    b.set_throttle_read_bps_device(throttles(&r.blkio_device_read_bps)?);
    b.set_throttle_write_bps_device(throttles(&r.blkio_device_write_bps)?);
    b.set_throttle_read_iops_device(throttles(&r.blkio_device_read_iops)?);
    b.set_throttle_write_iops_device(throttles(&r.blkio_device_write_iops)?);
    Ok((b != LinuxBlockIo::default()).then_some(b))
}

fn pids(r: &Resources) -> Option<LinuxPids> {
    r.pids_limit.map(|limit| {
        let mut p = LinuxPids::default();
        p.set_limit(if limit <= 0 { -1 } else { limit });
        p
    })
}

/// The cgroup resources of a container, without devices (see the `devices` module).
pub fn linux_resources(r: &Resources) -> Result<LinuxResources, SpecError> {
    let mut out = LinuxResources::default();
    out.set_memory(memory(r));
    out.set_cpu(cpu(r)?);
    out.set_block_io(block_io(r)?);
    out.set_pids(pids(r));
    Ok(out)
}

/// What `docker update` writes into a running container's cgroups for `r` (its resources
/// after the update), as Docker hands them to the runtime: set values only; a pids limit of
/// 0 or less lifts the limit.
pub fn cgroup_limits(r: &Resources) -> Result<CgroupLimits, SpecError> {
    let nonzero = |v: i64| (v != 0).then_some(v);
    let (mut period, mut quota) = (None, None);
    if r.nano_cpus > 0 {
        period = Some(NANO_CPUS_PERIOD_US);
        quota = Some(r.nano_cpus * NANO_CPUS_PERIOD_US as i64 / 1_000_000_000);
    }
    if quota.is_none() {
        quota = nonzero(r.cpu_quota);
    }
    if period.is_none() {
        period = nonzero(r.cpu_period).and_then(|p| u64::try_from(p).ok());
    }
    let mut throttle = Vec::new();
    for (list, kind) in [
        (&r.blkio_device_read_bps, ThrottleKind::ReadBps),
        (&r.blkio_device_write_bps, ThrottleKind::WriteBps),
        (&r.blkio_device_read_iops, ThrottleKind::ReadIops),
        (&r.blkio_device_write_iops, ThrottleKind::WriteIops),
    ] {
        for t in list {
            let (major, minor) = device_numbers(&t.path)?;
            throttle.push(DeviceThrottle {
                major,
                minor,
                kind,
                rate: t.rate,
            });
        }
    }
    let weight_device = r
        .blkio_weight_device
        .iter()
        .map(|w| {
            let (major, minor) = device_numbers(&w.path)?;
            Ok(DeviceWeight {
                major,
                minor,
                weight: w.weight,
            })
        })
        .collect::<Result<Vec<_>, SpecError>>()?;
    Ok(CgroupLimits {
        memory: nonzero(r.memory),
        memory_swap: nonzero(r.memory_swap),
        memory_reservation: nonzero(r.memory_reservation),
        memory_swappiness: r.memory_swappiness.and_then(|s| u64::try_from(s).ok()),
        oom_kill_disable: None,
        cpu_shares: nonzero(r.cpu_shares).and_then(|s| u64::try_from(s).ok()),
        cpu_period: period,
        cpu_quota: quota,
        cpuset_cpus: Some(r.cpuset_cpus.clone()).filter(|s| !s.is_empty()),
        cpuset_mems: Some(r.cpuset_mems.clone()).filter(|s| !s.is_empty()),
        pids_limit: r.pids_limit,
        blkio_weight: (r.blkio_weight != 0).then_some(r.blkio_weight),
        blkio_weight_device: weight_device,
        blkio_throttle: throttle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::container::WeightDevice;

    #[test]
    fn update_limits_carry_only_set_values_and_nano_cpus_as_a_quota() {
        let r = Resources {
            memory: 128 << 20,
            memory_swap: -1,
            nano_cpus: 500_000_000,
            pids_limit: Some(0),
            blkio_device_write_bps: vec![ThrottleDevice {
                path: "/dev/zero".into(),
                rate: 4096,
            }],
            ..Default::default()
        };
        let l = cgroup_limits(&r).unwrap();
        assert_eq!(l.memory, Some(128 << 20));
        assert_eq!(l.memory_swap, Some(-1));
        assert_eq!(l.memory_reservation, None);
        assert_eq!((l.cpu_period, l.cpu_quota), (Some(100_000), Some(50_000)));
        assert_eq!(l.cpu_shares, None);
        assert_eq!(l.pids_limit, Some(0));
        assert_eq!(
            l.blkio_throttle,
            vec![DeviceThrottle {
                major: 1,
                minor: 5,
                kind: ThrottleKind::WriteBps,
                rate: 4096
            }]
        );
        assert!(cgroup_limits(&Resources::default()).unwrap().is_empty());
    }

    #[test]
    fn unset_resources_produce_nothing() {
        let out = linux_resources(&Resources::default()).unwrap();
        assert!(
            out.memory().is_none()
                && out.cpu().is_none()
                && out.block_io().is_none()
                && out.pids().is_none()
        );
    }

    #[test]
    fn memory_settings_map_one_to_one() {
        let r = Resources {
            memory: 64 << 20,
            memory_reservation: 32 << 20,
            memory_swap: 128 << 20,
            memory_swappiness: Some(10),
            oom_kill_disable: Some(true),
            ..Default::default()
        };
        let m = linux_resources(&r).unwrap().memory().unwrap();
        assert_eq!(m.limit(), Some(64 << 20));
        assert_eq!(m.reservation(), Some(32 << 20));
        assert_eq!(m.swap(), Some(128 << 20));
        assert_eq!(m.swappiness(), Some(10));
        assert_eq!(m.disable_oom_killer(), Some(true));
    }

    #[test]
    fn nano_cpus_become_a_quota_over_a_100ms_period() {
        let r = Resources {
            nano_cpus: 1_500_000_000,
            cpu_shares: 512,
            cpuset_cpus: "0-1".into(),
            ..Default::default()
        };
        let c = linux_resources(&r).unwrap().cpu().clone().unwrap();
        assert_eq!(
            (c.period(), c.quota(), c.shares()),
            (Some(100_000), Some(150_000), Some(512))
        );
        assert_eq!(c.cpus().as_deref(), Some("0-1"));
    }

    #[test]
    fn explicit_period_and_quota_win_over_nano_cpus() {
        let r = Resources {
            nano_cpus: 1_000_000_000,
            cpu_period: 50_000,
            cpu_quota: 25_000,
            ..Default::default()
        };
        let c = linux_resources(&r).unwrap().cpu().clone().unwrap();
        assert_eq!((c.period(), c.quota()), (Some(50_000), Some(25_000)));
    }

    #[test]
    fn negative_cpu_shares_are_refused() {
        let err = linux_resources(&Resources {
            cpu_shares: -2,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid CPU shares (-2): value must be a positive integer"
        );
    }

    #[test]
    fn pids_limit_zero_or_negative_means_unlimited() {
        let limit = |v| {
            linux_resources(&Resources {
                pids_limit: Some(v),
                ..Default::default()
            })
            .unwrap()
            .pids()
            .unwrap()
            .limit()
        };
        assert_eq!(limit(100), 100);
        assert_eq!(limit(0), -1);
        assert_eq!(limit(-5), -1);
    }

    #[test]
    fn blkio_weights_and_throttles_resolve_device_numbers() {
        let r = Resources {
            blkio_weight: 300,
            blkio_weight_device: vec![WeightDevice {
                path: "/dev/null".into(),
                weight: 200,
            }],
            blkio_device_read_bps: vec![ThrottleDevice {
                path: "/dev/zero".into(),
                rate: 1 << 20,
            }],
            ..Default::default()
        };
        let b = linux_resources(&r).unwrap().block_io().clone().unwrap();
        assert_eq!(b.weight(), Some(300));
        let w = &b.weight_device().as_ref().unwrap()[0];
        assert_eq!((w.major(), w.minor(), w.weight()), (1, 3, Some(200)));
        let t = &b.throttle_read_bps_device().as_ref().unwrap()[0];
        assert_eq!((t.major(), t.minor(), t.rate()), (1, 5, 1 << 20));
        let missing = Resources {
            blkio_device_write_iops: vec![ThrottleDevice {
                path: "/dev/does-not-exist".into(),
                rate: 1,
            }],
            ..Default::default()
        };
        assert!(matches!(
            linux_resources(&missing),
            Err(SpecError::DeviceStat { .. })
        ));
    }
}
