//! Which limits the host's cgroups can enforce, found as Docker's `sysinfo` finds them: on
//! v1 by the files at each hierarchy's root, on v2 by the controllers the root enables.
//! The engine refuses or discards (with Docker's warning) what is not supported, and
//! `docker info` lists the same gaps as warnings.

/// What the cgroups of this host support.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupSupport {
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub memory_reservation: bool,
    pub oom_kill_disable: bool,
    pub memory_swappiness: bool,
    pub cpu_shares: bool,
    pub cpu_cfs: bool,
    pub cpuset: bool,
    /// CPUs and memory nodes available to containers (`0-3`), for `--cpuset-*` checks.
    pub cpus: String,
    pub mems: String,
    pub pids_limit: bool,
    pub blkio_weight: bool,
    pub blkio_weight_device: bool,
    pub blkio_read_bps_device: bool,
    pub blkio_write_bps_device: bool,
    pub blkio_read_iops_device: bool,
    pub blkio_write_iops_device: bool,
}

impl CgroupSupport {
    /// Everything supported (for tests and hosts assumed complete).
    pub fn all() -> CgroupSupport {
        CgroupSupport {
            memory_limit: true,
            swap_limit: true,
            memory_reservation: true,
            oom_kill_disable: true,
            memory_swappiness: true,
            cpu_shares: true,
            cpu_cfs: true,
            cpuset: true,
            cpus: String::new(),
            mems: String::new(),
            pids_limit: true,
            blkio_weight: true,
            blkio_weight_device: true,
            blkio_read_bps_device: true,
            blkio_write_bps_device: true,
            blkio_read_iops_device: true,
            blkio_write_iops_device: true,
        }
    }

    /// The warnings `docker info` prints for what is missing (`version` is "1" or "2").
    pub fn info_warnings(&self, version: &str) -> Vec<String> {
        let mut w = Vec::new();
        let mut missing = |ok: bool, what: &str| {
            if !ok {
                w.push(format!("WARNING: No {what} support"));
            }
        };
        missing(self.memory_limit, "memory limit");
        missing(self.swap_limit, "swap limit");
        if version == "1" {
            missing(self.oom_kill_disable, "oom kill disable");
        }
        missing(self.cpu_cfs, "cpu cfs quota");
        missing(self.cpu_cfs, "cpu cfs period");
        missing(self.cpu_shares, "cpu shares");
        missing(self.cpuset, "cpuset");
        missing(self.blkio_weight, "blkio weight");
        missing(self.blkio_weight_device, "blkio weight_device");
        missing(self.blkio_read_bps_device, "blkio throttle.read_bps_device");
        missing(
            self.blkio_write_bps_device,
            "blkio throttle.write_bps_device",
        );
        missing(
            self.blkio_read_iops_device,
            "blkio throttle.read_iops_device",
        );
        missing(
            self.blkio_write_iops_device,
            "blkio throttle.write_iops_device",
        );
        w
    }
}

/// Whether `list` (`0-2,4`) only names members of `available` (same syntax). `Err` when
/// `list` is not in that syntax.
pub fn cpuset_within(list: &str, available: &str) -> Result<bool, String> {
    let wanted = parse_cpuset(list)?;
    if available.trim().is_empty() {
        return Ok(true);
    }
    let have = parse_cpuset(available)?;
    Ok(wanted.iter().all(|n| have.contains(n)))
}

/// Parses the kernel's list syntax (`0-3,5`); an empty list is empty.
pub fn parse_cpuset(list: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    let list = list.trim();
    if list.is_empty() {
        return Ok(out);
    }
    let bad = || format!("invalid format: {list}");
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.parse().map_err(|_| bad())?;
                let b: u32 = b.parse().map_err(|_| bad())?;
                if b < a || b - a > 65_536 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpusets_parse_and_check_against_what_is_available() {
        assert_eq!(parse_cpuset("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(cpuset_within("1", "0-1"), Ok(true));
        assert_eq!(cpuset_within("0,3", "0-1"), Ok(false));
        assert_eq!(
            cpuset_within("a-b", "0-1"),
            Err("invalid format: a-b".into())
        );
        assert_eq!(
            cpuset_within("3-1", "0-3"),
            Err("invalid format: 3-1".into())
        );
    }

    #[test]
    fn info_lists_what_is_missing_like_docker() {
        let mut s = CgroupSupport::all();
        assert!(s.info_warnings("1").is_empty());
        s.blkio_weight = false;
        s.oom_kill_disable = false;
        assert_eq!(
            s.info_warnings("1"),
            [
                "WARNING: No oom kill disable support",
                "WARNING: No blkio weight support"
            ]
        );
        assert_eq!(s.info_warnings("2"), ["WARNING: No blkio weight support"]);
    }
}
