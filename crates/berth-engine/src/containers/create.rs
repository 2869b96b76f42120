//! `docker create`: validate, merge the image's defaults into the config, reserve the
//! name, make the writable layer, and record the container in one transaction.

use super::{ContainerEntry, Undo};
use crate::Engine;
use berth_core::container::{
    Container, ContainerConfig, HostConfig, RestartPolicyName, State, Status,
};
use berth_core::image::Image;
use berth_core::{id, name, Error, Result};
use chrono::Utc;
use std::sync::Arc;

/// The create command as the API hands it over.
#[derive(Debug, Clone, Default)]
pub struct CreateContainer {
    /// Empty: generate one.
    pub name: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub platform: String,
    /// `NetworkingConfig.EndpointsConfig`: per network, `--ip`, `--network-alias`, ...
    pub endpoints: std::collections::BTreeMap<String, berth_core::network::EndpointRequest>,
}

/// Docker's merge of an image's config into the container's (the container wins).
pub fn merge_image_config(cfg: &mut ContainerConfig, img: &Image) {
    let ic = &img.config.config;
    if cfg.user.is_empty() {
        cfg.user = ic.user.clone();
    }
    if cfg.exposed_ports.is_empty() {
        if let Some(p) = &ic.exposed_ports {
            cfg.exposed_ports = p.keys().cloned().collect();
        }
    } else if let Some(p) = &ic.exposed_ports {
        cfg.exposed_ports.extend(p.keys().cloned());
    }
    let image_env = ic.env.clone().unwrap_or_default();
    let mut env: Vec<String> = Vec::new();
    for e in image_env {
        let key = e.split('=').next().unwrap_or("").to_string();
        if !cfg
            .env
            .iter()
            .any(|u| u.split('=').next() == Some(key.as_str()))
        {
            env.push(e);
        }
    }
    env.append(&mut cfg.env);
    cfg.env = env;
    let mut labels = ic.labels.clone().unwrap_or_default();
    labels.append(&mut cfg.labels);
    cfg.labels = labels;
    let no_entrypoint = cfg.entrypoint.as_ref().is_none_or(|e| e.is_empty());
    if no_entrypoint {
        // An explicit empty entrypoint (`--entrypoint ""`) clears the image's.
        if cfg.entrypoint.is_none() {
            cfg.entrypoint = ic.entrypoint.clone();
        } else {
            cfg.entrypoint = None;
        }
        if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            cfg.cmd = ic.cmd.clone();
        }
    }
    if cfg.working_dir.is_empty() {
        cfg.working_dir = ic.working_dir.clone();
    }
    if let Some(v) = &ic.volumes {
        cfg.volumes.extend(v.keys().cloned());
    }
    if cfg.stop_signal.is_none() && !ic.stop_signal.is_empty() {
        cfg.stop_signal = Some(ic.stop_signal.clone());
    }
    match (&mut cfg.healthcheck, &ic.healthcheck) {
        (None, Some(h)) => cfg.healthcheck = Some(h.into()),
        (Some(c), Some(h)) => {
            if c.test.is_empty() {
                c.test = h.test.clone();
            }
            if c.interval == 0 {
                c.interval = h.interval;
            }
            if c.timeout == 0 {
                c.timeout = h.timeout;
            }
            if c.retries == 0 {
                c.retries = h.retries;
            }
            if c.start_period == 0 {
                c.start_period = h.start_period;
            }
        }
        _ => {}
    }
    if cfg.shell.is_none() {
        cfg.shell = ic.shell.clone();
    }
    if cfg.on_build.is_empty() {
        cfg.on_build = ic.on_build.clone().unwrap_or_default();
    }
}

/// Host-config checks Docker makes at create time.
fn validate_host_config(h: &HostConfig) -> Result<()> {
    let rp = &h.restart_policy;
    if h.auto_remove && rp.name != RestartPolicyName::No {
        return Err(Error::invalid(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    if rp.maximum_retry_count < 0 {
        return Err(Error::invalid(
            "invalid restart policy: maximum retry count cannot be negative",
        ));
    }
    if rp.maximum_retry_count > 0 && rp.name != RestartPolicyName::OnFailure {
        return Err(Error::invalid(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                .to_string(),
        ));
    }
    if h.shm_size < 0 {
        return Err(Error::invalid("SHM size can not be less than 0"));
    }
    if h.network_mode == "container:" {
        return Err(Error::invalid(
            "invalid network mode: container: needs a container name or id",
        ));
    }
    for (what, mode) in [
        ("IPC", &h.ipc_mode),
        ("PID", &h.pid_mode),
        ("UTS", &h.uts_mode),
    ] {
        let ok = matches!(mode.as_str(), "" | "host" | "private" | "shareable")
            || (mode.starts_with("container:") && what != "UTS");
        if !ok {
            return Err(Error::invalid(format!("invalid {what} mode: {mode}")));
        }
    }
    if !h.cgroupns_mode.is_empty() && h.cgroupns_mode != "host" && h.cgroupns_mode != "private" {
        return Err(Error::invalid(format!(
            "invalid cgroup namespace mode: {}",
            h.cgroupns_mode
        )));
    }
    Ok(())
}

impl Engine {
    /// Creates a container; returns its id and warnings.
    pub async fn create_container(
        self: &Arc<Self>,
        req: CreateContainer,
    ) -> Result<(String, Vec<String>)> {
        let CreateContainer {
            name: wanted,
            mut config,
            mut host_config,
            platform,
            endpoints,
        } = req;
        if !platform.is_empty() && !platform.starts_with("linux") {
            return Err(Error::invalid(format!(
                "\"{platform}\": unknown operating system or architecture: invalid argument"
            )));
        }
        validate_host_config(&host_config)?;
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        let mut warnings = super::resources::verify(
            &mut host_config.resources,
            &self.cgroup_support,
            ncpu,
            false,
        )?;
        super::resources::adapt(&mut host_config.resources);
        super::log_config::merge(
            &mut host_config.log_config,
            &self.cfg.log_driver,
            &self.cfg.log_opts,
        )?;
        if config.image.is_empty() {
            return Err(Error::invalid("no image specified"));
        }
        let img = self.image(&config.image)?;
        merge_image_config(&mut config, &img);
        let mut command: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        command.extend(config.cmd.clone().unwrap_or_default());
        if command.is_empty() {
            return Err(Error::invalid("No command specified"));
        }
        if let Some(sig) = &config.stop_signal {
            berth_core::signal::parse(sig)?;
        }
        let runtime = self.runtimes.get(&host_config.runtime)?.name.clone();
        let id = id::new_id();
        let name = if wanted.is_empty() {
            let mut attempt = 0;
            loop {
                let n = name::generate(attempt);
                if self.containers.reserve_name(&n, &id).is_ok() {
                    break n;
                }
                attempt += 1;
                if attempt > 20 {
                    return Err(Error::internal(
                        "could not generate a unique container name",
                    ));
                }
            }
        } else {
            let n = name::validate(&wanted)?.to_string();
            self.containers.reserve_name(&n, &id)?;
            n
        };
        let release = {
            let engine = self.clone();
            let (name, id) = (name.clone(), id.clone());
            Undo::new(move || engine.containers.release_name(&name, &id))
        };
        if config.hostname.is_empty()
            && host_config.network_mode != "host"
            && !host_config.uts_mode.eq("host")
        {
            config.hostname = id::short(&id).to_string();
        }
        if host_config.network_mode.is_empty() {
            host_config.network_mode = "default".to_string();
        }
        let networks = self.plan_networks(&name, &config, &mut host_config, endpoints)?;
        if host_config.network_mode == "host" && !host_config.port_bindings.is_empty() {
            warnings.push("Published ports are discarded when using host network mode".to_string());
        }
        let plans = self.plan_mounts(&config, &mut host_config)?;
        let chains = crate::images::chain_ids(&img.config);
        let image_top = chains.last().cloned();
        let dir = self.container_dir(&id);
        let layer_key = id.clone();
        // Layer collection must not see the init layer before the container that holds it.
        let _gc = self.layer_gc.read().await;
        let parent = {
            let storage = self.storage.clone();
            let (key, dir) = (layer_key.clone(), dir.clone());
            Self::blocking(move || {
                std::fs::create_dir_all(&dir)?;
                let init = storage.apply_layer_verified(
                    image_top.as_ref(),
                    super::init_layer::tar(),
                    super::init_layer::diff_id(),
                )?;
                storage.create_rw(&key, Some(&init.chain_id))?;
                Ok(Some(init.chain_id))
            })
            .await?
        };
        let undo_layer = {
            let storage = self.storage.clone();
            let (key, dir) = (layer_key.clone(), dir.clone());
            Undo::new(move || {
                let _ = storage.remove_rw(&key);
                let _ = std::fs::remove_dir_all(&dir);
            })
        };
        // Volumes are made (and filled from the image) now, so `--volumes-from` works even
        // from a container that never started.
        let mounts = {
            let engine = self.clone();
            let storage = self.storage.clone();
            let key = layer_key.clone();
            let copy_up = plans.iter().any(|p| p.volume.is_some() && !p.nocopy);
            Self::blocking(move || {
                let rootfs = if copy_up {
                    Some(storage.mount_rw(&key)?)
                } else {
                    None
                };
                let result = engine.realize_mounts(plans, rootfs.as_deref());
                if copy_up {
                    let _ = storage.unmount_rw(&key);
                }
                result
            })
            .await?
        };
        let undo_volumes = {
            let engine = self.clone();
            let mounts = mounts.clone();
            Undo::new(move || engine.remove_anonymous_volumes(&mounts))
        };
        let path = command[0].clone();
        let args = command[1..].to_vec();
        let log_driver = host_config.log_config.driver.clone();
        let c = Container {
            id: id.clone(),
            name: name.clone(),
            created: Some(Utc::now()),
            path,
            args,
            config,
            host_config,
            image_id: img.id.to_string(),
            state: State {
                status: Status::Created,
                ..Default::default()
            },
            driver: self.storage.driver_name().to_string(),
            platform: "linux".to_string(),
            runtime,
            hostname_path: dir.join("hostname").display().to_string(),
            hosts_path: dir.join("hosts").display().to_string(),
            resolv_conf_path: dir.join("resolv.conf").display().to_string(),
            networks,
            // Docker shows a log path for json-file only.
            log_path: if log_driver == "json-file" {
                dir.join(format!("{id}-json.log")).display().to_string()
            } else {
                String::new()
            },
            layer_key,
            parent_chain: parent.map(|p| p.to_string()).unwrap_or_default(),
            mounts: mounts.clone(),
            ..Default::default()
        };
        let entry = ContainerEntry::new(c);
        self.persist(&entry)?;
        self.containers.insert(entry.clone());
        undo_layer.disarm();
        undo_volumes.disarm();
        release.disarm();
        self.container_event(&entry, "create", &[]);
        Ok((id, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::image::{ImageConfig, RunConfig};
    use std::collections::BTreeSet;

    fn image(rc: RunConfig) -> Image {
        Image {
            id: berth_core::Digest::of(b"x"),
            config: ImageConfig {
                config: rc,
                ..Default::default()
            },
            repo_tags: BTreeSet::new(),
            repo_digests: BTreeSet::new(),
            size: 0,
            loaded_at: Utc::now(),
        }
    }

    #[test]
    fn image_cmd_is_used_when_none_given() {
        let img = image(RunConfig {
            cmd: Some(vec!["sh".into()]),
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            ..Default::default()
        });
        let mut cfg = ContainerConfig {
            env: vec!["A=2".into()],
            ..Default::default()
        };
        merge_image_config(&mut cfg, &img);
        assert_eq!(cfg.cmd.unwrap(), vec!["sh"]);
        assert_eq!(cfg.env, vec!["PATH=/bin", "A=2"]);
    }

    #[test]
    fn user_entrypoint_drops_image_cmd() {
        let img = image(RunConfig {
            cmd: Some(vec!["sh".into()]),
            entrypoint: Some(vec!["/init".into()]),
            ..Default::default()
        });
        let mut cfg = ContainerConfig {
            entrypoint: Some(vec!["echo".into()]),
            ..Default::default()
        };
        merge_image_config(&mut cfg, &img);
        assert_eq!(cfg.entrypoint.unwrap(), vec!["echo"]);
        assert_eq!(cfg.cmd, None);
    }

    #[test]
    fn restart_policy_conflicts_with_auto_remove() {
        let mut h = HostConfig {
            auto_remove: true,
            ..Default::default()
        };
        h.restart_policy.name = RestartPolicyName::Always;
        assert!(validate_host_config(&h).is_err());
    }
}
