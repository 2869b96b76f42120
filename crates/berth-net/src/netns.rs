//! Named network namespaces and running code inside one.
//!
//! A container's network namespace is a file under a directory the engine chooses
//! (`<exec-root>/netns/<id>`): a bind mount of the nsfs file of a new namespace, as
//! `ip netns add` makes them, so the namespace outlives every process in it and the OCI
//! runtime can be pointed at it. [`create`] makes one (with `lo` up), [`delete`] unmounts and
//! removes it.
//!
//! [`run_in`] runs a closure inside a namespace, on a thread spawned for that call only
//! (namespace switching is per thread; a tokio worker thread must never switch). Sockets
//! the closure creates stay in that namespace wherever they are used afterwards, which is
//! how the bridge driver gets a netlink socket inside a container and the DNS server its
//! `127.0.0.11:53` sockets. Threads the closure spawns start in the namespace too.
//!
//! ```no_run
//! # async fn demo() -> Result<(), berth_net::netns::NetnsError> {
//! use std::path::Path;
//! let ns = berth_net::netns::create(Path::new("/run/berth/netns"), "4f2a9c").await?;
//! let socket = berth_net::netns::run_in(&ns, || std::net::UdpSocket::bind("127.0.0.1:0")).await?;
//! berth_net::netns::delete(&ns)?;
//! # drop(socket); Ok(()) }
//! ```

use berth_core::error::{ErrorKind, HasKind};
use berth_sys::netns::ThreadNetnsGuard;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// The calling thread's network namespace, the source of the bind mount.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// What went wrong with a network namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("invalid network namespace name {name:?}")]
    InvalidName { name: String },
    #[error("network namespace {path} already exists")]
    Exists { path: PathBuf },
    #[error("creating network namespace {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing network namespace {path}")]
    Delete {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("opening network namespace {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("entering network namespace {path}")]
    Enter {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the thread working in network namespace {path} panicked")]
    ThreadPanicked { path: PathBuf },
    #[error("setting up lo in network namespace {path}: {message}")]
    Loopback { path: PathBuf, message: String },
}

impl HasKind for NetnsError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidName { .. } => ErrorKind::InvalidArgument,
            Self::Exists { .. } => ErrorKind::Conflict,
            Self::Open { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            _ => ErrorKind::Internal,
        }
    }
}
crate::error::into_core_error!(NetnsError);

/// Creates the network namespace `dir/name` (creating `dir` if needed) with `lo` up and
/// returns its path. Fails with [`NetnsError::Exists`] when the file is already there.
pub async fn create(dir: &Path, name: &str) -> Result<PathBuf, NetnsError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(NetnsError::InvalidName {
            name: name.to_string(),
        });
    }
    let path = dir.join(name);
    let create_err = |source| NetnsError::Create {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(create_err)?;
    match OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(NetnsError::Exists { path });
        }
        Err(e) => return Err(create_err(e)),
    }
    let target = path.clone();
    let mounted = on_thread(&path, move || -> io::Result<()> {
        let guard = ThreadNetnsGuard::enter_new()?;
        rustix::mount::mount_bind(THREAD_NETNS, &target)?;
        guard.restore()
    })
    .await
    .and_then(|r| r.map_err(create_err));
    if let Err(err) = mounted {
        let _ = std::fs::remove_file(&path);
        return Err(err);
    }
    if let Err(err) = crate::netlink::loopback_up(&path).await {
        let _ = delete(&path);
        return Err(NetnsError::Loopback {
            path,
            message: err.to_string(),
        });
    }
    Ok(path)
}

/// Unmounts and removes the namespace file at `path`. A path that is not there, or not
/// mounted, is fine: deleting twice succeeds.
pub fn delete(path: &Path) -> Result<(), NetnsError> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => {
            return Err(NetnsError::Delete {
                path: path.to_path_buf(),
                source: e.into(),
            })
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::Delete {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Runs `f` inside the network namespace at `path` (a namespace file or
/// `/proc/<pid>/ns/net`) on a thread of its own, and returns what it returns.
pub async fn run_in<T, F>(path: &Path, f: F) -> Result<T, NetnsError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let ns = open(path)?;
    let owned = path.to_path_buf();
    on_thread(path, move || -> Result<T, NetnsError> {
        let guard = ThreadNetnsGuard::enter(ns.as_fd()).map_err(|source| NetnsError::Enter {
            path: owned.clone(),
            source,
        })?;
        let value = f();
        guard.restore().map_err(|source| NetnsError::Enter {
            path: owned,
            source,
        })?;
        Ok(value)
    })
    .await?
}

/// [`run_in`] for callers that are not async (tests, benchmarks, blocking pools).
pub fn run_in_blocking<T, F>(path: &Path, f: F) -> Result<T, NetnsError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let ns = open(path)?;
    let owned = path.to_path_buf();
    let thread = std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || -> Result<T, NetnsError> {
            let guard =
                ThreadNetnsGuard::enter(ns.as_fd()).map_err(|source| NetnsError::Enter {
                    path: owned.clone(),
                    source,
                })?;
            let value = f();
            guard.restore().map_err(|source| NetnsError::Enter {
                path: owned,
                source,
            })?;
            Ok(value)
        })
        .map_err(|source| NetnsError::Enter {
            path: path.to_path_buf(),
            source,
        })?;
    thread.join().map_err(|_| NetnsError::ThreadPanicked {
        path: path.to_path_buf(),
    })?
}

fn open(path: &Path) -> Result<File, NetnsError> {
    File::open(path).map_err(|source| NetnsError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs `f` on a new thread and awaits its result without blocking the runtime.
async fn on_thread<T, F>(path: &Path, f: F) -> Result<T, NetnsError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|source| NetnsError::Enter {
            path: path.to_path_buf(),
            source,
        })?;
    // The sender is dropped without a value only when `f` panicked.
    rx.await.map_err(|_| NetnsError::ThreadPanicked {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_with_slashes_are_refused() {
        let err = create(Path::new("/nonexistent"), "a/b").await.unwrap_err();
        assert!(matches!(err, NetnsError::InvalidName { .. }));
    }

    #[test]
    fn deleting_a_missing_namespace_is_fine() {
        delete(Path::new("/nonexistent/berth-netns-test")).unwrap();
    }
}
