//! `docker import`: a rootfs tarball becomes a one-layer image.

use crate::Engine;
use berth_core::event::EventType;
use berth_core::image::{History, ImageConfig, RootFs};
use berth_core::reference::Reference;
use berth_core::{Error, Result};
use chrono::Utc;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

/// What `import` needs besides the tarball.
#[derive(Debug, Clone, Default)]
pub struct ImportImage {
    /// `repo[:tag]`, empty for an untagged image.
    pub reference: String,
    /// `-c` instructions.
    pub changes: Vec<String>,
    /// `-m` message; Docker records "Imported from <source>" when empty.
    pub message: String,
    /// Where the tarball came from (`-` for a stream), for the history comment.
    pub source: String,
    pub platform: String,
}

impl Engine {
    /// Imports a rootfs tarball (plain, gzip or zstd) as a new image; returns its id.
    pub async fn import_image(
        self: &Arc<Self>,
        req: ImportImage,
        tar: impl Read + Send + 'static,
    ) -> Result<String> {
        let reference = if req.reference.is_empty() {
            None
        } else {
            Some(Reference::parse_with_default_tag(&req.reference)?)
        };
        if let Some(r) = &reference {
            if r.digest().is_some() {
                return Err(Error::invalid("cannot import with a digest reference"));
            }
        }
        let mut config = ImageConfig {
            architecture: host_arch().to_string(),
            os: "linux".to_string(),
            created: Some(Utc::now()),
            ..Default::default()
        };
        super::change::apply(&mut config.config, &req.changes)?;
        let _gc = self.layer_gc.read().await;
        let storage = self.storage.clone();
        let layer = Self::blocking(move || Ok(berth_storage::import::import_tar(&storage, tar)?))
            .await
            .map_err(|e| e.context("importing tarball"))?;
        config.rootfs = RootFs {
            typ: "layers".to_string(),
            diff_ids: vec![layer.diff_id.clone()],
        };
        let comment = if req.message.is_empty() {
            format!(
                "Imported from {}",
                if req.source.is_empty() {
                    "-"
                } else {
                    &req.source
                }
            )
        } else {
            req.message.clone()
        };
        config.history = vec![History {
            created: config.created,
            comment,
            ..Default::default()
        }];
        let bytes = serde_json::to_vec(&config).map_err(|e| Error::internal(e.to_string()))?;
        let img = self.add_image(&bytes)?;
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "name".to_string(),
            reference
                .as_ref()
                .map(|r| r.familiar())
                .unwrap_or_else(|| img.id.to_string()),
        );
        self.events
            .publish(EventType::Image, "import", &img.id.to_string(), attrs);
        if let Some(r) = &reference {
            self.set_tag(r, &img.id)?;
        }
        Ok(img.id.to_string())
    }
}

/// The host's architecture in Go/OCI terms.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}
