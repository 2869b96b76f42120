//! The embedded DNS server of user-defined networks.
//!
//! [`DnsTable`] maps, per network, names (container name, aliases, short id) to the
//! addresses of the containers that carry them; the engine updates it on connect,
//! disconnect and rename. [`DnsServer`] answers from the table and forwards every other
//! question to upstream resolvers (the host's, from [`upstreams_from_resolv_conf`], or a
//! container's `--dns`). Each container gets its own pair of sockets on `127.0.0.11:53`
//! (UDP and TCP) inside its network namespace, created there by [`DnsServer::serve_in`] and
//! served by tasks of the daemon's runtime; the returned [`ContainerDns`] holds the
//! container's view (the networks it is on, so names of other networks do not resolve)
//! and stops serving when dropped. Forwarded questions leave from the daemon's namespace,
//! so host resolvers on loopback addresses (`127.0.0.53`) work too.
//!
//! ```no_run
//! # async fn demo(ns: &std::path::Path) -> Result<(), berth_net::dns::DnsError> {
//! use berth_net::dns::{DnsServer, DnsTable, DnsView};
//! use std::sync::Arc;
//! let table = Arc::new(DnsTable::new());
//! table.set_endpoint("net1", "4f2a9c", &["web".into(), "4f2a9c0d1e2b".into()], "10.1.0.2".parse().unwrap());
//! let upstreams = berth_net::dns::upstreams_from_resolv_conf(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
//! let server = Arc::new(DnsServer::new(table, upstreams));
//! let dns = server.serve_in(ns, DnsView { networks: vec!["net1".into()], upstreams: None }).await?;
//! dns.set_networks(vec!["net1".into(), "net2".into()]); // after `network connect`
//! # Ok(()) }
//! ```

use crate::netns::{self, NetnsError};
use berth_core::error::{ErrorKind, HasKind};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// Where containers find the embedded server, as in Docker.
pub const DNS_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// Time-to-live of the answers about containers (Docker's).
const LOCAL_TTL: u32 = 600;
/// How long one upstream gets to answer before the next is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a TCP client may stay idle between questions.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// What went wrong setting up a container's DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("binding the DNS server to {address} in {netns}")]
    Bind {
        address: SocketAddr,
        netns: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("serving DNS")]
    Serve {
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for DnsError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Netns(err) => err.kind(),
            _ => ErrorKind::Internal,
        }
    }
}
crate::error::into_core_error!(DnsError);

/// Names of containers, per network. Cheap to read from many tasks at once.
#[derive(Debug, Default)]
pub struct DnsTable {
    networks: RwLock<HashMap<String, NetworkNames>>,
}

#[derive(Debug, Default)]
struct NetworkNames {
    /// Lower-case name -> (endpoint, address), in insertion order.
    by_name: HashMap<String, Vec<(String, Ipv4Addr)>>,
    /// Endpoint -> its names and address, to replace or remove them.
    endpoints: HashMap<String, (Vec<String>, Ipv4Addr)>,
}

impl NetworkNames {
    fn remove(&mut self, endpoint: &str) {
        let Some((names, _)) = self.endpoints.remove(endpoint) else {
            return;
        };
        for name in names {
            if let Some(entries) = self.by_name.get_mut(&name) {
                entries.retain(|(e, _)| e != endpoint);
                if entries.is_empty() {
                    self.by_name.remove(&name);
                }
            }
        }
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the names of `endpoint` (a container's endpoint id) on `network`, replacing
    /// what it had. Names compare case-insensitively.
    pub fn set_endpoint(&self, network: &str, endpoint: &str, names: &[String], address: Ipv4Addr) {
        let mut networks = self.networks.write().unwrap_or_else(|e| e.into_inner());
        let entry = networks.entry(network.to_string()).or_default();
        entry.remove(endpoint);
        let mut normalized: Vec<String> = names.iter().map(|n| normalize(n)).collect();
        normalized.retain(|n| !n.is_empty());
        normalized.dedup();
        for name in &normalized {
            entry
                .by_name
                .entry(name.clone())
                .or_default()
                .push((endpoint.to_string(), address));
        }
        entry
            .endpoints
            .insert(endpoint.to_string(), (normalized, address));
    }

    /// Removes an endpoint's names from a network; unknown ones are ignored.
    pub fn remove_endpoint(&self, network: &str, endpoint: &str) {
        let mut networks = self.networks.write().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = networks.get_mut(network) {
            entry.remove(endpoint);
            if entry.endpoints.is_empty() {
                networks.remove(network);
            }
        }
    }

    /// Forgets a network and every name on it.
    pub fn remove_network(&self, network: &str) {
        self.networks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(network);
    }

    /// The addresses `name` has on any of `networks`, without duplicates.
    pub fn lookup(&self, networks: &[String], name: &str) -> Vec<Ipv4Addr> {
        let name = normalize(name);
        let table = self.networks.read().unwrap_or_else(|e| e.into_inner());
        let mut found = Vec::new();
        for network in networks {
            if let Some(entries) = table.get(network).and_then(|n| n.by_name.get(&name)) {
                for (_, address) in entries {
                    if !found.contains(address) {
                        found.push(*address);
                    }
                }
            }
        }
        found
    }

    /// The first name of the endpoint with `address` on one of `networks`.
    pub fn reverse(&self, networks: &[String], address: Ipv4Addr) -> Option<String> {
        let table = self.networks.read().unwrap_or_else(|e| e.into_inner());
        networks.iter().find_map(|network| {
            table
                .get(network)?
                .endpoints
                .values()
                .find_map(|(names, a)| (*a == address).then(|| names.first().cloned()).flatten())
        })
    }
}

/// The name servers of a resolv.conf, port 53.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(|address| {
            // Zone ids (fe80::1%eth0) cannot be used from another namespace.
            address.parse::<IpAddr>().ok()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// What one container sees: the networks whose names it may resolve, and where its other
/// questions go (`--dns`; the server's upstreams when `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsView {
    pub networks: Vec<String>,
    pub upstreams: Option<Vec<SocketAddr>>,
}

/// Answers containers' questions from a [`DnsTable`] and forwards the rest.
#[derive(Debug)]
pub struct DnsServer {
    table: Arc<DnsTable>,
    upstreams: Vec<SocketAddr>,
}

/// A container's DNS service: its view and the tasks serving its sockets, stopped on drop.
#[derive(Debug)]
pub struct ContainerDns {
    view: Arc<RwLock<DnsView>>,
    udp_address: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl ContainerDns {
    /// Replaces the networks whose names the container may resolve.
    pub fn set_networks(&self, networks: Vec<String>) {
        self.view
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .networks = networks;
    }

    /// Where the server listens (inside the container's namespace).
    pub fn address(&self) -> SocketAddr {
        self.udp_address
    }
}

impl Drop for ContainerDns {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

impl DnsServer {
    pub fn new(table: Arc<DnsTable>, upstreams: Vec<SocketAddr>) -> Self {
        Self { table, upstreams }
    }

    pub fn table(&self) -> &Arc<DnsTable> {
        &self.table
    }

    /// Serves a container on `127.0.0.11:53` inside the network namespace at `netns` (its
    /// `lo` must be up).
    pub async fn serve_in(
        self: &Arc<Self>,
        netns: &Path,
        view: DnsView,
    ) -> Result<ContainerDns, DnsError> {
        let address = SocketAddr::from((DNS_ADDRESS, 53));
        let sockets = netns::run_in(netns, move || {
            let udp = std::net::UdpSocket::bind(address)?;
            let tcp = std::net::TcpListener::bind(address)?;
            Ok::<_, std::io::Error>((udp, tcp))
        })
        .await?
        .map_err(|source| DnsError::Bind {
            address,
            netns: netns.to_path_buf(),
            source,
        })?;
        self.serve(sockets.0, sockets.1, view)
    }

    /// Serves a container on sockets made by the caller (bound anywhere; tests use
    /// loopback ports of the daemon's namespace).
    pub fn serve(
        self: &Arc<Self>,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
        view: DnsView,
    ) -> Result<ContainerDns, DnsError> {
        let serve_err = |source| DnsError::Serve { source };
        udp.set_nonblocking(true).map_err(serve_err)?;
        tcp.set_nonblocking(true).map_err(serve_err)?;
        let udp_address = udp.local_addr().map_err(serve_err)?;
        let udp = Arc::new(UdpSocket::from_std(udp).map_err(serve_err)?);
        let tcp = TcpListener::from_std(tcp).map_err(serve_err)?;
        let view = Arc::new(RwLock::new(view));
        let tasks = vec![
            tokio::spawn(Arc::clone(self).serve_udp(udp, Arc::clone(&view))),
            tokio::spawn(Arc::clone(self).serve_tcp(tcp, Arc::clone(&view))),
        ];
        Ok(ContainerDns {
            view,
            udp_address,
            tasks,
        })
    }

    async fn serve_udp(self: Arc<Self>, socket: Arc<UdpSocket>, view: Arc<RwLock<DnsView>>) {
        let mut buf = vec![0u8; 4096];
        loop {
            let (len, peer) = match socket.recv_from(&mut buf).await {
                Ok(received) => received,
                Err(err) => {
                    tracing::debug!(error = %err, "dns: receiving");
                    continue;
                }
            };
            let query = buf[..len].to_vec();
            let (server, socket, view) =
                (Arc::clone(&self), Arc::clone(&socket), Arc::clone(&view));
            tokio::spawn(async move {
                if let Some(reply) = server.answer(&view, &query, Transport::Udp).await {
                    let _ = socket.send_to(&reply, peer).await;
                }
            });
        }
    }

    async fn serve_tcp(self: Arc<Self>, listener: TcpListener, view: Arc<RwLock<DnsView>>) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (server, view) = (Arc::clone(&self), Arc::clone(&view));
            tokio::spawn(async move {
                let _ = server.serve_tcp_client(stream, &view).await;
            });
        }
    }

    async fn serve_tcp_client(
        &self,
        mut stream: TcpStream,
        view: &RwLock<DnsView>,
    ) -> std::io::Result<()> {
        loop {
            let Ok(query) = tokio::time::timeout(TCP_IDLE, read_framed(&mut stream)).await else {
                return Ok(());
            };
            let query = query?;
            if let Some(reply) = self.answer(view, &query, Transport::Tcp).await {
                write_framed(&mut stream, &reply).await?;
            }
        }
    }

    /// The reply to one question (`None`: say nothing, the message was not a question).
    async fn answer(
        &self,
        view: &RwLock<DnsView>,
        query: &[u8],
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let (networks, upstreams) = {
            let view = view.read().unwrap_or_else(|e| e.into_inner());
            let upstreams = view
                .upstreams
                .clone()
                .unwrap_or_else(|| self.upstreams.clone());
            (view.networks.clone(), upstreams)
        };
        let request = match Message::from_vec(query) {
            Ok(request) => request,
            Err(_) if query.len() >= 2 => {
                let id = u16::from_be_bytes([query[0], query[1]]);
                return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                    .to_vec()
                    .ok();
            }
            Err(_) => return None,
        };
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        if request.metadata.op_code != OpCode::Query || request.queries.len() != 1 {
            return reply(&request, ResponseCode::NotImp, Vec::new());
        }
        let question = &request.queries[0];
        let name = question.name();
        let qname = name.to_ascii();
        match question.query_type() {
            RecordType::PTR => {
                if let Some(host) =
                    parse_reverse(&qname).and_then(|ip| self.table.reverse(&networks, ip))
                {
                    let target = Name::from_ascii(format!("{host}.")).ok()?;
                    let record =
                        Record::from_rdata(name.clone(), LOCAL_TTL, RData::PTR(PTR(target)));
                    return reply(&request, ResponseCode::NoError, vec![record]);
                }
            }
            record_type => {
                let addresses = self.table.lookup(&networks, &qname);
                if !addresses.is_empty() {
                    let answers = if record_type == RecordType::A {
                        addresses
                            .into_iter()
                            .map(|a| Record::from_rdata(name.clone(), LOCAL_TTL, RData::A(A(a))))
                            .collect()
                    } else {
                        // A container name without records of that type (AAAA: IPv4 only).
                        Vec::new()
                    };
                    return reply(&request, ResponseCode::NoError, answers);
                }
            }
        }
        match forward(query, &upstreams, transport).await {
            Some(response) => Some(response),
            None => reply(&request, ResponseCode::ServFail, Vec::new()),
        }
    }
}

fn reply(request: &Message, code: ResponseCode, answers: Vec<Record>) -> Option<Vec<u8>> {
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.response_code = code;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.queries = request.queries.clone();
    response.answers = answers;
    response.to_vec().ok()
}

/// `4.3.2.1.in-addr.arpa.` -> `1.2.3.4`.
fn parse_reverse(name: &str) -> Option<Ipv4Addr> {
    let lower = normalize(name);
    let octets = lower.strip_suffix(".in-addr.arpa")?;
    let parts: Vec<u8> = octets
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [d, c, b, a] = parts[..] else {
        return None;
    };
    Some(Ipv4Addr::new(a, b, c, d))
}

/// Sends the question, unchanged, to each upstream in turn; the first answer wins.
async fn forward(query: &[u8], upstreams: &[SocketAddr], transport: Transport) -> Option<Vec<u8>> {
    for upstream in upstreams {
        let attempt = async {
            match transport {
                Transport::Udp => forward_udp(query, *upstream).await,
                Transport::Tcp => forward_tcp(query, *upstream).await,
            }
        };
        match tokio::time::timeout(UPSTREAM_TIMEOUT, attempt).await {
            Ok(Ok(response)) => return Some(response),
            Ok(Err(err)) => tracing::debug!(%upstream, error = %err, "dns: forwarding"),
            Err(_) => tracing::debug!(%upstream, "dns: upstream timed out"),
        }
    }
    None
}

async fn forward_udp(query: &[u8], upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let len = socket.recv(&mut buf).await?;
        // Only the answer to this question (same id) counts.
        if len >= 2 && buf[..2] == query[..2] {
            buf.truncate(len);
            return Ok(buf);
        }
    }
}

async fn forward_tcp(query: &[u8], upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    write_framed(&mut stream, query).await?;
    read_framed(&mut stream).await
}

async fn read_framed(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = stream.read_u16().await?;
    let mut message = vec![0u8; usize::from(len)];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

async fn write_framed(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<()> {
    let len =
        u16::try_from(message.len()).map_err(|_| std::io::Error::other("DNS message too long"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn nets(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_resolve_only_on_the_networks_asked_about() {
        let table = DnsTable::new();
        table.set_endpoint(
            "n1",
            "e1",
            &nets(&["Web", "alias1", "4f2a9c0d1e2b"]),
            ip("10.1.0.2"),
        );
        table.set_endpoint("n2", "e2", &nets(&["db"]), ip("10.2.0.2"));
        assert_eq!(table.lookup(&nets(&["n1"]), "web."), vec![ip("10.1.0.2")]);
        assert_eq!(table.lookup(&nets(&["n1"]), "ALIAS1"), vec![ip("10.1.0.2")]);
        assert!(table.lookup(&nets(&["n1"]), "db").is_empty());
        assert_eq!(
            table.lookup(&nets(&["n1", "n2"]), "db"),
            vec![ip("10.2.0.2")]
        );
        assert_eq!(
            table.reverse(&nets(&["n1"]), ip("10.1.0.2")).as_deref(),
            Some("web")
        );
        assert_eq!(table.reverse(&nets(&["n2"]), ip("10.1.0.2")), None);
    }

    #[test]
    fn shared_aliases_give_every_address_and_removal_forgets_names() {
        let table = DnsTable::new();
        table.set_endpoint("n1", "e1", &nets(&["a", "svc"]), ip("10.1.0.2"));
        table.set_endpoint("n1", "e2", &nets(&["b", "svc"]), ip("10.1.0.3"));
        assert_eq!(
            table.lookup(&nets(&["n1"]), "svc"),
            vec![ip("10.1.0.2"), ip("10.1.0.3")]
        );
        table.remove_endpoint("n1", "e1");
        assert_eq!(table.lookup(&nets(&["n1"]), "svc"), vec![ip("10.1.0.3")]);
        assert!(table.lookup(&nets(&["n1"]), "a").is_empty());
        // Setting again replaces the old names.
        table.set_endpoint("n1", "e2", &nets(&["c"]), ip("10.1.0.3"));
        assert!(table.lookup(&nets(&["n1"]), "b").is_empty());
        table.remove_network("n1");
        assert!(table.lookup(&nets(&["n1"]), "c").is_empty());
    }

    #[test]
    fn resolv_conf_name_servers_become_upstreams() {
        let text = "# comment\nsearch example.com\nnameserver 10.255.255.53\nnameserver ::1\nnameserver fe80::1%eth0\noptions ndots:0\n";
        assert_eq!(
            upstreams_from_resolv_conf(text),
            vec![
                "10.255.255.53:53".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn reverse_names_parse_to_addresses() {
        assert_eq!(
            parse_reverse("2.0.1.10.in-addr.arpa."),
            Some(ip("10.1.0.2"))
        );
        assert_eq!(parse_reverse("example.com."), None);
        assert_eq!(parse_reverse("1.2.in-addr.arpa."), None);
    }

    fn question(name: &str, record_type: RecordType) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), record_type));
        message.to_vec().unwrap()
    }

    fn view(networks: &[&str]) -> RwLock<DnsView> {
        RwLock::new(DnsView {
            networks: nets(networks),
            upstreams: Some(Vec::new()),
        })
    }

    #[tokio::test]
    async fn local_names_are_answered_and_unknown_ones_fail_without_upstreams() {
        let table = Arc::new(DnsTable::new());
        table.set_endpoint("n1", "e1", &nets(&["web"]), ip("10.1.0.2"));
        let server = DnsServer::new(table, Vec::new());
        let reply = server
            .answer(
                &view(&["n1"]),
                &question("web.", RecordType::A),
                Transport::Udp,
            )
            .await
            .unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(reply.answers.len(), 1);
        assert_eq!(reply.answers[0].data, RData::A(A(ip("10.1.0.2"))));
        let aaaa = server
            .answer(
                &view(&["n1"]),
                &question("web.", RecordType::AAAA),
                Transport::Udp,
            )
            .await
            .unwrap();
        let aaaa = Message::from_vec(&aaaa).unwrap();
        assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
        assert!(aaaa.answers.is_empty());
        let other = server
            .answer(
                &view(&["n2"]),
                &question("web.", RecordType::A),
                Transport::Udp,
            )
            .await
            .unwrap();
        assert_eq!(
            Message::from_vec(&other).unwrap().metadata.response_code,
            ResponseCode::ServFail
        );
    }

    #[tokio::test]
    async fn garbage_gets_a_format_error() {
        let server = DnsServer::new(Arc::new(DnsTable::new()), Vec::new());
        let reply = server
            .answer(&view(&[]), &[0x12, 0x34, 0xff], Transport::Udp)
            .await
            .unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.metadata.id, 0x1234);
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    }
}
