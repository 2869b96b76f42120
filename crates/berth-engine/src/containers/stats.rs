//! `docker stats`: a container's cgroup figures, its network counters (read from its network
//! namespace through `/proc/<pid>/net/dev`) and a CPU delta.
//!
//! Docker answers `stream=false` after taking two samples a second apart. berth keeps the
//! last CPU sample of every running container instead ([`CpuSamples`], refreshed once a
//! second by a task that reads one cgroup file per container), so a one-off request is
//! answered at once with a delta over the last second. A streaming request sends a sample
//! a second, each with the previous one as its `precpu`.

use super::ContainerEntry;
use crate::Engine;
use berth_core::container::Status;
use berth_core::Result;
pub use berth_runtime::cgroups::BlkioEntry;
use berth_runtime::CgroupBackend;
pub use berth_runtime::CgroupStats;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const SAMPLE_PERIOD: Duration = Duration::from_secs(1);
/// A kept sample younger than this gives too small a delta; a fresh pair is taken instead.
const MIN_DELTA: Duration = Duration::from_millis(50);
/// The pause between the two samples taken when no kept sample is usable.
const QUICK_DELTA: Duration = Duration::from_millis(100);

/// CPU time of a container and of the host at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSample {
    pub at: DateTime<Utc>,
    pub usage_ns: u64,
    pub system_ns: u64,
    pub online_cpus: u32,
}

/// The last CPU sample of each running container, by id.
#[derive(Default)]
pub struct CpuSamples {
    inner: Mutex<HashMap<String, CpuSample>>,
}

impl CpuSamples {
    fn get(&self, id: &str) -> Option<CpuSample> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    fn replace_all(&self, samples: HashMap<String, CpuSample>) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = samples;
    }
}

/// Counters of one network interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDevStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// One stats sample of a container; `cgroup` is `None` for a container that is not running
/// (Docker then sends zeros).
#[derive(Debug, Clone, Default)]
pub struct ContainerStats {
    pub id: String,
    pub name: String,
    pub read: Option<DateTime<Utc>>,
    pub cgroup: Option<CgroupStats>,
    /// The CPU sample the delta is taken against (`precpu_stats`).
    pub pre: Option<CpuSample>,
    /// The host's memory, the limit Docker shows for a container without one.
    pub host_memory: u64,
    /// Interfaces of the container's network namespace (`lo` left out), sorted by name.
    pub networks: Vec<(String, NetDevStats)>,
}

/// What `GET /containers/{id}/stats` asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatsOptions {
    pub stream: bool,
    /// With `stream=false`: one sample without a CPU delta.
    pub one_shot: bool,
}

/// Parses `/proc/<pid>/net/dev`, leaving out `lo`.
pub fn parse_net_dev(text: &str) -> Vec<(String, NetDevStats)> {
    let mut out: Vec<(String, NetDevStats)> = text
        .lines()
        .skip(2)
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let v: Vec<u64> = rest
                .split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            if v.len() < 12 {
                return None;
            }
            Some((
                name.to_string(),
                NetDevStats {
                    rx_bytes: v[0],
                    rx_packets: v[1],
                    rx_errors: v[2],
                    rx_dropped: v[3],
                    tx_bytes: v[8],
                    tx_packets: v[9],
                    tx_errors: v[10],
                    tx_dropped: v[11],
                },
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn host_memory() -> u64 {
    static TOTAL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(read_host_memory)
}

fn read_host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// What the sampler and a stats request need to know of a container.
struct Target {
    id: String,
    name: String,
    parent: String,
    pid: i64,
    running: bool,
    host_network: bool,
}

impl Engine {
    fn stats_target(&self, entry: &ContainerEntry) -> Target {
        entry.read(|c| Target {
            id: c.id.clone(),
            name: c.name.clone(),
            parent: self.cgroup_parent_of(c),
            pid: c.state.pid,
            running: c.state.status == Status::Running || c.state.status == Status::Paused,
            host_network: c.host_config.network_mode == "host",
        })
    }

    /// The cgroup parent a container's cgroups live under.
    pub(crate) fn cgroup_parent_of(&self, c: &berth_core::container::Container) -> String {
        if c.host_config.resources.cgroup_parent.is_empty() {
            self.cfg.cgroup_parent.clone()
        } else {
            c.host_config.resources.cgroup_parent.clone()
        }
    }

    /// A CPU sample of one container now.
    fn cpu_sample(&self, parent: &str, id: &str) -> Option<CpuSample> {
        let layout = self.cgroups.as_ref()?;
        let usage_ns = layout.cpu_usage(parent, id).ok()?;
        let (system_ns, online_cpus) =
            berth_runtime::cgroups::system_cpu(Path::new("/proc/stat")).ok()?;
        Some(CpuSample {
            at: Utc::now(),
            usage_ns,
            system_ns,
            online_cpus,
        })
    }

    /// Refreshes [`CpuSamples`] every second while containers run.
    pub(crate) fn spawn_cpu_sampler(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(engine) = weak.upgrade() else { return };
                let targets: Vec<(String, String)> = engine
                    .containers
                    .all()
                    .iter()
                    .filter_map(|e| {
                        let t = engine.stats_target(e);
                        t.running.then_some((t.id, t.parent))
                    })
                    .collect();
                if targets.is_empty() {
                    engine.cpu_samples.replace_all(HashMap::new());
                    continue;
                }
                let e2 = engine.clone();
                let samples = tokio::task::spawn_blocking(move || {
                    let Some(layout) = e2.cgroups.as_ref() else {
                        return HashMap::new();
                    };
                    let Ok((system_ns, online_cpus)) =
                        berth_runtime::cgroups::system_cpu(Path::new("/proc/stat"))
                    else {
                        return HashMap::new();
                    };
                    let at = Utc::now();
                    targets
                        .into_iter()
                        .filter_map(|(id, parent)| {
                            let usage_ns = layout.cpu_usage(&parent, &id).ok()?;
                            Some((
                                id,
                                CpuSample {
                                    at,
                                    usage_ns,
                                    system_ns,
                                    online_cpus,
                                },
                            ))
                        })
                        .collect()
                })
                .await
                .unwrap_or_default();
                engine.cpu_samples.replace_all(samples);
            }
        });
    }

    /// One full sample (blocking: reads cgroup and proc files).
    fn sample(&self, t: &Target, pre: Option<CpuSample>) -> ContainerStats {
        let mut s = ContainerStats {
            id: t.id.clone(),
            name: t.name.clone(),
            pre,
            host_memory: host_memory(),
            ..Default::default()
        };
        if !t.running {
            return s;
        }
        s.read = Some(Utc::now());
        s.cgroup = self
            .cgroups
            .as_ref()
            .and_then(|l| l.stats(&t.parent, &t.id).ok());
        if !t.host_network && t.pid > 0 {
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{}/net/dev", t.pid)) {
                s.networks = parse_net_dev(&text);
            }
        }
        s
    }

    /// `GET /containers/{id}/stats`: one sample (`stream=false`) or one a second.
    pub fn container_stats(
        self: &Arc<Self>,
        name: &str,
        opts: StatsOptions,
    ) -> Result<mpsc::Receiver<ContainerStats>> {
        let entry = self.container(name)?;
        let (tx, rx) = mpsc::channel(2);
        let engine = self.clone();
        tokio::spawn(async move {
            let mut pre: Option<CpuSample> = None;
            let mut first = true;
            loop {
                let t = engine.stats_target(&entry);
                // A one-shot single sample goes without a delta, as in Docker.
                let wants_delta = opts.stream || !opts.one_shot;
                if first && t.running && wants_delta {
                    pre = engine
                        .cpu_samples
                        .get(&t.id)
                        .filter(|p| (Utc::now() - p.at).to_std().unwrap_or_default() >= MIN_DELTA);
                    if pre.is_none() {
                        let (e, parent, id) = (engine.clone(), t.parent.clone(), t.id.clone());
                        pre = tokio::task::spawn_blocking(move || e.cpu_sample(&parent, &id))
                            .await
                            .ok()
                            .flatten();
                        tokio::time::sleep(QUICK_DELTA).await;
                    }
                }
                first = false;
                let e = engine.clone();
                let stats = tokio::task::spawn_blocking(move || e.sample(&t, pre)).await;
                let Ok(stats) = stats else { return };
                pre = stats.cgroup.as_ref().map(|c| CpuSample {
                    at: stats.read.unwrap_or_else(Utc::now),
                    usage_ns: c.cpu_usage_ns,
                    system_ns: c.system_cpu_ns,
                    online_cpus: c.online_cpus,
                });
                if tx.send(stats).await.is_err() || !opts.stream {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(SAMPLE_PERIOD) => {}
                    _ = tx.closed() => return,
                }
                if entry.read(|c| c.state.status == Status::Removing)
                    || engine.container(&entry.id()).is_err()
                {
                    return;
                }
            }
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_lists_interfaces_without_lo() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
 lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
 eth0:    1500      10    1    2    0     0          0         0      700       7    3    4    0     0       0          0\n";
        let n = parse_net_dev(text);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].0, "eth0");
        assert_eq!(
            n[0].1,
            NetDevStats {
                rx_bytes: 1500,
                rx_packets: 10,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 700,
                tx_packets: 7,
                tx_errors: 3,
                tx_dropped: 4,
            }
        );
    }
}
