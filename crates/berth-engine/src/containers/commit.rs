//! `docker commit`: a container's writable layer becomes a new image.

use crate::Engine;
use berth_core::container::{ContainerConfig, Status};
use berth_core::image::{Empty, History, ImageConfig, RunConfig};
use berth_core::reference::Reference;
use berth_core::{Error, Result};
use chrono::Utc;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct CommitContainer {
    pub container: String,
    /// `repo`, `repo:tag` or empty for an untagged image.
    pub repo: String,
    pub tag: String,
    pub comment: String,
    pub author: String,
    /// Pause a running container while its layer is read (default true).
    pub pause: bool,
    /// `-c` instructions.
    pub changes: Vec<String>,
}

/// The run config an image keeps of a container's (Docker copies the container's Config).
fn run_config_of(c: &ContainerConfig) -> RunConfig {
    let set = |s: &std::collections::BTreeSet<String>| {
        (!s.is_empty()).then(|| s.iter().map(|k| (k.clone(), Empty)).collect())
    };
    RunConfig {
        hostname: c.hostname.clone(),
        domainname: c.domainname.clone(),
        user: c.user.clone(),
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: set(&c.exposed_ports),
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env: (!c.env.is_empty()).then(|| c.env.clone()),
        cmd: c.cmd.clone(),
        healthcheck: c.healthcheck.as_ref().map(Into::into),
        args_escaped: c.args_escaped,
        image: c.image.clone(),
        volumes: set(&c.volumes),
        working_dir: c.working_dir.clone(),
        entrypoint: c.entrypoint.clone(),
        network_disabled: c.network_disabled,
        on_build: (!c.on_build.is_empty()).then(|| c.on_build.clone()),
        labels: Some(c.labels.clone()),
        stop_signal: c.stop_signal.clone().unwrap_or_default(),
        shell: c.shell.clone(),
    }
}

impl Engine {
    /// Commits a container; returns the new image id.
    pub async fn commit_container(self: &Arc<Self>, req: CommitContainer) -> Result<String> {
        let entry = self.container(&req.container)?;
        let reference = if req.repo.is_empty() {
            None
        } else {
            let r = if req.tag.is_empty() {
                req.repo.clone()
            } else {
                format!("{}:{}", req.repo, req.tag)
            };
            Some(Reference::parse_with_default_tag(&r)?)
        };
        let c = entry.snapshot();
        let mut run = run_config_of(&c.config);
        super::super::images::change::apply(&mut run, &req.changes)?;
        let base: ImageConfig = c
            .image_id
            .parse()
            .ok()
            .and_then(|d| self.images.by_id(&d))
            .map(|i| i.config)
            .unwrap_or_default();
        let pause = req.pause && c.state.status == Status::Running;
        let rt = self.runtimes.get(&c.runtime)?.clone();
        if pause {
            let (rt, id) = (rt.clone(), c.id.clone());
            Self::blocking(move || rt.pause(&id).map_err(|e| Error::internal(e.to_string())))
                .await?;
        }
        let _gc = self.layer_gc.read().await;
        let layer = {
            let storage = self.storage.clone();
            let key = c.layer_key.clone();
            let init = c.parent_chain.parse::<berth_core::Digest>().ok();
            Self::blocking(move || {
                // The writable layer sits on the init layer, whose parent is the image's top.
                let parent = init.and_then(|i| storage.layer(&i)).and_then(|l| l.parent);
                let (reader, mut writer) = std::io::pipe().map_err(Error::from)?;
                let s2 = storage.clone();
                let producer = std::thread::spawn(move || {
                    let r = s2.rw_diff_tar(&key, &mut writer);
                    drop(writer);
                    r
                });
                let applied = storage.apply_layer(parent.as_ref(), reader);
                let produced = producer
                    .join()
                    .map_err(|_| Error::internal("reading the container's changes panicked"))?;
                produced?;
                Ok(applied?)
            })
            .await
        };
        if pause {
            let id = c.id.clone();
            let _ =
                Self::blocking(move || rt.resume(&id).map_err(|e| Error::internal(e.to_string())))
                    .await;
        }
        let layer = layer.map_err(|e| e.context("committing the container's changes"))?;
        let now = Utc::now();
        let mut command = vec![c.path.clone()];
        command.extend(c.args.iter().cloned());
        let mut config = ImageConfig {
            architecture: if base.architecture.is_empty() {
                crate::images::import::host_arch().to_string()
            } else {
                base.architecture.clone()
            },
            os: "linux".to_string(),
            created: Some(now),
            author: req.author.clone(),
            comment: req.comment.clone(),
            container: c.id.clone(),
            container_config: Some(run_config_of(&c.config)),
            config: run,
            rootfs: base.rootfs.clone(),
            history: base.history.clone(),
            parent: c.image_id.clone(),
            ..Default::default()
        };
        config.rootfs.typ = "layers".to_string();
        config.rootfs.diff_ids.push(layer.diff_id.clone());
        config.history.push(History {
            created: Some(now),
            author: req.author.clone(),
            created_by: command.join(" "),
            comment: req.comment.clone(),
            empty_layer: false,
        });
        let bytes = serde_json::to_vec(&config).map_err(|e| Error::internal(e.to_string()))?;
        let img = self.add_image(&bytes)?;
        if let Some(r) = &reference {
            self.set_tag(r, &img.id)?;
        }
        self.container_event(&entry, "commit", &[("comment", req.comment.clone())]);
        Ok(img.id.to_string())
    }
}
