//! `docker exec`: exec instances live in memory (as Docker's do); the container's shim
//! starts them through the runtime and reports their exits.

use super::attach::{pump, AttachStreams, PumpConfig, DEFAULT_DETACH_KEYS};
use super::{shim_client, ContainerEntry};
use crate::Engine;
use berth_core::container::Status;
use berth_core::event::EventType;
use berth_core::{id, Error, Result};
use berth_shim::proto::{Event, ExecRequest, ExitInfo, Frame, Request};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// What `docker exec` asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecConfig {
    pub user: String,
    pub privileged: bool,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub console_size: Option<[u16; 2]>,
}

/// One exec instance as inspect shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
}

#[derive(Default)]
pub struct ExecIndex {
    inner: RwLock<HashMap<String, ExecInstance>>,
}

impl ExecIndex {
    fn insert(&self, e: ExecInstance) {
        self.inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(e.id.clone(), e);
    }

    pub fn get(&self, id: &str) -> Option<ExecInstance> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut ExecInstance)) {
        if let Some(e) = self
            .inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
        {
            f(e);
        }
    }

    /// Records an exit; true the first time.
    pub fn record_exit(&self, id: &str, exit: ExitInfo) -> bool {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        match inner.get_mut(id) {
            Some(e) if e.exit_code.is_none() => {
                e.running = false;
                e.exit_code = Some(exit.code as i64);
                true
            }
            _ => false,
        }
    }

    /// The container stopped: its running execs are gone too.
    pub fn container_stopped(&self, container_id: &str) {
        for e in self
            .inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .values_mut()
        {
            if e.container_id == container_id && e.running {
                e.running = false;
                e.exit_code.get_or_insert(137);
            }
        }
    }

    pub fn container_removed(&self, container_id: &str) {
        self.inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| e.container_id != container_id);
    }
}

impl Engine {
    /// `POST /containers/{id}/exec`.
    pub fn create_exec(&self, container: &str, config: ExecConfig) -> Result<String> {
        let entry = self.container(container)?;
        let (status, cid) = entry.read(|c| (c.state.status, c.id.clone()));
        match status {
            Status::Running => {}
            Status::Paused => {
                return Err(Error::conflict(format!(
                    "Container {cid} is paused, unpause the container before exec"
                )))
            }
            Status::Restarting => {
                return Err(Error::conflict(format!(
                    "Container {cid} is restarting, wait until the container is running"
                )))
            }
            _ => return Err(Error::conflict(format!("Container {cid} is not running"))),
        }
        if config.cmd.is_empty() {
            return Err(Error::invalid("No exec command specified"));
        }
        if !config.detach_keys.is_empty() {
            super::attach::parse_detach_keys(&config.detach_keys)?;
        }
        let id = id::new_id();
        self.execs.insert(ExecInstance {
            id: id.clone(),
            container_id: cid.clone(),
            config: config.clone(),
            ..Default::default()
        });
        entry.update(|c| {
            c.exec_ids.push(id.clone());
            if c.exec_ids.len() > 64 {
                c.exec_ids.remove(0);
            }
        });
        let name = format!("exec_create: {}", config.cmd.join(" "));
        self.container_event(&entry, &name, &[("execID", id.clone())]);
        Ok(id)
    }

    pub fn inspect_exec(&self, id: &str) -> Result<ExecInstance> {
        self.execs
            .get(id)
            .ok_or_else(|| Error::not_found(format!("No such exec instance: {id}")))
    }

    /// Starts an exec. Detached: returns `None` once it runs. Attached: the streams.
    /// A failure to start is recorded as the exec's exit code (126/127), as Docker does.
    pub async fn start_exec(
        self: &Arc<Self>,
        id: &str,
        detach: bool,
        tty_override: Option<bool>,
    ) -> Result<Option<AttachStreams>> {
        let ex = self.inspect_exec(id)?;
        if ex.started {
            return Err(Error::conflict(format!(
                "Error: Exec command {id} is already running"
            )));
        }
        let entry = self.container(&ex.container_id)?;
        let (status, cid) = entry.read(|c| (c.state.status, c.id.clone()));
        if status != Status::Running {
            return Err(Error::conflict(format!("Container {cid} is not running")));
        }
        self.execs.update(id, |e| e.started = true);
        let mut cfg = ex.config.clone();
        if let Some(t) = tty_override {
            cfg.tty = t;
        }
        let bundle = self.bundle_dir(&cid);
        let process_path = bundle.join(format!("exec-{id}.json"));
        {
            let (bundle, process_path, cfg) = (bundle.clone(), process_path.clone(), cfg.clone());
            let written = Self::blocking(move || write_process(&bundle, &process_path, &cfg)).await;
            if let Err(e) = written {
                self.exec_failed(&entry, id, &e.to_string());
                return Err(e);
            }
        }
        let sock = self.shim_socket(&cid);
        let (mut r, mut w) = match shim_client::connect(&sock).await {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_file(&process_path);
                self.exec_failed(&entry, id, &format!("container {cid} is not running: {e}"));
                return Err(Error::conflict(format!("Container {cid} is not running")));
            }
        };
        let want_stdin = cfg.attach_stdin && !detach;
        let req = ExecRequest {
            key: id.to_string(),
            process_path: process_path.display().to_string(),
            tty: cfg.tty,
            stdin: want_stdin,
            wait_attach: !detach,
        };
        let sent = w.send(&Request::Exec(req)).await;
        let answer = match sent {
            Ok(()) => loop {
                match r.next().await {
                    Ok(Some(Frame::Event(Event::ExecStarted { pid, .. }))) => break Ok(pid),
                    Ok(Some(Frame::Event(Event::ExecFailed { message, .. }))) => {
                        break Err(message)
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => break Err("the container's shim went away".to_string()),
                    Err(e) => break Err(e.to_string()),
                }
            },
            Err(e) => Err(e.to_string()),
        };
        let _ = std::fs::remove_file(&process_path);
        let pid = match answer {
            Ok(pid) => pid,
            Err(message) => {
                let rootfs = self
                    .storage
                    .root()
                    .join("containers")
                    .join(entry.read(|c| c.layer_key.clone()))
                    .join("merged");
                let argv0 = cfg.cmd.first().cloned().unwrap_or_default();
                let message = super::start::normalize_runtime_error(&message, &argv0, &rootfs);
                self.exec_failed(&entry, id, &message);
                let (kind, _) = super::start::classify_start_error(&message);
                return Err(Error::new(
                    kind,
                    format!("OCI runtime exec failed: {message}: unknown"),
                ));
            }
        };
        self.execs.update(id, |e| {
            e.running = true;
            e.pid = pid as i64;
        });
        let name = format!("exec_start: {}", cfg.cmd.join(" "));
        self.container_event(&entry, &name, &[("execID", id.to_string())]);
        if detach {
            return Ok(None);
        }
        if w.send(&Request::Attach {
            key: id.to_string(),
        })
        .await
        .is_err()
        {
            return Err(Error::internal("attaching to exec output"));
        }
        let detach_keys = if cfg.tty && cfg.attach_stdin {
            Some(if cfg.detach_keys.is_empty() {
                DEFAULT_DETACH_KEYS.to_vec()
            } else {
                super::attach::parse_detach_keys(&cfg.detach_keys)?
            })
        } else {
            None
        };
        let (out_tx, out_rx) = mpsc::channel(64);
        let (in_tx, in_rx) = if want_stdin {
            let (t, r) = mpsc::channel(64);
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        let pump_cfg = PumpConfig {
            key: id.to_string(),
            want_stdout: cfg.attach_stdout,
            want_stderr: cfg.attach_stderr,
            tty: cfg.tty,
            stdin_once: true,
            detach: detach_keys,
        };
        let engine = self.clone();
        let exec_id = id.to_string();
        tokio::spawn(async move {
            let e2 = engine.clone();
            let entry2 = entry.clone();
            let id2 = exec_id.clone();
            pump(r, w, pump_cfg, out_tx, in_rx, move |exit| {
                if e2.execs.record_exit(&id2, exit) {
                    e2.exec_died(&entry2, &id2, exit.code);
                }
            })
            .await;
        });
        Ok(Some(AttachStreams {
            tty: cfg.tty,
            output: out_rx,
            input: in_tx,
        }))
    }

    fn exec_failed(&self, entry: &ContainerEntry, id: &str, message: &str) {
        let (_, code) = super::start::classify_start_error(message);
        self.execs.update(id, |e| {
            e.running = false;
            e.exit_code = Some(code);
        });
        self.exec_died(entry, id, code as i32);
    }

    pub(crate) fn exec_died(&self, entry: &ContainerEntry, id: &str, code: i32) {
        let mut attrs = BTreeMap::new();
        attrs.insert("execID".to_string(), id.to_string());
        attrs.insert("exitCode".to_string(), code.to_string());
        let (cid, name, image) =
            entry.read(|c| (c.id.clone(), c.name.clone(), c.config.image.clone()));
        attrs.insert("name".to_string(), name);
        attrs.insert("image".to_string(), image);
        self.events
            .publish(EventType::Container, "exec_die", &cid, attrs);
    }

    /// `POST /exec/{id}/resize`.
    pub async fn resize_exec(&self, id: &str, height: u16, width: u16) -> Result<()> {
        // As Docker: a resize right after the start request waits (up to 10 s) for the
        // process, since the start completes after the client's connection is hijacked.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut ex = self.inspect_exec(id)?;
        while !ex.running && ex.exit_code.is_none() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            ex = self.inspect_exec(id)?;
        }
        if !ex.running {
            return Err(Error::conflict(format!("Exec {id} is not running")));
        }
        let sock = self.shim_socket(&ex.container_id);
        shim_client::command(
            &sock,
            &Request::Resize {
                key: id.to_string(),
                height,
                width,
            },
        )
        .await
        .map_err(|e| Error::internal(format!("resizing exec tty: {e}")))
    }
}

/// Builds the OCI process for an exec from the container's own spec and writes it.
pub(crate) fn write_process(
    bundle: &std::path::Path,
    path: &std::path::Path,
    cfg: &ExecConfig,
) -> Result<()> {
    std::fs::write(path, process_json(bundle, cfg)?)?;
    Ok(())
}

/// The OCI process for an exec, as `runc exec --process` reads it, built from the
/// container's own spec (read from its bundle).
pub(crate) fn process_json(bundle: &std::path::Path, cfg: &ExecConfig) -> Result<Vec<u8>> {
    let spec_bytes = std::fs::read(bundle.join("config.json"))
        .map_err(|e| Error::conflict(format!("container is not running: {e}")))?;
    let spec: oci_spec::runtime::Spec = serde_json::from_slice(&spec_bytes)
        .map_err(|e| Error::internal(format!("reading container spec: {e}")))?;
    let rootfs = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let req = berth_runtime::spec::ExecRequest {
        args: cfg.cmd.clone(),
        env: cfg.env.clone(),
        user: cfg.user.clone(),
        working_dir: cfg.working_dir.clone(),
        tty: cfg.tty,
        privileged: cfg.privileged,
        rootfs: &rootfs,
    };
    let process = berth_runtime::spec::build_exec_process(&spec, &req)
        .map_err(|e| Error::invalid(e.to_string()))?;
    serde_json::to_vec(&process).map_err(|e| Error::internal(e.to_string()))
}
