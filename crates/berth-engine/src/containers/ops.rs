//! Smaller container operations: `rename`, `update`, `top`, and sizes for inspect.

use crate::Engine;
use berth_core::container::{Resources, RestartPolicy, RestartPolicyName, Status};
use berth_core::{name, Error, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `docker update`: every field is optional; only given ones change.
#[derive(Debug, Clone, Default)]
pub struct UpdateContainer {
    pub restart_policy: Option<RestartPolicy>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

impl UpdateContainer {
    /// The resources the update sets (zero: unchanged), as Docker's update body carries them.
    fn requested(&self) -> Resources {
        Resources {
            memory: self.memory.unwrap_or(0),
            memory_reservation: self.memory_reservation.unwrap_or(0),
            memory_swap: self.memory_swap.unwrap_or(0),
            cpu_shares: self.cpu_shares.unwrap_or(0),
            nano_cpus: self.nano_cpus.unwrap_or(0),
            cpu_period: self.cpu_period.unwrap_or(0),
            cpu_quota: self.cpu_quota.unwrap_or(0),
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: self.cpuset_mems.clone().unwrap_or_default(),
            // 0 and below lift the limit.
            pids_limit: self.pids_limit.map(|p| p.max(0)),
            blkio_weight: self.blkio_weight.unwrap_or(0),
            ..Default::default()
        }
    }
}

/// `docker top` output: column titles and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct TopResult {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

impl Engine {
    /// `docker rename OLD NEW`.
    pub async fn rename_container(self: &Arc<Self>, old: &str, new: &str) -> Result<()> {
        let entry = self.container(old)?;
        let _op = entry.op.lock().await;
        let new = name::validate(new)?.to_string();
        let (id, old_name) = entry.read(|c| (c.id.clone(), c.name.clone()));
        if new == old_name {
            return Err(Error::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        self.containers.reserve_name(&new, &id)?;
        entry.update(|c| c.name = new.clone());
        if let Err(e) = self.persist(&entry) {
            entry.update(|c| c.name = old_name.clone());
            self.containers.release_name(&new, &id);
            return Err(e);
        }
        self.containers.release_name(&old_name, &id);
        self.refresh_dns_names(&entry);
        let _ = self.persist(&entry);
        self.container_event(&entry, "rename", &[("oldName", format!("/{old_name}"))]);
        Ok(())
    }

    /// `docker update`: restart policy and resources, checked and merged as Docker does;
    /// a running container gets the new limits written into its cgroups at once. Returns
    /// Docker's warnings for what the host cannot enforce.
    pub async fn update_container(
        self: &Arc<Self>,
        name: &str,
        req: UpdateContainer,
    ) -> Result<Vec<String>> {
        let entry = self.container(name)?;
        let _op = entry.op.lock().await;
        let mut requested = req.requested();
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        let warnings = super::resources::verify(&mut requested, &self.cgroup_support, ncpu, true)?;
        let (auto_remove, status, id) =
            entry.read(|c| (c.host_config.auto_remove, c.state.status, c.id.clone()));
        let cannot = |m: &str| Error::invalid(format!("Cannot update container {id}: {m}"));
        if matches!(status, Status::Removing | Status::Dead) {
            return Err(cannot(
                "container is marked for removal and cannot be \"update\"",
            ));
        }
        if let Some(rp) = &req.restart_policy {
            if auto_remove && rp.name != RestartPolicyName::No {
                return Err(cannot("Restart policy cannot be updated because AutoRemove is enabled for the container"));
            }
            if rp.maximum_retry_count < 0 {
                return Err(Error::invalid(
                    "invalid restart policy: maximum retry count cannot be negative",
                ));
            }
        }
        let mut resources = entry.read(|c| c.host_config.resources.clone());
        super::resources::merge_update(&mut resources, &requested).map_err(|m| cannot(&m))?;
        if matches!(status, Status::Running | Status::Paused) {
            let limits = berth_runtime::spec::cgroup_limits(&requested)
                .map_err(|e| cannot(&berth_core::Error::from(e).to_string()))?;
            if !limits.is_empty() {
                let layout = self.cgroups.clone().ok_or_else(|| {
                    Error::internal(format!(
                        "Cannot update container {id}: no cgroup hierarchy on this host"
                    ))
                })?;
                let parent = entry.read(|c| self.cgroup_parent_of(c));
                let cid = id.clone();
                Self::blocking(move || {
                    use berth_runtime::CgroupBackend;
                    layout.update(&parent, &cid, &limits).map_err(|e| {
                        Error::internal(format!(
                            "Cannot update container {cid}: {}",
                            berth_core::Error::from(e)
                        ))
                    })
                })
                .await?;
            }
        }
        entry.update(|c| {
            if let Some(rp) = &req.restart_policy {
                c.host_config.restart_policy = rp.clone();
            }
            c.host_config.resources = resources;
        });
        self.persist(&entry)?;
        self.container_event(&entry, "update", &[]);
        Ok(warnings)
    }

    /// `docker top CONTAINER [ps options]`: the host's `ps`, limited to the container's
    /// processes (those in its cgroup).
    pub async fn top_container(self: &Arc<Self>, name: &str, ps_args: &str) -> Result<TopResult> {
        let entry = self.container(name)?;
        let (running, paused, id, parent) = entry.read(|c| {
            (
                c.state.is_running(),
                c.state.status == berth_core::container::Status::Paused,
                c.id.clone(),
                c.host_config.resources.cgroup_parent.clone(),
            )
        });
        if !running {
            return Err(Error::conflict(format!("Container {id} is not running")));
        }
        let _ = paused;
        let parent = if parent.is_empty() {
            self.cfg.cgroup_parent.clone()
        } else {
            parent
        };
        let args = if ps_args.trim().is_empty() {
            "-ef".to_string()
        } else {
            ps_args.to_string()
        };
        Self::blocking(move || {
            let pids = berth_runtime::cgroups::container_pids(
                std::path::Path::new("/sys/fs/cgroup"),
                &parent,
                &id,
            )
            .map_err(|e| Error::internal(format!("reading the container's processes: {e}")))?;
            let words = shell_words::split(&args)
                .map_err(|e| Error::invalid(format!("invalid ps arguments: {e}")))?;
            let out = std::process::Command::new("ps")
                .args(&words)
                .output()
                .map_err(|e| Error::internal(format!("Error running ps: {e}")))?;
            if !out.status.success() {
                return Err(Error::internal(format!(
                    "ps: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
        })
        .await
    }

    /// Size of the writable layer and of the whole rootfs, for `inspect -s` and `ps -s`.
    pub fn container_sizes(&self, name: &str) -> Result<(i64, i64)> {
        let c = self.container(name)?.snapshot();
        let rw = self.storage.rw_size(&c.layer_key).unwrap_or(0) as i64;
        let img = c
            .image_id
            .parse()
            .ok()
            .and_then(|d| self.images.by_id(&d))
            .map(|i| i.size)
            .unwrap_or(0);
        Ok((rw, rw + img))
    }

    /// Labels of the daemon's containers by id (used by events filtering).
    pub fn container_labels(&self, id: &str) -> BTreeMap<String, String> {
        self.container(id)
            .map(|e| e.read(|c| c.config.labels.clone()))
            .unwrap_or_default()
    }
}

/// Keeps the `ps` rows whose PID is in `pids`; the last column takes the rest of the line.
pub fn parse_ps(output: &str, pids: &[i32]) -> Result<TopResult> {
    let mut lines = output.lines();
    let header = lines
        .next()
        .ok_or_else(|| Error::internal("ps printed nothing"))?;
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::invalid("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let mut fields: Vec<String> = Vec::new();
        let mut rest = line.trim_start();
        while fields.len() + 1 < titles.len() {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            fields.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
        fields.push(rest.to_string());
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            return Err(Error::internal(format!(
                "Unexpected pid '{}'",
                fields[pid_col]
            )));
        };
        if pids.contains(&pid) {
            processes.push(fields);
        }
    }
    Ok(TopResult { titles, processes })
}

impl Engine {
    /// `GraphDriver.Data` of a container: its overlay directories.
    pub fn container_graph_data(
        &self,
        c: &berth_core::container::Container,
    ) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        if self.storage.driver_name() != "overlay2" {
            return m;
        }
        let root = self.storage.root();
        let dir = root.join("containers").join(&c.layer_key);
        let lowers = self.layer_diff_dirs(c.parent_chain.parse().ok());
        if !lowers.is_empty() {
            m.insert("LowerDir".to_string(), lowers.join(":"));
        }
        m.insert(
            "MergedDir".to_string(),
            dir.join("merged").display().to_string(),
        );
        m.insert(
            "UpperDir".to_string(),
            dir.join("upper").display().to_string(),
        );
        m.insert(
            "WorkDir".to_string(),
            dir.join("work").display().to_string(),
        );
        m
    }

    /// `GraphDriver.Data` of an image.
    pub fn image_graph_data(&self, img: &berth_core::image::Image) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        if self.storage.driver_name() != "overlay2" {
            return m;
        }
        let mut dirs = self.layer_diff_dirs(crate::images::chain_ids(&img.config).last().cloned());
        if dirs.is_empty() {
            return m;
        }
        let upper = dirs.remove(0);
        if !dirs.is_empty() {
            m.insert("LowerDir".to_string(), dirs.join(":"));
        }
        m.insert("UpperDir".to_string(), upper.clone());
        m.insert("MergedDir".to_string(), upper.replace("/diff", "/merged"));
        m.insert("WorkDir".to_string(), upper.replace("/diff", "/work"));
        m
    }

    /// Diff directories of a chain, top first.
    fn layer_diff_dirs(&self, top: Option<berth_core::Digest>) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = top;
        while let Some(c) = cur {
            out.push(
                self.storage
                    .root()
                    .join("layers")
                    .join(c.hex())
                    .join("diff")
                    .display()
                    .to_string(),
            );
            cur = self.storage.layer(&c).and_then(|l| l.parent);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_are_filtered_and_the_command_kept_whole() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:00 /sbin/init\nroot 42 1 0 10:00 ? 00:00:00 sleep 100 &\n";
        let top = parse_ps(out, &[42]).unwrap();
        assert_eq!(top.titles.len(), 8);
        assert_eq!(
            top.processes,
            vec![vec![
                "root",
                "42",
                "1",
                "0",
                "10:00",
                "?",
                "00:00:00",
                "sleep 100 &"
            ]]
        );
    }

    #[test]
    fn ps_without_pid_column_is_refused() {
        assert!(parse_ps("UID CMD\nroot x\n", &[1]).is_err());
    }
}
