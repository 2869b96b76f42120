//! How Docker Compose names and labels what it creates, so that berth compose and Docker
//! Compose (v1 and v2) recognise each other's containers, networks and volumes.

use crate::load::Project;
use crate::model::Service;
use sha2::{Digest, Sha256};

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const VERSION: &str = "com.docker.compose.version";
pub const NETWORK: &str = "com.docker.compose.network";
pub const VOLUME: &str = "com.docker.compose.volume";
pub const IMAGE: &str = "com.docker.compose.image";
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
pub const REPLACE: &str = "com.docker.compose.replace";

/// The version written in `com.docker.compose.version`.
pub const COMPOSE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `PROJECT-SERVICE-N`, or the service's `container_name`.
pub fn container_name(project: &str, service: &str, s: &Service, number: u64) -> String {
    match &s.container_name {
        Some(n) => n.clone(),
        None => format!("{project}-{service}-{number}"),
    }
}

/// The image a service runs: its `image`, or `PROJECT-SERVICE` for a built one.
pub fn image_name(project: &str, service: &str, s: &Service) -> String {
    match &s.image {
        Some(i) => i.clone(),
        None => format!("{project}-{service}"),
    }
}

/// The hash of a service's configuration: a container whose label differs is recreated.
/// What does not change the container itself (how it is built or pulled, how many there
/// are, which profiles enable it) is left out.
pub fn config_hash(s: &Service) -> String {
    let mut s = s.clone();
    s.build = None;
    s.pull_policy = None;
    s.scale = None;
    s.profiles.clear();
    s.attach = None;
    s.depends_on.clear();
    if let Some(d) = &mut s.deploy {
        d.replicas = None;
    }
    let json = serde_json::to_vec(&s).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

/// The label filter selecting a project's resources.
pub fn project_filter(project: &str) -> String {
    format!("{PROJECT}={project}")
}

/// The one-off container name of `run`: `PROJECT-SERVICE-run-XXXXXXXXXXXX`.
pub fn run_container_name(project: &Project, service: &str, random: &str) -> String {
    format!("{}-{service}-run-{random}", project.name)
}
