//! `up`, `create` and `start`: images first (built or pulled before anything is created, so
//! a missing image leaves nothing behind), then networks and volumes, then each service's
//! containers converged in dependency order (created, recreated when their config hash or
//! image changed, kept, or removed when scaled down), then started in dependency order,
//! waiting for `service_healthy` and `service_completed_successfully` dependencies.

use super::{ctr_path, deps_among, in_dependency_order, post_ok, Compose, Ctr, OneOff, Progress};
use crate::client::{version_lt, Client, ClientError};
use crate::commands::esc;
use crate::flags::Parsed;
use berth_compose::model::{External, SERVICE_COMPLETED, SERVICE_HEALTHY};
use berth_compose::plan::{converge, Action, Observed, Recreate};
use berth_compose::{names, ContainerContext, Project};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// When `up` builds an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuildPolicy {
    /// Build images that are missing.
    #[default]
    Missing,
    /// `--build`.
    Always,
    /// `--no-build`.
    Never,
}

#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Services named on the command line (all when empty).
    pub services: Vec<String>,
    pub no_deps: bool,
    pub build: BuildPolicy,
    /// `--pull`: `always`, `missing`, `never`, `build` or empty (the service's policy).
    pub pull: String,
    pub quiet_pull: bool,
    pub recreate: Recreate,
    pub renew_anon_volumes: bool,
    pub remove_orphans: bool,
    pub scale: BTreeMap<String, u64>,
    pub timeout: Vec<(&'static str, String)>,
}

impl UpOptions {
    pub fn from_flags(c: &Compose, p: &Parsed) -> anyhow::Result<Self> {
        if p.bool("build") && p.bool("no-build") {
            anyhow::bail!("--build and --no-build are incompatible");
        }
        if p.bool("force-recreate") && p.bool("no-recreate") {
            anyhow::bail!("--force-recreate and --no-recreate are incompatible");
        }
        let mut scale = BTreeMap::new();
        for s in p.list("scale") {
            let (svc, n) = s.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("invalid --scale option {s:?}: expected SERVICE=NUM")
            })?;
            let n: u64 = n.parse().map_err(|_| {
                anyhow::anyhow!("invalid --scale option {s:?}: expected SERVICE=NUM")
            })?;
            c.check_services(&[svc.to_string()])?;
            scale.insert(svc.to_string(), n);
        }
        c.check_services(&p.args)?;
        Ok(UpOptions {
            services: p.args.clone(),
            no_deps: p.bool("no-deps"),
            build: if p.bool("build") {
                BuildPolicy::Always
            } else if p.bool("no-build") {
                BuildPolicy::Never
            } else {
                BuildPolicy::Missing
            },
            pull: p.string("pull"),
            quiet_pull: p.bool("quiet-pull"),
            recreate: if p.bool("force-recreate") {
                Recreate::Always
            } else if p.bool("no-recreate") {
                Recreate::Never
            } else {
                Recreate::Diverged
            },
            renew_anon_volumes: p.bool("renew-anon-volumes"),
            remove_orphans: p.bool("remove-orphans"),
            scale,
            timeout: super::timeout_query(p)?,
        })
    }

    /// The services to act on: the named ones and, unless `--no-deps`, their dependencies.
    pub fn targets(&self, project: &Project) -> BTreeSet<String> {
        if self.no_deps && !self.services.is_empty() {
            self.services.iter().cloned().collect()
        } else {
            berth_compose::graph::with_dependencies(project, &self.services)
        }
    }
}

/// A container of a service after convergence.
#[derive(Debug, Clone)]
pub struct Ready {
    pub id: String,
    pub name: String,
    pub running: bool,
    /// When this `up` asked the daemon to start it (client clock): attached `up` shows
    /// output from then on. The daemon records `StartedAt` only after the process runs,
    /// so a quick process's first lines come before it.
    pub started: Option<std::time::SystemTime>,
}

/// The state shared by the tasks of one `up`.
pub struct Session {
    pub client: Client,
    pub project: Project,
    pub progress: Progress,
    /// Image reference and id per service.
    images: BTreeMap<String, (String, Option<String>)>,
    observed: BTreeMap<String, Vec<Ctr>>,
    pub ready: Mutex<BTreeMap<String, Vec<Ready>>>,
    opts: UpOptions,
    /// The daemon takes several endpoints at create (API >= 1.44).
    multi_endpoint: bool,
}

impl Session {
    fn ready_of(&self, svc: &str) -> Vec<Ready> {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(svc)
            .cloned()
            .unwrap_or_default()
    }
}

pub fn id_of(kind: &str, name: &str) -> String {
    format!("{kind} {name}")
}

/// Inspects an image; None when the daemon does not have it.
pub async fn image_id(client: &Client, reference: &str) -> anyhow::Result<Option<String>> {
    match client
        .get_json(&format!("/images/{}/json", esc(reference)), &[])
        .await
    {
        Ok(v) => Ok(v["Id"].as_str().map(str::to_string)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Makes sure every target service has its image: built (`build:`) or pulled. Nothing is
/// created before this succeeds.
async fn ensure_images(
    c: &Compose,
    targets: &BTreeSet<String>,
    opts: &UpOptions,
    progress: &Progress,
) -> anyhow::Result<BTreeMap<String, (String, Option<String>)>> {
    let mut out = BTreeMap::new();
    let mut to_build = Vec::new();
    let mut to_pull: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for svc in targets {
        let s = &c.project.services[svc];
        let reference = names::image_name(&c.project.name, svc, s);
        let id = image_id(&c.client, &reference).await?;
        let policy = if opts.pull.is_empty() {
            s.pull_policy.clone().unwrap_or_default()
        } else {
            opts.pull.clone()
        };
        let has_build = s.build.is_some();
        let build = has_build
            && opts.build != BuildPolicy::Never
            && (opts.build == BuildPolicy::Always
                || policy == "build"
                || (id.is_none() && policy != "always"));
        if build {
            to_build.push(svc.clone());
        } else if policy == "always" || (id.is_none() && policy != "never") {
            if id.is_none() && has_build && opts.build == BuildPolicy::Never {
                anyhow::bail!(
                    "service {svc:?} has no image {reference:?} and --no-build was given"
                );
            }
            to_pull
                .entry(reference.clone())
                .or_default()
                .push(svc.clone());
        } else if id.is_none() {
            anyhow::bail!("service {svc:?}: no such image: {reference} (pull_policy: never)");
        }
        out.insert(svc.clone(), (reference, id));
    }
    // Builds print their own output, so they run before any progress line is drawn.
    for svc in to_build {
        let id = super::image::build_service(c, &svc, &super::image::BuildFlags::default()).await?;
        let reference = out[&svc].0.clone();
        out.insert(svc, (reference, Some(id)));
    }
    for (reference, svcs) in to_pull {
        let id = super::image::pull_one(c, &reference, opts.quiet_pull, progress).await?;
        for s in svcs {
            out.insert(s, (reference.clone(), Some(id.clone())));
        }
    }
    Ok(out)
}

/// The networks the services use, created when missing (and checked when external).
pub async fn ensure_networks(
    c: &Compose,
    keys: &BTreeSet<String>,
    progress: &Progress,
) -> anyhow::Result<()> {
    let jobs = keys.iter().map(|key| async move {
        let cfg = c.project.networks.get(key).cloned().unwrap_or_default();
        let name = c.project.network_name(key);
        match c.client.get_json(&format!("/networks/{}", esc(&name)), &[]).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(anyhow::Error::from(e)),
        }
        if External::is_external(&cfg.external) {
            anyhow::bail!("network {name} declared as external, but could not be found");
        }
        let id = id_of("Network", &name);
        progress.working(&id, "Creating");
        let mut labels: BTreeMap<String, String> = cfg.labels.clone();
        labels.insert(names::PROJECT.into(), c.project.name.clone());
        labels.insert(names::NETWORK.into(), key.clone());
        labels.insert(names::VERSION.into(), names::COMPOSE_VERSION.into());
        let ipam = cfg.ipam.clone().unwrap_or_default();
        let pools: Vec<Json> = ipam
            .config
            .iter()
            .map(|p| {
                let mut m = serde_json::Map::new();
                if let Some(s) = &p.subnet {
                    m.insert("Subnet".into(), json!(s));
                }
                if let Some(r) = &p.ip_range {
                    m.insert("IPRange".into(), json!(r));
                }
                if let Some(g) = &p.gateway {
                    m.insert("Gateway".into(), json!(g));
                }
                if !p.aux_addresses.is_empty() {
                    m.insert("AuxiliaryAddresses".into(), json!(p.aux_addresses));
                }
                Json::Object(m)
            })
            .collect();
        let mut body = json!({
            "Name": name,
            "CheckDuplicate": true,
            "Driver": cfg.driver.clone().unwrap_or_else(|| "bridge".into()),
            "Options": cfg.driver_opts,
            "IPAM": {"Driver": ipam.driver.clone().unwrap_or_else(|| "default".into()), "Config": pools, "Options": ipam.options},
            "Internal": cfg.internal.unwrap_or(false),
            "Attachable": cfg.attachable.unwrap_or(false),
            "Labels": labels,
        });
        if let Some(v6) = cfg.enable_ipv6 {
            body["EnableIPv6"] = json!(v6);
        }
        if let Some(v4) = cfg.enable_ipv4 {
            body["EnableIPv4"] = json!(v4);
        }
        match c.client.post_json("/networks/create", &[], Some(&body)).await {
            Ok(_) => {
                progress.done(&id, "Created");
                Ok(())
            }
            // Made meanwhile by a concurrent `up`.
            Err(ClientError::Api { status: 409, .. }) => {
                progress.done(&id, "Created");
                Ok(())
            }
            Err(e) => {
                progress.error(&id, "Error");
                Err(anyhow::anyhow!("failed to create network {name}: {e}"))
            }
        }
    });
    futures_util::future::try_join_all(jobs).await.map(|_| ())
}

/// The named volumes the services use, created when missing.
pub async fn ensure_volumes(
    c: &Compose,
    keys: &BTreeSet<String>,
    progress: &Progress,
) -> anyhow::Result<()> {
    let jobs = keys.iter().map(|key| async move {
        let cfg = c.project.volumes.get(key).cloned().unwrap_or_default();
        let name = c.project.volume_name(key);
        match c
            .client
            .get_json(&format!("/volumes/{}", esc(&name)), &[])
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(anyhow::Error::from(e)),
        }
        if External::is_external(&cfg.external) {
            anyhow::bail!("external volume \"{name}\" not found");
        }
        let id = id_of("Volume", &format!("{name:?}"));
        progress.working(&id, "Creating");
        let mut labels = cfg.labels.clone();
        labels.insert(names::PROJECT.into(), c.project.name.clone());
        labels.insert(names::VOLUME.into(), key.clone());
        labels.insert(names::VERSION.into(), names::COMPOSE_VERSION.into());
        let body = json!({
            "Name": name,
            "Driver": cfg.driver.clone().unwrap_or_else(|| "local".into()),
            "DriverOpts": cfg.driver_opts,
            "Labels": labels,
        });
        match c
            .client
            .post_json("/volumes/create", &[], Some(&body))
            .await
        {
            Ok(_) => {
                progress.done(&id, "Created");
                Ok(())
            }
            Err(e) => {
                progress.error(&id, "Error");
                Err(anyhow::anyhow!("failed to create volume {name}: {e}"))
            }
        }
    });
    futures_util::future::try_join_all(jobs).await.map(|_| ())
}

/// Stops a container, with progress.
pub async fn stop_container(
    client: &Client,
    progress: &Progress,
    id: &str,
    name: &str,
    timeout: &[(&'static str, String)],
) -> anyhow::Result<()> {
    let pid = id_of("Container", name);
    progress.working(&pid, "Stopping");
    match post_ok(client, &ctr_path(id, "stop"), timeout).await {
        Ok(()) => {
            progress.done(&pid, "Stopped");
            Ok(())
        }
        Err(e) => {
            progress.error(&pid, "Error");
            Err(e)
        }
    }
}

/// Stops and removes a container, with progress.
pub async fn remove_container(
    client: &Client,
    progress: &Progress,
    ctr: &Ctr,
    timeout: &[(&'static str, String)],
    volumes: bool,
) -> anyhow::Result<()> {
    let id = id_of("Container", &ctr.name);
    if ctr.running() {
        stop_container(client, progress, &ctr.id, &ctr.name, timeout).await?;
    }
    progress.working(&id, "Removing");
    let q = [
        ("force", "1".to_string()),
        ("v", if volumes { "1" } else { "0" }.to_string()),
    ];
    match client.delete(&ctr_path(&ctr.id, ""), &q).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            progress.error(&id, "Error");
            return Err(e.into());
        }
    }
    progress.done(&id, "Removed");
    Ok(())
}

/// Creates one container of a service; connects the extra networks when the daemon takes
/// only one endpoint at create.
async fn create_container(
    s: &Session,
    svc: &str,
    number: u64,
    anonymous_volumes: BTreeMap<String, String>,
) -> anyhow::Result<Ready> {
    let service = &s.project.services[svc];
    let name = names::container_name(&s.project.name, svc, service, number);
    let (image, image_id) = s.images.get(svc).cloned().unwrap_or_default();
    let container_of = |other: &str| s.ready_of(other).first().map(|r| r.name.clone());
    let spec = s.project.create_spec(
        service,
        &ContainerContext {
            service: svc,
            number,
            name: name.clone(),
            oneoff: false,
            image,
            image_id,
            container_of: &container_of,
            anonymous_volumes,
        },
    )?;
    let mut body = spec.body;
    if !s.multi_endpoint && spec.networks.len() > 1 {
        let first = spec.networks[0].clone();
        body["NetworkingConfig"] = json!({"EndpointsConfig": {first.0: first.1}});
    }
    let created = s
        .client
        .post_json("/containers/create", &[("name", name.clone())], Some(&body))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = created["Id"].as_str().unwrap_or("").to_string();
    if !s.multi_endpoint {
        for (net, ep) in spec.networks.iter().skip(1) {
            s.client
                .post_json(
                    &format!("/networks/{}/connect", esc(net)),
                    &[],
                    Some(&json!({"Container": id, "EndpointConfig": ep})),
                )
                .await?;
        }
    }
    Ok(Ready {
        id,
        name,
        running: false,
        started: None,
    })
}

/// The anonymous volumes of a container, by mount target, to carry over on recreate.
async fn anonymous_volumes(client: &Client, id: &str) -> BTreeMap<String, String> {
    let Ok(info) = client.get_json(&ctr_path(id, "json"), &[]).await else {
        return BTreeMap::new();
    };
    let declared: BTreeSet<String> = info["Config"]["Volumes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    info["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Type"] == "volume")
        .filter_map(|m| {
            let dest = m["Destination"].as_str()?.to_string();
            let name = m["Name"].as_str()?.to_string();
            let anonymous = name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit());
            (anonymous && declared.contains(&dest)).then_some((dest, name))
        })
        .collect()
}

/// Brings one service's containers to what the file says.
async fn converge_service(s: Arc<Session>, svc: String) -> anyhow::Result<()> {
    let service = &s.project.services[&svc];
    let scale = s
        .opts
        .scale
        .get(&svc)
        .copied()
        .unwrap_or_else(|| service.replicas());
    let hash = names::config_hash(service);
    let image_id = s.images.get(&svc).and_then(|i| i.1.clone());
    let observed: Vec<Observed> = s
        .observed
        .get(&svc)
        .into_iter()
        .flatten()
        .map(|c| Observed {
            id: c.id.clone(),
            name: c.name.clone(),
            number: c.number,
            config_hash: c.label(names::CONFIG_HASH),
            image_id: c.raw["ImageID"].as_str().unwrap_or("").to_string(),
            state: c.state.clone(),
        })
        .collect();
    let by_id: BTreeMap<String, Ctr> = s
        .observed
        .get(&svc)
        .into_iter()
        .flatten()
        .map(|c| (c.id.clone(), c.clone()))
        .collect();
    let actions = converge(scale, &hash, image_id.as_deref(), observed, s.opts.recreate);
    let jobs = actions.into_iter().map(|a| {
        let s = s.clone();
        let svc = svc.clone();
        let old_ctr = match &a {
            Action::Recreate { old } | Action::Remove { container: old } => {
                by_id.get(&old.id).cloned()
            }
            _ => None,
        };
        async move {
            match a {
                Action::Create { number } => {
                    let service = &s.project.services[&svc];
                    let name = names::container_name(&s.project.name, &svc, service, number);
                    let id = id_of("Container", &name);
                    s.progress.working(&id, "Creating");
                    match create_container(&s, &svc, number, BTreeMap::new()).await {
                        Ok(r) => {
                            s.progress.done(&id, "Created");
                            Ok(Some((number, r)))
                        }
                        Err(e) => {
                            s.progress.error(&id, "Error");
                            Err(e)
                        }
                    }
                }
                Action::Recreate { old } => {
                    let id = id_of("Container", &old.name);
                    s.progress.working(&id, "Recreate");
                    let anon = if s.opts.renew_anon_volumes {
                        BTreeMap::new()
                    } else {
                        anonymous_volumes(&s.client, &old.id).await
                    };
                    if old_ctr.as_ref().is_some_and(Ctr::running) {
                        post_ok(&s.client, &ctr_path(&old.id, "stop"), &s.opts.timeout).await?;
                    }
                    let short: String = old.id.chars().take(12).collect();
                    s.client
                        .post(
                            &ctr_path(&old.id, "rename"),
                            &[("name", format!("{short}_{}", old.name))],
                            None,
                        )
                        .await?;
                    let r = match create_container(&s, &svc, old.number, anon).await {
                        Ok(r) => r,
                        Err(e) => {
                            // Put the old container back under its name.
                            let _ = s
                                .client
                                .post(
                                    &ctr_path(&old.id, "rename"),
                                    &[("name", old.name.clone())],
                                    None,
                                )
                                .await;
                            s.progress.error(&id, "Error");
                            return Err(e);
                        }
                    };
                    s.client
                        .delete(&ctr_path(&old.id, ""), &[("force", "1".to_string())])
                        .await?;
                    let new_id = id_of("Container", &r.name);
                    s.progress.done(&new_id, "Recreated");
                    Ok(Some((old.number, r)))
                }
                Action::Keep { container } => Ok(Some((
                    container.number,
                    Ready {
                        id: container.id,
                        name: container.name,
                        running: matches!(container.state.as_str(), "running" | "restarting"),
                        started: None,
                    },
                ))),
                Action::Remove { container } => {
                    let ctr = old_ctr.unwrap_or(Ctr {
                        id: container.id.clone(),
                        name: container.name.clone(),
                        service: svc.clone(),
                        number: container.number,
                        oneoff: false,
                        state: container.state.clone(),
                        raw: Json::Null,
                    });
                    remove_container(&s.client, &s.progress, &ctr, &s.opts.timeout, false).await?;
                    Ok(None)
                }
            }
        }
    });
    let results = futures_util::future::join_all(jobs).await;
    let mut ready = Vec::new();
    let mut first_err = None;
    for r in results {
        match r {
            Ok(Some(x)) => ready.push(x),
            Ok(None) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    ready.sort_by_key(|(n, _)| *n);
    s.ready
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(svc, ready.into_iter().map(|(_, r)| r).collect());
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Waits until a container reports healthy.
pub async fn wait_healthy(client: &Client, id: &str, name: &str) -> anyhow::Result<()> {
    loop {
        let info = client.get_json(&ctr_path(id, "json"), &[]).await?;
        let st = &info["State"];
        match st["Health"]["Status"].as_str() {
            Some("healthy") => return Ok(()),
            Some("unhealthy") => anyhow::bail!("container {name} is unhealthy"),
            Some(_) => {}
            None => anyhow::bail!("container {name} has no healthcheck configured"),
        }
        if st["Running"] != json!(true) {
            anyhow::bail!(
                "container {name} exited ({})",
                st["ExitCode"].as_i64().unwrap_or(0)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until a container has stopped and returns its exit code.
pub async fn wait_exit(client: &Client, id: &str) -> anyhow::Result<i64> {
    let v = client
        .post_json(
            &ctr_path(id, "wait"),
            &[("condition", "not-running".to_string())],
            None,
        )
        .await?;
    Ok(v["StatusCode"].as_i64().unwrap_or(0))
}

/// Starts a service's containers once its dependencies meet their conditions.
async fn start_service(s: Arc<Session>, svc: String) -> anyhow::Result<()> {
    let service = s.project.services[&svc].clone();
    for (dep, d) in &service.depends_on {
        if !s.project.services.contains_key(dep) {
            continue;
        }
        for r in s.ready_of(dep) {
            let id = id_of("Container", &r.name);
            match d.condition.as_str() {
                SERVICE_HEALTHY => {
                    s.progress.working(&id, "Waiting");
                    if let Err(e) = wait_healthy(&s.client, &r.id, &r.name).await {
                        s.progress.error(&id, "Error");
                        anyhow::bail!("dependency failed to start: {e}");
                    }
                    s.progress.done(&id, "Healthy");
                }
                SERVICE_COMPLETED => {
                    s.progress.working(&id, "Waiting");
                    let code = wait_exit(&s.client, &r.id).await?;
                    if code != 0 {
                        s.progress.error(&id, "Error");
                        anyhow::bail!("service {dep:?} didn't complete successfully: exit {code}");
                    }
                    s.progress.done(&id, "Exited");
                }
                _ => {}
            }
        }
    }
    let jobs = s.ready_of(&svc).into_iter().map(|r| {
        let s = s.clone();
        async move {
            let id = id_of("Container", &r.name);
            if r.running {
                s.progress.done(&id, "Running");
                return Ok(None);
            }
            s.progress.working(&id, "Starting");
            let at = std::time::SystemTime::now();
            match post_ok(&s.client, &ctr_path(&r.id, "start"), &[]).await {
                Ok(()) => {
                    s.progress.done(&id, "Started");
                    Ok(Some((r.id, at)))
                }
                Err(e) => {
                    s.progress.error(&id, "Error");
                    Err(e)
                }
            }
        }
    });
    let started: BTreeMap<String, std::time::SystemTime> = futures_util::future::try_join_all(jobs)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let mut ready = s.ready.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(list) = ready.get_mut(&svc) {
        for r in list {
            r.running = true;
            if let Some(at) = started.get(&r.id) {
                r.started = Some(*at);
            }
        }
    }
    Ok(())
}

/// Orphans: project containers of services the files no longer define.
fn orphans(c: &Compose, all: &[Ctr]) -> Vec<Ctr> {
    all.iter()
        .filter(|x| {
            !c.project.services.contains_key(&x.service)
                && !c.project.disabled.contains_key(&x.service)
        })
        .cloned()
        .collect()
}

/// Creates (and with `start`, starts) the target services. Returns the session, whose
/// `ready` lists every target's containers.
pub async fn converge_project(
    c: &Compose,
    opts: UpOptions,
    progress: &Progress,
    start: bool,
) -> anyhow::Result<Arc<Session>> {
    let targets = opts.targets(&c.project);
    let images = ensure_images(c, &targets, &opts, progress).await?;
    let mut networks = BTreeSet::new();
    let mut volumes = BTreeSet::new();
    for svc in &targets {
        let s = &c.project.services[svc];
        networks.extend(s.networks.keys().cloned());
        for v in &s.volumes {
            if v.kind == "volume" {
                if let Some(src) = &v.source {
                    volumes.insert(src.clone());
                }
            }
        }
    }
    let all = c.containers(true, OneOff::Exclude).await?;
    let (nets, vols) = tokio::join!(
        ensure_networks(c, &networks, progress),
        ensure_volumes(c, &volumes, progress)
    );
    nets?;
    vols?;
    let orphaned = orphans(c, &all);
    if !orphaned.is_empty() {
        if opts.remove_orphans {
            let jobs = orphaned
                .iter()
                .map(|o| remove_container(&c.client, progress, o, &opts.timeout, false));
            futures_util::future::try_join_all(jobs).await?;
        } else {
            let names: Vec<&str> = orphaned.iter().map(|o| o.name.as_str()).collect();
            eprintln!(
                "WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                names.join(" ")
            );
        }
    }
    let mut observed: BTreeMap<String, Vec<Ctr>> = BTreeMap::new();
    for x in all {
        observed.entry(x.service.clone()).or_default().push(x);
    }
    let session = Arc::new(Session {
        client: c.client.clone(),
        project: c.project.clone(),
        progress: progress.clone(),
        images,
        observed,
        ready: Mutex::new(BTreeMap::new()),
        opts,
        multi_endpoint: !version_lt(c.client.version(), "1.44"),
    });
    let deps = deps_among(&c.project, &targets);
    let s1 = session.clone();
    in_dependency_order(deps.clone(), move |svc| converge_service(s1.clone(), svc)).await?;
    if start {
        let s2 = session.clone();
        in_dependency_order(deps, move |svc| start_service(s2.clone(), svc)).await?;
    }
    Ok(session)
}

/// `--wait`: every container running, and healthy when it has a health check.
pub async fn wait_running(
    s: &Session,
    services: &BTreeSet<String>,
    timeout: Option<u64>,
) -> anyhow::Result<()> {
    let jobs = services
        .iter()
        .flat_map(|svc| s.ready_of(svc))
        .map(|r| async move {
            let id = id_of("Container", &r.name);
            s.progress.working(&id, "Waiting");
            let info = s.client.get_json(&ctr_path(&r.id, "json"), &[]).await?;
            let result = if info["State"]["Health"].is_object() {
                wait_healthy(&s.client, &r.id, &r.name)
                    .await
                    .map(|_| "Healthy")
            } else if info["State"]["Running"] == json!(true) {
                Ok("Running")
            } else {
                Err(anyhow::anyhow!(
                    "container {} exited ({})",
                    r.name,
                    info["State"]["ExitCode"].as_i64().unwrap_or(0)
                ))
            };
            match result {
                Ok(status) => {
                    s.progress.done(&id, status);
                    Ok(())
                }
                Err(e) => {
                    s.progress.error(&id, "Error");
                    Err(e)
                }
            }
        });
    let all = futures_util::future::try_join_all(jobs);
    match timeout {
        Some(t) => tokio::time::timeout(Duration::from_secs(t), all)
            .await
            .map_err(|_| anyhow::anyhow!("timeout waiting for the project to be running|healthy"))?
            .map(|_| ()),
        None => all.await.map(|_| ()),
    }
}

pub async fn up_command(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    let opts = UpOptions::from_flags(c, p)?;
    let wait = p.bool("wait");
    let detach = p.bool("detach") || wait;
    let exit_code_from = p.string("exit-code-from");
    let abort = p.bool("abort-on-container-exit") || !exit_code_from.is_empty();
    if detach && abort {
        anyhow::bail!("--abort-on-container-exit and --detach are incompatible");
    }
    if !exit_code_from.is_empty() {
        c.check_services(std::slice::from_ref(&exit_code_from))?;
    }
    let wait_timeout = match p.string("wait-timeout").as_str() {
        "" => None,
        t => Some(
            t.parse::<u64>()
                .map_err(|_| anyhow::anyhow!("invalid --wait-timeout {t:?}"))?,
        ),
    };
    let targets = opts.targets(&c.project);
    let explicit: Vec<String> = opts.services.clone();
    let timeout = opts.timeout.clone();
    let progress = c.progress();
    let start = !p.bool("no-start");
    let result = converge_project(c, opts, &progress, start).await;
    let session = match result {
        Ok(s) => s,
        Err(e) => {
            progress.finish();
            return Err(e);
        }
    };
    if wait && start {
        let r = wait_running(&session, &targets, wait_timeout).await;
        progress.finish();
        return r;
    }
    progress.finish();
    if detach || !start {
        return Ok(());
    }
    // Attached: the named services' output (all services when none is named), except
    // services with `attach: false`.
    let mut attach: BTreeSet<String> = if explicit.is_empty() {
        targets.clone()
    } else {
        explicit.into_iter().collect()
    };
    let only = p.list("attach");
    if !only.is_empty() {
        attach = only.into_iter().collect();
    }
    attach.retain(|s| c.project.services.get(s).and_then(|x| x.attach) != Some(false));
    let ctrs: Vec<Ready> = attach.iter().flat_map(|s| session.ready_of(s)).collect();
    let code = super::logs::attach_until_done(
        c,
        &session,
        ctrs,
        super::logs::AttachOptions {
            abort,
            exit_code_from,
            no_prefix: p.bool("no-log-prefix"),
            color: c.out.color && !p.bool("no-color"),
            timeout,
        },
    )
    .await?;
    if code != 0 {
        return Err(crate::StatusError::exit(code, ""));
    }
    Ok(())
}

pub async fn create_command(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    let opts = UpOptions::from_flags(c, p)?;
    let progress = c.progress();
    let r = converge_project(c, opts, &progress, false).await;
    progress.finish();
    r.map(|_| ())
}

/// `start`: the services' existing containers, in dependency order.
pub async fn start_command(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    c.check_services(&p.args)?;
    let all = c.containers(true, OneOff::Exclude).await?;
    let targets: BTreeSet<String> = if p.args.is_empty() {
        all.iter()
            .map(|x| x.service.clone())
            .filter(|s| c.project.services.contains_key(s))
            .collect()
    } else {
        p.args.iter().cloned().collect()
    };
    let mut ready: BTreeMap<String, Vec<Ready>> = BTreeMap::new();
    for x in &all {
        if targets.contains(&x.service) {
            ready.entry(x.service.clone()).or_default().push(Ready {
                id: x.id.clone(),
                name: x.name.clone(),
                running: x.running(),
                started: None,
            });
        }
    }
    for t in &targets {
        if !ready.contains_key(t) {
            anyhow::bail!("service {t:?} has no container to start");
        }
    }
    let progress = c.progress();
    let session = Arc::new(Session {
        client: c.client.clone(),
        project: c.project.clone(),
        progress: progress.clone(),
        images: BTreeMap::new(),
        observed: BTreeMap::new(),
        ready: Mutex::new(ready),
        opts: UpOptions::default(),
        multi_endpoint: true,
    });
    let s2 = session.clone();
    let deps = deps_among(&c.project, &targets);
    let r = in_dependency_order(deps, move |svc| start_service(s2.clone(), svc)).await;
    if r.is_ok() && p.bool("wait") {
        let t = p.string("wait-timeout").parse::<u64>().ok();
        let w = wait_running(&session, &targets, t).await;
        progress.finish();
        return w;
    }
    progress.finish();
    r
}
