//! Host ports of published container ports: choosing ephemeral ports and holding the
//! ones in use.
//!
//! A published host port is owned by berth for as long as the container publishes it:
//! [`PortAllocator::reserve`] binds a socket on `HOST_IP:PORT` (TCP or UDP) and keeps it
//! in the returned [`ReservedPort`] until dropped. The socket never listens, so it never
//! receives anything (traffic is DNATed to the container before it could), but it makes
//! other programs' `bind` fail, and it makes berth's own reservation fail with Docker's
//! error when something else already holds the port:
//! `Bind for 0.0.0.0:8080 failed: port is already allocated`.
//!
//! Ephemeral ports (`-p 80`) come from Docker's range 32768–60999, searched from one past
//! the last port handed out; ports that cannot be bound are skipped. Parsing `-p` specs is
//! the CLI's and engine's job; [`PortRequest`] is the parsed form, one per port (ranges
//! are expanded by the caller).

use berth_core::error::{ErrorKind, HasKind};
use rustix::fd::OwnedFd;
use rustix::net::{AddressFamily, SocketType};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;
use std::sync::Mutex;

/// Docker's range for ephemeral host ports.
pub const EPHEMERAL_PORTS: (u16, u16) = (32768, 60999);

/// What went wrong reserving a host port.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("Bind for {host_ip}:{port} failed: port is already allocated")]
    AlreadyAllocated { host_ip: Ipv4Addr, port: String },
    #[error("Bind for {host_ip}:{port} failed: cannot assign requested address")]
    AddressNotAvailable { host_ip: Ipv4Addr, port: u16 },
    #[error("reserving {protocol} port {host_ip}:{port}")]
    Bind {
        protocol: Protocol,
        host_ip: Ipv4Addr,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid protocol {input:?}: tcp or udp")]
    InvalidProtocol { input: String },
}

impl HasKind for PortError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyAllocated { .. } => ErrorKind::Conflict,
            Self::AddressNotAvailable { .. } | Self::InvalidProtocol { .. } => {
                ErrorKind::InvalidArgument
            }
            Self::Bind { .. } => ErrorKind::Internal,
        }
    }
}
crate::error::into_core_error!(PortError);

/// A transport protocol of published ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = PortError;

    fn from_str(input: &str) -> Result<Self, PortError> {
        match input {
            "tcp" => Ok(Self::Tcp),
            "udp" => Ok(Self::Udp),
            _ => Err(PortError::InvalidProtocol {
                input: input.to_string(),
            }),
        }
    }
}

/// Which host port a published port wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPort {
    /// `-p 80`: any free port of the ephemeral range.
    Ephemeral,
    /// `-p 8080:80`.
    Exact(u16),
    /// `-p 8000-8010:80`: the first free port of the range.
    Range { first: u16, last: u16 },
}

/// One host port to reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRequest {
    pub protocol: Protocol,
    /// `0.0.0.0` for every address.
    pub host_ip: Ipv4Addr,
    pub host_port: HostPort,
}

/// A host port held by a bound socket until dropped.
#[derive(Debug)]
pub struct ReservedPort {
    pub protocol: Protocol,
    pub host_ip: Ipv4Addr,
    pub port: u16,
    _socket: OwnedFd,
}

/// Hands out host ports; shared by the whole daemon.
#[derive(Debug)]
pub struct PortAllocator {
    first: u16,
    last: u16,
    /// Where the next ephemeral search starts.
    next: Mutex<u16>,
}

impl Default for PortAllocator {
    fn default() -> Self {
        Self::with_range(EPHEMERAL_PORTS.0, EPHEMERAL_PORTS.1)
    }
}

impl PortAllocator {
    /// An allocator whose ephemeral ports come from `first..=last`.
    pub fn with_range(first: u16, last: u16) -> Self {
        let (first, last) = (first.min(last).max(1), last.max(first));
        Self {
            first,
            last,
            next: Mutex::new(first),
        }
    }

    /// Reserves one host port.
    pub fn reserve(&self, request: &PortRequest) -> Result<ReservedPort, PortError> {
        let PortRequest {
            protocol,
            host_ip,
            host_port,
        } = *request;
        match host_port {
            HostPort::Exact(port) => {
                bind(protocol, host_ip, port)?.ok_or_else(|| PortError::AlreadyAllocated {
                    host_ip,
                    port: port.to_string(),
                })
            }
            HostPort::Range { first, last } => {
                for port in first..=last {
                    if let Some(reserved) = bind(protocol, host_ip, port)? {
                        return Ok(reserved);
                    }
                }
                Err(PortError::AlreadyAllocated {
                    host_ip,
                    port: format!("{first}-{last}"),
                })
            }
            HostPort::Ephemeral => {
                let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
                let span = u32::from(self.last - self.first) + 1;
                let start = u32::from(next.clamp(self.first, self.last) - self.first);
                for step in 0..span {
                    let port = self.first + ((start + step) % span) as u16;
                    if let Some(reserved) = bind(protocol, host_ip, port)? {
                        *next = if port == self.last {
                            self.first
                        } else {
                            port + 1
                        };
                        return Ok(reserved);
                    }
                }
                Err(PortError::AlreadyAllocated {
                    host_ip,
                    port: format!("{}-{}", self.first, self.last),
                })
            }
        }
    }

    /// Reserves every request or none: on the first failure the ports already reserved
    /// are released and the error is returned.
    pub fn reserve_all(&self, requests: &[PortRequest]) -> Result<Vec<ReservedPort>, PortError> {
        requests.iter().map(|r| self.reserve(r)).collect()
    }
}

/// Binds `host_ip:port`; `None` when the port is taken.
fn bind(
    protocol: Protocol,
    host_ip: Ipv4Addr,
    port: u16,
) -> Result<Option<ReservedPort>, PortError> {
    let bind_err = |source: std::io::Error| PortError::Bind {
        protocol,
        host_ip,
        port,
        source,
    };
    let kind = match protocol {
        Protocol::Tcp => SocketType::STREAM,
        Protocol::Udp => SocketType::DGRAM,
    };
    // No SO_REUSEADDR: with it, another program's SO_REUSEADDR socket could still bind the
    // port while ours is not listening.
    let socket = rustix::net::socket_with(
        AddressFamily::INET,
        kind,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| bind_err(e.into()))?;
    match rustix::net::bind(&socket, &SocketAddrV4::new(host_ip, port)) {
        Ok(()) => Ok(Some(ReservedPort {
            protocol,
            host_ip,
            port,
            _socket: socket,
        })),
        Err(rustix::io::Errno::ADDRINUSE) => Ok(None),
        Err(rustix::io::Errno::ADDRNOTAVAIL) => {
            Err(PortError::AddressNotAvailable { host_ip, port })
        }
        Err(e) => Err(bind_err(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(port: HostPort) -> PortRequest {
        PortRequest {
            protocol: Protocol::Tcp,
            host_ip: Ipv4Addr::LOCALHOST,
            host_port: port,
        }
    }

    #[test]
    fn a_port_held_elsewhere_gives_dockers_error() {
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = other.local_addr().unwrap().port();
        let err = PortAllocator::default()
            .reserve(&request(HostPort::Exact(port)))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("Bind for 127.0.0.1:{port} failed: port is already allocated")
        );
        assert_eq!(err.kind(), ErrorKind::Conflict);
    }

    #[test]
    fn a_reserved_port_keeps_others_out_until_dropped() {
        let allocator = PortAllocator::with_range(41000, 41999);
        let reserved = allocator.reserve(&request(HostPort::Ephemeral)).unwrap();
        assert!(std::net::TcpListener::bind(("127.0.0.1", reserved.port)).is_err());
        assert!(allocator
            .reserve(&request(HostPort::Exact(reserved.port)))
            .is_err());
        let port = reserved.port;
        drop(reserved);
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn ephemeral_ports_come_from_the_range_and_roll_forward() {
        let allocator = PortAllocator::with_range(42000, 42999);
        let a = allocator.reserve(&request(HostPort::Ephemeral)).unwrap();
        let b = allocator.reserve(&request(HostPort::Ephemeral)).unwrap();
        assert!((42000..=42999).contains(&a.port));
        assert!(b.port > a.port);
        let udp = allocator
            .reserve(&PortRequest {
                protocol: Protocol::Udp,
                ..request(HostPort::Ephemeral)
            })
            .unwrap();
        assert_eq!(udp.protocol, Protocol::Udp);
    }

    #[test]
    fn a_range_takes_its_first_free_port() {
        let allocator = PortAllocator::default();
        let held = allocator.reserve(&request(HostPort::Exact(43100))).unwrap();
        let next = allocator
            .reserve(&request(HostPort::Range {
                first: 43100,
                last: 43101,
            }))
            .unwrap();
        assert_eq!(next.port, 43101);
        let err = allocator
            .reserve(&request(HostPort::Range {
                first: 43100,
                last: 43101,
            }))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Bind for 127.0.0.1:43100-43101 failed: port is already allocated"
        );
        drop(held);
    }

    #[test]
    fn reserving_several_ports_is_all_or_nothing() {
        let allocator = PortAllocator::default();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = other.local_addr().unwrap().port();
        let err = allocator
            .reserve_all(&[
                request(HostPort::Exact(43200)),
                request(HostPort::Exact(taken)),
            ])
            .unwrap_err();
        assert!(matches!(err, PortError::AlreadyAllocated { .. }));
        // The first port was released again.
        std::net::TcpListener::bind("127.0.0.1:43200").unwrap();
    }

    #[test]
    fn addresses_the_host_does_not_have_are_refused() {
        let err = PortAllocator::default()
            .reserve(&PortRequest {
                host_ip: "203.0.113.254".parse().unwrap(),
                ..request(HostPort::Exact(8080))
            })
            .unwrap_err();
        assert!(matches!(err, PortError::AddressNotAvailable { .. }));
    }
}
