//! `/containers/{id}/exec` and `/exec/...`.

use super::containers::json_body;
use crate::backend::Backend;
use crate::error::ApiResult;
use crate::params::Params;
use crate::stream::{self, wants_upgrade};
use crate::version::ApiVersion;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::containers::exec::ExecConfig;
use bollard_stubs::models as wire;
use serde_json::json;
use std::sync::Arc;

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/containers/{id}/exec", post(create::<B>))
        .route("/exec/{id}/start", post(start::<B>))
        .route("/exec/{id}/resize", post(resize::<B>))
        .route("/exec/{id}/json", get(inspect::<B>))
}

async fn create<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let c: wire::ExecConfig = json_body(&body)?;
    let cfg = ExecConfig {
        user: c.user.unwrap_or_default(),
        privileged: c.privileged.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        attach_stdin: c.attach_stdin.unwrap_or(false),
        attach_stdout: c.attach_stdout.unwrap_or(false),
        attach_stderr: c.attach_stderr.unwrap_or(false),
        detach_keys: c.detach_keys.unwrap_or_default(),
        env: c.env.unwrap_or_default(),
        cmd: c.cmd.unwrap_or_default(),
        working_dir: c.working_dir.unwrap_or_default(),
        console_size: c
            .console_size
            .filter(|s| s.len() == 2)
            .map(|s| [s[0] as u16, s[1] as u16]),
    };
    let id = b.create_exec(&id, cfg)?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}

async fn start<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    Extension(v): Extension<ApiVersion>,
    mut req: Request,
) -> ApiResult<Response> {
    let upgrade = wants_upgrade(req.headers());
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| crate::error::bad_request(e.to_string()))?;
    let cfg: wire::ExecStartConfig = json_body(&body)?;
    let detach = cfg.detach.unwrap_or(false);
    // Fail fast on an unknown exec, before hijacking.
    let ex = b.inspect_exec(&id)?;
    let tty = cfg.tty.unwrap_or(ex.config.tty);
    if detach {
        b.start_exec(&id, true, Some(tty)).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let mux = !tty;
    let content_mux = mux && v.at_least(1, 42);
    match on_upgrade {
        Some(on) => {
            // As Docker: hijack first, then start the process, so its first output never
            // shares a read with the 101 response (docker-py, and so docker-compose 1.x,
            // drops bytes that arrive with the headers). A start failure is written into
            // the stream and the exit code (126/127) is left for exec inspect.
            tokio::spawn(async move {
                let Ok(upgraded) = on.await else { return };
                let (streams, preface) = match b.start_exec(&id, false, Some(tty)).await {
                    Ok(Some(streams)) => (streams, None),
                    Ok(None) => return,
                    Err(e) => {
                        let msg = format!("{}\r\n", e.message());
                        let preface = if mux {
                            stream::frame(1, msg.as_bytes())
                        } else {
                            Bytes::from(msg)
                        };
                        let (_tx, rx) = tokio::sync::mpsc::channel(1);
                        let empty = berth_engine::containers::AttachStreams {
                            tty,
                            output: rx,
                            input: None,
                        };
                        (empty, Some(preface))
                    }
                };
                stream::pump_upgraded(upgraded, streams, mux, preface).await
            });
            Ok(stream::upgrade_response(content_mux))
        }
        None => match b.start_exec(&id, false, Some(tty)).await? {
            Some(streams) => Ok(stream::streaming_output(streams.output, mux)),
            None => Ok(StatusCode::OK.into_response()),
        },
    }
}

async fn resize<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let h = p.int("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = p.int("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    b.resize_exec(&id, h, w).await?;
    Ok(StatusCode::CREATED.into_response())
}

async fn inspect<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let e = b.inspect_exec(&id)?;
    let (entrypoint, args) = match e.config.cmd.split_first() {
        Some((first, rest)) => (first.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    Ok(Json(json!({
        "ID": e.id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": {"tty": e.config.tty, "entrypoint": entrypoint, "arguments": args, "privileged": e.config.privileged, "user": e.config.user},
        "OpenStdin": e.config.attach_stdin,
        "OpenStderr": e.config.attach_stderr,
        "OpenStdout": e.config.attach_stdout,
        "CanRemove": false,
        "ContainerID": e.container_id,
        "DetachKeys": e.config.detach_keys,
        "Pid": e.pid,
    })))
}
