//! Following a running container: the shim's `Watch` stream tells when processes end;
//! the exit is recorded, the rootfs unmounted, and `--rm` or the restart policy applied.

use super::shim_client::{ShimReader, ShimWriter};
use super::ContainerEntry;
use crate::Engine;
use berth_core::container::{RestartPolicyName, Status};
use berth_shim::launch::EXIT_FILE;
use berth_shim::proto::{Event, ExitInfo, Frame, Request, INIT};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// Restart delays start here and double up to [`MAX_BACKOFF`], as Docker's do.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A container that ran this long resets its backoff.
const RESET_AFTER: Duration = Duration::from_secs(10);

impl Engine {
    /// Follows a container's shim until its init exits, then handles the exit. Without a
    /// connection (the shim ended before we reached it), the exit file tells what happened.
    pub(crate) fn spawn_monitor(
        self: &Arc<Self>,
        entry: Arc<ContainerEntry>,
        conn: Option<(ShimReader, ShimWriter)>,
    ) {
        let engine = self.clone();
        tokio::spawn(async move {
            let exit = match conn {
                Some((mut r, mut w)) => engine.watch(&entry, &mut r, &mut w).await,
                None => None,
            };
            let (exit, shim_gone) = match exit {
                Some(e) => (e, false),
                None => (engine.exit_from_file(&entry), true),
            };
            engine.handle_exit(entry, exit, shim_gone).await;
        });
    }

    async fn watch(
        &self,
        entry: &ContainerEntry,
        r: &mut ShimReader,
        w: &mut ShimWriter,
    ) -> Option<ExitInfo> {
        if w.send(&Request::Watch).await.is_err() {
            return None;
        }
        loop {
            match r.next().await {
                Ok(Some(Frame::Event(Event::Oom))) => self.note_oom(entry),
                Ok(Some(Frame::Event(Event::Exited { key, exit }))) => {
                    if key == INIT {
                        return Some(exit);
                    }
                    if self.execs.record_exit(&key, exit) {
                        self.exec_died(entry, &key, exit.code);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The kernel reported an OOM in the container's memory cgroup: `State.OOMKilled` and
    /// Docker's `oom` event.
    fn note_oom(&self, entry: &ContainerEntry) {
        entry.update(|c| c.state.oom_killed = true);
        let _ = self.persist(entry);
        self.container_event(entry, "oom", &[]);
    }

    /// The exit status the shim left in the bundle; 255 when it left none (it died).
    fn exit_from_file(&self, entry: &ContainerEntry) -> ExitInfo {
        let id = entry.id();
        let path = self.bundle_dir(&id).join(EXIT_FILE);
        std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<ExitInfo>(&b).ok())
            .unwrap_or(ExitInfo {
                code: 255,
                signal: None,
                finished_at_ns: berth_shim::logfile::now_ns(),
                oom_killed: false,
            })
    }

    /// Records an exit and applies `--rm` or the restart policy.
    pub(crate) async fn handle_exit(
        self: Arc<Self>,
        entry: Arc<ContainerEntry>,
        exit: ExitInfo,
        shim_gone: bool,
    ) {
        let op = entry.op.lock().await;
        if !entry.read(|c| c.state.is_running() || c.state.status == Status::Restarting) {
            return;
        }
        let finished = DateTime::<Utc>::from_timestamp_nanos(exit.finished_at_ns);
        // An OOM kill the daemon did not hear of as it happened (it was down) still counts.
        if exit.oom_killed && !entry.read(|c| c.state.oom_killed) {
            self.note_oom(&entry);
        }
        self.stop_health(&entry);
        let (auto_remove, policy, manually_stopped, started_at, restart_count, id, key, runtime) =
            entry.read(|c| {
                (
                    c.host_config.auto_remove,
                    c.host_config.restart_policy.clone(),
                    c.has_been_manually_stopped,
                    c.state.started_at,
                    c.restart_count,
                    c.id.clone(),
                    c.layer_key.clone(),
                    c.runtime.clone(),
                )
            });
        entry.update(|c| {
            c.state.status = Status::Exited;
            c.state.pid = 0;
            c.state.exit_code = exit.code as i64;
            c.state.finished_at = Some(finished);
        });
        self.network_down(&entry).await;
        let _ = self.persist(&entry);
        self.container_event(&entry, "die", &[("exitCode", exit.code.to_string())]);
        let snapshot = entry.snapshot();
        self.volume_mount_events(&snapshot, "unmount");
        self.release_volume_sources(&snapshot);
        self.execs.container_stopped(&id);
        if shim_gone {
            // Nobody ran the runtime's cleanup; do it so the id can be used again.
            if let Ok(rt) = self.runtimes.get(&runtime) {
                let rt = rt.clone();
                let rid = id.clone();
                let _ = Self::blocking(move || {
                    let _ = rt.delete(&rid, true);
                    Ok(())
                })
                .await;
            }
        }
        if !auto_remove {
            let storage = self.storage.clone();
            let k = key.clone();
            let _ = Self::blocking(move || Ok(storage.unmount_rw(&k)?)).await;
        }
        entry.note_exit(exit.code as i64, "");
        if auto_remove {
            drop(op);
            let _ = self
                .remove_container(
                    &id,
                    super::remove::RemoveOptions {
                        force: true,
                        volumes: true,
                        link: false,
                        lazy: true,
                    },
                )
                .await;
            return;
        }
        let ran = started_at
            .map(|s| (finished - s).to_std().unwrap_or_default())
            .unwrap_or_default();
        let restart = !manually_stopped
            && match policy.name {
                RestartPolicyName::No => false,
                RestartPolicyName::Always | RestartPolicyName::UnlessStopped => true,
                RestartPolicyName::OnFailure => {
                    exit.code != 0
                        && (policy.maximum_retry_count == 0
                            || restart_count < policy.maximum_retry_count)
                }
            };
        if !restart {
            entry.backoff_reset();
            return;
        }
        let delay = entry.next_backoff(ran >= RESET_AFTER);
        entry.update(|c| c.state.status = Status::Restarting);
        let _ = self.persist(&entry);
        drop(op);
        let engine = self.clone();
        tokio::spawn(async move {
            // The previous shim must be gone (runtime state deleted) before the id is reused.
            let sock = engine.shim_socket(&id);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while sock.exists() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(delay).await;
            let _op = entry.op.lock().await;
            if entry.read(|c| c.state.status != Status::Restarting || c.has_been_manually_stopped) {
                return;
            }
            entry.update(|c| {
                c.restart_count += 1;
                c.state.status = Status::Exited;
            });
            match engine.start_locked(&entry).await {
                Ok(()) => engine.container_event(&entry, "restart", &[]),
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "restart failed");
                    let _ = engine.persist(&entry);
                }
            }
        });
    }
}

impl ContainerEntry {
    fn next_backoff(&self, reset: bool) -> Duration {
        let mut b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        if reset || b.is_zero() {
            *b = FIRST_BACKOFF;
        } else {
            *b = (*b * 2).min(MAX_BACKOFF);
        }
        *b
    }

    fn backoff_reset(&self) {
        *self.backoff.lock().unwrap_or_else(|p| p.into_inner()) = Duration::ZERO;
    }
}
