//! berth's nftables rules: NAT out, isolation between networks, `--internal`, published
//! ports.
//!
//! Everything lives in one `ip` family table per daemon, named by the daemon (so parallel
//! test daemons never share one), and nothing outside it is touched. The table's base
//! chains dispatch through maps, so each network and each published port is one map
//! element plus, for networks, three small chains of its own:
//!
//! ```text
//! forward (filter):   ct state established,related accept
//!                     iifname vmap @from_bridge   -> in_<bridge>
//!                     oifname vmap @to_bridge     -> out_<bridge>
//! in_<bridge>:        oifname <bridge> accept; then either drop (internal) or
//!                     ct status dnat accept; oifname @bridges drop; accept
//! out_<bridge>:       ct status dnat accept (published ports); drop
//! postrouting (nat):  ip saddr 127.0.0.0/8 ct status dnat oifname @bridges masquerade
//!                     ip saddr vmap @masq         -> nat_<bridge>
//! nat_<bridge>:       oifname <bridge> ct status dnat masquerade   (hairpin)
//!                     oifname != <bridge> masquerade               (NAT out)
//! prerouting, output: fib daddr type local ip daddr . meta l4proto . th dport vmap @ports_ip
//!                     fib daddr type local meta l4proto . th dport vmap @ports_any
//! p_<proto>_<port>:   meta l4proto <proto> dnat to <container>:<port>   (p_<a>_<b>_<c>_<d>_... for one address)
//! ```
//!
//! Published ports are DNAT rules for traffic to any local address (from outside in
//! prerouting, from the host and from containers through the host's addresses in
//! output/prerouting). Connections to `127.0.0.1:PORT` work because the bridge gets
//! `route_localnet=1` and loopback-sourced DNAT traffic is masqueraded; no proxy copies the
//! bytes. A port bound to one host address is only DNATed for that address.
//!
//! Every call is one `nft -f -` transaction that first re-declares the table, its maps and
//! base chains and rewrites the base chains' rules, then makes its change with `add` +
//! `delete` pairs whose values are fixed by their keys, so each call is atomic and idempotent and works on a table that a restart
//! or [`Firewall::flush_all`] left missing. IPv6 is not handled yet (IPv4 networks only).

use crate::ipam::Subnet;
use crate::ports::Protocol;
use berth_core::error::{ErrorKind, HasKind};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// What went wrong applying rules.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("invalid nftables table name {name:?}: letters, digits and '_' only, at most 64")]
    InvalidTable { name: String },
    #[error("invalid bridge name {name:?} for a firewall rule")]
    InvalidBridge { name: String },
    #[error("running {program}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("nft refused the rules of table {table}: {stderr}")]
    Nft { table: String, stderr: String },
    #[error("setting {path}")]
    Sysctl {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for FirewallError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidTable { .. } | Self::InvalidBridge { .. } => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        }
    }
}
crate::error::into_core_error!(FirewallError);

/// The firewall view of one bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: String,
    pub subnet: Subnet,
    /// `--internal`: nothing leaves the network and nothing enters it from outside.
    pub internal: bool,
}

/// One published port: host address and port to container address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortMapping {
    pub protocol: Protocol,
    /// `0.0.0.0` for every host address.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// berth's nftables table.
#[derive(Debug, Clone)]
pub struct Firewall {
    table: String,
    nft: PathBuf,
}

impl Firewall {
    /// The firewall for table `table` (`ip` family), applied with the `nft` found in PATH.
    pub fn new(table: impl Into<String>) -> Result<Self, FirewallError> {
        Self::with_nft(table, "nft")
    }

    /// The same with an explicit `nft` binary.
    pub fn with_nft(
        table: impl Into<String>,
        nft: impl Into<PathBuf>,
    ) -> Result<Self, FirewallError> {
        let table = table.into();
        let valid = !table.is_empty()
            && table.len() <= 64
            && table.starts_with(|c: char| c.is_ascii_alphabetic())
            && table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(FirewallError::InvalidTable { name: table });
        }
        Ok(Self {
            table,
            nft: nft.into(),
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table and its base chains (or repairs them) and turns IPv4 forwarding
    /// on.
    pub async fn ensure_base(&self) -> Result<(), FirewallError> {
        write_sysctl("/proc/sys/net/ipv4/ip_forward")?;
        self.apply(&[]).await
    }

    /// Adds or refreshes a network's rules. Its bridge must exist (it gets
    /// `route_localnet=1`, so that ports published on 127.0.0.1 reach its containers).
    pub async fn ensure_network(&self, network: &NetworkRules) -> Result<(), FirewallError> {
        check_bridge(&network.bridge)?;
        write_sysctl(&format!(
            "/proc/sys/net/ipv4/conf/{}/route_localnet",
            network.bridge
        ))?;
        self.apply(&[network]).await
    }

    /// Removes a network's rules; removing twice is fine.
    pub async fn remove_network(&self, network: &NetworkRules) -> Result<(), FirewallError> {
        check_bridge(&network.bridge)?;
        let mut script = String::new();
        remove_network_commands(&mut script, &self.table, network);
        self.run(&script, &[network], &[]).await
    }

    /// Adds DNAT entries for `mappings`, replacing any entry for the same host address,
    /// protocol and port. The engine reserves the host ports first ([`crate::ports`]).
    pub async fn publish(&self, mappings: &[PortMapping]) -> Result<(), FirewallError> {
        let mut script = String::new();
        for mapping in mappings {
            let (map, key) = port_key(mapping);
            let chain = port_chain(mapping);
            let t = &self.table;
            let _ = writeln!(script, "flush chain ip {t} {chain}");
            let _ = writeln!(
                script,
                "add rule ip {t} {chain} meta l4proto {} dnat to {}:{}",
                mapping.protocol, mapping.container_ip, mapping.container_port
            );
            let _ = writeln!(
                script,
                "add element ip {t} {map} {{ {key} : jump {chain} }}"
            );
        }
        self.run(&script, &[], mappings).await
    }

    /// Removes the DNAT entries of `mappings`; missing ones are fine.
    pub async fn unpublish(&self, mappings: &[PortMapping]) -> Result<(), FirewallError> {
        let mut script = String::new();
        for mapping in mappings {
            let (map, key) = port_key(mapping);
            let chain = port_chain(mapping);
            let t = &self.table;
            // The element's value is fixed by its key, so add + delete never conflicts.
            let _ = writeln!(
                script,
                "add element ip {t} {map} {{ {key} : jump {chain} }}"
            );
            let _ = writeln!(script, "delete element ip {t} {map} {{ {key} }}");
            let _ = writeln!(script, "flush chain ip {t} {chain}");
            let _ = writeln!(script, "delete chain ip {t} {chain}");
        }
        self.run(&script, &[], mappings).await
    }

    /// Deletes the whole table (daemon uninstall, test teardown). Missing is fine.
    pub async fn flush_all(&self) -> Result<(), FirewallError> {
        let script = format!("table ip {t}\ndelete table ip {t}\n", t = self.table);
        self.nft(&script).await
    }

    async fn apply(&self, networks: &[&NetworkRules]) -> Result<(), FirewallError> {
        let mut script = String::new();
        for network in networks {
            ensure_network_commands(&mut script, &self.table, network);
        }
        self.run(&script, networks, &[]).await
    }

    /// Runs `commands` after the base declarations, declaring the chains of `networks` and
    /// `ports` in the table block (nft 1.0.6 cannot bind a chain added by a later command
    /// of the same transaction to an interval map).
    async fn run(
        &self,
        commands: &str,
        networks: &[&NetworkRules],
        ports: &[PortMapping],
    ) -> Result<(), FirewallError> {
        let mut script = base_script(&self.table, networks, ports);
        script.push_str(commands);
        self.nft(&script).await
    }

    async fn nft(&self, script: &str) -> Result<(), FirewallError> {
        let spawn_err = |source| FirewallError::Spawn {
            program: self.nft.clone(),
            source,
        };
        let mut child = tokio::process::Command::new(&self.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_err)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(spawn_err)?;
        drop(stdin);
        let output = child.wait_with_output().await.map_err(spawn_err)?;
        if output.status.success() {
            Ok(())
        } else {
            Err(FirewallError::Nft {
                table: self.table.clone(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }
}

/// The table, maps and base chains, declared (idempotently), then the base chains' rules
/// rewritten.
fn base_script(table: &str, networks: &[&NetworkRules], ports: &[PortMapping]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "table ip {table} {{");
    s.push_str(concat!(
        "  set bridges { type ifname; }\n",
        "  map from_bridge { type ifname : verdict; }\n",
        "  map to_bridge { type ifname : verdict; }\n",
        "  map masq { type ipv4_addr : verdict; flags interval; }\n",
        "  map ports_any { type inet_proto . inet_service : verdict; }\n",
        "  map ports_ip { type ipv4_addr . inet_proto . inet_service : verdict; }\n",
        "  chain prerouting { type nat hook prerouting priority dstnat; policy accept; }\n",
        "  chain output { type nat hook output priority -100; policy accept; }\n",
        "  chain postrouting { type nat hook postrouting priority srcnat; policy accept; }\n",
        "  chain forward { type filter hook forward priority filter; policy accept; }\n",
    ));
    for network in networks {
        for prefix in ["in", "out", "nat"] {
            let _ = writeln!(s, "  chain {prefix}_{} {{ }}", network.bridge);
        }
    }
    for mapping in ports {
        let _ = writeln!(s, "  chain {} {{ }}", port_chain(mapping));
    }
    s.push_str("}\n");
    let dnat = [
        "fib daddr type local ip daddr . meta l4proto . th dport vmap @ports_ip",
        "fib daddr type local meta l4proto . th dport vmap @ports_any",
    ];
    for chain in ["prerouting", "output"] {
        let _ = writeln!(s, "flush chain ip {table} {chain}");
        for rule in dnat {
            let _ = writeln!(s, "add rule ip {table} {chain} {rule}");
        }
    }
    let _ = writeln!(s, "flush chain ip {table} postrouting");
    let _ = writeln!(
        s,
        "add rule ip {table} postrouting ip saddr 127.0.0.0/8 ct status dnat oifname @bridges masquerade"
    );
    let _ = writeln!(s, "add rule ip {table} postrouting ip saddr vmap @masq");
    let _ = writeln!(s, "flush chain ip {table} forward");
    for rule in [
        "ct state established,related accept",
        "iifname vmap @from_bridge",
        "oifname vmap @to_bridge",
    ] {
        let _ = writeln!(s, "add rule ip {table} forward {rule}");
    }
    s
}

/// Removes a network's map elements (add + delete, so a missing one is no error), then
/// refills its chains and adds the elements again.
fn ensure_network_commands(s: &mut String, table: &str, network: &NetworkRules) {
    let br = &network.bridge;
    delete_network_elements(s, table, network);
    let rules_in: &[String] = &if network.internal {
        vec![format!("oifname \"{br}\" accept"), "drop".into()]
    } else {
        vec![
            format!("oifname \"{br}\" accept"),
            "ct status dnat accept".into(),
            "oifname @bridges drop".into(),
            "accept".into(),
        ]
    };
    let rules_out: &[String] = &if network.internal {
        vec!["drop".into()]
    } else {
        vec!["ct status dnat accept".into(), "drop".into()]
    };
    let rules_nat: Vec<String> = if network.internal {
        vec![]
    } else {
        vec![
            format!("oifname \"{br}\" ct status dnat masquerade"),
            format!("oifname != \"{br}\" masquerade"),
        ]
    };
    for (chain, rules) in [
        ("in", rules_in),
        ("out", rules_out),
        ("nat", &rules_nat[..]),
    ] {
        let _ = writeln!(s, "flush chain ip {table} {chain}_{br}");
        for rule in rules {
            let _ = writeln!(s, "add rule ip {table} {chain}_{br} {rule}");
        }
    }
    let _ = writeln!(s, "add element ip {table} bridges {{ \"{br}\" }}");
    let _ = writeln!(
        s,
        "add element ip {table} from_bridge {{ \"{br}\" : jump in_{br} }}"
    );
    let _ = writeln!(
        s,
        "add element ip {table} to_bridge {{ \"{br}\" : jump out_{br} }}"
    );
    if !network.internal {
        let _ = writeln!(
            s,
            "add element ip {table} masq {{ {} : jump nat_{br} }}",
            network.subnet
        );
    }
}

fn delete_network_elements(s: &mut String, table: &str, network: &NetworkRules) {
    let br = &network.bridge;
    let subnet = network.subnet;
    for (set, key, value) in [
        ("bridges", format!("\"{br}\""), String::new()),
        (
            "from_bridge",
            format!("\"{br}\""),
            format!(" : jump in_{br}"),
        ),
        (
            "to_bridge",
            format!("\"{br}\""),
            format!(" : jump out_{br}"),
        ),
        ("masq", subnet.to_string(), format!(" : jump nat_{br}")),
    ] {
        let _ = writeln!(s, "add element ip {table} {set} {{ {key}{value} }}");
        let _ = writeln!(s, "delete element ip {table} {set} {{ {key} }}");
    }
}

fn remove_network_commands(s: &mut String, table: &str, network: &NetworkRules) {
    delete_network_elements(s, table, network);
    for chain in ["in", "out", "nat"] {
        let _ = writeln!(s, "flush chain ip {table} {chain}_{}", network.bridge);
        let _ = writeln!(s, "delete chain ip {table} {chain}_{}", network.bridge);
    }
}

/// The map and key of a mapping: `ports_any` for `0.0.0.0`, `ports_ip` for one address.
fn port_key(mapping: &PortMapping) -> (&'static str, String) {
    let proto = mapping.protocol.as_str();
    if mapping.host_ip.is_unspecified() {
        ("ports_any", format!("{proto} . {}", mapping.host_port))
    } else {
        (
            "ports_ip",
            format!("{} . {proto} . {}", mapping.host_ip, mapping.host_port),
        )
    }
}

/// The chain holding a published port's DNAT rule, named after the map key so that the
/// key always maps to the same verdict: `p_tcp_8080`, `p_192_0_2_2_udp_53`.
fn port_chain(mapping: &PortMapping) -> String {
    let proto = mapping.protocol.as_str();
    if mapping.host_ip.is_unspecified() {
        format!("p_{proto}_{}", mapping.host_port)
    } else {
        let [a, b, c, d] = mapping.host_ip.octets();
        format!("p_{a}_{b}_{c}_{d}_{proto}_{}", mapping.host_port)
    }
}

fn check_bridge(name: &str) -> Result<(), FirewallError> {
    // Bridge names become chain names and quoted strings in the script.
    let valid = !name.is_empty()
        && name.len() <= 15
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if valid {
        Ok(())
    } else {
        Err(FirewallError::InvalidBridge {
            name: name.to_string(),
        })
    }
}

/// Writes `1` to a sysctl file unless it already holds it.
fn write_sysctl(path: &str) -> Result<(), FirewallError> {
    let err = |source| FirewallError::Sysctl {
        path: path.to_string(),
        source,
    };
    if std::fs::read_to_string(path).map_err(err)?.trim() == "1" {
        return Ok(());
    }
    std::fs::write(path, "1").map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(internal: bool) -> NetworkRules {
        NetworkRules {
            bridge: "br-test".into(),
            subnet: "10.9.0.0/24".parse().unwrap(),
            internal,
        }
    }

    #[test]
    fn table_names_are_checked() {
        assert!(Firewall::new("berth_1").is_ok());
        assert!(Firewall::new("1berth").is_err());
        assert!(Firewall::new("berth; flush ruleset").is_err());
        assert!(Firewall::new("").is_err());
    }

    #[test]
    fn bridge_names_that_could_escape_the_script_are_refused() {
        assert!(check_bridge("br-0123456789a").is_ok());
        assert!(check_bridge("br\" accept").is_err());
        assert!(check_bridge("0br").is_err());
    }

    #[test]
    fn the_base_script_declares_network_chains_inside_the_table_block() {
        let net = network(false);
        let script = base_script("bt", &[&net], &[]);
        let block_end = script.find("}\nflush").unwrap();
        assert!(script[..block_end].contains("chain nat_br-test { }"));
        assert!(script.contains("add rule ip bt forward ct state established,related accept"));
    }

    #[test]
    fn internal_networks_drop_everything_leaving_and_get_no_masquerade() {
        let mut script = String::new();
        ensure_network_commands(&mut script, "bt", &network(true));
        assert!(script.contains("add rule ip bt in_br-test drop"));
        assert!(!script.contains("masquerade"));
        assert!(!script
            .contains("add element ip bt masq { 10.9.0.0/24 : jump nat_br-test }\nadd element"));
        let mut script = String::new();
        ensure_network_commands(&mut script, "bt", &network(false));
        assert!(script.ends_with("add element ip bt masq { 10.9.0.0/24 : jump nat_br-test }\n"));
        assert!(script.contains("add rule ip bt in_br-test oifname @bridges drop"));
    }

    #[test]
    fn ports_bound_to_one_address_use_the_address_map() {
        let mapping = PortMapping {
            protocol: Protocol::Udp,
            host_ip: "192.0.2.2".parse().unwrap(),
            host_port: 53,
            container_ip: "10.9.0.2".parse().unwrap(),
            container_port: 5353,
        };
        assert_eq!(
            port_key(&mapping),
            ("ports_ip", "192.0.2.2 . udp . 53".to_string())
        );
        let any = PortMapping {
            host_ip: Ipv4Addr::UNSPECIFIED,
            ..mapping
        };
        assert_eq!(port_key(&any), ("ports_any", "udp . 53".to_string()));
        assert_eq!(port_chain(&mapping), "p_192_0_2_2_udp_53");
        assert_eq!(port_chain(&any), "p_udp_53");
    }
}
