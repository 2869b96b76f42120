//! Limits written into a running container's cgroups (`docker update`), and the conversions
//! Docker (through runc) makes from its cgroup v1 values to cgroup v2 files.
//!
//! [`CgroupLimits`] speaks v1's language, as Docker's API does: a memory limit and a
//! memory+swap limit, CPU shares, a CFS quota over a period, a blkio weight. The v1 backend
//! writes those values as they are; the v2 backend converts them with the functions here
//! (`cpu.shares` 2..262144 → `cpu.weight` 1..10000, memory+swap → `memory.swap.max`,
//! blkio weight 10..1000 → `io.weight` 1..10000).

/// What to change; `None` and empty lists leave a value as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    /// Bytes; `-1`: unlimited.
    pub memory: Option<i64>,
    /// Memory plus swap in bytes (v1's `memsw`); `-1`: unlimited.
    pub memory_swap: Option<i64>,
    /// Soft limit in bytes.
    pub memory_reservation: Option<i64>,
    pub memory_swappiness: Option<u64>,
    pub oom_kill_disable: Option<bool>,
    pub cpu_shares: Option<u64>,
    /// CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// CFS quota in microseconds; `-1`: unlimited.
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// `<= 0`: unlimited.
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub blkio_weight_device: Vec<DeviceWeight>,
    pub blkio_throttle: Vec<DeviceThrottle>,
}

impl CgroupLimits {
    pub fn is_empty(&self) -> bool {
        *self == CgroupLimits::default()
    }
}

/// A per-device blkio weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceWeight {
    pub major: i64,
    pub minor: i64,
    pub weight: u16,
}

/// Which throttle a [`DeviceThrottle`] sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleKind {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

impl ThrottleKind {
    /// The v1 file (`blkio.throttle.read_bps_device`, ...).
    pub fn v1_file(self) -> &'static str {
        match self {
            Self::ReadBps => "blkio.throttle.read_bps_device",
            Self::WriteBps => "blkio.throttle.write_bps_device",
            Self::ReadIops => "blkio.throttle.read_iops_device",
            Self::WriteIops => "blkio.throttle.write_iops_device",
        }
    }

    /// The v2 `io.max` key (`rbps`, `wbps`, `riops`, `wiops`).
    pub fn v2_key(self) -> &'static str {
        match self {
            Self::ReadBps => "rbps",
            Self::WriteBps => "wbps",
            Self::ReadIops => "riops",
            Self::WriteIops => "wiops",
        }
    }
}

/// A per-device I/O limit; a rate of 0 lifts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceThrottle {
    pub major: i64,
    pub minor: i64,
    pub kind: ThrottleKind,
    pub rate: u64,
}

/// `cpu.shares` (2..262144, default 1024) → `cpu.weight` (1..10000, default 100), runc's
/// linear mapping that Docker uses. 0 means "not set".
pub fn cpu_weight_from_shares(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// blkio weight (10..1000) → `io.weight` (1..10000). 0 means "not set".
pub fn io_weight_from_blkio(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight.clamp(10, 1000)) - 10) * 9999 / 990
}

/// Why a v1 memory+swap value has no v2 equivalent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SwapConversionError {
    #[error("unable to set swap limit without memory limit")]
    NoMemoryLimit,
    #[error("memory+swap limit should be >= memory limit")]
    BelowMemory,
}

/// v1's memory+swap limit → v2's `memory.swap.max` (swap alone), as runc converts it:
/// `-1` stays unlimited, `0` stays unset, otherwise the swap part is `memory_swap - memory`.
pub fn swap_max_from_memsw(memory_swap: i64, memory: i64) -> Result<i64, SwapConversionError> {
    if memory == -1 && memory_swap == 0 {
        return Ok(-1);
    }
    if memory_swap == -1 || memory_swap == 0 {
        return Ok(memory_swap);
    }
    if memory <= 0 {
        return Err(SwapConversionError::NoMemoryLimit);
    }
    if memory_swap < memory {
        return Err(SwapConversionError::BelowMemory);
    }
    Ok(memory_swap - memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_shares_map_onto_the_v2_weight_range_like_runc() {
        assert_eq!(cpu_weight_from_shares(0), 0);
        assert_eq!(cpu_weight_from_shares(2), 1);
        assert_eq!(cpu_weight_from_shares(1024), 39);
        assert_eq!(cpu_weight_from_shares(512), 20);
        assert_eq!(cpu_weight_from_shares(262_144), 10_000);
    }

    #[test]
    fn blkio_weights_map_onto_io_weight() {
        assert_eq!(io_weight_from_blkio(0), 0);
        assert_eq!(io_weight_from_blkio(10), 1);
        assert_eq!(io_weight_from_blkio(500), 4950);
        assert_eq!(io_weight_from_blkio(1000), 10_000);
    }

    #[test]
    fn memory_plus_swap_becomes_the_swap_part_alone() {
        assert_eq!(swap_max_from_memsw(200, 100), Ok(100));
        assert_eq!(swap_max_from_memsw(100, 100), Ok(0));
        assert_eq!(swap_max_from_memsw(-1, 100), Ok(-1));
        assert_eq!(swap_max_from_memsw(0, 100), Ok(0));
        assert_eq!(swap_max_from_memsw(0, -1), Ok(-1));
        assert_eq!(
            swap_max_from_memsw(200, 0),
            Err(SwapConversionError::NoMemoryLimit)
        );
        assert_eq!(
            swap_max_from_memsw(50, 100),
            Err(SwapConversionError::BelowMemory)
        );
    }
}
