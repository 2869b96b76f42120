//! cgroup v2: one unified hierarchy; every controller's files sit in the container's one
//! directory.

use super::limits::{cpu_weight_from_shares, io_weight_from_blkio, swap_max_from_memsw};
use super::{
    cgroup_dir, read_flat_keyed, read_optional, read_u64, require_dir, system_cpu, write_value,
    BlkioEntry, CgroupBackend, CgroupError, CgroupLimits, CgroupStats, CgroupSupport,
    CpuThrottling, OomWatch,
};
use std::path::{Path, PathBuf};

/// The unified hierarchy of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Layout {
    root: PathBuf,
    proc_stat: PathBuf,
}

impl V2Layout {
    pub(crate) fn new(root: &Path, proc_stat: &Path) -> V2Layout {
        V2Layout {
            root: root.to_path_buf(),
            proc_stat: proc_stat.to_path_buf(),
        }
    }

    /// The controllers the root makes available.
    pub fn controllers(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

/// `max` for unlimited (`-1`, or any negative value).
fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// `memory.max` as a number of bytes, `-1` for `max` (or a missing file).
fn current_memory_max(dir: &Path) -> Result<i64, CgroupError> {
    Ok(read_u64(&dir.join("memory.max"))?
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or(-1))
}

/// `io.stat`: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` per device, as
/// (bytes, operations) entries.
fn io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let bytes = io_entries(text, "rbytes", "wbytes");
    let ios = io_entries(text, "rios", "wios");
    (bytes, ios)
}

fn io_entries(text: &str, read_key: &str, write_key: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        for field in fields {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let op = if key == read_key {
                "read"
            } else if key == write_key {
                "write"
            } else {
                continue;
            };
            if let Ok(value) = value.parse() {
                out.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value,
                });
            }
        }
    }
    out
}

impl V2Layout {
    fn update_memory(&self, dir: &Path, l: &CgroupLimits) -> Result<(), CgroupError> {
        let mut swap = l.memory_swap;
        if l.memory == Some(-1) && swap.is_none() {
            swap = Some(0);
        }
        if let Some(swap) = swap {
            let memory = match l.memory {
                Some(m) => m,
                None => current_memory_max(dir)?,
            };
            let swap_max = swap_max_from_memsw(swap, memory)?;
            // 0 from an unset request leaves swap alone; 0 from swap == memory disables it.
            if swap_max != 0 || swap > 0 {
                write_value(&dir.join("memory.swap.max"), &max_or(swap_max))?;
            }
        }
        if let Some(m) = l.memory {
            write_value(&dir.join("memory.max"), &max_or(m))?;
        }
        if let Some(r) = l.memory_reservation {
            write_value(&dir.join("memory.low"), &max_or(r))?;
        }
        Ok(())
    }

    fn update_cpu(&self, dir: &Path, l: &CgroupLimits) -> Result<(), CgroupError> {
        if let Some(shares) = l.cpu_shares {
            let weight = cpu_weight_from_shares(shares);
            if weight != 0 {
                write_value(&dir.join("cpu.weight"), &weight.to_string())?;
            }
        }
        if l.cpu_quota.is_some() || l.cpu_period.is_some() {
            let mut value = match l.cpu_quota {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".to_string(),
            };
            if let Some(p) = l.cpu_period.filter(|p| *p != 0) {
                value.push(' ');
                value.push_str(&p.to_string());
            }
            write_value(&dir.join("cpu.max"), &value)?;
        }
        Ok(())
    }

    fn update_io(&self, dir: &Path, l: &CgroupLimits) -> Result<(), CgroupError> {
        // BFQ takes blkio weights as they are; the generic io.weight its own range.
        let bfq = dir.join("io.bfq.weight");
        let bfq = bfq.exists().then_some(bfq);
        if let Some(w) = l.blkio_weight {
            match &bfq {
                Some(f) => write_value(f, &w.to_string())?,
                None => write_value(
                    &dir.join("io.weight"),
                    &format!("default {}", io_weight_from_blkio(w)),
                )?,
            }
        }
        for w in &l.blkio_weight_device {
            match &bfq {
                Some(f) => write_value(f, &format!("{}:{} {}", w.major, w.minor, w.weight))?,
                None => write_value(
                    &dir.join("io.weight"),
                    &format!("{}:{} {}", w.major, w.minor, io_weight_from_blkio(w.weight)),
                )?,
            }
        }
        for t in &l.blkio_throttle {
            let rate = if t.rate == 0 {
                "max".to_string()
            } else {
                t.rate.to_string()
            };
            write_value(
                &dir.join("io.max"),
                &format!("{}:{} {}={rate}", t.major, t.minor, t.kind.v2_key()),
            )?;
        }
        Ok(())
    }
}

impl CgroupBackend for V2Layout {
    fn cpu_usage(&self, parent: &str, id: &str) -> Result<u64, CgroupError> {
        let dir = cgroup_dir(&self.root, parent, id);
        read_flat_keyed(&dir.join("cpu.stat"))?
            .get("usage_usec")
            .map(|us| us * 1000)
            .ok_or_else(|| CgroupError::NotFound {
                parent: parent.to_string(),
                id: id.to_string(),
            })
    }

    fn update(&self, parent: &str, id: &str, l: &CgroupLimits) -> Result<(), CgroupError> {
        let dir = cgroup_dir(&self.root, parent, id);
        require_dir(&dir, parent, id)?;
        // v2 has no swappiness and no way to disable the OOM killer: the engine discards
        // both (with Docker's warnings) before they get here.
        self.update_memory(&dir, l)?;
        self.update_cpu(&dir, l)?;
        if let Some(v) = &l.cpuset_cpus {
            write_value(&dir.join("cpuset.cpus"), v)?;
        }
        if let Some(v) = &l.cpuset_mems {
            write_value(&dir.join("cpuset.mems"), v)?;
        }
        if let Some(v) = l.pids_limit {
            write_value(&dir.join("pids.max"), &max_or(if v <= 0 { -1 } else { v }))?;
        }
        self.update_io(&dir, l)
    }

    fn support(&self) -> CgroupSupport {
        let controllers = self.controllers();
        let has = |c: &str| controllers.iter().any(|x| x == c);
        let read = |f: &str| {
            std::fs::read_to_string(self.root.join(f))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let (memory, cpu, io) = (has("memory"), has("cpu"), has("io"));
        CgroupSupport {
            memory_limit: memory,
            swap_limit: memory,
            memory_reservation: memory,
            oom_kill_disable: false,
            memory_swappiness: false,
            cpu_shares: cpu,
            cpu_cfs: cpu,
            cpuset: has("cpuset"),
            cpus: read("cpuset.cpus.effective"),
            mems: read("cpuset.mems.effective"),
            pids_limit: has("pids"),
            blkio_weight: io,
            blkio_weight_device: io,
            blkio_read_bps_device: io,
            blkio_write_bps_device: io,
            blkio_read_iops_device: io,
            blkio_write_iops_device: io,
        }
    }

    fn oom_watch(&self, parent: &str, id: &str) -> Option<OomWatch> {
        Some(OomWatch {
            version: 2,
            dir: cgroup_dir(&self.root, parent, id),
        })
    }

    fn container_cgroup_paths(&self, parent: &str, id: &str) -> Vec<(String, PathBuf)> {
        vec![("unified".to_string(), cgroup_dir(&self.root, parent, id))]
    }

    fn stats(&self, parent: &str, id: &str) -> Result<CgroupStats, CgroupError> {
        let dir = cgroup_dir(&self.root, parent, id);
        if !dir.is_dir() {
            return Err(CgroupError::NotFound {
                parent: parent.to_string(),
                id: id.to_string(),
            });
        }
        let mut s = CgroupStats::default();
        (s.system_cpu_ns, s.online_cpus) = system_cpu(&self.proc_stat)?;

        let cpu = read_flat_keyed(&dir.join("cpu.stat"))?;
        let usec = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
        s.cpu_usage_ns = usec("usage_usec");
        s.cpu_user_ns = usec("user_usec");
        s.cpu_system_ns = usec("system_usec");
        s.throttling = CpuThrottling {
            periods: cpu.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
            throttled_time_ns: usec("throttled_usec"),
        };

        s.memory_usage = read_u64(&dir.join("memory.current"))?.unwrap_or(0);
        s.memory_max_usage = read_u64(&dir.join("memory.peak"))?;
        s.memory_limit = read_u64(&dir.join("memory.max"))?;
        s.memory_failcnt = read_flat_keyed(&dir.join("memory.events"))?
            .get("max")
            .copied();
        s.memory_stat = read_flat_keyed(&dir.join("memory.stat"))?;
        s.memory_cache = s.memory_stat.get("file").copied().unwrap_or(0);
        s.memory_inactive_file = s.memory_stat.get("inactive_file").copied().unwrap_or(0);

        s.pids_current = read_u64(&dir.join("pids.current"))?.unwrap_or(0);
        s.pids_limit = read_u64(&dir.join("pids.max"))?;

        (s.blkio, s.blkio_serviced) =
            io_stat(&read_optional(&dir.join("io.stat"))?.unwrap_or_default());
        s.sum_blkio();
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::CgroupLayout;
    use super::*;

    fn fixture() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(
            r,
            "cgroup.controllers",
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        );
        write(r, "stat", PROC_STAT);
        let c = "berth/abc";
        write(r, &format!("{c}/cgroup.procs"), "7\n9\n");
        write(r, &format!("{c}/init/cgroup.procs"), "8\n");
        write(
            r,
            &format!("{c}/cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 40\n",
        );
        write(r, &format!("{c}/memory.current"), "52428800\n");
        write(r, &format!("{c}/memory.max"), "104857600\n");
        write(
            r,
            &format!("{c}/memory.stat"),
            "anon 1000\nfile 4096\nkernel_stack 16384\nactive_file 2048\ninactive_file 2048\n",
        );
        write(
            r,
            &format!("{c}/memory.events"),
            "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n",
        );
        write(r, &format!("{c}/pids.current"), "3\n");
        write(r, &format!("{c}/pids.max"), "100\n");
        write(
            r,
            &format!("{c}/io.stat"),
            "8:0 rbytes=8192 wbytes=4096 rios=2 wios=1 dbytes=0 dios=0\n253:1 rbytes=10 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        );
        root
    }

    #[test]
    fn unified_root_is_detected_as_v2() {
        let root = fixture();
        let l = layout(root.path());
        assert!(l.is_unified());
        let CgroupLayout::V2(v2) = &l else {
            panic!("not v2")
        };
        assert!(v2.controllers().contains(&"memory".to_string()));
        assert_eq!(
            l.container_cgroup_paths("/berth", "abc"),
            vec![("unified".to_string(), root.path().join("berth/abc"))]
        );
    }

    #[test]
    fn stats_read_the_v2_files() {
        let root = fixture();
        let s = layout(root.path()).stats("/berth", "abc").unwrap();
        assert_eq!(
            (s.cpu_usage_ns, s.cpu_user_ns, s.cpu_system_ns),
            (1_500_000, 1_000_000, 500_000)
        );
        assert_eq!(
            s.throttling,
            CpuThrottling {
                periods: 10,
                throttled_periods: 2,
                throttled_time_ns: 40_000
            }
        );
        assert!(s.per_cpu_ns.is_empty());
        assert_eq!(s.memory_usage, 50 << 20);
        assert_eq!(s.memory_limit, Some(100 << 20));
        assert_eq!(s.memory_max_usage, None, "no memory.peak in the fixture");
        assert_eq!(s.memory_failcnt, Some(3));
        assert_eq!((s.memory_cache, s.memory_inactive_file), (4096, 2048));
        assert_eq!((s.pids_current, s.pids_limit), (3, Some(100)));
        assert_eq!((s.blkio_read_bytes, s.blkio_write_bytes), (8202, 4096));
    }

    #[test]
    fn unlimited_memory_and_pids_read_as_none() {
        let root = fixture();
        write(root.path(), "berth/abc/memory.max", "max\n");
        write(root.path(), "berth/abc/pids.max", "max\n");
        let s = layout(root.path()).stats("/berth", "abc").unwrap();
        assert_eq!((s.memory_limit, s.pids_limit), (None, None));
    }

    #[test]
    fn pids_include_sub_cgroups() {
        let root = fixture();
        assert_eq!(
            layout(root.path()).pids("/berth", "abc").unwrap(),
            vec![7, 8, 9]
        );
    }

    fn read(root: &Path, rel: &str) -> String {
        std::fs::read_to_string(root.join(rel)).unwrap()
    }

    #[test]
    fn update_converts_v1_values_into_v2_files() {
        let root = fixture();
        let r = root.path();
        let limits = CgroupLimits {
            memory: Some(256 << 20),
            memory_swap: Some(512 << 20),
            memory_reservation: Some(64 << 20),
            cpu_shares: Some(512),
            cpu_period: Some(100_000),
            cpu_quota: Some(150_000),
            cpuset_cpus: Some("0-1".into()),
            cpuset_mems: Some("0".into()),
            pids_limit: Some(100),
            blkio_weight: Some(500),
            blkio_throttle: vec![crate::cgroups::DeviceThrottle {
                major: 8,
                minor: 0,
                kind: crate::cgroups::ThrottleKind::ReadBps,
                rate: 1 << 20,
            }],
            ..Default::default()
        };
        layout(r).update("/berth", "abc", &limits).unwrap();
        let c = "berth/abc";
        assert_eq!(read(r, &format!("{c}/memory.max")), "268435456");
        assert_eq!(
            read(r, &format!("{c}/memory.swap.max")),
            "268435456",
            "swap alone"
        );
        assert_eq!(read(r, &format!("{c}/memory.low")), "67108864");
        assert_eq!(read(r, &format!("{c}/cpu.weight")), "20");
        assert_eq!(read(r, &format!("{c}/cpu.max")), "150000 100000");
        assert_eq!(read(r, &format!("{c}/cpuset.cpus")), "0-1");
        assert_eq!(read(r, &format!("{c}/cpuset.mems")), "0");
        assert_eq!(read(r, &format!("{c}/pids.max")), "100");
        assert_eq!(read(r, &format!("{c}/io.weight")), "default 4950");
        assert_eq!(read(r, &format!("{c}/io.max")), "8:0 rbps=1048576");
    }

    #[test]
    fn unlimited_values_are_written_as_max() {
        let root = fixture();
        let r = root.path();
        let limits = CgroupLimits {
            memory: Some(-1),
            cpu_quota: Some(-1),
            pids_limit: Some(0),
            ..Default::default()
        };
        layout(r).update("/berth", "abc", &limits).unwrap();
        assert_eq!(read(r, "berth/abc/memory.max"), "max");
        assert_eq!(read(r, "berth/abc/memory.swap.max"), "max");
        assert_eq!(read(r, "berth/abc/cpu.max"), "max");
        assert_eq!(read(r, "berth/abc/pids.max"), "max");
    }

    #[test]
    fn swap_equal_to_memory_means_no_swap_and_swap_alone_uses_the_current_limit() {
        let root = fixture();
        let r = root.path();
        let same = CgroupLimits {
            memory: Some(64 << 20),
            memory_swap: Some(64 << 20),
            ..Default::default()
        };
        layout(r).update("/berth", "abc", &same).unwrap();
        assert_eq!(read(r, "berth/abc/memory.swap.max"), "0");
        let swap_only = CgroupLimits {
            memory_swap: Some(96 << 20),
            ..Default::default()
        };
        layout(r).update("/berth", "abc", &swap_only).unwrap();
        assert_eq!(
            read(r, "berth/abc/memory.swap.max"),
            (32u64 << 20).to_string()
        );
        write(r, "berth/abc/memory.max", "max\n");
        assert!(matches!(
            layout(r).update("/berth", "abc", &swap_only),
            Err(CgroupError::Swap(_))
        ));
    }

    #[test]
    fn bfq_takes_blkio_weights_unconverted() {
        let root = fixture();
        let r = root.path();
        write(r, "berth/abc/io.bfq.weight", "default 100\n");
        let limits = CgroupLimits {
            blkio_weight: Some(300),
            ..Default::default()
        };
        layout(r).update("/berth", "abc", &limits).unwrap();
        assert_eq!(read(r, "berth/abc/io.bfq.weight"), "300");
    }

    #[test]
    fn support_comes_from_the_enabled_controllers() {
        let root = fixture();
        write(root.path(), "cpuset.cpus.effective", "0-7\n");
        let s = layout(root.path()).support();
        assert!(s.memory_limit && s.swap_limit && s.cpu_shares && s.cpu_cfs && s.pids_limit);
        assert!(s.blkio_weight && s.blkio_read_iops_device && s.cpuset);
        assert!(!s.oom_kill_disable && !s.memory_swappiness);
        assert_eq!(s.cpus, "0-7");
        let bare = tempfile::tempdir().unwrap();
        write(bare.path(), "cgroup.controllers", "memory pids\n");
        let s = layout(bare.path()).support();
        assert!(s.memory_limit && !s.cpu_shares && !s.blkio_weight);
    }

    #[test]
    fn oom_kills_and_cpu_usage_come_from_the_unified_dir() {
        let root = fixture();
        let l = layout(root.path());
        let w = l.oom_watch("/berth", "abc").unwrap();
        assert_eq!((w.version, w.dir), (2, root.path().join("berth/abc")));
        assert_eq!(l.cpu_usage("/berth", "abc").unwrap(), 1_500_000);
    }
}
