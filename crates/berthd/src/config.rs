//! berthd's flags and daemon.json, merged (flags win).

use anyhow::{bail, Context, Result};
use berth_engine::EngineConfig;
use clap::Parser;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_SOCKET: &str = "unix:///run/berth/berth.sock";
const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

/// Flags named like dockerd's.
#[derive(Debug, Parser)]
#[command(
    name = "berthd",
    version,
    about = "The berth container engine daemon (Docker Engine API compatible)"
)]
pub struct Flags {
    /// Daemon socket(s) to connect to (unix:///path, tcp://host:port)
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Root directory of persistent state
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Root directory for execution state files
    #[arg(long)]
    pub exec_root: Option<PathBuf>,
    /// Path to use for the daemon PID file
    #[arg(short = 'p', long)]
    pub pidfile: Option<PathBuf>,
    /// Daemon configuration file (daemon.json keys)
    #[arg(long)]
    pub config_file: Option<PathBuf>,
    /// Default OCI runtime for containers (runc, crun)
    #[arg(long)]
    pub default_runtime: Option<String>,
    /// Logging level (debug, info, warn, error, fatal)
    #[arg(short = 'l', long)]
    pub log_level: Option<String>,
    /// Storage driver to use (overlay2, vfs)
    #[arg(short = 's', long)]
    pub storage_driver: Option<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long)]
    pub tls: bool,
    /// Use TLS and verify the remote
    #[arg(long)]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA
    #[arg(long)]
    pub tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file
    #[arg(long)]
    pub tlscert: Option<PathBuf>,
    /// Path to TLS key file
    #[arg(long)]
    pub tlskey: Option<PathBuf>,
    /// Serve plain TCP on a non-loopback address (dangerous: root for anyone who can connect)
    #[arg(long)]
    pub allow_insecure_tcp: bool,
    /// Parent cgroup for all containers
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    /// Default driver for container logs
    #[arg(long)]
    pub log_driver: Option<String>,
    /// Default log driver options (max-size=10m, max-file=3)
    #[arg(long = "log-opt")]
    pub log_opts: Vec<String>,
    /// Path to the init binary used by --init
    #[arg(long)]
    pub init_path: Option<PathBuf>,
    /// Path to the berth-shim binary (default: next to berthd, then PATH)
    #[arg(long, hide = true)]
    pub shim_path: Option<PathBuf>,
    /// Attach containers to a network bridge ("none" disables the default bridge)
    #[arg(short = 'b', long)]
    pub bridge: Option<String>,
    /// Specify the default bridge's network address and prefix (172.30.0.1/16)
    #[arg(long)]
    pub bip: Option<String>,
    /// Enable insecure registry communication (host[:port] or CIDR; repeatable)
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Preferred Docker Hub mirror (http(s) URL; repeatable)
    #[arg(long = "registry-mirror")]
    pub registry_mirrors: Vec<String>,
    /// Mirror for any registry, as REGISTRY=URL (berth extension; repeatable)
    #[arg(long = "registry-mirror-for")]
    pub registry_mirrors_for: Vec<String>,
    /// Directory of per-registry certificates, HOST:PORT/{ca.crt,client.cert,client.key}
    #[arg(long)]
    pub registry_certs_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    hosts: Option<Vec<String>>,
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    pidfile: Option<PathBuf>,
    default_runtime: Option<String>,
    runtimes: Option<BTreeMap<String, RuntimeEntry>>,
    log_level: Option<String>,
    storage_driver: Option<String>,
    tls: Option<bool>,
    tlsverify: Option<bool>,
    tlscacert: Option<PathBuf>,
    tlscert: Option<PathBuf>,
    tlskey: Option<PathBuf>,
    cgroup_parent: Option<String>,
    log_driver: Option<String>,
    log_opts: Option<BTreeMap<String, String>>,
    init_path: Option<PathBuf>,
    live_restore: Option<bool>,
    debug: Option<bool>,
    insecure_registries: Option<Vec<String>>,
    registry_mirrors: Option<Vec<String>>,
    /// berth extension: mirrors for any registry, by registry (`{"host:5000": [url]}`).
    berth_registry_mirrors: Option<BTreeMap<String, Vec<String>>>,
    /// berth extension: the certs.d directory (default /etc/berth/certs.d).
    berth_registry_certs_dir: Option<PathBuf>,
    #[serde(rename = "storage-opts")]
    storage_opts: Option<Vec<String>>,
    bridge: Option<String>,
    bip: Option<String>,
    default_address_pools: Option<Vec<AddressPoolEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressPoolEntry {
    base: String,
    size: u8,
}

#[derive(Debug, Deserialize)]
struct RuntimeEntry {
    path: PathBuf,
    #[serde(default, rename = "runtimeArgs")]
    #[allow(dead_code)]
    runtime_args: Vec<String>,
}

/// Everything the daemon runs with.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub hosts: Vec<String>,
    pub pidfile: PathBuf,
    pub log_level: String,
    pub tls: bool,
    pub tlsverify: bool,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    pub allow_insecure_tcp: bool,
    pub engine: EngineConfig,
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn find_shim() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join("berth-shim");
            if p.is_file() {
                return p;
            }
        }
    }
    find_in_path("berth-shim").unwrap_or_else(|| PathBuf::from("berth-shim"))
}

/// dockerd's check of a registry mirror: an http(s) URL without query, fragment or
/// credentials; returned with one trailing `/`.
fn validate_mirror(m: &str) -> Result<String> {
    let Some((scheme, rest)) = m.split_once("://") else {
        bail!("invalid mirror: {m:?} is not a valid URI");
    };
    if scheme != "http" && scheme != "https" {
        bail!("invalid mirror: unsupported scheme {scheme:?} in {m:?}");
    }
    if rest.contains('?') || rest.contains('#') {
        bail!("invalid mirror: query or fragment at end of the URI {m:?}");
    }
    if rest.split('/').next().unwrap_or("").contains('@') {
        bail!("invalid mirror: username/password not allowed in URI {m:?}");
    }
    if rest.trim_end_matches('/').is_empty() {
        bail!("invalid mirror: {m:?} is not a valid URI");
    }
    Ok(format!("{}/", m.trim_end_matches('/')))
}

/// berth's nftables table: `berth` for the default exec root, else one named after the
/// exec root, so daemons side by side never share (or flush) each other's rules.
fn firewall_table_for(exec_root: &Path) -> String {
    if exec_root == Path::new("/run/berth") {
        return "berth".to_string();
    }
    let digest = berth_core::Digest::of(exec_root.as_os_str().as_encoded_bytes());
    format!("berth_{}", &digest.hex()[..12])
}

impl DaemonConfig {
    pub fn load(flags: Flags) -> Result<Self> {
        let file_path = flags.config_file.clone().or_else(|| {
            Path::new(DEFAULT_CONFIG_FILE)
                .exists()
                .then(|| PathBuf::from(DEFAULT_CONFIG_FILE))
        });
        let file: FileConfig = match &file_path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading configuration file {}", p.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("invalid configuration file {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let data_root = flags
            .data_root
            .or(file.data_root)
            .unwrap_or_else(|| PathBuf::from("/var/lib/berth"));
        let exec_root = flags
            .exec_root
            .or(file.exec_root)
            .unwrap_or_else(|| PathBuf::from("/run/berth"));
        let hosts = if !flags.hosts.is_empty() {
            flags.hosts
        } else {
            file.hosts
                .unwrap_or_else(|| vec![DEFAULT_SOCKET.to_string()])
        };
        let hosts = hosts
            .into_iter()
            .map(|h| {
                if h.starts_with('/') {
                    format!("unix://{h}")
                } else {
                    h
                }
            })
            .collect();
        let mut engine = EngineConfig::new(data_root, exec_root.clone());
        engine.storage_driver = flags
            .storage_driver
            .or(file.storage_driver)
            .unwrap_or_default();
        engine.default_runtime = flags
            .default_runtime
            .or(file.default_runtime)
            .unwrap_or_default();
        engine.runtimes = file
            .runtimes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.path))
            .collect();
        engine.shim_path = flags.shim_path.unwrap_or_else(find_shim);
        engine.cgroup_parent = flags
            .cgroup_parent
            .or(file.cgroup_parent)
            .unwrap_or_else(|| "berth".to_string());
        engine.log_driver = flags
            .log_driver
            .or(file.log_driver)
            .unwrap_or_else(|| "json-file".to_string());
        let mut log_opts = file.log_opts.unwrap_or_default();
        for o in flags.log_opts {
            let (k, v) = o
                .split_once('=')
                .with_context(|| format!("invalid --log-opt {o:?}: expected key=value"))?;
            log_opts.insert(k.to_string(), v.to_string());
        }
        engine.log_opts = log_opts;
        engine.bridge = flags
            .bridge
            .or(file.bridge)
            .unwrap_or_else(|| "berth0".to_string());
        engine.bip = flags.bip.or(file.bip).unwrap_or_default();
        engine.default_address_pools = file
            .default_address_pools
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.base, p.size))
            .collect();
        engine.firewall_table = firewall_table_for(&exec_root);
        engine.init_path = flags.init_path.or(file.init_path).or_else(|| {
            ["tini-static", "docker-init", "tini"]
                .iter()
                .find_map(|n| find_in_path(n))
        });
        if !matches!(engine.log_driver.as_str(), "json-file" | "local" | "none") {
            bail!(
                "unsupported log driver {:?} (supported: json-file, local, none)",
                engine.log_driver
            );
        }
        engine.insecure_registries = if flags.insecure_registries.is_empty() {
            file.insecure_registries.unwrap_or_default()
        } else {
            flags.insecure_registries
        };
        for r in &engine.insecure_registries {
            if r.contains("://") {
                bail!("insecure registry {r} should not contain '://'");
            }
        }
        let mirrors = if flags.registry_mirrors.is_empty() {
            file.registry_mirrors.unwrap_or_default()
        } else {
            flags.registry_mirrors
        };
        engine.registry_mirrors = mirrors
            .iter()
            .map(|m| validate_mirror(m))
            .collect::<Result<_>>()?;
        let mut per_registry = file.berth_registry_mirrors.unwrap_or_default();
        if !flags.registry_mirrors_for.is_empty() {
            per_registry.clear();
            for entry in &flags.registry_mirrors_for {
                let (registry, url) = entry.split_once('=').with_context(|| {
                    format!("invalid --registry-mirror-for {entry:?}: expected REGISTRY=URL")
                })?;
                per_registry
                    .entry(registry.to_string())
                    .or_default()
                    .push(url.to_string());
            }
        }
        for (registry, urls) in per_registry {
            if registry.is_empty() || registry.contains("://") || registry.contains('/') {
                bail!(
                    "invalid registry {registry:?} in berth-registry-mirrors: expected host[:port]"
                );
            }
            let urls = urls
                .iter()
                .map(|m| validate_mirror(m))
                .collect::<Result<_>>()?;
            engine.per_registry_mirrors.insert(registry, urls);
        }
        if let Some(dir) = flags.registry_certs_dir.or(file.berth_registry_certs_dir) {
            engine.certs_dir = dir;
        }
        let _ = (file.live_restore, file.debug, file.storage_opts);
        let log_level = flags
            .log_level
            .or(file.log_level)
            .unwrap_or_else(|| "info".to_string());
        let tlsverify = flags.tlsverify || file.tlsverify.unwrap_or(false);
        Ok(Self {
            hosts,
            pidfile: flags
                .pidfile
                .or(file.pidfile)
                .unwrap_or_else(|| exec_root.join("berthd.pid")),
            log_level,
            tls: flags.tls || file.tls.unwrap_or(false) || tlsverify,
            tlsverify,
            tlscacert: flags.tlscacert.or(file.tlscacert),
            tlscert: flags.tlscert.or(file.tlscert),
            tlskey: flags.tlskey.or(file.tlskey),
            allow_insecure_tcp: flags.allow_insecure_tcp,
            engine,
        })
    }

    pub fn tls_settings(&self) -> Result<Option<berth_api::server::TlsSettings>> {
        if !self.tls {
            return Ok(None);
        }
        let (Some(cert), Some(key)) = (&self.tlscert, &self.tlskey) else {
            bail!("--tls and --tlsverify need --tlscert and --tlskey");
        };
        let client_ca =
            if self.tlsverify {
                Some(self.tlscacert.clone().context(
                    "--tlsverify needs --tlscacert (the CA that signs client certificates)",
                )?)
            } else {
                None
            };
        Ok(Some(berth_api::server::TlsSettings {
            cert: cert.clone(),
            key: key.clone(),
            client_ca,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut v = vec!["berthd"];
        v.extend_from_slice(args);
        Flags::parse_from(v)
    }

    #[test]
    fn defaults_are_berths_paths() {
        let c = DaemonConfig::load(flags(&["--config-file", "/dev/null/none"])).err();
        assert!(c.is_some(), "a missing explicit config file is an error");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(&f, "{}").unwrap();
        let c = DaemonConfig::load(flags(&["--config-file", f.to_str().unwrap()])).unwrap();
        assert_eq!(c.hosts, vec![DEFAULT_SOCKET.to_string()]);
        assert_eq!(c.engine.data_root, PathBuf::from("/var/lib/berth"));
        assert_eq!(c.pidfile, PathBuf::from("/run/berth/berthd.pid"));
    }

    #[test]
    fn flags_override_the_file_and_unknown_keys_fail() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(
            &f,
            r#"{"data-root":"/srv/berth","log-opts":{"max-size":"5m"}}"#,
        )
        .unwrap();
        let c = DaemonConfig::load(flags(&[
            "--config-file",
            f.to_str().unwrap(),
            "--data-root",
            "/tmp/x",
            "--log-opt",
            "max-file=2",
        ]))
        .unwrap();
        assert_eq!(c.engine.data_root, PathBuf::from("/tmp/x"));
        assert_eq!(c.engine.log_opts.get("max-size").unwrap(), "5m");
        assert_eq!(c.engine.log_opts.get("max-file").unwrap(), "2");
        std::fs::write(&f, r#"{"colour":"blue"}"#).unwrap();
        assert!(DaemonConfig::load(flags(&["--config-file", f.to_str().unwrap()])).is_err());
    }

    #[test]
    fn registry_settings_come_from_the_file_and_flags_replace_them() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(
            &f,
            r#"{"insecure-registries":["10.0.0.0/8","reg.local:5000"],
                "registry-mirrors":["https://mirror.local"],
                "berth-registry-mirrors":{"reg.local:5000":["http://cache.local:5001/"]},
                "berth-registry-certs-dir":"/srv/certs.d"}"#,
        )
        .unwrap();
        let path = f.to_str().unwrap();
        let c = DaemonConfig::load(flags(&["--config-file", path])).unwrap();
        assert_eq!(
            c.engine.insecure_registries,
            vec!["10.0.0.0/8".to_string(), "reg.local:5000".to_string()]
        );
        assert_eq!(c.engine.registry_mirrors, vec!["https://mirror.local/"]);
        assert_eq!(
            c.engine.per_registry_mirrors["reg.local:5000"],
            vec!["http://cache.local:5001/"]
        );
        assert_eq!(c.engine.certs_dir, PathBuf::from("/srv/certs.d"));
        let c = DaemonConfig::load(flags(&[
            "--config-file",
            path,
            "--insecure-registry",
            "192.0.2.7:5000",
            "--registry-mirror-for",
            "docker.io=http://127.0.0.1:5001",
        ]))
        .unwrap();
        assert_eq!(c.engine.insecure_registries, vec!["192.0.2.7:5000"]);
        assert_eq!(c.engine.per_registry_mirrors.len(), 1);
        assert_eq!(
            c.engine.per_registry_mirrors["docker.io"],
            vec!["http://127.0.0.1:5001/"]
        );
    }

    #[test]
    fn bad_mirrors_and_insecure_registries_are_refused_as_dockerd_does() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(&f, "{}").unwrap();
        let path = f.to_str().unwrap();
        let err = |args: &[&str]| {
            let mut a = vec!["--config-file", path];
            a.extend_from_slice(args);
            DaemonConfig::load(flags(&a)).unwrap_err().to_string()
        };
        assert_eq!(
            err(&["--registry-mirror", "ftp://m"]),
            r#"invalid mirror: unsupported scheme "ftp" in "ftp://m""#
        );
        assert!(err(&["--registry-mirror", "https://u:p@m"]).contains("username/password"));
        assert_eq!(
            err(&["--insecure-registry", "http://reg:5000"]),
            "insecure registry http://reg:5000 should not contain '://'"
        );
        assert!(err(&["--registry-mirror-for", "reg:5000"]).contains("REGISTRY=URL"));
    }

    #[test]
    fn tlsverify_needs_a_ca() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(&f, "{}").unwrap();
        let c = DaemonConfig::load(flags(&[
            "--config-file",
            f.to_str().unwrap(),
            "--tlsverify",
            "--tlscert",
            "c",
            "--tlskey",
            "k",
        ]))
        .unwrap();
        assert!(c.tls_settings().is_err());
    }
}
