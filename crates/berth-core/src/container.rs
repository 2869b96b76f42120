//! What a container is to the engine: the configuration the user asked for (already merged
//! with the image's defaults), the host settings, and its runtime state.
//!
//! These types are stored in the state database as they are (serde, berth's own format) and
//! converted to and from the Docker wire models in the API crate.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The portable part of a container's configuration (Docker's `Config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// `80/tcp`, `53/udp`.
    pub exposed_ports: BTreeSet<String>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub healthcheck: Option<HealthConfig>,
    pub args_escaped: bool,
    /// The image as the user named it.
    pub image: String,
    pub volumes: BTreeSet<String>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub network_disabled: bool,
    pub mac_address: String,
    pub on_build: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub shell: Option<Vec<String>>,
}

/// Health check settings; durations in nanoseconds as Docker stores them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disabled, `["CMD", args...]`, `["CMD-SHELL", cmd]`.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub retries: i64,
    pub start_period: i64,
    pub start_interval: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicyName {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure,
}

impl RestartPolicyName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Always => "always",
            Self::UnlessStopped => "unless-stopped",
            Self::OnFailure => "on-failure",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestartPolicy {
    pub name: RestartPolicyName,
    pub maximum_retry_count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// Empty means the daemon's default driver.
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: u64,
}

/// Resource limits (cgroups); zero means "not set", as in Docker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub cgroup_parent: String,
    pub cpu_shares: i64,
    pub memory: i64,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub memory_swappiness: Option<i64>,
    pub kernel_memory: i64,
    pub nano_cpus: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub blkio_weight: u16,
    pub blkio_weight_device: Vec<WeightDevice>,
    pub blkio_device_read_bps: Vec<ThrottleDevice>,
    pub blkio_device_write_bps: Vec<ThrottleDevice>,
    pub blkio_device_read_iops: Vec<ThrottleDevice>,
    pub blkio_device_write_iops: Vec<ThrottleDevice>,
    pub devices: Vec<DeviceMapping>,
    pub device_cgroup_rules: Vec<String>,
    pub oom_kill_disable: Option<bool>,
    pub pids_limit: Option<i64>,
    pub ulimits: Vec<Ulimit>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    #[default]
    Bind,
    Volume,
    Tmpfs,
}

/// A `--mount` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountSpec {
    pub typ: MountType,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub consistency: String,
    pub bind_propagation: String,
    pub bind_create_mountpoint: bool,
    pub volume_no_copy: bool,
    pub volume_labels: BTreeMap<String, String>,
    pub volume_driver: String,
    pub volume_options: BTreeMap<String, String>,
    pub tmpfs_size: i64,
    pub tmpfs_mode: u32,
}

/// The host-specific part of a container's configuration (Docker's `HostConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostConfig {
    pub binds: Vec<String>,
    pub container_id_file: String,
    pub log_config: LogConfig,
    pub network_mode: String,
    /// `80/tcp` → bindings.
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub volume_driver: String,
    pub volumes_from: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub cgroupns_mode: String,
    pub dns: Vec<String>,
    pub dns_options: Vec<String>,
    pub dns_search: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub group_add: Vec<String>,
    pub ipc_mode: String,
    pub cgroup: String,
    pub links: Vec<String>,
    pub oom_score_adj: i64,
    pub pid_mode: String,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Vec<String>,
    pub storage_opt: BTreeMap<String, String>,
    pub tmpfs: BTreeMap<String, String>,
    pub uts_mode: String,
    pub userns_mode: String,
    pub shm_size: i64,
    pub sysctls: BTreeMap<String, String>,
    pub runtime: String,
    pub isolation: String,
    pub resources: Resources,
    pub mounts: Vec<MountSpec>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    pub init: Option<bool>,
    pub console_size: Option<[u16; 2]>,
}

/// The lifecycle state a container is in; the strings are Docker's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "exited" => Self::Exited,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthLogEntry {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// `starting`, `healthy`, `unhealthy`.
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<HealthLogEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub status: Status,
    pub oom_killed: bool,
    pub dead: bool,
    /// Host pid of the container's init while it runs, else 0.
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub health: Option<Health>,
}

impl State {
    /// Running or paused: there is a live process.
    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused)
    }
}

/// A mount point as inspect shows it (`Mounts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountPoint {
    pub typ: MountType,
    pub name: String,
    pub source: String,
    pub destination: String,
    pub driver: String,
    pub mode: String,
    pub rw: bool,
    pub propagation: String,
}

/// One container as the engine keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Container {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: Option<DateTime<Utc>>,
    /// The resolved command: entrypoint + cmd, first element.
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// `sha256:...` of the image config.
    pub image_id: String,
    pub state: State,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    /// Name of the OCI runtime that runs it (`runc`, `crun`).
    pub runtime: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    pub log_path: String,
    pub has_been_started: bool,
    pub has_been_manually_stopped: bool,
    pub mounts: Vec<MountPoint>,
    /// Storage key of the container's writable layer.
    pub layer_key: String,
    /// Chain id of the image layer the writable layer sits on (kept even if the image is
    /// deleted, so the layers stay until the container goes).
    pub parent_chain: String,
    /// Ids of exec instances that belong to it.
    pub exec_ids: Vec<String>,
    /// Networks (bridge-like modes), their endpoints while running, published ports.
    pub networks: crate::network::ContainerNetworks,
}

impl Container {
    pub fn short_id(&self) -> &str {
        crate::id::short(&self.id)
    }
}

/// A short human description of a container's status as `ps` prints it
/// (`Up 3 minutes`, `Exited (0) 2 seconds ago`, `Created`).
pub fn describe_status(state: &State, now: DateTime<Utc>) -> String {
    let ago = |t: Option<DateTime<Utc>>| {
        t.map(|t| crate::event::human_duration(now - t))
            .unwrap_or_default()
    };
    match state.status {
        Status::Running => {
            let mut s = format!("Up {}", ago(state.started_at));
            if let Some(h) = &state.health {
                match h.status.as_str() {
                    "starting" => s.push_str(" (health: starting)"),
                    "" => {}
                    other => s.push_str(&format!(" ({other})")),
                }
            }
            s
        }
        Status::Paused => format!("Up {} (Paused)", ago(state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            state.exit_code,
            ago(state.finished_at)
        ),
        Status::Removing => "Removal In Progress".to_string(),
        Status::Dead => "Dead".to_string(),
        Status::Created => "Created".to_string(),
        Status::Exited => {
            if state.finished_at.is_none() {
                format!("Exited ({})", state.exit_code)
            } else {
                format!(
                    "Exited ({}) {} ago",
                    state.exit_code,
                    ago(state.finished_at)
                )
            }
        }
    }
}
