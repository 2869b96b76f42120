//! The route table: one file per resource.

pub mod build;
pub mod containers;
pub mod exec;
pub mod images;
pub mod networks;
pub mod system;
pub mod volumes;

use crate::backend::Backend;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use std::sync::Arc;

/// The whole API for a backend.
pub fn router<B: Backend>(backend: Arc<B>) -> Router {
    Router::new()
        .merge(system::routes::<B>())
        .merge(containers::routes::<B>())
        .merge(exec::routes::<B>())
        .merge(images::routes::<B>())
        .merge(volumes::routes::<B>())
        .merge(networks::routes::<B>())
        .merge(build::routes::<B>())
        .fallback(not_found)
        .with_state(backend)
}

async fn not_found(uri: axum::http::Uri) -> impl IntoResponse {
    let body =
        serde_json::json!({ "message": format!("page not found: {}", uri.path()) }).to_string();
    (
        StatusCode::NOT_FOUND,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
}
