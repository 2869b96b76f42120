//! Networks and endpoints as the engine keeps them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DRIVER_BRIDGE: &str = "bridge";
pub const DRIVER_HOST: &str = "host";
pub const DRIVER_NULL: &str = "null";
/// The predefined networks' names.
pub const DEFAULT_BRIDGE: &str = "bridge";
pub const HOST: &str = "host";
pub const NONE: &str = "none";

pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";

/// One network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub created: Option<DateTime<Utc>>,
    pub internal: bool,
    pub attachable: bool,
    /// `a.b.c.d/n`; empty for host and none.
    pub subnet: String,
    pub gateway: String,
    pub ip_range: String,
    /// The Linux bridge (bridge driver).
    pub bridge: String,
    pub mtu: u32,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// `bridge`, `host`, `none`: made by the daemon, never removed.
    pub builtin: bool,
    /// Created with `--subnet`: only then may containers ask for a static `--ip`.
    pub user_subnet: bool,
}

impl Network {
    /// User-defined bridge networks get the embedded DNS; the default bridge does not.
    pub fn has_dns(&self) -> bool {
        self.driver == DRIVER_BRIDGE && !self.builtin
    }
}

/// What a container asked for on one network (`--network`, `--ip`, `--network-alias`,
/// `network connect`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointRequest {
    pub aliases: Vec<String>,
    pub ipv4_address: String,
    pub mac_address: String,
    pub links: Vec<String>,
}

/// A container's endpoint on a network while it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    pub endpoint_id: String,
    pub ip: String,
    pub prefix_len: u8,
    pub gateway: String,
    pub mac: String,
    /// `eth0`, `eth1`, ...
    pub ifname: String,
    /// The host side of the veth pair.
    pub host_ifname: String,
    pub dns_names: Vec<String>,
}

/// One network of a container: the request, and the endpoint while running.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attachment {
    pub network_id: String,
    pub request: EndpointRequest,
    pub endpoint: Option<Endpoint>,
}

/// A published port while the container runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PublishedPort {
    /// `80/tcp`.
    pub container_port: String,
    pub host_ip: String,
    pub host_port: u16,
}

/// A container's networking.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerNetworks {
    /// By network name, in the order they were added (the first is the primary one).
    pub attachments: Vec<(String, Attachment)>,
    /// The network namespace file while running (bridge-like modes).
    pub sandbox_key: String,
    /// Docker's `SandboxID`: names the namespace while it exists.
    pub sandbox_id: String,
    pub ports: Vec<PublishedPort>,
}

impl ContainerNetworks {
    pub fn get(&self, name: &str) -> Option<&Attachment> {
        self.attachments
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
    }
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Attachment> {
        self.attachments
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
    }
}
