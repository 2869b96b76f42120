//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`, `/auth`.

use crate::backend::Backend;
use crate::convert;
use crate::error::ApiResult;
use crate::params::Params;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_core::event::Event;
use futures_util::StreamExt;
use serde_json::json;
use std::sync::Arc;

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version::<B>))
        .route("/info", get(info::<B>))
        .route("/events", get(events::<B>))
        .route("/system/df", get(df::<B>))
        .route("/auth", post(auth::<B>))
}

/// `POST /auth` (`docker login`): the body is an `AuthConfig`; the answer says whether the
/// registry took the credentials, with an identity token when it gave one.
async fn auth<B: Backend>(
    State(b): State<Arc<B>>,
    body: axum::body::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let creds = berth_engine::images::Credentials::from_auth_config_json(&body)
        .map_err(|e| crate::error::bad_request(e.to_string()))?;
    let r = b.login(creds).await?;
    Ok(Json(json!({
        "IdentityToken": r.identity_token.unwrap_or_default(),
        "Status": r.status,
    })))
}

async fn ping(method: Method) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if method == Method::HEAD {
        return (h, "").into_response();
    }
    (h, "OK").into_response()
}

async fn version<B: Backend>(State(b): State<Arc<B>>) -> Json<serde_json::Value> {
    Json(convert::system::version_out(&b.facts().kernel_version))
}

async fn info<B: Backend>(State(b): State<Arc<B>>) -> Json<serde_json::Value> {
    Json(convert::system::info_out(&b.facts(), chrono::Utc::now()))
}

/// Docker's event message shape.
pub fn event_out(e: &Event) -> serde_json::Value {
    let ns = e.time.timestamp_nanos_opt().unwrap_or(0);
    let mut v = json!({
        "Type": e.typ.as_str(),
        "Action": e.action,
        "Actor": {"ID": e.actor_id, "Attributes": e.attributes},
        "scope": "local",
        "time": e.time.timestamp(),
        "timeNano": ns,
    });
    if e.typ == berth_core::event::EventType::Container {
        v["status"] = json!(e.action);
        v["id"] = json!(e.actor_id);
        v["from"] = json!(e.attributes.get("image").cloned().unwrap_or_default());
    }
    v
}

async fn events<B: Backend>(State(b): State<Arc<B>>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    let filters = convert::filters::parse(p.get("filters"))?;
    filters.validate(berth_engine::events::FILTER_KEYS)?;
    let time = |k: &str| {
        p.get(k)
            .filter(|s| !s.is_empty())
            .map(berth_engine::containers::parse_time_filter)
            .transpose()
    };
    let (since, until) = (time("since")?, time("until")?);
    let (past, rx) = b.subscribe_events();
    // Docker replays the kept past when either bound is given.
    let past: Vec<serde_json::Value> = if since.is_some() || until.is_some() {
        past.iter()
            .filter(|e| {
                since.is_none_or(|s| e.time >= s)
                    && until.is_none_or(|u| e.time <= u)
                    && berth_engine::events::matches(&filters, e)
            })
            .map(event_out)
            .collect()
    } else {
        Vec::new()
    };
    let now = chrono::Utc::now();
    let live_done = until.is_some_and(|u| u <= now);
    let f2 = filters.clone();
    let live = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) => return Some((e, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    })
    .filter(move |e| std::future::ready(berth_engine::events::matches(&f2, e)))
    .map(|e| event_out(&e));
    let stream = futures_util::stream::iter(past);
    if live_done {
        return Ok(crate::stream::json_lines(stream));
    }
    match until {
        Some(u) => {
            let wait = (u - now).to_std().unwrap_or_default();
            let live = live.take_until(tokio::time::sleep(wait));
            Ok(crate::stream::json_lines(stream.chain(live)))
        }
        None => Ok(crate::stream::json_lines(stream.chain(live))),
    }
}

async fn df<B: Backend>(State(b): State<Arc<B>>) -> ApiResult<Json<serde_json::Value>> {
    let du = b.disk_usage().await?;
    let now = chrono::Utc::now();
    let images: Vec<serde_json::Value> = du
        .images
        .iter()
        .map(|(img, shared, n)| {
            let mut v = convert::image::summary_out(img, *n);
            v["SharedSize"] = json!(shared);
            v
        })
        .collect();
    let containers: Vec<serde_json::Value> = du
        .containers
        .iter()
        .map(|(c, rw, root)| {
            let l = berth_engine::containers::ContainerListing {
                container: c.clone(),
                size_rw: Some(*rw),
                size_root_fs: Some(*root),
            };
            serde_json::to_value(convert::container::summary_out(
                &l,
                c.config.image.clone(),
                now,
            ))
            .unwrap_or_default()
        })
        .collect();
    let volumes: Vec<serde_json::Value> = du
        .volumes
        .iter()
        .map(|(v, size, refs)| convert::volume::volume_out(v, Some((*size, *refs))))
        .collect();
    Ok(Json(json!({
        "LayersSize": du.layers_size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    })))
}
