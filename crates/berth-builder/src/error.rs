//! [`BuildError`]: everything a build can fail with, with the words Docker's classic builder
//! uses where clients (and people) know them, and the [`ErrorKind`] the API maps to a status.

use berth_core::error::{ErrorKind, HasKind};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A Dockerfile that does not parse; names the file and the line.
    #[error("dockerfile parse error line {line} of {file}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    #[error("the Dockerfile ({file}) cannot be empty")]
    EmptyDockerfile { file: String },
    #[error("Cannot locate specified Dockerfile: {file}")]
    DockerfileNotFound { file: String },
    #[error("no build stage in current context")]
    NoStage,
    #[error("failed to reach build target {target} in Dockerfile")]
    TargetNotFound { target: String },
    #[error("{name} stage name already used")]
    StageNameUsed { name: String },
    /// A `RUN` that exited non-zero; the exit code becomes the client's.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    CommandFailed { command: String, code: i64 },
    /// `COPY`/`ADD` could not find or read its sources.
    #[error("{instruction} failed: {message}")]
    Copy {
        instruction: &'static str,
        message: String,
    },
    /// An instruction whose arguments are wrong for the image or the context.
    #[error("{message}")]
    Invalid { message: String },
    /// The build context (tar, compressed tar or remote) could not be read.
    #[error("error reading the build context: {message}")]
    Context { message: String },
    /// Downloading a remote context or an `ADD` URL failed.
    #[error("failed to download {url}: {message}")]
    Download { url: String, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The client went away or the build was stopped.
    #[error("the build was cancelled")]
    Cancelled,
    /// An error of the engine behind [`crate::BuildBackend`], as it is.
    #[error("{0}")]
    Backend(#[from] berth_core::Error),
}

impl BuildError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
        }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    /// The exit code a client should end with (Docker's CLI exits with a failed RUN's code).
    pub fn code(&self) -> i64 {
        match self {
            Self::CommandFailed { code, .. } if *code > 0 => *code,
            _ => 1,
        }
    }
}

impl HasKind for BuildError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Parse { .. }
            | Self::EmptyDockerfile { .. }
            | Self::NoStage
            | Self::TargetNotFound { .. }
            | Self::StageNameUsed { .. }
            | Self::Invalid { .. }
            | Self::Context { .. }
            | Self::Copy { .. } => ErrorKind::InvalidArgument,
            Self::DockerfileNotFound { .. } => ErrorKind::NotFound,
            Self::Download { .. } => ErrorKind::Unavailable,
            Self::Backend(e) => e.kind(),
            Self::CommandFailed { .. } | Self::Io { .. } | Self::Cancelled => ErrorKind::Internal,
        }
    }
}

impl From<BuildError> for berth_core::Error {
    fn from(e: BuildError) -> Self {
        match e {
            BuildError::Backend(inner) => inner,
            other => berth_core::Error::new(other.kind(), other.to_string()),
        }
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;
