//! berth's services: the engine behind the API.
//!
//! [`Engine`] composes the state database ([`db`]), the storage (layers, snapshots), the OCI
//! runtime and the per-container shims into services, one module per resource:
//! [`containers`] (lifecycle, attach, logs, exec), [`images`] (store, import, load, save,
//! tag, remove), [`build`] (Dockerfile builds), [`events`] and [`system`]. Services take
//! domain commands and return domain types from `berth-core`; they never see HTTP, Docker's
//! JSON, or API versions.

pub mod build;
pub mod config;
pub mod containers;
pub mod db;
pub mod events;
pub mod fsutil;
pub mod images;
pub mod networks;
pub mod system;
pub mod volumes;

pub use config::EngineConfig;

use berth_core::{Error, Result};
use std::sync::Arc;

/// Writes an archive (save, export, `cp` out) on a blocking thread.
pub type ArchiveJob = Box<dyn FnOnce(&mut dyn std::io::Write) -> Result<()> + Send>;

/// The composition of all services. Shared as `Arc<Engine>`; background tasks (container
/// monitors, restart timers) hold clones.
pub struct Engine {
    pub(crate) cfg: EngineConfig,
    pub(crate) db: db::Db,
    pub(crate) storage: Arc<berth_storage::Storage>,
    pub(crate) events: events::Events,
    pub(crate) images: images::ImageIndex,
    pub(crate) containers: containers::ContainerIndex,
    pub(crate) volumes: volumes::VolumeIndex,
    pub(crate) networks: networks::NetworkIndex,
    pub(crate) net: networks::NetState,
    pub(crate) execs: containers::exec::ExecIndex,
    pub(crate) runtimes: config::Runtimes,
    /// Held for reading while layers are applied but not yet part of an image, and for
    /// writing while unused layers are collected.
    pub(crate) layer_gc: tokio::sync::RwLock<()>,
    /// Compiled seccomp programs (base64 BPF) by digest of the filter they come from.
    pub(crate) seccomp_bpf:
        std::sync::Mutex<std::collections::HashMap<berth_core::Digest, Arc<String>>>,
    pub(crate) started_at: chrono::DateTime<chrono::Utc>,
}

impl Engine {
    /// Opens the data root, loads state and reconciles it with what still runs (containers
    /// survive daemon restarts: their shims are found again, or their exits recorded).
    pub async fn open(cfg: EngineConfig) -> Result<Arc<Self>> {
        for dir in [&cfg.data_root, &cfg.exec_root] {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::from_display(format!("creating {}", dir.display()), e))?;
        }
        std::fs::create_dir_all(cfg.data_root.join("containers"))?;
        std::fs::create_dir_all(cfg.exec_root.join("containers"))?;
        std::fs::create_dir_all(cfg.exec_root.join("s"))?;
        if cfg.exec_root.as_os_str().len() > containers::MAX_EXEC_ROOT_LEN {
            return Err(Error::invalid(format!(
                "exec root {} is too long: its sockets would not fit a unix socket path (at most {} bytes)",
                cfg.exec_root.display(),
                containers::MAX_EXEC_ROOT_LEN
            )));
        }
        let db = db::Db::open(&cfg.data_root.join("berth.db"))?;
        let choice = match cfg.storage_driver.as_str() {
            "" => berth_storage::DriverChoice::Auto,
            "overlay2" | "overlay" => berth_storage::DriverChoice::Overlay,
            "vfs" => berth_storage::DriverChoice::Vfs,
            other => {
                return Err(Error::invalid(format!(
                    "unsupported storage driver: {other} (supported: overlay2, vfs)"
                )))
            }
        };
        // Storage keeps its own tree (blobs, layers, snapshots) beside the engine's.
        let root = cfg.data_root.join("storage");
        let storage =
            tokio::task::spawn_blocking(move || berth_storage::Storage::open(&root, choice))
                .await
                .map_err(|e| Error::internal(e.to_string()))??;
        let runtimes = config::Runtimes::resolve(&cfg)?;
        let engine = Arc::new(Self {
            images: images::ImageIndex::load(&db, &storage)?,
            containers: containers::ContainerIndex::default(),
            volumes: volumes::VolumeIndex::load(&db)?,
            networks: networks::NetworkIndex::load(&db)?,
            net: networks::NetState::new(&cfg)?,
            execs: containers::exec::ExecIndex::default(),
            storage: Arc::new(storage),
            events: events::Events::new(),
            runtimes,
            layer_gc: tokio::sync::RwLock::new(()),
            seccomp_bpf: std::sync::Mutex::new(std::collections::HashMap::new()),
            db,
            cfg,
            started_at: chrono::Utc::now(),
        });
        engine.init_networks().await?;
        engine.restore().await?;
        Ok(engine)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn events(&self) -> &events::Events {
        &self.events
    }

    pub fn storage_driver(&self) -> &str {
        self.storage.driver_name()
    }

    /// Runs blocking work (disk, mounts, processes) off the async workers.
    pub(crate) async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::internal(format!("background task failed: {e}")))?
    }
}
