//! The Compose Specification as Rust types, each key in one canonical form.
//!
//! Every struct refuses keys it does not know (`deny_unknown_fields`; `x-` extensions are
//! removed before reading). Fields with several YAML shapes read through [`crate::de`] and
//! serialize their canonical shape, so a value survives a round trip through JSON: that is
//! how files are merged ([`crate::merge`]) and how `config` prints the resolved project.

use crate::de::{self, Duration};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

fn is_false(b: &bool) -> bool {
    !*b
}

/// One compose file, or the merge of several: what `config` prints.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeFile {
    /// Accepted and ignored, as the specification says.
    #[serde(default, skip_serializing, deserialize_with = "de::opt_string")]
    pub version: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub name: Option<String>,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::map_of_optional"
    )]
    pub networks: BTreeMap<String, NetworkConfig>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::map_of_optional"
    )]
    pub volumes: BTreeMap<String, VolumeConfig>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::map_of_optional"
    )]
    pub secrets: BTreeMap<String, FileObject>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::map_of_optional"
    )]
    pub configs: BTreeMap<String, FileObject>,
}

/// A service: how to make and run its containers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The file that defined the service (for error messages; not part of the config).
    #[serde(skip)]
    pub source_file: String,

    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub image: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "build"
    )]
    pub build: Option<Build>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::command"
    )]
    pub command: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::command"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::env_map"
    )]
    pub environment: BTreeMap<String, Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "env_files"
    )]
    pub env_file: Vec<EnvFile>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::short::ports"
    )]
    pub ports: Vec<PortConfig>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub expose: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::short::volumes"
    )]
    pub volumes: Vec<ServiceVolume>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub volumes_from: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "service_networks"
    )]
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub network_mode: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "depends_on"
    )]
    pub depends_on: BTreeMap<String, Dependency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub restart: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub container_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub hostname: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub domainname: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub working_dir: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub user: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bytes"
    )]
    pub shm_size: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub tmpfs: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "ulimits"
    )]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub cap_add: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub cap_drop: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub privileged: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub read_only: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bytes"
    )]
    pub mem_limit: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bytes"
    )]
    pub mem_reservation: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i64"
    )]
    pub memswap_limit: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_f64"
    )]
    pub cpus: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i64"
    )]
    pub cpu_shares: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i64"
    )]
    pub cpu_period: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i64"
    )]
    pub cpu_quota: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub cpuset: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i64"
    )]
    pub pids_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_u64"
    )]
    pub scale: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::extra_hosts"
    )]
    pub extra_hosts: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub dns: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub dns_search: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub dns_opt: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub init: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub stdin_open: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub tty: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "extends"
    )]
    pub extends: Option<Extends>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub profiles: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub pull_policy: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub platform: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub sysctls: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub security_opt: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub devices: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub pid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub ipc: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub group_add: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub links: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub external_links: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub mac_address: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i64"
    )]
    pub oom_score_adj: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub runtime: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub userns_mode: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub cgroup_parent: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub cgroup: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub uts: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "file_refs"
    )]
    pub secrets: Vec<FileRef>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "file_refs"
    )]
    pub configs: Vec<FileRef>,
    /// Compose's `attach: false`: leave the service's output out of attached `up`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub attach: Option<bool>,
}

impl Service {
    /// How many containers the service wants: `scale`, else `deploy.replicas`, else 1.
    pub fn replicas(&self) -> u64 {
        self.scale
            .or_else(|| self.deploy.as_ref().and_then(|d| d.replicas))
            .unwrap_or(1)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Build {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub context: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub dockerfile: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub dockerfile_inline: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::env_map"
    )]
    pub args: BTreeMap<String, Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub target: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub cache_from: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub cache_to: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub network: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bytes"
    )]
    pub shm_size: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::extra_hosts"
    )]
    pub extra_hosts: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub no_cache: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub pull: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub tags: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub platforms: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub isolation: Option<String>,
}

fn build<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Build>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(context) => Ok(Some(Build {
            context: Some(context),
            ..Default::default()
        })),
        v @ serde_json::Value::Object(_) => de::from_value(v).map(Some),
        other => Err(de::expected("a path or a mapping", &other)),
    }
}

/// `env_file` entries: a path, or `{path, required}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    pub path: String,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFile>, D::Error> {
    use serde_json::Value;
    let items = match Value::deserialize(d)? {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .map(|i| match i {
            Value::String(path) => Ok(EnvFile {
                path,
                required: true,
            }),
            v @ Value::Object(_) => de::from_value(v),
            other => Err(de::expected("a path", &other)),
        })
        .collect()
}

/// One published or exposed port, in the long syntax.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub name: Option<String>,
    #[serde(deserialize_with = "port_number")]
    pub target: u16,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub published: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub host_ip: Option<String>,
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub mode: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub app_protocol: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

fn port_number<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    use serde::de::Error;
    match de::opt_u64(d)? {
        Some(n) if (1..=65535).contains(&n) => Ok(n as u16),
        Some(n) => Err(D::Error::custom(format!("invalid port {n}"))),
        None => Err(D::Error::custom("a port is required")),
    }
}

/// A mount of a service, in the long syntax.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceVolume {
    /// `bind`, `volume`, `tmpfs` (also `npipe`, `cluster`, `image`, refused at create).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub source: Option<String>,
    pub target: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub consistency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BindOptions {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub propagation: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub create_host_path: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub selinux: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VolumeOptions {
    #[serde(default, skip_serializing_if = "is_false")]
    pub nocopy: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub subpath: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TmpfsOptions {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bytes"
    )]
    pub size: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_u64"
    )]
    pub mode: Option<u64>,
}

/// A service's settings on one network.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceNetwork {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub aliases: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub ipv4_address: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub ipv6_address: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::string_list"
    )]
    pub link_local_ips: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub mac_address: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i64"
    )]
    pub priority: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i64"
    )]
    pub gw_priority: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub driver_opts: BTreeMap<String, String>,
}

fn service_networks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<ServiceNetwork>>, D::Error> {
    use serde_json::Value;
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                de::scalar(i)
                    .map(|n| (n, None))
                    .ok_or_else(|| de::expected("a network name", i))
            })
            .collect(),
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::Null => Ok((k, None)),
                v => de::from_value::<ServiceNetwork, D::Error>(v)
                    .map(|n| (k.clone(), Some(n)))
                    .map_err(|e| serde::de::Error::custom(format!("{k}: {e}"))),
            })
            .collect(),
        other => Err(de::expected("a list or a mapping", &other)),
    }
}

/// `depends_on` entries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    #[serde(default = "started")]
    pub condition: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub restart: bool,
    #[serde(default = "yes")]
    pub required: bool,
}

pub const SERVICE_STARTED: &str = "service_started";
pub const SERVICE_HEALTHY: &str = "service_healthy";
pub const SERVICE_COMPLETED: &str = "service_completed_successfully";

fn started() -> String {
    SERVICE_STARTED.into()
}

fn depends_on<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Dependency>, D::Error> {
    use serde::de::Error;
    use serde_json::Value;
    let plain = |name: String| {
        (
            name,
            Dependency {
                condition: started(),
                restart: false,
                required: true,
            },
        )
    };
    let deps: BTreeMap<String, Dependency> = match Value::deserialize(d)? {
        Value::Null => BTreeMap::new(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                de::scalar(i)
                    .map(plain)
                    .ok_or_else(|| de::expected("a service name", i))
            })
            .collect::<Result<_, _>>()?,
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::Null => Ok(plain(k)),
                v => de::from_value::<Dependency, D::Error>(v)
                    .map(|dep| (k.clone(), dep))
                    .map_err(|e| D::Error::custom(format!("{k}: {e}"))),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(de::expected("a list or a mapping", &other)),
    };
    for (name, dep) in &deps {
        if ![SERVICE_STARTED, SERVICE_HEALTHY, SERVICE_COMPLETED].contains(&dep.condition.as_str())
        {
            return Err(D::Error::custom(format!(
                "{name}: condition must be one of service_started, service_healthy, service_completed_successfully, not {:?}",
                dep.condition
            )));
        }
    }
    Ok(deps)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "health_test"
    )]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_u64"
    )]
    pub retries: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub disable: Option<bool>,
}

/// `test: curl -f x` is `["CMD-SHELL", "curl -f x"]`; a list is kept.
fn health_test<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    use serde_json::Value;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s == "NONE" => Ok(Some(vec!["NONE".into()])),
        Value::String(s) => Ok(Some(vec!["CMD-SHELL".into(), s])),
        Value::Array(items) => items
            .iter()
            .map(|i| de::scalar(i).ok_or_else(|| de::expected("a string", i)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(de::expected("a string or a list", &other)),
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

fn ulimits<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Ulimit>, D::Error> {
    use serde::de::Error;
    use serde_json::Value;
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| {
                let u = match &v {
                    Value::Number(n) => {
                        let n = n.as_i64().ok_or_else(|| de::expected("an integer", &v))?;
                        Ulimit { soft: n, hard: n }
                    }
                    Value::String(s) => {
                        let n: i64 = s
                            .parse()
                            .map_err(|_| D::Error::custom(format!("{k}: invalid limit {s:?}")))?;
                        Ulimit { soft: n, hard: n }
                    }
                    _ => de::from_value(v)
                        .map_err(|e: D::Error| D::Error::custom(format!("{k}: {e}")))?,
                };
                Ok((k, u))
            })
            .collect(),
        other => Err(de::expected("a mapping", &other)),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub driver: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub options: BTreeMap<String, String>,
}

/// `extends: service` or `extends: {service, file}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Extends {
    pub service: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub file: Option<String>,
}

fn extends<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Extends>, D::Error> {
    use serde_json::Value;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(service) => Ok(Some(Extends {
            service,
            file: None,
        })),
        v @ Value::Object(_) => de::from_value(v).map(Some),
        other => Err(de::expected("a service name or a mapping", &other)),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub mode: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_u64"
    )]
    pub replicas: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<DeployRestartPolicy>,
    /// Swarm-only settings, accepted and not used by a single engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_mode: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<ResourceSpec>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_f64"
    )]
    pub cpus: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bytes"
    )]
    pub memory: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i64"
    )]
    pub pids: Option<i64>,
    /// Device requests (GPUs); accepted, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic_resources: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeployRestartPolicy {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_u64"
    )]
    pub max_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
}

/// `external: true`, or the legacy `external: {name: x}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum External {
    Flag(bool),
    Named { name: String },
}

impl External {
    pub fn is_external(e: &Option<External>) -> bool {
        matches!(e, Some(External::Flag(true)) | Some(External::Named { .. }))
    }
}

/// A top-level network.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub driver: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<External>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub internal: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub attachable: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub enable_ipv6: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_bool"
    )]
    pub enable_ipv4: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ipam {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IpamPool {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub subnet: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub ip_range: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub gateway: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub aux_addresses: BTreeMap<String, String>,
}

/// A top-level volume.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VolumeConfig {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub driver: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<External>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: BTreeMap<String, String>,
}

/// A top-level secret or config: its content comes from a file (or the environment).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileObject {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub file: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub environment: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<External>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de::string_map"
    )]
    pub labels: BTreeMap<String, String>,
}

/// A service's use of a secret or config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    pub source: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub target: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub uid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_string"
    )]
    pub gid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_u64"
    )]
    pub mode: Option<u64>,
}

fn file_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FileRef>, D::Error> {
    use serde_json::Value;
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(source) => Ok(FileRef {
                    source,
                    ..Default::default()
                }),
                v @ Value::Object(_) => de::from_value(v),
                other => Err(de::expected("a name or a mapping", &other)),
            })
            .collect(),
        other => Err(de::expected("a list", &other)),
    }
}
