//! `/containers/...`.

use crate::backend::Backend;
use crate::convert;
use crate::error::{bad_request, ApiResult};
use crate::params::Params;
use crate::stream::{self, frame, wants_upgrade};
use crate::version::ApiVersion;
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use berth_engine::containers::attach::AttachOptions;
use berth_engine::containers::remove::RemoveOptions;
use berth_engine::containers::{ListContainers, LogsOptions, UpdateContainer, WaitCondition};
use bollard_stubs::models as wire;
use futures_util::StreamExt;
use serde_json::json;
use std::sync::Arc;

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/containers/json", get(list::<B>))
        .route("/containers/create", post(create::<B>))
        .route("/containers/prune", post(prune::<B>))
        .route("/containers/{id}/json", get(inspect::<B>))
        .route("/containers/{id}/top", get(top::<B>))
        .route("/containers/{id}/logs", get(logs::<B>))
        .route("/containers/{id}/resize", post(resize::<B>))
        .route("/containers/{id}/start", post(start::<B>))
        .route("/containers/{id}/stop", post(stop::<B>))
        .route("/containers/{id}/restart", post(restart::<B>))
        .route("/containers/{id}/kill", post(kill::<B>))
        .route("/containers/{id}/update", post(update::<B>))
        .route("/containers/{id}/rename", post(rename::<B>))
        .route("/containers/{id}/pause", post(pause::<B>))
        .route("/containers/{id}/unpause", post(unpause::<B>))
        .route("/containers/{id}/attach", post(attach::<B>))
        .route("/containers/{id}/wait", post(wait::<B>))
        .route("/containers/{id}", delete(remove::<B>))
        .route(
            "/containers/{id}/archive",
            get(archive_get::<B>)
                .head(archive_head::<B>)
                .put(archive_put::<B>),
        )
        .route(
            "/containers/{id}/berth-archive-fds",
            post(archive_put_fds::<B>),
        )
        .route("/containers/{id}/changes", get(changes::<B>))
        .route("/containers/{id}/export", get(export::<B>))
        .route("/commit", post(commit::<B>))
}

fn params(q: &Option<String>) -> Params {
    Params::parse(q.as_deref())
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Reads a JSON body, treating an empty body as the type's default.
pub fn json_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON: {e}")))
}

async fn list<B: Backend>(State(b): State<Arc<B>>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = params(&q);
    let req = ListContainers {
        all: p.bool("all"),
        limit: p.int("limit")?.unwrap_or(-1),
        size: p.bool("size"),
        filters: convert::filters::parse(p.get("filters"))?,
    };
    let now = chrono::Utc::now();
    let listings = b.list(&req)?;
    let rows: Vec<_> = listings
        .iter()
        .map(|l| convert::container::summary_out(l, b.image_display_name(&l.container), now))
        .collect();
    let mut body = Vec::with_capacity(512 * rows.len() + 2);
    serde_json::to_writer(&mut body, &rows)
        .map_err(|e| crate::error::ApiError(berth_core::Error::internal(e.to_string())))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn create<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let p = params(&q);
    let body: wire::ContainerCreateBody = json_body(&body)?;
    let req = convert::container::create_in(body, p.string("name"), p.string("platform"))?;
    let (id, warnings) = b.create(req).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": id, "Warnings": warnings})),
    )
        .into_response())
}

async fn inspect<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    Extension(v): Extension<ApiVersion>,
) -> ApiResult<Json<serde_json::Value>> {
    let (c, sizes, graph) = b.inspect(&id, params(&q).bool("size"))?;
    Ok(Json(convert::container::inspect_out(&c, sizes, graph, v)))
}

async fn top<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<serde_json::Value>> {
    let t = b.top(&id, &params(&q).string("ps_args")).await?;
    Ok(Json(json!({"Titles": t.titles, "Processes": t.processes})))
}

async fn logs<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    Extension(v): Extension<ApiVersion>,
) -> ApiResult<Response> {
    let p = params(&q);
    let (stdout, stderr) = (p.bool("stdout"), p.bool("stderr"));
    if !stdout && !stderr {
        return Err(bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let parse_time = |k: &str| -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
        match p.get(k).filter(|s| !s.is_empty() && *s != "0") {
            Some(s) => Ok(Some(berth_engine::containers::parse_time_filter(s)?)),
            None => Ok(None),
        }
    };
    let tail = match p.get("tail") {
        None | Some("") | Some("all") => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| bad_request(format!("invalid value for tail: {t}")))?,
        )
        .filter(|n| *n >= 0)
        .map(|n| n as usize),
    };
    let opts = LogsOptions {
        stdout,
        stderr,
        follow: p.bool("follow"),
        since: parse_time("since")?,
        until: parse_time("until")?,
        timestamps: p.bool("timestamps"),
        tail,
    };
    let (tty, rx) = b.logs(&id, opts)?;
    let body = stream::tokio_stream_from(rx).map(move |l| {
        let data = if tty {
            Bytes::from(l.data)
        } else {
            frame(l.stream, &l.data)
        };
        Ok::<_, std::io::Error>(data)
    });
    let ct = if !tty && v.at_least(1, 42) {
        stream::MULTIPLEXED_STREAM
    } else {
        stream::RAW_STREAM
    };
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, ct)
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

async fn resize<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = params(&q);
    let h = p.int("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = p.int("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    b.resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

async fn start<B: Backend>(State(b): State<Arc<B>>, Path(id): Path<String>) -> ApiResult<Response> {
    b.start(&id).await?;
    Ok(no_content())
}

fn stop_params(p: &Params) -> ApiResult<(Option<i64>, Option<String>)> {
    Ok((
        p.int("t")?,
        p.get("signal")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    ))
}

async fn stop<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let (t, sig) = stop_params(&params(&q))?;
    b.stop(&id, t, sig).await?;
    Ok(no_content())
}

async fn restart<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let (t, sig) = stop_params(&params(&q))?;
    b.restart(&id, t, sig).await?;
    Ok(no_content())
}

async fn kill<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let sig = params(&q)
        .get("signal")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    b.kill(&id, sig).await?;
    Ok(no_content())
}

async fn update<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let u: wire::ContainerUpdateBody = json_body(&body)?;
    let nz = |v: Option<i64>| v.filter(|x| *x != 0);
    let restart_policy = u
        .restart_policy
        .filter(|r| {
            r.name
                .is_some_and(|n| n != wire::RestartPolicyNameEnum::EMPTY)
        })
        .map(|r| {
            use berth_core::container::{RestartPolicy, RestartPolicyName};
            let name = match r.name {
                Some(wire::RestartPolicyNameEnum::ALWAYS) => RestartPolicyName::Always,
                Some(wire::RestartPolicyNameEnum::UNLESS_STOPPED) => {
                    RestartPolicyName::UnlessStopped
                }
                Some(wire::RestartPolicyNameEnum::ON_FAILURE) => RestartPolicyName::OnFailure,
                _ => RestartPolicyName::No,
            };
            RestartPolicy {
                name,
                maximum_retry_count: r.maximum_retry_count.unwrap_or(0),
            }
        });
    let req = UpdateContainer {
        restart_policy,
        memory: nz(u.memory),
        memory_reservation: nz(u.memory_reservation),
        memory_swap: nz(u.memory_swap),
        cpu_shares: nz(u.cpu_shares),
        nano_cpus: nz(u.nano_cpus),
        cpu_period: nz(u.cpu_period),
        cpu_quota: nz(u.cpu_quota),
        cpuset_cpus: u.cpuset_cpus.filter(|s| !s.is_empty()),
        cpuset_mems: u.cpuset_mems.filter(|s| !s.is_empty()),
        pids_limit: nz(u.pids_limit),
        blkio_weight: u.blkio_weight.filter(|w| *w != 0),
    };
    let warnings = b.update(&id, req).await?;
    Ok(Json(json!({"Warnings": warnings})))
}

async fn rename<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let name = params(&q).string("name");
    if name.is_empty() {
        return Err(bad_request("name is required"));
    }
    b.rename(&id, &name).await?;
    Ok(no_content())
}

async fn pause<B: Backend>(State(b): State<Arc<B>>, Path(id): Path<String>) -> ApiResult<Response> {
    b.pause(&id).await?;
    Ok(no_content())
}

async fn unpause<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    b.unpause(&id).await?;
    Ok(no_content())
}

async fn attach<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    Extension(v): Extension<ApiVersion>,
    mut req: Request,
) -> ApiResult<Response> {
    let p = params(&q);
    let upgrade = wants_upgrade(req.headers());
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let opts = AttachOptions {
        stdin: p.bool("stdin"),
        stdout: p.bool("stdout"),
        stderr: p.bool("stderr"),
        stream: p.bool("stream"),
        logs: p.bool("logs"),
        detach_keys: p.get("detachKeys").map(str::to_string),
    };
    let streams = b.attach(&id, opts).await?;
    let mux = !streams.tty;
    let content_mux = mux && v.at_least(1, 42);
    match on_upgrade {
        Some(on) => {
            tokio::spawn(stream::pump_hijacked(on, streams, mux, None));
            let mut resp = stream::upgrade_response(content_mux);
            if !content_mux {
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(stream::RAW_STREAM),
                );
            }
            Ok(resp)
        }
        None => Ok(stream::streaming_output(streams.output, mux)),
    }
}

async fn wait<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let cond = WaitCondition::parse(&params(&q).string("condition"))?;
    let fut = b.wait(&id, cond)?;
    // Headers go out at once; the body when the condition is met (as Docker does).
    let body = futures_util::stream::once(async move {
        let r = fut.await;
        let err = r
            .error
            .map(|m| json!({"Message": m}))
            .unwrap_or(serde_json::Value::Null);
        let mut line = serde_json::to_vec(&json!({"StatusCode": r.status_code, "Error": err}))
            .unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(line))
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

async fn remove<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = params(&q);
    b.remove(
        &id,
        RemoveOptions {
            force: p.bool("force"),
            volumes: p.bool("v"),
            link: p.bool("link"),
            lazy: false,
        },
    )
    .await?;
    Ok(no_content())
}

async fn prune<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<serde_json::Value>> {
    let filters = convert::filters::parse(params(&q).get("filters"))?;
    let (ids, space) = b.prune(filters).await?;
    Ok(Json(
        json!({"ContainersDeleted": if ids.is_empty() { serde_json::Value::Null } else { json!(ids) }, "SpaceReclaimed": space}),
    ))
}

/// The `X-Docker-Container-Path-Stat` header value.
fn stat_header(s: &berth_engine::containers::archive::PathStat) -> String {
    use base64::Engine as _;
    let v = json!({
        "name": s.name,
        "size": s.size,
        "mode": s.mode,
        "mtime": s.mtime.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "linkTarget": s.link_target,
    });
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

fn archive_path_param(p: &Params) -> ApiResult<String> {
    let path = p.string("path");
    if path.is_empty() {
        return Err(bad_request("path is required"));
    }
    Ok(path)
}

async fn archive_head<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let path = archive_path_param(&params(&q))?;
    let stat = b.stat_path(&id, &path).await?;
    Ok((
        [("X-Docker-Container-Path-Stat", stat_header(&stat))],
        StatusCode::OK,
    )
        .into_response())
}

async fn archive_get<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let path = archive_path_param(&params(&q))?;
    let (stat, job) = b.read_path(&id, &path).await?;
    let mut resp = stream::archive_response(job, "container archive");
    if let Ok(v) = header::HeaderValue::from_str(&stat_header(&stat)) {
        resp.headers_mut().insert("X-Docker-Container-Path-Stat", v);
    }
    Ok(resp)
}

async fn archive_put<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<Response> {
    let p = params(&q);
    let path = archive_path_param(&p)?;
    let stream = req.into_body().into_data_stream();
    let reader = tokio_util::io::StreamReader::new(futures_util::TryStreamExt::map_err(
        stream,
        std::io::Error::other,
    ));
    let tar: Box<dyn std::io::Read + Send> = Box::new(tokio_util::io::SyncIoBridge::new(reader));
    b.write_path(&id, &path, tar, p.bool("copyUIDGID")).await?;
    Ok(StatusCode::OK.into_response())
}

/// berth's own form of `PUT /containers/{id}/archive` for a client on this machine: after
/// the upgrade, the tar arrives on the raw unix socket with regular files' content passed
/// as descriptors (`berth_storage::fdpass`); the result comes back as one JSON line
/// (`{}` or Docker's `{"message": ...}` with the HTTP status it would have had).
async fn archive_put_fds<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    mut req: Request,
) -> ApiResult<Response> {
    let p = params(&q);
    let path = archive_path_param(&p)?;
    if req
        .extensions()
        .get::<crate::server::LocalSocket>()
        .is_none()
        || !wants_upgrade(req.headers())
    {
        return Err(bad_request(
            "passing descriptors needs an upgraded connection on the unix socket",
        ));
    }
    let on = hyper::upgrade::on(&mut req);
    let copy = p.bool("copyUIDGID");
    tokio::spawn(async move {
        let Ok(up) = on.await else { return };
        let Ok(parts) = up.downcast::<hyper_util::rt::TokioIo<tokio::net::UnixStream>>() else {
            return;
        };
        let prefix = parts.read_buf.to_vec();
        let Ok(sock) = parts.io.into_inner().into_std() else {
            return;
        };
        let _ = sock.set_nonblocking(false);
        let Ok(mut reply) = sock.try_clone() else {
            return;
        };
        let line = match b.write_path_fds(&id, &path, sock, prefix, copy).await {
            Ok(()) => {
                tracing::debug!(container = %id, path = %path, "archive written from passed descriptors");
                json!({})
            }
            Err(e) => json!({
                "message": e.message(),
                "status": crate::error::status_for(e.kind()).as_u16(),
            }),
        };
        let _ = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let _ = reply.write_all(format!("{line}\n").as_bytes());
        })
        .await;
    });
    Ok(stream::upgrade_response(false))
}

async fn changes<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let list = b.changes(&id).await?;
    let rows: Vec<serde_json::Value> = list
        .iter()
        .map(|(k, p)| json!({"Path": p, "Kind": k}))
        .collect();
    Ok(Json(if rows.is_empty() {
        serde_json::Value::Null
    } else {
        json!(rows)
    }))
}

async fn export<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(stream::archive_response(
        b.export(&id).await?,
        "container export",
    ))
}

async fn commit<B: Backend>(State(b): State<Arc<B>>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = params(&q);
    let container = p.string("container");
    if container.is_empty() {
        return Err(bad_request("container is required"));
    }
    let req = berth_engine::containers::commit::CommitContainer {
        container,
        repo: p.string("repo"),
        tag: p.string("tag"),
        comment: p.string("comment"),
        author: p.string("author"),
        pause: p.bool_or("pause", true),
        changes: p
            .all("changes")
            .into_iter()
            .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|c| !c.trim().is_empty())
            .collect(),
    };
    let id = b.commit(req).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}
