//! Test harness: helpers that make images in a fresh [`Storage`], a token server and a
//! test PKI. The registry itself (a real `docker-registry` on 127.0.0.1, optionally
//! behind htpasswd or token auth and TLS), the tiny HTTP server and the TCP proxy come
//! from `berth_tests::registry`, shared with the end-to-end tests. Everything stops and
//! is removed on drop, also after a panic.
#![allow(dead_code, unused_imports)]

pub use berth_tests::free_port;
pub use berth_tests::registry::{
    Auth, Handler, HttpServer, Request, TcpProxy, TestRegistry, Tls, TokenConfig,
};

use berth_core::Digest;
use berth_registry::Progress;
use berth_storage::{chain_id, DriverChoice, Storage};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

/// Temp dirs live straight under /var/tmp (a real disk; each is removed with its test),
/// or under `BERTH_TEST_DIR`.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let base = std::env::var_os("BERTH_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix(&format!("berth-registry-test-{prefix}"))
        .tempdir_in(base)
        .unwrap()
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
