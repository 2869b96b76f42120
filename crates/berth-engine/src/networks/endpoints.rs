//! Containers on networks: which networks a container asks for (create), its namespace,
//! interfaces, published ports and DNS while it runs (start, exit, daemon restart), and
//! `network connect` / `disconnect`.

use crate::containers::ContainerEntry;
use crate::Engine;
use berth_core::container::{Container, ContainerConfig, HostConfig};
use berth_core::network::{
    Attachment, ContainerNetworks, Endpoint, EndpointRequest, Network, PublishedPort,
    DEFAULT_BRIDGE, DRIVER_BRIDGE, HOST, NONE,
};
use berth_core::{id, Error, Result};
use berth_net::bridge::{EndpointConfig, MacAddr, DEFAULT_MTU};
use berth_net::dns::{ContainerDns, DnsView};
use berth_net::firewall::PortMapping;
use berth_net::ports::{HostPort, PortRequest, Protocol, ReservedPort};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a running container holds beyond kernel state: its host ports (bound sockets)
/// and its DNS server. Dropping it releases both.
#[derive(Default)]
pub(crate) struct LiveNet {
    _ports: Vec<ReservedPort>,
    dns: Option<ContainerDns>,
}

/// The network modes that give a container endpoints of its own.
pub fn is_endpoint_mode(mode: &str) -> bool {
    !matches!(mode, HOST | NONE) && !mode.starts_with("container:")
}

/// The network a container's mode names (`default` is the default bridge).
fn mode_network(mode: &str) -> &str {
    match mode {
        "" | "default" => DEFAULT_BRIDGE,
        m => m,
    }
}

/// `--link name[:alias]` (or the stored `/name:/me/alias`) as (container, alias).
pub fn parse_link(link: &str) -> Result<(String, String)> {
    let (name, alias) = match link.split_once(':') {
        Some((n, a)) => (n, a.rsplit('/').next().unwrap_or(a)),
        None => (link, link),
    };
    let name = name.trim_start_matches('/');
    let alias = alias.trim_start_matches('/');
    if name.is_empty() || alias.is_empty() {
        return Err(Error::invalid(format!("invalid link format: {link}")));
    }
    Ok((name.to_string(), alias.to_string()))
}

fn random_hex64() -> String {
    id::new_id()
}

impl Engine {
    /// At create: the networks a container joins (its mode's network first, then the
    /// other endpoint configs), checked with Docker's rules. `host_config.links` is
    /// rewritten to Docker's stored form (`/db:/web/db`).
    pub(crate) fn plan_networks(
        &self,
        name: &str,
        config: &ContainerConfig,
        host: &mut HostConfig,
        mut endpoints: BTreeMap<String, EndpointRequest>,
    ) -> Result<ContainerNetworks> {
        let mode = host.network_mode.clone();
        let mut out = ContainerNetworks::default();
        let mut links = Vec::new();
        for l in &host.links {
            let (target, alias) = parse_link(l)?;
            let other = self
                .container(&target)
                .map_err(|_| Error::invalid(format!("could not get container for {target}")))?;
            let other_name = other.read(|o| o.name.clone());
            links.push(format!("/{other_name}:/{name}/{alias}"));
        }
        host.links = links;
        // With the default bridge disabled (`--bridge none`), the default is no network,
        // as with dockerd.
        let bridge_disabled = matches!(mode.as_str(), "" | "default")
            && self.networks.get_exact(DEFAULT_BRIDGE).is_none();
        if config.network_disabled || bridge_disabled || !is_endpoint_mode(&mode) {
            if mode.starts_with("container:")
                && (!host.port_bindings.is_empty() || host.publish_all_ports)
            {
                return Err(Error::invalid(
                    "conflicting options: port publishing and the container type network mode",
                ));
            }
            if mode.starts_with("container:") && !host.links.is_empty() {
                return Err(Error::invalid(
                    "conflicting options: container type network can't be used with links. This would result in undefined behavior",
                ));
            }
            let own = endpoints.keys().any(|k| k != &mode && k != "default");
            if own && !config.network_disabled && !bridge_disabled {
                return Err(Error::invalid(format!(
                    "container cannot be connected to multiple networks with one of the networks in {} mode",
                    if mode == HOST { "host" } else { "private" }
                )));
            }
            if !config.network_disabled && (mode == HOST || mode == NONE) {
                if let Some(n) = self.networks.get_exact(&mode) {
                    out.attachments.push((
                        n.name.clone(),
                        Attachment {
                            network_id: n.id,
                            ..Default::default()
                        },
                    ));
                }
            }
            return Ok(out);
        }
        let primary = mode_network(&mode).to_string();
        let mut request = endpoints
            .remove(&mode)
            .or_else(|| endpoints.remove("default"))
            .or_else(|| endpoints.remove(&primary))
            .unwrap_or_default();
        if request.mac_address.is_empty() {
            request.mac_address = config.mac_address.clone();
        }
        let mut wanted = vec![(primary, request)];
        wanted.extend(endpoints);
        for (net_name, request) in wanted {
            // As dockerd: a network that does not exist fails the start, not the create
            // (a 404 here would send the docker CLI pulling the image).
            let n = match self.networks.find(&net_name) {
                Ok(n) => n,
                Err(e) if e.kind() == berth_core::ErrorKind::NotFound => {
                    out.attachments.push((
                        net_name,
                        Attachment {
                            request,
                            ..Default::default()
                        },
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if n.driver != DRIVER_BRIDGE {
                return Err(Error::invalid(format!(
                    "container cannot be connected to multiple networks with one of the networks in {} mode",
                    if n.name == HOST { "host" } else { "private" }
                )));
            }
            check_request(&n, &request)?;
            if out.get(&n.name).is_some() {
                continue;
            }
            out.attachments.push((
                n.name.clone(),
                Attachment {
                    network_id: n.id.clone(),
                    request,
                    endpoint: None,
                },
            ));
        }
        Ok(out)
    }

    /// At start: a namespace with one interface per network, the published ports and the
    /// DNS server. On error everything made so far is undone.
    pub(crate) async fn network_up(&self, entry: &ContainerEntry) -> Result<()> {
        let c = entry.snapshot();
        if !is_endpoint_mode(&c.host_config.network_mode) || c.networks.attachments.is_empty() {
            return Ok(());
        }
        let dir = self.cfg.exec_root.join("netns");
        let ns_name = id::short(&c.id).to_string();
        let _ = berth_net::netns::delete(&dir.join(&ns_name));
        let sandbox = berth_net::netns::create(&dir, &ns_name).await?;
        let mut nets = c.networks.clone();
        nets.sandbox_key = sandbox.display().to_string();
        nets.sandbox_id = random_hex64();
        nets.ports.clear();
        let mut live = LiveNet::default();
        let result = self.network_up_in(&c, &sandbox, &mut nets, &mut live).await;
        if let Err(e) = result {
            self.network_down_records(&c.id, &nets).await;
            return Err(e);
        }
        self.net
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.id.clone(), live);
        entry.update(|x| x.networks = nets);
        for (_, a) in &entry.read(|x| x.networks.attachments.clone()) {
            if let Ok(n) = self.networks.find(&a.network_id) {
                self.network_event("connect", &n, &[("container", c.id.clone())]);
            }
        }
        Ok(())
    }

    async fn network_up_in(
        &self,
        c: &Container,
        sandbox: &Path,
        nets: &mut ContainerNetworks,
        live: &mut LiveNet,
    ) -> Result<()> {
        let mut gateway_set = false;
        let mut target: Option<Ipv4Addr> = None;
        let mut dns_networks = Vec::new();
        for i in 0..nets.attachments.len() {
            let (name, a) = nets.attachments[i].clone();
            let n = self
                .networks
                .get_exact(&a.network_id)
                .or_else(|| self.networks.get_exact(&name))
                .ok_or_else(|| Error::not_found(format!("network {name} not found")))?;
            let default_route = !n.internal && !gateway_set;
            let ep = self
                .attach_endpoint(c, &n, &a.request, sandbox, i, default_route)
                .await;
            let ep = ep?;
            gateway_set |= default_route;
            if default_route {
                target = ep.ip.parse().ok();
            }
            if n.has_dns() {
                dns_networks.push(n.id.clone());
            }
            nets.attachments[i] = (
                n.name.clone(),
                Attachment {
                    network_id: n.id.clone(),
                    request: a.request.clone(),
                    endpoint: Some(ep),
                },
            );
        }
        if let Some(ip) = target {
            let (ports, reserved) = self.publish_ports(c, ip, nets).await?;
            nets.ports = ports;
            live._ports = reserved;
        }
        if !dns_networks.is_empty() {
            live.dns = Some(self.serve_dns(c, sandbox, dns_networks).await?);
        }
        Ok(())
    }

    /// One interface: an address from the network's pool, a veth on its bridge, DNS names.
    async fn attach_endpoint(
        &self,
        c: &Container,
        n: &Network,
        request: &EndpointRequest,
        sandbox: &Path,
        index: usize,
        default_route: bool,
    ) -> Result<Endpoint> {
        let subnet = super::subnet_of(n)?;
        let (ip, gateway) = {
            let mut pools = self.net.pools.lock().unwrap_or_else(|p| p.into_inner());
            let pool = pools.get_mut(&n.id).ok_or_else(|| {
                Error::internal(format!(
                    "network {} has no address pool (is its bridge up?)",
                    n.name
                ))
            })?;
            let ip = if request.ipv4_address.is_empty() {
                pool.allocate()?
            } else {
                let ip: Ipv4Addr = request.ipv4_address.parse().map_err(|_| {
                    Error::invalid(format!("invalid IPv4 address: {}", request.ipv4_address))
                })?;
                pool.reserve(ip)?;
                ip
            };
            (ip, pool.gateway())
        };
        let release = || {
            if let Some(p) = self
                .net
                .pools
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&n.id)
            {
                p.release(ip);
            }
        };
        let mac = if request.mac_address.is_empty() {
            None
        } else {
            match request.mac_address.parse::<MacAddr>() {
                Ok(m) => Some(m),
                Err(_) => {
                    release();
                    return Err(Error::invalid(format!(
                        "invalid MAC address: {}",
                        request.mac_address
                    )));
                }
            }
        };
        let config = EndpointConfig {
            ifname: format!("eth{index}"),
            address: ip,
            prefix_len: subnet.prefix_len(),
            default_gateway: default_route.then_some(gateway),
            mac,
            mtu: if n.mtu == 0 { DEFAULT_MTU } else { n.mtu },
        };
        let attached = match self.net.driver.attach(&n.bridge, sandbox, &config).await {
            Ok(a) => a,
            Err(e) => {
                release();
                return Err(e.into());
            }
        };
        let mut dns_names = Vec::new();
        let endpoint_id = random_hex64();
        if n.has_dns() {
            dns_names.push(c.name.clone());
            dns_names.extend(request.aliases.iter().cloned());
            dns_names.push(id::short(&c.id).to_string());
            self.net
                .dns_table()
                .set_endpoint(&n.id, &endpoint_id, &dns_names, ip);
        }
        Ok(Endpoint {
            endpoint_id,
            ip: ip.to_string(),
            prefix_len: subnet.prefix_len(),
            gateway: gateway.to_string(),
            mac: attached.mac.to_string(),
            ifname: config.ifname,
            host_ifname: attached.host_ifname,
            dns_names,
        })
    }

    /// Reserves the host ports (`-p`, `-P`) and adds their DNAT rules to `target`.
    async fn publish_ports(
        &self,
        c: &Container,
        target: Ipv4Addr,
        nets: &ContainerNetworks,
    ) -> Result<(Vec<PublishedPort>, Vec<ReservedPort>)> {
        let wanted = port_requests(&c.host_config, &c.config)?;
        if wanted.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let fail = |e: Error| {
            let (name, ep) = nets
                .attachments
                .first()
                .map(|(_, a)| {
                    (
                        c.name.clone(),
                        a.endpoint
                            .as_ref()
                            .map(|e| e.endpoint_id.clone())
                            .unwrap_or_default(),
                    )
                })
                .unwrap_or_default();
            Error::new(
                e.kind(),
                format!(
                    "driver failed programming external connectivity on endpoint {name} ({ep}): {}",
                    e.message()
                ),
            )
        };
        let mut reserved = Vec::new();
        let mut published = Vec::new();
        let mut mappings = Vec::new();
        for (container_port, protocol, request) in wanted {
            let r = self
                .net
                .ports
                .reserve(&request)
                .map_err(|e| fail(e.into()))?;
            published.push(PublishedPort {
                container_port: format!("{container_port}/{protocol}"),
                host_ip: r.host_ip.to_string(),
                host_port: r.port,
            });
            mappings.push(PortMapping {
                protocol,
                host_ip: r.host_ip,
                host_port: r.port,
                container_ip: target,
                container_port,
            });
            reserved.push(r);
        }
        self.net
            .firewall
            .publish(&mappings)
            .await
            .map_err(|e| fail(e.into()))?;
        Ok((published, reserved))
    }

    /// Serves `127.0.0.11:53` in the container's namespace for its DNS networks.
    async fn serve_dns(
        &self,
        c: &Container,
        sandbox: &Path,
        networks: Vec<String>,
    ) -> Result<ContainerDns> {
        let upstreams = if c.host_config.dns.is_empty() {
            None
        } else {
            Some(
                c.host_config
                    .dns
                    .iter()
                    .filter_map(|d| d.parse::<std::net::IpAddr>().ok())
                    .map(|ip| SocketAddr::new(ip, 53))
                    .collect(),
            )
        };
        Ok(self
            .net
            .dns
            .serve_in(
                sandbox,
                DnsView {
                    networks,
                    upstreams,
                },
            )
            .await?)
    }

    /// At exit (or a failed start): drops the ports, the DNS server, the rules, the
    /// addresses and the namespace (the kernel removes its veth pairs with it).
    pub(crate) async fn network_down(&self, entry: &ContainerEntry) {
        let (id, nets) = entry.read(|c| (c.id.clone(), c.networks.clone()));
        if nets.sandbox_key.is_empty() && nets.attachments.iter().all(|(_, a)| a.endpoint.is_none())
        {
            return;
        }
        self.network_down_records(&id, &nets).await;
        entry.update(|c| {
            for (_, a) in c.networks.attachments.iter_mut() {
                a.endpoint = None;
            }
            c.networks.ports.clear();
            c.networks.sandbox_key.clear();
            c.networks.sandbox_id.clear();
        });
        for (_, a) in &nets.attachments {
            if a.endpoint.is_some() {
                if let Ok(n) = self.networks.find(&a.network_id) {
                    self.network_event("disconnect", &n, &[("container", id.clone())]);
                }
            }
        }
    }

    async fn network_down_records(&self, id: &str, nets: &ContainerNetworks) {
        let live = self
            .net
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        drop(live);
        let mappings = self.port_mappings(nets);
        if !mappings.is_empty() {
            if let Err(e) = self.net.firewall.unpublish(&mappings).await {
                tracing::warn!(container = %id, error = %e, "removing port rules");
            }
        }
        for (_, a) in &nets.attachments {
            let Some(ep) = &a.endpoint else { continue };
            self.net
                .dns_table()
                .remove_endpoint(&a.network_id, &ep.endpoint_id);
            if let (Some(pool), Ok(ip)) = (
                self.net
                    .pools
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(&a.network_id),
                ep.ip.parse::<Ipv4Addr>(),
            ) {
                pool.release(ip);
            }
        }
        if !nets.sandbox_key.is_empty() {
            if let Err(e) = berth_net::netns::delete(Path::new(&nets.sandbox_key)) {
                tracing::warn!(container = %id, error = %e, "deleting network namespace");
            }
        }
    }

    /// The DNAT entries of a container's published ports (to its gateway endpoint).
    fn port_mappings(&self, nets: &ContainerNetworks) -> Vec<PortMapping> {
        let target = nets.attachments.iter().find_map(|(_, a)| {
            let ep = a.endpoint.as_ref()?;
            let internal = self
                .networks
                .find(&a.network_id)
                .map(|n| n.internal)
                .unwrap_or(false);
            (!internal)
                .then(|| ep.ip.parse::<Ipv4Addr>().ok())
                .flatten()
        });
        let Some(target) = target else {
            return Vec::new();
        };
        nets.ports
            .iter()
            .filter_map(|p| {
                let (port, proto) = p.container_port.split_once('/')?;
                Some(PortMapping {
                    protocol: proto.parse().ok()?,
                    host_ip: p.host_ip.parse().ok()?,
                    host_port: p.host_port,
                    container_ip: target,
                    container_port: port.parse().ok()?,
                })
            })
            .collect()
    }

    /// At daemon start, for a container that still runs: its addresses are taken again,
    /// its names served, its host ports held and their rules refreshed.
    pub(crate) async fn network_restore(&self, entry: &ContainerEntry) {
        let c = entry.snapshot();
        if c.networks.sandbox_key.is_empty() {
            return;
        }
        let mut dns_networks = Vec::new();
        for (_, a) in &c.networks.attachments {
            let Some(ep) = &a.endpoint else { continue };
            let Ok(ip) = ep.ip.parse::<Ipv4Addr>() else {
                continue;
            };
            if let Some(pool) = self
                .net
                .pools
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&a.network_id)
            {
                let _ = pool.reserve(ip);
            }
            if let Ok(n) = self.networks.find(&a.network_id) {
                if n.has_dns() {
                    self.net
                        .dns_table()
                        .set_endpoint(&n.id, &ep.endpoint_id, &ep.dns_names, ip);
                    dns_networks.push(n.id.clone());
                }
            }
        }
        let mut live = LiveNet::default();
        for p in &c.networks.ports {
            let Some((_, proto)) = p.container_port.split_once('/') else {
                continue;
            };
            let (Ok(protocol), Ok(host_ip)) = (proto.parse::<Protocol>(), p.host_ip.parse()) else {
                continue;
            };
            match self.net.ports.reserve(&PortRequest {
                protocol,
                host_ip,
                host_port: HostPort::Exact(p.host_port),
            }) {
                Ok(r) => live._ports.push(r),
                Err(e) => {
                    tracing::warn!(container = %c.id, error = %e, "holding a published port again")
                }
            }
        }
        let mappings = self.port_mappings(&c.networks);
        if !mappings.is_empty() {
            if let Err(e) = self.net.firewall.publish(&mappings).await {
                tracing::warn!(container = %c.id, error = %e, "restoring port rules");
            }
        }
        let sandbox = PathBuf::from(&c.networks.sandbox_key);
        if !dns_networks.is_empty() && sandbox.exists() {
            match self.serve_dns(&c, &sandbox, dns_networks).await {
                Ok(d) => live.dns = Some(d),
                Err(e) => tracing::warn!(container = %c.id, error = %e, "restoring DNS"),
            }
        }
        self.net
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.id.clone(), live);
    }

    /// Re-registers a running container's DNS names (after a rename).
    pub(crate) fn refresh_dns_names(&self, entry: &ContainerEntry) {
        entry.update(|c| {
            let (name, short) = (c.name.clone(), id::short(&c.id).to_string());
            for (_, a) in c.networks.attachments.iter_mut() {
                let Some(ep) = a.endpoint.as_mut() else {
                    continue;
                };
                if ep.dns_names.is_empty() {
                    continue;
                }
                let mut names = vec![name.clone()];
                names.extend(a.request.aliases.iter().cloned());
                names.push(short.clone());
                ep.dns_names = names;
                if let Ok(ip) = ep.ip.parse() {
                    self.net.dns_table().set_endpoint(
                        &a.network_id,
                        &ep.endpoint_id,
                        &ep.dns_names,
                        ip,
                    );
                }
            }
        });
    }

    /// `docker network connect`.
    pub async fn network_connect(
        self: &Arc<Self>,
        network: &str,
        container: &str,
        request: EndpointRequest,
    ) -> Result<()> {
        let n = self.networks.find(network)?;
        let entry = self.container(container)?;
        let _op = entry.op.lock().await;
        let c = entry.snapshot();
        let mode = c.host_config.network_mode.as_str();
        if n.driver != DRIVER_BRIDGE {
            return Err(Error::forbidden(format!(
                "container cannot be disconnected from host network or connected to {} network",
                n.name
            )));
        }
        if !is_endpoint_mode(mode) {
            let what = if mode == HOST {
                "host"
            } else if mode == NONE {
                "none"
            } else {
                "container"
            };
            return Err(Error::forbidden(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (network mode: {what})"
            )));
        }
        if c.networks
            .attachments
            .iter()
            .any(|(_, a)| a.network_id == n.id)
        {
            return Err(Error::forbidden(format!(
                "endpoint with name {} already exists in network {}",
                c.name, n.name
            )));
        }
        check_request(&n, &request)?;
        let running = c.state.is_running() && !c.networks.sandbox_key.is_empty();
        let mut attachment = Attachment {
            network_id: n.id.clone(),
            request: request.clone(),
            endpoint: None,
        };
        if running {
            let index = c
                .networks
                .attachments
                .iter()
                .filter_map(|(_, a)| a.endpoint.as_ref())
                .filter_map(|e| e.ifname.strip_prefix("eth")?.parse::<usize>().ok())
                .max()
                .map_or(0, |m| m + 1);
            let has_route = c.networks.attachments.iter().any(|(_, a)| {
                a.endpoint.is_some() && self.networks.find(&a.network_id).is_ok_and(|x| !x.internal)
            });
            let sandbox = PathBuf::from(&c.networks.sandbox_key);
            let ep = self
                .attach_endpoint(&c, &n, &request, &sandbox, index, !has_route && !n.internal)
                .await?;
            attachment.endpoint = Some(ep);
            if n.has_dns() {
                self.update_container_dns(&c, &sandbox, Some(&n.id), None)
                    .await?;
            }
        }
        entry.update(|x| x.networks.attachments.push((n.name.clone(), attachment)));
        self.persist(&entry)?;
        self.network_event("connect", &n, &[("container", c.id.clone())]);
        Ok(())
    }

    /// Adds or removes a DNS network of a running container; starts its DNS server (and
    /// points its resolv.conf at it) when it joins its first DNS network.
    async fn update_container_dns(
        &self,
        c: &Container,
        sandbox: &Path,
        add: Option<&str>,
        remove: Option<&str>,
    ) -> Result<()> {
        let mut networks: Vec<String> = c
            .networks
            .attachments
            .iter()
            .filter(|(_, a)| a.endpoint.is_some() && Some(a.network_id.as_str()) != remove)
            .filter(|(_, a)| self.networks.find(&a.network_id).is_ok_and(|n| n.has_dns()))
            .map(|(_, a)| a.network_id.clone())
            .collect();
        if let Some(a) = add {
            networks.push(a.to_string());
        }
        let existing = {
            let live = self.net.live.lock().unwrap_or_else(|p| p.into_inner());
            live.get(&c.id).map(|l| {
                if let Some(d) = &l.dns {
                    d.set_networks(networks.clone());
                    true
                } else {
                    false
                }
            })
        };
        if existing == Some(true) || networks.is_empty() {
            return Ok(());
        }
        let dns = self.serve_dns(c, sandbox, networks).await?;
        self.net
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(c.id.clone())
            .or_default()
            .dns = Some(dns);
        // The file is bind-mounted: rewrite it in place so the container sees it.
        let path = self.container_dir(&c.id).join("resolv.conf");
        let host = std::fs::read_to_string(&self.cfg.resolv_conf).unwrap_or_default();
        let text = crate::containers::etc::resolv_conf_internal(c, &host);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        Ok(())
    }

    /// `docker network disconnect`.
    pub async fn network_disconnect(
        self: &Arc<Self>,
        network: &str,
        container: &str,
        _force: bool,
    ) -> Result<()> {
        let n = self.networks.find(network)?;
        let entry = self.container(container)?;
        let _op = entry.op.lock().await;
        let c = entry.snapshot();
        if n.driver != DRIVER_BRIDGE {
            return Err(Error::forbidden(format!(
                "container cannot be disconnected from host network or connected to {} network",
                n.name
            )));
        }
        let Some(pos) = c
            .networks
            .attachments
            .iter()
            .position(|(_, a)| a.network_id == n.id)
        else {
            return Err(Error::forbidden(format!(
                "container {} is not connected to network {}",
                c.id, n.name
            )));
        };
        let (_, a) = c.networks.attachments[pos].clone();
        if let Some(ep) = &a.endpoint {
            if n.has_dns() {
                let sandbox = PathBuf::from(&c.networks.sandbox_key);
                self.update_container_dns(&c, &sandbox, None, Some(&n.id))
                    .await?;
            }
            self.net.dns_table().remove_endpoint(&n.id, &ep.endpoint_id);
            self.net.driver.detach(&ep.host_ifname).await?;
            if let (Some(pool), Ok(ip)) = (
                self.net
                    .pools
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(&n.id),
                ep.ip.parse::<Ipv4Addr>(),
            ) {
                pool.release(ip);
            }
        }
        entry.update(|x| {
            x.networks.attachments.retain(|(_, a)| a.network_id != n.id);
        });
        self.persist(&entry)?;
        self.network_event("disconnect", &n, &[("container", c.id.clone())]);
        Ok(())
    }

    /// `/etc/hosts` lines for `--link`s (`IP\talias hostname name`) and the environment
    /// Docker gives linked containers (`ALIAS_PORT_80_TCP_ADDR=...`).
    pub(crate) fn link_entries(&self, c: &Container) -> Result<(String, Vec<String>)> {
        let mut hosts = String::new();
        let mut env = Vec::new();
        for link in &c.host_config.links {
            let (target, alias) = parse_link(link)?;
            let other = self
                .container(&target)
                .map_err(|_| Error::invalid(format!("could not get container for {target}")))?;
            let o = other.snapshot();
            if !o.state.is_running() {
                return Err(Error::invalid(format!(
                    "Cannot link to a non running container: /{} AS /{}/{alias}",
                    o.name, c.name
                )));
            }
            // The address on a network both share, the default bridge first.
            let ip = c
                .networks
                .attachments
                .iter()
                .find_map(|(_, mine)| {
                    o.networks
                        .attachments
                        .iter()
                        .find(|(_, theirs)| theirs.network_id == mine.network_id)
                        .and_then(|(_, theirs)| theirs.endpoint.as_ref())
                        .map(|e| e.ip.clone())
                })
                .unwrap_or_default();
            if ip.is_empty() {
                continue;
            }
            let mut names = format!("{alias} {}", o.config.hostname);
            if alias != o.name {
                names.push(' ');
                names.push_str(&o.name);
            }
            hosts.push_str(&format!("{ip}\t{names}\n"));
            let prefix: String = alias
                .chars()
                .map(|ch| {
                    if ch.is_ascii_alphanumeric() {
                        ch.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            env.push(format!("{prefix}_NAME=/{}/{alias}", c.name));
            let mut ports: Vec<(u16, String)> = o
                .config
                .exposed_ports
                .iter()
                .filter_map(|p| {
                    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                    Some((num.parse().ok()?, proto.to_string()))
                })
                .collect();
            ports.sort();
            if let Some((port, proto)) = ports.first() {
                env.push(format!("{prefix}_PORT={proto}://{ip}:{port}"));
            }
            for (port, proto) in &ports {
                let p = format!("{prefix}_PORT_{port}_{}", proto.to_ascii_uppercase());
                env.push(format!("{p}={proto}://{ip}:{port}"));
                env.push(format!("{p}_ADDR={ip}"));
                env.push(format!("{p}_PORT={port}"));
                env.push(format!("{p}_PROTO={proto}"));
            }
            for e in &o.config.env {
                if let Some((k, v)) = e.split_once('=') {
                    if k != "HOME" && k != "PATH" {
                        env.push(format!("{prefix}_ENV_{k}={v}"));
                    }
                }
            }
        }
        Ok((hosts, env))
    }
}

/// Docker's checks of what a container asks for on one network.
fn check_request(n: &Network, r: &EndpointRequest) -> Result<()> {
    if !r.ipv4_address.is_empty() {
        if n.builtin {
            return Err(Error::invalid(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        if !n.user_subnet {
            return Err(Error::invalid(
                "user specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        }
        let ip: Ipv4Addr = r
            .ipv4_address
            .parse()
            .map_err(|_| Error::invalid(format!("invalid IPv4 address: {}", r.ipv4_address)))?;
        let subnet = super::subnet_of(n)?;
        if !subnet.contains(ip) {
            return Err(Error::invalid(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
    }
    if !r.aliases.is_empty() && n.builtin {
        return Err(Error::invalid(
            "network-scoped alias is supported only for containers in user defined networks",
        ));
    }
    if !r.mac_address.is_empty() && r.mac_address.parse::<MacAddr>().is_err() {
        return Err(Error::invalid(format!(
            "invalid MAC address: {}",
            r.mac_address
        )));
    }
    Ok(())
}

/// The host ports a container publishes: (container port, protocol, request). `-P` adds
/// an ephemeral port for every exposed port without one.
fn port_requests(
    host: &HostConfig,
    config: &ContainerConfig,
) -> Result<Vec<(u16, Protocol, PortRequest)>> {
    let mut out = Vec::new();
    let parse_key = |key: &str| -> Result<(u16, Protocol)> {
        let (num, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let port: u16 = num
            .parse()
            .map_err(|_| Error::invalid(format!("invalid containerPort: {num}")))?;
        let protocol: Protocol = proto
            .parse()
            .map_err(|_| Error::invalid(format!("invalid proto: {proto}")))?;
        Ok((port, protocol))
    };
    for (key, bindings) in &host.port_bindings {
        let (port, protocol) = parse_key(key)?;
        for b in bindings {
            let host_ip: Ipv4Addr = match b.host_ip.as_str() {
                "" => Ipv4Addr::UNSPECIFIED,
                ip => match ip.parse() {
                    Ok(ip) => ip,
                    // IPv6 host addresses: not served yet (IPv4 only), as Docker without
                    // IPv6 skips them.
                    Err(_) if ip.contains(':') => continue,
                    Err(_) => return Err(Error::invalid(format!("invalid host IP: {ip}"))),
                },
            };
            let host_port = match b.host_port.as_str() {
                "" | "0" => HostPort::Ephemeral,
                p => match p.split_once('-') {
                    Some((a, z)) => {
                        let (first, last) = (
                            a.parse::<u16>()
                                .map_err(|_| Error::invalid(format!("invalid hostPort: {p}")))?,
                            z.parse::<u16>()
                                .map_err(|_| Error::invalid(format!("invalid hostPort: {p}")))?,
                        );
                        if first > last || first == 0 {
                            return Err(Error::invalid(format!("invalid hostPort: {p}")));
                        }
                        HostPort::Range { first, last }
                    }
                    None => HostPort::Exact(
                        p.parse()
                            .map_err(|_| Error::invalid(format!("invalid hostPort: {p}")))?,
                    ),
                },
            };
            out.push((
                port,
                protocol,
                PortRequest {
                    protocol,
                    host_ip,
                    host_port,
                },
            ));
        }
    }
    if host.publish_all_ports {
        for key in &config.exposed_ports {
            if host.port_bindings.contains_key(key) {
                continue;
            }
            let (port, protocol) = parse_key(key)?;
            out.push((
                port,
                protocol,
                PortRequest {
                    protocol,
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_port: HostPort::Ephemeral,
                },
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::container::PortBinding;

    #[test]
    fn links_parse_in_both_forms() {
        assert_eq!(parse_link("db").unwrap(), ("db".into(), "db".into()));
        assert_eq!(parse_link("db:sql").unwrap(), ("db".into(), "sql".into()));
        assert_eq!(
            parse_link("/db:/web/sql").unwrap(),
            ("db".into(), "sql".into())
        );
        assert!(parse_link(":x").is_err());
    }

    #[test]
    fn port_requests_cover_exact_ranges_ephemeral_and_publish_all() {
        let mut host = HostConfig::default();
        host.port_bindings.insert(
            "80/tcp".into(),
            vec![PortBinding {
                host_ip: String::new(),
                host_port: "8080".into(),
            }],
        );
        host.port_bindings.insert(
            "53/udp".into(),
            vec![PortBinding {
                host_ip: "127.0.0.1".into(),
                host_port: "5300-5310".into(),
            }],
        );
        host.publish_all_ports = true;
        let mut config = ContainerConfig::default();
        config.exposed_ports.insert("80/tcp".into());
        config.exposed_ports.insert("443/tcp".into());
        let r = port_requests(&host, &config).unwrap();
        assert_eq!(r.len(), 3);
        assert!(r.iter().any(|(p, proto, req)| *p == 53
            && *proto == Protocol::Udp
            && req.host_port
                == HostPort::Range {
                    first: 5300,
                    last: 5310
                }
            && req.host_ip == Ipv4Addr::LOCALHOST));
        assert!(r
            .iter()
            .any(|(p, _, req)| *p == 80 && req.host_port == HostPort::Exact(8080)));
        assert!(r
            .iter()
            .any(|(p, _, req)| *p == 443 && req.host_port == HostPort::Ephemeral));
        host.port_bindings
            .insert("x/tcp".into(), vec![PortBinding::default()]);
        assert!(port_requests(&host, &config).is_err());
    }
}
