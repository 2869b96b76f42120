//! Test harness: a real `docker-registry` (distribution 2.8) on 127.0.0.1 with its own
//! storage and config, optionally behind htpasswd or token auth and TLS; a token server;
//! a tiny HTTP server for canned answers; a TCP proxy that can cut transfers; and
//! helpers that make images in a fresh [`Storage`]. Everything stops and is removed on
//! drop, also after a panic.
#![allow(dead_code)]

use berth_core::Digest;
use berth_registry::Progress;
use berth_storage::{chain_id, DriverChoice, Storage};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Root tests fail loudly without root, unless `BERTH_SKIP_ROOT_TESTS=1` opts out (and
/// then they say so). Returns whether the test should run.
pub fn require_root(test: &str) -> bool {
    if rustix_is_root() {
        return true;
    }
    if std::env::var("BERTH_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
        let _ = writeln!(
            std::io::stderr(),
            "!!!!! SKIPPING root test {test}: not root and BERTH_SKIP_ROOT_TESTS=1 !!!!!"
        );
        return false;
    }
    panic!("{test} needs root (layer extraction chowns and makes devices); run as root or set BERTH_SKIP_ROOT_TESTS=1");
}

fn rustix_is_root() -> bool {
    // No libc dependency: /proc tells the effective uid.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Temp dirs live under /var/tmp (a real disk), or `BERTH_TEST_DIR`.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let base = std::env::var_os("BERTH_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/berth-registry-tests"));
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(base)
        .unwrap()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the test registry authenticates.
#[derive(Clone)]
pub enum Auth {
    None,
    Htpasswd { user: String, password: String },
    Token(TokenConfig),
}

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
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    pub fn start() -> Self {
        Self::start_with(Auth::None, None)
    }

    pub fn start_with(auth: Auth, tls: Option<Tls>) -> Self {
        let dir = temp_dir("registry-");
        let port = free_port();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            data.display()
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
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (Debian package docker-registry) must be installed");
        let mut reg = Self { child, port, dir };
        reg.wait_ready(tls.is_some());
        reg
    }

    fn wait_ready(&mut self, tls: bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited with {status}:\n{}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                if tls {
                    return; // the TLS handshake is the client's business
                }
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!(
                    "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                    self.port
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

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
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

    /// Sends a bodiless request straight to the registry; returns the status code.
    pub fn raw_request(&self, method: &str, path: &str) -> u16 {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.host()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// Where the registry keeps a blob's bytes.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A storage in its own temp dir.
pub struct TestStorage {
    pub storage: Arc<Storage>,
    _dir: tempfile::TempDir,
}

impl TestStorage {
    pub fn new() -> Self {
        let dir = temp_dir("storage-");
        let storage = Storage::open(dir.path().join("root"), DriverChoice::Auto).unwrap();
        Self {
            storage: Arc::new(storage),
            _dir: dir,
        }
    }

    /// No half-made layer or blob anywhere.
    pub fn assert_no_leftovers(&self) {
        let root = self.storage.root();
        for d in ["tmp", "blobs/tmp"] {
            let n = std::fs::read_dir(root.join(d))
                .map(|r| r.count())
                .unwrap_or(0);
            assert_eq!(n, 0, "{d} is not empty");
        }
    }
}

/// A layer tar with the given files (name, content), mtime fixed.
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An image made in `storage`: its config bytes and chain ids.
pub struct LocalImage {
    pub config: Vec<u8>,
    pub chains: Vec<Digest>,
    pub diff_ids: Vec<Digest>,
    pub tars: Vec<Vec<u8>>,
}

impl LocalImage {
    pub fn id(&self) -> Digest {
        Digest::of(&self.config)
    }
}

/// How a layer's blob is stored before a push.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stored {
    /// No blob: push gzips the tar.
    Nothing,
    Gzip,
    Zstd,
    Plain,
}

/// Applies `tars` as a chain into `storage` and writes a config for them.
pub fn make_image(storage: &Storage, tars: Vec<Vec<u8>>, arch: &str, stored: Stored) -> LocalImage {
    let mut chains = Vec::new();
    let mut diff_ids = Vec::new();
    let mut parent: Option<Digest> = None;
    for tar in &tars {
        let l = storage.apply_layer(parent.as_ref(), &tar[..]).unwrap();
        let (blob, media_type) = match stored {
            Stored::Nothing => (None, ""),
            Stored::Gzip => (Some(gzip(tar)), berth_registry::manifest::DOCKER_LAYER_GZIP),
            Stored::Zstd => (
                Some(zstd::encode_all(&tar[..], 3).unwrap()),
                berth_registry::manifest::OCI_LAYER_ZSTD,
            ),
            Stored::Plain => (Some(tar.clone()), berth_registry::manifest::OCI_LAYER),
        };
        if let Some(blob) = blob {
            let d = storage.content().put(&blob).unwrap();
            storage.set_layer_blob(&l.chain_id, &d, media_type).unwrap();
        }
        assert_eq!(l.chain_id, chain_id(parent.as_ref(), &l.diff_id));
        parent = Some(l.chain_id.clone());
        chains.push(l.chain_id);
        diff_ids.push(l.diff_id);
    }
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": tars.iter().map(|_| serde_json::json!({"created_by": "test"})).collect::<Vec<_>>(),
    });
    LocalImage {
        config: serde_json::to_vec(&config).unwrap(),
        chains,
        diff_ids,
        tars,
    }
}

/// Collects progress events.
#[derive(Default, Clone)]
pub struct Events(pub Arc<Mutex<Vec<Progress>>>);

impl Events {
    pub fn sink(&self) -> impl Fn(Progress) + Send + Sync + '_ {
        move |p| self.0.lock().unwrap().push(p)
    }
    pub fn all(&self) -> Vec<Progress> {
        self.0.lock().unwrap().clone()
    }
    pub fn count(&self, f: impl Fn(&Progress) -> bool) -> usize {
        self.all().iter().filter(|p| f(p)).count()
    }
}

/// Ignores progress.
pub fn quiet(_: Progress) {}

/// A minimal HTTP/1.1 server on 127.0.0.1 answering each request with `handler`
/// (method, path with query, headers, body) -> (status, headers, body). Runs on threads;
/// stops on drop.
pub struct HttpServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub requests: Arc<AtomicUsize>,
}

pub struct Request {
    pub method: String,
    pub path: String,
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

pub type Handler = dyn Fn(&Request) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync;

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
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
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

/// A token server for the distribution token flow: ES256 JWTs with an `x5c` header,
/// granting every requested action to `user`/`password` (or a refresh token it issued)
/// and nothing to anonymous requests.
pub struct TokenServer {
    pub http: HttpServer,
    pub config: TokenConfig,
    pub token_requests: Arc<AtomicUsize>,
}

impl TokenServer {
    pub fn start(user: &str, password: &str) -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["token-signer".to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        let cert_der = cert.der().to_vec();
        let rng = ring::rand::SystemRandom::new();
        let signer = Arc::new(
            ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &key.serialize_der(),
                &rng,
            )
            .unwrap(),
        );
        let service = "berth-test-registry".to_string();
        let issuer = "berth-test-issuer".to_string();
        let token_requests = Arc::new(AtomicUsize::new(0));
        let (user, password) = (user.to_string(), password.to_string());
        let (svc, iss, counter) = (service.clone(), issuer.clone(), token_requests.clone());
        let handler: Arc<Handler> = Arc::new(move |req: &Request| {
            counter.fetch_add(1, Ordering::SeqCst);
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let denied = (
                401,
                vec![("Content-Type".to_string(), "application/json".to_string())],
                br#"{"details":"incorrect username or password"}"#.to_vec(),
            );
            let (account, scopes, offline) = if req.method == "POST" {
                if req.form("refresh_token").as_deref() != Some(&format!("refresh-{user}")) {
                    return denied;
                }
                (user.clone(), req.form("scope").unwrap_or_default(), false)
            } else {
                let basic = req
                    .header("authorization")
                    .and_then(|h| h.strip_prefix("Basic "))
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .and_then(|b| String::from_utf8(b).ok());
                let account = match basic {
                    Some(b) if b == format!("{user}:{password}") => user.clone(),
                    Some(_) => return denied,
                    None => String::new(),
                };
                (
                    account,
                    req.query("scope").unwrap_or_default(),
                    req.query("offline_token").as_deref() == Some("true"),
                )
            };
            let access: Vec<serde_json::Value> = if account.is_empty() {
                Vec::new()
            } else {
                scopes
                    .split(' ')
                    .filter_map(|s| {
                        let mut p = s.splitn(3, ':');
                        let (t, n, a) = (p.next()?, p.next()?, p.next()?);
                        Some(serde_json::json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
                    })
                    .collect()
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let header = serde_json::json!({
                "typ": "JWT", "alg": "ES256",
                "x5c": [base64::engine::general_purpose::STANDARD.encode(&cert_der)],
            });
            let claims = serde_json::json!({
                "iss": iss, "sub": account, "aud": svc,
                "exp": now + 300, "nbf": now - 10, "iat": now,
                "jti": format!("{now}-{}", rand::random::<u64>()),
                "access": access,
            });
            let signing_input = format!(
                "{}.{}",
                b64.encode(header.to_string()),
                b64.encode(claims.to_string())
            );
            let sig = signer
                .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
                .unwrap();
            let jwt = format!("{signing_input}.{}", b64.encode(sig.as_ref()));
            let mut body =
                serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 300});
            if offline && !account.is_empty() {
                body["refresh_token"] = serde_json::json!(format!("refresh-{user}"));
            }
            (
                200,
                vec![("Content-Type".to_string(), "application/json".to_string())],
                body.to_string().into_bytes(),
            )
        });
        let http = HttpServer::start(handler);
        let config = TokenConfig {
            realm: format!("{}/token", http.url()),
            service,
            issuer,
            root_cert_pem: cert.pem(),
        };
        Self {
            http,
            config,
            token_requests,
        }
    }
}

/// A TCP proxy to 127.0.0.1:`target` that closes every connection once `limit` bytes
/// went from the server to the client.
pub struct CuttingProxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl CuttingProxy {
    pub fn start(target: u16, limit: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
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
                let sent = sent.clone();
                std::thread::spawn(move || {
                    let (mut from, mut to) = (server, client);
                    let mut buf = [0u8; 16384];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > limit
                            || to.write_all(&buf[..n]).is_err()
                        {
                            break;
                        }
                    }
                    let _ = to.shutdown(Shutdown::Both);
                    let _ = from.shutdown(Shutdown::Both);
                });
            }
        });
        Self { port, stop }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it (PEM), plus a client
/// certificate signed by the same CA.
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl TestPki {
    pub fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "berth test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let server_key = rcgen::KeyPair::generate().unwrap();
        let mut sp =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap();
        sp.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let server = sp.signed_by(&server_key, &issuer).unwrap();

        let client_key = rcgen::KeyPair::generate().unwrap();
        let mut cp = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        cp.distinguished_name
            .push(rcgen::DnType::CommonName, "berth test client");
        cp.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client = cp.signed_by(&client_key, &issuer).unwrap();
        Self {
            ca_pem: ca.pem(),
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }
}

/// Writes `files` (name, content) into `certs_dir/host/`.
pub fn write_certs_d(certs_dir: &Path, host: &str, files: &[(&str, &str)]) {
    let d = certs_dir.join(host);
    std::fs::create_dir_all(&d).unwrap();
    for (name, content) in files {
        std::fs::write(d.join(name), content).unwrap();
    }
}
