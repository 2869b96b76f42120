//! Network benchmark for berth-net (root): what the lead's `bench/` compares with Docker.
//!
//! Sets up one bridge network with two namespaces ("containers") through berth-net and
//! measures, printing one JSON object on stdout:
//! - `c2c_gbps`: iperf3 TCP throughput container to container over the bridge;
//! - `host_loopback_gbps`: iperf3 from the host to a port published on 127.0.0.1 (DNAT);
//! - `connect_us_p50` / `connect_us_p99`: TCP connect+close latency to that published port;
//! - `attach_ms`: netns create + veth attach + netns delete, per container (the `run --rm`
//!   path; `attach_phases_ms` splits it); `detach_ms`: one explicit detach (disconnect).
//!
//! ```text
//! cargo run --release -p berth-net --example net_bench -- [--seconds 5] [--connects 2000]
//! ```
//! Needs `iperf3` and `nsenter` (Debian: `apt-get install iperf3`).

use berth_net::bridge::{BridgeConfig, BridgeDriver, EndpointConfig, DEFAULT_MTU};
use berth_net::firewall::{Firewall, NetworkRules, PortMapping};
use berth_net::ipam::Subnet;
use berth_net::netns;
use berth_net::ports::{HostPort, PortAllocator, PortRequest, Protocol};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Removes what the benchmark made, even when it fails half-way.
struct Cleanup {
    bridge: String,
    table: String,
    namespaces: Vec<PathBuf>,
    ns_dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.namespaces {
            let _ = netns::delete(ns);
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.table])
            .output();
        let _ = std::fs::remove_dir(&self.ns_dir);
        if let Some(parent) = self.ns_dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn iperf3_server(ns: &Path, port: u16) -> Child {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["iperf3", "-s", "-1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("running iperf3 (apt-get install iperf3)")
}

/// Waits until something listens on `address` as seen from `ns` (or the host).
fn wait_listening(ns: Option<&Path>, address: SocketAddr) {
    for _ in 0..200 {
        let probe = move || TcpStream::connect_timeout(&address, Duration::from_millis(50)).is_ok();
        let up = match ns {
            Some(ns) => netns::run_in_blocking(ns, probe).unwrap(),
            None => probe(),
        };
        if up {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on {address}");
}

/// Runs an iperf3 client (inside `ns` when given) and returns the received Gbit/s.
fn iperf3_client(ns: Option<&Path>, server: SocketAddr, seconds: u64) -> f64 {
    let mut command = match ns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", ns.display())).arg("iperf3");
            c
        }
        None => Command::new("iperf3"),
    };
    let output = command
        .args([
            "-c",
            &server.ip().to_string(),
            "-p",
            &server.port().to_string(),
        ])
        .args(["-t", &seconds.to_string(), "-J"])
        .output()
        .expect("running iperf3");
    let report = String::from_utf8_lossy(&output.stdout);
    received_bits_per_second(&report).unwrap_or_else(|| panic!("iperf3 failed: {report}")) / 1e9
}

/// `end.sum_received.bits_per_second` of iperf3's JSON report, found by key so that the
/// example needs no JSON parser.
fn received_bits_per_second(report: &str) -> Option<f64> {
    // `sum_received` appears only in the `end` section.
    let sum = &report[report.find("\"sum_received\"")?..];
    let value = &sum[sum.find("\"bits_per_second\"")? + "\"bits_per_second\"".len()..];
    let value = value.trim_start_matches([':', ' ', '\t']);
    let number: String = value
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        .collect();
    number.parse().ok()
}

#[tokio::main]
async fn main() {
    let seconds = arg("--seconds", 5);
    let connects = arg("--connects", 2000) as usize;
    let pid = std::process::id();
    let third = (pid % 200) as u8;
    let subnet: Subnet = format!("10.253.{third}.0/24").parse().unwrap();
    let ip = |last: u8| Ipv4Addr::new(10, 253, third, last);
    let mut cleanup = Cleanup {
        bridge: format!("bnb{}", pid % 100000),
        table: format!("berth_bench_{pid}"),
        namespaces: Vec::new(),
        ns_dir: PathBuf::from(format!("/run/berth-net-bench/{pid}")),
        children: Vec::new(),
    };
    let ns_dir = cleanup.ns_dir.clone();

    let driver = BridgeDriver::new().unwrap();
    let firewall = Firewall::new(&cleanup.table).unwrap();
    let bridge = BridgeConfig {
        name: cleanup.bridge.clone(),
        gateway: ip(1),
        subnet,
        mtu: DEFAULT_MTU,
    };
    driver.ensure_bridge(&bridge).await.unwrap();
    firewall.ensure_base().await.unwrap();
    let rules = NetworkRules {
        bridge: bridge.name.clone(),
        subnet,
        internal: false,
    };
    firewall.ensure_network(&rules).await.unwrap();
    let endpoint = |last: u8| EndpointConfig {
        ifname: "eth0".into(),
        address: ip(last),
        prefix_len: 24,
        default_gateway: Some(ip(1)),
        mac: None,
        mtu: DEFAULT_MTU,
    };

    // Attach cost: what `run --rm --network <net>` pays in berth-net.
    // The `run --rm` path: the endpoint goes away with its namespace (the kernel deletes
    // the veth pair asynchronously), so no explicit detach is paid.
    let rounds = 20;
    let mut phases = [0f64; 3];
    for i in 0..rounds {
        let t = Instant::now();
        let ns = netns::create(&ns_dir, &format!("attach{i}")).await.unwrap();
        phases[0] += t.elapsed().as_secs_f64();
        let t = Instant::now();
        driver
            .attach(&bridge.name, &ns, &endpoint(100 + i as u8))
            .await
            .unwrap();
        phases[1] += t.elapsed().as_secs_f64();
        let t = Instant::now();
        netns::delete(&ns).unwrap();
        phases[2] += t.elapsed().as_secs_f64();
    }
    let phase_ms = phases.map(|p| p * 1000.0 / f64::from(rounds));
    let attach_ms: f64 = phase_ms.iter().sum();
    // `network disconnect`: deleting a veth waits for the kernel to unregister it.
    let ns = netns::create(&ns_dir, "detach").await.unwrap();
    let attachment = driver
        .attach(&bridge.name, &ns, &endpoint(99))
        .await
        .unwrap();
    let t = Instant::now();
    driver.detach(&attachment.host_ifname).await.unwrap();
    let detach_ms = t.elapsed().as_secs_f64() * 1000.0;
    netns::delete(&ns).unwrap();

    let a = netns::create(&ns_dir, "a").await.unwrap();
    cleanup.namespaces.push(a.clone());
    let b = netns::create(&ns_dir, "b").await.unwrap();
    cleanup.namespaces.push(b.clone());
    driver.attach(&bridge.name, &a, &endpoint(2)).await.unwrap();
    driver.attach(&bridge.name, &b, &endpoint(3)).await.unwrap();

    let iperf_port = 5201;
    let server = SocketAddr::from((ip(3), iperf_port));
    cleanup.children.push(iperf3_server(&b, iperf_port));
    wait_listening(Some(&a), server);
    // The probe connection ends the one-off server: start a fresh one for the run.
    let _ = cleanup.children.pop().map(|mut c| c.wait());
    cleanup.children.push(iperf3_server(&b, iperf_port));
    std::thread::sleep(Duration::from_millis(200));
    let c2c_gbps = iperf3_client(Some(&a), server, seconds);

    let ports = PortAllocator::default();
    let request = PortRequest {
        protocol: Protocol::Tcp,
        host_ip: Ipv4Addr::UNSPECIFIED,
        host_port: HostPort::Ephemeral,
    };
    let iperf_host = ports.reserve(&request).unwrap();
    let accept_host = ports.reserve(&request).unwrap();
    let accept_port = 7000;
    let mappings = [
        PortMapping {
            protocol: Protocol::Tcp,
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: iperf_host.port,
            container_ip: ip(3),
            container_port: iperf_port,
        },
        PortMapping {
            protocol: Protocol::Tcp,
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: accept_host.port,
            container_ip: ip(3),
            container_port: accept_port,
        },
    ];
    firewall.publish(&mappings).await.unwrap();
    let _ = cleanup.children.pop().map(|mut c| c.wait());
    cleanup.children.push(iperf3_server(&b, iperf_port));
    std::thread::sleep(Duration::from_millis(300));
    let host_loopback_gbps = iperf3_client(
        None,
        SocketAddr::from((Ipv4Addr::LOCALHOST, iperf_host.port)),
        seconds,
    );

    // Connect latency through DNAT to a plain accept loop in the container.
    let listener = netns::run_in_blocking(&b, move || TcpListener::bind(("0.0.0.0", accept_port)))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, accept_host.port));
    let mut samples: Vec<f64> = (0..connects)
        .map(|_| {
            let t = Instant::now();
            let stream = TcpStream::connect(target).expect("connecting to the published port");
            let elapsed = t.elapsed().as_secs_f64() * 1e6;
            drop(stream);
            elapsed
        })
        .collect();
    samples.sort_by(|x, y| x.total_cmp(y));
    let percentile = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];

    let report = format!(
        concat!(
            "{{\"c2c_gbps\":{:.3},\"host_loopback_gbps\":{:.3},",
            "\"connect_us_p50\":{:.1},\"connect_us_p99\":{:.1},\"attach_ms\":{:.3},",
            "\"attach_phases_ms\":{{\"netns_create\":{:.3},\"attach\":{:.3},\"netns_delete\":{:.3}}},",
            "\"detach_ms\":{:.3},\"seconds\":{},\"connects\":{}}}"
        ),
        c2c_gbps,
        host_loopback_gbps,
        percentile(0.5),
        percentile(0.99),
        attach_ms,
        phase_ms[0],
        phase_ms[1],
        phase_ms[2],
        detach_ms,
        seconds,
        connects,
    );
    println!("{report}");
    firewall.flush_all().await.unwrap();
    drop(cleanup);
}
