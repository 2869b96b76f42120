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
    /// What the host's cgroups can enforce (`MemoryLimit`, `SwapLimit`, ...).
    pub cgroup_support: berth_runtime::CgroupSupport,
    pub ipv4_forwarding: bool,
    /// Logging drivers this daemon has.
    pub log_drivers: Vec<String>,
    pub warnings: Vec<String>,
    /// `insecure-registries` as configured (hosts and CIDRs).
    pub insecure_registries: Vec<String>,
    /// `registry-mirrors` (Docker Hub's).
    pub registry_mirrors: Vec<String>,
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
        let cgroup_version = self
            .cgroups
            .as_ref()
            .map(|l| l.version_string().to_string())
            .unwrap_or_default();
        let ipv4_forwarding =
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|s| s.trim() == "1");
        let mut warnings = self.cgroup_support.info_warnings(&cgroup_version);
        if !ipv4_forwarding {
            warnings.push("WARNING: IPv4 forwarding is disabled".to_string());
        }
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
            cgroup_version,
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
            cgroup_support: self.cgroup_support.clone(),
            ipv4_forwarding,
            log_drivers: crate::containers::log_config::DRIVERS
                .iter()
                .map(|d| d.to_string())
                .collect(),
            warnings,
            insecure_registries: self.cfg.insecure_registries.clone(),
            registry_mirrors: self.cfg.registry_mirrors.clone(),
        }
    }
}

/// `docker system df`: sizes of images, containers and volumes.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    /// Bytes of all layers in storage.
    pub layers_size: i64,
    /// Each image with its shared size (bytes in layers other images use too) and the
    /// number of containers using it.
    pub images: Vec<(berth_core::image::Image, i64, i64)>,
    /// Each container with the size of its writable layer and of its whole rootfs.
    pub containers: Vec<(std::sync::Arc<berth_core::container::Container>, i64, i64)>,
    /// Each volume with its size and the number of containers using it.
    pub volumes: Vec<(berth_core::volume::Volume, i64, i64)>,
}

impl Engine {
    pub async fn disk_usage(self: &std::sync::Arc<Self>) -> berth_core::Result<DiskUsage> {
        let engine = self.clone();
        Self::blocking(move || {
            let mut du = DiskUsage::default();
            let layers = engine.storage.layers();
            du.layers_size = layers.iter().map(|l| l.size as i64).sum();
            let sizes: std::collections::HashMap<_, _> = layers
                .iter()
                .map(|l| (l.chain_id.clone(), l.size as i64))
                .collect();
            let images = engine.images.all();
            let mut uses: std::collections::HashMap<berth_core::Digest, usize> =
                std::collections::HashMap::new();
            for img in &images {
                for c in crate::images::chain_ids(&img.config) {
                    *uses.entry(c).or_insert(0) += 1;
                }
            }
            let usage = engine.containers.image_usage();
            for img in images {
                let shared: i64 = crate::images::chain_ids(&img.config)
                    .iter()
                    .filter(|c| uses.get(*c).copied().unwrap_or(0) > 1)
                    .map(|c| sizes.get(c).copied().unwrap_or(0))
                    .sum();
                let n = usage.get(&img.id.to_string()).copied().unwrap_or(0);
                du.images.push((img, shared, n));
            }
            for e in engine.containers.all() {
                let c = e.snapshot();
                let rw = engine.storage.rw_size(&c.layer_key).unwrap_or(0) as i64;
                let img = c
                    .image_id
                    .parse()
                    .ok()
                    .and_then(|d| engine.images.by_id(&d))
                    .map(|i| i.size)
                    .unwrap_or(0);
                du.containers.push((c, rw, rw + img));
            }
            for v in engine.volumes.all() {
                let size = crate::volumes::dir_size(std::path::Path::new(&v.mountpoint)) as i64;
                let refs = engine.volume_users(&v.name).len() as i64;
                du.volumes.push((v, size, refs));
            }
            Ok(du)
        })
        .await
    }
}
