//! `stop`, `kill`, `restart`, `pause`, `unpause`.

use super::{shim_client, ContainerEntry};
use crate::Engine;
use berth_core::container::Status;
use berth_core::{signal, Error, Result};
use berth_shim::proto::{Request, INIT};
use std::sync::Arc;
use std::time::Duration;

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;
const DEFAULT_STOP_TIMEOUT: i64 = 10;

impl Engine {
    /// Sends a signal to the container's init through its shim.
    async fn signal(&self, entry: &ContainerEntry, sig: i32) -> Result<()> {
        let sock = self.shim_socket(&entry.id());
        shim_client::command(
            &sock,
            &Request::Signal {
                key: INIT.to_string(),
                signal: sig,
            },
        )
        .await
        .map_err(|e| Error::conflict(format!("cannot signal container {}: {e}", entry.id())))
    }

    /// Waits until the container has exited (its exit counted), at most `timeout`.
    async fn wait_stopped(&self, entry: &ContainerEntry, timeout: Option<Duration>) -> bool {
        let mut rx = entry.lifecycle();
        let fut = async {
            loop {
                if !super::is_running(rx.borrow_and_update().status) {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return true;
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, fut).await.unwrap_or(false),
            None => fut.await,
        }
    }

    /// `docker stop`: the stop signal, then SIGKILL after the timeout. Not running: 304.
    pub async fn stop_container(
        self: &Arc<Self>,
        name: &str,
        timeout: Option<i64>,
        sig: Option<String>,
    ) -> Result<()> {
        let entry = self.container(name)?;
        self.stop_entry(&entry, timeout, sig).await
    }

    pub(crate) async fn stop_entry(
        self: &Arc<Self>,
        entry: &Arc<ContainerEntry>,
        timeout: Option<i64>,
        sig: Option<String>,
    ) -> Result<()> {
        let (status, cfg_sig, cfg_timeout) = entry.read(|c| {
            (
                c.state.status,
                c.config.stop_signal.clone(),
                c.config.stop_timeout,
            )
        });
        if status == Status::Restarting {
            // Cancel the pending restart.
            entry.update(|c| {
                c.has_been_manually_stopped = true;
                c.state.status = Status::Exited;
            });
            self.persist(entry)?;
            return Ok(());
        }
        if !super::is_running(status) {
            return Err(Error::not_modified());
        }
        let sig = match sig.or(cfg_sig) {
            Some(s) => signal::parse(&s)?,
            None => SIGTERM,
        };
        let timeout = timeout.or(cfg_timeout).unwrap_or(DEFAULT_STOP_TIMEOUT);
        entry.update(|c| c.has_been_manually_stopped = true);
        self.persist(entry)?;
        if sig != SIGKILL && self.signal(entry, sig).await.is_ok() {
            if status == Status::Paused {
                let _ = self.resume_runtime(entry).await;
            }
            let wait = if timeout < 0 {
                None
            } else {
                Some(Duration::from_secs(timeout as u64))
            };
            if self.wait_stopped(entry, wait).await {
                self.container_event(entry, "stop", &[]);
                return Ok(());
            }
        }
        let _ = self.signal(entry, SIGKILL).await;
        self.container_event(entry, "kill", &[("signal", SIGKILL.to_string())]);
        if status == Status::Paused {
            let _ = self.resume_runtime(entry).await;
        }
        self.wait_stopped(entry, None).await;
        self.container_event(entry, "stop", &[]);
        Ok(())
    }

    /// `docker kill -s SIG`.
    pub async fn kill_container(self: &Arc<Self>, name: &str, sig: Option<String>) -> Result<()> {
        let entry = self.container(name)?;
        let sig = match sig.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => signal::parse(s)?,
            None => SIGKILL,
        };
        let (status, cname, id) = entry.read(|c| (c.state.status, c.name.clone(), c.id.clone()));
        if !super::is_running(status) || status == Status::Restarting {
            return Err(Error::conflict(format!(
                "Cannot kill container: {cname}: Container {id} is not running"
            )));
        }
        if sig == SIGKILL || sig == SIGTERM || sig == 2 {
            entry.update(|c| c.has_been_manually_stopped = true);
            self.persist(&entry)?;
        }
        self.signal(&entry, sig).await?;
        self.container_event(&entry, "kill", &[("signal", sig.to_string())]);
        if status == Status::Paused && sig == SIGKILL {
            let _ = self.resume_runtime(&entry).await;
        }
        if sig == SIGKILL {
            self.wait_stopped(&entry, Some(Duration::from_secs(10)))
                .await;
        }
        Ok(())
    }

    /// `docker restart`: stop (if running), then start.
    pub async fn restart_container(
        self: &Arc<Self>,
        name: &str,
        timeout: Option<i64>,
        sig: Option<String>,
    ) -> Result<()> {
        let entry = self.container(name)?;
        match self.stop_entry(&entry, timeout, sig).await {
            Ok(()) => {}
            Err(e) if e.kind() == berth_core::ErrorKind::NotModified => {}
            Err(e) => return Err(e),
        }
        // The old shim must have cleaned the runtime state before the id is reused.
        let sock = self.shim_socket(&entry.id());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while sock.exists() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _op = entry.op.lock().await;
        self.start_locked(&entry).await?;
        self.container_event(&entry, "restart", &[]);
        Ok(())
    }

    /// `docker pause` (the freezer, through the runtime).
    pub async fn pause_container(self: &Arc<Self>, name: &str) -> Result<()> {
        let entry = self.container(name)?;
        let _op = entry.op.lock().await;
        let (status, id, runtime) =
            entry.read(|c| (c.state.status, c.id.clone(), c.runtime.clone()));
        match status {
            Status::Running => {}
            Status::Paused => {
                return Err(Error::conflict(format!("Container {id} is already paused")))
            }
            _ => return Err(Error::conflict(format!("Container {id} is not running"))),
        }
        let rt = self.runtimes.get(&runtime)?.clone();
        let rid = id.clone();
        Self::blocking(move || rt.pause(&rid).map_err(|e| Error::internal(e.to_string()))).await?;
        entry.update(|c| c.state.status = Status::Paused);
        self.stop_health(&entry);
        self.persist(&entry)?;
        self.container_event(&entry, "pause", &[]);
        Ok(())
    }

    /// `docker unpause`.
    pub async fn unpause_container(self: &Arc<Self>, name: &str) -> Result<()> {
        let entry = self.container(name)?;
        let _op = entry.op.lock().await;
        let (status, id) = entry.read(|c| (c.state.status, c.id.clone()));
        if status != Status::Paused {
            return Err(Error::conflict(format!("Container {id} is not paused")));
        }
        self.resume_runtime(&entry).await?;
        entry.update(|c| c.state.status = Status::Running);
        self.persist(&entry)?;
        self.container_event(&entry, "unpause", &[]);
        self.resume_health(&entry);
        Ok(())
    }

    async fn resume_runtime(&self, entry: &ContainerEntry) -> Result<()> {
        let (id, runtime) = entry.read(|c| (c.id.clone(), c.runtime.clone()));
        let rt = self.runtimes.get(&runtime)?.clone();
        Self::blocking(move || rt.resume(&id).map_err(|e| Error::internal(e.to_string()))).await
    }
}
