//! `docker push`: the tags of a repository to its registry.
//!
//! The distribution client uploads only the blobs the registry lacks (reusing the
//! compressed blob a layer was pulled as, mounting it from another repository of the
//! same registry, or gzipping the layer on the fly), then the config and the manifest.
//! Lines follow dockerd's: `The push refers to repository [host/repo]`, per-layer
//! `Preparing`/`Waiting`/`Pushing`/`Pushed`/`Layer already exists`/`Mounted from x`, and
//! `TAG: digest: sha256:... size: N` with the same facts as an aux record. The pushed
//! manifest digest is recorded as a `RepoDigest` of the image, as dockerd does.

use super::progress::{registry_sink, ImageProgress, ProgressSink, Transfer};
use crate::Engine;
use berth_core::event::EventType;
use berth_core::reference::Reference;
use berth_core::{Digest, Error, Result};
use berth_registry::Credentials;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What `POST /images/{name}/push` asks for.
#[derive(Debug, Clone, Default)]
pub struct PushImage {
    /// `NAME[:TAG]`; a name alone pushes every tag of the repository (`push -a`).
    pub reference: String,
    pub credentials: Credentials,
}

impl Engine {
    /// Pushes `req.reference`, reporting progress to `progress`.
    pub async fn push_image(
        self: &Arc<Self>,
        req: PushImage,
        progress: ProgressSink,
    ) -> Result<()> {
        let reference = Reference::parse(&req.reference)?;
        progress(ImageProgress::message(format!(
            "The push refers to repository [{}]",
            reference.repository()
        )));
        let tags = self.images.tags_of(&reference.repository());
        if tags.is_empty() {
            return Err(Error::not_found(format!(
                "An image does not exist locally with the tag: {}",
                reference.familiar_repository()
            )));
        }
        if reference.digest().is_some() {
            return Err(Error::invalid("cannot push a digest reference"));
        }
        let todo: Vec<(Reference, Digest)> = match reference.tag() {
            Some(_) => {
                let id = self.images.target(&reference.to_string()).ok_or_else(|| {
                    Error::not_found(format!("tag does not exist: {}", reference.familiar()))
                })?;
                vec![(reference.clone(), id)]
            }
            None => tags,
        };
        let creds = Some(&req.credentials).filter(|c| !c.is_empty());
        for (tag_ref, id) in todo {
            self.push_tag(&tag_ref, &id, creds, &progress).await?;
        }
        Ok(())
    }

    async fn push_tag(
        self: &Arc<Self>,
        reference: &Reference,
        id: &Digest,
        creds: Option<&Credentials>,
        progress: &ProgressSink,
    ) -> Result<()> {
        let tag = reference
            .tag()
            .unwrap_or(berth_core::reference::DEFAULT_TAG)
            .to_string();
        // The layers must stay while they are read.
        let _gc = self.layer_gc.read().await;
        let img = self.images.by_id(id).ok_or_else(|| {
            Error::not_found(format!(
                "could not find image from tag {}",
                reference.familiar()
            ))
        })?;
        let config = self.image_config_bytes(id)?;
        let chains = super::chain_ids(&img.config);
        let sink = registry_sink(progress, Transfer::Push);
        let pushed = self
            .registry
            .push(
                self.storage.clone(),
                reference,
                &config,
                &chains,
                creds,
                &sink,
            )
            .await?;
        progress(ImageProgress::message(format!(
            "{tag}: digest: {} size: {}",
            pushed.manifest_digest, pushed.size
        )));
        self.record_ref(&reference.with_digest(pushed.manifest_digest.clone()), id)?;
        progress(ImageProgress::Pushed {
            tag,
            digest: pushed.manifest_digest,
            size: pushed.size,
        });
        let shown = reference.familiar();
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), shown.clone());
        self.events.publish(EventType::Image, "push", &shown, attrs);
        Ok(())
    }
}
