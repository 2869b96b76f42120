//! The daemon's side of an OCI runtime (`runc`, `crun`): the short, blocking commands it
//! runs on containers the shim started (state, pause, resume, kill, update, delete, list).
//!
//! Every call passes `--root` (one state directory per daemon, so two daemons never see each
//! other's containers) and `--log-format json`, so a failure comes back as
//! [`RuntimeError::Failed`] with the runtime's own message rather than a log line. The daemon
//! is multi-threaded: these only run short-lived child processes; starting containers is the
//! shim's job.
//!
//! [`default_runtime_for_host`] picks crun when it is installed (it starts containers about
//! three times faster than runc), else runc. On a hybrid v1 host whose cgroup2 mount holds
//! controllers, which crun 1.8 refuses, crun runs through a launcher that hides that mount in
//! a private mount namespace first ([`Runtime::hide_cgroup2`]).

use crate::cgroups::CgroupLayout;
use berth_core::error::{ErrorKind, HasKind};
use serde::Deserialize;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where runtimes are looked for after `$PATH` (a daemon started by init may have a short one).
const FALLBACK_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// What went wrong running the OCI runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("OCI runtime {name:?} not found: no executable of that name in PATH or the usual sbin/bin directories")]
    NotInstalled { name: String },
    #[error("OCI runtime {path} is not an executable file")]
    NotExecutable { path: PathBuf },
    #[error("running {runtime} {command}")]
    Spawn {
        runtime: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{runtime} {command} failed: {stderr}")]
    Failed {
        runtime: String,
        command: String,
        stderr: String,
    },
    #[error("{runtime} has no container {id}")]
    NoSuchContainer { runtime: String, id: String },
    #[error("{runtime} {command} printed unreadable output")]
    BadOutput {
        runtime: String,
        command: String,
        #[source]
        source: serde_json::Error,
    },
}

impl HasKind for RuntimeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NoSuchContainer { .. } => ErrorKind::NotFound,
            Self::NotInstalled { .. } | Self::NotExecutable { .. } => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        }
    }
}
crate::error_chain::into_core_error!(RuntimeError);

/// The lifecycle status the runtime reports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeStatus {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
    #[serde(other)]
    Unknown,
}

/// `runc state` / `runc list` output, the part berth uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RuntimeState {
    pub id: String,
    pub status: RuntimeStatus,
    /// Host pid of the container's init (0 once stopped).
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub bundle: PathBuf,
}

/// One OCI runtime binary and the state directory the daemon uses with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// `runc`, `crun`: what `docker info` and inspect show.
    pub name: String,
    pub path: PathBuf,
    /// `--root`: the runtime's state directory for this daemon.
    pub root: PathBuf,
    /// A cgroup2 mount to hide from the runtime, and the launcher that does it
    /// (`<launcher> runtime-exec --hide-cgroup2 <mount> -- <runtime> ...`).
    pub hide_cgroup2: Option<(PathBuf, PathBuf)>,
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds an executable named `name` in `$PATH`, then in the usual system directories.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// The runtime berth uses when none is configured: `crun` when it is installed and the
/// cgroup layout lets it run, directly or with the hybrid cgroup2 mount hidden; else `runc`.
pub fn default_runtime_name(layout: Option<&CgroupLayout>, crun_installed: bool) -> &'static str {
    match layout {
        Some(_) if crun_installed => "crun",
        _ => "runc",
    }
}

/// The cgroup2 mount crun must not see on this host (see [`CgroupLayout::crun_blocking_mount`]).
pub fn crun_blocking_mount_for_host() -> Option<PathBuf> {
    CgroupLayout::detect(Path::new("/sys/fs/cgroup"))
        .ok()
        .and_then(|l| l.crun_blocking_mount().map(Path::to_path_buf))
}

/// [`default_runtime_name`] for this host (`/sys/fs/cgroup`, `$PATH`).
pub fn default_runtime_for_host() -> &'static str {
    let layout = CgroupLayout::detect(Path::new("/sys/fs/cgroup")).ok();
    default_runtime_name(layout.as_ref(), find_in_path("crun").is_some())
}

/// Error messages from `--log-format json` stderr (`{"level":"error","msg":"..."}` lines),
/// or the raw stderr when it is not in that format.
fn error_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let messages: Vec<String> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal") | None))
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect();
    if messages.is_empty() {
        text.trim().to_string()
    } else {
        messages.join("; ")
    }
}

impl Runtime {
    /// A runtime by name (`runc`, `crun`, found in `$PATH`) or by path, using `root` as its
    /// state directory.
    pub fn resolve(name_or_path: &str, root: impl Into<PathBuf>) -> Result<Runtime, RuntimeError> {
        let path = if name_or_path.contains('/') {
            let path = PathBuf::from(name_or_path);
            if !is_executable(&path) {
                return Err(RuntimeError::NotExecutable { path });
            }
            path
        } else {
            find_in_path(name_or_path).ok_or_else(|| RuntimeError::NotInstalled {
                name: name_or_path.to_string(),
            })?
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        Ok(Runtime {
            name,
            path,
            root: root.into(),
            hide_cgroup2: None,
        })
    }

    /// The program and leading arguments that run this runtime: the runtime itself, or the
    /// launcher that hides a cgroup2 mount first.
    pub fn invocation(&self) -> (PathBuf, Vec<String>) {
        match &self.hide_cgroup2 {
            Some((mount, launcher)) => (
                launcher.clone(),
                vec![
                    "runtime-exec".into(),
                    "--hide-cgroup2".into(),
                    mount.display().to_string(),
                    "--".into(),
                    self.path.display().to_string(),
                ],
            ),
            None => (self.path.clone(), Vec::new()),
        }
    }

    /// The runtime's command with the global options set (`--root`, JSON logs); the shim
    /// adds `create`/`start`/`exec` and their arguments.
    pub fn command(&self) -> Command {
        let (program, lead) = self.invocation();
        let mut cmd = Command::new(program);
        cmd.args(lead)
            .arg("--root")
            .arg(&self.root)
            .arg("--log-format")
            .arg("json");
        cmd
    }

    /// Runs `args` with `stdin` fed to the runtime, returning its stdout.
    fn run(
        &self,
        id: Option<&str>,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<Vec<u8>, RuntimeError> {
        let command = args.join(" ");
        let spawn_err = |source| RuntimeError::Spawn {
            runtime: self.name.clone(),
            command: command.clone(),
            source,
        };
        let mut child = self
            .command()
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input).map_err(spawn_err)?;
        }
        let output = child.wait_with_output().map_err(spawn_err)?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        if let Some(id) = id {
            if !self.root.join(id).exists() {
                return Err(RuntimeError::NoSuchContainer {
                    runtime: self.name.clone(),
                    id: id.to_string(),
                });
            }
        }
        let mut stderr = error_message(&output.stderr);
        if stderr.is_empty() {
            stderr = format!("exited with {}", output.status);
        }
        Err(RuntimeError::Failed {
            runtime: self.name.clone(),
            command,
            stderr,
        })
    }

    /// The container's state; `None` when the runtime has no such container.
    pub fn state(&self, id: &str) -> Result<Option<RuntimeState>, RuntimeError> {
        match self.run(Some(id), &["state", id], None) {
            Ok(out) => {
                serde_json::from_slice(&out)
                    .map(Some)
                    .map_err(|source| RuntimeError::BadOutput {
                        runtime: self.name.clone(),
                        command: "state".to_string(),
                        source,
                    })
            }
            Err(RuntimeError::NoSuchContainer { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every container the runtime knows under [`Self::root`].
    pub fn list(&self) -> Result<Vec<RuntimeState>, RuntimeError> {
        let out = self.run(None, &["list", "--format", "json"], None)?;
        if out.iter().all(u8::is_ascii_whitespace) || out.starts_with(b"null") {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&out).map_err(|source| RuntimeError::BadOutput {
            runtime: self.name.clone(),
            command: "list".to_string(),
            source,
        })
    }

    /// Freezes every process of the container.
    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(Some(id), &["pause", id], None).map(drop)
    }

    /// Thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(Some(id), &["resume", id], None).map(drop)
    }

    /// Sends `signal` to the container's init, or with `all` to every process in it.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
        let signal = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, signal.as_str()]);
        self.run(Some(id), &args, None).map(drop)
    }

    /// Forgets the container (and with `force`, kills it first). A container the runtime
    /// does not have is already deleted.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let args: &[&str] = if force {
            &["delete", "--force", id]
        } else {
            &["delete", id]
        };
        match self.run(Some(id), args, None) {
            Err(RuntimeError::NoSuchContainer { .. }) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Changes the cgroup limits of a running container (`docker update`): `resources_json`
    /// is a runtime-spec `linux.resources` object, e.g. `serde_json::to_vec` of what
    /// [`crate::spec::linux_resources`] returns.
    pub fn update(&self, id: &str, resources_json: &[u8]) -> Result<(), RuntimeError> {
        self.run(
            Some(id),
            &["update", "--resources", "-", id],
            Some(resources_json),
        )
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_log_lines_become_the_error_message() {
        let stderr = br#"{"level":"warning","msg":"ignored","time":"t"}
{"level":"error","msg":"container does not exist","time":"t"}
"#;
        assert_eq!(error_message(stderr), "container does not exist");
        assert_eq!(error_message(b"plain failure\n"), "plain failure");
    }

    #[test]
    fn resolving_a_missing_runtime_gives_a_clear_error() {
        let err = Runtime::resolve("no-such-runtime-xyz", "/tmp/state").unwrap_err();
        assert!(matches!(err, RuntimeError::NotInstalled { .. }));
        assert!(
            err.to_string()
                .contains("\"no-such-runtime-xyz\" not found"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("runc");
        std::fs::write(&plain, "not a program").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Runtime::resolve(plain.to_str().unwrap(), "/tmp/state").unwrap_err();
        assert!(matches!(err, RuntimeError::NotExecutable { .. }));
    }

    #[test]
    fn resolving_by_path_names_the_runtime_after_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("my-runc");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let rt = Runtime::resolve(bin.to_str().unwrap(), dir.path().join("state")).unwrap();
        assert_eq!(
            (rt.name.as_str(), rt.path.as_path()),
            ("my-runc", bin.as_path())
        );
    }

    #[test]
    fn failures_carry_the_runtime_message_and_missing_containers_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("fake-runtime");
        // Fails like runc does with JSON logs; remembers its arguments.
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\necho \"$@\" > {}/args\necho '{{\"level\":\"error\",\"msg\":\"container not running\"}}' >&2\nexit 1\n",
                dir.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("state");
        std::fs::create_dir_all(root.join("known")).unwrap();
        let rt = Runtime::resolve(bin.to_str().unwrap(), &root).unwrap();

        let err = rt.pause("known").unwrap_err();
        assert_eq!(
            err.to_string(),
            "fake-runtime pause known failed: container not running"
        );
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(
            args.trim(),
            format!("--root {} --log-format json pause known", root.display())
        );

        assert!(matches!(
            rt.kill("unknown", 15, true),
            Err(RuntimeError::NoSuchContainer { .. })
        ));
        assert_eq!(rt.state("unknown").unwrap(), None);
        rt.delete("unknown", true).unwrap();
    }

    #[test]
    fn state_output_parses_runc_and_crun_json() {
        let json = r#"{"ociVersion":"1.0.2-dev","id":"abc","pid":4242,"status":"running","bundle":"/b","rootfs":"/b/rootfs","created":"2024-01-01T00:00:00Z","owner":""}"#;
        let state: RuntimeState = serde_json::from_str(json).unwrap();
        assert_eq!((state.status, state.pid), (RuntimeStatus::Running, 4242));
        let odd: RuntimeState = serde_json::from_str(r#"{"id":"x","status":"weird"}"#).unwrap();
        assert_eq!(odd.status, RuntimeStatus::Unknown);
    }

    #[test]
    fn crun_is_the_default_when_installed_hiding_a_hybrid_cgroup2_mount() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("memory")).unwrap();
        std::fs::write(root.path().join("memory/cgroup.procs"), "").unwrap();
        std::fs::create_dir_all(root.path().join("unified")).unwrap();
        std::fs::write(root.path().join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
        let hybrid = CgroupLayout::detect(root.path()).unwrap();
        assert_eq!(default_runtime_name(Some(&hybrid), true), "crun");
        assert_eq!(
            hybrid.crun_blocking_mount(),
            Some(root.path().join("unified").as_path())
        );
        std::fs::write(root.path().join("unified/cgroup.controllers"), "").unwrap();
        let empty_unified = CgroupLayout::detect(root.path()).unwrap();
        assert_eq!(default_runtime_name(Some(&empty_unified), true), "crun");
        assert_eq!(empty_unified.crun_blocking_mount(), None);
        assert_eq!(default_runtime_name(Some(&empty_unified), false), "runc");
        assert_eq!(default_runtime_name(None, true), "runc");
    }

    #[test]
    fn a_hidden_cgroup2_mount_runs_the_runtime_through_the_launcher() {
        let mut rt = Runtime::resolve("/bin/true", "/tmp/state").unwrap();
        assert_eq!(rt.invocation().0, PathBuf::from("/bin/true"));
        rt.hide_cgroup2 = Some((
            "/sys/fs/cgroup/unified".into(),
            "/usr/local/bin/berth-shim".into(),
        ));
        let (program, lead) = rt.invocation();
        assert_eq!(program, PathBuf::from("/usr/local/bin/berth-shim"));
        assert_eq!(
            lead,
            vec![
                "runtime-exec",
                "--hide-cgroup2",
                "/sys/fs/cgroup/unified",
                "--",
                "/bin/true"
            ]
        );
    }
}
