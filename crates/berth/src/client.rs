//! A Docker Engine API client: unix and TCP sockets, TLS, version negotiation, hijacking.
//!
//! berth talks HTTP/1.1 itself (on hyper) rather than through bollard because docker's
//! output depends on things a typed client hides: `inspect` prints the daemon's raw JSON in
//! its own field order, errors print the daemon's `message` verbatim, and attach must
//! half-close the hijacked socket when stdin ends. [`Client`] sends one request per
//! connection; [`Client::hijack`] returns the upgraded stream of attach and exec start.

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// The newest API version this client speaks (docker CLI 28.2.2's).
pub const CLIENT_API_VERSION: &str = "1.50";
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

/// Parses `-H` values as docker's `ParseHost` does: `unix:///path`, `tcp://host:port`,
/// `tcp://host` (port 2375, or 2376 with TLS), bare `host:port`.
pub fn parse_host(s: &str, tls: bool) -> anyhow::Result<(Endpoint, String)> {
    let s = s.trim();
    if let Some(path) = s.strip_prefix("unix://") {
        let path = if path.is_empty() {
            "/run/berth/berth.sock"
        } else {
            path
        };
        return Ok((
            Endpoint::Unix(PathBuf::from(path)),
            format!("unix://{path}"),
        ));
    }
    let rest = if let Some(r) = s.strip_prefix("tcp://") {
        r
    } else if s.contains("://") {
        anyhow::bail!("Invalid bind address format: {s}");
    } else {
        s
    };
    let rest = rest.trim_end_matches('/');
    let default_port = if tls { 2376 } else { 2375 };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (
            h.to_string(),
            p.parse::<u16>()
                .map_err(|_| anyhow::anyhow!("invalid bind address ({s}): invalid port"))?,
        ),
        _ => (rest.to_string(), default_port),
    };
    let host = if host.is_empty() {
        "127.0.0.1".to_string()
    } else {
        host
    };
    Ok((
        Endpoint::Tcp {
            host: host.clone(),
            port,
        },
        format!("tcp://{host}:{port}"),
    ))
}

/// TLS settings from `--tls*` flags.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Errors a command may print; the wording is docker's.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Cannot connect to the berth daemon at {host}. Is berthd running?")]
    Connect { host: String },
    #[error("permission denied while trying to connect to the berth daemon socket at {host}")]
    Permission { host: String },
    #[error("Error response from daemon: {message}")]
    Api { status: u16, message: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A bidirectional byte stream: a socket, maybe wrapped in TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn empty_body() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

pub fn json_body(v: &Json) -> Body {
    Full::new(Bytes::from(serde_json::to_vec(v).unwrap_or_default()))
        .map_err(|never| match never {})
        .boxed()
}

pub fn bytes_body(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A stream of bytes read from `r` as a request body (`load`, `import`).
pub fn reader_body<R: AsyncRead + Unpin + Send + Sync + 'static>(r: R) -> Body {
    use tokio::io::AsyncReadExt;
    let stream = futures_util::stream::unfold(r, |mut r| async move {
        let mut buf = vec![0u8; 256 * 1024];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(hyper::body::Frame::data(Bytes::from(buf))), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    });
    BodyExt::boxed(http_body_util::StreamBody::new(stream))
}

#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
    host: String,
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
    version: String,
}

/// A certificate verifier that accepts anything, for `--tls` without `--tlsverify`.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config(opts: &TlsOptions) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if opts.verify {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &opts.ca {
            let pem = std::fs::read(ca).with_context(|| {
                format!(
                    "could not read CA certificate {:?}",
                    ca.display().to_string()
                )
            })?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                roots.add(cert?)?;
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    };
    match (&opts.cert, &opts.key) {
        (Some(cert), Some(key)) => {
            let pem = std::fs::read(cert).with_context(|| {
                format!("Could not load X509 key pair: open {}", cert.display())
            })?;
            let certs = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let kpem = std::fs::read(key)
                .with_context(|| format!("Could not load X509 key pair: open {}", key.display()))?;
            let key = rustls_pemfile::private_key(&mut kpem.as_slice())?
                .ok_or_else(|| anyhow::anyhow!("no private key in {}", key.display()))?;
            Ok(builder.with_client_auth_cert(certs, key)?)
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn query_string(query: &[(&str, String)]) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        s.append_pair(k, v);
    }
    format!("?{}", s.finish())
}

/// The daemon's error message from an error response body (`{"message": "..."}`).
fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Json>(body) {
        if let Some(m) = v.get("message").and_then(Json::as_str) {
            return m.to_string();
        }
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    if text.is_empty() {
        format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
    } else {
        text
    }
}

impl Client {
    pub fn new(host: &str, tls: Option<TlsOptions>) -> anyhow::Result<Self> {
        let (endpoint, display) = parse_host(host, tls.is_some())?;
        let tls = match (&endpoint, tls) {
            (Endpoint::Tcp { host, .. }, Some(opts)) => {
                Some((Arc::new(tls_config(&opts)?), host.clone()))
            }
            _ => None,
        };
        let version =
            std::env::var("BERTH_API_VERSION").unwrap_or_else(|_| CLIENT_API_VERSION.to_string());
        Ok(Self {
            endpoint,
            host: display,
            tls,
            version,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The daemon's socket when it is a unix socket (a daemon on this machine).
    pub fn unix_socket(&self) -> Option<&std::path::Path> {
        match &self.endpoint {
            Endpoint::Unix(p) => Some(p),
            Endpoint::Tcp { .. } => None,
        }
    }

    /// The API version of this client before negotiation.
    pub fn client_version() -> String {
        std::env::var("BERTH_API_VERSION").unwrap_or_else(|_| CLIENT_API_VERSION.to_string())
    }

    async fn connect(&self) -> Result<Box<dyn Io>> {
        let map_err = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                ClientError::Permission {
                    host: self.host.clone(),
                }
            } else {
                ClientError::Connect {
                    host: self.host.clone(),
                }
            }
        };
        match &self.endpoint {
            Endpoint::Unix(path) => Ok(Box::new(
                tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(map_err)?,
            )),
            Endpoint::Tcp { host, port } => {
                let tcp = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(map_err)?;
                let _ = tcp.set_nodelay(true);
                match &self.tls {
                    None => Ok(Box::new(tcp)),
                    Some((cfg, name)) => {
                        let server_name = rustls::pki_types::ServerName::try_from(name.clone())
                            .map_err(|e| ClientError::Other(e.into()))?;
                        let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                            .connect(server_name, tcp)
                            .await
                            .map_err(|e| {
                                ClientError::Other(anyhow::anyhow!("error during connect: {e}"))
                            })?;
                        Ok(Box::new(tls))
                    }
                }
            }
        }
    }

    fn uri(&self, path: &str, query: &[(&str, String)], versioned: bool) -> String {
        if versioned {
            format!("/v{}{}{}", self.version, path, query_string(query))
        } else {
            format!("{}{}", path, query_string(query))
        }
    }

    async fn send_raw(
        &self,
        method: Method,
        uri: String,
        body: Body,
        headers: &[(&str, String)],
        upgrade: bool,
    ) -> Result<Response<Incoming>> {
        let io = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| ClientError::Other(e.into()))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", "api.moby.localhost")
            .header(
                "User-Agent",
                concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)"),
            );
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        if upgrade {
            req = req.header("Connection", "Upgrade").header("Upgrade", "tcp");
        }
        let req = req.body(body).map_err(|e| ClientError::Other(e.into()))?;
        let res = sender.send_request(req).await.map_err(|e| {
            if e.is_closed() || e.is_incomplete_message() {
                ClientError::Connect {
                    host: self.host.clone(),
                }
            } else {
                ClientError::Other(e.into())
            }
        })?;
        if res.status().is_client_error() || res.status().is_server_error() {
            let status = res.status();
            let body = res
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            return Err(ClientError::Api {
                status: status.as_u16(),
                message: error_message(status, &body),
            });
        }
        Ok(res)
    }

    /// Sends a request to a versioned path; error statuses become [`ClientError::Api`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body,
        headers: &[(&str, String)],
    ) -> Result<Response<Incoming>> {
        self.send_raw(method, self.uri(path, query, true), body, headers, false)
            .await
    }

    /// Pings the daemon and settles on min(server, client) API version, as the docker CLI does.
    pub async fn negotiate(&mut self) -> Result<()> {
        let res = self
            .send_raw(Method::GET, "/_ping".to_string(), empty_body(), &[], false)
            .await?;
        if std::env::var("BERTH_API_VERSION").is_ok() {
            return Ok(());
        }
        if let Some(v) = res
            .headers()
            .get("API-Version")
            .and_then(|v| v.to_str().ok())
        {
            if version_lt(v, CLIENT_API_VERSION) {
                self.version = v.to_string();
            }
        } else {
            // Docker treats a daemon that does not say as speaking 1.24.
            self.version = "1.24".to_string();
        }
        Ok(())
    }

    pub async fn get_bytes(&self, path: &str, query: &[(&str, String)]) -> Result<Bytes> {
        let res = self
            .send(Method::GET, path, query, empty_body(), &[])
            .await?;
        Ok(res
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Other(e.into()))?
            .to_bytes())
    }

    pub async fn get_json(&self, path: &str, query: &[(&str, String)]) -> Result<Json> {
        let b = self.get_bytes(path, query).await?;
        serde_json::from_slice(&b).map_err(|e| ClientError::Other(e.into()))
    }

    /// POST with an optional JSON body; returns the response body (maybe empty).
    pub async fn post(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Json>,
    ) -> Result<Bytes> {
        let (b, h) = match body {
            Some(v) => (
                json_body(v),
                vec![("Content-Type", "application/json".to_string())],
            ),
            None => (empty_body(), vec![]),
        };
        let res = self.send(Method::POST, path, query, b, &h).await?;
        Ok(res
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Other(e.into()))?
            .to_bytes())
    }

    pub async fn post_json(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Json>,
    ) -> Result<Json> {
        let b = self.post(path, query, body).await?;
        if b.is_empty() {
            return Ok(Json::Null);
        }
        serde_json::from_slice(&b).map_err(|e| ClientError::Other(e.into()))
    }

    pub async fn delete(&self, path: &str, query: &[(&str, String)]) -> Result<Bytes> {
        let res = self
            .send(Method::DELETE, path, query, empty_body(), &[])
            .await?;
        Ok(res
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Other(e.into()))?
            .to_bytes())
    }

    /// Starts a hijacked request (attach, exec start). Returns the raw stream and whether the
    /// daemon switched protocols; a daemon that answers 200 instead streams output only.
    pub async fn hijack(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Json>,
    ) -> Result<Hijacked> {
        let (b, h) = match body {
            Some(v) => (
                json_body(v),
                vec![("Content-Type", "application/json".to_string())],
            ),
            None => (
                empty_body(),
                vec![("Content-Type", "text/plain".to_string())],
            ),
        };
        let res = self
            .send_raw(Method::POST, self.uri(path, query, true), b, &h, true)
            .await?;
        if res.status() == StatusCode::SWITCHING_PROTOCOLS {
            let upgraded = hyper::upgrade::on(res)
                .await
                .map_err(|e| ClientError::Other(e.into()))?;
            match upgraded.downcast::<TokioIo<Box<dyn Io>>>() {
                Ok(parts) => Ok(Hijacked::Stream {
                    io: parts.io.into_inner(),
                    leftover: parts.read_buf,
                }),
                Err(_) => Err(ClientError::Other(anyhow::anyhow!(
                    "unexpected upgraded connection type"
                ))),
            }
        } else {
            Ok(Hijacked::Body(res.into_body()))
        }
    }
}

/// The result of [`Client::hijack`].
pub enum Hijacked {
    /// The raw connection, and bytes the HTTP layer already read past the headers.
    Stream { io: Box<dyn Io>, leftover: Bytes },
    /// An ordinary response body (no stdin possible).
    Body(Incoming),
}

/// Calls `f` with each newline-terminated line of a streamed body (the daemon's JSON
/// message streams: events, builds, pulls), the newline included, as the lines arrive;
/// returns what followed the last newline (usually nothing).
pub async fn for_each_line(
    body: &mut Incoming,
    mut f: impl FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    while let Some(chunk) = next_chunk(body).await {
        buf.extend_from_slice(&chunk?);
        while let Some(pos) = buf.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            f(&line)?;
        }
    }
    Ok(buf)
}

pub async fn next_chunk(body: &mut Incoming) -> Option<std::result::Result<Bytes, hyper::Error>> {
    loop {
        match body.frame().await? {
            Ok(f) => {
                if let Ok(d) = f.into_data() {
                    return Some(Ok(d));
                }
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

/// Compares dotted API versions (`1.41` < `1.50`).
pub fn version_lt(a: &str, b: &str) -> bool {
    let parse = |s: &str| {
        s.split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    parse(a) < parse(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_like_docker() {
        assert_eq!(
            parse_host("unix:///tmp/x.sock", false).unwrap(),
            (
                Endpoint::Unix("/tmp/x.sock".into()),
                "unix:///tmp/x.sock".into()
            )
        );
        assert_eq!(
            parse_host("tcp://10.0.0.1:2375", false).unwrap().0,
            Endpoint::Tcp {
                host: "10.0.0.1".into(),
                port: 2375
            }
        );
        assert_eq!(
            parse_host("tcp://example", true).unwrap().0,
            Endpoint::Tcp {
                host: "example".into(),
                port: 2376
            }
        );
        assert_eq!(
            parse_host("localhost:1234", false).unwrap().1,
            "tcp://localhost:1234"
        );
        assert!(parse_host("ssh://x", false).is_err());
    }

    #[test]
    fn api_versions_compare_numerically() {
        assert!(version_lt("1.9", "1.41"));
        assert!(version_lt("1.41", "1.50"));
        assert!(!version_lt("1.50", "1.50"));
    }

    #[test]
    fn daemon_error_messages_come_from_the_json_body() {
        assert_eq!(
            error_message(
                StatusCode::NOT_FOUND,
                br#"{"message":"No such container: x"}"#
            ),
            "No such container: x"
        );
        assert_eq!(
            error_message(StatusCode::INTERNAL_SERVER_ERROR, b"boom\n"),
            "boom"
        );
        assert_eq!(error_message(StatusCode::NOT_FOUND, b""), "404 Not Found");
    }

    #[test]
    fn connection_errors_name_the_daemon() {
        let e = ClientError::Connect {
            host: DEFAULT_HOST.into(),
        };
        assert_eq!(e.to_string(), "Cannot connect to the berth daemon at unix:///run/berth/berth.sock. Is berthd running?");
    }
}
