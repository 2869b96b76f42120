//! cgroup v1: one hierarchy per controller (or per group of controllers, `cpu,cpuacct`),
//! each mounted in its own directory under the cgroup root, possibly with a `unified`
//! cgroup2 mount beside them on hybrid hosts.

use super::{
    cgroup_dir, read_flat_keyed, read_optional, read_u64, system_cpu, BlkioEntry, CgroupBackend,
    CgroupError, CgroupStats, CpuThrottling, CLOCK_TICKS_PER_SECOND, NANOS_PER_SECOND,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Limits at or above this are the kernel's "unlimited" (`PAGE_COUNTER_MAX` pages).
const UNLIMITED_MEMORY: u64 = 1 << 62;

/// The v1 hierarchies of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Layout {
    /// Controller (`memory`, `cpu`, `name=systemd`) → hierarchy root.
    controllers: BTreeMap<String, PathBuf>,
    /// The cgroup2 mount of a hybrid host and the controllers it holds.
    unified: Option<(PathBuf, Vec<String>)>,
    proc_stat: PathBuf,
}

impl V1Layout {
    pub(crate) fn detect(root: &Path, proc_stat: &Path) -> Result<V1Layout, CgroupError> {
        let entries = std::fs::read_dir(root).map_err(|source| CgroupError::Read {
            path: root.to_path_buf(),
            source,
        })?;
        let mut controllers = BTreeMap::new();
        let mut unified = None;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.join("cgroup.controllers").is_file() {
                let list = read_optional(&path.join("cgroup.controllers"))?.unwrap_or_default();
                unified = Some((path, list.split_whitespace().map(str::to_string).collect()));
            } else if path.join("cgroup.procs").is_file() {
                for controller in name.split(',') {
                    let key = if controller == "systemd" {
                        "name=systemd".to_string()
                    } else {
                        controller.to_string()
                    };
                    controllers.entry(key).or_insert_with(|| path.clone());
                }
            }
        }
        if controllers.is_empty() {
            return Err(CgroupError::NotCgroupRoot {
                root: root.to_path_buf(),
            });
        }
        Ok(V1Layout {
            controllers,
            unified,
            proc_stat: proc_stat.to_path_buf(),
        })
    }

    /// Controllers of the hybrid cgroup2 mount (empty when there is none or it holds none).
    pub fn unified_controllers(&self) -> &[String] {
        self.unified
            .as_ref()
            .map(|(_, c)| c.as_slice())
            .unwrap_or_default()
    }

    /// The hybrid cgroup2 mount point, when there is one.
    pub fn unified_mount(&self) -> Option<&Path> {
        self.unified.as_ref().map(|(p, _)| p.as_path())
    }

    /// The controllers mounted as v1 hierarchies.
    pub fn controllers(&self) -> impl Iterator<Item = &str> {
        self.controllers.keys().map(String::as_str)
    }

    fn dir(&self, controller: &str, parent: &str, id: &str) -> Option<PathBuf> {
        self.controllers
            .get(controller)
            .map(|h| cgroup_dir(h, parent, id))
    }
}

fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            let op = op.to_ascii_lowercase();
            if op != "read" && op != "write" {
                return None;
            }
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op,
                value: value.parse().ok()?,
            })
        })
        .collect()
}

impl CgroupBackend for V1Layout {
    fn container_cgroup_paths(&self, parent: &str, id: &str) -> Vec<(String, PathBuf)> {
        let mut paths: Vec<(String, PathBuf)> = self
            .controllers
            .iter()
            .map(|(c, h)| (c.clone(), cgroup_dir(h, parent, id)))
            .collect();
        if let Some((unified, _)) = &self.unified {
            paths.push(("unified".to_string(), cgroup_dir(unified, parent, id)));
        }
        paths
    }

    fn stats(&self, parent: &str, id: &str) -> Result<CgroupStats, CgroupError> {
        let found = self
            .controllers
            .keys()
            .filter_map(|c| self.dir(c, parent, id))
            .any(|d| d.is_dir());
        if !found {
            return Err(CgroupError::NotFound {
                parent: parent.to_string(),
                id: id.to_string(),
            });
        }
        let mut s = CgroupStats::default();
        let none = PathBuf::from("/nonexistent");
        let file = |controller: &str, name: &str| {
            self.dir(controller, parent, id)
                .unwrap_or_else(|| none.clone())
                .join(name)
        };

        (s.system_cpu_ns, s.online_cpus) = system_cpu(&self.proc_stat)?;
        s.cpu_usage_ns = read_u64(&file("cpuacct", "cpuacct.usage"))?.unwrap_or(0);
        s.per_cpu_ns = read_optional(&file("cpuacct", "cpuacct.usage_percpu"))?
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let ticks = read_flat_keyed(&file("cpuacct", "cpuacct.stat"))?;
        let tick_ns = NANOS_PER_SECOND / CLOCK_TICKS_PER_SECOND;
        s.cpu_user_ns = ticks.get("user").copied().unwrap_or(0) * tick_ns;
        s.cpu_system_ns = ticks.get("system").copied().unwrap_or(0) * tick_ns;
        let cpu_stat = read_flat_keyed(&file("cpu", "cpu.stat"))?;
        s.throttling = CpuThrottling {
            periods: cpu_stat.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: cpu_stat.get("nr_throttled").copied().unwrap_or(0),
            throttled_time_ns: cpu_stat.get("throttled_time").copied().unwrap_or(0),
        };

        s.memory_usage = read_u64(&file("memory", "memory.usage_in_bytes"))?.unwrap_or(0);
        s.memory_max_usage = read_u64(&file("memory", "memory.max_usage_in_bytes"))?;
        s.memory_limit =
            read_u64(&file("memory", "memory.limit_in_bytes"))?.filter(|l| *l < UNLIMITED_MEMORY);
        s.memory_failcnt = read_u64(&file("memory", "memory.failcnt"))?;
        s.memory_stat = read_flat_keyed(&file("memory", "memory.stat"))?;
        let stat = |hierarchical: &str, local: &str| {
            s.memory_stat
                .get(hierarchical)
                .or_else(|| s.memory_stat.get(local))
                .copied()
                .unwrap_or(0)
        };
        s.memory_cache = stat("total_cache", "cache");
        s.memory_inactive_file = stat("total_inactive_file", "inactive_file");

        s.pids_current = read_u64(&file("pids", "pids.current"))?.unwrap_or(0);
        s.pids_limit = read_u64(&file("pids", "pids.max"))?;

        // The throttle file counts I/O on every scheduler; the CFQ one only on CFQ.
        let throttle = read_optional(&file("blkio", "blkio.throttle.io_service_bytes_recursive"))?
            .unwrap_or_default();
        s.blkio = blkio_entries(&throttle);
        if s.blkio.is_empty() {
            s.blkio = blkio_entries(
                &read_optional(&file("blkio", "blkio.io_service_bytes_recursive"))?
                    .unwrap_or_default(),
            );
        }
        s.sum_blkio();
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::CgroupLayout;
    use super::*;

    /// A hybrid host like the one berth is developed on: separate `cpu` and `cpuacct`
    /// hierarchies, `name=systemd`, and a cgroup2 mount holding `hugetlb`.
    fn fixture() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for c in [
            "cpu", "cpuacct", "memory", "pids", "blkio", "systemd", "cpuset",
        ] {
            write(r, &format!("{c}/cgroup.procs"), "");
        }
        write(r, "unified/cgroup.controllers", "hugetlb\n");
        write(r, "stat", PROC_STAT);
        let c = "berth/abc";
        write(r, &format!("memory/{c}/cgroup.procs"), "100\n101\n");
        write(
            r,
            &format!("memory/{c}/memory.usage_in_bytes"),
            "10485760\n",
        );
        write(
            r,
            &format!("memory/{c}/memory.max_usage_in_bytes"),
            "20971520\n",
        );
        write(
            r,
            &format!("memory/{c}/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        write(r, &format!("memory/{c}/memory.failcnt"), "0\n");
        write(
            r,
            &format!("memory/{c}/memory.stat"),
            "cache 4096\nrss 8192\ninactive_file 1024\ntotal_cache 8192\ntotal_rss 8192\ntotal_inactive_file 2048\n",
        );
        write(r, &format!("cpuacct/{c}/cgroup.procs"), "100\n101\n");
        write(r, &format!("cpuacct/{c}/cpuacct.usage"), "123456789\n");
        write(
            r,
            &format!("cpuacct/{c}/cpuacct.usage_percpu"),
            "100000000 23456789 \n",
        );
        write(
            r,
            &format!("cpuacct/{c}/cpuacct.stat"),
            "user 10\nsystem 2\n",
        );
        write(
            r,
            &format!("cpu/{c}/cpu.stat"),
            "nr_periods 5\nnr_throttled 1\nthrottled_time 3000\n",
        );
        write(r, &format!("pids/{c}/cgroup.procs"), "100\n101\n");
        write(r, &format!("pids/{c}/pids.current"), "2\n");
        write(r, &format!("pids/{c}/pids.max"), "max\n");
        write(
            r,
            &format!("blkio/{c}/blkio.throttle.io_service_bytes_recursive"),
            "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Async 4608\n8:0 Total 4608\n8:16 Read 100\nTotal 4708\n",
        );
        write(r, &format!("memory/{c}/child/cgroup.procs"), "102\n");
        root
    }

    #[test]
    fn hybrid_root_is_detected_as_v1_with_a_unified_mount() {
        let root = fixture();
        let CgroupLayout::V1(v1) = layout(root.path()) else {
            panic!("not v1")
        };
        assert_eq!(v1.unified_controllers(), ["hugetlb"]);
        assert!(v1.controllers().any(|c| c == "name=systemd"));
    }

    #[test]
    fn container_paths_cover_every_hierarchy_and_the_unified_mount() {
        let root = fixture();
        let paths = layout(root.path()).container_cgroup_paths("/berth", "abc");
        let memory = paths.iter().find(|(c, _)| c == "memory").unwrap();
        assert_eq!(memory.1, root.path().join("memory/berth/abc"));
        assert!(paths
            .iter()
            .any(|(c, p)| c == "unified" && *p == root.path().join("unified/berth/abc")));
    }

    #[test]
    fn combined_hierarchies_serve_each_of_their_controllers() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "cpu,cpuacct/cgroup.procs", "");
        let paths = layout(root.path()).container_cgroup_paths("/p", "x");
        let cpu = paths.iter().find(|(c, _)| c == "cpu").unwrap();
        let cpuacct = paths.iter().find(|(c, _)| c == "cpuacct").unwrap();
        assert_eq!(cpu.1, cpuacct.1);
    }

    #[test]
    fn pids_are_read_from_all_hierarchies_and_sub_cgroups() {
        let root = fixture();
        assert_eq!(
            layout(root.path()).pids("/berth", "abc").unwrap(),
            vec![100, 101, 102]
        );
        assert!(matches!(
            layout(root.path()).pids("/berth", "zzz"),
            Err(CgroupError::NotFound { .. })
        ));
    }

    #[test]
    fn stats_read_every_v1_controller() {
        let root = fixture();
        let s = layout(root.path()).stats("/berth", "abc").unwrap();
        assert_eq!(s.cpu_usage_ns, 123_456_789);
        assert_eq!(s.per_cpu_ns, vec![100_000_000, 23_456_789]);
        assert_eq!((s.cpu_user_ns, s.cpu_system_ns), (100_000_000, 20_000_000));
        assert_eq!(
            s.throttling,
            CpuThrottling {
                periods: 5,
                throttled_periods: 1,
                throttled_time_ns: 3000
            }
        );
        assert_eq!(s.online_cpus, 2);
        assert!(s.system_cpu_ns > 0);
        assert_eq!(s.memory_usage, 10 << 20);
        assert_eq!(s.memory_max_usage, Some(20 << 20));
        assert_eq!(s.memory_limit, None, "the kernel's unlimited value");
        assert_eq!((s.memory_cache, s.memory_inactive_file), (8192, 2048));
        assert_eq!(s.memory_stat["rss"], 8192);
        assert_eq!((s.pids_current, s.pids_limit), (2, None));
        assert_eq!((s.blkio_read_bytes, s.blkio_write_bytes), (4196, 512));
        assert_eq!(s.blkio.len(), 3);
    }

    #[test]
    fn stats_of_a_missing_container_are_not_found() {
        let root = fixture();
        assert!(matches!(
            layout(root.path()).stats("/berth", "zzz"),
            Err(CgroupError::NotFound { .. })
        ));
    }
}
