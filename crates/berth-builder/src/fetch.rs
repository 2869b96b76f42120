//! Downloads for `ADD <url>` and remote build contexts (`docker build http://host/ctx.tar`):
//! a plain HTTP/1.1 GET over TCP, or TLS with the system's CA bundle, following redirects.

use crate::error::{BuildError, Result};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

const MAX_REDIRECTS: usize = 10;
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// A finished download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub path: PathBuf,
    /// The last path component of the (final) URL, as `ADD url /dir/` names the file.
    pub file_name: String,
    /// `Last-Modified`, as unix seconds, when the server sent it.
    pub last_modified: Option<i64>,
    pub content_type: Option<String>,
}

/// Whether a string is a URL `ADD` and the build context download.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn dl_err(url: &str, message: impl std::fmt::Display) -> BuildError {
    BuildError::Download {
        url: url.to_string(),
        message: message.to_string(),
    }
}

fn tls_connector() -> std::result::Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let bundle = std::env::var("SSL_CERT_FILE")
        .ok()
        .into_iter()
        .chain(CA_BUNDLES.iter().map(|s| s.to_string()))
        .find(|p| Path::new(p).is_file())
        .ok_or("no CA certificate bundle found on this host")?;
    let pem = std::fs::read(&bundle).map_err(|e| format!("reading {bundle}: {e}"))?;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// Fetches `url` into the file `dest`.
pub async fn download(url: &str, dest: &Path) -> Result<Download> {
    let mut current = url::Url::parse(url).map_err(|e| dl_err(url, e))?;
    for _ in 0..=MAX_REDIRECTS {
        let host = current
            .host_str()
            .ok_or_else(|| dl_err(url, "no host in URL"))?
            .to_string();
        let https = match current.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(dl_err(url, format!("unsupported scheme {other}"))),
        };
        let port = current.port_or_known_default().unwrap_or(80);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| dl_err(url, e))?;
        let io: Box<dyn IoStream> = if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| dl_err(url, e))?;
            let tls = tls_connector()
                .map_err(|e| dl_err(url, e))?
                .connect(name, tcp)
                .await
                .map_err(|e| dl_err(url, e))?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| dl_err(url, e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut target = current.path().to_string();
        if let Some(q) = current.query() {
            target.push('?');
            target.push_str(q);
        }
        let host_header = match current.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let req = hyper::Request::get(target)
            .header("Host", host_header)
            .header("User-Agent", concat!("berth/", env!("CARGO_PKG_VERSION")))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| dl_err(url, e))?;
        let res = sender.send_request(req).await.map_err(|e| dl_err(url, e))?;
        let status = res.status();
        if status.is_redirection() {
            let loc = res
                .headers()
                .get("Location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| dl_err(url, "redirect without a Location"))?;
            current = current.join(loc).map_err(|e| dl_err(url, e))?;
            continue;
        }
        if !status.is_success() {
            return Err(dl_err(
                url,
                format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ),
            ));
        }
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let last_modified = header("Last-Modified")
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(&v).ok())
            .map(|t| t.timestamp());
        let content_type = header("Content-Type");
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| BuildError::io(format!("creating {}", dest.display()), e))?;
        let mut body = res.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| dl_err(url, e))?;
            if let Ok(data) = frame.into_data() {
                file.write_all(&data)
                    .await
                    .map_err(|e| BuildError::io(format!("writing {}", dest.display()), e))?;
            }
        }
        file.flush()
            .await
            .map_err(|e| BuildError::io(format!("writing {}", dest.display()), e))?;
        let file_name = current
            .path_segments()
            .and_then(|mut s| s.next_back().map(str::to_string))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "__unnamed__".to_string());
        return Ok(Download {
            path: dest.to_path_buf(),
            file_name,
            last_modified,
            content_type,
        });
    }
    Err(dl_err(url, "too many redirects"))
}

trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> IoStream for T {}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A one-shot HTTP server on 127.0.0.1 answering each connection from `answers`.
    async fn serve(answers: Vec<String>) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            for a in answers {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                s.write_all(a.as_bytes()).await.unwrap();
                s.shutdown().await.unwrap();
            }
        });
        port
    }

    #[tokio::test]
    async fn downloads_follow_redirects_and_keep_last_modified() {
        let port = serve(vec![
            "HTTP/1.1 302 Found\r\nLocation: /files/hello.txt\r\nContent-Length: 0\r\n\r\n".into(),
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\nhello".into(),
        ])
        .await;
        let d = tempfile::tempdir().unwrap();
        let out = download(
            &format!("http://127.0.0.1:{port}/start"),
            &d.path().join("f"),
        )
        .await
        .unwrap();
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"hello");
        assert_eq!(out.file_name, "hello.txt");
        assert_eq!(out.last_modified, Some(1_445_412_480));
    }

    #[tokio::test]
    async fn http_errors_name_the_url_and_status() {
        let port = serve(vec![
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into()
        ])
        .await;
        let d = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/missing");
        let e = download(&url, &d.path().join("f")).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("failed to download {url}: 404 Not Found")
        );
    }
}
