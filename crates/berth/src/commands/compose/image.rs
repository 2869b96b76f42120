//! `build`, `pull` and `push` of service images, and the image steps of `up`.
//!
//! A build sends the service's context directory as a tar to the daemon's `POST /build`
//! (the classic builder protocol, which berthd and dockerd both serve), tagged with the
//! service's image name (`PROJECT-SERVICE` when the service has no `image`).

use super::up::{id_of, image_id};
use super::{Compose, Progress};
use crate::client::{empty_body, Client};
use crate::commands::esc;
use crate::flags::Parsed;
use berth_core::reference::Reference;
use bytes::Bytes;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// `build` flags that change a build.
#[derive(Debug, Clone, Default)]
pub struct BuildFlags {
    pub no_cache: bool,
    pub pull: bool,
    pub quiet: bool,
    pub args: Vec<String>,
}

fn auth_header(domain: &str) -> String {
    let dir = crate::config::config_dir(None);
    crate::config::ConfigFile::load(&dir)
        .and_then(|cfg| crate::config::registry_auth_header(&cfg, domain))
        .unwrap_or_else(|_| "e30=".to_string())
}

/// Pulls one image reference with progress; returns its id.
pub async fn pull_one(
    c: &Compose,
    reference: &str,
    quiet: bool,
    progress: &Progress,
) -> anyhow::Result<String> {
    let r = Reference::parse_with_default_tag(reference).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut q = vec![("fromImage", r.repository())];
    if let Some(d) = r.digest() {
        q.push(("tag", d.to_string()));
    } else if let Some(t) = r.tag() {
        q.push(("tag", t.to_string()));
    }
    let id = id_of("Image", reference);
    progress.working(&id, "Pulling");
    let result = async {
        registry_call(&c.client, "/images/create", &q, r.domain()).await?;
        image_id(&c.client, reference)
            .await?
            .ok_or_else(|| anyhow::anyhow!("pull of {reference} left no image"))
    }
    .await;
    match result {
        Ok(img) => {
            progress.done(&id, "Pulled");
            Ok(img)
        }
        Err(e) => {
            progress.error(&id, "Error");
            let _ = quiet;
            Err(anyhow::anyhow!(
                "pull access denied or image not found for {reference}: {e}"
            ))
        }
    }
}

/// Builds one service's image; returns the new image's id.
pub async fn build_service(c: &Compose, svc: &str, flags: &BuildFlags) -> anyhow::Result<String> {
    let s = &c.project.services[svc];
    let b = s
        .build
        .clone()
        .ok_or_else(|| anyhow::anyhow!("service {svc:?} has no build section"))?;
    let image = berth_compose::names::image_name(&c.project.name, svc, s);
    let context = b.context.clone().unwrap_or_else(|| ".".into());
    let mut q: Vec<(&str, String)> = vec![("t", image.clone())];
    for t in &b.tags {
        q.push(("t", t.clone()));
    }
    let mut args: BTreeMap<String, Option<String>> = b.args.clone();
    for a in &flags.args {
        match a.split_once('=') {
            Some((k, v)) => args.insert(k.to_string(), Some(v.to_string())),
            None => args.insert(a.clone(), std::env::var(a).ok()),
        };
    }
    let args: BTreeMap<String, Option<String>> = args
        .into_iter()
        .map(|(k, v)| {
            let v = v.or_else(|| c.project.environment.get(&k).cloned());
            (k, v)
        })
        .collect();
    if !args.is_empty() {
        q.push(("buildargs", serde_json::to_string(&args)?));
    }
    if !b.labels.is_empty() {
        q.push(("labels", serde_json::to_string(&b.labels)?));
    }
    if let Some(t) = &b.target {
        q.push(("target", t.clone()));
    }
    if let Some(n) = &b.network {
        q.push(("networkmode", n.clone()));
    }
    if let Some(shm) = b.shm_size {
        q.push(("shmsize", shm.to_string()));
    }
    for h in &b.extra_hosts {
        q.push(("extrahosts", h.clone()));
    }
    if flags.no_cache || b.no_cache == Some(true) {
        q.push(("nocache", "1".into()));
    }
    if flags.pull || b.pull == Some(true) {
        q.push(("pull", "1".into()));
    }
    if !b.cache_from.is_empty() {
        q.push(("cachefrom", serde_json::to_string(&b.cache_from)?));
    }
    let body: Vec<u8>;
    if context.contains("://") || context.starts_with("git@") {
        q.push(("remote", context.clone()));
        if let Some(f) = &b.dockerfile {
            q.push(("dockerfile", f.clone()));
        }
        body = Vec::new();
    } else {
        if !Path::new(&context).is_dir() {
            anyhow::bail!("service {svc:?}: build context {context} is not a directory");
        }
        let (file, inline) = (b.dockerfile.clone(), b.dockerfile_inline.clone());
        let (tar, dockerfile) = tokio::task::spawn_blocking(move || {
            crate::commands::build::service_context(&context, file.as_deref(), inline.as_deref())
        })
        .await??;
        q.push(("dockerfile", dockerfile));
        body = tar;
    }
    if !flags.quiet {
        eprintln!("Building {svc}");
    }
    let res = c
        .client
        .send(
            hyper::Method::POST,
            "/build",
            &q,
            crate::client::bytes_body(Bytes::from(body)),
            &[
                ("Content-Type", "application/x-tar".to_string()),
                ("X-Registry-Config", "e30=".to_string()),
            ],
        )
        .await?;
    let mut stream = res.into_body();
    let mut out = std::io::stderr();
    crate::client::for_each_line(&mut stream, |line| {
        let Ok(m) = serde_json::from_slice::<Json>(line) else {
            return Ok(());
        };
        if let Some(e) = m.get("error").and_then(Json::as_str) {
            anyhow::bail!("failed to build service {svc:?}: {e}");
        }
        if !flags.quiet {
            if let Some(s) = m.get("stream").and_then(Json::as_str) {
                let _ = out.write_all(s.as_bytes());
            }
        }
        Ok(())
    })
    .await?;
    image_id(&c.client, &image)
        .await?
        .ok_or_else(|| anyhow::anyhow!("build of service {svc:?} did not produce {image}"))
}

pub async fn build_command(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    c.check_services(&p.args)?;
    let mut services = c.selected_with_deps(&p.args, p.bool("with-dependencies"));
    services.retain(|s| c.project.services.get(s).is_some_and(|x| x.build.is_some()));
    let flags = BuildFlags {
        no_cache: p.bool("no-cache"),
        pull: p.bool("pull"),
        quiet: p.bool("quiet"),
        args: p.list("build-arg"),
    };
    for svc in services {
        build_service(c, &svc, &flags).await?;
    }
    Ok(())
}

pub async fn pull_command(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    c.check_services(&p.args)?;
    let services = c.selected_with_deps(&p.args, p.bool("include-deps"));
    let progress = c.progress();
    let mut refs: BTreeMap<String, ()> = BTreeMap::new();
    for svc in &services {
        let s = &c.project.services[svc];
        if s.image.is_none() || (p.bool("ignore-buildable") && s.build.is_some()) {
            continue;
        }
        let r = berth_compose::names::image_name(&c.project.name, svc, s);
        if p.string("policy") == "missing" && image_id(&c.client, &r).await?.is_some() {
            continue;
        }
        refs.insert(r, ());
    }
    let jobs = refs
        .keys()
        .map(|r| pull_one(c, r, p.bool("quiet"), &progress));
    let results = futures_util::future::join_all(jobs).await;
    progress.finish();
    let errors: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    if !errors.is_empty() && !p.bool("ignore-pull-failures") {
        anyhow::bail!("{}", errors.join("\n"));
    }
    Ok(())
}

async fn push_one(client: &Client, reference: &str) -> anyhow::Result<()> {
    let r = Reference::parse_with_default_tag(reference).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut q = Vec::new();
    if let Some(t) = r.tag() {
        q.push(("tag", t.to_string()));
    }
    let path = format!("/images/{}/push", esc(&r.familiar_repository()));
    registry_call(client, &path, &q, r.domain()).await
}

/// A pull or push: the request with the registry's credentials, its progress shown.
async fn registry_call(
    client: &Client,
    path: &str,
    q: &[(&str, String)],
    domain: &str,
) -> anyhow::Result<()> {
    let res = client
        .send(
            hyper::Method::POST,
            path,
            q,
            empty_body(),
            &[("X-Registry-Auth", auth_header(domain))],
        )
        .await?;
    let mut body = res.into_body();
    crate::progress::display(&mut body, true, false, true)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

pub async fn push_command(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    c.check_services(&p.args)?;
    let services = c.selected_with_deps(&p.args, p.bool("include-deps"));
    let progress = c.progress();
    let mut errors = Vec::new();
    for svc in services {
        let s = &c.project.services[&svc];
        let Some(image) = s.image.clone() else {
            continue;
        };
        let id = id_of("Image", &image);
        progress.working(&id, "Pushing");
        match push_one(&c.client, &image).await {
            Ok(()) => progress.done(&id, "Pushed"),
            Err(e) => {
                progress.error(&id, "Error");
                errors.push(format!("failed to push {image}: {e}"));
            }
        }
    }
    progress.finish();
    if !errors.is_empty() && !p.bool("ignore-push-failures") {
        anyhow::bail!("{}", errors.join("\n"));
    }
    Ok(())
}
