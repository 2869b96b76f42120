//! Manifest documents: Docker v2 schema 2 and OCI image manifests, manifest lists and OCI
//! indexes, their media types, and how a fetched document is classified.
//!
//! [`Manifest::parse`] turns the bytes and `Content-Type` of a registry answer into an
//! [`ImageManifest`] or an [`ImageIndex`], and refuses schema 1 with Docker's deprecation
//! message. [`ImageManifest::to_bytes`] writes a manifest the way Docker does (3-space
//! indented JSON), so the digest is computed over exactly the bytes that are pushed.

use crate::error::{RegistryError, Result};
use crate::platform::Platform;
use berth_core::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// What a manifest GET accepts, as Docker 28 sends it.
pub const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*";

/// Docker's limit on a manifest's size.
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

/// A content descriptor. Field order is Docker's, so serialised manifests match its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub size: u64,
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, size: u64, digest: Digest) -> Self {
        Self {
            media_type: media_type.to_string(),
            size,
            digest,
            urls: Vec::new(),
            annotations: None,
            platform: None,
            artifact_type: None,
        }
    }
}

/// The platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformSpec {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

impl PlatformSpec {
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, &self.variant)
    }
}

impl From<&Platform> for PlatformSpec {
    fn from(p: &Platform) -> Self {
        Self {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            os_version: None,
            os_features: Vec::new(),
            variant: p.variant.clone(),
            features: Vec::new(),
        }
    }
}

/// A single-platform image manifest (Docker schema 2 or OCI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A fetched manifest document, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(ImageIndex),
}

/// Only what classification needs, read leniently.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

impl Manifest {
    /// Classifies and parses a manifest. `content_type` is the response's header (its
    /// parameters ignored); when it is generic the document's own `mediaType` or shape
    /// decides. `reference` only feeds error messages.
    pub fn parse(content_type: Option<&str>, bytes: &[u8], reference: &str) -> Result<Self> {
        let invalid = |reason: String| RegistryError::InvalidManifest {
            reference: reference.to_string(),
            reason,
        };
        let probe: Probe =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let header = content_type
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
            .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
        let media_type = header.or(probe.media_type.clone()).unwrap_or_else(|| {
            match (&probe.manifests, &probe.config) {
                (Some(_), _) => OCI_INDEX.to_string(),
                (None, Some(_)) => OCI_MANIFEST.to_string(),
                _ => String::new(),
            }
        });
        if probe.schema_version == Some(1)
            || media_type == DOCKER_SCHEMA1
            || media_type == DOCKER_SCHEMA1_SIGNED
        {
            return Err(RegistryError::Schema1 {
                reference: reference.to_string(),
            });
        }
        match media_type.as_str() {
            DOCKER_MANIFEST | OCI_MANIFEST => serde_json::from_slice(bytes)
                .map(|m| Manifest::Image(Box::new(m)))
                .map_err(|e| invalid(e.to_string())),
            DOCKER_MANIFEST_LIST | OCI_INDEX => serde_json::from_slice(bytes)
                .map(Manifest::Index)
                .map_err(|e| invalid(e.to_string())),
            other => Err(RegistryError::UnsupportedManifest {
                reference: reference.to_string(),
                media_type: other.to_string(),
            }),
        }
    }
}

impl ImageManifest {
    /// The media type this manifest is served with.
    pub fn media_type_or_oci(&self) -> &str {
        self.media_type.as_deref().unwrap_or(OCI_MANIFEST)
    }

    /// The JSON bytes Docker would push for this manifest (3-space indentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        to_docker_json(self)
    }
}

impl ImageIndex {
    pub fn media_type_or_oci(&self) -> &str {
        self.media_type.as_deref().unwrap_or(OCI_INDEX)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        to_docker_json(self)
    }

    /// The entry to pull for `platform`: attestation manifests and entries without a
    /// platform are skipped.
    pub fn select(&self, platform: &Platform) -> Option<&Descriptor> {
        let entries: Vec<(&Descriptor, Platform)> = self
            .manifests
            .iter()
            .filter(|d| {
                d.annotations
                    .as_ref()
                    .and_then(|a| a.get("vnd.docker.reference.type"))
                    .is_none_or(|t| t != "attestation-manifest")
            })
            .filter_map(|d| d.platform.as_ref().map(|p| (d, p.platform())))
            .collect();
        platform
            .select(entries.iter().map(|(_, p)| p))
            .map(|i| entries[i].0)
    }
}

fn to_docker_json(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    value
        .serialize(&mut ser)
        .expect("manifests always serialise");
    out
}

/// Whether a layer media type belongs to the OCI family (so the manifest must be OCI).
pub fn is_oci_layer(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.")
}

/// The OCI equivalent of a Docker layer media type (gzip either way).
pub fn oci_layer_type(media_type: &str) -> &str {
    match media_type {
        DOCKER_LAYER_GZIP | DOCKER_FOREIGN_LAYER => OCI_LAYER_GZIP,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn docker_and_oci_manifests_are_classified_by_header_or_body() {
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.into()),
            config: Descriptor::new(DOCKER_CONFIG, 10, d(1)),
            layers: vec![Descriptor::new(DOCKER_LAYER_GZIP, 20, d(2))],
            subject: None,
            annotations: None,
        };
        let bytes = m.to_bytes();
        assert_eq!(
            Manifest::parse(Some(DOCKER_MANIFEST), &bytes, "x").unwrap(),
            Manifest::Image(Box::new(m.clone()))
        );
        assert_eq!(
            Manifest::parse(Some("application/json"), &bytes, "x").unwrap(),
            Manifest::Image(Box::new(m))
        );
        let oci_without_media_type = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":1,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"layers":[]}"#;
        assert!(matches!(
            Manifest::parse(None, oci_without_media_type, "x").unwrap(),
            Manifest::Image(_)
        ));
    }

    #[test]
    fn manifests_serialise_in_dockers_field_order_and_indentation() {
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.into()),
            config: Descriptor::new(DOCKER_CONFIG, 10, d(1)),
            layers: vec![],
            subject: None,
            annotations: None,
        };
        let s = String::from_utf8(m.to_bytes()).unwrap();
        assert!(
            s.starts_with("{\n   \"schemaVersion\": 2,\n   \"mediaType\": "),
            "{s}"
        );
        let config_at = s.find("\"config\"").unwrap();
        let size_at = s[config_at..].find("\"size\"").unwrap();
        let digest_at = s[config_at..].find("\"digest\"").unwrap();
        assert!(size_at < digest_at);
    }

    #[test]
    fn schema1_is_refused_with_the_deprecation_notice() {
        let err = Manifest::parse(
            Some(DOCKER_SCHEMA1_SIGNED),
            br#"{"schemaVersion":1,"name":"x"}"#,
            "docker.io/library/old:1",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("[DEPRECATION NOTICE]"), "{err}");
        assert!(err.to_string().contains("docker.io/library/old:1"));
    }

    #[test]
    fn index_selection_skips_attestations() {
        let mut att = Descriptor::new(OCI_MANIFEST, 1, d(1));
        att.platform = Some(PlatformSpec::from(&Platform::new("unknown", "unknown", "")));
        att.annotations = Some(BTreeMap::from([(
            "vnd.docker.reference.type".to_string(),
            "attestation-manifest".to_string(),
        )]));
        let mut arm = Descriptor::new(OCI_MANIFEST, 1, d(2));
        arm.platform = Some(PlatformSpec::from(&Platform::new("linux", "arm64", "v8")));
        let mut amd = Descriptor::new(OCI_MANIFEST, 1, d(3));
        amd.platform = Some(PlatformSpec::from(&Platform::new("linux", "amd64", "")));
        let idx = ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: vec![att, arm, amd],
            annotations: None,
        };
        let pick = |p: &str| idx.select(&p.parse().unwrap()).map(|d| d.digest.clone());
        assert_eq!(pick("linux/amd64"), Some(d(3)));
        assert_eq!(pick("linux/arm64"), Some(d(2)));
        assert_eq!(pick("linux/ppc64le"), None);
    }
}
