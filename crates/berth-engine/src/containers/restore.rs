//! Daemon start: containers come back from the state database and are matched with what
//! still runs. Running containers keep running (their shims are found again); the exits
//! that happened while the daemon was away are recorded from the shims' exit files.

use super::{shim_client, ContainerEntry};
use crate::Engine;
use berth_core::container::{Container, RestartPolicyName, Status};
use berth_core::Result;
use std::collections::HashSet;
use std::sync::Arc;

impl Engine {
    pub(crate) async fn restore(self: &Arc<Self>) -> Result<()> {
        let mut live: HashSet<String> = HashSet::new();
        let mut to_start = Vec::new();
        let mut to_destroy = Vec::new();
        for doc in self.db.containers()? {
            let c: Container = match serde_json::from_str(&doc) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "skipping unreadable container record");
                    continue;
                }
            };
            let entry = ContainerEntry::new(c);
            self.containers.insert(entry.clone());
            let (status, id, key, policy, manual, started) = entry.read(|c| {
                (
                    c.state.status,
                    c.id.clone(),
                    c.layer_key.clone(),
                    c.host_config.restart_policy.name,
                    c.has_been_manually_stopped,
                    c.has_been_started,
                )
            });
            match status {
                Status::Running | Status::Paused | Status::Restarting => {
                    let sock = self.shim_socket(&id);
                    let conn = shim_client::connect(&sock).await.ok();
                    if conn.is_some() {
                        live.insert(key);
                    }
                    // Addresses and ports are taken again before the monitor can release
                    // them for an exit that happened while the daemon was away.
                    self.network_restore(&entry).await;
                    let alive = conn.is_some() && status == Status::Running;
                    self.spawn_monitor(entry.clone(), conn);
                    if alive {
                        self.resume_health(&entry);
                    }
                }
                Status::Removing => to_destroy.push(id),
                _ => {
                    // A start that the daemon did not finish: its namespace goes.
                    self.network_down(&entry).await;
                    let wants = matches!(policy, RestartPolicyName::Always)
                        || (policy == RestartPolicyName::UnlessStopped && !manual);
                    if wants && started && !manual {
                        to_start.push(entry);
                    }
                }
            }
        }
        self.remove_orphans();
        self.restore_volume_mounts();
        let storage = self.storage.clone();
        Self::blocking(move || Ok(storage.cleanup_stale_mounts(&|k: &str| live.contains(k))?))
            .await?;
        for id in to_destroy {
            if let Ok(e) = self.container(&id) {
                e.update(|c| c.state.status = Status::Exited);
                let _ = self
                    .remove_container(
                        &id,
                        super::remove::RemoveOptions {
                            force: true,
                            ..Default::default()
                        },
                    )
                    .await;
            }
        }
        for entry in to_start {
            let engine = self.clone();
            tokio::spawn(async move {
                let _op = entry.op.lock().await;
                if let Err(e) = engine.start_locked(&entry).await {
                    tracing::warn!(container = %entry.id(), error = %e, "restart at daemon start failed");
                }
            });
        }
        Ok(())
    }
}
