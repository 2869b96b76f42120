//! Where requests go and how: endpoints (Docker Hub, mirrors, HTTPS then HTTP for
//! insecure registries), TLS per host (system roots plus `certs.d/HOST:PORT/*.crt`, client
//! certificates), HTTP clients, error translation, and `Session`, the authenticated
//! conversation with one repository on one endpoint.
//!
//! `Transport` is shared by every clone of a [`crate::Registry`]. It keeps one HTTP
//! client per host and TLS mode (connections are pooled inside), the token cache, the
//! auth challenge each registry answered with, and which scheme worked for each host, so
//! only the first conversation with a registry pings `/v2/`.

use crate::auth::{self, Challenge, Credentials, TokenCache};
use crate::error::{errcode_text, RegistryError, Result};
use crate::RegistryConfig;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode, Url};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The host behind `docker.io`.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";
pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_INDEX: &str = "https://index.docker.io";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest silence on a connection mid-response before the request fails.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

/// One base URL to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `scheme://host[:port]/`.
    pub base: Url,
    /// `host[:port]`, the certs.d directory name and the key of per-host state.
    pub host: String,
    /// Whether the certificate is verified (false for insecure registries).
    pub verify_tls: bool,
    /// Whether this is a pull-through mirror (errors fall back to the next endpoint).
    pub mirror: bool,
}

impl Endpoint {
    fn new(scheme: &str, host: &str, verify_tls: bool, mirror: bool) -> Result<Self> {
        let base = Url::parse(&format!("{scheme}://{host}/")).map_err(|e| {
            RegistryError::InvalidAddress {
                input: host.to_string(),
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            base,
            host: host.to_string(),
            verify_tls,
            mirror,
        })
    }

    fn key(&self) -> String {
        self.base.as_str().to_string()
    }
}

/// Shared connection state of a [`crate::Registry`].
#[derive(Debug)]
pub(crate) struct Transport {
    pub cfg: RegistryConfig,
    pub tokens: TokenCache,
    clients: Mutex<HashMap<(String, bool), reqwest::Client>>,
    /// Challenge answered by each endpoint's `/v2/` (None: no auth needed).
    challenges: Mutex<HashMap<String, Option<Challenge>>>,
    /// Hosts whose insecure status was worked out (DNS may be involved).
    insecure: Mutex<HashMap<String, bool>>,
}

impl Transport {
    pub fn new(cfg: RegistryConfig) -> Self {
        Self {
            cfg,
            tokens: TokenCache::default(),
            clients: Mutex::new(HashMap::new()),
            challenges: Mutex::new(HashMap::new()),
            insecure: Mutex::new(HashMap::new()),
        }
    }

    /// The HTTP client for `host` (TLS settings are per host: certs.d).
    pub fn client(&self, host: &str, verify_tls: bool) -> Result<reqwest::Client> {
        let key = (host.to_string(), verify_tls);
        if let Some(c) = lock(&self.clients).get(&key) {
            return Ok(c.clone());
        }
        let tls = tls_config(&self.cfg.certs_dir, host, verify_tls)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(|e| RegistryError::TlsConfig {
                host: host.to_string(),
                reason: e.to_string(),
            })?;
        lock(&self.clients).insert(key, client.clone());
        Ok(client)
    }

    /// Whether plain HTTP and unverified TLS are allowed for `host` (`host[:port]`):
    /// loopback addresses, `localhost`, and `insecure-registries` entries (names, or CIDRs
    /// matched against the host's addresses, as Docker does).
    pub async fn is_insecure(&self, host: &str) -> bool {
        if let Some(v) = lock(&self.insecure).get(host) {
            return *v;
        }
        let v = self.work_out_insecure(host).await;
        lock(&self.insecure).insert(host.to_string(), v);
        v
    }

    async fn work_out_insecure(&self, host: &str) -> bool {
        let hostname = strip_port(host);
        let listed = &self.cfg.insecure_registries;
        if listed
            .iter()
            .any(|e| e == host || e == hostname || strip_scheme(e) == host)
        {
            return true;
        }
        if hostname == DOCKER_HUB_REGISTRY || hostname == "index.docker.io" {
            return false;
        }
        let loopback_ok = self.cfg.insecure_loopback;
        if loopback_ok && hostname.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let nets: Vec<Cidr> = listed.iter().filter_map(|e| Cidr::parse(e)).collect();
        let ips: Vec<IpAddr> = match hostname.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let lookup = tokio::net::lookup_host((hostname, 0));
                match tokio::time::timeout(Duration::from_secs(5), lookup).await {
                    Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                    _ => Vec::new(),
                }
            }
        };
        ips.iter()
            .any(|ip| (loopback_ok && ip.is_loopback()) || nets.iter().any(|n| n.contains(ip)))
    }

    /// The scheme alternatives for a registry host, in the order Docker tries them:
    /// HTTPS, then for insecure registries HTTPS without verification and plain HTTP.
    pub async fn alternatives(&self, host: &str, mirror: bool) -> Result<Vec<Endpoint>> {
        if self.is_insecure(host).await {
            Ok(vec![
                Endpoint::new("https", host, false, mirror)?,
                Endpoint::new("http", host, false, mirror)?,
            ])
        } else {
            Ok(vec![Endpoint::new("https", host, true, mirror)?])
        }
    }

    /// Alternatives for a mirror given as a URL (`http://127.0.0.1:5001`) or a host.
    async fn mirror_alternatives(&self, mirror: &str) -> Result<Vec<Endpoint>> {
        match mirror.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.split('/').next().unwrap_or(rest);
                if scheme != "http" && scheme != "https" {
                    return Err(RegistryError::InvalidAddress {
                        input: mirror.to_string(),
                        reason: "mirror must be an http or https URL".into(),
                    });
                }
                if scheme == "http" {
                    return Ok(vec![Endpoint::new("http", host, false, true)?]);
                }
                let verify = !self.is_insecure(host).await;
                Ok(vec![Endpoint::new("https", host, verify, true)?])
            }
            None => self.alternatives(mirror.trim_end_matches('/'), true).await,
        }
    }

    /// The registry host behind a reference domain (`docker.io` → Docker Hub's).
    pub fn registry_host(domain: &str) -> &str {
        if domain == DEFAULT_DOMAIN || domain == "index.docker.io" {
            DOCKER_HUB_REGISTRY
        } else {
            domain
        }
    }

    /// Endpoint groups to pull from: each mirror configured for the domain, then the
    /// registry itself. Each group lists the scheme alternatives of one server.
    pub async fn pull_endpoints(&self, domain: &str) -> Result<Vec<Vec<Endpoint>>> {
        let mut groups = Vec::new();
        let mirrors: Vec<String> = if domain == DEFAULT_DOMAIN {
            self.cfg
                .mirrors
                .iter()
                .chain(
                    self.cfg
                        .per_registry_mirrors
                        .get(domain)
                        .into_iter()
                        .flatten(),
                )
                .cloned()
                .collect()
        } else {
            self.cfg
                .per_registry_mirrors
                .get(domain)
                .cloned()
                .unwrap_or_default()
        };
        for m in mirrors {
            groups.push(self.mirror_alternatives(&m).await?);
        }
        groups.push(
            self.alternatives(Self::registry_host(domain), false)
                .await?,
        );
        Ok(groups)
    }

    /// Opens a session with the first alternative that answers `/v2/` (or the one that
    /// answered before). The error of the last alternative is returned when none does.
    pub async fn session(
        self: &Arc<Self>,
        alternatives: &[Endpoint],
        repo: &str,
        scopes: Vec<String>,
        creds: Option<&Credentials>,
    ) -> Result<Session> {
        let known = {
            let ch = lock(&self.challenges);
            alternatives
                .iter()
                .find(|e| ch.contains_key(&e.key()))
                .cloned()
        };
        let endpoint = match known {
            Some(e) => e,
            None => {
                let mut last = None;
                let mut found = None;
                for e in alternatives {
                    match self.ping(e).await {
                        Ok(()) => {
                            found = Some(e.clone());
                            break;
                        }
                        Err(err) => last = Some(err),
                    }
                }
                match (found, last) {
                    (Some(e), _) => e,
                    (None, Some(err)) => return Err(err),
                    (None, None) => {
                        return Err(RegistryError::internal("opening session", "no endpoints"))
                    }
                }
            }
        };
        let client = self.client(&endpoint.host, endpoint.verify_tls)?;
        Ok(Session {
            transport: self.clone(),
            endpoint,
            client,
            repo: repo.to_string(),
            scopes,
            creds: creds.filter(|c| !c.is_empty()).cloned(),
            auth: tokio::sync::Mutex::new(None),
        })
    }

    /// `GET /v2/`: learns whether the endpoint answers and which auth it wants.
    pub async fn ping(&self, e: &Endpoint) -> Result<()> {
        let client = self.client(&e.host, e.verify_tls)?;
        let url = e.base.join("v2/").expect("static path joins");
        let resp = client
            .get(url.clone())
            .send()
            .await
            .map_err(|err| transport_error("GET", url.as_str(), &err))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(error_from_response("GET", url.as_str(), resp).await);
        }
        let challenge = if status == StatusCode::UNAUTHORIZED {
            challenge_of(&resp)
        } else {
            None
        };
        lock(&self.challenges).insert(e.key(), challenge);
        Ok(())
    }

    fn challenge(&self, e: &Endpoint) -> Option<Challenge> {
        lock(&self.challenges).get(&e.key()).cloned().flatten()
    }

    fn set_challenge(&self, e: &Endpoint, c: Option<Challenge>) {
        lock(&self.challenges).insert(e.key(), c);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn challenge_of(resp: &Response) -> Option<Challenge> {
    let values: Vec<&str> = resp
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    auth::parse_challenges(values).into_iter().next()
}

/// `host` without `:port` (and without IPv6 brackets).
pub(crate) fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

fn strip_scheme(s: &str) -> &str {
    s.split_once("://").map(|(_, r)| r).unwrap_or(s)
}

/// An IPv4 or IPv6 network (`10.0.0.0/8`).
struct Cidr {
    net: IpAddr,
    bits: u32,
}

impl Cidr {
    fn parse(s: &str) -> Option<Self> {
        let (ip, bits) = s.split_once('/')?;
        let net: IpAddr = ip.parse().ok()?;
        let bits: u32 = bits.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Self { net, bits })
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.bits)
                };
                u32::from(n) & mask == u32::from(*i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.bits)
                };
                u128::from(n) & mask == u128::from(*i) & mask
            }
            _ => false,
        }
    }
}

/// The system's trusted roots, read once.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS settings for `host`: system roots plus `certs.d/<host>/*.crt`, and the client
/// certificate `*.cert` with its `*.key` when present (Docker's layout). Without
/// verification (insecure registries) any certificate is accepted.
pub(crate) fn tls_config(
    certs_dir: &Path,
    host: &str,
    verify: bool,
) -> Result<rustls::ClientConfig> {
    let tls_err = |reason: String| RegistryError::TlsConfig {
        host: host.to_string(),
        reason,
    };
    let dir = certs_dir.join(host);
    let mut cas = Vec::new();
    let mut client_certs = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        names.sort();
        for p in names {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "crt" {
                cas.push(p);
            } else if ext == "cert" {
                client_certs.push(p);
            }
        }
    }
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?;
    let builder = if verify {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(system_roots().iter().cloned());
        for ca in &cas {
            let pem = std::fs::read(ca).map_err(|e| tls_err(format!("{}: {e}", ca.display())))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| tls_err(format!("{}: {e}", ca.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| tls_err(format!("{}: {e}", ca.display())))?;
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    };
    let config = match client_certs.first() {
        Some(cert_path) => {
            let key_path = cert_path.with_extension("key");
            let cert_pem = std::fs::read(cert_path)
                .map_err(|e| tls_err(format!("{}: {e}", cert_path.display())))?;
            let key_pem = std::fs::read(&key_path).map_err(|e| {
                tls_err(format!(
                    "missing key {} for client certificate {}: {e}",
                    key_path.display(),
                    cert_path.display()
                ))
            })?;
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| tls_err(format!("{}: {e}", cert_path.display())))?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| tls_err(format!("{}: {e}", key_path.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_err(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// Accepts any server certificate (insecure registries, as Docker's InsecureSkipVerify);
/// handshake signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Go's spelling of an HTTP method in error messages (`Get`, `Head`).
fn go_method(method: &str) -> String {
    let lower = method.to_lowercase();
    let mut c = lower.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => lower,
    }
}

/// Every error in the chain of `err`, looking inside `io::Error`s too (their `source()`
/// skips the wrapped error itself).
fn error_chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        out.push(e);
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => e.source(),
        };
        if out.len() > 32 {
            break;
        }
    }
    out
}

/// Translates a failed request into Go's wording: `Get "url": dial tcp 127.0.0.1:1:
/// connect: connection refused`, `http: server gave HTTP response to HTTPS client`,
/// `tls: failed to verify certificate: x509: ...`.
pub(crate) fn transport_error(method: &str, url: &str, err: &reqwest::Error) -> RegistryError {
    let parsed = Url::parse(url).ok();
    let host = parsed
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let addr = parsed
        .as_ref()
        .map(|u| {
            let port = u.port_or_known_default().unwrap_or(0);
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        })
        .unwrap_or_default();
    let chain = error_chain(err);
    let mut reason = None;
    for e in &chain {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            reason = Some(match tls {
                rustls::Error::InvalidMessage(_) => {
                    "http: server gave HTTP response to HTTPS client".to_string()
                }
                rustls::Error::InvalidCertificate(c) => {
                    format!(
                        "tls: failed to verify certificate: x509: {}",
                        x509_reason(c)
                    )
                }
                other => format!("remote error: tls: {other}"),
            });
            break;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            let what = match io.kind() {
                K::ConnectionRefused => Some("connect: connection refused"),
                K::ConnectionReset => Some("read: connection reset by peer"),
                K::TimedOut => Some("i/o timeout"),
                K::HostUnreachable => Some("connect: no route to host"),
                K::NetworkUnreachable => Some("connect: network is unreachable"),
                _ => None,
            };
            if let Some(what) = what {
                reason = Some(format!("dial tcp {addr}: {what}"));
                break;
            }
        }
    }
    let reason = reason.unwrap_or_else(|| {
        let text = chain
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(": ");
        if text.contains("dns error") || text.contains("failed to lookup address") {
            format!("dial tcp: lookup {host}: no such host")
        } else if err.is_timeout() {
            format!("dial tcp {addr}: i/o timeout")
        } else {
            chain
                .last()
                .map(|e| e.to_string())
                .unwrap_or_else(|| err.to_string())
        }
    });
    RegistryError::Transport {
        method: go_method(method),
        url: url.to_string(),
        reason,
    }
}

fn x509_reason(e: &rustls::CertificateError) -> String {
    match e {
        rustls::CertificateError::UnknownIssuer => {
            "certificate signed by unknown authority".to_string()
        }
        rustls::CertificateError::Expired => "certificate has expired or is not yet valid".into(),
        rustls::CertificateError::NotValidForName => {
            "certificate is not valid for this host".into()
        }
        other => format!("{other:?}"),
    }
}

/// The registry's error document, as distribution's client reads it: the first of
/// `{"errors":[{"code","message"}]}`, or a token server's `{"details": ...}`; a bare
/// `401` is `unauthorized: authentication required`.
pub(crate) async fn error_from_response(method: &str, url: &str, resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    let oauth = (status == 401)
        .then(|| challenge_of(&resp))
        .flatten()
        .and_then(|c| match c {
            Challenge::Bearer { error: Some(e), .. } if e == "invalid_token" => Some(e),
            _ => None,
        });
    let body = read_limited(resp, 64 * 1024).await.unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default)]
        errors: Vec<Item>,
        #[serde(default)]
        details: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(doc) = serde_json::from_slice::<Doc>(&body) {
        if let Some(first) = doc.errors.into_iter().next() {
            let code = if first.code.is_empty() {
                "UNKNOWN".to_string()
            } else {
                first.code
            };
            return RegistryError::Remote {
                status,
                code: errcode_text(&code),
                message: first.message,
            };
        }
        if let Some(details) = doc.details.filter(|d| !d.is_empty()) {
            let code = if status == 401 {
                "UNAUTHORIZED"
            } else {
                "UNKNOWN"
            };
            return RegistryError::Remote {
                status,
                code: errcode_text(code),
                message: details,
            };
        }
    }
    if status == 401 || oauth.is_some() {
        return RegistryError::Remote {
            status,
            code: errcode_text("UNAUTHORIZED"),
            message: "authentication required".into(),
        };
    }
    RegistryError::UnexpectedStatus {
        method: go_method(method),
        url: url.to_string(),
        status,
    }
}

/// Reads at most `limit` bytes of a body.
pub(crate) async fn read_limited(resp: Response, limit: usize) -> Option<Bytes> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.ok()?;
        if out.len() + chunk.len() > limit {
            return None;
        }
        out.extend_from_slice(&chunk);
    }
    Some(Bytes::from(out))
}

/// An authenticated conversation with one repository on one endpoint.
#[derive(Debug)]
pub(crate) struct Session {
    transport: Arc<Transport>,
    pub endpoint: Endpoint,
    client: reqwest::Client,
    /// Repository path (`library/busybox`).
    pub repo: String,
    scopes: Vec<String>,
    creds: Option<Credentials>,
    /// The `Authorization` value in use, once worked out.
    auth: tokio::sync::Mutex<Option<HeaderValue>>,
}

impl Session {
    /// `v2/<repo>/<rest>` on this endpoint.
    pub fn url(&self, rest: &str) -> Url {
        self.endpoint
            .base
            .join(&format!("v2/{}/{rest}", self.repo))
            .expect("repository paths are valid URL paths")
    }

    /// An absolute URL from a `Location` header (which may be relative).
    pub fn resolve_location(&self, location: &str) -> Result<Url> {
        self.endpoint
            .base
            .join(location)
            .map_err(|e| RegistryError::internal("reading upload location", e))
    }

    /// The `Authorization` header for this session's scopes, if the registry wants one.
    async fn authorization(&self) -> Result<Option<HeaderValue>> {
        let mut current = self.auth.lock().await;
        if current.is_some() {
            return Ok(current.clone());
        }
        let value = match self.transport.challenge(&self.endpoint) {
            None => None,
            Some(c) => Some(self.authorize(&c).await?),
        };
        current.clone_from(&value);
        Ok(value)
    }

    async fn authorize(&self, challenge: &Challenge) -> Result<HeaderValue> {
        let value = match challenge {
            Challenge::Basic => {
                let c = self
                    .creds
                    .as_ref()
                    .filter(|c| !c.username.is_empty())
                    .ok_or(RegistryError::NoBasicCredentials)?;
                format!("Basic {}", auth::encode_basic(&c.username, &c.password))
            }
            Challenge::Bearer { realm, service, .. } => {
                let t = self
                    .transport
                    .tokens
                    .token(
                        &self.client_for_token(realm)?,
                        realm,
                        service,
                        &self.scopes,
                        self.creds.as_ref(),
                    )
                    .await?;
                format!("Bearer {}", t.value)
            }
        };
        HeaderValue::from_str(&value)
            .map_err(|e| RegistryError::internal("building auth header", e))
    }

    /// Token realms may live on another host (auth.docker.io): use that host's client.
    fn client_for_token(&self, realm: &str) -> Result<reqwest::Client> {
        let url = Url::parse(realm).map_err(|e| RegistryError::InvalidAddress {
            input: realm.to_string(),
            reason: e.to_string(),
        })?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return Ok(self.client.clone()),
        };
        if host == self.endpoint.host {
            return Ok(self.client.clone());
        }
        self.transport.client(&host, self.endpoint.verify_tls)
    }

    /// Sends a request with a replayable body; on a `401` with a new challenge the auth is
    /// worked out again and the request retried once. The response is returned whatever
    /// its status.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response> {
        let mut retried = false;
        loop {
            let auth = self.authorization().await?;
            let mut req = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(a) = &auth {
                req = req.header(AUTHORIZATION, a.clone());
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| transport_error(method.as_str(), url.as_str(), &e))?;
            if resp.status() != StatusCode::UNAUTHORIZED || retried {
                return Ok(resp);
            }
            let Some(challenge) = challenge_of(&resp) else {
                return Ok(resp);
            };
            let same = self.transport.challenge(&self.endpoint).as_ref() == Some(&challenge);
            if same && auth.is_some() {
                // The token we had was refused (expired, or scope missing): fetch anew once.
                if let Challenge::Bearer { .. } = challenge {
                    self.transport.tokens.forget_all();
                } else {
                    return Ok(resp);
                }
            }
            self.transport
                .set_challenge(&self.endpoint, Some(challenge));
            *self.auth.lock().await = None;
            retried = true;
        }
    }

    /// Sends a request whose body is a one-shot stream: auth is worked out first (the
    /// body cannot be replayed after a 401).
    pub async fn send_stream(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: reqwest::Body,
    ) -> Result<Response> {
        let auth = self.authorization().await?;
        let mut req = self
            .client
            .request(method.clone(), url.clone())
            .headers(headers);
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a);
        }
        req.body(body)
            .send()
            .await
            .map_err(|e| transport_error(method.as_str(), url.as_str(), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_match_addresses_of_their_family() {
        let n = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(n.contains(&"10.1.200.3".parse().unwrap()));
        assert!(!n.contains(&"10.2.0.1".parse().unwrap()));
        assert!(!n.contains(&"::1".parse().unwrap()));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(&"fd12::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("myhost:5000").is_none());
    }

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(strip_port("[::1]:5000"), "::1");
        assert_eq!(strip_port("registry.example"), "registry.example");
    }

    #[tokio::test]
    async fn loopback_localhost_and_listed_registries_are_insecure() {
        let t = Transport::new(RegistryConfig {
            insecure_registries: vec!["myreg.example:5000".into(), "10.9.0.0/16".into()],
            ..RegistryConfig::default()
        });
        assert!(t.is_insecure("127.0.0.1:5000").await);
        assert!(t.is_insecure("127.3.2.1").await);
        assert!(t.is_insecure("[::1]:5000").await);
        assert!(t.is_insecure("localhost:5000").await);
        assert!(t.is_insecure("myreg.example:5000").await);
        assert!(t.is_insecure("10.9.3.4:443").await);
        assert!(!t.is_insecure("10.8.3.4:443").await);
        assert!(!t.is_insecure(DOCKER_HUB_REGISTRY).await);
    }

    #[tokio::test]
    async fn docker_hub_pulls_try_mirrors_first_then_registry_1() {
        let mut per = std::collections::BTreeMap::new();
        per.insert(
            "127.0.0.1:5000".to_string(),
            vec!["http://127.0.0.1:5001".to_string()],
        );
        let t = Transport::new(RegistryConfig {
            mirrors: vec!["https://mirror.example".into()],
            per_registry_mirrors: per,
            ..RegistryConfig::default()
        });
        let hub = t.pull_endpoints("docker.io").await.unwrap();
        let urls: Vec<Vec<String>> = hub
            .iter()
            .map(|g| g.iter().map(|e| e.base.to_string()).collect())
            .collect();
        assert_eq!(
            urls,
            vec![
                vec!["https://mirror.example/".to_string()],
                vec!["https://registry-1.docker.io/".to_string()]
            ]
        );
        assert!(hub[0][0].mirror && !hub[1][0].mirror);
        let local = t.pull_endpoints("127.0.0.1:5000").await.unwrap();
        assert_eq!(local[0][0].base.as_str(), "http://127.0.0.1:5001/");
        let schemes: Vec<&str> = local[1].iter().map(|e| e.base.scheme()).collect();
        assert_eq!(schemes, vec!["https", "http"], "HTTPS first, then HTTP");
    }

    #[test]
    fn go_method_names_are_capitalised() {
        assert_eq!(go_method("GET"), "Get");
        assert_eq!(go_method("HEAD"), "Head");
    }
}
