//! `/images/...`. Image names contain slashes (`localhost:5000/a/b`), so the per-image
//! routes take the rest of the path and dispatch on its last segment, as Docker's router
//! does with `{name:.*}`. Pulls (`/images/create?fromImage=`) and pushes stream Docker's
//! JSON progress messages (see `convert::progress` and `stream::progress_stream`).

use crate::backend::Backend;
use crate::convert;
use crate::error::{bad_request, ApiError, ApiResult};
use crate::params::Params;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_core::reference::Reference;
use berth_core::Error;
use berth_engine::images::{
    Credentials, ImageProgress, ImportImage, ListImages, ProgressSink, PullImage, PushImage,
    RemovedImage, SearchImages,
};
use futures_util::TryStreamExt;
use serde_json::json;
use std::io::Read;
use std::sync::Arc;
use tokio::sync::mpsc;

pub fn routes<B: Backend>() -> Router<Arc<B>> {
    Router::new()
        .route("/images/json", get(list::<B>))
        .route("/images/create", post(create::<B>))
        .route("/images/load", post(load::<B>))
        .route("/images/get", get(save_many::<B>))
        .route("/images/search", get(search::<B>))
        .route("/images/prune", post(prune::<B>))
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
        let pull = PullImage {
            reference: pull_reference(image, &p.string("tag"))?,
            platform: p.string("platform"),
            // As dockerd: a pull without (valid) credentials is anonymous, not an error.
            credentials: registry_auth(req.headers()).unwrap_or_default(),
        };
        let (sink, rx) = progress_channel();
        return crate::stream::progress_stream(async move { b.pull(pull, sink).await }, rx).await;
    }
    Err(bad_request("either fromSrc or fromImage is required"))
}

/// dockerd's reading of `fromImage` and `tag`: a trailing `:` is dropped (`pull -a` of
/// old clients), and `tag` may be a digest. A name without tag or digest means all tags.
fn pull_reference(image: &str, tag: &str) -> ApiResult<String> {
    let image = image.strip_suffix(':').unwrap_or(image);
    let named = Reference::parse(image).map_err(Error::from)?;
    if tag.is_empty() {
        return Ok(named.to_string());
    }
    let sep = if tag.parse::<berth_core::Digest>().is_ok() {
        '@'
    } else {
        ':'
    };
    let r = Reference::parse(&format!("{}{sep}{tag}", named.repository())).map_err(Error::from)?;
    Ok(r.to_string())
}

/// The credentials of an `X-Registry-Auth` header (base64url JSON `AuthConfig`); `None`
/// when it is absent, empty or undecodable (dockerd treats those as anonymous).
fn registry_auth(h: &HeaderMap) -> Option<Credentials> {
    let v = h.get("x-registry-auth")?.to_str().ok()?;
    if v.is_empty() {
        return None;
    }
    Credentials::from_x_registry_auth(v).ok()
}

/// A progress sink for the engine and the stream of JSON messages it feeds.
fn progress_channel() -> (ProgressSink, mpsc::UnboundedReceiver<serde_json::Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink: ProgressSink = Arc::new(move |p: ImageProgress| {
        let _ = tx.send(convert::progress::message_out(&p));
    });
    (sink, rx)
}

async fn search<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let p = Params::parse(q.as_deref());
    let limit = match p.int("limit") {
        Ok(Some(n)) if n >= 0 => n as usize,
        Ok(None) => 0,
        _ => return Err(bad_request("invalid limit specified")),
    };
    let results = b
        .search(SearchImages {
            term: p.string("term"),
            limit,
            filters: convert::filters::parse(p.get("filters"))?,
            credentials: registry_auth(&headers).unwrap_or_default(),
        })
        .await?;
    Ok(Json(json!(results
        .iter()
        .map(convert::image::search_result_out)
        .collect::<Vec<_>>())))
}

async fn prune<B: Backend>(
    State(b): State<Arc<B>>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<serde_json::Value>> {
    let filters = convert::filters::parse(Params::parse(q.as_deref()).get("filters"))?;
    let pruned = b.prune_images(filters).await?;
    let deleted = if pruned.deleted.is_empty() {
        serde_json::Value::Null
    } else {
        removed_out(&pruned.deleted)
    };
    Ok(Json(json!({
        "ImagesDeleted": deleted,
        "SpaceReclaimed": pruned.space_reclaimed,
    })))
}

/// `rmi` lines: `{"Untagged": ..}` / `{"Deleted": ..}`.
fn removed_out(removed: &[RemovedImage]) -> serde_json::Value {
    json!(removed
        .iter()
        .map(|r| match r {
            RemovedImage::Untagged(t) => json!({"Untagged": t}),
            RemovedImage::Deleted(d) => json!({"Deleted": d}),
        })
        .collect::<Vec<_>>())
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
    req: Request,
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
        (name, Some("push")) => {
            let named = Reference::parse(name).map_err(Error::from)?;
            let tag = p.string("tag");
            let reference = if tag.is_empty() {
                named.to_string()
            } else {
                Reference::parse(&format!("{}:{tag}", named.repository()))
                    .map_err(Error::from)?
                    .to_string()
            };
            let credentials = push_auth(req).await?;
            let (sink, rx) = progress_channel();
            let push = PushImage {
                reference,
                credentials,
            };
            crate::stream::progress_stream(async move { b.push(push, sink).await }, rx).await
        }
        _ => Err(ApiError(Error::not_found(format!(
            "page not found: /images/{rest}"
        )))),
    }
}

/// dockerd's push credentials: the `X-Registry-Auth` header (undecodable: anonymous), or
/// for old clients without it, an `AuthConfig` JSON body.
async fn push_auth(req: Request) -> ApiResult<Credentials> {
    let header = req
        .headers()
        .get("x-registry-auth")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !header.is_empty() {
        return Ok(Credentials::from_x_registry_auth(&header).unwrap_or_default());
    }
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| bad_request(format!("bad parameters and missing X-Registry-Auth: {e}")))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad_request(
            "bad parameters and missing X-Registry-Auth: EOF",
        ));
    }
    Credentials::from_auth_config_json(&body)
        .map_err(|e| bad_request(format!("bad parameters and missing X-Registry-Auth: {e}")))
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
    Ok(Json(removed_out(&removed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_references_combine_from_image_and_tag_as_dockerd_does() {
        let d = berth_core::Digest::of(b"m");
        assert_eq!(
            pull_reference("busybox", "latest").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            pull_reference("localhost:5000/a/b:", "").unwrap(),
            "localhost:5000/a/b",
            "a trailing ':' (pull -a) means every tag"
        );
        assert_eq!(
            pull_reference("user/app", &d.to_string()).unwrap(),
            format!("docker.io/user/app@{d}")
        );
        assert_eq!(
            pull_reference("busybox:old", "new").unwrap(),
            "docker.io/library/busybox:new"
        );
        assert!(pull_reference("Busybox", "latest").is_err());
        assert!(pull_reference("busybox", "bad tag").is_err());
    }

    #[test]
    fn registry_auth_headers_decode_or_read_as_anonymous() {
        let mut h = HeaderMap::new();
        assert!(registry_auth(&h).is_none());
        h.insert(
            "X-Registry-Auth",
            Credentials::basic("alice", "pw")
                .to_x_registry_auth()
                .parse()
                .unwrap(),
        );
        let c = registry_auth(&h).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "pw"));
        h.insert("X-Registry-Auth", "!!not base64!!".parse().unwrap());
        assert!(registry_auth(&h).is_none());
    }

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
