//! [`EngineBuilder`]: `berth_builder::BuildBackend` over the engine's images, storage,
//! runtime and state database, for one build.

use crate::Engine;
use berth_builder::{
    BuildBackend, BuildError, BuiltImage, CancellationToken, OutputSender, RunRequest,
    WorkingContainer,
};
use berth_core::image::{Image, ImageConfig};
use berth_core::reference::Reference;
use berth_core::{Digest, Error, ErrorKind};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The storage key of a working container.
pub(crate) fn working_key(id: &str) -> String {
    format!("build-{id}")
}

/// Where a working container's `RUN` bundle and managed `/etc` files go.
pub(crate) fn bundle_dir(engine: &Engine, id: &str) -> PathBuf {
    engine.build_tmp().join(working_key(id))
}

fn built(img: Image) -> BuiltImage {
    BuiltImage {
        id: img.id.to_string(),
        config: img.config,
    }
}

/// What the engine remembers about a live working container.
#[derive(Debug, Default, Clone)]
pub(crate) struct WorkingState {
    /// Mount points the runtime had to create in the root (paths inside the container):
    /// they are removed again before the commit, as Docker's init layer keeps them out.
    pub created_mountpoints: Vec<PathBuf>,
}

/// The engine as one build sees it.
pub struct EngineBuilder {
    pub(crate) engine: Arc<Engine>,
    /// Working containers not yet removed, by id.
    pub(crate) live: Mutex<HashMap<String, WorkingState>>,
}

impl EngineBuilder {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            live: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, WorkingState>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes whatever working container is still there (the builder removes each one it
    /// makes; this is the net under it).
    pub async fn cleanup(&self) {
        let left: Vec<String> = self.live().keys().cloned().collect();
        for id in left {
            let wc = WorkingContainer {
                id: id.clone(),
                rootfs: PathBuf::new(),
                image: None,
            };
            if let Err(e) = self.remove_working(&wc).await {
                tracing::warn!(container = %id, error = %e, "removing a build container");
            }
        }
    }
}

impl BuildBackend for EngineBuilder {
    fn image(&self, name: &str) -> berth_builder::Result<Option<BuiltImage>> {
        match self.engine.image(name) {
            Ok(img) => Ok(Some(built(img))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn pull(&self, name: &str, _platform: &str) -> berth_builder::Result<BuiltImage> {
        let shown = Reference::parse_with_default_tag(name)
            .map(|r| r.familiar_repository())
            .unwrap_or_else(|_| name.to_string());
        Err(BuildError::Backend(Error::not_implemented(format!(
            "pull access denied for {shown}, repository does not exist or may require 'docker login': this berth daemon has no registry client yet (make the image locally with `berth import` or `berth load`)"
        ))))
    }

    async fn create_working(&self, image: Option<&str>) -> berth_builder::Result<WorkingContainer> {
        let parent = match image {
            Some(id) => {
                let img = self.engine.image(id)?;
                crate::images::chain_ids(&img.config).last().cloned()
            }
            None => None,
        };
        let id = berth_core::id::new_id();
        let key = working_key(&id);
        let storage = self.engine.storage.clone();
        self.live().insert(id.clone(), WorkingState::default());
        let made = Engine::blocking(move || {
            storage.create_rw(&key, parent.as_ref())?;
            match storage.mount_rw(&key) {
                Ok(p) => Ok(p),
                Err(e) => {
                    let _ = storage.remove_rw(&key);
                    Err(e.into())
                }
            }
        })
        .await;
        match made {
            Ok(rootfs) => Ok(WorkingContainer {
                id,
                rootfs,
                image: image.map(str::to_string),
            }),
            Err(e) => {
                self.live().remove(&id);
                Err(e.into())
            }
        }
    }

    async fn run(
        &self,
        wc: &WorkingContainer,
        req: RunRequest,
        output: OutputSender,
        cancel: CancellationToken,
    ) -> berth_builder::Result<i64> {
        self.run_in(wc, req, output, cancel).await
    }

    async fn commit(
        &self,
        wc: &WorkingContainer,
        config: ImageConfig,
    ) -> berth_builder::Result<BuiltImage> {
        self.commit_working(wc, config).await
    }

    async fn remove_working(&self, wc: &WorkingContainer) -> berth_builder::Result<()> {
        let key = working_key(&wc.id);
        let storage = self.engine.storage.clone();
        let bundle = bundle_dir(&self.engine, &wc.id);
        Engine::blocking(move || {
            let _ = std::fs::remove_dir_all(&bundle);
            if storage.rw_exists(&key) {
                storage.remove_rw(&key)?;
            }
            Ok(())
        })
        .await?;
        self.live().remove(&wc.id);
        Ok(())
    }

    fn store_image(&self, config: ImageConfig) -> berth_builder::Result<BuiltImage> {
        let bytes = serde_json::to_vec(&config).map_err(|e| Error::internal(e.to_string()))?;
        Ok(built(self.engine.add_image(&bytes)?))
    }

    fn tag(&self, image_id: &str, reference: &str) -> berth_builder::Result<()> {
        let r = Reference::parse_with_default_tag(reference)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let id: Digest = image_id
            .parse()
            .map_err(|e: berth_core::digest::DigestError| Error::invalid(e.to_string()))?;
        self.engine.set_tag(&r, &id)?;
        Ok(())
    }

    fn cache_get(&self, parent: &str, key: &str) -> berth_builder::Result<Option<BuiltImage>> {
        let Some(id) = self.engine.db.build_cache_get(parent, key)? else {
            return Ok(None);
        };
        let found = id
            .parse::<Digest>()
            .ok()
            .and_then(|d| self.engine.images.by_id(&d));
        match found {
            Some(img) => Ok(Some(built(img))),
            None => {
                // The image was removed since: forget the entry.
                self.engine.db.build_cache_delete(parent, key)?;
                Ok(None)
            }
        }
    }

    fn cache_put(&self, parent: &str, key: &str, image_id: &str) -> berth_builder::Result<()> {
        Ok(self.engine.db.build_cache_put(parent, key, image_id)?)
    }
}
