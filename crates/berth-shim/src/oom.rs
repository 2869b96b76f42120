//! OOM kills in a container's memory cgroup: counted (so an exit can say whether the
//! kernel's OOM killer struck) and watched (so the daemon hears of each OOM as it happens).
//!
//! cgroup v1 reports through `memory.oom_control` (`oom_kill N`, `under_oom 0|1`) and an
//! eventfd registered in `cgroup.event_control`; cgroup v2 through `memory.events`
//! (`oom_kill N`), which raises an inotify modify event on every change.

use rustix::fd::{AsRawFd, OwnedFd};
use std::io;
use std::path::{Path, PathBuf};

/// A container's memory cgroup and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OomSource {
    V1(PathBuf),
    V2(PathBuf),
}

/// Reads `key value` lines and returns `key`'s value.
fn keyed_value(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

impl OomSource {
    /// `v1:<dir>` or `v2:<dir>`.
    pub fn parse(arg: &str) -> Option<OomSource> {
        match arg.split_once(':')? {
            ("v1", dir) if !dir.is_empty() => Some(OomSource::V1(dir.into())),
            ("v2", dir) if !dir.is_empty() => Some(OomSource::V2(dir.into())),
            _ => None,
        }
    }

    pub fn to_arg(&self) -> String {
        match self {
            Self::V1(d) => format!("v1:{}", d.display()),
            Self::V2(d) => format!("v2:{}", d.display()),
        }
    }

    fn dir(&self) -> &Path {
        match self {
            Self::V1(d) | Self::V2(d) => d,
        }
    }

    fn counter_file(&self) -> PathBuf {
        match self {
            Self::V1(d) => d.join("memory.oom_control"),
            Self::V2(d) => d.join("memory.events"),
        }
    }

    /// Processes the OOM killer has killed in the cgroup so far (`None`: no cgroup, or a
    /// kernel without the counter).
    pub fn kills(&self) -> Option<u64> {
        keyed_value(&self.counter_file(), "oom_kill")
    }

    /// Whether the cgroup is out of memory right now (v1 with the OOM killer disabled: its
    /// processes wait instead of dying).
    pub fn under_oom(&self) -> bool {
        matches!(self, Self::V1(_))
            && keyed_value(&self.counter_file(), "under_oom").is_some_and(|v| v > 0)
    }

    pub fn exists(&self) -> bool {
        self.dir().is_dir()
    }

    /// A descriptor that becomes readable whenever the kernel reports OOM activity in the
    /// cgroup (and, on v1, when the cgroup is removed). Drain it with [`drain`].
    pub fn notifier(&self) -> io::Result<OwnedFd> {
        match self {
            Self::V1(dir) => {
                use rustix::event::{eventfd, EventfdFlags};
                let efd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
                let control = std::fs::File::open(dir.join("memory.oom_control"))?;
                let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
                std::fs::write(dir.join("cgroup.event_control"), line)?;
                Ok(efd)
            }
            Self::V2(dir) => {
                use rustix::fs::inotify;
                let fd =
                    inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
                inotify::add_watch(&fd, dir.join("memory.events"), inotify::WatchFlags::MODIFY)?;
                Ok(fd)
            }
        }
    }
}

/// Reads everything pending on a notifier.
pub fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 1024];
    while matches!(rustix::io::read(fd, &mut buf), Ok(n) if n > 0) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip_through_their_argument() {
        for s in [
            OomSource::V1("/cg/memory/b/x".into()),
            OomSource::V2("/cg/b/x".into()),
        ] {
            assert_eq!(OomSource::parse(&s.to_arg()), Some(s));
        }
        assert_eq!(OomSource::parse("v3:/x"), None);
        assert_eq!(OomSource::parse("v1:"), None);
    }

    #[test]
    fn kills_are_read_from_each_versions_counter() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("memory.oom_control"),
            "oom_kill_disable 1\nunder_oom 1\noom_kill 2\n",
        )
        .unwrap();
        let v1 = OomSource::V1(dir.path().into());
        assert_eq!(v1.kills(), Some(2));
        assert!(v1.under_oom());
        std::fs::write(
            dir.path().join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
        )
        .unwrap();
        let v2 = OomSource::V2(dir.path().into());
        assert_eq!(v2.kills(), Some(1));
        assert!(!v2.under_oom());
        assert_eq!(OomSource::V2("/nonexistent".into()).kills(), None);
    }
}
