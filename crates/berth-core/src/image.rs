//! Images as the engine keeps them: the image configuration document (Docker's and OCI's
//! on-disk JSON format, whose digest is the image id) and the record around it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use crate::container::HealthConfig;

/// The `config` object inside an image configuration (field names as Docker writes them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    #[serde(rename = "Hostname", default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(
        rename = "Domainname",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub domainname: String,
    #[serde(rename = "User", default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(rename = "AttachStdin", default, skip_serializing_if = "is_false")]
    pub attach_stdin: bool,
    #[serde(rename = "AttachStdout", default, skip_serializing_if = "is_false")]
    pub attach_stdout: bool,
    #[serde(rename = "AttachStderr", default, skip_serializing_if = "is_false")]
    pub attach_stderr: bool,
    #[serde(
        rename = "ExposedPorts",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_map"
    )]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(rename = "Tty", default, skip_serializing_if = "is_false")]
    pub tty: bool,
    #[serde(rename = "OpenStdin", default, skip_serializing_if = "is_false")]
    pub open_stdin: bool,
    #[serde(rename = "StdinOnce", default, skip_serializing_if = "is_false")]
    pub stdin_once: bool,
    #[serde(rename = "Env", default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<ImageHealthcheck>,
    #[serde(rename = "ArgsEscaped", default, skip_serializing_if = "is_false")]
    pub args_escaped: bool,
    #[serde(rename = "Image", default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(
        rename = "Volumes",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "null_map"
    )]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "NetworkDisabled", default, skip_serializing_if = "is_false")]
    pub network_disabled: bool,
    #[serde(rename = "OnBuild", default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(rename = "Labels", default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    #[serde(rename = "Shell", default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn null_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, Empty>>, D::Error> {
    Option::<BTreeMap<String, Empty>>::deserialize(d)
}

/// `{}` in `ExposedPorts` and `Volumes`; any content is accepted and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Empty;

impl Serialize for Empty {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Empty)
    }
}

/// Health check as stored in an image config (durations in nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageHealthcheck {
    #[serde(rename = "Test", default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(rename = "Interval", default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(rename = "Timeout", default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(rename = "StartPeriod", default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(rename = "StartInterval", default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(rename = "Retries", default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl From<&ImageHealthcheck> for HealthConfig {
    fn from(h: &ImageHealthcheck) -> Self {
        HealthConfig {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            retries: h.retries,
            start_period: h.start_period,
            start_interval: h.start_interval,
        }
    }
}

impl From<&HealthConfig> for ImageHealthcheck {
    fn from(h: &HealthConfig) -> Self {
        ImageHealthcheck {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            retries: h.retries,
            start_period: h.start_period,
            start_interval: h.start_interval,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub typ: String,
    #[serde(default)]
    pub diff_ids: Vec<crate::Digest>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_layer: bool,
}

/// An image configuration document (`application/vnd.docker.container.image.v1+json` or
/// `application/vnd.oci.image.config.v1+json`). Unknown fields are kept so a parsed and
/// re-serialised config loses nothing, but ids always come from the original bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<RunConfig>,
    #[serde(default)]
    pub config: RunConfig,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Parent image id, set by local builds and commits.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One image as the engine keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Digest of the config bytes: the image id.
    pub id: crate::Digest,
    pub config: ImageConfig,
    /// Fully qualified tags (`docker.io/library/busybox:latest`).
    pub repo_tags: BTreeSet<String>,
    /// `repo@sha256:...` of the manifests it was pulled by or pushed as.
    pub repo_digests: BTreeSet<String>,
    /// Sum of the unpacked sizes of its layers, in bytes.
    pub size: i64,
    /// When it was stored here.
    pub loaded_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_keeps_unknown_fields() {
        let raw = r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"ExposedPorts":{"80/tcp":{}}},"rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]},"moby.buildkit.cache":"x"}"#;
        let cfg: ImageConfig = serde_json::from_str(raw).unwrap();
        assert_eq!(cfg.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert!(cfg
            .config
            .exposed_ports
            .as_ref()
            .unwrap()
            .contains_key("80/tcp"));
        let back = serde_json::to_value(&cfg).unwrap();
        assert_eq!(back["moby.buildkit.cache"], "x");
        assert_eq!(
            back["config"]["ExposedPorts"]["80/tcp"],
            serde_json::json!({})
        );
    }

    #[test]
    fn null_maps_are_accepted() {
        let cfg: RunConfig =
            serde_json::from_str(r#"{"Volumes":null,"ExposedPorts":null,"Env":null}"#).unwrap();
        assert!(cfg.volumes.is_none() && cfg.env.is_none());
    }
}
