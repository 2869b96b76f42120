//! `run` (a one-off container of a service, `PROJECT-SERVICE-run-XXXXXXXXXXXX`, after its
//! dependencies are up) and `exec` (a command in a service's running container). Both hand
//! the attached session to the same code as `berth run` and `berth exec`.

use super::up::{converge_project, ensure_networks, ensure_volumes, image_id, UpOptions};
use super::{Compose, Ctx, OneOff};
use crate::commands::container::start_attached;
use crate::flags::Parsed;
use crate::opts::CreateRequest;
use crate::term;
use berth_compose::{names, short, ContainerContext};
use serde_json::json;
use std::collections::BTreeSet;

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    hex_string(&b)
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub async fn exec(ctx: &mut Ctx, c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    if p.args.len() < 2 {
        anyhow::bail!("\"berth compose exec\" requires at least 2 arguments: SERVICE COMMAND");
    }
    let svc = &p.args[0];
    c.check_services(std::slice::from_ref(svc))?;
    let index: u64 = p.string("index").parse().unwrap_or(0);
    let list = c
        .service_containers(std::slice::from_ref(svc), false)
        .await?;
    let target = list
        .iter()
        .filter(|x| x.state == "running")
        .find(|x| index == 0 || x.number == index)
        .ok_or_else(|| anyhow::anyhow!("service {svc:?} is not running"))?;
    let tty = !p.bool("no-TTY") && term::stdin_is_tty() && term::stdout_is_tty();
    let mut argv: Vec<String> = Vec::new();
    if p.bool("detach") {
        argv.push("-d".into());
    }
    if p.bool("interactive") && !p.bool("detach") {
        argv.push("-i".into());
    }
    if tty {
        argv.push("-t".into());
    }
    if p.bool("privileged") {
        argv.push("--privileged".into());
    }
    for (flag, name) in [("user", "-u"), ("workdir", "-w")] {
        let v = p.string(flag);
        if !v.is_empty() {
            argv.extend([name.to_string(), v]);
        }
    }
    for e in p.list("env") {
        argv.extend(["-e".to_string(), e]);
    }
    argv.push(target.id.clone());
    argv.extend(p.args[1..].iter().cloned());
    let spec = crate::commands::command("exec")
        .expect("exec has a spec")
        .spec;
    let parsed = crate::flags::parse(&spec, &argv).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    crate::commands::exec::exec(ctx, &parsed).await
}

pub async fn run(_ctx: &mut Ctx, c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    let Some(svc) = p.args.first().cloned() else {
        anyhow::bail!("\"berth compose run\" requires at least 1 argument: SERVICE");
    };
    c.check_services(std::slice::from_ref(&svc))?;
    let mut s = c.project.services[&svc].clone();
    if p.args.len() > 1 {
        s.command = Some(p.args[1..].to_vec());
    }
    let ep = p.string("entrypoint");
    if !ep.is_empty() {
        s.entrypoint =
            Some(shell_words::split(&ep).map_err(|e| anyhow::anyhow!("--entrypoint: {e}"))?);
    }
    for e in p.list("env") {
        match e.split_once('=') {
            Some((k, v)) => s.environment.insert(k.to_string(), Some(v.to_string())),
            None => s.environment.insert(e.clone(), std::env::var(&e).ok()),
        };
    }
    s.environment.retain(|_, v| v.is_some());
    for l in p.list("label") {
        let (k, v) = l.split_once('=').unwrap_or((&l, ""));
        s.labels.insert(k.to_string(), v.to_string());
    }
    for (flag, field) in [("user", &mut s.user), ("workdir", &mut s.working_dir)] {
        let v = p.string(flag);
        if !v.is_empty() {
            *field = Some(v);
        }
    }
    if !p.bool("service-ports") {
        s.ports.clear();
    }
    for spec in p.list("publish") {
        s.ports
            .extend(short::parse_port(&spec).map_err(|e| anyhow::anyhow!("--publish: {e}"))?);
    }
    for spec in p.list("volume") {
        let mut v = short::parse_volume(&spec).map_err(|e| anyhow::anyhow!("--volume: {e}"))?;
        if v.kind == "bind" {
            if let Some(src) = &v.source {
                v.source = Some(std::env::current_dir()?.join(src).display().to_string());
            }
        }
        s.volumes.push(v);
    }
    // A one-off container has no scale, restart policy or container name of its own.
    s.container_name = None;
    s.restart = None;
    let detach = p.bool("detach");
    let tty = !p.bool("no-TTY") && term::stdin_is_tty() && term::stdout_is_tty() && !detach;
    s.tty = Some(tty);
    s.stdin_open = Some(p.bool("interactive") && !detach);

    // Dependencies first, as `up -d` would bring them.
    let deps: BTreeSet<String> = if p.bool("no-deps") {
        BTreeSet::new()
    } else {
        berth_compose::graph::with_dependencies(&c.project, std::slice::from_ref(&svc))
            .into_iter()
            .filter(|d| *d != svc)
            .collect()
    };
    let progress = c.progress();
    if !deps.is_empty() {
        let opts = UpOptions {
            services: deps.iter().cloned().collect(),
            remove_orphans: p.bool("remove-orphans"),
            ..Default::default()
        };
        let r = converge_project(c, opts, &progress, true).await;
        if let Err(e) = r {
            progress.finish();
            return Err(e);
        }
    }
    let image = names::image_name(&c.project.name, &svc, &s);
    let mut id = image_id(&c.client, &image).await?;
    if id.is_none() || p.bool("build") {
        id = Some(if s.build.is_some() {
            super::image::build_service(c, &svc, &Default::default()).await?
        } else {
            super::image::pull_one(c, &image, p.bool("quiet-pull"), &progress).await?
        });
    }
    let networks: BTreeSet<String> = s.networks.keys().cloned().collect();
    let volumes: BTreeSet<String> = s
        .volumes
        .iter()
        .filter(|v| v.kind == "volume")
        .filter_map(|v| v.source.clone())
        .collect();
    ensure_networks(c, &networks, &progress).await?;
    ensure_volumes(c, &volumes, &progress).await?;
    progress.finish();

    let name = match p.string("name") {
        n if n.is_empty() => names::run_container_name(&c.project, &svc, &random_hex(6)),
        n => n,
    };
    let running = c.containers(false, OneOff::Exclude).await?;
    let container_of = |other: &str| {
        running
            .iter()
            .find(|x| x.service == other)
            .map(|x| x.name.clone())
    };
    let spec = c.project.create_spec(
        &s,
        &ContainerContext {
            service: &svc,
            number: 1,
            name: name.clone(),
            oneoff: true,
            image,
            image_id: id,
            container_of: &container_of,
            anonymous_volumes: Default::default(),
        },
    )?;
    let mut body = spec.body;
    let attach = !detach;
    body["AttachStdin"] = json!(attach && p.bool("interactive"));
    body["AttachStdout"] = json!(attach);
    body["AttachStderr"] = json!(attach);
    body["StdinOnce"] = json!(attach && p.bool("interactive"));
    body["HostConfig"]["AutoRemove"] = json!(p.bool("rm"));
    if p.bool("use-aliases") {
        if let Some(eps) = body["NetworkingConfig"]["EndpointsConfig"].as_object_mut() {
            for ep in eps.values_mut() {
                ep["Aliases"] = json!([svc]);
            }
        }
    }
    let created = c
        .client
        .post_json("/containers/create", &[("name", name.clone())], Some(&body))
        .await?;
    let cid = created["Id"].as_str().unwrap_or("").to_string();
    if detach {
        super::post_ok(&c.client, &super::ctr_path(&cid, "start"), &[]).await?;
        println!("{name}");
        return Ok(());
    }
    let req = CreateRequest {
        body,
        image: String::new(),
        name,
        tty,
        attach_stdin: p.bool("interactive"),
        attach_stdout: true,
        attach_stderr: true,
        auto_remove: p.bool("rm"),
        cidfile: String::new(),
        platform: String::new(),
        pull: String::new(),
        quiet: true,
    };
    start_attached(
        &c.client,
        &cid,
        &req,
        true,
        (String::new(), crate::stream::DEFAULT_DETACH_KEYS.to_vec()),
    )
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_names_use_twelve_hex_digits() {
        assert_eq!(super::random_hex(6).len(), 12);
        assert_eq!(super::hex_string(&[0, 255]), "00ff");
    }
}
