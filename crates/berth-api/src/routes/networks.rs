//! `/networks/...`.

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
use bollard_stubs::models as wire;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/networks", get(list::<B>))
        .route("/networks/create", post(create::<B>))
        .route("/networks/prune", post(prune::<B>))
        .route("/networks/{id}", get(inspect::<B>).delete(remove::<B>))
        .route("/networks/{id}/connect", post(connect::<B>))
        .route("/networks/{id}/disconnect", post(disconnect::<B>))
}

async fn list<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let f = convert::filters::parse(Params::parse(q.as_deref()).get("filters"))?;
    let nets: Vec<Value> = b
        .list_networks(&f)?
        .iter()
        .map(|n| convert::network::network_out(n, None))
        .collect();
    Ok(Json(json!(nets)))
}

async fn create<B: Backend>(State(b): State<Arc<B>>, body: Bytes) -> ApiResult<Response> {
    let req: wire::NetworkCreateRequest = json_body(&body)?;
    let n = b.create_network(convert::network::create_in(req)?).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": n.id, "Warning": ""})),
    )
        .into_response())
}

async fn inspect<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (n, members) = b.network(&id)?;
    Ok(Json(convert::network::network_out(&n, Some(&members))))
}

async fn remove<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    b.remove_network(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Value>> {
    let f = convert::filters::parse(Params::parse(q.as_deref()).get("filters"))?;
    let names = b.prune_networks(f).await?;
    Ok(Json(json!({
        "NetworksDeleted": if names.is_empty() { Value::Null } else { json!(names) }
    })))
}

async fn connect<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: wire::NetworkConnectRequest = json_body(&body)?;
    if req.container.is_empty() {
        return Err(crate::error::bad_request("no container specified"));
    }
    let endpoint = convert::container::endpoint_request_in(req.endpoint_config.unwrap_or_default());
    b.connect_network(&id, &req.container, endpoint).await?;
    Ok(StatusCode::OK.into_response())
}

async fn disconnect<B: Backend>(
    State(b): State<Arc<B>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: wire::NetworkDisconnectRequest = json_body(&body)?;
    if req.container.is_empty() {
        return Err(crate::error::bad_request("no container specified"));
    }
    b.disconnect_network(&id, &req.container, req.force.unwrap_or(false))
        .await?;
    Ok(StatusCode::OK.into_response())
}
