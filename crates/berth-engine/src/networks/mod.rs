//! The network service: the predefined `bridge`, `host` and `none` networks and
//! user-defined bridge networks, kept in the state database and realised with `berth-net`
//! (Linux bridges, nftables rules in berth's own table, address pools, the embedded DNS).
//!
//! [`endpoints`] connects containers to them while they run. What is kernel state
//! (bridges, rules, namespaces) survives a daemon restart; what is process state (address
//! pools, reserved host ports, DNS servers) is rebuilt at start from the containers that
//! still run.

pub mod endpoints;

use crate::Engine;
use berth_core::event::EventType;
use berth_core::filters::Filters;
use berth_core::network::{
    Network, DEFAULT_BRIDGE, DRIVER_BRIDGE, DRIVER_HOST, DRIVER_NULL, HOST, NONE, OPT_BRIDGE_NAME,
    OPT_MTU,
};
use berth_core::{id, Error, Result};
use berth_net::bridge::{BridgeConfig, BridgeDriver, DEFAULT_MTU};
use berth_net::dns::{DnsServer, DnsTable};
use berth_net::firewall::{Firewall, NetworkRules};
use berth_net::ipam::{self, AddressPool, DefaultPool, PoolConfig, Subnet};
use berth_net::ports::PortAllocator;
use chrono::Utc;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, RwLock};

/// Options Docker shows on the default bridge (`network inspect bridge`).
const OPT_DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";
const OPT_ENABLE_ICC: &str = "com.docker.network.bridge.enable_icc";
const OPT_ENABLE_MASQ: &str = "com.docker.network.bridge.enable_ip_masquerade";
const OPT_HOST_BINDING: &str = "com.docker.network.bridge.host_binding_ipv4";
/// Bridge driver options this build understands (others are refused, not ignored).
const BRIDGE_OPTIONS: &[&str] = &[
    OPT_BRIDGE_NAME,
    OPT_MTU,
    OPT_ENABLE_ICC,
    OPT_ENABLE_MASQ,
    OPT_HOST_BINDING,
    "com.docker.network.bridge.enable_ip_forwarding",
    "com.docker.network.container_iface_prefix",
];

/// One `--subnet` / `--ip-range` / `--gateway` group of `network create`.
#[derive(Debug, Clone, Default)]
pub struct IpamRequest {
    pub subnet: String,
    pub ip_range: String,
    pub gateway: String,
}

/// A `network create` request.
#[derive(Debug, Clone, Default)]
pub struct CreateNetwork {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
    pub ipam_driver: String,
    pub ipam: Vec<IpamRequest>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A container's endpoint as `network inspect` lists it.
#[derive(Debug, Clone)]
pub struct NetworkMember {
    pub container_id: String,
    pub name: String,
    pub endpoint_id: String,
    pub mac: String,
    /// `a.b.c.d/n`.
    pub ipv4: String,
}

/// The networks, by id.
#[derive(Default)]
pub struct NetworkIndex {
    nets: RwLock<BTreeMap<String, Network>>,
}

impl NetworkIndex {
    pub(crate) fn load(db: &crate::db::Db) -> Result<Self> {
        let mut nets = BTreeMap::new();
        for doc in db.networks()? {
            match serde_json::from_str::<Network>(&doc) {
                Ok(n) => {
                    nets.insert(n.id.clone(), n);
                }
                Err(e) => tracing::error!(error = %e, "skipping unreadable network record"),
            }
        }
        Ok(Self {
            nets: RwLock::new(nets),
        })
    }

    pub fn all(&self) -> Vec<Network> {
        self.nets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// By full id or exact name.
    pub fn get_exact(&self, name_or_id: &str) -> Option<Network> {
        let nets = self.nets.read().unwrap_or_else(|p| p.into_inner());
        nets.get(name_or_id)
            .or_else(|| nets.values().find(|n| n.name == name_or_id))
            .cloned()
    }

    /// Docker's lookup: full id, exact name, then a unique id prefix.
    pub fn find(&self, name_or_id: &str) -> Result<Network> {
        if let Some(n) = self.get_exact(name_or_id) {
            return Ok(n);
        }
        let not_found = || Error::not_found(format!("network {name_or_id} not found"));
        if name_or_id.is_empty() || !id::is_hex_prefix(name_or_id) {
            return Err(not_found());
        }
        let nets = self.nets.read().unwrap_or_else(|p| p.into_inner());
        let mut matches = nets.values().filter(|n| n.id.starts_with(name_or_id));
        match (matches.next(), matches.next()) {
            (Some(n), None) => Ok(n.clone()),
            (Some(_), Some(_)) => Err(Error::invalid(format!(
                "network {name_or_id} is ambiguous ({} matches found based on ID prefix)",
                nets.values()
                    .filter(|n| n.id.starts_with(name_or_id))
                    .count()
            ))),
            _ => Err(not_found()),
        }
    }

    fn insert(&self, n: Network) {
        self.nets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(n.id.clone(), n);
    }

    fn remove(&self, id: &str) {
        self.nets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// The live side of networking: netlink, the firewall, address pools, host ports, DNS.
pub(crate) struct NetState {
    pub(crate) driver: BridgeDriver,
    pub(crate) firewall: Firewall,
    pub(crate) ports: PortAllocator,
    pub(crate) dns: Arc<DnsServer>,
    /// Address pools of bridge networks, by network id.
    pub(crate) pools: Mutex<HashMap<String, AddressPool>>,
    /// What running containers hold (reserved host ports, DNS servers), by container id.
    pub(crate) live: Mutex<HashMap<String, endpoints::LiveNet>>,
    default_pools: Vec<DefaultPool>,
    /// Serialises network create/remove (subnet choice, bridge names).
    pub(crate) admin: tokio::sync::Mutex<()>,
    /// Whether the firewall's base chains are in place.
    firewall_ready: tokio::sync::OnceCell<()>,
}

impl NetState {
    pub(crate) fn new(cfg: &crate::EngineConfig) -> Result<Self> {
        let driver = BridgeDriver::new()?;
        let firewall = Firewall::new(cfg.firewall_table.clone())?;
        let mut default_pools = Vec::new();
        for (base, size) in &cfg.default_address_pools {
            let base: Subnet = base
                .parse()
                .map_err(|e| Error::invalid(format!("default-address-pools: {e}")))?;
            if *size < base.prefix_len() || *size > 30 {
                return Err(Error::invalid(format!(
                    "default-address-pools: size {size} does not fit base {base}"
                )));
            }
            default_pools.push(DefaultPool { base, size: *size });
        }
        if default_pools.is_empty() {
            default_pools = ipam::DEFAULT_POOLS.to_vec();
        }
        let upstreams = berth_net::dns::upstreams_from_resolv_conf(
            &std::fs::read_to_string(&cfg.resolv_conf).unwrap_or_default(),
        );
        Ok(Self {
            driver,
            firewall,
            ports: PortAllocator::default(),
            dns: Arc::new(DnsServer::new(Arc::new(DnsTable::new()), upstreams)),
            pools: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
            default_pools,
            admin: tokio::sync::Mutex::new(()),
            firewall_ready: tokio::sync::OnceCell::new(),
        })
    }

    pub(crate) fn dns_table(&self) -> &Arc<DnsTable> {
        self.dns.table()
    }

    async fn ensure_firewall(&self) -> Result<()> {
        self.firewall_ready
            .get_or_try_init(|| async { self.firewall.ensure_base().await.map_err(Error::from) })
            .await?;
        Ok(())
    }
}

fn rules_of(n: &Network) -> Result<NetworkRules> {
    Ok(NetworkRules {
        bridge: n.bridge.clone(),
        subnet: subnet_of(n)?,
        internal: n.internal,
    })
}

pub(crate) fn subnet_of(n: &Network) -> Result<Subnet> {
    n.subnet
        .parse()
        .map_err(|e| Error::internal(format!("network {}: {e}", n.name)))
}

fn pool_config(n: &Network) -> Result<PoolConfig> {
    let mut cfg = PoolConfig::new(subnet_of(n)?);
    if !n.ip_range.is_empty() {
        cfg.range = Some(
            n.ip_range
                .parse()
                .map_err(|e| Error::internal(format!("network {}: {e}", n.name)))?,
        );
    }
    if !n.gateway.is_empty() {
        cfg.gateway = Some(
            n.gateway
                .parse()
                .map_err(|_| Error::internal(format!("network {}: bad gateway", n.name)))?,
        );
    }
    Ok(cfg)
}

/// Docker's rule for network names.
fn validate_network_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return Err(Error::invalid(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(())
}

fn check_ifname(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 15
        || name.contains(['/', ' ', ':'])
        || name == "."
        || name == ".."
    {
        return Err(Error::invalid(format!(
            "invalid bridge name {name:?}: at most 15 characters, no '/', ':' or spaces"
        )));
    }
    Ok(())
}

impl Engine {
    /// Loads the networks, makes the predefined ones and brings every bridge and its rules
    /// up (idempotent: a restart finds them in place).
    pub(crate) async fn init_networks(&self) -> Result<()> {
        for (name, driver) in [(HOST, DRIVER_HOST), (NONE, DRIVER_NULL)] {
            if self.networks.get_exact(name).is_none() {
                self.save_network(Network {
                    id: id::new_id(),
                    name: name.to_string(),
                    driver: driver.to_string(),
                    created: Some(Utc::now()),
                    builtin: true,
                    ..Default::default()
                })?;
            }
        }
        self.init_default_bridge().await?;
        let bridges: Vec<Network> = self
            .networks
            .all()
            .into_iter()
            .filter(|n| n.driver == DRIVER_BRIDGE)
            .collect();
        if !bridges.is_empty() {
            self.net.ensure_firewall().await?;
        }
        for n in bridges {
            if let Err(e) = self.realize_network(&n).await {
                // One broken network must not keep the daemon (and every other network)
                // down; its containers fail to start with this error instead.
                tracing::error!(network = %n.name, error = %e, "bringing network up");
            }
        }
        Ok(())
    }

    /// The default bridge: `--bridge` (berth0) on `--bip` or the first free pool subnet.
    async fn init_default_bridge(&self) -> Result<()> {
        let existing = self.networks.get_exact(DEFAULT_BRIDGE);
        if self.cfg.bridge == "none" {
            if let Some(n) = existing {
                let _ = self.net.driver.delete_bridge(&n.bridge).await;
                if let Ok(rules) = rules_of(&n) {
                    let _ = self.net.firewall.remove_network(&rules).await;
                }
                self.networks.remove(&n.id);
                self.db.delete_network(&n.id)?;
            }
            return Ok(());
        }
        check_ifname(&self.cfg.bridge)?;
        let (subnet, gateway) = if self.cfg.bip.is_empty() {
            match &existing {
                Some(n) if n.bridge == self.cfg.bridge && !n.subnet.is_empty() => {
                    (subnet_of(n)?, n.gateway.parse().ok())
                }
                _ => {
                    let others = self.subnets_in_use(existing.as_ref().map(|n| n.id.as_str()));
                    let routes = self.foreign_routes(&[self.cfg.bridge.as_str()]).await?;
                    (
                        ipam::first_free_subnet(&self.net.default_pools, &others, &routes)?,
                        None,
                    )
                }
            }
        } else {
            let (ip, len) = self.cfg.bip.split_once('/').ok_or_else(|| {
                Error::invalid(format!(
                    "invalid --bip {}: expected an address with a prefix (172.30.0.1/16)",
                    self.cfg.bip
                ))
            })?;
            let ip: Ipv4Addr = ip
                .parse()
                .map_err(|_| Error::invalid(format!("invalid --bip {}", self.cfg.bip)))?;
            let len: u8 = len
                .parse()
                .ok()
                .filter(|l| *l <= 30)
                .ok_or_else(|| Error::invalid(format!("invalid --bip {}", self.cfg.bip)))?;
            (Subnet::containing(ip, len), Some(ip))
        };
        let gateway = gateway.unwrap_or_else(|| Ipv4Addr::from(u32::from(subnet.network()) + 1));
        let mut n = existing.unwrap_or_else(|| Network {
            id: id::new_id(),
            name: DEFAULT_BRIDGE.to_string(),
            driver: DRIVER_BRIDGE.to_string(),
            created: Some(Utc::now()),
            builtin: true,
            mtu: DEFAULT_MTU,
            ..Default::default()
        });
        let old = n.clone();
        n.subnet = subnet.to_string();
        n.gateway = gateway.to_string();
        n.bridge = self.cfg.bridge.clone();
        n.options = [
            (OPT_DEFAULT_BRIDGE, "true"),
            (OPT_ENABLE_ICC, "true"),
            (OPT_ENABLE_MASQ, "true"),
            (OPT_HOST_BINDING, "0.0.0.0"),
            (OPT_BRIDGE_NAME, self.cfg.bridge.as_str()),
            (OPT_MTU, &n.mtu.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if old != n {
            if !old.bridge.is_empty() && (old.bridge != n.bridge || old.subnet != n.subnet) {
                // The bridge moved (new --bridge or --bip): the old one and its rules go.
                if let Ok(rules) = rules_of(&old) {
                    let _ = self.net.firewall.remove_network(&rules).await;
                }
                if old.bridge != n.bridge {
                    let _ = self.net.driver.delete_bridge(&old.bridge).await;
                }
            }
            self.save_network(n)?;
        }
        Ok(())
    }

    /// Subnets of the bridge networks other than `except`.
    fn subnets_in_use(&self, except: Option<&str>) -> Vec<Subnet> {
        self.networks
            .all()
            .iter()
            .filter(|n| Some(n.id.as_str()) != except && n.driver == DRIVER_BRIDGE)
            .filter_map(|n| n.subnet.parse().ok())
            .collect()
    }

    /// The host's routes, without those of berth's own bridges (theirs are checked as
    /// networks) and of `also_ignore`.
    async fn foreign_routes(&self, also_ignore: &[&str]) -> Result<Vec<ipam::HostRoute>> {
        let ours: Vec<String> = self
            .networks
            .all()
            .into_iter()
            .filter(|n| n.driver == DRIVER_BRIDGE)
            .map(|n| n.bridge)
            .collect();
        Ok(self
            .net
            .driver
            .host_routes()
            .await?
            .into_iter()
            .filter(|r| {
                r.device
                    .as_deref()
                    .is_none_or(|d| !ours.iter().any(|o| o == d) && !also_ignore.contains(&d))
            })
            .collect())
    }

    fn save_network(&self, n: Network) -> Result<()> {
        let doc = serde_json::to_string(&n).map_err(|e| Error::internal(e.to_string()))?;
        self.db.put_network(&n.id, &n.name, &doc)?;
        self.networks.insert(n);
        Ok(())
    }

    /// Bridge, rules and an address pool for a bridge network. Idempotent.
    async fn realize_network(&self, n: &Network) -> Result<()> {
        let subnet = subnet_of(n)?;
        let pool_cfg = pool_config(n)?;
        let pool = AddressPool::new(pool_cfg)?;
        self.net
            .driver
            .ensure_bridge(&BridgeConfig {
                name: n.bridge.clone(),
                gateway: pool.gateway(),
                subnet,
                mtu: if n.mtu == 0 { DEFAULT_MTU } else { n.mtu },
            })
            .await?;
        self.net.firewall.ensure_network(&rules_of(n)?).await?;
        self.net
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(n.id.clone())
            .or_insert(pool);
        Ok(())
    }

    pub(crate) fn network_event(&self, action: &str, n: &Network, extra: &[(&str, String)]) {
        let mut attrs: BTreeMap<String, String> = BTreeMap::new();
        attrs.insert("name".into(), n.name.clone());
        attrs.insert("type".into(), n.driver.clone());
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        self.events
            .publish(EventType::Network, action, &n.id, attrs);
    }

    pub fn network(&self, name_or_id: &str) -> Result<Network> {
        self.networks.find(name_or_id)
    }

    /// `docker network create`.
    pub async fn create_network(&self, req: CreateNetwork) -> Result<Network> {
        validate_network_name(&req.name)?;
        let driver = if req.driver.is_empty() {
            DRIVER_BRIDGE
        } else {
            req.driver.as_str()
        };
        match driver {
            DRIVER_BRIDGE => {}
            DRIVER_HOST | DRIVER_NULL => {
                return Err(Error::forbidden(format!(
                    "only one instance of \"{driver}\" network is allowed"
                )))
            }
            other => {
                return Err(Error::not_found(format!(
                    "could not find plugin {other} in v1 plugin registry: plugin not found"
                )))
            }
        }
        if !req.ipam_driver.is_empty() && req.ipam_driver != "default" {
            return Err(Error::not_found(format!(
                "could not find plugin {} in v1 plugin registry: plugin not found",
                req.ipam_driver
            )));
        }
        if req.enable_ipv6 {
            return Err(Error::invalid(
                "IPv6 networks are not supported by berth yet (IPv4 only)",
            ));
        }
        if req.ipam.len() > 1 {
            return Err(Error::invalid("berth supports one IPv4 subnet per network"));
        }
        for k in req.options.keys() {
            if !BRIDGE_OPTIONS.contains(&k.as_str()) {
                return Err(Error::invalid(format!(
                    "unsupported bridge network option {k:?}"
                )));
            }
        }
        let mtu = match req.options.get(OPT_MTU) {
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| Error::invalid(format!("invalid MTU number: {v}")))?,
            None => DEFAULT_MTU,
        };
        let _admin = self.net.admin.lock().await;
        if self.networks.get_exact(&req.name).is_some() {
            return Err(Error::conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let net_id = id::new_id();
        let bridge = match req.options.get(OPT_BRIDGE_NAME) {
            Some(b) => b.clone(),
            None => format!("br-{}", id::short(&net_id)),
        };
        check_ifname(&bridge)?;
        if self.networks.all().iter().any(|n| n.bridge == bridge) {
            return Err(Error::conflict(format!(
                "bridge name {bridge} is already used by another network"
            )));
        }
        let in_use = self.subnets_in_use(None);
        let routes = self.foreign_routes(&[]).await?;
        let ipam_req = req.ipam.first().cloned().unwrap_or_default();
        let user_subnet = !ipam_req.subnet.is_empty();
        let subnet: Subnet = if user_subnet {
            let s: Subnet = ipam_req
                .subnet
                .parse()
                .map_err(|e: ipam::IpamError| Error::invalid(e.to_string()))?;
            ipam::check_subnet(&s, &in_use, &routes)?;
            s
        } else {
            if !ipam_req.ip_range.is_empty() || !ipam_req.gateway.is_empty() {
                return Err(Error::invalid(
                    "an ip-range or gateway needs a subnet: pass --subnet too",
                ));
            }
            ipam::first_free_subnet(&self.net.default_pools, &in_use, &routes)?
        };
        let mut n = Network {
            id: net_id,
            name: req.name.clone(),
            driver: DRIVER_BRIDGE.to_string(),
            created: Some(Utc::now()),
            internal: req.internal,
            attachable: req.attachable,
            subnet: subnet.to_string(),
            gateway: ipam_req.gateway.clone(),
            ip_range: ipam_req.ip_range.clone(),
            bridge,
            mtu,
            options: req.options.clone(),
            labels: req.labels.clone(),
            builtin: false,
            user_subnet,
        };
        // Validates the range and the gateway against the subnet.
        let pool = AddressPool::new(pool_config(&n)?)?;
        n.gateway = pool.gateway().to_string();
        self.net.ensure_firewall().await?;
        if let Err(e) = self.realize_network(&n).await {
            self.unrealize_network(&n).await;
            return Err(e);
        }
        if let Err(e) = self.save_network(n.clone()) {
            self.unrealize_network(&n).await;
            return Err(e);
        }
        self.network_event("create", &n, &[]);
        Ok(n)
    }

    /// Removes a network's bridge, rules, pool and DNS names; errors are logged (the
    /// kernel objects may already be gone).
    async fn unrealize_network(&self, n: &Network) {
        if let Ok(rules) = rules_of(n) {
            if let Err(e) = self.net.firewall.remove_network(&rules).await {
                tracing::warn!(network = %n.name, error = %e, "removing firewall rules");
            }
        }
        if let Err(e) = self.net.driver.delete_bridge(&n.bridge).await {
            tracing::warn!(network = %n.name, error = %e, "deleting bridge");
        }
        self.net
            .pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&n.id);
        self.net.dns_table().remove_network(&n.id);
    }

    /// The containers with a live endpoint on `network_id`.
    pub fn network_members(&self, network_id: &str) -> Vec<NetworkMember> {
        let mut out = Vec::new();
        for entry in self.containers.all() {
            entry.read(|c| {
                for (_, a) in &c.networks.attachments {
                    if a.network_id != network_id {
                        continue;
                    }
                    if let Some(ep) = &a.endpoint {
                        out.push(NetworkMember {
                            container_id: c.id.clone(),
                            name: c.name.clone(),
                            endpoint_id: ep.endpoint_id.clone(),
                            mac: ep.mac.clone(),
                            ipv4: format!("{}/{}", ep.ip, ep.prefix_len),
                        });
                    }
                }
            });
        }
        out
    }

    /// `docker network rm`.
    pub async fn remove_network(&self, name_or_id: &str) -> Result<()> {
        let _admin = self.net.admin.lock().await;
        let n = self.networks.find(name_or_id)?;
        if n.builtin {
            return Err(Error::forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        if let Some(m) = self.network_members(&n.id).first() {
            return Err(Error::forbidden(format!(
                "error while removing network: network {} has active endpoints (name:\"{}\" id:\"{}\")",
                n.name,
                m.name,
                id::short(&m.container_id)
            )));
        }
        self.db.delete_network(&n.id)?;
        self.networks.remove(&n.id);
        self.unrealize_network(&n).await;
        self.network_event("destroy", &n, &[]);
        Ok(())
    }

    /// `docker network ls` with Docker's filters.
    pub fn list_networks(&self, f: &Filters) -> Result<Vec<Network>> {
        f.validate(&["dangling", "driver", "id", "label", "name", "scope", "type"])?;
        for t in f.get("type") {
            if t != "custom" && t != "builtin" {
                return Err(Error::invalid(format!("invalid filter: 'type'='{t}'")));
            }
        }
        let dangling = f.bool_value("dangling")?;
        let mut out: Vec<Network> = self
            .networks
            .all()
            .into_iter()
            .filter(|n| f.matches_any("driver", |d| d == n.driver))
            .filter(|n| f.matches_any("id", |i| n.id.starts_with(i)))
            .filter(|n| f.matches_any("name", |x| n.name.contains(x)))
            .filter(|_| f.matches_any("scope", |s| s == "local"))
            .filter(|n| {
                f.matches_any("type", |t| {
                    (t == "builtin" && n.builtin) || (t == "custom" && !n.builtin)
                })
            })
            .filter(|n| f.match_labels("label", &n.labels))
            .collect();
        if let Some(d) = dangling {
            let used = self.networks_in_use();
            out.retain(|n| !n.builtin && used.contains_key(&n.id) != d);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// How many containers (of any state) name each network.
    fn networks_in_use(&self) -> HashMap<String, usize> {
        let mut used = HashMap::new();
        for entry in self.containers.all() {
            entry.read(|c| {
                for (_, a) in &c.networks.attachments {
                    *used.entry(a.network_id.clone()).or_insert(0) += 1;
                }
            });
        }
        used
    }

    /// `docker network prune`: user-defined networks without active endpoints.
    pub async fn prune_networks(&self, f: &Filters) -> Result<Vec<String>> {
        f.validate(&["until", "label", "label!"])?;
        let until = f
            .get("until")
            .next()
            .map(crate::containers::parse_time_filter)
            .transpose()?;
        let mut removed = Vec::new();
        for n in self.networks.all() {
            if n.builtin
                || !f.match_labels("label", &n.labels)
                || !f.match_labels_negated("label!", &n.labels)
                || until.is_some_and(|u| n.created.is_some_and(|c| c >= u))
                || !self.network_members(&n.id).is_empty()
            {
                continue;
            }
            if self.remove_network(&n.id).await.is_ok() {
                removed.push(n.name);
            }
        }
        removed.sort();
        Ok(removed)
    }
}
