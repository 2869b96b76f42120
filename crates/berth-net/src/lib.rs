//! Container networking for berth: what the engine calls to realise the networks and
//! endpoints it keeps in its database.
//!
//! - [`ipam`]: subnets, address pools, Docker's default pools and overlap checks.
//! - [`netns`]: named network namespaces (bind-mounted nsfs files) and running code inside
//!   one on a dedicated thread.
//! - [`bridge`]: the bridge driver over netlink: bridges, veth endpoints, host routes.
//! - [`firewall`]: berth's own nftables table: NAT out, isolation, `--internal`, published
//!   ports (DNAT, loopback included), applied as atomic `nft -f -` transactions.
//! - [`ports`]: host port reservation (bound sockets) and ephemeral port choice.
//! - [`dns`]: the embedded DNS server on `127.0.0.11:53` of each container on a
//!   user-defined network, answering from a shared [`dns::DnsTable`].
//!
//! The crate keeps no state of its own between calls beyond what its values hold: the
//! engine persists networks, endpoints, addresses and port bindings, and after a restart
//! calls the idempotent `ensure_*` functions again.

pub mod bridge;
pub mod dns;
mod error;
pub mod firewall;
pub mod ipam;
mod netlink;
pub mod netns;
pub mod ports;
