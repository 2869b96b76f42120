//! `docker pull`: an image from a registry into the image store.
//!
//! A tag or digest is first resolved to its manifest (one or two requests): when the
//! image it names is already here, only the references are recorded ("Image is up to
//! date", no blob is fetched). Otherwise the distribution client downloads, verifies
//! and unpacks the missing layers in one pipeline, and the image is recorded once every
//! layer is in storage, so a failed or interrupted pull never leaves an image behind.
//! A bare repository name pulls every tag, as dockerd does for `fromImage` without a
//! `tag`. The lines follow dockerd's: `latest: Pulling from library/busybox`, the layer
//! lines, `Digest: sha256:...`, `Status: Downloaded newer image for busybox:latest`.

use super::progress::{registry_sink, ImageProgress, ProgressSink, Transfer};
use crate::Engine;
use berth_core::event::EventType;
use berth_core::image::Image;
use berth_core::reference::Reference;
use berth_core::{Digest, Error, ErrorKind, Result};
use berth_registry::{Credentials, Platform, RegistryError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What `POST /images/create?fromImage=` asks for.
#[derive(Debug, Clone, Default)]
pub struct PullImage {
    /// `NAME[:TAG|@DIGEST]`; a name alone pulls every tag of the repository.
    pub reference: String,
    /// `--platform` (`linux/arm64`); empty for the host's, without a check of the result.
    pub platform: String,
    pub credentials: Credentials,
}

/// A pull's failure as dockerd reports it: a missing manifest or repository, or denied
/// access, is "not found" (404); every other registry failure (unreachable host, bad
/// credentials, corrupt blob) is an unknown error (500), never an auth challenge the
/// client would answer with a login prompt.
fn pull_error(e: RegistryError) -> Error {
    let kind = berth_core::error::HasKind::kind(&e);
    let err: Error = e.into();
    match kind {
        ErrorKind::NotFound => err,
        _ => Error::new(ErrorKind::Internal, err.message()),
    }
}

impl Engine {
    /// Pulls `req.reference`, reporting progress to `progress`.
    pub async fn pull_image(
        self: &Arc<Self>,
        req: PullImage,
        progress: ProgressSink,
    ) -> Result<()> {
        let reference = Reference::parse(&req.reference)?;
        if reference.familiar_repository() == "scratch" {
            return Err(Error::forbidden("'scratch' is a reserved name"));
        }
        let platform = if req.platform.is_empty() {
            None
        } else {
            Some(
                req.platform
                    .parse::<Platform>()
                    .map_err(|e| Error::invalid(e.to_string()))?,
            )
        };
        let creds = Some(&req.credentials).filter(|c| !c.is_empty());
        let changed = if reference.tag().is_none() && reference.digest().is_none() {
            let tags = self
                .registry
                .list_tags(&reference, creds)
                .await
                .map_err(pull_error)?;
            let mut changed = false;
            for tag in tags {
                let one = reference.with_tag(&tag);
                changed |= self
                    .pull_one(&one, platform.as_ref(), creds, &progress)
                    .await?;
            }
            changed
        } else {
            self.pull_one(&reference, platform.as_ref(), creds, &progress)
                .await?
        };
        let shown = reference.familiar();
        progress(ImageProgress::message(if changed {
            format!("Status: Downloaded newer image for {shown}")
        } else {
            format!("Status: Image is up to date for {shown}")
        }));
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), shown.clone());
        self.events.publish(EventType::Image, "pull", &shown, attrs);
        Ok(())
    }

    /// Pulls one tag or digest; returns whether its reference now names another image
    /// than before (Docker's "Downloaded newer image").
    async fn pull_one(
        self: &Arc<Self>,
        reference: &Reference,
        platform: Option<&Platform>,
        creds: Option<&Credentials>,
        progress: &ProgressSink,
    ) -> Result<bool> {
        let label = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => berth_core::reference::DEFAULT_TAG.to_string(),
        };
        let pulling_from = || ImageProgress::Message {
            id: label.clone(),
            text: format!("Pulling from {}", reference.path()),
        };
        // A digest reference known here names its image for good: no request needed.
        if let (Some(digest), None) = (reference.digest(), platform) {
            let known = self
                .images
                .target(&reference.to_string())
                .and_then(|id| self.present_image(&id));
            if known.is_some() {
                progress(pulling_from());
                progress(ImageProgress::message(format!("Digest: {digest}")));
                return Ok(false);
            }
        }
        let wanted = platform.cloned().unwrap_or_else(Platform::host);
        let resolved = match self.registry.resolve(reference, &wanted, creds).await {
            Ok(r) => r,
            Err(e @ RegistryError::NoMatchingPlatform { .. }) => {
                // dockerd finds this out after announcing the pull.
                progress(pulling_from());
                return Err(pull_error(e));
            }
            Err(e) => return Err(pull_error(e)),
        };
        progress(pulling_from());
        // Layers applied but not yet part of an image must not be collected.
        let _gc = self.layer_gc.read().await;
        let (image, manifest_digest) = match self.present_image(&resolved.config_digest) {
            Some(img) => (img, resolved.digest),
            None => {
                let sink = registry_sink(progress, Transfer::Pull);
                let pulled = self
                    .registry
                    .pull(self.storage.clone(), reference, &wanted, creds, &sink)
                    .await
                    .map_err(pull_error)?;
                let img = self.add_image(&pulled.config)?;
                (img, pulled.manifest_digest)
            }
        };
        let by_digest = reference.with_digest(manifest_digest.clone());
        let named = if reference.digest().is_some() {
            &by_digest
        } else {
            reference
        };
        let before = self.images.target(&named.to_string());
        if reference.tag().is_some() {
            self.record_ref(reference, &image.id)?;
        }
        self.record_ref(&by_digest, &image.id)?;
        progress(ImageProgress::message(format!("Digest: {manifest_digest}")));
        if let Some(p) = platform {
            let actual = Platform::new(
                &image.config.os,
                &image.config.architecture,
                &image.config.variant,
            );
            if !p.matches(&actual) {
                progress(ImageProgress::message(format!(
                    "WARNING: image with reference {reference} was found but does not match the specified platform: wanted {p}, actual: {actual}"
                )));
            }
        }
        Ok(before.as_ref() != Some(&image.id))
    }

    /// The image with this id, when it and all its layers are here.
    fn present_image(&self, id: &Digest) -> Option<Image> {
        let img = self.images.by_id(id)?;
        super::chain_ids(&img.config)
            .iter()
            .all(|c| self.storage.layer(c).is_some())
            .then_some(img)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_errors_keep_not_found_and_make_the_rest_unknown() {
        let e = pull_error(RegistryError::NoMatchingPlatform {
            platform: "linux/s390x".into(),
        });
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.message(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        let e = pull_error(RegistryError::Transport {
            method: "Get".into(),
            url: "https://10.0.0.1:5000/v2/".into(),
            reason: "dial tcp 10.0.0.1:5000: connect: connection refused".into(),
        });
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(
            e.message(),
            "Get \"https://10.0.0.1:5000/v2/\": dial tcp 10.0.0.1:5000: connect: connection refused"
        );
        assert_eq!(
            pull_error(RegistryError::NoBasicCredentials).kind(),
            ErrorKind::Internal
        );
    }
}
