//! `exec` and `attach`: hijacked sessions on an existing container.

use super::{esc, Ctx};
use crate::flags::Parsed;
use crate::stream::{self, Ended, PumpOptions};
use crate::{term, StatusError};
use serde_json::{json, Value as Json};

fn keys(p: &Parsed) -> (String, Vec<u8>) {
    let given = p.string("detach-keys");
    let k = if given.is_empty() {
        None
    } else {
        stream::parse_detach_keys(&given).ok()
    };
    (
        given,
        k.unwrap_or_else(|| stream::DEFAULT_DETACH_KEYS.to_vec()),
    )
}

pub async fn exec(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let container = &p.args[0];
    let cmd: Vec<String> = p.args[1..].to_vec();
    let (tty, interactive, detach) = (p.bool("tty"), p.bool("interactive"), p.bool("detach"));
    if !detach && tty && interactive && !term::stdin_is_tty() {
        anyhow::bail!("the input device is not a TTY");
    }
    let lookup: &dyn Fn(&str) -> Option<String> = &|k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for f in p.list("env-file") {
        env.extend(crate::opts::parse_kv_file(&f, Some(lookup))?);
    }
    for e in p.list("env") {
        env.push(crate::opts::validate_env(&e)?);
    }
    let (keys_str, key_bytes) = keys(p);
    let console = if tty && term::stdout_is_tty() {
        term::size().unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    let body = json!({
        "User": p.string("user"),
        "Privileged": p.bool("privileged"),
        "Tty": tty,
        "ConsoleSize": [console.0, console.1],
        "AttachStdin": interactive && !detach,
        "AttachStderr": !detach,
        "AttachStdout": !detach,
        "Detach": detach,
        "DetachKeys": keys_str,
        "Env": env,
        "WorkingDir": p.string("workdir"),
        "Cmd": cmd,
    });
    let created = client
        .post_json(
            &format!("/containers/{}/exec", esc(container)),
            &[],
            Some(&body),
        )
        .await?;
    let exec_id = created["Id"].as_str().unwrap_or_default().to_string();
    if exec_id.is_empty() {
        anyhow::bail!("exec ID empty");
    }
    let start = json!({"Detach": detach, "Tty": tty, "ConsoleSize": [console.0, console.1]});
    if detach {
        client
            .post(&format!("/exec/{exec_id}/start"), &[], Some(&start))
            .await?;
        return Ok(());
    }
    let hijacked = client
        .hijack(&format!("/exec/{exec_id}/start"), &[], Some(&start))
        .await?;
    let raw = if interactive && tty {
        Some(term::RawMode::enable()?)
    } else {
        None
    };
    let resize = if tty && term::stdout_is_tty() {
        let c = client.clone();
        let path = format!("/exec/{exec_id}/resize");
        Some(tokio::spawn(async move {
            let send = |c: crate::client::Client, path: String| async move {
                if let Some((h, w)) = term::size() {
                    let _ = c
                        .post(&path, &[("h", h.to_string()), ("w", w.to_string())], None)
                        .await;
                }
            };
            send(c.clone(), path.clone()).await;
            if let Ok(mut s) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            {
                while s.recv().await.is_some() {
                    send(c.clone(), path.clone()).await;
                }
            }
        }))
    } else {
        None
    };
    let ended = stream::pump(
        hijacked,
        PumpOptions {
            tty,
            stdin: interactive,
            output: true,
            detach_keys: if tty { Some(key_bytes) } else { None },
        },
    )
    .await;
    drop(raw);
    if let Some(r) = resize {
        r.abort();
    }
    if ended? == Ended::Detached {
        return Ok(());
    }
    let info = client
        .get_json(&format!("/exec/{exec_id}/json"), &[])
        .await?;
    let code = info["ExitCode"].as_i64().unwrap_or(0) as i32;
    if code != 0 {
        return Err(StatusError::exit(code, ""));
    }
    Ok(())
}

pub async fn attach(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let name = &p.args[0];
    let info: Json = client
        .get_json(&format!("/containers/{}/json", esc(name)), &[])
        .await?;
    let state = &info["State"];
    if !state["Running"].as_bool().unwrap_or(false) {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    if state["Paused"].as_bool().unwrap_or(false) {
        anyhow::bail!("You cannot attach to a paused container, unpause it first");
    }
    if state["Restarting"].as_bool().unwrap_or(false) {
        anyhow::bail!("You cannot attach to a restarting container, wait until it is running");
    }
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !p.bool("no-stdin") && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    if tty && stdin && !term::stdin_is_tty() {
        anyhow::bail!("the input device is not a TTY");
    }
    let (keys_str, key_bytes) = keys(p);
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
    let waiter = {
        let c = client.clone();
        let id = id.clone();
        tokio::spawn(async move {
            c.post_json(&format!("/containers/{}/wait", esc(&id)), &[], None)
                .await
                .ok()
                .and_then(|v| v["StatusCode"].as_i64())
                .unwrap_or(0) as i32
        })
    };
    let _signals = if p.bool("sig-proxy") && !tty {
        let c = client.clone();
        let id = id.clone();
        Some(tokio::spawn(async move {
            let mut int =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            let mut trm =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            loop {
                let sig =
                    tokio::select! { _ = int.recv() => "SIGINT", _ = trm.recv() => "SIGTERM" };
                let _ = c
                    .post(
                        &format!("/containers/{}/kill", esc(&id)),
                        &[("signal", sig.to_string())],
                        None,
                    )
                    .await;
            }
        }))
    } else {
        None
    };
    let hijacked = client
        .hijack(&format!("/containers/{}/attach", esc(&id)), &q, None)
        .await?;
    let raw = if stdin && tty {
        Some(term::RawMode::enable()?)
    } else {
        None
    };
    if tty && term::stdout_is_tty() {
        if let Some((h, w)) = term::size() {
            let _ = client
                .post(
                    &format!("/containers/{}/resize", esc(&id)),
                    &[("h", h.to_string()), ("w", w.to_string())],
                    None,
                )
                .await;
        }
    }
    let ended = stream::pump(
        hijacked,
        PumpOptions {
            tty,
            stdin,
            output: true,
            detach_keys: if tty { Some(key_bytes) } else { None },
        },
    )
    .await;
    drop(raw);
    if ended? == Ended::Detached {
        return Ok(());
    }
    let code = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    if code != 0 {
        return Err(StatusError::exit(code, ""));
    }
    Ok(())
}
