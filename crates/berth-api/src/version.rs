//! API versions: `/v1.47/containers/json` and `/containers/json` both work; versions outside
//! the supported range are refused with Docker's messages.

use axum::http::{Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// The highest version whose semantics berth implements.
pub const API_VERSION: &str = "1.47";
pub const MIN_API_VERSION: &str = "1.24";

/// The version a request asked for (the default when unversioned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        Some(Self(a.parse().ok()?, b.parse().ok()?))
    }
    pub fn current() -> Self {
        Self::parse(API_VERSION).unwrap_or(Self(1, 47))
    }
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= Self(major, minor)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Strips a `/vX.Y` prefix, records the version in the request's extensions, and refuses
/// versions out of range. Runs before routing.
pub fn strip_version<B>(mut req: Request<B>) -> Result<Request<B>, Box<Response>> {
    let path = req.uri().path();
    let mut version = ApiVersion::current();
    if let Some(rest) = path.strip_prefix("/v") {
        let (v, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if let Some(parsed) = ApiVersion::parse(v) {
            let max = ApiVersion::current();
            let min = ApiVersion::parse(MIN_API_VERSION).unwrap_or(ApiVersion(1, 24));
            if parsed > max {
                return Err(Box::new(too(format!("client version {parsed} is too new. Maximum supported API version is {API_VERSION}"))));
            }
            if parsed < min {
                return Err(Box::new(too(format!(
                    "client version {parsed} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                ))));
            }
            version = parsed;
            let tail = if tail.is_empty() { "/" } else { tail };
            let pq = match req.uri().query() {
                Some(q) => format!("{tail}?{q}"),
                None => tail.to_string(),
            };
            let mut parts = req.uri().clone().into_parts();
            parts.path_and_query = pq.parse().ok();
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req.extensions_mut().insert(version);
    Ok(req)
}

fn too(message: String) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    (
        StatusCode::BAD_REQUEST,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(uri: &str) -> Result<(String, ApiVersion), StatusCode> {
        let req = Request::builder().uri(uri).body(()).unwrap();
        match strip_version(req) {
            Ok(r) => Ok((
                r.uri().to_string(),
                *r.extensions().get::<ApiVersion>().unwrap(),
            )),
            Err(resp) => Err(resp.status()),
        }
    }

    #[test]
    fn versioned_paths_are_stripped_and_recorded() {
        assert_eq!(
            run("/v1.41/containers/json?all=1").unwrap(),
            ("/containers/json?all=1".to_string(), ApiVersion(1, 41))
        );
        assert_eq!(run("/containers/json").unwrap().1, ApiVersion::current());
        assert_eq!(run("/v1.47/_ping").unwrap().0, "/_ping");
    }

    #[test]
    fn versions_out_of_range_are_refused() {
        assert_eq!(run("/v1.99/info").unwrap_err(), StatusCode::BAD_REQUEST);
        assert_eq!(run("/v1.12/info").unwrap_err(), StatusCode::BAD_REQUEST);
    }
}
