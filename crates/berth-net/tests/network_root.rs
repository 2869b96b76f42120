//! Root tests of berth-net against the real kernel: bridges, veth endpoints, nftables
//! rules, published ports and the embedded DNS server. Every test makes its own
//! namespaces, bridges (`bt<pid><tag>`), subnets (`10.2xx.N.0/24`) and nftables table, and
//! guards remove them even when it fails.

mod common;

use berth_net::bridge::{
    BridgeConfig, BridgeDriver, EndpointConfig, LinkError, MacAddr, DEFAULT_MTU,
};
use berth_net::dns::{DnsServer, DnsTable, DnsView};
use berth_net::firewall::{Firewall, NetworkRules, PortMapping};
use berth_net::ports::{HostPort, PortAllocator, PortRequest, Protocol};
use common::*;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;

/// A bridge for the test subnet `10.2xx.<third>.0/24`, gateway `.1`, deleted on drop.
async fn bridge(driver: &BridgeDriver, tag: &str, third: u8) -> (BridgeConfig, LinkGuard) {
    let config = BridgeConfig {
        name: name(tag),
        gateway: host(third, 1),
        subnet: subnet(third),
        mtu: DEFAULT_MTU,
    };
    let guard = LinkGuard(config.name.clone());
    driver.ensure_bridge(&config).await.unwrap();
    (config, guard)
}

fn endpoint(ifname: &str, third: u8, fourth: u8, gateway: bool) -> EndpointConfig {
    EndpointConfig {
        ifname: ifname.to_string(),
        address: host(third, fourth),
        prefix_len: 24,
        default_gateway: gateway.then(|| host(third, 1)),
        mac: None,
        mtu: DEFAULT_MTU,
    }
}

fn rules(bridge: &BridgeConfig, internal: bool) -> NetworkRules {
    NetworkRules {
        bridge: bridge.name.clone(),
        subnet: bridge.subnet,
        internal,
    }
}

fn addr(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_created_with_lo_up_and_deleted_twice_without_error() {
    if !require_root("namespaces_are_created_with_lo_up_and_deleted_twice_without_error") {
        return;
    }
    let ns = TestNetns::new("ns").await;
    assert!(ns.path.exists());
    assert!(ns.ip(&["-o", "link", "show", "lo"]).contains("UP"));
    let again = berth_net::netns::create(ns.path.parent().unwrap(), &name("ns")).await;
    assert!(matches!(
        again,
        Err(berth_net::netns::NetnsError::Exists { .. })
    ));
    berth_net::netns::delete(&ns.path).unwrap();
    berth_net::netns::delete(&ns.path).unwrap();
    assert!(!ns.path.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_namespaces_on_one_bridge_reach_each_other_and_detach_removes_the_interface() {
    if !require_root(
        "two_namespaces_on_one_bridge_reach_each_other_and_detach_removes_the_interface",
    ) {
        return;
    }
    let driver = BridgeDriver::new().unwrap();
    let (br, _br_guard) = bridge(&driver, "a", 1).await;
    // A second ensure adopts the bridge as it is.
    driver.ensure_bridge(&br).await.unwrap();
    let (ns1, ns2) = (TestNetns::new("a1").await, TestNetns::new("a2").await);
    let e1 = driver
        .attach(&br.name, &ns1.path, &endpoint("eth0", 1, 2, true))
        .await
        .unwrap();
    let _g1 = LinkGuard(e1.host_ifname.clone());
    let e2 = driver
        .attach(&br.name, &ns2.path, &endpoint("eth0", 1, 3, true))
        .await
        .unwrap();
    let _g2 = LinkGuard(e2.host_ifname.clone());

    assert!(link_exists(&e1.host_ifname));
    assert_eq!(e1.mac, MacAddr::from_ipv4(host(1, 2)));
    let link = ns1.ip(&["-o", "link", "show", "eth0"]);
    assert!(link.contains(&e1.mac.to_string()), "{link}");
    assert!(ns1
        .ip(&["-o", "-4", "addr", "show", "eth0"])
        .contains(&format!("{}/24", host(1, 2))));
    assert!(ns1
        .ip(&["route"])
        .contains(&format!("default via {}", host(1, 1))));

    let server = TcpServer::start_in(&ns2.path, addr(host(1, 3), 0));
    assert_eq!(
        tcp_hello(Some(&ns1.path), server.address).unwrap(),
        format!("peer {}", host(1, 2))
    );

    driver.detach(&e1.host_ifname).await.unwrap();
    driver.detach(&e1.host_ifname).await.unwrap();
    assert!(!link_exists(&e1.host_ifname));
    assert!(ns1
        .ip(&["-o", "link", "show"])
        .lines()
        .all(|l| !l.contains("eth0")));
    assert!(tcp_blocked(Some(&ns1.path), server.address));

    driver.delete_bridge(&br.name).await.unwrap();
    driver.delete_bridge(&br.name).await.unwrap();
    assert!(!link_exists(&br.name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_bridge_is_adopted_and_other_links_are_not_taken_for_bridges() {
    if !require_root("an_existing_bridge_is_adopted_and_other_links_are_not_taken_for_bridges") {
        return;
    }
    let driver = BridgeDriver::new().unwrap();
    let name_br = name("b");
    let _guard = LinkGuard(name_br.clone());
    let status = std::process::Command::new("ip")
        .args(["link", "add", &name_br, "type", "bridge"])
        .status()
        .unwrap();
    assert!(status.success());
    let config = BridgeConfig {
        name: name_br.clone(),
        gateway: host(8, 1),
        subnet: subnet(8),
        mtu: 1400,
    };
    driver.ensure_bridge(&config).await.unwrap();
    let shown = String::from_utf8(
        std::process::Command::new("ip")
            .args(["-o", "addr", "show", "dev", &name_br])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(shown.contains(&format!("{}/24", host(8, 1))), "{shown}");
    let link = std::fs::read_to_string(format!("/sys/class/net/{name_br}/mtu")).unwrap();
    assert_eq!(link.trim(), "1400");

    let dummy = name("d");
    let _dummy_guard = LinkGuard(dummy.clone());
    let status = std::process::Command::new("ip")
        .args([
            "link",
            "add",
            &dummy,
            "type",
            "veth",
            "peer",
            "name",
            &name("dp"),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let err = driver
        .ensure_bridge(&BridgeConfig {
            name: dummy.clone(),
            ..config
        })
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::NotABridge { .. }), "{err}");
    assert!(driver.delete_bridge(&dummy).await.is_err());
    assert!(link_exists(&dummy));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_are_isolated_until_a_container_is_connected_to_both() {
    if !require_root("networks_are_isolated_until_a_container_is_connected_to_both") {
        return;
    }
    let table = name("tiso");
    let _table_guard = TableGuard(table.clone());
    let firewall = Firewall::new(&table).unwrap();
    let driver = BridgeDriver::new().unwrap();
    let (br_a, _ga) = bridge(&driver, "ia", 2).await;
    let (br_b, _gb) = bridge(&driver, "ib", 3).await;
    firewall.ensure_base().await.unwrap();
    firewall.ensure_network(&rules(&br_a, false)).await.unwrap();
    firewall.ensure_network(&rules(&br_b, false)).await.unwrap();

    let (ns1, ns2) = (TestNetns::new("i1").await, TestNetns::new("i2").await);
    let e1 = driver
        .attach(&br_a.name, &ns1.path, &endpoint("eth0", 2, 2, true))
        .await
        .unwrap();
    let _g1 = LinkGuard(e1.host_ifname.clone());
    let e2 = driver
        .attach(&br_b.name, &ns2.path, &endpoint("eth0", 3, 2, true))
        .await
        .unwrap();
    let _g2 = LinkGuard(e2.host_ifname.clone());
    let server = TcpServer::start_in(&ns2.path, addr(host(3, 2), 0));

    assert!(
        tcp_blocked(Some(&ns1.path), server.address),
        "isolated networks connected"
    );

    let e1b = driver
        .attach(&br_b.name, &ns1.path, &endpoint("eth1", 3, 3, false))
        .await
        .unwrap();
    let _g1b = LinkGuard(e1b.host_ifname.clone());
    assert!(ns1.ip(&["-o", "link", "show", "eth1"]).contains("eth1"));
    assert_eq!(
        tcp_hello(Some(&ns1.path), server.address).unwrap(),
        format!("peer {}", host(3, 3))
    );

    driver.detach(&e1b.host_ifname).await.unwrap();
    assert!(ns1
        .ip(&["-o", "link", "show"])
        .lines()
        .all(|l| !l.contains("eth1")));
    assert!(tcp_blocked(Some(&ns1.path), server.address));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_out_is_masqueraded_and_internal_networks_have_no_way_out() {
    if !require_root("traffic_out_is_masqueraded_and_internal_networks_have_no_way_out") {
        return;
    }
    let table = name("tnat");
    let _table_guard = TableGuard(table.clone());
    let firewall = Firewall::new(&table).unwrap();
    let driver = BridgeDriver::new().unwrap();
    // "Outside": a plain bridge berth does not manage, with a server behind it.
    let (outside, _go) = bridge(&driver, "no", 9).await;
    let (net, _gn) = bridge(&driver, "nn", 4).await;
    let (internal, _gi) = bridge(&driver, "ni", 5).await;
    firewall.ensure_base().await.unwrap();
    firewall.ensure_network(&rules(&net, false)).await.unwrap();
    firewall
        .ensure_network(&rules(&internal, true))
        .await
        .unwrap();

    let ns_out = TestNetns::new("no").await;
    let eo = driver
        .attach(&outside.name, &ns_out.path, &endpoint("eth0", 9, 2, false))
        .await
        .unwrap();
    let _geo = LinkGuard(eo.host_ifname.clone());
    let server = TcpServer::start_in(&ns_out.path, addr(host(9, 2), 0));

    let ns1 = TestNetns::new("n1").await;
    let e1 = driver
        .attach(&net.name, &ns1.path, &endpoint("eth0", 4, 2, true))
        .await
        .unwrap();
    let _g1 = LinkGuard(e1.host_ifname.clone());
    // The outside sees the host's address on its side, not the container's.
    assert_eq!(
        tcp_hello(Some(&ns1.path), server.address).unwrap(),
        format!("peer {}", host(9, 1))
    );

    // --internal: no default route, so nothing to reach ...
    let ns2 = TestNetns::new("n2").await;
    let e2 = driver
        .attach(&internal.name, &ns2.path, &endpoint("eth0", 5, 2, false))
        .await
        .unwrap();
    let _g2 = LinkGuard(e2.host_ifname.clone());
    let err = tcp_hello(Some(&ns2.path), server.address).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(rustix::io::Errno::NETUNREACH.raw_os_error()),
        "{err}"
    );
    // ... and even with a route, the firewall drops what leaves.
    let ns3 = TestNetns::new("n3").await;
    let e3 = driver
        .attach(&internal.name, &ns3.path, &endpoint("eth0", 5, 3, true))
        .await
        .unwrap();
    let _g3 = LinkGuard(e3.host_ifname.clone());
    assert!(tcp_blocked(Some(&ns3.path), server.address));
    // Containers of the internal network still reach each other.
    let inner = TcpServer::start_in(&ns2.path, addr(host(5, 2), 0));
    assert_eq!(
        tcp_hello(Some(&ns3.path), inner.address).unwrap(),
        format!("peer {}", host(5, 3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_ports_are_reachable_from_loopback_host_addresses_and_other_containers() {
    if !require_root(
        "published_ports_are_reachable_from_loopback_host_addresses_and_other_containers",
    ) {
        return;
    }
    let table = name("tpub");
    let _table_guard = TableGuard(table.clone());
    let firewall = Firewall::new(&table).unwrap();
    let driver = BridgeDriver::new().unwrap();
    // A bridge not managed by berth stands for one of the host's own addresses.
    let (host_side, _gh) = bridge(&driver, "ph", 10).await;
    let host_ip = host(10, 1);
    let (net, _gn) = bridge(&driver, "pn", 6).await;
    firewall.ensure_base().await.unwrap();
    firewall.ensure_network(&rules(&net, false)).await.unwrap();
    let _ = host_side;

    let (ns1, ns2) = (TestNetns::new("p1").await, TestNetns::new("p2").await);
    let e1 = driver
        .attach(&net.name, &ns1.path, &endpoint("eth0", 6, 2, true))
        .await
        .unwrap();
    let _g1 = LinkGuard(e1.host_ifname.clone());
    let e2 = driver
        .attach(&net.name, &ns2.path, &endpoint("eth0", 6, 3, true))
        .await
        .unwrap();
    let _g2 = LinkGuard(e2.host_ifname.clone());
    let server = TcpServer::start_in(&ns1.path, addr(Ipv4Addr::UNSPECIFIED, 8080));
    let udp_server = UdpServer::start_in(&ns1.path, addr(Ipv4Addr::UNSPECIFIED, 5353));

    let ports = PortAllocator::default();
    let any = |protocol| PortRequest {
        protocol,
        host_ip: Ipv4Addr::UNSPECIFIED,
        host_port: HostPort::Ephemeral,
    };
    let tcp_port = ports.reserve(&any(Protocol::Tcp)).unwrap();
    let udp_port = ports.reserve(&any(Protocol::Udp)).unwrap();
    let only_host_ip = ports
        .reserve(&PortRequest {
            host_ip,
            ..any(Protocol::Tcp)
        })
        .unwrap();
    let mappings = [
        PortMapping {
            protocol: Protocol::Tcp,
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: tcp_port.port,
            container_ip: host(6, 2),
            container_port: server.address.port(),
        },
        PortMapping {
            protocol: Protocol::Udp,
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: udp_port.port,
            container_ip: host(6, 2),
            container_port: udp_server.address.port(),
        },
        PortMapping {
            protocol: Protocol::Tcp,
            host_ip,
            host_port: only_host_ip.port,
            container_ip: host(6, 2),
            container_port: server.address.port(),
        },
    ];
    firewall.publish(&mappings).await.unwrap();
    // Publishing again is harmless.
    firewall.publish(&mappings).await.unwrap();

    let from_host_loopback = tcp_hello(None, addr(Ipv4Addr::LOCALHOST, tcp_port.port)).unwrap();
    assert_eq!(from_host_loopback, format!("peer {}", host(6, 1)));
    assert!(tcp_hello(None, addr(host_ip, tcp_port.port))
        .unwrap()
        .starts_with("peer "));
    // Hairpin: another container, and the container itself, through the host's address.
    assert!(tcp_hello(Some(&ns2.path), addr(host_ip, tcp_port.port))
        .unwrap()
        .starts_with("peer "));
    assert!(tcp_hello(Some(&ns1.path), addr(host_ip, tcp_port.port))
        .unwrap()
        .starts_with("peer "));
    assert!(udp_hello(addr(Ipv4Addr::LOCALHOST, udp_port.port))
        .unwrap()
        .starts_with("peer "));

    // Bound to one address: reachable there only.
    assert!(tcp_hello(None, addr(host_ip, only_host_ip.port)).is_ok());
    assert!(tcp_blocked(
        None,
        addr(Ipv4Addr::LOCALHOST, only_host_ip.port)
    ));

    // Something else cannot take a published port.
    let err = ports
        .reserve(&PortRequest {
            host_port: HostPort::Exact(tcp_port.port),
            ..any(Protocol::Tcp)
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Bind for 0.0.0.0:{} failed: port is already allocated",
            tcp_port.port
        )
    );
    assert!(std::net::TcpListener::bind(("127.0.0.1", tcp_port.port)).is_err());

    firewall.unpublish(&mappings).await.unwrap();
    firewall.unpublish(&mappings).await.unwrap();
    assert!(tcp_blocked(None, addr(Ipv4Addr::LOCALHOST, tcp_port.port)));
    assert!(!nft_table(&table).contains(&format!("_{}", tcp_port.port)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firewall_ensure_is_idempotent_after_a_restart_and_removal_leaves_nothing() {
    if !require_root("firewall_ensure_is_idempotent_after_a_restart_and_removal_leaves_nothing") {
        return;
    }
    let table = name("tidem");
    let _table_guard = TableGuard(table.clone());
    let driver = BridgeDriver::new().unwrap();
    let (br_a, _ga) = bridge(&driver, "fa", 11).await;
    let (br_b, _gb) = bridge(&driver, "fb", 12).await;
    let mapping = PortMapping {
        protocol: Protocol::Tcp,
        host_ip: Ipv4Addr::UNSPECIFIED,
        host_port: 18080,
        container_ip: host(11, 2),
        container_port: 80,
    };
    let set_up = |firewall: Firewall| {
        let (a, b) = (rules(&br_a, false), rules(&br_b, true));
        async move {
            firewall.ensure_base().await.unwrap();
            firewall.ensure_network(&a).await.unwrap();
            firewall.ensure_network(&b).await.unwrap();
            firewall.publish(&[mapping]).await.unwrap();
        }
    };
    set_up(Firewall::new(&table).unwrap()).await;
    let first = nft_table(&table);
    assert!(first.contains(&format!("in_{}", br_a.name)));
    assert!(first.contains(&format!("{} : jump nat_{}", br_a.subnet, br_a.name)));
    // A restarted daemon ensures everything again: same rules, nothing doubled.
    set_up(Firewall::new(&table).unwrap()).await;
    assert_eq!(nft_table(&table), first);
    assert_eq!(
        std::fs::read_to_string(format!(
            "/proc/sys/net/ipv4/conf/{}/route_localnet",
            br_a.name
        ))
        .unwrap()
        .trim(),
        "1"
    );

    let firewall = Firewall::new(&table).unwrap();
    firewall.remove_network(&rules(&br_a, false)).await.unwrap();
    firewall.remove_network(&rules(&br_a, false)).await.unwrap();
    let after = nft_table(&table);
    assert!(!after.contains(&br_a.name), "{after}");
    assert!(after.contains(&br_b.name));

    firewall.flush_all().await.unwrap();
    firewall.flush_all().await.unwrap();
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&tables.stdout).contains(&table));
}

/// A DNS question sent from inside `ns` over UDP or TCP; the answer's code and A records.
fn ask(ns: &Path, qname: &str, tcp: bool) -> (ResponseCode, Vec<Ipv4Addr>) {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(
        Name::from_ascii(qname).unwrap(),
        RecordType::A,
    ));
    let bytes = message.to_vec().unwrap();
    let reply = berth_net::netns::run_in_blocking(ns, move || -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Write};
        let server = SocketAddr::from((berth_net::dns::DNS_ADDRESS, 53));
        let timeout = Some(std::time::Duration::from_secs(5));
        if tcp {
            let mut stream = std::net::TcpStream::connect(server)?;
            stream.set_read_timeout(timeout)?;
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            stream.write_all(&framed)?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len)?;
            let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut reply)?;
            Ok(reply)
        } else {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
            socket.set_read_timeout(timeout)?;
            socket.send_to(&bytes, server)?;
            let mut buf = vec![0u8; 4096];
            let len = socket.recv(&mut buf)?;
            buf.truncate(len);
            Ok(buf)
        }
    })
    .unwrap()
    .unwrap();
    let reply = Message::from_vec(&reply).unwrap();
    let addresses = reply
        .answers
        .iter()
        .filter_map(|r| match r.data {
            RData::A(A(a)) => Some(a),
            _ => None,
        })
        .collect();
    (reply.metadata.response_code, addresses)
}

/// A fake upstream resolver on 127.0.0.1 of the daemon's namespace: `A 192.0.2.123` for
/// `*.example.test`, NXDOMAIN for anything else.
fn fake_upstream() -> (
    SocketAddr,
    std::thread::JoinHandle<()>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_millis(20)))
        .unwrap();
    let address = socket.local_addr().unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let request = Message::from_vec(&buf[..len]).unwrap();
            let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
            reply.queries = request.queries.clone();
            let name = request.queries[0].name().clone();
            if name.to_ascii().ends_with(".example.test.") {
                reply.answers.push(Record::from_rdata(
                    name,
                    60,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 123))),
                ));
            } else {
                reply.metadata.response_code = ResponseCode::NXDomain;
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), peer);
        }
    });
    (address, thread, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_names_of_the_askers_networks_and_forwards_the_rest() {
    if !require_root("dns_answers_names_of_the_askers_networks_and_forwards_the_rest") {
        return;
    }
    let (upstream, upstream_thread, stop) = fake_upstream();
    let table = Arc::new(DnsTable::new());
    table.set_endpoint(
        "net1",
        "e-alpha",
        &["alpha".into(), "web".into(), "0123456789ab".into()],
        host(7, 2),
    );
    table.set_endpoint("net1", "e-beta", &["beta".into()], host(7, 3));
    table.set_endpoint("net2", "e-gamma", &["gamma".into()], host(13, 2));
    let server = Arc::new(DnsServer::new(Arc::clone(&table), vec![upstream]));
    let ns = TestNetns::new("dns").await;
    let dns = server
        .serve_in(
            &ns.path,
            DnsView {
                networks: vec!["net1".into()],
                upstreams: None,
            },
        )
        .await
        .unwrap();

    let path = ns.path.clone();
    let answers = tokio::task::spawn_blocking(move || {
        [
            ask(&path, "beta.", false),
            ask(&path, "WEB.", false),
            ask(&path, "0123456789ab.", true),
            ask(&path, "gamma.", false),
            ask(&path, "www.example.test.", false),
            ask(&path, "www.example.test.", true),
        ]
    })
    .await
    .unwrap();
    assert_eq!(answers[0], (ResponseCode::NoError, vec![host(7, 3)]));
    assert_eq!(answers[1], (ResponseCode::NoError, vec![host(7, 2)]));
    assert_eq!(answers[2], (ResponseCode::NoError, vec![host(7, 2)]));
    // Another network's name is not answered locally: upstream says it does not exist.
    assert_eq!(answers[3], (ResponseCode::NXDomain, vec![]));
    assert_eq!(
        answers[4],
        (ResponseCode::NoError, vec![Ipv4Addr::new(192, 0, 2, 123)])
    );
    // The fake upstream has no TCP: the TCP question fails over to SERVFAIL.
    assert_eq!(answers[5].0, ResponseCode::ServFail);

    // After `network connect`, the other network's names resolve.
    dns.set_networks(vec!["net1".into(), "net2".into()]);
    let path = ns.path.clone();
    let gamma = tokio::task::spawn_blocking(move || ask(&path, "gamma.", false))
        .await
        .unwrap();
    assert_eq!(gamma, (ResponseCode::NoError, vec![host(13, 2)]));
    table.remove_endpoint("net2", "e-gamma");
    let path = ns.path.clone();
    let gone = tokio::task::spawn_blocking(move || ask(&path, "gamma.", false))
        .await
        .unwrap();
    assert_eq!(gone.0, ResponseCode::NXDomain);

    drop(dns);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    upstream_thread.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_routes_are_listed_for_overlap_checks() {
    if !require_root("host_routes_are_listed_for_overlap_checks") {
        return;
    }
    let driver = BridgeDriver::new().unwrap();
    let (br, _g) = bridge(&driver, "r", 14).await;
    let routes = driver.host_routes().await.unwrap();
    let ours = routes
        .iter()
        .find(|r| r.destination == br.subnet)
        .expect("the bridge's subnet route is listed");
    assert_eq!(ours.device.as_deref(), Some(br.name.as_str()));
    let err = berth_net::ipam::check_subnet(&subnet(14), &[], &routes).unwrap_err();
    assert!(
        err.to_string().contains("overlaps with host route"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_removes_its_endpoints_without_a_detach() {
    if !require_root("deleting_a_namespace_removes_its_endpoints_without_a_detach") {
        return;
    }
    let driver = BridgeDriver::new().unwrap();
    let (br, _g) = bridge(&driver, "z", 15).await;
    let ns = TestNetns::new("z1").await;
    let e = driver
        .attach(&br.name, &ns.path, &endpoint("eth0", 15, 2, true))
        .await
        .unwrap();
    let _ge = LinkGuard(e.host_ifname.clone());
    assert!(link_exists(&e.host_ifname));
    berth_net::netns::delete(&ns.path).unwrap();
    // The kernel tears the namespace down in the background: nothing of ours keeps it.
    let mut gone = false;
    for _ in 0..300 {
        if !link_exists(&e.host_ifname) {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(gone, "{} outlived its namespace", e.host_ifname);
}
