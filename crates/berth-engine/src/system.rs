//! `docker info` and `docker version`: what the daemon knows about itself and the host.

use crate::Engine;
use chrono::{DateTime, Utc};

/// The facts `info` reports; the API fills Docker's wire model from them.
#[derive(Debug, Clone)]
pub struct SystemFacts {
    pub containers: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
    pub images: usize,
    pub storage_driver: String,
    pub backing_filesystem: String,
    pub logging_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub runtimes: Vec<(String, String)>,
    pub default_runtime: String,
    pub kernel_version: String,
    pub operating_system: String,
    pub os_type: String,
    pub architecture: String,
    pub ncpu: usize,
    pub mem_total: i64,
    pub data_root: String,
    pub exec_root: String,
    pub hostname: String,
    pub init_binary: String,
    pub started_at: DateTime<Utc>,
    pub warnings: Vec<String>,
}

fn os_pretty_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".to_string())
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|n| n.parse::<i64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

impl Engine {
    pub fn system_facts(&self) -> SystemFacts {
        let all = self.containers.all().len();
        let (running, paused, stopped) = self.containers.count_by_status();
        let uname = rustix::system::uname();
        let layout =
            berth_runtime::cgroups::CgroupLayout::detect(std::path::Path::new("/sys/fs/cgroup"));
        SystemFacts {
            containers: all,
            running,
            paused,
            stopped,
            images: self.images.all().len(),
            storage_driver: self.storage.driver_name().to_string(),
            backing_filesystem: "extfs".to_string(),
            logging_driver: self.cfg.log_driver.clone(),
            cgroup_driver: "cgroupfs".to_string(),
            cgroup_version: layout
                .map(|l| l.version_string().to_string())
                .unwrap_or_default(),
            runtimes: self
                .runtimes
                .names()
                .map(|(n, r)| (n.to_string(), r.path.display().to_string()))
                .collect(),
            default_runtime: self.runtimes.default_name().to_string(),
            kernel_version: uname.release().to_string_lossy().into_owned(),
            operating_system: os_pretty_name(),
            os_type: "linux".to_string(),
            architecture: std::env::consts::ARCH.to_string(),
            ncpu: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            mem_total: mem_total(),
            data_root: self.cfg.data_root.display().to_string(),
            exec_root: self.cfg.exec_root.display().to_string(),
            hostname: uname.nodename().to_string_lossy().into_owned(),
            init_binary: self
                .cfg
                .init_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            started_at: self.started_at,
            warnings: Vec::new(),
        }
    }
}
