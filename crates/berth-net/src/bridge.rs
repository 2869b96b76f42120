//! The bridge driver: Linux bridges and the veth pairs that attach containers to them,
//! all over netlink (no `ip` processes).
//!
//! [`BridgeDriver`] holds a netlink connection in the daemon's namespace.
//! [`BridgeDriver::ensure_bridge`] creates a bridge from a [`BridgeConfig`] (name, gateway
//! address and prefix, MTU) or adopts the one a previous daemon left (adding what is
//! missing), so it is safe to call at every start. [`BridgeDriver::attach`] connects a
//! network namespace to a bridge with one veth pair, described by an [`EndpointConfig`]: the
//! host side `veth<7 hex>` joins the bridge, the peer is created directly inside the
//! namespace under its final name (`eth0`, `eth1`, ...) with the endpoint's MAC, then gets its
//! address, comes up, and (for the endpoint that carries the default route) a default
//! route through the gateway. The host side is in hairpin mode, so a container reaches its
//! own published ports through the host's addresses. It returns an [`Attachment`] naming the host side, which
//! [`BridgeDriver::detach`] deletes (taking the peer with it). Attach is all or nothing: a
//! failure deletes the pair.
//!
//! MAC addresses follow Docker: [`MacAddr::from_ipv4`] gives `02:42:` followed by the four
//! bytes of the address.

use crate::ipam::{HostRoute, Subnet};
use crate::netlink::{self, errno, is_up, link_by_name, set_up, ConnectInError};
use crate::netns::NetnsError;
use berth_core::error::{ErrorKind, HasKind};
use futures_util::TryStreamExt;
use rand::Rng;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteType};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The MTU of links whose network sets none.
pub const DEFAULT_MTU: u32 = 1500;

/// The kernel's limit on interface names (IFNAMSIZ less the terminating zero).
const MAX_IFNAME: usize = 15;

/// What went wrong with a bridge or an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("opening a netlink connection")]
    Connect {
        #[source]
        source: std::io::Error,
    },
    #[error("invalid interface name {name:?}: 1 to 15 characters, no '/', ':' or whitespace")]
    InvalidName { name: String },
    #[error("{name} exists and is not a bridge")]
    NotABridge { name: String },
    #[error("bridge {name} not found")]
    NoSuchBridge { name: String },
    #[error("{action}")]
    Netlink {
        action: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("writing {path}")]
    Sysfs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening a netlink socket in {path}")]
    NetnsSocket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for LinkError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidName { .. } => ErrorKind::InvalidArgument,
            Self::NotABridge { .. } => ErrorKind::Conflict,
            Self::NoSuchBridge { .. } => ErrorKind::NotFound,
            Self::Netns(err) => err.kind(),
            _ => ErrorKind::Internal,
        }
    }
}
crate::error::into_core_error!(LinkError);

fn netlink_err(action: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let action = action.into();
    move |source| LinkError::Netlink { action, source }
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Docker's MAC for a container address: `02:42:` then the address's four bytes.
    pub fn from_ipv4(address: Ipv4Addr) -> Self {
        let [a, b, c, d] = address.octets();
        Self([0x02, 0x42, a, b, c, d])
    }

    /// A random locally administered unicast address in Docker's `02:42` range.
    pub fn random() -> Self {
        let mut bytes = [0x02, 0x42, 0, 0, 0, 0];
        rand::thread_rng().fill(&mut bytes[2..]);
        Self(bytes)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Error of [`MacAddr::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address: {input}")]
pub struct InvalidMac {
    pub input: String,
}

impl FromStr for MacAddr {
    type Err = InvalidMac;

    fn from_str(input: &str) -> Result<Self, InvalidMac> {
        let invalid = || InvalidMac {
            input: input.to_string(),
        };
        let mut bytes = [0u8; 6];
        let mut parts = input.split([':', '-']);
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(invalid)?;
            if part.len() != 2 {
                return Err(invalid());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Self(bytes))
    }
}

/// A bridge to create or adopt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Interface name: `berth0`, `br-<12 hex of the network id>` or `-o ...bridge.name`.
    pub name: String,
    /// The bridge's own address, the containers' gateway.
    pub gateway: Ipv4Addr,
    pub subnet: Subnet,
    pub mtu: u32,
}

/// One container interface on a bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// The interface's name inside the namespace: `eth0`, `eth1`, ...
    pub ifname: String,
    pub address: Ipv4Addr,
    /// The network's prefix length.
    pub prefix_len: u8,
    /// Install a default route through this gateway (the first endpoint of a container on a
    /// network that is not `--internal`).
    pub default_gateway: Option<Ipv4Addr>,
    /// The interface's MAC; [`MacAddr::from_ipv4`] of the address when `None`.
    pub mac: Option<MacAddr>,
    pub mtu: u32,
}

/// What [`BridgeDriver::attach`] made: the engine keeps it in the endpoint record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The host side of the veth pair, on the bridge.
    pub host_ifname: String,
    pub mac: MacAddr,
}

/// Creates and removes bridges and container endpoints through netlink.
#[derive(Debug, Clone)]
pub struct BridgeDriver {
    netlink: Handle,
}

impl BridgeDriver {
    /// Opens a netlink connection in the caller's (the daemon's) network namespace. Must
    /// be called inside a tokio runtime, which drives the connection.
    pub fn new() -> Result<Self, LinkError> {
        let netlink = netlink::connect().map_err(|source| LinkError::Connect { source })?;
        Ok(Self { netlink })
    }

    /// Creates the bridge, or adopts an existing one: adds the gateway address if missing,
    /// sets the MTU and brings it up. Idempotent.
    pub async fn ensure_bridge(&self, config: &BridgeConfig) -> Result<u32, LinkError> {
        check_ifname(&config.name)?;
        let name = &config.name;
        let link = match self.bridge_link(name).await? {
            Some(link) => link,
            None => {
                // An explicit MAC keeps the bridge's address from following its ports'.
                let create = LinkBridge::new(name)
                    .mtu(config.mtu)
                    .address(MacAddr::random().0.to_vec())
                    .build();
                match self.netlink.link().add(create).execute().await {
                    Ok(()) => {}
                    // Another caller created it meanwhile: adopt theirs.
                    Err(err) if errno(&err) == Some(netlink::libc_eexist()) => {}
                    Err(source) => {
                        return Err(LinkError::Netlink {
                            action: format!("creating bridge {name}"),
                            source,
                        })
                    }
                }
                self.bridge_link(name)
                    .await?
                    .ok_or_else(|| LinkError::NoSuchBridge { name: name.clone() })?
            }
        };
        let index = link.header.index;
        if netlink::mtu(&link) != Some(config.mtu) {
            self.netlink
                .link()
                .change(LinkUnspec::new_with_index(index).mtu(config.mtu).build())
                .execute()
                .await
                .map_err(netlink_err(format!("setting the MTU of {name}")))?;
        }
        if !self
            .has_address(index, config.gateway, config.subnet.prefix_len())
            .await?
        {
            match self
                .netlink
                .address()
                .add(
                    index,
                    IpAddr::V4(config.gateway),
                    config.subnet.prefix_len(),
                )
                .execute()
                .await
            {
                Ok(()) => {}
                Err(err) if errno(&err) == Some(netlink::libc_eexist()) => {}
                Err(source) => {
                    return Err(LinkError::Netlink {
                        action: format!(
                            "adding {}/{} to {name}",
                            config.gateway,
                            config.subnet.prefix_len()
                        ),
                        source,
                    })
                }
            }
        }
        if !is_up(&link) {
            set_up(&self.netlink, index)
                .await
                .map_err(netlink_err(format!("bringing {name} up")))?;
        }
        Ok(index)
    }

    /// Deletes the bridge; a bridge that is not there is fine. Refuses to delete a link of
    /// another kind.
    pub async fn delete_bridge(&self, name: &str) -> Result<(), LinkError> {
        check_ifname(name)?;
        match self.bridge_link(name).await? {
            Some(link) => self.delete_index(link.header.index, name).await,
            None => Ok(()),
        }
    }

    /// Connects the namespace at `netns` to `bridge` as described by `endpoint`.
    pub async fn attach(
        &self,
        bridge: &str,
        netns: &Path,
        endpoint: &EndpointConfig,
    ) -> Result<Attachment, LinkError> {
        check_ifname(&endpoint.ifname)?;
        let bridge_index = self
            .bridge_link(bridge)
            .await?
            .ok_or_else(|| LinkError::NoSuchBridge {
                name: bridge.to_string(),
            })?
            .header
            .index;
        let ns_file = File::open(netns).map_err(|source| NetnsError::Open {
            path: netns.to_path_buf(),
            source,
        })?;
        let mac = endpoint
            .mac
            .unwrap_or_else(|| MacAddr::from_ipv4(endpoint.address));
        let mut attempt = 0;
        let host_ifname = loop {
            let host_ifname = random_veth_name();
            // The peer is created inside the namespace under its final name, so neither a
            // move nor a rename is needed, and the host's own `eth0` is never in the way.
            let peer = LinkMessageBuilder::<LinkUnspec>::new()
                .name(endpoint.ifname.clone())
                .address(mac.0.to_vec())
                .mtu(endpoint.mtu)
                .setns_by_fd(ns_file.as_raw_fd())
                .build();
            let veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
                .name(host_ifname.clone())
                .mtu(endpoint.mtu)
                .controller(bridge_index)
                .up()
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                .build();
            match self.netlink.link().add(veth).execute().await {
                Ok(()) => break host_ifname,
                // A random host name can clash with another veth; try another once.
                Err(err) if errno(&err) == Some(netlink::libc_eexist()) && attempt == 0 => {
                    attempt += 1;
                }
                Err(source) => {
                    return Err(LinkError::Netlink {
                        action: format!(
                            "creating veth pair {host_ifname} / {} on {bridge}",
                            endpoint.ifname
                        ),
                        source,
                    })
                }
            }
        };
        // Hairpin mode lets a container reach itself through its own published port (the
        // DNATed packet goes back out the port it came in on), as Docker sets it.
        let hairpin = format!("/sys/class/net/{host_ifname}/brport/hairpin_mode");
        let configured = match std::fs::write(&hairpin, "1") {
            Ok(()) => self.configure_peer(netns, endpoint).await,
            Err(source) => Err(LinkError::Sysfs {
                path: hairpin.into(),
                source,
            }),
        };
        match configured {
            Ok(()) => Ok(Attachment { host_ifname, mac }),
            Err(err) => {
                if let Err(cleanup) = self.detach(&host_ifname).await {
                    tracing::warn!(%host_ifname, error = %cleanup, "removing a half-attached endpoint");
                }
                Err(err)
            }
        }
    }

    /// Address, up, default route and `lo` up, through a netlink socket in the namespace.
    async fn configure_peer(
        &self,
        netns: &Path,
        endpoint: &EndpointConfig,
    ) -> Result<(), LinkError> {
        let inside = netlink::connect_in(netns).await.map_err(|err| match err {
            ConnectInError::Netns(err) => LinkError::Netns(err),
            ConnectInError::Socket(source) => LinkError::NetnsSocket {
                path: netns.to_path_buf(),
                source,
            },
        })?;
        let ifname = &endpoint.ifname;
        let index = link_by_name(&inside, ifname)
            .await
            .map_err(netlink_err(format!(
                "looking up {ifname} in {}",
                netns.display()
            )))?
            .ok_or_else(|| LinkError::NoSuchBridge {
                name: ifname.clone(),
            })?
            .header
            .index;
        let address = inside
            .address()
            .add(index, IpAddr::V4(endpoint.address), endpoint.prefix_len)
            .execute();
        let up = set_up(&inside, index);
        let lo_up = set_up(&inside, netlink::LOOPBACK_INDEX);
        let (address, up, lo_up) = tokio::join!(address, up, lo_up);
        address.map_err(netlink_err(format!(
            "adding {}/{} to {ifname}",
            endpoint.address, endpoint.prefix_len
        )))?;
        up.map_err(netlink_err(format!("bringing {ifname} up")))?;
        lo_up.map_err(netlink_err("bringing lo up"))?;
        if let Some(gateway) = endpoint.default_gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gateway)
                .output_interface(index)
                .build();
            inside
                .route()
                .add(route)
                .execute()
                .await
                .map_err(netlink_err(format!(
                    "adding the default route via {gateway}"
                )))?;
        }
        Ok(())
    }

    /// Deletes the host side of an endpoint (the kernel deletes its peer, so the
    /// container's interface disappears). Missing is fine.
    ///
    /// This is for `network disconnect` and takes tens of milliseconds (the kernel waits
    /// for the device to be unregistered). When a container goes away, deleting its
    /// namespace ([`crate::netns::delete`], after dropping its DNS server) is enough: the
    /// kernel deletes every veth pair of the namespace in the background.
    pub async fn detach(&self, host_ifname: &str) -> Result<(), LinkError> {
        check_ifname(host_ifname)?;
        let link = link_by_name(&self.netlink, host_ifname)
            .await
            .map_err(netlink_err(format!("looking up {host_ifname}")))?;
        match link {
            Some(link) => self.delete_index(link.header.index, host_ifname).await,
            None => Ok(()),
        }
    }

    /// The IPv4 routes of the host's main table, for subnet overlap checks.
    pub async fn host_routes(&self) -> Result<Vec<HostRoute>, LinkError> {
        let names: HashMap<u32, String> = self
            .netlink
            .link()
            .get()
            .execute()
            .map_ok(|link| (link.header.index, link_name(&link).unwrap_or_default()))
            .try_collect()
            .await
            .map_err(netlink_err("listing links"))?;
        let request = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let routes: Vec<_> = self
            .netlink
            .route()
            .get(request)
            .execute()
            .try_collect()
            .await
            .map_err(netlink_err("listing routes"))?;
        Ok(routes
            .into_iter()
            .filter(|r| r.header.table == 254 && r.header.kind == RouteType::Unicast)
            .map(|r| {
                let destination = r
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
                        _ => None,
                    })
                    .unwrap_or(Ipv4Addr::UNSPECIFIED);
                let device = r.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(index) => names.get(index).cloned(),
                    _ => None,
                });
                HostRoute {
                    destination: Subnet::containing(
                        destination,
                        r.header.destination_prefix_length,
                    ),
                    device,
                }
            })
            .collect())
    }

    /// The bridge called `name`; `NotABridge` when a link of another kind has the name.
    async fn bridge_link(&self, name: &str) -> Result<Option<LinkMessage>, LinkError> {
        let link = link_by_name(&self.netlink, name)
            .await
            .map_err(netlink_err(format!("looking up {name}")))?;
        match link {
            Some(link) if !is_bridge(&link) => Err(LinkError::NotABridge {
                name: name.to_string(),
            }),
            other => Ok(other),
        }
    }

    async fn has_address(
        &self,
        index: u32,
        address: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<bool, LinkError> {
        let addresses: Vec<_> = self
            .netlink
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(netlink_err("listing bridge addresses"))?;
        Ok(addresses.iter().any(|a| {
            a.header.prefix_len == prefix_len
                && a.attributes.iter().any(
                    |attr| matches!(attr, AddressAttribute::Local(IpAddr::V4(a)) if *a == address),
                )
        }))
    }

    async fn delete_index(&self, index: u32, name: &str) -> Result<(), LinkError> {
        match self.netlink.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(err) if errno(&err) == Some(netlink::libc_enodev()) => Ok(()),
            Err(source) => Err(LinkError::Netlink {
                action: format!("deleting {name}"),
                source,
            }),
        }
    }
}

fn is_bridge(link: &LinkMessage) -> bool {
    link.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))),
        _ => false,
    })
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}

/// Docker's host-side name: `veth` and seven hex digits.
fn random_veth_name() -> String {
    format!(
        "veth{:07x}",
        rand::thread_rng().gen_range(0..0x1000_0000u32)
    )
}

fn check_ifname(name: &str) -> Result<(), LinkError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if valid {
        Ok(())
    } else {
        Err(LinkError::InvalidName {
            name: name.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_derive_from_the_address_as_docker_does() {
        let mac = MacAddr::from_ipv4(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(mac.to_string(), "02:42:ac:11:00:02");
        assert_eq!("02:42:AC:11:00:02".parse::<MacAddr>().unwrap(), mac);
        assert!("02:42:ac:11:00".parse::<MacAddr>().is_err());
        assert!("02:42:ac:11:00:02:03".parse::<MacAddr>().is_err());
        assert_eq!(&MacAddr::random().0[..2], &[0x02, 0x42]);
    }

    #[test]
    fn veth_names_are_veth_and_seven_hex_digits() {
        let name = random_veth_name();
        assert_eq!(name.len(), 11);
        assert!(name.starts_with("veth"));
        assert!(name[4..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn interface_names_longer_than_the_kernel_allows_are_refused() {
        assert!(check_ifname("br-0123456789ab").is_ok());
        assert!(check_ifname("br-0123456789abc").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("").is_err());
    }
}
