//! `down`, `stop`, `restart`, `rm`, `kill`, `pause`, `unpause` and `wait` on a project's
//! containers. Stopping goes in reverse dependency order (dependents first), as Compose
//! does, so a database outlives the services that use it.

use super::up::{id_of, remove_container, stop_container};
use super::{
    ctr_path, dependents_among, deps_among, in_dependency_order, post_ok, Compose, Ctr, OneOff,
    Progress,
};
use crate::commands::esc;
use crate::flags::Parsed;
use berth_compose::model::External;
use berth_compose::names;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

/// Groups containers by service and runs `f` on each group, dependents first (stop order).
async fn per_service_reverse<F, Fut>(c: &Compose, ctrs: Vec<Ctr>, f: F) -> anyhow::Result<()>
where
    F: Fn(Ctr) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    per_service(c, ctrs, true, f).await
}

/// Groups containers by service and runs `f` on each group, dependencies first (start
/// order), or dependents first when `reverse`.
async fn per_service<F, Fut>(c: &Compose, ctrs: Vec<Ctr>, reverse: bool, f: F) -> anyhow::Result<()>
where
    F: Fn(Ctr) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut groups: BTreeMap<String, Vec<Ctr>> = BTreeMap::new();
    for x in ctrs {
        groups.entry(x.service.clone()).or_default().push(x);
    }
    let names: BTreeSet<String> = groups.keys().cloned().collect();
    let order = if reverse {
        dependents_among(&c.project, &names)
    } else {
        let mut order = deps_among(&c.project, &names);
        for n in &names {
            order.entry(n.clone()).or_default();
        }
        order
    };
    in_dependency_order(order, move |svc| {
        let list = groups.get(&svc).cloned().unwrap_or_default();
        let f = f.clone();
        async move {
            futures_util::future::try_join_all(list.into_iter().map(f))
                .await
                .map(|_| ())
        }
    })
    .await
}

/// Names of the project's resources of one kind (`networks`, `volumes`) the daemon has
/// labelled with the project.
async fn labelled(c: &Compose, kind: &str) -> anyhow::Result<Vec<String>> {
    let filters = json!({"label": [names::project_filter(&c.project.name)]}).to_string();
    let v = c
        .client
        .get_json(&format!("/{kind}"), &[("filters", filters)])
        .await?;
    let list = if kind == "volumes" { &v["Volumes"] } else { &v };
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["Name"].as_str().map(str::to_string))
        .collect())
}

pub async fn down(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    let timeout = super::timeout_query(p)?;
    let rmi = p.string("rmi");
    if !matches!(rmi.as_str(), "" | "local" | "all") {
        anyhow::bail!("invalid --rmi option {rmi:?}: must be \"local\" or \"all\"");
    }
    let volumes = p.bool("volumes");
    let all = c.containers(true, OneOff::Include).await?;
    let known = |s: &str| c.project.services.contains_key(s) || c.project.disabled.contains_key(s);
    // Without the files (`-p` only) every container of the project is its own.
    let no_files = c.project.config_files.is_empty();
    let (mine, orphans): (Vec<Ctr>, Vec<Ctr>) =
        all.into_iter().partition(|x| no_files || known(&x.service));
    let mut targets = mine;
    if p.bool("remove-orphans") {
        targets.extend(orphans);
    } else if !orphans.is_empty() {
        let names: Vec<&str> = orphans
            .iter()
            .filter(|o| !o.oneoff)
            .map(|o| o.name.as_str())
            .collect();
        if !names.is_empty() {
            eprintln!(
                "WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
                names.join(" ")
            );
        }
    }
    let progress = c.progress();
    let client = c.client.clone();
    let prog = progress.clone();
    let t = timeout.clone();
    let result = per_service_reverse(c, targets, move |x| {
        let client = client.clone();
        let progress = prog.clone();
        let t = t.clone();
        async move { remove_container(&client, &progress, &x, &t, volumes).await }
    })
    .await;
    if let Err(e) = result {
        progress.finish();
        return Err(e);
    }
    // Networks: the project's own (not external), and any the daemon has labelled.
    let mut nets: BTreeSet<String> = c
        .project
        .networks
        .iter()
        .filter(|(_, n)| !External::is_external(&n.external))
        .map(|(k, _)| c.project.network_name(k))
        .collect();
    nets.extend(labelled(c, "networks").await?);
    let mut errors = Vec::new();
    for name in nets {
        let path = format!("/networks/{}", esc(&name));
        remove_resource(c, &progress, "Network", &name, &path, &path, &mut errors).await?;
    }
    if volumes {
        let mut vols: BTreeSet<String> = c
            .project
            .volumes
            .iter()
            .filter(|(_, v)| !External::is_external(&v.external))
            .map(|(k, _)| c.project.volume_name(k))
            .collect();
        vols.extend(labelled(c, "volumes").await?);
        for name in vols {
            let path = format!("/volumes/{}", esc(&name));
            remove_resource(c, &progress, "Volume", &name, &path, &path, &mut errors).await?;
        }
    }
    if !rmi.is_empty() {
        let mut images = BTreeSet::new();
        for (svc, s) in c.project.services.iter() {
            if rmi == "all" || s.image.is_none() {
                images.insert(names::image_name(&c.project.name, svc, s));
            }
        }
        for img in images {
            let path = format!("/images/{}", esc(&img));
            let inspect = format!("{path}/json");
            remove_resource(c, &progress, "Image", &img, &inspect, &path, &mut errors).await?;
        }
    }
    progress.finish();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(errors.join("\n")))
    }
}

/// Removes a network, volume or image (`kind`, as progress names it) that `inspect` finds,
/// with progress; one already gone is skipped, a failure is added to `errors`.
async fn remove_resource(
    c: &Compose,
    progress: &Progress,
    kind: &str,
    name: &str,
    inspect: &str,
    path: &str,
    errors: &mut Vec<String>,
) -> anyhow::Result<()> {
    match c.client.get_json(inspect, &[]).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let id = id_of(kind, name);
    progress.working(&id, "Removing");
    match c.client.delete(path, &[]).await {
        Ok(_) => progress.done(&id, "Removed"),
        Err(e) if e.is_not_found() => progress.done(&id, "Removed"),
        Err(e) => {
            progress.error(&id, "Error");
            errors.push(format!(
                "failed to remove {} {name}: {e}",
                kind.to_lowercase()
            ));
        }
    }
    Ok(())
}

pub async fn stop(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    let timeout = super::timeout_query(p)?;
    let ctrs: Vec<Ctr> = c
        .service_containers(&p.args, false)
        .await?
        .into_iter()
        .filter(Ctr::running)
        .collect();
    let progress = c.progress();
    let client = c.client.clone();
    let prog = progress.clone();
    let r = per_service_reverse(c, ctrs, move |x| {
        let client = client.clone();
        let progress = prog.clone();
        let t = timeout.clone();
        async move { stop_container(&client, &progress, &x.id, &x.name, &t).await }
    })
    .await;
    progress.finish();
    r
}

/// A simple per-container operation with `Working`/`Done` words.
async fn each(
    c: &Compose,
    ctrs: Vec<Ctr>,
    op: &'static str,
    query: Vec<(&'static str, String)>,
    words: (&'static str, &'static str),
    reverse: bool,
) -> anyhow::Result<()> {
    let progress = c.progress();
    let client = c.client.clone();
    let prog = progress.clone();
    let f = move |x: Ctr| {
        let client = client.clone();
        let progress = prog.clone();
        let q = query.clone();
        async move {
            let id = id_of("Container", &x.name);
            progress.working(&id, words.0);
            match post_ok(&client, &ctr_path(&x.id, op), &q).await {
                Ok(()) => {
                    progress.done(&id, words.1);
                    Ok(())
                }
                Err(e) => {
                    progress.error(&id, "Error");
                    Err(e)
                }
            }
        }
    };
    let r = per_service(c, ctrs, reverse, f).await;
    progress.finish();
    r
}

pub async fn restart(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    let q = super::timeout_query(p)?;
    let ctrs = c.service_containers(&p.args, true).await?;
    each(c, ctrs, "restart", q, ("Restarting", "Started"), false).await
}

pub async fn kill(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    let ctrs: Vec<Ctr> = c
        .service_containers(&p.args, false)
        .await?
        .into_iter()
        .filter(Ctr::running)
        .collect();
    if p.bool("remove-orphans") {
        let all = c.containers(true, OneOff::Exclude).await?;
        let progress = c.progress();
        for o in all
            .iter()
            .filter(|x| !c.project.services.contains_key(&x.service))
        {
            remove_container(&c.client, &progress, o, &[], false).await?;
        }
        progress.finish();
    }
    let signal = p.string("signal");
    each(
        c,
        ctrs,
        "kill",
        vec![("signal", signal)],
        ("Killing", "Killed"),
        true,
    )
    .await
}

pub async fn pause(c: &Compose, p: &Parsed, pause: bool) -> anyhow::Result<()> {
    let ctrs: Vec<Ctr> = c
        .service_containers(&p.args, false)
        .await?
        .into_iter()
        .filter(|x| {
            if pause {
                x.state == "running"
            } else {
                x.state == "paused"
            }
        })
        .collect();
    if pause {
        each(c, ctrs, "pause", vec![], ("Pausing", "Paused"), true).await
    } else {
        each(c, ctrs, "unpause", vec![], ("Unpausing", "Unpaused"), false).await
    }
}

pub async fn rm(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    let mut ctrs = c.service_containers(&p.args, true).await?;
    if p.bool("stop") {
        let running: Vec<Ctr> = ctrs.iter().filter(|x| x.running()).cloned().collect();
        let progress = c.progress();
        let client = c.client.clone();
        let prog = progress.clone();
        let r = per_service_reverse(c, running, move |x| {
            let client = client.clone();
            let progress = prog.clone();
            async move { stop_container(&client, &progress, &x.id, &x.name, &[]).await }
        })
        .await;
        progress.finish();
        r?;
        ctrs = c.service_containers(&p.args, true).await?;
    }
    let stopped: Vec<Ctr> = ctrs.into_iter().filter(|x| !x.running()).collect();
    if stopped.is_empty() {
        eprintln!("No stopped containers");
        return Ok(());
    }
    if !p.bool("force") {
        let names: Vec<&str> = stopped.iter().map(|x| x.name.as_str()).collect();
        println!("Going to remove {}", names.join(", "));
        if !crate::commands::confirm("? Are you sure?") {
            return Ok(());
        }
    }
    let volumes = p.bool("volumes");
    let progress = c.progress();
    let jobs = stopped
        .iter()
        .map(|x| remove_container(&c.client, &progress, x, &[], volumes));
    let r = futures_util::future::try_join_all(jobs).await.map(|_| ());
    progress.finish();
    r
}

/// `wait`: blocks until the services' containers stop, printing each exit code.
pub async fn wait(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    if p.args.is_empty() {
        anyhow::bail!("\"berth compose wait\" requires at least 1 argument");
    }
    let ctrs = c.service_containers(&p.args, true).await?;
    if ctrs.is_empty() {
        anyhow::bail!("no containers for project {:?}", c.project.name);
    }
    let jobs = ctrs.iter().map(|x| {
        let client = c.client.clone();
        let id = x.id.clone();
        Box::pin(async move { super::up::wait_exit(&client, &id).await })
    });
    if p.bool("down-project") {
        let (code, _, _) = futures_util::future::select_all(jobs).await;
        println!("{}", code?);
        let spec = super::sub_spec("down").expect("down has a spec");
        let parsed =
            crate::flags::parse(&spec, &[]).map_err(|_| anyhow::anyhow!("parsing down flags"))?;
        return down(c, &parsed).await;
    }
    for code in futures_util::future::join_all(jobs).await {
        println!("{}", code?);
    }
    Ok(())
}
