//! cgroup v2: one unified hierarchy; every controller's files sit in the container's one
//! directory.

use super::{
    cgroup_dir, read_flat_keyed, read_optional, read_u64, system_cpu, BlkioEntry, CgroupBackend,
    CgroupError, CgroupStats, CpuThrottling,
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

/// `io.stat`: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` per device.
fn io_entries(text: &str) -> Vec<BlkioEntry> {
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
            let op = match key {
                "rbytes" => "read",
                "wbytes" => "write",
                _ => continue,
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

impl CgroupBackend for V2Layout {
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

        s.blkio = io_entries(&read_optional(&dir.join("io.stat"))?.unwrap_or_default());
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
}
