//! Helpers of the root tests: the root check, unique names and subnets, guards that
//! remove what a test made even when it panics, and small TCP/UDP servers and clients that
//! run inside network namespaces.

#![allow(dead_code)]

use berth_net::netns;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// True when the test may run as root. Fails the test when not root, unless
/// `BERTH_SKIP_ROOT_TESTS=1` opts out, which prints a loud skip line instead.
pub fn require_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("BERTH_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
        let _ = writeln!(
            std::io::stderr(),
            "!!!!!!!! SKIPPED root test `{test}`: not root and BERTH_SKIP_ROOT_TESTS=1 !!!!!!!!"
        );
        return false;
    }
    panic!("`{test}` needs root: run the tests as root, or set BERTH_SKIP_ROOT_TESTS=1 to skip root tests");
}

/// An interface or table name unique to this test process: `bt<pid % 10000><tag>`.
pub fn name(tag: &str) -> String {
    let name = format!("bt{}{tag}", std::process::id() % 10000);
    assert!(name.len() <= 15, "{name} is too long for an interface");
    name
}

/// `10.<200 + pid % 50>.<third>.0/24`: a test subnet no other test of this run uses.
pub fn subnet(third: u8) -> berth_net::ipam::Subnet {
    format!("10.{}.{third}.0/24", 200 + std::process::id() % 50)
        .parse()
        .unwrap()
}

/// An address of a test subnet.
pub fn host(third: u8, fourth: u8) -> std::net::Ipv4Addr {
    let network = subnet(third).network().octets();
    std::net::Ipv4Addr::new(network[0], network[1], third, fourth)
}

/// A network namespace removed on drop.
pub struct TestNetns {
    pub path: PathBuf,
}

impl TestNetns {
    pub async fn new(tag: &str) -> Self {
        let dir = PathBuf::from(format!("/run/berth-net-tests/{}", std::process::id()));
        let path = netns::create(&dir, &name(tag)).await.unwrap();
        Self { path }
    }

    /// `ip` run inside the namespace (for checks only).
    pub fn ip(&self, args: &[&str]) -> String {
        let output = Command::new("nsenter")
            .arg(format!("--net={}", self.path.display()))
            .arg("ip")
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = netns::delete(&self.path);
        // Best effort: other namespaces of the run may still be in these directories.
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// Deletes a link (bridge, veth) on drop.
pub struct LinkGuard(pub String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}

/// Deletes an nftables table on drop.
pub struct TableGuard(pub String);

impl Drop for TableGuard {
    fn drop(&mut self) {
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &self.0])
            .output();
    }
}

/// Whether a link of that name exists in the daemon's namespace.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// `nft list table ip NAME` (empty when the table does not exist).
pub fn nft_table(table: &str) -> String {
    let output = Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A TCP server that answers every connection with `peer <address it saw>\n`, running
/// until dropped.
pub struct TcpServer {
    pub address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpServer {
    /// Listens on `bind` inside the namespace at `ns`.
    pub fn start_in(ns: &Path, bind: SocketAddr) -> Self {
        let listener = netns::run_in_blocking(ns, move || TcpListener::bind(bind))
            .unwrap()
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, peer)) => {
                        let _ = stream.write_all(format!("peer {}\n", peer.ip()).as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            address,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A UDP server that answers every datagram with `peer <address>`, until dropped.
pub struct UdpServer {
    pub address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpServer {
    pub fn start_in(ns: &Path, bind: SocketAddr) -> Self {
        let socket = netns::run_in_blocking(ns, move || UdpSocket::bind(bind))
            .unwrap()
            .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let address = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((_, peer)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(format!("peer {}", peer.ip()).as_bytes(), peer);
                }
            }
        });
        Self {
            address,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Connects to `address` (from inside `ns` when given) and returns the server's line. The
/// timeout covers one SYN retransmission (after 1 s): under the parallel load of the test
/// run a first SYN is occasionally lost while new links settle.
pub fn tcp_hello(ns: Option<&Path>, address: SocketAddr) -> std::io::Result<String> {
    tcp_hello_within(ns, address, Duration::from_secs(4))
}

/// Like [`tcp_hello`], for connections that must fail: gives up after one second.
pub fn tcp_blocked(ns: Option<&Path>, address: SocketAddr) -> bool {
    tcp_hello_within(ns, address, Duration::from_secs(1)).is_err()
}

fn tcp_hello_within(
    ns: Option<&Path>,
    address: SocketAddr,
    timeout: Duration,
) -> std::io::Result<String> {
    let connect = move || -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&address, timeout)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut line = String::new();
        stream.read_to_string(&mut line)?;
        Ok(line.trim().to_string())
    };
    match ns {
        Some(ns) => netns::run_in_blocking(ns, connect).unwrap(),
        None => connect(),
    }
}

/// Sends a datagram to `address` from the daemon's namespace and returns the answer.
pub fn udp_hello(address: SocketAddr) -> std::io::Result<String> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut buf = [0u8; 512];
    // UDP has no retransmission of its own: try a few times.
    let mut last = None;
    for _ in 0..3 {
        socket.send_to(b"hello", address)?;
        match socket.recv_from(&mut buf) {
            Ok((len, _)) => return Ok(String::from_utf8_lossy(&buf[..len]).into_owned()),
            Err(err) => last = Some(err),
        }
    }
    Err(last.expect("three attempts"))
}
