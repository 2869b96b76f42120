//! Errors of loading a project. Each names what a user must fix: the file, and where it
//! can the path inside it (`services.web.ports`), so one message is enough to find it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `-f` was given and no compose file was found in the directory or its parents.
    #[error("no configuration file provided: not found (looked for compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml in {dir} and its parents)")]
    NoFile { dir: PathBuf },
    #[error("open {file}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    /// The file is not YAML, or its top level is not a mapping.
    #[error("{file}: {message}")]
    Yaml { file: String, message: String },
    /// A key the specification does not know, or a value of the wrong shape.
    #[error("validating {file}: {path}: {message}")]
    Invalid {
        file: String,
        path: String,
        message: String,
    },
    /// `${VAR:?message}` on an unset variable, or a malformed `${...}`.
    #[error("{file}: {path}: {message}")]
    Interpolation {
        file: String,
        path: String,
        message: String,
    },
    /// A service refers to something that is not there (a service, network, volume).
    #[error("{file}: service {service:?}: {key}: {message}")]
    Service {
        file: String,
        service: String,
        key: String,
        message: String,
    },
    #[error("{file}: dependency cycle detected: {cycle}")]
    Cycle { file: String, cycle: String },
    #[error("{file}: {message}")]
    Project { file: String, message: String },
    /// A project name given with `-p` or `COMPOSE_PROJECT_NAME` that Docker would refuse.
    #[error("invalid project name {name:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number")]
    ProjectName { name: String },
    /// A command named a service the project does not have.
    #[error("no such service: {name}")]
    NoSuchService { name: String },
}

pub type Result<T> = std::result::Result<T, Error>;
