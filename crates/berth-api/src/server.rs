//! Serving the router on unix sockets and TCP (optionally TLS with client certificates),
//! one hyper HTTP/1 connection per client with upgrades enabled for hijacked streams.

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tower::ServiceExt;

/// TLS settings as dockerd takes them.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// With `--tlsverify`: only clients with a certificate signed by this CA get in.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("loading TLS material {path}: {reason}")]
    Tls { path: String, reason: String },
}

/// A bound listener, ready to serve.
pub enum Bound {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener, Option<tokio_rustls::TlsAcceptor>),
}

/// Binds a unix socket (stale socket files are replaced; mode 0660).
pub fn bind_unix(path: &Path) -> Result<Bound, ServeError> {
    let err = |source| ServeError::Listen {
        addr: format!("unix://{}", path.display()),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if path.exists() {
        // Refuse to steal a socket some live daemon is serving.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another daemon is serving this socket",
            )));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let l = UnixListener::bind(path).map_err(err)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    Ok(Bound::Unix(l, path.to_path_buf()))
}

/// Binds a TCP address, with TLS when settings are given.
pub async fn bind_tcp(addr: SocketAddr, tls: Option<&TlsSettings>) -> Result<Bound, ServeError> {
    let acceptor = match tls {
        Some(t) => Some(tls_acceptor(t)?),
        None => None,
    };
    let l = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: format!("tcp://{addr}"),
            source,
        })?;
    Ok(Bound::Tcp(l, acceptor))
}

fn read_pem(path: &Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|e| ServeError::Tls {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn tls_acceptor(t: &TlsSettings) -> Result<tokio_rustls::TlsAcceptor, ServeError> {
    let tls_err = |path: &Path, reason: String| ServeError::Tls {
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut read_pem(&t.cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err(&t.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_err(&t.cert, "no certificate found".into()));
    }
    let key = rustls_pemfile::private_key(&mut read_pem(&t.key)?.as_slice())
        .map_err(|e| tls_err(&t.key, e.to_string()))?
        .ok_or_else(|| tls_err(&t.key, "no private key found".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&t.cert, e.to_string()))?;
    let builder = match &t.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut read_pem(ca)?.as_slice()) {
                let c = c.map_err(|e| tls_err(ca, e.to_string()))?;
                roots.add(c).map_err(|e| tls_err(ca, e.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| tls_err(ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| tls_err(&t.key, e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on every listener until the process ends.
pub async fn serve(app: Router, listeners: Vec<Bound>) {
    let mut tasks = Vec::new();
    for l in listeners {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            match l {
                Bound::Unix(l, _) => loop {
                    if let Ok((s, _)) = l.accept().await {
                        spawn_conn(app.clone(), s);
                    }
                },
                Bound::Tcp(l, tls) => loop {
                    let Ok((s, _)) = l.accept().await else {
                        continue;
                    };
                    let _ = s.set_nodelay(true);
                    match &tls {
                        None => spawn_conn(app.clone(), s),
                        Some(acceptor) => {
                            let acceptor = acceptor.clone();
                            let app = app.clone();
                            tokio::spawn(async move {
                                match acceptor.accept(s).await {
                                    Ok(tls) => spawn_conn(app, tls),
                                    Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
                                }
                            });
                        }
                    }
                },
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Marks requests that came on a unix socket (a client on this machine).
#[derive(Clone, Copy, Debug)]
pub struct LocalSocket;

fn spawn_conn<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(app: Router, stream: S) {
    let local = std::any::TypeId::of::<S>() == std::any::TypeId::of::<tokio::net::UnixStream>();
    tokio::spawn(async move {
        let svc = tower::service_fn(move |mut req: Request<Incoming>| {
            if local {
                req.extensions_mut().insert(LocalSocket);
            }
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle(app, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
            .with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    });
}

async fn handle(app: Router, req: Request<Incoming>) -> Response<Body> {
    let mut resp = match crate::version::strip_version(req.map(Body::new)) {
        Ok(req) => match app.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
        Err(r) => *r,
    };
    let h = resp.headers_mut();
    h.insert(
        "Api-Version",
        HeaderValue::from_static(crate::version::API_VERSION),
    );
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    resp
}
