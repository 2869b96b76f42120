//! Registry peers for tests: a real `docker-registry` (distribution 2.8, Debian's
//! package) with its own storage and config, optionally behind htpasswd or token auth
//! and TLS, on 127.0.0.1 or another local address; a tiny HTTP server for canned answers
//! (token servers, Docker Hub's search API); and a TCP proxy that slows or cuts
//! transfers. Shared by the end-to-end tests and berth-registry's own tests. Everything
//! stops, and its files go, on drop, also after a panic.

use crate::free_port;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the test registry authenticates.
#[derive(Clone)]
pub enum Auth {
    None,
    Htpasswd { user: String, password: String },
    Token(TokenConfig),
}

/// The token server a registry with [`Auth::Token`] trusts.
#[derive(Clone)]
pub struct TokenConfig {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub root_cert_pem: String,
}

/// TLS material for the registry: server cert and key (PEM), and optionally the CA
/// whose client certificates it requires.
#[derive(Clone)]
pub struct Tls {
    pub cert_pem: String,
    pub key_pem: String,
    pub client_ca_pem: Option<String>,
}

/// A running `docker-registry serve`.
pub struct TestRegistry {
    child: Option<Child>,
    pub ip: IpAddr,
    pub port: u16,
    tls: bool,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// A plain-HTTP registry without auth on 127.0.0.1.
    pub fn start() -> Self {
        Self::start_with(Auth::None, None)
    }

    /// A plain-HTTP registry on 127.0.0.1 that wants this user's password (htpasswd).
    pub fn with_user(user: &str, password: &str) -> Self {
        Self::start_with(
            Auth::Htpasswd {
                user: user.into(),
                password: password.into(),
            },
            None,
        )
    }

    pub fn start_with(auth: Auth, tls: Option<Tls>) -> Self {
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), auth, tls)
    }

    /// A registry listening on `ip` (a local address), on a free port.
    pub fn start_on(ip: IpAddr, auth: Auth, tls: Option<Tls>) -> Self {
        let dir = crate::temp_dir("registry-");
        let port = free_port();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {}\n",
            data.display(),
            SocketAddr::new(ip, port)
        );
        if let Some(tls) = &tls {
            let cert = dir.path().join("server.crt");
            let key = dir.path().join("server.key");
            std::fs::write(&cert, &tls.cert_pem).unwrap();
            std::fs::write(&key, &tls.key_pem).unwrap();
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
            if let Some(ca) = &tls.client_ca_pem {
                let p = dir.path().join("client-ca.crt");
                std::fs::write(&p, ca).unwrap();
                config.push_str(&format!("    clientcas:\n      - {}\n", p.display()));
            }
        }
        match &auth {
            Auth::None => {}
            Auth::Htpasswd { user, password } => {
                let hash = bcrypt::hash_with_result(password, 5)
                    .unwrap()
                    .format_for_version(bcrypt::Version::TwoA);
                let p = dir.path().join("htpasswd");
                std::fs::write(&p, format!("{user}:{hash}\n")).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                    p.display()
                ));
            }
            Auth::Token(t) => {
                let p = dir.path().join("token-root.crt");
                std::fs::write(&p, &t.root_cert_pem).unwrap();
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    t.realm,
                    t.service,
                    t.issuer,
                    p.display()
                ));
            }
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut reg = Self {
            child: None,
            ip,
            port,
            tls: tls.is_some(),
            dir,
        };
        reg.restart();
        reg
    }

    /// Starts the registry process again (same address, storage and config) after
    /// [`stop`](Self::stop); waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("registry.log"))
            .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (Debian package docker-registry) must be installed");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Kills the registry process (its storage stays, for [`restart`](Self::restart)).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("docker-registry exited with {status}:\n{}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect((self.ip, self.port)) {
                if self.tls {
                    return; // the TLS handshake is the client's business
                }
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!(
                    "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.host()
                );
                if s.write_all(req.as_bytes()).is_ok() {
                    let mut line = String::new();
                    if BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("HTTP/") {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not come up:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `IP:PORT` (`127.0.0.1:5000`).
    pub fn host(&self) -> String {
        SocketAddr::new(self.ip, self.port).to_string()
    }

    /// A reference in this registry (`127.0.0.1:PORT/<name>`).
    pub fn reference(&self, name: &str) -> berth_core::reference::Reference {
        berth_core::reference::Reference::parse_with_default_tag(&format!("{}/{name}", self.host()))
            .unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Access-log lines for `METHOD path...` (e.g. `GET /v2/app/blobs/sha256:..`).
    pub fn count_requests(&self, method: &str, path_prefix: &str) -> usize {
        let needle = format!("\"{method} {path_prefix}");
        self.log().lines().filter(|l| l.contains(&needle)).count()
    }

    /// Sends a request straight to the registry; returns status, headers (lower-case
    /// names) and body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut s = TcpStream::connect((self.ip, self.port)).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.host(),
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        read_response(s)
    }

    /// The docker-v2 manifest of `repo:tag` in the registry (parsed) and its raw bytes.
    pub fn manifest(&self, repo: &str, tag: &str) -> (serde_json::Value, Vec<u8>) {
        let (status, _, body) = self.request(
            "GET",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[(
                "Accept",
                "application/vnd.docker.distribution.manifest.v2+json",
            )],
            b"",
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        (serde_json::from_slice(&body).unwrap(), body)
    }

    /// Sends a bodiless request straight to the registry; returns the status code.
    pub fn raw_request(&self, method: &str, path: &str) -> u16 {
        self.request(method, path, &[], b"").0
    }

    /// Where the registry keeps a blob's bytes.
    pub fn blob_path(&self, digest: &berth_core::Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The registry's own directory (config, storage, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads an HTTP/1.1 response whose connection the server closes (or with a length).
fn read_response(s: TcpStream) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = read_headers(&mut r).unwrap_or_default();
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = Vec::new();
    match len {
        Some(n) => {
            body.resize(n, 0);
            let _ = r.read_exact(&mut body);
        }
        None => {
            let _ = r.read_to_end(&mut body);
        }
    }
    (status, headers, body)
}

/// Header lines up to the blank line, names in lower case; `None` when the peer closed
/// the connection first.
fn read_headers(r: &mut impl BufRead) -> Option<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            return Some(headers);
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

/// A request as [`HttpServer`] hands it to its handler.
pub struct Request {
    pub method: String,
    pub path: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// A query parameter, percent-decoded (all values for repeated ones, joined by ' ').
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.path.split_once('?')?.1;
        let vals: Vec<String> = url::form_urlencoded::parse(q.as_bytes())
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .collect();
        (!vals.is_empty()).then(|| vals.join(" "))
    }
    pub fn form(&self, key: &str) -> Option<String> {
        url::form_urlencoded::parse(&self.body)
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

/// Answers a request: status, headers, body.
pub type Handler = dyn Fn(&Request) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync;

/// A minimal HTTP/1.1 server on 127.0.0.1 answering each request with a handler. A
/// connection that does not speak HTTP (a TLS handshake) is closed. Runs on threads;
/// stops on drop.
pub struct HttpServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub requests: Arc<AtomicUsize>,
}

impl HttpServer {
    pub fn start(handler: Arc<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (stop2, requests2) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let handler = handler.clone();
                let requests = requests2.clone();
                std::thread::spawn(move || serve_conn(conn, &*handler, &requests));
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
            requests,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn serve_conn(conn: TcpStream, handler: &Handler, requests: &AtomicUsize) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        if !path.starts_with('/') {
            return; // not HTTP (a TLS ClientHello): the client falls back to plain HTTP
        }
        let Some(headers) = read_headers(&mut reader) else {
            return;
        };
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let req = Request {
            method,
            path,
            headers,
            body,
        };
        let (status, hdrs, body) = handler(&req);
        let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in hdrs {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        if conn.write_all(out.as_bytes()).is_err() || conn.write_all(&body).is_err() {
            return;
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A fake Docker Hub index: answers `/v1/search?q=&n=` from `results` (objects with
/// `name`, `description`, `star_count`, `is_official`, `is_automated`), matching `q` as a
/// substring of the name. Also returns the `n` of every search it answered.
pub fn hub_search_server(
    results: serde_json::Value,
) -> (HttpServer, Arc<std::sync::Mutex<Vec<usize>>>) {
    let limits = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = limits.clone();
    let server = HttpServer::start(Arc::new(move |req: &Request| {
        if !req.path.starts_with("/v1/search") {
            return (404, vec![], b"{}".to_vec());
        }
        let q = req.query("q").unwrap_or_default();
        let n: usize = req.query("n").and_then(|n| n.parse().ok()).unwrap_or(25);
        seen.lock().unwrap().push(n);
        let hits: Vec<serde_json::Value> = results
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["name"].as_str().unwrap_or_default().contains(&q))
            .take(n)
            .cloned()
            .collect();
        let body = serde_json::json!({"num_results": hits.len(), "query": q, "results": hits});
        (
            200,
            vec![("Content-Type".into(), "application/json".into())],
            body.to_string().into_bytes(),
        )
    }));
    (server, limits)
}

/// A TCP proxy on 127.0.0.1 to `127.0.0.1:target` that can slow the server's bytes down
/// (`bytes_per_sec`) or close every connection once `cut_after` bytes went from the
/// servers to the clients (counted over all connections).
pub struct TcpProxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl TcpProxy {
    /// Closes every connection once `limit` bytes went to the clients.
    pub fn cutting(target: u16, limit: u64) -> Self {
        Self::start(target, Some(limit), None)
    }

    /// Passes the server's bytes on at about `bytes_per_sec`.
    pub fn throttled(target: u16, bytes_per_sec: u64) -> Self {
        Self::start(target, None, Some(bytes_per_sec))
    }

    fn start(target: u16, cut_after: Option<u64>, bytes_per_sec: Option<u64>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let sent = Arc::new(AtomicU64::new(0));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let (mut from, mut to) = (c2, s2);
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Write);
                });
                let (sent, stop) = (sent.clone(), stop2.clone());
                std::thread::spawn(move || {
                    let (mut from, mut to) = (server, client);
                    let mut buf = [0u8; 16384];
                    let started = Instant::now();
                    let mut passed = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                        if cut_after.is_some_and(|l| total > l) || to.write_all(&buf[..n]).is_err()
                        {
                            break;
                        }
                        passed += n as u64;
                        if let Some(rate) = bytes_per_sec {
                            let due = Duration::from_secs_f64(passed as f64 / rate as f64);
                            if let Some(wait) = due.checked_sub(started.elapsed()) {
                                std::thread::sleep(wait);
                            }
                        }
                    }
                    let _ = to.shutdown(Shutdown::Both);
                    let _ = from.shutdown(Shutdown::Both);
                });
            }
        });
        Self { port, stop }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
