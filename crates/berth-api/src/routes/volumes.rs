//! `/volumes/...`.

use super::containers::json_body;
use crate::backend::Backend;
use crate::convert;
use crate::error::ApiResult;
use crate::params::Params;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_engine::volumes::CreateVolume;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/volumes", get(list::<B>))
        .route("/volumes/create", post(create::<B>))
        .route("/volumes/prune", post(prune::<B>))
        .route("/volumes/{name}", get(inspect::<B>).delete(remove::<B>))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct CreateBody {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Driver")]
    driver: String,
    #[serde(rename = "DriverOpts")]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
}

async fn list<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<serde_json::Value>> {
    let f = convert::filters::parse(Params::parse(q.as_deref()).get("filters"))?;
    let vols: Vec<serde_json::Value> = b
        .list_volumes(&f)?
        .iter()
        .map(|v| convert::volume::volume_out(v, None))
        .collect();
    Ok(Json(json!({"Volumes": vols, "Warnings": []})))
}

async fn create<B: Backend>(State(b): State<Arc<B>>, body: Bytes) -> ApiResult<Response> {
    let c: CreateBody = json_body(&body)?;
    let v = b.create_volume(CreateVolume {
        name: c.name,
        driver: c.driver,
        options: c.driver_opts.unwrap_or_default(),
        labels: c.labels.unwrap_or_default(),
    })?;
    Ok((
        StatusCode::CREATED,
        Json(convert::volume::volume_out(&v, None)),
    )
        .into_response())
}

async fn inspect<B: Backend>(
    State(b): State<Arc<B>>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let (v, _) = b.volume(&name)?;
    Ok(Json(convert::volume::volume_out(&v, None)))
}

async fn remove<B: Backend>(
    State(b): State<Arc<B>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    b.remove_volume(&name, Params::parse(q.as_deref()).bool("force"))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<serde_json::Value>> {
    let f = convert::filters::parse(Params::parse(q.as_deref()).get("filters"))?;
    let (names, space) = b.prune_volumes(&f)?;
    Ok(Json(
        json!({"VolumesDeleted": if names.is_empty() { serde_json::Value::Null } else { json!(names) }, "SpaceReclaimed": space}),
    ))
}
