//! Container lifecycle commands: run, create, start, stop, restart, kill, pause, rm, wait,
//! rename, update, port, top, logs and container prune.

use super::{esc, filters_json, for_each, Ctx};
use crate::client::{Client, ClientError};
use crate::flags::{Parsed, Spec};
use crate::opts::{build_create, CreateRequest, InvalidArgument};
use crate::stream::{self, Ended, PumpOptions};
use crate::{term, StatusError};
use serde_json::{json, Value as Json};
use std::io::Write;

/// docker's `withHelp`: `berth: <err>` plus the pointer to `--help`.
fn with_help(err: impl std::fmt::Display, cmd: &str) -> String {
    format!("berth: {err}\n\nRun 'berth {cmd} --help' for more information")
}

/// docker's `toStatusError`: 127 when the command was not found, 126 when it could not be
/// invoked, 125 for any other failure of the daemon or the CLI.
pub fn exit_code_for_start_error(msg: &str) -> i32 {
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

fn to_status_error(err: anyhow::Error) -> anyhow::Error {
    if err.downcast_ref::<StatusError>().is_some() {
        return err;
    }
    let msg = format!("{err:#}");
    StatusError::exit(exit_code_for_start_error(&msg), with_help(msg, "run"))
}

fn request(p: &Parsed, cmd: &str) -> anyhow::Result<CreateRequest> {
    let console = if term::stdout_is_tty() {
        term::size().unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    build_create(p, console).map_err(|e| {
        if e.downcast_ref::<InvalidArgument>().is_some() {
            e
        } else {
            StatusError::exit(125, with_help(e, cmd))
        }
    })
}

/// `docker pull` as run/create do it on a missing image: progress to stderr.
async fn pull_for_create(
    client: &Client,
    image: &str,
    platform: &str,
    quiet: bool,
    auth: &str,
) -> anyhow::Result<()> {
    let r = berth_core::reference::Reference::parse_with_default_tag(image)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut q = vec![("fromImage", r.familiar_repository())];
    if let Some(t) = r.tag() {
        q.push(("tag", t.to_string()));
    }
    if let Some(d) = r.digest() {
        q[0].1 = format!("{}@{d}", r.familiar_repository());
    }
    if !platform.is_empty() {
        q.push(("platform", platform.to_string()));
    }
    let res = client
        .send(
            hyper::Method::POST,
            "/images/create",
            &q,
            crate::client::empty_body(),
            &[("X-Registry-Auth", auth.to_string())],
        )
        .await?;
    let mut body = res.into_body();
    crate::progress::display(
        &mut body,
        true,
        term::stdout_is_tty() && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        quiet,
    )
    .await
    .map_err(|e| {
        if e.downcast_ref::<crate::progress::StreamError>().is_some() {
            anyhow::anyhow!("{e}")
        } else {
            e
        }
    })?;
    Ok(())
}

/// The create half shared by run and create; returns the new container's id.
async fn create_container(ctx: &mut Ctx, req: &CreateRequest) -> anyhow::Result<String> {
    let client = ctx.client().await?.clone();
    // The cid file must not exist yet; it is written once the id is known.
    if !req.cidfile.is_empty() {
        if std::path::Path::new(&req.cidfile).exists() {
            anyhow::bail!(
                "container ID file found, make sure the other container isn't running or delete {}",
                req.cidfile
            );
        }
        std::fs::File::create(&req.cidfile)
            .map_err(|e| anyhow::anyhow!("failed to create the container ID file: {e}"))?;
    }
    let result = async {
        let named = berth_core::reference::Reference::parse_with_default_tag(&req.image).ok();
        let auth = match &named {
            Some(r) => ctx.registry_auth(r.domain())?,
            None => "e30=".to_string(),
        };
        if req.pull == "always" {
            pull_for_create(&client, &req.image, &req.platform, req.quiet, &auth).await?;
        }
        let mut q = Vec::new();
        if !req.name.is_empty() {
            q.push(("name", req.name.clone()));
        }
        if !req.platform.is_empty() {
            q.push(("platform", req.platform.clone()));
        }
        let resp = match client
            .post_json("/containers/create", &q, Some(&req.body))
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_not_found() && named.is_some() && req.pull == "missing" => {
                if !req.quiet {
                    eprintln!(
                        "Unable to find image '{}' locally",
                        named.as_ref().map(|n| n.familiar()).unwrap_or_default()
                    );
                }
                pull_for_create(&client, &req.image, &req.platform, req.quiet, &auth).await?;
                client
                    .post_json("/containers/create", &q, Some(&req.body))
                    .await?
            }
            Err(e) => return Err(e.into()),
        };
        let id = resp
            .get("Id")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        let mut warnings: Vec<String> = resp
            .get("Warnings")
            .and_then(Json::as_array)
            .map(|w| {
                w.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for d in req.body["HostConfig"]["Dns"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(ip) = d.as_str().and_then(|s| s.parse::<std::net::IpAddr>().ok()) {
                if ip.is_loopback() {
                    warnings.push(format!("Localhost DNS ({ip}) may fail in containers."));
                    break;
                }
            }
        }
        for w in warnings {
            eprintln!("WARNING: {w}");
        }
        Ok::<_, anyhow::Error>(id)
    }
    .await;
    if !req.cidfile.is_empty() {
        match &result {
            Ok(id) => std::fs::write(&req.cidfile, id).map_err(|e| {
                anyhow::anyhow!("failed to write the container ID to the file: {e}")
            })?,
            Err(_) => {
                let _ = std::fs::remove_file(&req.cidfile);
            }
        }
    }
    result
}

pub async fn create(ctx: &mut Ctx, p: &Parsed, _spec: &Spec) -> anyhow::Result<()> {
    let req = request(p, "create")?;
    let id = create_container(ctx, &req).await?;
    println!("{id}");
    Ok(())
}

/// Forwards the signals the CLI receives to the container (docker's `ForwardAllSignals`).
fn proxy_signals(client: Client, id: String) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<i32>();
        for sig in [1, 2, 3, 10, 12, 14, 15, 18, 20, 21, 22, 26, 27, 29, 30, 31] {
            if let Ok(mut s) = signal(SignalKind::from_raw(sig)) {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        if tx.send(sig).is_err() {
                            break;
                        }
                    }
                });
            }
        }
        while let Some(sig) = rx.recv().await {
            let name = berth_core::signal::name(sig);
            let _ = client
                .post(
                    &format!("/containers/{}/kill", esc(&id)),
                    &[("signal", name)],
                    None,
                )
                .await;
        }
    })
}

/// Sends the terminal size now and on every SIGWINCH.
fn monitor_tty_size(client: Client, path: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let resize = |client: Client, path: String| async move {
            if let Some((h, w)) = term::size() {
                let _ = client
                    .post(&path, &[("h", h.to_string()), ("w", w.to_string())], None)
                    .await;
            }
        };
        resize(client.clone(), path.clone()).await;
        if let Ok(mut s) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        {
            while s.recv().await.is_some() {
                resize(client.clone(), path.clone()).await;
            }
        }
    })
}

pub fn detach_keys(p: &Parsed) -> (String, Vec<u8>) {
    let given = p.string("detach-keys");
    if given.is_empty() {
        return (String::new(), stream::DEFAULT_DETACH_KEYS.to_vec());
    }
    match stream::parse_detach_keys(&given) {
        Ok(k) => (given, k),
        Err(_) => (given, stream::DEFAULT_DETACH_KEYS.to_vec()),
    }
}

/// Waits for a container, as docker's `waitExitOrRemoved`: the exit code, or 125.
fn wait_exit(client: Client, id: String, removed: bool) -> tokio::task::JoinHandle<i32> {
    tokio::spawn(async move {
        let cond = if removed { "removed" } else { "next-exit" };
        match client
            .post_json(
                &format!("/containers/{}/wait", esc(&id)),
                &[("condition", cond.to_string())],
                None,
            )
            .await
        {
            Ok(v) => {
                if let Some(msg) = v
                    .get("Error")
                    .and_then(|e| e.get("Message"))
                    .and_then(Json::as_str)
                {
                    eprintln!("Error waiting for container: {msg}");
                    return 125;
                }
                v.get("StatusCode").and_then(Json::as_i64).unwrap_or(125) as i32
            }
            Err(e) => {
                eprintln!("Error waiting for container: {e}");
                125
            }
        }
    })
}

pub async fn run(ctx: &mut Ctx, p: &Parsed, _spec: &Spec) -> anyhow::Result<()> {
    let mut req = request(p, "run")?;
    let detach = p.bool("detach");
    if detach {
        if !p.list("attach").is_empty() {
            anyhow::bail!("conflicting options: cannot specify both --attach and --detach");
        }
        for k in ["AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce"] {
            req.body[k] = Json::Bool(false);
        }
        req.attach_stdin = false;
        req.attach_stdout = false;
        req.attach_stderr = false;
    } else if req.attach_stdin && req.tty && !term::stdin_is_tty() {
        anyhow::bail!("the input device is not a TTY");
    }
    let client = match ctx.client().await {
        Ok(c) => c.clone(),
        Err(e) => return Err(to_status_error(e)),
    };
    let id = create_container(ctx, &req).await.map_err(to_status_error)?;
    let attach = req.attach_stdin || req.attach_stdout || req.attach_stderr;
    if !attach {
        client
            .post(&format!("/containers/{}/start", esc(&id)), &[], None)
            .await
            .map_err(|e| to_status_error(e.into()))?;
        println!("{id}");
        return Ok(());
    }
    start_attached(&client, &id, &req, p.bool("sig-proxy"), detach_keys(p)).await
}

/// The attached half of `run` (also `compose run`): attaches to the created container,
/// starts it, streams its output (and stdin) and returns its exit status as docker does.
pub async fn start_attached(
    client: &Client,
    id: &str,
    req: &CreateRequest,
    sig_proxy: bool,
    (keys_str, keys): (String, Vec<u8>),
) -> anyhow::Result<()> {
    let client = client.clone();
    let id = id.to_string();
    let _signals = if sig_proxy {
        Some(proxy_signals(client.clone(), id.clone()))
    } else {
        None
    };
    let mut q = vec![("stream", "1".to_string())];
    if req.attach_stdin {
        q.push(("stdin", "1".into()));
    }
    if req.attach_stdout {
        q.push(("stdout", "1".into()));
    }
    if req.attach_stderr {
        q.push(("stderr", "1".into()));
    }
    if !keys_str.is_empty() {
        q.push(("detachKeys", keys_str));
    }
    let hijacked = client
        .hijack(&format!("/containers/{}/attach", esc(&id)), &q, None)
        .await
        .map_err(|e| to_status_error(e.into()))?;
    let status = wait_exit(client.clone(), id.clone(), req.auto_remove);
    let raw = if req.attach_stdin && req.tty {
        Some(term::RawMode::enable()?)
    } else {
        None
    };
    let opts = PumpOptions {
        tty: req.tty,
        stdin: req.attach_stdin,
        output: req.attach_stdout || req.attach_stderr,
        detach_keys: if req.tty { Some(keys) } else { None },
    };
    let mut session = tokio::spawn(stream::pump(hijacked, opts));
    if let Err(e) = client
        .post(&format!("/containers/{}/start", esc(&id)), &[], None)
        .await
    {
        session.abort();
        drop(raw);
        if req.auto_remove {
            let _ = status.await;
        }
        return Err(to_status_error(e.into()));
    }
    let _resize = if req.tty && term::stdout_is_tty() {
        Some(monitor_tty_size(
            client.clone(),
            format!("/containers/{}/resize", esc(&id)),
        ))
    } else {
        None
    };
    let mut status = status;
    let ended = tokio::select! {
        r = &mut session => r,
        code = &mut status => {
            // The container is gone; keep reading output until the daemon ends the stream.
            if !req.attach_stdout && !req.attach_stderr {
                session.abort();
            } else {
                let _ = (&mut session).await;
            }
            drop(raw);
            let code = code.unwrap_or(125);
            return if code != 0 { Err(StatusError::exit(code, "")) } else { Ok(()) };
        }
    };
    drop(raw);
    match ended {
        Ok(Ok(Ended::Detached)) => Ok(()),
        Ok(Err(e)) => Err(e),
        _ => {
            let code = status.await.unwrap_or(125);
            if code != 0 {
                Err(StatusError::exit(code, ""))
            } else {
                Ok(())
            }
        }
    }
}

pub async fn start(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let attach = p.bool("attach") || p.bool("interactive");
    if !attach {
        let mut failed = Vec::new();
        for c in &p.args {
            match client
                .post(&format!("/containers/{}/start", esc(c)), &[], None)
                .await
            {
                Ok(_) => println!("{c}"),
                Err(e) => {
                    if matches!(e, ClientError::Connect { .. }) {
                        return Err(e.into());
                    }
                    eprintln!("{e}");
                    failed.push(c.clone());
                }
            }
        }
        if !failed.is_empty() {
            anyhow::bail!("Error: failed to start containers: {}", failed.join(", "));
        }
        return Ok(());
    }
    if p.args.len() > 1 {
        anyhow::bail!("you cannot start and attach multiple containers at once");
    }
    let name = &p.args[0];
    let info = client
        .get_json(&format!("/containers/{}/json", esc(name)), &[])
        .await?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = p.bool("interactive") && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if tty && stdin && !term::stdin_is_tty() {
        anyhow::bail!("the input device is not a TTY");
    }
    let (keys_str, keys) = detach_keys(p);
    let mut q = vec![
        ("stream", "1".to_string()),
        ("stdout", "1".into()),
        ("stderr", "1".into()),
    ];
    if stdin {
        q.push(("stdin", "1".into()));
    }
    if !keys_str.is_empty() {
        q.push(("detachKeys", keys_str));
    }
    let _signals = if !tty {
        Some(proxy_signals(client.clone(), id.clone()))
    } else {
        None
    };
    let hijacked = client
        .hijack(&format!("/containers/{}/attach", esc(&id)), &q, None)
        .await?;
    let status = wait_exit(client.clone(), id.clone(), false);
    let raw = if stdin && tty {
        Some(term::RawMode::enable()?)
    } else {
        None
    };
    let session = tokio::spawn(stream::pump(
        hijacked,
        PumpOptions {
            tty,
            stdin,
            output: true,
            detach_keys: if tty { Some(keys) } else { None },
        },
    ));
    if let Err(e) = client
        .post(&format!("/containers/{}/start", esc(&id)), &[], None)
        .await
    {
        session.abort();
        drop(raw);
        return Err(e.into());
    }
    let _resize = if tty && term::stdout_is_tty() {
        Some(monitor_tty_size(
            client.clone(),
            format!("/containers/{}/resize", esc(&id)),
        ))
    } else {
        None
    };
    let ended = session.await;
    drop(raw);
    if let Ok(Ok(Ended::Detached)) = ended {
        return Ok(());
    }
    if let Ok(Err(e)) = ended {
        return Err(e);
    }
    let code = status.await.unwrap_or(125);
    if code != 0 {
        return Err(StatusError::exit(code, ""));
    }
    Ok(())
}

pub async fn stop_restart(ctx: &mut Ctx, p: &Parsed, restart: bool) -> anyhow::Result<()> {
    if p.changed("timeout") && p.changed("time") {
        anyhow::bail!("conflicting options: cannot specify both --timeout and --time");
    }
    let client = ctx.client().await?.clone();
    let mut q = Vec::new();
    for f in ["timeout", "time"] {
        if p.changed(f) {
            let t = p.string(f);
            let n: i64 = t.parse().map_err(|_| InvalidArgument(format!("invalid argument \"{t}\" for \"-t, --timeout\" flag: strconv.ParseInt: parsing \"{t}\": invalid syntax")))?;
            q.push(("t", n.to_string()));
        }
    }
    if !p.string("signal").is_empty() {
        q.push(("signal", p.string("signal")));
    }
    let op = if restart { "restart" } else { "stop" };
    for_each(&p.args, |c| {
        let client = client.clone();
        let q = q.clone();
        async move {
            client
                .post(&format!("/containers/{}/{op}", esc(&c)), &q, None)
                .await?;
            Ok(Some(c))
        }
    })
    .await
}

pub async fn kill(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let sig = p.string("signal");
    for_each(&p.args, |c| {
        let client = client.clone();
        let sig = sig.clone();
        async move {
            let q = if sig.is_empty() {
                vec![]
            } else {
                vec![("signal", sig)]
            };
            client
                .post(&format!("/containers/{}/kill", esc(&c)), &q, None)
                .await?;
            Ok(Some(c))
        }
    })
    .await
}

pub async fn pause(ctx: &mut Ctx, p: &Parsed, op: &str) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    for_each(&p.args, |c| {
        let client = client.clone();
        async move {
            client
                .post(&format!("/containers/{}/{op}", esc(&c)), &[], None)
                .await?;
            Ok(Some(c))
        }
    })
    .await
}

pub async fn rm(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let force = p.bool("force");
    let mut q = Vec::new();
    if p.bool("volumes") {
        q.push(("v", "1".to_string()));
    }
    if p.bool("link") {
        q.push(("link", "1".to_string()));
    }
    if force {
        q.push(("force", "1".to_string()));
    }
    let mut errs = Vec::new();
    for name in &p.args {
        let id = name.trim_matches('/');
        if id.is_empty() {
            errs.push("container name cannot be empty".to_string());
            continue;
        }
        match client.delete(&format!("/containers/{}", esc(id)), &q).await {
            Ok(_) => println!("{name}"),
            Err(e @ ClientError::Connect { .. }) => return Err(e.into()),
            Err(e) if force && e.is_not_found() => eprintln!("{e}"),
            Err(e) => errs.push(e.to_string()),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(StatusError::exit(1, errs.join("\n")))
    }
}

pub async fn wait(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    for_each(&p.args, |c| {
        let client = client.clone();
        async move {
            let v = client
                .post_json(&format!("/containers/{}/wait", esc(&c)), &[], None)
                .await?;
            if let Some(msg) = v
                .get("Error")
                .and_then(|e| e.get("Message"))
                .and_then(Json::as_str)
            {
                anyhow::bail!("{msg}");
            }
            Ok(Some(
                v.get("StatusCode")
                    .and_then(Json::as_i64)
                    .unwrap_or(0)
                    .to_string(),
            ))
        }
    })
    .await
}

pub async fn rename(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let (old, new) = (p.args[0].trim(), p.args[1].trim());
    if old.is_empty() || new.is_empty() {
        anyhow::bail!("Error: Neither old nor new names may be empty");
    }
    let client = ctx.client().await?.clone();
    if let Err(e) = client
        .post(
            &format!("/containers/{}/rename", esc(old)),
            &[("name", new.to_string())],
            None,
        )
        .await
    {
        if matches!(e, ClientError::Connect { .. }) {
            return Err(e.into());
        }
        eprintln!("{e}");
        anyhow::bail!("Error: failed to rename container named {old}");
    }
    Ok(())
}

pub async fn update(ctx: &mut Ctx, p: &Parsed, spec: &Spec) -> anyhow::Result<()> {
    if !spec.flags.iter().any(|f| p.changed(f.long)) {
        anyhow::bail!("you must provide one or more flags when using this command");
    }
    let bad = |flag: &str, v: &str, reason: String| -> anyhow::Error {
        InvalidArgument(crate::flags::invalid_argument(spec, flag, v, &reason)).into()
    };
    let mut body = serde_json::Map::new();
    for (flag, key) in [
        ("cpu-period", "CpuPeriod"),
        ("cpu-quota", "CpuQuota"),
        ("cpu-rt-period", "CpuRealtimePeriod"),
        ("cpu-rt-runtime", "CpuRealtimeRuntime"),
        ("cpu-shares", "CpuShares"),
        ("pids-limit", "PidsLimit"),
        ("blkio-weight", "BlkioWeight"),
    ] {
        if p.changed(flag) {
            let v = p.string(flag);
            let n: i64 = v.parse().map_err(|_| {
                bad(
                    flag,
                    &v,
                    format!("strconv.ParseInt: parsing \"{v}\": invalid syntax"),
                )
            })?;
            body.insert(key.into(), json!(n));
        }
    }
    for (flag, key) in [
        ("memory", "Memory"),
        ("memory-reservation", "MemoryReservation"),
        ("memory-swap", "MemorySwap"),
        ("kernel-memory", "KernelMemory"),
    ] {
        if p.changed(flag) {
            let v = p.string(flag);
            let n = if flag == "memory-swap" {
                crate::units::mem_swap(&v)
            } else {
                crate::units::ram_in_bytes(&v)
            }
            .map_err(|e| bad(flag, &v, e))?;
            body.insert(key.into(), json!(n));
        }
    }
    for (flag, key) in [("cpuset-cpus", "CpusetCpus"), ("cpuset-mems", "CpusetMems")] {
        if p.changed(flag) {
            body.insert(key.into(), json!(p.string(flag)));
        }
    }
    if p.changed("cpus") {
        let v = p.string("cpus");
        body.insert(
            "NanoCpus".into(),
            json!(crate::units::nano_cpus(&v).map_err(|e| bad("cpus", &v, e))?),
        );
    }
    if p.changed("restart") {
        body.insert(
            "RestartPolicy".into(),
            crate::opts::parse_restart(&p.string("restart"))?,
        );
    }
    let body = Json::Object(body);
    let client = ctx.client().await?.clone();
    let mut errs = Vec::new();
    let mut warns = Vec::new();
    for c in &p.args {
        match client
            .post_json(&format!("/containers/{}/update", esc(c)), &[], Some(&body))
            .await
        {
            Ok(v) => {
                for w in v
                    .get("Warnings")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(w) = w.as_str() {
                        warns.push(w.to_string());
                    }
                }
                println!("{c}");
            }
            Err(e @ ClientError::Connect { .. }) => return Err(e.into()),
            Err(e) => errs.push(e.to_string()),
        }
    }
    if !warns.is_empty() {
        println!("{}", warns.join("\n"));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(StatusError::exit(1, errs.join("\n")))
    }
}

/// Lines of `docker port`, sorted by container port as docker sorts them.
pub fn port_lines(ports: &Json, filter: Option<&str>) -> Vec<String> {
    let mut keys: Vec<&String> = ports
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let num = |k: &str| {
        k.split('/')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    };
    keys.sort_by(|a, b| num(a).cmp(&num(b)).then(a.cmp(b)));
    let mut out = Vec::new();
    for k in keys {
        let Some(bindings) = ports[k].as_array() else {
            continue;
        };
        for b in bindings {
            let ip = b["HostIp"].as_str().unwrap_or("");
            let port = b["HostPort"].as_str().unwrap_or("");
            let hostport = if ip.contains(':') {
                format!("[{ip}]:{port}")
            } else {
                format!("{ip}:{port}")
            };
            match filter {
                Some(_) => out.push(hostport),
                None => out.push(format!("{k} -> {hostport}")),
            }
        }
    }
    out
}

pub async fn port(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let name = &p.args[0];
    let info = client
        .get_json(&format!("/containers/{}/json", esc(name)), &[])
        .await?;
    let ports = &info["NetworkSettings"]["Ports"];
    if let Some(spec) = p.args.get(1) {
        let (port, proto) = spec.split_once('/').unwrap_or((spec.as_str(), "tcp"));
        let key = format!("{port}/{proto}");
        let lines = port_lines(
            &json!({ key.clone(): ports.get(&key).cloned().unwrap_or(Json::Null) }),
            Some(&key),
        );
        if lines.is_empty() {
            anyhow::bail!("Error: No public port '{spec}' published for {name}");
        }
        println!("{}", lines.join("\n"));
        return Ok(());
    }
    let lines = port_lines(ports, None);
    if !lines.is_empty() {
        println!("{}", lines.join("\n"));
    }
    Ok(())
}

pub async fn top(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let mut q = Vec::new();
    if p.args.len() > 1 {
        q.push(("ps_args", p.args[1..].join(" ")));
    }
    let v = client
        .get_json(&format!("/containers/{}/top", esc(&p.args[0])), &q)
        .await?;
    print!("{}", top_table(&v, 20));
    Ok(())
}

/// The table of a `/containers/{id}/top` answer (`min_width`: docker's 20, compose's 4).
pub fn top_table(v: &Json, min_width: usize) -> String {
    let mut tw = crate::tabwriter::TabWriter::new(min_width, 3);
    let strings = |row: &Json| -> Vec<String> {
        row.as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .map(str::to_string)
            .collect()
    };
    tw.write(&format!("{}\n", strings(&v["Titles"]).join("\t")));
    for row in v["Processes"].as_array().into_iter().flatten() {
        tw.write(&format!("{}\n", strings(row).join("\t")));
    }
    tw.finish()
}

pub async fn logs(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let name = &p.args[0];
    let info = client
        .get_json(&format!("/containers/{}/json", esc(name)), &[])
        .await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let mut q = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    for (flag, key) in [
        ("follow", "follow"),
        ("timestamps", "timestamps"),
        ("details", "details"),
    ] {
        if p.bool(flag) {
            q.push((key, "1".to_string()));
        }
    }
    for (flag, key) in [("since", "since"), ("until", "until")] {
        let v = p.string(flag);
        if !v.is_empty() {
            q.push((key, timestamp_param(&v)?));
        }
    }
    q.push(("tail", p.string("tail")));
    let res = client
        .send(
            hyper::Method::GET,
            &format!("/containers/{}/logs", esc(&id)),
            &q,
            crate::client::empty_body(),
            &[],
        )
        .await?;
    let mut body = res.into_body();
    let mut demux = stream::Demuxer::default();
    while let Some(chunk) = crate::client::next_chunk(&mut body).await {
        let chunk = chunk?;
        if tty {
            let mut o = std::io::stdout().lock();
            o.write_all(&chunk)?;
            o.flush()?;
            continue;
        }
        for (ch, data) in demux.feed(&chunk) {
            match ch {
                stream::Channel::Stderr => {
                    let mut e = std::io::stderr().lock();
                    e.write_all(&data)?;
                }
                stream::Channel::System => anyhow::bail!("{}", String::from_utf8_lossy(&data)),
                stream::Channel::Stdout => {
                    let mut o = std::io::stdout().lock();
                    o.write_all(&data)?;
                    o.flush()?;
                }
            }
        }
    }
    Ok(())
}

/// docker's `timetypes.GetTimestamp`: relative durations (`42m`) become absolute unix
/// seconds; RFC 3339 and unix timestamps pass as `seconds.nanoseconds`.
pub fn timestamp_param(v: &str) -> anyhow::Result<String> {
    timestamp_param_at(v, chrono::Utc::now())
}

fn timestamp_param_at(v: &str, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<String> {
    if let Ok(d) = crate::units::parse_go_duration(v) {
        let t = now - chrono::Duration::nanoseconds(d);
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    if v.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(v.to_string());
    }
    let parsed = chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S").map(|n| n.and_utc())
        })
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| {
            anyhow::anyhow!(
                "invalid value for \"since\": failed to parse value as time or duration: \"{v}\""
            )
        })?;
    Ok(format!(
        "{}.{:09}",
        parsed.timestamp(),
        parsed.timestamp_subsec_nanos()
    ))
}

pub async fn prune(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let filters = filters_json(&p.list("filter"))?;
    if !p.bool("force") {
        print!("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        if !line.trim().eq_ignore_ascii_case("y") {
            // docker treats a declined prompt as a cancellation: nothing printed, exit 0.
            return Ok(());
        }
    }
    let client = ctx.client().await?.clone();
    let q: Vec<(&str, String)> = filters.map(|f| vec![("filters", f)]).unwrap_or_default();
    let v = client.post_json("/containers/prune", &q, None).await?;
    let deleted: Vec<&str> = v["ContainersDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .collect();
    if !deleted.is_empty() {
        let mut out = "Deleted Containers:\n".to_string();
        for id in deleted {
            out.push_str(id);
            out.push('\n');
        }
        println!("{out}");
    }
    println!(
        "Total reclaimed space: {}",
        crate::units::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_errors_map_to_docker_exit_codes() {
        assert_eq!(
            exit_code_for_start_error(
                "exec: \"nosuch\": executable file not found in $PATH: unknown"
            ),
            127
        );
        assert_eq!(
            exit_code_for_start_error("open /x: no such file or directory"),
            127
        );
        assert_eq!(
            exit_code_for_start_error("exec: \"/etc\": permission denied: unknown"),
            126
        );
        assert_eq!(
            exit_code_for_start_error("invalid restart policy 'bogus'"),
            125
        );
    }

    #[test]
    fn run_errors_carry_the_help_pointer() {
        let e = to_status_error(anyhow::anyhow!("Error response from daemon: boom"));
        let se = e.downcast_ref::<StatusError>().unwrap();
        assert_eq!(se.code, 125);
        assert_eq!(se.message, "berth: Error response from daemon: boom\n\nRun 'berth run --help' for more information");
    }

    #[test]
    fn port_lines_list_every_binding() {
        let ports = json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}], "53/udp": null, "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8443"}]});
        assert_eq!(
            port_lines(&ports, None),
            vec![
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080",
                "443/tcp -> 127.0.0.1:8443"
            ]
        );
    }

    #[test]
    fn relative_log_times_become_unix_seconds() {
        let now = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:10:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            timestamp_param_at("10m", now).unwrap(),
            "1704067200.000000000"
        );
        assert_eq!(
            timestamp_param_at("2024-01-01T00:00:00Z", now).unwrap(),
            "1704067200.000000000"
        );
        assert_eq!(timestamp_param_at("1704067200", now).unwrap(), "1704067200");
    }
}
