//! `RUN` in a working container: an OCI bundle over its mounted root (Docker's default
//! capabilities, seccomp profile, namespaces and managed `/etc` files), run in the
//! foreground by the OCI runtime (`crun run`), stdout and stderr piped back as they come.
//!
//! No shim and no container record: the command lives exactly as long as this call. On
//! cancellation the runtime kills every process of the container and deletes it.

use super::backend::{bundle_dir, EngineBuilder};
use crate::containers::{etc, ContainerEntry};
use crate::Engine;
use berth_builder::{
    BuildError, CancellationToken, OutputSender, OutputStream, RunRequest, WorkingContainer,
};
use berth_core::container::{Container, ContainerConfig, HostConfig};
use berth_core::Error;
use berth_runtime::spec::{EtcFiles, NamespaceMode, NetworkNamespace, SpecRequest};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Paths the runtime mounts over, as seen inside the container.
fn mount_destinations(spec: &oci_spec::runtime::Spec) -> Vec<PathBuf> {
    spec.mounts()
        .as_ref()
        .map(|m| m.iter().map(|m| m.destination().clone()).collect())
        .unwrap_or_default()
}

/// The namespace a `RUN` joins on a bridge network, and what its `/etc` files need.
#[derive(Clone)]
struct BuildNetwork {
    sandbox: PathBuf,
    ip: Option<String>,
    embedded_dns: bool,
}

/// `--network` of a build: Docker's default for `RUN` is the default bridge.
fn build_network_mode(requested: &str) -> String {
    match requested {
        "" | "default" => "bridge".to_string(),
        other => other.to_string(),
    }
}

/// How long a cancelled `RUN` keeps trying to kill its container.
const KILL_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(10);

async fn pump(mut r: impl AsyncRead + Unpin, stream: OutputStream, out: OutputSender) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = out.send((stream, Bytes::copy_from_slice(&buf[..n])));
            }
        }
    }
}

/// Error lines the runtime logged (`--log-format json`), if any.
fn runtime_errors(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let msgs: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect();
    (!msgs.is_empty()).then(|| msgs.join("; "))
}

impl EngineBuilder {
    /// Writes the bundle of a `RUN`; returns its directory and the mount points the
    /// runtime will have to create in the root.
    fn prepare_run(
        engine: &Engine,
        wc: &WorkingContainer,
        req: &RunRequest,
        net: Option<&BuildNetwork>,
    ) -> berth_core::Result<(PathBuf, Vec<PathBuf>)> {
        let bundle = bundle_dir(engine, &wc.id);
        std::fs::create_dir_all(&bundle)?;
        let hostname = berth_core::id::short(&wc.id).to_string();
        let network_mode = build_network_mode(&req.network_mode);
        let host_network = network_mode == "host";
        let c = Container {
            id: wc.id.clone(),
            config: ContainerConfig {
                hostname: hostname.clone(),
                user: req.user.clone(),
                env: req.env.clone(),
                working_dir: req.working_dir.clone(),
                open_stdin: req.stdin.is_some(),
                ..Default::default()
            },
            host_config: HostConfig {
                network_mode: network_mode.clone(),
                extra_hosts: req.extra_hosts.clone(),
                shm_size: req.shm_size,
                ..Default::default()
            },
            ..Default::default()
        };
        let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let host_resolv = std::fs::read_to_string(&engine.cfg.resolv_conf).unwrap_or_default();
        let files = EtcFiles {
            hostname: Some(bundle.join("hostname")),
            hosts: Some(bundle.join("hosts")),
            resolv_conf: Some(bundle.join("resolv.conf")),
        };
        std::fs::write(bundle.join("hostname"), format!("{hostname}\n"))?;
        let own_ip = net.and_then(|n| n.ip.as_deref());
        std::fs::write(
            bundle.join("hosts"),
            etc::hosts(&c, host_network, own_ip, "", &host_hosts),
        )?;
        std::fs::write(
            bundle.join("resolv.conf"),
            if net.is_some_and(|n| n.embedded_dns) {
                etc::resolv_conf_internal(&c, &host_resolv)
            } else {
                etc::resolv_conf(&c, host_network, &host_resolv)
            },
        )?;
        if !req.working_dir.is_empty() {
            crate::fsutil::mkdir_in_root(&wc.rootfs, Path::new(&req.working_dir), 0, 0).map_err(
                |e| {
                    Error::invalid(format!(
                        "cannot create working directory {}: {e}",
                        req.working_dir
                    ))
                },
            )?;
        }
        let spec_req = SpecRequest {
            id: &wc.id,
            config: &c.config,
            host: &c.host_config,
            args: req.args.clone(),
            rootfs: wc.rootfs.clone(),
            hostname,
            etc_files: files,
            extra_mounts: Vec::new(),
            network: match net {
                _ if host_network => NetworkNamespace::Host,
                Some(n) => NetworkNamespace::Path(n.sandbox.clone()),
                None => NetworkNamespace::New,
            },
            ipc: NamespaceMode::Private,
            pid: NamespaceMode::Private,
            uts: NamespaceMode::Private,
            cgroups_path: format!("/{}/{}", engine.cfg.cgroup_parent.trim_matches('/'), wc.id),
            init: None,
            shm_path: None,
        };
        let mut spec = berth_runtime::spec::build_spec(&spec_req)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let runtime = engine.runtimes.get("")?;
        if runtime.name == "crun" {
            engine.attach_compiled_seccomp(&mut spec)?;
        }
        let missing = mount_destinations(&spec)
            .into_iter()
            .filter(|d| {
                crate::fsutil::secure_join(&wc.rootfs, d)
                    .map(|p| std::fs::symlink_metadata(p).is_err())
                    .unwrap_or(false)
            })
            .collect();
        let json = serde_json::to_vec(&spec)
            .map_err(|e| Error::internal(format!("encoding OCI spec: {e}")))?;
        std::fs::write(bundle.join("config.json"), json)?;
        Ok((bundle, missing))
    }

    /// A `RUN` on a network other than `none` and `host` gets its own namespace with an
    /// endpoint there, as a container does, for exactly as long as the command runs.
    async fn network_for_run(
        &self,
        wc: &WorkingContainer,
        req: &RunRequest,
    ) -> berth_core::Result<Option<(Arc<ContainerEntry>, BuildNetwork)>> {
        let mode = build_network_mode(&req.network_mode);
        if matches!(mode.as_str(), "none" | "host") {
            return Ok(None);
        }
        if mode.starts_with("container:") {
            return Err(Error::invalid(format!(
                "network mode {:?} is not supported for builds",
                req.network_mode
            )));
        }
        let name = format!("/build-{}", berth_core::id::short(&wc.id));
        let mut c = Container {
            id: wc.id.clone(),
            name: name.clone(),
            host_config: HostConfig {
                network_mode: mode,
                ..Default::default()
            },
            ..Default::default()
        };
        c.networks =
            self.engine
                .plan_networks(&name, &c.config, &mut c.host_config, BTreeMap::new())?;
        let entry = ContainerEntry::new(c);
        self.engine.network_up(&entry).await?;
        let nets = entry.read(|c| c.networks.clone());
        let endpoint = nets
            .attachments
            .iter()
            .find_map(|(_, a)| a.endpoint.clone());
        let net = BuildNetwork {
            sandbox: PathBuf::from(&nets.sandbox_key),
            ip: endpoint.as_ref().map(|e| e.ip.clone()),
            embedded_dns: endpoint.is_some_and(|e| !e.dns_names.is_empty()),
        };
        Ok(Some((entry, net)))
    }

    pub(crate) async fn run_in(
        &self,
        wc: &WorkingContainer,
        req: RunRequest,
        output: OutputSender,
        cancel: CancellationToken,
    ) -> berth_builder::Result<i64> {
        let net = self.network_for_run(wc, &req).await?;
        let result = self
            .run_in_namespace(wc, req, output, cancel, net.as_ref().map(|(_, n)| n))
            .await;
        if let Some((entry, _)) = net {
            self.engine.network_down(&entry).await;
        }
        result
    }

    async fn run_in_namespace(
        &self,
        wc: &WorkingContainer,
        req: RunRequest,
        output: OutputSender,
        cancel: CancellationToken,
        net: Option<&BuildNetwork>,
    ) -> berth_builder::Result<i64> {
        let engine = self.engine.clone();
        let (bundle, missing) = {
            let (wc, req, net) = (wc.clone(), req.clone(), net.cloned());
            Engine::blocking(move || Self::prepare_run(&engine, &wc, &req, net.as_ref())).await?
        };
        if let Some(state) = self.live().get_mut(&wc.id) {
            for m in missing {
                if !state.created_mountpoints.contains(&m) {
                    state.created_mountpoints.push(m);
                }
            }
        }
        let runtime = self.engine.runtimes.get("")?.clone();
        let log = bundle.join("runtime.log");
        let mut cmd = tokio::process::Command::from(runtime.command());
        cmd.arg("--log")
            .arg(&log)
            .arg("run")
            .arg("--bundle")
            .arg(&bundle)
            .arg(&wc.id)
            .current_dir(&bundle)
            .stdin(if req.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::from_display(format!("starting {}", runtime.name), e))?;
        if let (Some(data), Some(mut stdin)) = (req.stdin.clone(), child.stdin.take()) {
            tokio::spawn(async move {
                let _ = stdin.write_all(&data).await;
            });
        }
        let out = child
            .stdout
            .take()
            .map(|s| pump(s, OutputStream::Stdout, output.clone()));
        let err = child
            .stderr
            .take()
            .map(|s| pump(s, OutputStream::Stderr, output.clone()));
        drop(output);
        let pumps = async {
            if let Some(o) = out {
                o.await;
            }
        };
        let epumps = async {
            if let Some(e) = err {
                e.await;
            }
        };
        let waited = async {
            tokio::select! {
                s = child.wait() => return (s, false),
                _ = cancel.cancelled() => {}
            }
            // The runtime writes the container's state a moment after the command starts:
            // until then `kill` finds nothing, so it is tried again until it lands.
            let deadline = tokio::time::Instant::now() + KILL_RETRY_FOR;
            loop {
                let (rt, id) = (runtime.clone(), wc.id.clone());
                let killed = Engine::blocking(move || Ok(rt.kill(&id, libc::SIGKILL, true)))
                    .await
                    .map(|r| r.is_ok())
                    .unwrap_or(false);
                if killed || tokio::time::Instant::now() > deadline {
                    break;
                }
                tokio::select! {
                    s = child.wait() => return (s, true),
                    _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                }
            }
            (child.wait().await, true)
        };
        let ((status, cancelled), (), ()) = tokio::join!(waited, pumps, epumps);
        {
            let (rt, id) = (runtime.clone(), wc.id.clone());
            let _ = Engine::blocking(move || {
                let _ = rt.delete(&id, true);
                Ok(())
            })
            .await;
        }
        if cancelled {
            return Err(BuildError::Cancelled);
        }
        let status = status.map_err(|e| Error::from_display("waiting for the runtime", e))?;
        use std::os::unix::process::ExitStatusExt;
        let code = match (status.code(), status.signal()) {
            (Some(c), _) => i64::from(c),
            (None, Some(sig)) => 128 + i64::from(sig),
            _ => 1,
        };
        if code != 0 {
            if let Some(msg) = runtime_errors(&log) {
                let argv0 = req.args.first().cloned().unwrap_or_default();
                let msg =
                    crate::containers::start::normalize_runtime_error(&msg, &argv0, &wc.rootfs);
                return Err(BuildError::Backend(Error::invalid(format!(
                    "failed to create task for container: OCI runtime create failed: {msg}: unknown"
                ))));
            }
        }
        Ok(code)
    }
}
