//! How the daemon starts a shim, and how the shim reports whether the container started.
//!
//! The daemon runs `berth-shim run <options>` with its stdout connected to a pipe. The shim
//! starts the container, writes exactly one JSON line ([`StartResult`]) to that pipe, closes
//! it, and goes on monitoring. Options are plain `--name value` pairs so the contract is
//! easy to read in `ps` output.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Everything a shim needs to run one container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShimOptions {
    pub id: String,
    /// Bundle directory: holds `config.json`; the shim puts its pid file, runtime log and
    /// exit status there.
    pub bundle: PathBuf,
    /// The shim's socket. Kept short (unix socket paths are limited to 107 bytes); console
    /// sockets are made beside it with suffixes.
    pub socket: PathBuf,
    /// Path of the OCI runtime binary.
    pub runtime: PathBuf,
    /// The runtime's `--root` state directory.
    pub runtime_root: PathBuf,
    pub tty: bool,
    /// Keep a stdin pipe open for the container (`-i`).
    pub stdin: bool,
    /// Hold output until the daemon attaches (clients attached before start).
    pub wait_attach: bool,
    /// `json-file`, `local` or `none`.
    pub log_driver: String,
    pub log_path: PathBuf,
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// Gzip rotated log files.
    pub log_compress: bool,
    /// The container's memory cgroup, to count and watch OOM kills (`v1:<dir>`, `v2:<dir>`,
    /// see [`crate::oom::OomSource`]).
    pub oom_watch: Option<String>,
    /// A cgroup2 mount to hide from the runtime (crun on a hybrid host), see
    /// [`hide_cgroup2`].
    pub hide_cgroup2: Option<PathBuf>,
}

/// The one line a shim writes to its stdout after trying to start the container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartResult {
    Started { pid: i32 },
    Failed { message: String },
}

pub const EXIT_FILE: &str = "exit.json";
pub const PID_FILE: &str = "init.pid";
pub const RUNTIME_LOG: &str = "runtime.log";

impl ShimOptions {
    pub fn socket_path(&self) -> PathBuf {
        self.socket.clone()
    }

    /// Where the runtime sends the pty master of process `key` (init: "").
    pub fn console_path(&self, key: &str) -> PathBuf {
        let suffix: String = key
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        let mut s = self.socket.as_os_str().to_owned();
        s.push(if suffix.is_empty() {
            ".c".to_string()
        } else {
            format!(".{suffix}")
        });
        PathBuf::from(s)
    }

    /// Arguments after the binary name.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec!["run".to_string()];
        let mut kv = |k: &str, v: String| {
            a.push(format!("--{k}"));
            a.push(v);
        };
        kv("id", self.id.clone());
        kv("bundle", self.bundle.display().to_string());
        kv("socket", self.socket.display().to_string());
        kv("runtime", self.runtime.display().to_string());
        kv("runtime-root", self.runtime_root.display().to_string());
        kv("log-driver", self.log_driver.clone());
        kv("log-path", self.log_path.display().to_string());
        kv("log-max-size", self.log_max_size.to_string());
        kv("log-max-files", self.log_max_files.to_string());
        if let Some(m) = &self.hide_cgroup2 {
            kv("hide-cgroup2", m.display().to_string());
        }
        if let Some(w) = &self.oom_watch {
            kv("oom-watch", w.clone());
        }
        for (flag, on) in [
            ("--tty", self.tty),
            ("--stdin", self.stdin),
            ("--wait-attach", self.wait_attach),
            ("--log-compress", self.log_compress),
        ] {
            if on {
                a.push(flag.to_string());
            }
        }
        a
    }

    /// Parses what [`to_args`](Self::to_args) wrote.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = ShimOptions::default();
        let mut it = args.iter();
        match it.next().map(String::as_str) {
            Some("run") => {}
            other => {
                return Err(format!(
                    "unknown command {other:?}; usage: berth-shim run --id ID --bundle DIR ..."
                ))
            }
        }
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--tty" => o.tty = true,
                "--stdin" => o.stdin = true,
                "--wait-attach" => o.wait_attach = true,
                "--log-compress" => o.log_compress = true,
                _ => {
                    let v = it
                        .next()
                        .ok_or_else(|| format!("{flag} needs a value"))?
                        .clone();
                    match flag.as_str() {
                        "--id" => o.id = v,
                        "--bundle" => o.bundle = v.into(),
                        "--socket" => o.socket = v.into(),
                        "--runtime" => o.runtime = v.into(),
                        "--runtime-root" => o.runtime_root = v.into(),
                        "--log-driver" => o.log_driver = v,
                        "--log-path" => o.log_path = v.into(),
                        "--log-max-size" => {
                            o.log_max_size = v.parse().map_err(|_| format!("bad {flag}: {v}"))?
                        }
                        "--log-max-files" => {
                            o.log_max_files = v.parse().map_err(|_| format!("bad {flag}: {v}"))?
                        }
                        "--hide-cgroup2" => o.hide_cgroup2 = Some(v.into()),
                        "--oom-watch" => o.oom_watch = Some(v),
                        _ => return Err(format!("unknown option {flag}")),
                    }
                }
            }
        }
        if o.id.is_empty()
            || o.bundle.as_os_str().is_empty()
            || o.runtime.as_os_str().is_empty()
            || o.socket.as_os_str().is_empty()
        {
            return Err("--id, --bundle, --socket and --runtime are required".into());
        }
        Ok(o)
    }
}

/// Hides a cgroup2 mount from this process and its children: a private copy of the mount
/// table (receiving the host's later mounts) without that mount. crun 1.8 refuses hybrid
/// hosts whose cgroup2 mount holds controllers; without it, it sees a plain v1 host.
pub fn hide_cgroup2(mount: &std::path::Path) -> std::io::Result<()> {
    use rustix::mount::{mount_change, unmount, MountPropagationFlags, UnmountFlags};
    berth_sys::unshare_mount_namespace()?;
    mount_change(
        "/",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )?;
    match unmount(mount, UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_through_args() {
        let o = ShimOptions {
            id: "abc".into(),
            bundle: "/run/berth/containers/abc".into(),
            socket: "/run/berth/s/abc".into(),
            runtime: "/usr/sbin/runc".into(),
            runtime_root: "/run/berth/runc".into(),
            tty: true,
            stdin: false,
            wait_attach: true,
            log_driver: "json-file".into(),
            log_path: "/var/lib/berth/containers/abc/abc-json.log".into(),
            log_max_size: 100,
            log_max_files: 2,
            log_compress: true,
            oom_watch: Some("v1:/sys/fs/cgroup/memory/berth/abc".into()),
            hide_cgroup2: Some("/sys/fs/cgroup/unified".into()),
        };
        assert_eq!(ShimOptions::parse(&o.to_args()).unwrap(), o);
    }

    #[test]
    fn missing_required_options_are_reported() {
        assert!(ShimOptions::parse(&["run".to_string()]).is_err());
        assert!(ShimOptions::parse(&["frobnicate".to_string()]).is_err());
    }
}
