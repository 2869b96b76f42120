//! Engine settings (from berthd's flags and daemon.json) and the resolved OCI runtimes.

use berth_core::{Error, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// `""` (probe), `overlay2` or `vfs`.
    pub storage_driver: String,
    /// Extra runtimes by name (daemon.json `runtimes`); `runc` and `crun` are always known
    /// when installed.
    pub runtimes: BTreeMap<String, PathBuf>,
    /// `""` picks crun where the host's cgroups allow it, else runc.
    pub default_runtime: String,
    /// The `berth-shim` binary.
    pub shim_path: PathBuf,
    /// Parent of every container cgroup (`/<parent>/<id>`).
    pub cgroup_parent: String,
    /// Where the host's cgroups are mounted.
    pub cgroup_root: PathBuf,
    pub log_driver: String,
    pub log_opts: BTreeMap<String, String>,
    /// Init binary bind-mounted for `--init`.
    pub init_path: Option<PathBuf>,
    /// Host resolv.conf copied into containers.
    pub resolv_conf: PathBuf,
    /// The default bridge's interface (`--bridge`); `none` disables the default bridge.
    pub bridge: String,
    /// The default bridge's address and prefix (`--bip`), else the first free /16.
    pub bip: String,
    /// berth's nftables table (one per daemon, so daemons side by side never collide).
    pub firewall_table: String,
    /// Where networks without `--subnet` take theirs from (daemon.json
    /// `default-address-pools`: base CIDR and subnet size); Docker's pools when empty.
    pub default_address_pools: Vec<(String, u8)>,
    /// `insecure-registries`: hosts (`host[:port]`) and CIDRs reached over plain HTTP or
    /// unverified TLS. Loopback registries always are.
    pub insecure_registries: Vec<String>,
    /// `registry-mirrors`: tried in order before Docker Hub.
    pub registry_mirrors: Vec<String>,
    /// berth's `berth-registry-mirrors`: mirrors for any registry, by its domain
    /// (`"registry.example.com:5000": ["https://mirror.local"]`).
    pub per_registry_mirrors: BTreeMap<String, Vec<String>>,
    /// Per-registry CA and client certificates (`<dir>/HOST:PORT/ca.crt`, `client.cert`,
    /// `client.key`), as Docker's `/etc/docker/certs.d`.
    pub certs_dir: PathBuf,
}

impl EngineConfig {
    pub fn new(data_root: PathBuf, exec_root: PathBuf) -> Self {
        Self {
            data_root,
            exec_root,
            storage_driver: String::new(),
            runtimes: BTreeMap::new(),
            default_runtime: String::new(),
            shim_path: PathBuf::from("berth-shim"),
            cgroup_parent: "berth".to_string(),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            log_driver: "json-file".to_string(),
            log_opts: BTreeMap::new(),
            init_path: None,
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            bridge: "berth0".to_string(),
            bip: String::new(),
            firewall_table: "berth".to_string(),
            default_address_pools: Vec::new(),
            insecure_registries: Vec::new(),
            registry_mirrors: Vec::new(),
            per_registry_mirrors: BTreeMap::new(),
            certs_dir: PathBuf::from(berth_registry::DEFAULT_CERTS_DIR),
        }
    }
}

/// The OCI runtimes this daemon can use.
pub struct Runtimes {
    by_name: BTreeMap<String, berth_runtime::oci::Runtime>,
    default: String,
}

impl Runtimes {
    pub fn resolve(cfg: &EngineConfig) -> Result<Self> {
        let state_root = cfg.exec_root.join("runtime");
        let mut by_name = BTreeMap::new();
        for name in ["runc", "crun"] {
            if let Ok(mut r) = berth_runtime::oci::Runtime::resolve(name, state_root.join(name)) {
                if name == "crun" {
                    // crun 1.8 refuses hybrid hosts whose cgroup2 mount holds controllers;
                    // the shim hides that mount from it (see berth_shim::launch::hide_cgroup2).
                    if let Some(mount) = berth_runtime::oci::crun_blocking_mount_for_host() {
                        r.hide_cgroup2 = Some((mount, cfg.shim_path.clone()));
                    }
                }
                by_name.insert(name.to_string(), r);
            }
        }
        for (name, path) in &cfg.runtimes {
            let r = berth_runtime::oci::Runtime::resolve(
                &path.display().to_string(),
                state_root.join(name),
            )
            .map_err(|e| Error::invalid(format!("runtime {name}: {e}")))?;
            by_name.insert(
                name.clone(),
                berth_runtime::oci::Runtime {
                    name: name.clone(),
                    ..r
                },
            );
        }
        let default = if cfg.default_runtime.is_empty() {
            berth_runtime::oci::default_runtime_for_host().to_string()
        } else {
            cfg.default_runtime.clone()
        };
        if !by_name.contains_key(&default) {
            return Err(Error::invalid(format!(
                "default runtime {default:?} is not installed or not configured (known: {})",
                by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(Self { by_name, default })
    }

    pub fn get(&self, name: &str) -> Result<&berth_runtime::oci::Runtime> {
        let name = if name.is_empty() { &self.default } else { name };
        self.by_name
            .get(name)
            .ok_or_else(|| Error::invalid(format!("unknown or invalid runtime name: {name}")))
    }

    pub fn default_name(&self) -> &str {
        &self.default
    }

    pub fn names(&self) -> impl Iterator<Item = (&str, &berth_runtime::oci::Runtime)> {
        self.by_name.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl EngineConfig {
    /// The distribution client's settings. Blob origins (for cross-repository mounts on
    /// push) are kept under the data root.
    pub fn registry_config(&self) -> berth_registry::RegistryConfig {
        berth_registry::RegistryConfig {
            insecure_registries: self.insecure_registries.clone(),
            mirrors: self.registry_mirrors.clone(),
            per_registry_mirrors: self.per_registry_mirrors.clone(),
            certs_dir: self.certs_dir.clone(),
            blob_sources_file: Some(self.data_root.join("registry").join("blob-sources.json")),
            ..berth_registry::RegistryConfig::default()
        }
    }
}
