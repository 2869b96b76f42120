//! cgroup v1: one hierarchy per controller (or per group of controllers, `cpu,cpuacct`),
//! each mounted in its own directory under the cgroup root, possibly with a `unified`
//! cgroup2 mount beside them on hybrid hosts.

use super::{
    cgroup_dir, read_flat_keyed, read_optional, read_u64, require_dir, system_cpu, write_value,
    BlkioEntry, CgroupBackend, CgroupError, CgroupLimits, CgroupStats, CgroupSupport,
    CpuThrottling, OomWatch, CLOCK_TICKS_PER_SECOND, NANOS_PER_SECOND,
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

/// `8:0 Read 4096` lines; the device-less `Total` line is left out, as Docker does.
fn blkio_entries(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// The first of `names` that exists in `dir` (blkio weights: CFQ's file or BFQ's).
fn first_existing(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.exists())
}

impl V1Layout {
    fn update_memory(&self, dir: &Path, l: &CgroupLimits) -> Result<(), CgroupError> {
        let limit = dir.join("memory.limit_in_bytes");
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        let mut swap = l.memory_swap;
        // Lifting the memory limit lifts the swap limit with it, as runc does.
        if l.memory == Some(-1) && swap.is_none() && memsw.exists() {
            swap = Some(-1);
        }
        match (l.memory, swap) {
            (Some(memory), Some(swap)) => {
                // memory+swap may never be below memory: raise first what must be raised.
                let current = read_u64(&limit)?.unwrap_or(u64::MAX);
                if swap == -1 || (swap as u64) > current {
                    write_value(&memsw, &swap.to_string())?;
                    write_value(&limit, &memory.to_string())?;
                } else {
                    write_value(&limit, &memory.to_string())?;
                    write_value(&memsw, &swap.to_string())?;
                }
            }
            (Some(memory), None) => write_value(&limit, &memory.to_string())?,
            (None, Some(swap)) => write_value(&memsw, &swap.to_string())?,
            (None, None) => {}
        }
        if let Some(v) = l.memory_reservation {
            write_value(&dir.join("memory.soft_limit_in_bytes"), &v.to_string())?;
        }
        if let Some(v) = l.memory_swappiness {
            write_value(&dir.join("memory.swappiness"), &v.to_string())?;
        }
        if let Some(v) = l.oom_kill_disable {
            write_value(&dir.join("memory.oom_control"), if v { "1" } else { "0" })?;
        }
        Ok(())
    }

    fn update_cpu(&self, dir: &Path, l: &CgroupLimits) -> Result<(), CgroupError> {
        if let Some(v) = l.cpu_shares {
            write_value(&dir.join("cpu.shares"), &v.to_string())?;
        }
        let period = dir.join("cpu.cfs_period_us");
        let quota = dir.join("cpu.cfs_quota_us");
        match (l.cpu_period, l.cpu_quota) {
            (Some(p), Some(q)) => {
                // A shorter period can be refused while the old quota exceeds it.
                if write_value(&period, &p.to_string()).is_err() {
                    write_value(&quota, &q.to_string())?;
                    write_value(&period, &p.to_string())?;
                } else {
                    write_value(&quota, &q.to_string())?;
                }
            }
            (Some(p), None) => write_value(&period, &p.to_string())?,
            (None, Some(q)) => write_value(&quota, &q.to_string())?,
            (None, None) => {}
        }
        Ok(())
    }

    fn update_blkio(&self, dir: &Path, l: &CgroupLimits) -> Result<(), CgroupError> {
        if let Some(w) = l.blkio_weight {
            let file = first_existing(dir, &["blkio.weight", "blkio.bfq.weight"])
                .unwrap_or_else(|| dir.join("blkio.weight"));
            write_value(&file, &w.to_string())?;
        }
        for w in &l.blkio_weight_device {
            let file = first_existing(dir, &["blkio.weight_device", "blkio.bfq.weight_device"])
                .unwrap_or_else(|| dir.join("blkio.weight_device"));
            write_value(&file, &format!("{}:{} {}", w.major, w.minor, w.weight))?;
        }
        for t in &l.blkio_throttle {
            write_value(
                &dir.join(t.kind.v1_file()),
                &format!("{}:{} {}", t.major, t.minor, t.rate),
            )?;
        }
        Ok(())
    }
}

impl CgroupBackend for V1Layout {
    fn cpu_usage(&self, parent: &str, id: &str) -> Result<u64, CgroupError> {
        let dir = self
            .dir("cpuacct", parent, id)
            .ok_or_else(|| CgroupError::NotFound {
                parent: parent.to_string(),
                id: id.to_string(),
            })?;
        match read_u64(&dir.join("cpuacct.usage"))? {
            Some(v) => Ok(v),
            None => Err(CgroupError::NotFound {
                parent: parent.to_string(),
                id: id.to_string(),
            }),
        }
    }

    fn update(&self, parent: &str, id: &str, l: &CgroupLimits) -> Result<(), CgroupError> {
        let memory_touched = l.memory.is_some()
            || l.memory_swap.is_some()
            || l.memory_reservation.is_some()
            || l.memory_swappiness.is_some()
            || l.oom_kill_disable.is_some();
        let dir = |c: &str| -> Result<PathBuf, CgroupError> {
            let d = self
                .dir(c, parent, id)
                .ok_or_else(|| CgroupError::NotFound {
                    parent: parent.to_string(),
                    id: id.to_string(),
                })?;
            require_dir(&d, parent, id)?;
            Ok(d)
        };
        if memory_touched {
            self.update_memory(&dir("memory")?, l)?;
        }
        if l.cpu_shares.is_some() || l.cpu_period.is_some() || l.cpu_quota.is_some() {
            self.update_cpu(&dir("cpu")?, l)?;
        }
        if l.cpuset_cpus.is_some() || l.cpuset_mems.is_some() {
            let d = dir("cpuset")?;
            if let Some(v) = &l.cpuset_cpus {
                write_value(&d.join("cpuset.cpus"), v)?;
            }
            if let Some(v) = &l.cpuset_mems {
                write_value(&d.join("cpuset.mems"), v)?;
            }
        }
        if let Some(v) = l.pids_limit {
            let value = if v <= 0 {
                "max".to_string()
            } else {
                v.to_string()
            };
            write_value(&dir("pids")?.join("pids.max"), &value)?;
        }
        if l.blkio_weight.is_some()
            || !l.blkio_weight_device.is_empty()
            || !l.blkio_throttle.is_empty()
        {
            self.update_blkio(&dir("blkio")?, l)?;
        }
        Ok(())
    }

    fn support(&self) -> CgroupSupport {
        let root = |c: &str| self.controllers.get(c);
        let has = |c: &str, f: &str| root(c).is_some_and(|r| r.join(f).exists());
        let read = |c: &str, f: &str| {
            root(c)
                .and_then(|r| std::fs::read_to_string(r.join(f)).ok())
                .map(|s| s.trim().to_string())
        };
        let (cpus, mems) = (read("cpuset", "cpuset.cpus"), read("cpuset", "cpuset.mems"));
        CgroupSupport {
            memory_limit: root("memory").is_some(),
            swap_limit: has("memory", "memory.memsw.limit_in_bytes"),
            memory_reservation: has("memory", "memory.soft_limit_in_bytes"),
            oom_kill_disable: has("memory", "memory.oom_control"),
            memory_swappiness: has("memory", "memory.swappiness"),
            cpu_shares: has("cpu", "cpu.shares"),
            cpu_cfs: has("cpu", "cpu.cfs_period_us") && has("cpu", "cpu.cfs_quota_us"),
            cpuset: cpus.is_some() && mems.is_some(),
            cpus: cpus.unwrap_or_default(),
            mems: mems.unwrap_or_default(),
            pids_limit: root("pids").is_some(),
            blkio_weight: has("blkio", "blkio.weight") || has("blkio", "blkio.bfq.weight"),
            blkio_weight_device: has("blkio", "blkio.weight_device")
                || has("blkio", "blkio.bfq.weight_device"),
            blkio_read_bps_device: has("blkio", "blkio.throttle.read_bps_device"),
            blkio_write_bps_device: has("blkio", "blkio.throttle.write_bps_device"),
            blkio_read_iops_device: has("blkio", "blkio.throttle.read_iops_device"),
            blkio_write_iops_device: has("blkio", "blkio.throttle.write_iops_device"),
        }
    }

    fn oom_watch(&self, parent: &str, id: &str) -> Option<OomWatch> {
        Some(OomWatch {
            version: 1,
            dir: self.dir("memory", parent, id)?,
        })
    }

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

        // The throttle files count I/O on every scheduler; the CFQ ones only on CFQ.
        let entries = |name: &str| -> Result<Vec<BlkioEntry>, CgroupError> {
            let throttle = read_optional(&file("blkio", &format!("blkio.throttle.{name}")))?
                .unwrap_or_default();
            let e = blkio_entries(&throttle);
            if !e.is_empty() {
                return Ok(e);
            }
            Ok(blkio_entries(
                &read_optional(&file("blkio", &format!("blkio.{name}")))?.unwrap_or_default(),
            ))
        };
        s.blkio = entries("io_service_bytes_recursive")?;
        s.blkio_serviced = entries("io_serviced_recursive")?;
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
        assert_eq!(
            s.blkio.len(),
            6,
            "every op of every device, not the Total line"
        );
        assert_eq!(s.blkio[0].op, "Read", "spelt as the kernel spells it");
    }

    #[test]
    fn stats_of_a_missing_container_are_not_found() {
        let root = fixture();
        assert!(matches!(
            layout(root.path()).stats("/berth", "zzz"),
            Err(CgroupError::NotFound { .. })
        ));
    }

    fn read(root: &Path, rel: &str) -> String {
        std::fs::read_to_string(root.join(rel)).unwrap()
    }

    #[test]
    fn update_writes_every_v1_file_it_is_given() {
        let root = fixture();
        let r = root.path();
        let c = "berth/abc";
        write(
            r,
            &format!("memory/{c}/memory.limit_in_bytes"),
            "67108864\n",
        );
        write(
            r,
            &format!("memory/{c}/memory.memsw.limit_in_bytes"),
            "134217728\n",
        );
        write(r, &format!("cpuset/{c}/cpuset.cpus"), "0-1\n");
        write(r, &format!("blkio/{c}/blkio.bfq.weight"), "100\n");
        let limits = CgroupLimits {
            memory: Some(256 << 20),
            memory_swap: Some(512 << 20),
            memory_reservation: Some(64 << 20),
            oom_kill_disable: Some(true),
            cpu_shares: Some(512),
            cpu_period: Some(100_000),
            cpu_quota: Some(50_000),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(0),
            blkio_weight: Some(300),
            blkio_throttle: vec![crate::cgroups::DeviceThrottle {
                major: 8,
                minor: 0,
                kind: crate::cgroups::ThrottleKind::WriteIops,
                rate: 100,
            }],
            ..Default::default()
        };
        layout(r).update("/berth", "abc", &limits).unwrap();
        assert_eq!(
            read(r, &format!("memory/{c}/memory.limit_in_bytes")),
            "268435456"
        );
        assert_eq!(
            read(r, &format!("memory/{c}/memory.memsw.limit_in_bytes")),
            "536870912"
        );
        assert_eq!(
            read(r, &format!("memory/{c}/memory.soft_limit_in_bytes")),
            "67108864"
        );
        assert_eq!(read(r, &format!("memory/{c}/memory.oom_control")), "1");
        assert_eq!(read(r, &format!("cpu/{c}/cpu.shares")), "512");
        assert_eq!(read(r, &format!("cpu/{c}/cpu.cfs_period_us")), "100000");
        assert_eq!(read(r, &format!("cpu/{c}/cpu.cfs_quota_us")), "50000");
        assert_eq!(read(r, &format!("cpuset/{c}/cpuset.cpus")), "0");
        assert_eq!(read(r, &format!("pids/{c}/pids.max")), "max");
        assert_eq!(read(r, &format!("blkio/{c}/blkio.bfq.weight")), "300");
        assert_eq!(
            read(r, &format!("blkio/{c}/blkio.throttle.write_iops_device")),
            "8:0 100"
        );
    }

    #[test]
    fn lifting_the_memory_limit_lifts_swap_too() {
        let root = fixture();
        let r = root.path();
        write(
            r,
            "memory/berth/abc/memory.memsw.limit_in_bytes",
            "134217728\n",
        );
        let limits = CgroupLimits {
            memory: Some(-1),
            ..Default::default()
        };
        layout(r).update("/berth", "abc", &limits).unwrap();
        assert_eq!(
            read(r, "memory/berth/abc/memory.memsw.limit_in_bytes"),
            "-1"
        );
        assert_eq!(read(r, "memory/berth/abc/memory.limit_in_bytes"), "-1");
    }

    #[test]
    fn update_of_a_missing_container_is_not_found_and_writes_nothing() {
        let root = fixture();
        let limits = CgroupLimits {
            pids_limit: Some(10),
            ..Default::default()
        };
        assert!(matches!(
            layout(root.path()).update("/berth", "zzz", &limits),
            Err(CgroupError::NotFound { .. })
        ));
        assert!(!root.path().join("pids/berth/zzz").exists());
    }

    #[test]
    fn support_follows_the_files_at_each_hierarchy_root() {
        let root = fixture();
        let r = root.path();
        let s = layout(r).support();
        assert!(s.memory_limit && s.pids_limit);
        assert!(!s.swap_limit && !s.cpu_shares && !s.blkio_weight && !s.cpuset);
        for f in [
            "memory/memory.memsw.limit_in_bytes",
            "memory/memory.oom_control",
            "cpu/cpu.shares",
            "cpu/cpu.cfs_period_us",
            "cpu/cpu.cfs_quota_us",
            "blkio/blkio.throttle.read_bps_device",
        ] {
            write(r, f, "");
        }
        write(r, "cpuset/cpuset.cpus", "0-3\n");
        write(r, "cpuset/cpuset.mems", "0\n");
        let s = layout(r).support();
        assert!(s.swap_limit && s.oom_kill_disable && s.cpu_shares && s.cpu_cfs);
        assert!(s.blkio_read_bps_device && !s.blkio_write_bps_device && !s.blkio_weight);
        assert!(s.cpuset);
        assert_eq!((s.cpus.as_str(), s.mems.as_str()), ("0-3", "0"));
    }

    #[test]
    fn oom_kills_are_watched_in_the_memory_hierarchy() {
        let root = fixture();
        let w = layout(root.path()).oom_watch("/berth", "abc").unwrap();
        assert_eq!(w.version, 1);
        assert_eq!(w.dir, root.path().join("memory/berth/abc"));
        assert_eq!(w.to_arg(), format!("v1:{}", w.dir.display()));
    }

    #[test]
    fn cpu_usage_is_one_read_of_cpuacct() {
        let root = fixture();
        assert_eq!(
            layout(root.path()).cpu_usage("/berth", "abc").unwrap(),
            123_456_789
        );
    }
}
