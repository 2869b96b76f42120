//! `/images/...`. Image names contain slashes (`localhost:5000/a/b`), so the per-image
//! routes take the rest of the path and dispatch on its last segment, as Docker's router
//! does with `{name:.*}`.

use crate::backend::Backend;
use crate::convert;
use crate::error::{bad_request, ApiError, ApiResult};
use crate::params::Params;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_core::Error;
use berth_engine::images::{ImportImage, ListImages, RemovedImage};
use futures_util::TryStreamExt;
use serde_json::json;
use std::io::Read;
use std::sync::Arc;

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/images/json", get(list::<B>))
        .route("/images/create", post(create::<B>))
        .route("/images/load", post(load::<B>))
        .route("/images/get", get(save_many::<B>))
        .route(
            "/images/{*rest}",
            get(get_one::<B>)
                .post(post_one::<B>)
                .delete(delete_one::<B>),
        )
}

/// The request body as a blocking reader (for the storage code on blocking threads).
pub(crate) fn body_reader(req: Request) -> Box<dyn Read + Send> {
    let stream = req
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    Box::new(tokio_util::io::SyncIoBridge::new(reader))
}

async fn list<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<serde_json::Value>> {
    let p = Params::parse(q.as_deref());
    let mut filters = convert::filters::parse(p.get("filters"))?;
    // Old clients pass a reference as `filter`.
    if let Some(f) = p.get("filter").filter(|f| !f.is_empty()) {
        filters.add("reference", f);
    }
    let rows = b.list_images(&ListImages {
        all: p.bool("all"),
        filters,
    })?;
    Ok(Json(json!(rows
        .iter()
        .map(|l| convert::image::summary_out(&l.image, l.containers))
        .collect::<Vec<_>>())))
}

async fn create<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    if let Some(src) = p.get("fromSrc") {
        if src != "-" {
            return Err(bad_request(format!(
                "importing from a URL ({src}) is not supported; download it and import the file"
            )));
        }
        let repo = p.string("repo");
        let tag = p.string("tag");
        let reference = match (repo.is_empty(), tag.is_empty()) {
            (true, _) => String::new(),
            (false, true) => repo,
            (false, false) => format!("{repo}:{tag}"),
        };
        let import = ImportImage {
            reference,
            changes: p.all("changes"),
            message: p.string("message"),
            source: "-".to_string(),
            platform: p.string("platform"),
        };
        let id = b.import(import, body_reader(req)).await?;
        return Ok(crate::stream::json_lines(futures_util::stream::iter(vec![
            json!({"status": id}),
        ])));
    }
    if let Some(image) = p.get("fromImage") {
        let tag = p.string("tag");
        let name = if tag.is_empty() {
            image.to_string()
        } else {
            format!("{image}:{tag}")
        };
        return Err(ApiError(Error::not_found(format!(
            "pull access denied for {name}: this berth build has no registry client yet (make the image locally with `berth import` or `berth load`)"
        ))));
    }
    Err(bad_request("either fromSrc or fromImage is required"))
}

async fn load<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<Response> {
    let quiet = Params::parse(q.as_deref()).bool("quiet");
    let lines = b.load(body_reader(req)).await?;
    let msgs: Vec<serde_json::Value> = lines
        .into_iter()
        .map(|l| json!({"stream": format!("{l}\n")}))
        .collect();
    let _ = quiet;
    Ok(crate::stream::json_lines(futures_util::stream::iter(msgs)))
}

fn save_response<B: Backend>(b: &B, names: &[String]) -> ApiResult<Response> {
    Ok(crate::stream::archive_response(
        b.save(names)?,
        "image save",
    ))
}

async fn save_many<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let names = Params::parse(q.as_deref()).all("names");
    if names.is_empty() {
        return Err(bad_request("no images given"));
    }
    save_response(&*b, &names)
}

/// Splits `name/suffix` where suffix is one of Docker's per-image actions.
fn split_action<'a>(rest: &'a str, actions: &[&str]) -> (&'a str, Option<&'a str>) {
    if let Some((name, last)) = rest.rsplit_once('/') {
        if actions.contains(&last) {
            return (name, Some(last));
        }
    }
    (rest, None)
}

async fn get_one<B: Backend>(
    State(b): State<Arc<B>>,
    Path(rest): Path<String>,
    RawQuery(_q): RawQuery,
) -> ApiResult<Response> {
    match split_action(&rest, &["json", "history", "get"]) {
        (name, Some("json")) => {
            let img = b.image(name)?;
            let graph = b.image_graph_data(&img);
            Ok(Json(convert::image::inspect_out(
                &img,
                &b.facts().storage_driver,
                graph,
            ))
            .into_response())
        }
        (name, Some("history")) => {
            Ok(Json(convert::image::history_out(&b.history(name)?)).into_response())
        }
        (name, Some("get")) => save_response(&*b, &[name.to_string()]),
        _ => Err(ApiError(Error::not_found(format!(
            "page not found: /images/{rest}"
        )))),
    }
}

async fn post_one<B: Backend>(
    State(b): State<Arc<B>>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::parse(q.as_deref());
    match split_action(&rest, &["tag", "push"]) {
        (name, Some("tag")) => {
            let repo = p.string("repo");
            if repo.is_empty() {
                return Err(bad_request("repo is required"));
            }
            b.tag(name, &repo, &p.string("tag"))?;
            Ok(StatusCode::CREATED.into_response())
        }
        (name, Some("push")) => Err(ApiError(Error::not_implemented(format!(
            "pushing {name}: this berth build has no registry client yet"
        )))),
        _ => Err(ApiError(Error::not_found(format!(
            "page not found: /images/{rest}"
        )))),
    }
}

async fn delete_one<B: Backend>(
    State(b): State<Arc<B>>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<serde_json::Value>> {
    let p = Params::parse(q.as_deref());
    let removed = b
        .remove_image(&rest, p.bool("force"), !p.bool("noprune"))
        .await?;
    Ok(Json(json!(removed
        .iter()
        .map(|r| match r {
            RemovedImage::Untagged(t) => json!({"Untagged": t}),
            RemovedImage::Deleted(d) => json!({"Deleted": d}),
        })
        .collect::<Vec<_>>())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths_split_on_known_actions_only() {
        assert_eq!(
            split_action("localhost:5000/a/b/json", &["json"]),
            ("localhost:5000/a/b", Some("json"))
        );
        assert_eq!(split_action("busybox", &["json"]), ("busybox", None));
        assert_eq!(split_action("user/json", &["tag"]), ("user/json", None));
    }
}
