//! `docker start`: mount the rootfs, write the managed /etc files and the OCI bundle, hand
//! the container to a new shim, and follow it with a monitor.

use super::{etc, pending_attach_count, shim_client, ContainerEntry};
use crate::Engine;
use base64::Engine as _;
use berth_core::container::{Container, Status};
use berth_core::{Error, ErrorKind, Result};
use berth_runtime::spec::{EtcFiles, NamespaceMode, NetworkNamespace, SpecRequest};
use berth_shim::launch::{ShimOptions, StartResult, EXIT_FILE};
use chrono::Utc;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::AsyncBufReadExt;

/// How long a shim may take to report whether the container started.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// What `prepare` computed for the shim.
struct Prepared {
    bundle: PathBuf,
    options: ShimOptions,
}

impl Engine {
    /// `docker start NAME`.
    pub async fn start_container(self: &Arc<Self>, name: &str) -> Result<()> {
        let entry = self.container(name)?;
        let _op = entry.op.lock().await;
        self.start_locked(&entry).await
    }

    /// Starts a container whose op lock the caller holds.
    pub(crate) async fn start_locked(self: &Arc<Self>, entry: &Arc<ContainerEntry>) -> Result<()> {
        let c = entry.snapshot();
        match c.state.status {
            Status::Running => return Err(Error::not_modified()),
            Status::Paused => {
                return Err(Error::conflict(
                    "cannot start a paused container, try unpause instead",
                ))
            }
            Status::Removing => {
                return Err(Error::conflict(
                    "container is marked for removal and cannot be started".to_string(),
                ))
            }
            Status::Dead => {
                return Err(Error::conflict(
                    "container is marked for removal and cannot be started",
                ))
            }
            _ => {}
        }
        let t0 = std::time::Instant::now();
        let joins = self.namespace_joins(&c)?;
        let links = self.link_entries(&c)?;
        if let Err(e) = self.network_up(entry).await {
            self.start_failed(entry, &c, &e.to_string()).await;
            return Err(e);
        }
        let c = entry.snapshot();
        let wait_attach = pending_attach_count(entry) > 0;
        let prepared = {
            let engine = self.clone();
            let c = c.clone();
            Self::blocking(move || engine.prepare(&c, joins, links, wait_attach)).await
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.network_down(entry).await;
                self.start_failed(entry, &c, &e.to_string()).await;
                return Err(e);
            }
        };
        let t1 = t0.elapsed();
        match self.spawn_shim(&prepared).await {
            Ok(pid) => {
                tracing::debug!(prepare = ?t1, shim = ?(t0.elapsed() - t1), "container started");
                // Watch before announcing, so no exit can slip between.
                let conn = shim_client::connect(&prepared.options.socket_path()).await;
                entry.update(|c| {
                    c.state.status = Status::Running;
                    c.state.pid = pid as i64;
                    c.state.exit_code = 0;
                    c.state.error.clear();
                    c.state.oom_killed = false;
                    c.state.started_at = Some(Utc::now());
                    c.state.finished_at = None;
                    c.has_been_started = true;
                    c.has_been_manually_stopped = false;
                });
                entry.note_start();
                self.persist(entry)?;
                self.container_event(entry, "start", &[]);
                self.spawn_monitor(entry.clone(), conn.ok());
                Ok(())
            }
            Err(message) => {
                self.network_down(entry).await;
                self.release_volume_sources(&c);
                let rootfs = self
                    .storage
                    .root()
                    .join("containers")
                    .join(&c.layer_key)
                    .join("merged");
                let message = normalize_runtime_error(&message, &c.path, &rootfs);
                self.start_failed(entry, &c, &message).await;
                let (kind, _) = classify_start_error(&message);
                Err(Error::new(kind, format!("failed to create task for container: OCI runtime create failed: {message}: unknown")))
            }
        }
    }

    async fn start_failed(
        self: &Arc<Self>,
        entry: &Arc<ContainerEntry>,
        c: &Container,
        message: &str,
    ) {
        if c.host_config.auto_remove {
            // `run --rm` waits for the removal even when the start fails, as with Docker.
            let engine = self.clone();
            let id = c.id.clone();
            tokio::spawn(async move {
                let _ = engine
                    .remove_container(
                        &id,
                        super::remove::RemoveOptions {
                            force: true,
                            volumes: true,
                            ..Default::default()
                        },
                    )
                    .await;
            });
        }
        let (_, code) = classify_start_error(message);
        entry.update(|x| {
            x.state.exit_code = code;
            x.state.error = message.to_string();
            if x.has_been_started {
                x.state.status = Status::Exited;
                x.state.finished_at = Some(Utc::now());
            }
        });
        let _ = self.persist(entry);
        let storage = self.storage.clone();
        let key = c.layer_key.clone();
        let _ = Self::blocking(move || Ok(storage.unmount_rw(&key)?)).await;
    }

    /// `container:NAME` modes resolve to the other container's namespaces.
    fn namespace_joins(&self, c: &Container) -> Result<Joins> {
        let join = |mode: &str, what: &str, ns: &str| -> Result<Option<PathBuf>> {
            let Some(other) = mode.strip_prefix("container:") else {
                return Ok(None);
            };
            if ns == "net" && other.is_empty() {
                return Err(Error::invalid(
                    "invalid network mode: container: needs a name",
                ));
            }
            let e = self.container(other)?;
            let (pid, running, id) = e.read(|o| (o.state.pid, o.state.is_running(), o.id.clone()));
            if !running || pid <= 0 {
                return Err(Error::conflict(format!(
                    "cannot join {what} of a non running container: {id}"
                )));
            }
            if id == c.id {
                return Err(Error::invalid(format!("cannot join own {what}")));
            }
            Ok(Some(PathBuf::from(format!("/proc/{pid}/ns/{ns}"))))
        };
        let net_container = match c.host_config.network_mode.strip_prefix("container:") {
            Some(other) => Some(self.container(other)?.id()),
            None => None,
        };
        Ok(Joins {
            net_container,
            net: join(&c.host_config.network_mode, "network", "net")?,
            ipc: join(&c.host_config.ipc_mode, "IPC namespace", "ipc")?,
            pid: join(&c.host_config.pid_mode, "PID namespace", "pid")?,
        })
    }

    /// Blocking part of start: rootfs, /etc files, working dir, OCI bundle.
    fn prepare(
        &self,
        c: &Container,
        joins: Joins,
        links: (String, Vec<String>),
        wait_attach: bool,
    ) -> Result<Prepared> {
        self.mount_volume_sources(c)?;
        let prepared = self.prepare_mounted(c, joins, links, wait_attach);
        if prepared.is_err() {
            self.release_volume_sources(c);
        }
        prepared
    }

    fn prepare_mounted(
        &self,
        c: &Container,
        joins: Joins,
        links: (String, Vec<String>),
        wait_attach: bool,
    ) -> Result<Prepared> {
        let rootfs = self.storage.mount_rw(&c.layer_key)?;
        let dir = self.container_dir(&c.id);
        std::fs::create_dir_all(&dir)?;
        let host_network = c.host_config.network_mode == "host";
        let hostname = if host_network && c.config.hostname.is_empty() {
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned()
        } else {
            c.config.hostname.clone()
        };
        let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let host_resolv = std::fs::read_to_string(&self.cfg.resolv_conf).unwrap_or_default();
        let etc_hostname = dir.join("hostname");
        let etc_hosts = dir.join("hosts");
        let etc_resolv = dir.join("resolv.conf");
        std::fs::write(&etc_hostname, format!("{hostname}\n"))?;
        let (link_hosts, link_env) = links;
        let own_ip = c
            .networks
            .attachments
            .iter()
            .find_map(|(_, a)| a.endpoint.as_ref().map(|e| e.ip.as_str()));
        let embedded_dns = c
            .networks
            .attachments
            .iter()
            .any(|(_, a)| a.endpoint.as_ref().is_some_and(|e| !e.dns_names.is_empty()));
        let (hosts, resolv) = match &joins.net_container {
            // Sharing another container's stack: its names and resolvers too.
            Some(other) => {
                let dir = self.container_dir(other);
                (
                    std::fs::read_to_string(dir.join("hosts"))
                        .unwrap_or_else(|_| etc::hosts(c, false, None, "", "")),
                    std::fs::read_to_string(dir.join("resolv.conf"))
                        .unwrap_or_else(|_| etc::resolv_conf(c, false, &host_resolv)),
                )
            }
            None => (
                etc::hosts(c, host_network, own_ip, &link_hosts, &host_hosts),
                if embedded_dns {
                    etc::resolv_conf_internal(c, &host_resolv)
                } else {
                    etc::resolv_conf(c, host_network, &host_resolv)
                },
            ),
        };
        std::fs::write(&etc_hosts, hosts)?;
        std::fs::write(&etc_resolv, resolv)?;
        if !c.config.working_dir.is_empty() {
            crate::fsutil::mkdir_in_root(&rootfs, Path::new(&c.config.working_dir), 0, 0).map_err(
                |e| {
                    Error::invalid(format!(
                        "cannot create working directory {}: {e}",
                        c.config.working_dir
                    ))
                },
            )?;
        }
        let network = match (&joins.net, c.host_config.network_mode.as_str()) {
            (Some(p), _) => NetworkNamespace::Path(p.clone()),
            (None, "host") => NetworkNamespace::Host,
            _ if !c.networks.sandbox_key.is_empty() => {
                NetworkNamespace::Path(PathBuf::from(&c.networks.sandbox_key))
            }
            _ => NetworkNamespace::New,
        };
        let ns_mode = |mode: &str, join: &Option<PathBuf>| match (join, mode) {
            (Some(p), _) => NamespaceMode::Path(p.clone()),
            (None, "host") => NamespaceMode::Host,
            _ => NamespaceMode::Private,
        };
        let init = if c.host_config.init.unwrap_or(false) {
            Some(self.cfg.init_path.clone().ok_or_else(|| {
                Error::invalid("--init: no init binary is configured (install tini, or set \"init-path\" in daemon.json)")
            })?)
        } else {
            None
        };
        let cgroup_parent = if c.host_config.resources.cgroup_parent.is_empty() {
            self.cfg.cgroup_parent.clone()
        } else {
            c.host_config.resources.cgroup_parent.clone()
        };
        let mut args = vec![c.path.clone()];
        args.extend(c.args.iter().cloned());
        let with_links;
        let config = if link_env.is_empty() {
            &c.config
        } else {
            let mut cfg = c.config.clone();
            cfg.env.extend(link_env);
            with_links = cfg;
            &with_links
        };
        let req = SpecRequest {
            id: &c.id,
            config,
            host: &c.host_config,
            args,
            rootfs: rootfs.clone(),
            hostname,
            etc_files: EtcFiles {
                hostname: Some(etc_hostname),
                hosts: Some(etc_hosts),
                resolv_conf: Some(etc_resolv),
            },
            extra_mounts: self.oci_mounts(c)?,
            network,
            ipc: ns_mode(&c.host_config.ipc_mode, &joins.ipc),
            pid: ns_mode(&c.host_config.pid_mode, &joins.pid),
            uts: ns_mode(&c.host_config.uts_mode, &None),
            cgroups_path: format!("/{}/{}", cgroup_parent.trim_matches('/'), c.id),
            init,
            shm_path: None,
        };
        let mut spec =
            berth_runtime::spec::build_spec(&req).map_err(|e| Error::invalid(e.to_string()))?;
        let runtime = self.runtimes.get(&c.runtime)?;
        if runtime.name == "crun" {
            self.attach_compiled_seccomp(&mut spec)?;
        }
        let bundle = self.bundle_dir(&c.id);
        std::fs::create_dir_all(&bundle)?;
        let _ = std::fs::remove_file(bundle.join(EXIT_FILE));
        let json = serde_json::to_vec(&spec)
            .map_err(|e| Error::internal(format!("encoding OCI spec: {e}")))?;
        std::fs::write(bundle.join("config.json"), json)?;
        let opts = &c.host_config.log_config.options;
        let daemon_opts = &self.cfg.log_opts;
        let opt = |k: &str| opts.get(k).or_else(|| daemon_opts.get(k)).cloned();
        let log_max_size = match opt("max-size") {
            Some(s) if s == "-1" => 0,
            Some(s) => berth_shim::logfile::parse_size(&s)
                .ok_or_else(|| Error::invalid(format!("invalid value for max-size: {s}")))?,
            None => berth_shim::logfile::DEFAULT_MAX_SIZE,
        };
        let log_max_files = match opt("max-file") {
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| Error::invalid(format!("invalid value for max-file: {s}")))?,
            None => berth_shim::logfile::DEFAULT_MAX_FILES,
        };
        let options = ShimOptions {
            id: c.id.clone(),
            bundle: bundle.clone(),
            socket: self.shim_socket(&c.id),
            runtime: runtime.path.clone(),
            runtime_root: runtime.root.clone(),
            tty: c.config.tty,
            stdin: c.config.open_stdin,
            wait_attach,
            log_driver: if c.log_path.is_empty() {
                "none".into()
            } else {
                "json-file".into()
            },
            log_path: PathBuf::from(&c.log_path),
            log_max_size,
            log_max_files,
            hide_cgroup2: runtime.hide_cgroup2.as_ref().map(|(m, _)| m.clone()),
        };
        Ok(Prepared { bundle, options })
    }

    /// Gives crun the container's seccomp program compiled in advance (once per distinct
    /// filter, then cached), so it does not compile it again for every container.
    pub(crate) fn attach_compiled_seccomp(&self, spec: &mut oci_spec::runtime::Spec) -> Result<()> {
        let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
            return Ok(());
        };
        let key = berth_core::Digest::of(
            &serde_json::to_vec(&seccomp).map_err(|e| Error::internal(e.to_string()))?,
        );
        let cached = self
            .seccomp_bpf
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let bpf = match cached {
            Some(b) => b,
            None => {
                let raw = berth_runtime::seccomp_bpf::compile(&seccomp)
                    .map_err(|e| Error::invalid(e.to_string()))?;
                let b = std::sync::Arc::new(base64::engine::general_purpose::STANDARD.encode(raw));
                self.seccomp_bpf
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, b.clone());
                b
            }
        };
        let mut annotations = spec.annotations().clone().unwrap_or_default();
        annotations.insert(
            berth_runtime::seccomp_bpf::CRUN_BPF_ANNOTATION.to_string(),
            (*bpf).clone(),
        );
        spec.set_annotations(Some(annotations));
        Ok(())
    }

    /// Runs the shim and reads its one-line answer: the init pid or the runtime's error.
    async fn spawn_shim(&self, p: &Prepared) -> std::result::Result<i32, String> {
        let mut cmd = tokio::process::Command::new(&self.cfg.shim_path);
        cmd.args(p.options.to_args())
            .current_dir(&p.bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting shim {}: {e}", self.cfg.shim_path.display()))?;
        let stdout = child.stdout.take().ok_or("shim has no stdout")?;
        // Reap the shim whenever it ends, so it never lingers as a zombie.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = match tokio::time::timeout(START_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(l))) => l,
            Ok(Ok(None)) => return Err("shim exited without reporting".to_string()),
            Ok(Err(e)) => return Err(format!("reading shim answer: {e}")),
            Err(_) => return Err("timed out waiting for the container to start".to_string()),
        };
        match serde_json::from_str::<StartResult>(&line) {
            Ok(StartResult::Started { pid }) => Ok(pid),
            Ok(StartResult::Failed { message }) => Err(message),
            Err(e) => Err(format!("bad shim answer {line:?}: {e}")),
        }
    }
}

struct Joins {
    /// The container whose network namespace (and /etc files) this one shares.
    net_container: Option<String>,
    net: Option<PathBuf>,
    ipc: Option<PathBuf>,
    pid: Option<PathBuf>,
}

/// Rewrites the runtime's "cannot execute" errors in the words runc and Docker use, which
/// clients match on (`exec: "x": executable file not found in $PATH` → exit 127, ...).
pub fn normalize_runtime_error(message: &str, argv0: &str, rootfs: &Path) -> String {
    let lower = message.to_ascii_lowercase();
    let what = if lower.contains("executable file") && lower.contains("not found") {
        "executable file not found in $PATH".to_string()
    } else if lower.contains("open executable")
        || lower.contains("exec ")
        || lower.contains("execv")
    {
        if lower.contains("no such file or directory") {
            "no such file or directory".to_string()
        } else if lower.contains("permission denied") || lower.contains("operation not permitted") {
            let target = if argv0.starts_with('/') {
                crate::fsutil::secure_join(rootfs, Path::new(argv0)).ok()
            } else {
                None
            };
            if target.is_some_and(|t| t.is_dir()) {
                "is a directory".to_string()
            } else {
                "permission denied".to_string()
            }
        } else if lower.contains("exec format error") {
            "exec format error".to_string()
        } else {
            return message.to_string();
        }
    } else {
        return message.to_string();
    };
    format!("unable to start container process: exec: \"{argv0}\": {what}")
}

/// Docker's mapping of start errors to exit codes: 127 when the command is not found,
/// 126 when it cannot be invoked, 128 otherwise.
pub fn classify_start_error(message: &str) -> (ErrorKind, i64) {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("not found")
    {
        (ErrorKind::InvalidArgument, 127)
    } else if m.contains("permission denied")
        || m.contains("exec format error")
        || m.contains("is a directory")
    {
        (ErrorKind::InvalidArgument, 126)
    } else {
        (ErrorKind::Internal, 128)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crun_errors_read_like_runc_and_map_to_dockers_codes() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        let m = normalize_runtime_error(
            "executable file `nosuch` not found in $PATH: No such file or directory",
            "nosuch",
            root.path(),
        );
        assert_eq!(m, "unable to start container process: exec: \"nosuch\": executable file not found in $PATH");
        assert_eq!(classify_start_error(&m).1, 127);
        let m = normalize_runtime_error(
            "open executable: Permission denied",
            "/etc/passwd",
            root.path(),
        );
        assert!(m.ends_with("exec: \"/etc/passwd\": permission denied"));
        assert_eq!(classify_start_error(&m).1, 126);
        let m = normalize_runtime_error(
            "open executable: Operation not permitted",
            "/etc",
            root.path(),
        );
        assert!(m.ends_with("exec: \"/etc\": is a directory"));
        assert_eq!(classify_start_error(&m).1, 126);
        assert_eq!(
            normalize_runtime_error("cgroup trouble", "x", root.path()),
            "cgroup trouble"
        );
    }
}
