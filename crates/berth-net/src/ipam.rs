//! IPv4 address management: subnets, address pools and the choice of a free subnet.
//!
//! [`Subnet`] is a canonical IPv4 prefix (`10.1.0.0/24`; host bits set are refused with
//! Docker's message). [`PoolConfig`] is what `network create` gives (`--subnet`,
//! `--ip-range`, `--gateway`); [`AddressPool`] hands out container addresses from it: the
//! gateway is the first usable address unless given, the network and broadcast addresses
//! are never handed out, and an address in use is never handed out again until released.
//! Allocation rolls forward from the last address given (as Docker's allocator does), so a
//! just-released address is not reused at once. The pool's state is its set of addresses in
//! use, which the engine persists and hands back with [`AddressPool::restore`].
//!
//! [`first_free_subnet`] picks the subnet of a network created without `--subnet` from
//! Docker's default pools ([`DEFAULT_POOLS`]: 172.17–31.0.0/16, then 192.168.0.0/20 ...),
//! skipping subnets of existing networks and of host routes; [`check_subnet`] refuses an
//! explicit subnet that overlaps either.
//!
//! ```
//! use berth_net::ipam::{AddressPool, PoolConfig, Subnet};
//! let subnet: Subnet = "10.1.0.0/24".parse().unwrap();
//! let mut pool = AddressPool::new(PoolConfig::new(subnet)).unwrap();
//! assert_eq!(pool.gateway().to_string(), "10.1.0.1");
//! assert_eq!(pool.allocate().unwrap().to_string(), "10.1.0.2");
//! ```

use berth_core::error::{ErrorKind, HasKind};
use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// What went wrong with a subnet or an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("invalid subnet {input}: not an IPv4 CIDR (a.b.c.d/n)")]
    InvalidCidr { input: String },
    #[error("invalid subnet {input}: it should be {canonical}")]
    HostBitsSet { input: String, canonical: Subnet },
    #[error("no matching subnet for gateway {gateway}")]
    GatewayOutsideSubnet { gateway: Ipv4Addr },
    #[error("no matching subnet for range {range}")]
    RangeOutsideSubnet { range: Subnet },
    #[error("Pool overlaps with other one on this address space")]
    PoolOverlap { subnet: Subnet, existing: Subnet },
    #[error("subnet {subnet} overlaps with host route {route}{}", device_suffix(.device))]
    RouteOverlap {
        subnet: Subnet,
        route: Subnet,
        device: Option<String>,
    },
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    NoFreeSubnet,
    #[error("no available IPv4 addresses on this network's address pools: {subnet}")]
    PoolExhausted { subnet: Subnet },
    #[error("Invalid address {address}: It does not belong to any of this network's subnets")]
    AddressOutsidePool { address: Ipv4Addr },
    #[error("Address already in use")]
    AddressInUse { address: Ipv4Addr },
}

fn device_suffix(device: &Option<String>) -> String {
    device
        .as_deref()
        .map(|d| format!(" on {d}"))
        .unwrap_or_default()
}

impl HasKind for IpamError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::PoolOverlap { .. }
            | Self::RouteOverlap { .. }
            | Self::AddressInUse { .. }
            | Self::PoolExhausted { .. }
            | Self::NoFreeSubnet => ErrorKind::Conflict,
            _ => ErrorKind::InvalidArgument,
        }
    }
}
crate::error::into_core_error!(IpamError);

/// A canonical IPv4 prefix: the network address (host bits zero) and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix_len: u8,
}

impl Subnet {
    /// The subnet of `address/prefix_len`, host bits cleared. `prefix_len` is capped at 32.
    pub fn containing(address: Ipv4Addr, prefix_len: u8) -> Self {
        let prefix_len = prefix_len.min(32);
        Self {
            network: Ipv4Addr::from(u32::from(address) & mask(prefix_len)),
            prefix_len,
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The last address (all host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix_len))
    }

    /// The number of addresses, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len))
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & mask(self.prefix_len) == u32::from(self.network)
    }

    /// True when `other` lies entirely inside this subnet.
    pub fn contains_subnet(&self, other: &Subnet) -> bool {
        other.prefix_len >= self.prefix_len && self.contains(other.network)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The subnets of length `prefix_len` that make up this one, in address order.
    pub fn split(&self, prefix_len: u8) -> impl Iterator<Item = Subnet> {
        let base = u32::from(self.network) as u64;
        let (count, step) = if prefix_len < self.prefix_len || prefix_len > 32 {
            (0, 1)
        } else {
            (
                1u64 << (prefix_len - self.prefix_len),
                1u64 << (32 - prefix_len),
            )
        };
        (0..count).map(move |i| Subnet {
            network: Ipv4Addr::from((base + i * step) as u32),
            prefix_len,
        })
    }
}

fn mask(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl FromStr for Subnet {
    type Err = IpamError;

    /// Parses `a.b.c.d/n`; host bits set give Docker's "it should be ..." error.
    fn from_str(input: &str) -> Result<Self, IpamError> {
        let invalid = || IpamError::InvalidCidr {
            input: input.to_string(),
        };
        let (address, prefix) = input.split_once('/').ok_or_else(invalid)?;
        let address: Ipv4Addr = address.parse().map_err(|_| invalid())?;
        let prefix_len: u8 = prefix.parse().map_err(|_| invalid())?;
        if prefix_len > 32 || prefix.starts_with('+') {
            return Err(invalid());
        }
        let subnet = Subnet::containing(address, prefix_len);
        if subnet.network != address {
            return Err(IpamError::HostBitsSet {
                input: input.to_string(),
                canonical: subnet,
            });
        }
        Ok(subnet)
    }
}

/// One of the pools networks without `--subnet` take their subnet from: `base` split into
/// subnets of `size` bits (Docker's `default-address-pools` entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultPool {
    pub base: Subnet,
    pub size: u8,
}

const fn pool(a: u8, b: u8, base_len: u8, size: u8) -> DefaultPool {
    DefaultPool {
        base: Subnet {
            network: Ipv4Addr::new(a, b, 0, 0),
            prefix_len: base_len,
        },
        size,
    }
}

/// Docker's default address pools, in Docker's order.
pub const DEFAULT_POOLS: [DefaultPool; 16] = [
    pool(172, 17, 16, 16),
    pool(172, 18, 16, 16),
    pool(172, 19, 16, 16),
    pool(172, 20, 16, 16),
    pool(172, 21, 16, 16),
    pool(172, 22, 16, 16),
    pool(172, 23, 16, 16),
    pool(172, 24, 16, 16),
    pool(172, 25, 16, 16),
    pool(172, 26, 16, 16),
    pool(172, 27, 16, 16),
    pool(172, 28, 16, 16),
    pool(172, 29, 16, 16),
    pool(172, 30, 16, 16),
    pool(172, 31, 16, 16),
    pool(192, 168, 16, 20),
];

/// A route of the host: its destination and, when known, the device it goes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub destination: Subnet,
    pub device: Option<String>,
}

/// The first subnet of `pools` that overlaps no subnet of `in_use` and no host route.
/// Default routes (`0.0.0.0/0`) are ignored, as Docker does.
pub fn first_free_subnet(
    pools: &[DefaultPool],
    in_use: &[Subnet],
    host_routes: &[HostRoute],
) -> Result<Subnet, IpamError> {
    pools
        .iter()
        .flat_map(|pool| pool.base.split(pool.size))
        .find(|candidate| {
            !in_use.iter().any(|s| s.overlaps(candidate))
                && !host_routes
                    .iter()
                    .any(|r| r.destination.prefix_len > 0 && r.destination.overlaps(candidate))
        })
        .ok_or(IpamError::NoFreeSubnet)
}

/// Refuses `subnet` when it overlaps an existing network's subnet (Docker's message) or a
/// host route other than a default route.
pub fn check_subnet(
    subnet: &Subnet,
    in_use: &[Subnet],
    host_routes: &[HostRoute],
) -> Result<(), IpamError> {
    if let Some(existing) = in_use.iter().find(|s| s.overlaps(subnet)) {
        return Err(IpamError::PoolOverlap {
            subnet: *subnet,
            existing: *existing,
        });
    }
    if let Some(route) = host_routes
        .iter()
        .find(|r| r.destination.prefix_len > 0 && r.destination.overlaps(subnet))
    {
        return Err(IpamError::RouteOverlap {
            subnet: *subnet,
            route: route.destination,
            device: route.device.clone(),
        });
    }
    Ok(())
}

/// The address configuration of one network: `--subnet`, `--ip-range`, `--gateway`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    pub subnet: Subnet,
    /// Where container addresses come from; the whole subnet when `None`.
    pub range: Option<Subnet>,
    /// The bridge's address; the first usable address of the subnet when `None`.
    pub gateway: Option<Ipv4Addr>,
}

impl PoolConfig {
    pub fn new(subnet: Subnet) -> Self {
        Self {
            subnet,
            range: None,
            gateway: None,
        }
    }
}

/// The addresses of one network: which are in use, and which to hand out next.
#[derive(Debug, Clone)]
pub struct AddressPool {
    subnet: Subnet,
    range: Subnet,
    gateway: Ipv4Addr,
    in_use: BTreeSet<Ipv4Addr>,
    /// Where the next search starts (one past the last address handed out).
    next: u32,
}

impl AddressPool {
    /// Validates `config` (gateway and range inside the subnet) and makes an empty pool.
    pub fn new(config: PoolConfig) -> Result<Self, IpamError> {
        let subnet = config.subnet;
        let range = config.range.unwrap_or(subnet);
        if !subnet.contains_subnet(&range) {
            return Err(IpamError::RangeOutsideSubnet { range });
        }
        let gateway = match config.gateway {
            Some(gateway) if !subnet.contains(gateway) => {
                return Err(IpamError::GatewayOutsideSubnet { gateway });
            }
            Some(gateway) => gateway,
            None => first_usable(&subnet),
        };
        Ok(Self {
            subnet,
            range,
            gateway,
            in_use: BTreeSet::new(),
            next: u32::from(range.network),
        })
    }

    /// A pool whose addresses in `in_use` (persisted by the engine) are taken again.
    /// Addresses outside the subnet are ignored; allocation resumes after the highest one.
    pub fn restore(
        config: PoolConfig,
        in_use: impl IntoIterator<Item = Ipv4Addr>,
    ) -> Result<Self, IpamError> {
        let mut pool = Self::new(config)?;
        pool.in_use = in_use
            .into_iter()
            .filter(|a| pool.subnet.contains(*a))
            .collect();
        if let Some(last) = pool
            .in_use
            .iter()
            .filter(|a| pool.range.contains(**a))
            .max()
        {
            pool.next = u32::from(*last).wrapping_add(1);
        }
        Ok(pool)
    }

    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The addresses handed out and not released (the state to persist).
    pub fn in_use(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.in_use.iter().copied()
    }

    fn is_assignable(&self, address: Ipv4Addr) -> bool {
        let small = self.subnet.prefix_len >= 31;
        address != self.gateway
            && (small || (address != self.subnet.network && address != self.subnet.broadcast()))
    }

    /// Hands out the next free address of the range, rolling over at its end.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, IpamError> {
        let first = u32::from(self.range.network) as u64;
        let size = self.range.size();
        let start = (self.next as u64).saturating_sub(first) % size;
        for step in 0..size {
            let address = Ipv4Addr::from((first + (start + step) % size) as u32);
            if self.is_assignable(address) && !self.in_use.contains(&address) {
                self.in_use.insert(address);
                self.next = u32::from(address).wrapping_add(1);
                return Ok(address);
            }
        }
        Err(IpamError::PoolExhausted {
            subnet: self.subnet,
        })
    }

    /// Takes a given address (`--ip`): it must be in the subnet, not the gateway nor the
    /// network or broadcast address, and free.
    pub fn reserve(&mut self, address: Ipv4Addr) -> Result<(), IpamError> {
        if !self.subnet.contains(address) || !self.is_assignable(address) {
            return Err(if self.subnet.contains(address) {
                IpamError::AddressInUse { address }
            } else {
                IpamError::AddressOutsidePool { address }
            });
        }
        if !self.in_use.insert(address) {
            return Err(IpamError::AddressInUse { address });
        }
        Ok(())
    }

    /// Gives an address back; releasing a free address does nothing.
    pub fn release(&mut self, address: Ipv4Addr) {
        self.in_use.remove(&address);
    }
}

fn first_usable(subnet: &Subnet) -> Ipv4Addr {
    if subnet.prefix_len >= 31 {
        subnet.network
    } else {
        Ipv4Addr::from(u32::from(subnet.network) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_parse_and_print_canonically() {
        assert_eq!(subnet("10.1.0.0/24").to_string(), "10.1.0.0/24");
        assert_eq!(subnet("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(subnet("10.1.0.0/24").broadcast(), ip("10.1.0.255"));
    }

    #[test]
    fn subnets_with_host_bits_are_refused_with_dockers_message() {
        let err = "172.20.0.1/16".parse::<Subnet>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid subnet 172.20.0.1/16: it should be 172.20.0.0/16"
        );
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        assert!("fe80::/64".parse::<Subnet>().is_err());
    }

    #[test]
    fn gateway_is_the_first_address_unless_given() {
        let pool = AddressPool::new(PoolConfig::new(subnet("10.1.0.0/24"))).unwrap();
        assert_eq!(pool.gateway(), ip("10.1.0.1"));
        let mut config = PoolConfig::new(subnet("10.1.0.0/24"));
        config.gateway = Some(ip("10.1.0.254"));
        let mut pool = AddressPool::new(config).unwrap();
        assert_eq!(pool.gateway(), ip("10.1.0.254"));
        assert_eq!(pool.allocate().unwrap(), ip("10.1.0.1"));
    }

    #[test]
    fn gateway_and_range_outside_the_subnet_are_refused() {
        let mut config = PoolConfig::new(subnet("10.1.0.0/24"));
        config.gateway = Some(ip("10.2.0.1"));
        assert_eq!(
            AddressPool::new(config).unwrap_err().to_string(),
            "no matching subnet for gateway 10.2.0.1"
        );
        let mut config = PoolConfig::new(subnet("10.1.0.0/24"));
        config.range = Some(subnet("10.1.0.0/23"));
        assert!(matches!(
            AddressPool::new(config),
            Err(IpamError::RangeOutsideSubnet { .. })
        ));
    }

    #[test]
    fn allocation_never_repeats_an_address_in_use_and_rolls_forward() {
        let mut pool = AddressPool::new(PoolConfig::new(subnet("10.1.0.0/29"))).unwrap();
        let mut seen = BTreeSet::new();
        // /29: .0 network, .1 gateway, .7 broadcast: five addresses.
        for _ in 0..5 {
            assert!(seen.insert(pool.allocate().unwrap()));
        }
        assert_eq!(
            pool.allocate().unwrap_err().to_string(),
            "no available IPv4 addresses on this network's address pools: 10.1.0.0/29"
        );
        pool.release(ip("10.1.0.3"));
        assert_eq!(pool.allocate().unwrap(), ip("10.1.0.3"));
        pool.release(ip("10.1.0.2"));
        pool.release(ip("10.1.0.5"));
        // Rolls forward from the last given (.3): .5 comes before .2.
        assert_eq!(pool.allocate().unwrap(), ip("10.1.0.5"));
        assert_eq!(pool.allocate().unwrap(), ip("10.1.0.2"));
    }

    #[test]
    fn allocation_stays_in_the_ip_range() {
        let mut config = PoolConfig::new(subnet("10.1.0.0/16"));
        config.range = Some(subnet("10.1.5.0/30"));
        let mut pool = AddressPool::new(config).unwrap();
        assert_eq!(pool.gateway(), ip("10.1.0.1"));
        let got: Vec<_> = (0..4).map(|_| pool.allocate().unwrap()).collect();
        assert_eq!(
            got,
            ["10.1.5.0", "10.1.5.1", "10.1.5.2", "10.1.5.3"]
                .map(ip)
                .to_vec()
        );
        assert!(pool.allocate().is_err());
    }

    #[test]
    fn restored_pools_keep_their_addresses_taken() {
        let config = PoolConfig::new(subnet("10.1.0.0/24"));
        let pool = AddressPool::restore(config, [ip("10.1.0.2"), ip("10.1.0.9")]).unwrap();
        let mut pool2 = pool.clone();
        assert_eq!(pool2.allocate().unwrap(), ip("10.1.0.10"));
        assert_eq!(
            pool2.in_use().collect::<Vec<_>>(),
            ["10.1.0.2", "10.1.0.9", "10.1.0.10"].map(ip).to_vec()
        );
    }

    #[test]
    fn static_addresses_must_be_free_and_inside() {
        let mut pool = AddressPool::new(PoolConfig::new(subnet("10.1.0.0/24"))).unwrap();
        pool.reserve(ip("10.1.0.50")).unwrap();
        assert_eq!(
            pool.reserve(ip("10.1.0.50")).unwrap_err().to_string(),
            "Address already in use"
        );
        assert!(pool.reserve(ip("10.1.0.1")).is_err());
        assert_eq!(
            pool.reserve(ip("10.9.0.5")).unwrap_err().to_string(),
            "Invalid address 10.9.0.5: It does not belong to any of this network's subnets"
        );
        for _ in 0..252 {
            assert_ne!(pool.allocate().unwrap(), ip("10.1.0.50"));
        }
    }

    #[test]
    fn first_free_subnet_is_172_17_when_free_and_skips_used_ones_and_routes() {
        let routes = vec![HostRoute {
            destination: subnet("0.0.0.0/0"),
            device: Some("eth0".into()),
        }];
        assert_eq!(
            first_free_subnet(&DEFAULT_POOLS, &[], &routes).unwrap(),
            subnet("172.17.0.0/16")
        );
        let routes = vec![HostRoute {
            destination: subnet("172.18.5.0/24"),
            device: None,
        }];
        assert_eq!(
            first_free_subnet(&DEFAULT_POOLS, &[subnet("172.17.0.0/16")], &routes).unwrap(),
            subnet("172.19.0.0/16")
        );
        let all_172: Vec<Subnet> = (17..=31)
            .map(|b| Subnet::containing(Ipv4Addr::new(172, b, 0, 0), 16))
            .collect();
        assert_eq!(
            first_free_subnet(&DEFAULT_POOLS, &all_172, &[]).unwrap(),
            subnet("192.168.0.0/20")
        );
        assert_eq!(
            first_free_subnet(&DEFAULT_POOLS[..1], &all_172, &[]),
            Err(IpamError::NoFreeSubnet)
        );
    }

    #[test]
    fn overlapping_subnets_are_refused_with_dockers_message() {
        let err = check_subnet(&subnet("10.1.0.0/16"), &[subnet("10.1.2.0/24")], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Pool overlaps with other one on this address space"
        );
        assert_eq!(err.kind(), ErrorKind::Conflict);
        let routes = [HostRoute {
            destination: subnet("192.0.2.0/24"),
            device: Some("eth0".into()),
        }];
        assert_eq!(
            check_subnet(&subnet("192.0.0.0/16"), &[], &routes)
                .unwrap_err()
                .to_string(),
            "subnet 192.0.0.0/16 overlaps with host route 192.0.2.0/24 on eth0"
        );
        check_subnet(&subnet("10.2.0.0/16"), &[subnet("10.1.0.0/16")], &routes).unwrap();
    }
}
