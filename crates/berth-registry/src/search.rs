//! Search: Docker Hub's `/v1/search` API (`GET /v1/search?q=TERM&n=LIMIT`).
//!
//! The index is Docker Hub's (`https://index.docker.io`) unless the term names a
//! registry (`myhost:5000/app`), as `docker search` does; an index given as a URL is used
//! as is, a bare host gets the usual HTTPS-then-HTTP treatment for insecure registries.
//! Anonymous first; a `401` challenge is answered with basic credentials or a token for
//! `registry:catalog:search`.

use crate::auth::{self, Challenge, Credentials};
use crate::error::{RegistryError, Result};
use crate::transport::{error_from_response, transport_error, Endpoint, DEFAULT_INDEX};
use crate::Registry;
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

/// One search hit, as Docker Hub returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

#[derive(Deserialize)]
struct SearchResponse {
    #[serde(default)]
    results: Vec<SearchResult>,
}

/// Docker's default number of results.
pub const DEFAULT_LIMIT: usize = 25;

/// Splits `host:5000/app` into the index it names and the term to send; other terms
/// go to `index`.
fn split_term<'a>(index: &'a str, term: &'a str) -> (&'a str, &'a str) {
    if let Some((first, rest)) = term.split_once('/') {
        if first.contains('.') || first.contains(':') || first == "localhost" {
            if first == "docker.io" || first == "index.docker.io" {
                return (index, rest);
            }
            return (first, rest);
        }
    }
    (index, term)
}

impl Registry {
    /// Searches `index` (empty: Docker Hub) for `term`; `limit` 0 means 25.
    pub async fn search(
        &self,
        index: &str,
        term: &str,
        limit: usize,
        creds: Option<&Credentials>,
    ) -> Result<Vec<SearchResult>> {
        let limit = if limit == 0 { DEFAULT_LIMIT } else { limit };
        if limit > 100 {
            return Err(RegistryError::SearchLimit { limit });
        }
        let index = if index.is_empty() {
            DEFAULT_INDEX
        } else {
            index
        };
        let (index, term) = split_term(index, term);
        let bases: Vec<(Url, bool, String)> = match index.split_once("://") {
            Some(_) => {
                let url = Url::parse(index).map_err(|e| RegistryError::InvalidAddress {
                    input: index.to_string(),
                    reason: e.to_string(),
                })?;
                let host = match (url.host_str(), url.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_string(),
                    _ => {
                        return Err(RegistryError::InvalidAddress {
                            input: index.to_string(),
                            reason: "no host".into(),
                        })
                    }
                };
                let verify = !self.transport.is_insecure(&host).await;
                vec![(url, verify, host)]
            }
            None => self
                .transport
                .alternatives(index, false)
                .await?
                .into_iter()
                .map(|e: Endpoint| (e.base, e.verify_tls, e.host))
                .collect(),
        };
        let mut last = None;
        for (base, verify, host) in bases {
            match self
                .search_at(&base, verify, &host, term, limit, creds)
                .await
            {
                Ok(r) => return Ok(r),
                Err(e @ RegistryError::Transport { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::internal("search", "no endpoints")))
    }

    async fn search_at(
        &self,
        base: &Url,
        verify: bool,
        host: &str,
        term: &str,
        limit: usize,
        creds: Option<&Credentials>,
    ) -> Result<Vec<SearchResult>> {
        let client = self.transport.client(host, verify)?;
        let mut url = base
            .join("/v1/search")
            .map_err(|e| RegistryError::internal("search URL", e))?;
        url.query_pairs_mut()
            .append_pair("q", term)
            .append_pair("n", &limit.to_string());
        let send = |auth: Option<String>| {
            let mut req = client.get(url.clone());
            if let Some(a) = auth {
                req = req.header(reqwest::header::AUTHORIZATION, a);
            }
            async {
                req.send()
                    .await
                    .map_err(|e| transport_error("GET", url.as_str(), &e))
            }
        };
        let mut resp = send(None).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let values: Vec<&str> = resp
                .headers()
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            let auth = match auth::parse_challenges(values).into_iter().next() {
                Some(Challenge::Basic) => creds
                    .filter(|c| !c.username.is_empty())
                    .map(|c| format!("Basic {}", auth::encode_basic(&c.username, &c.password))),
                Some(Challenge::Bearer { realm, service, .. }) => {
                    let t = self
                        .transport
                        .tokens
                        .token(
                            &client,
                            &realm,
                            &service,
                            &["registry:catalog:search".to_string()],
                            creds,
                        )
                        .await?;
                    Some(format!("Bearer {}", t.value))
                }
                None => None,
            };
            if let Some(a) = auth {
                resp = send(Some(a)).await?;
            }
        }
        if resp.status() != StatusCode::OK {
            return Err(error_from_response("GET", url.as_str(), resp).await);
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport_error("GET", url.as_str(), &e))?;
        let parsed: SearchResponse = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::internal("decoding search results", e))?;
        let mut results = parsed.results;
        results.truncate(limit);
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_naming_a_registry_search_that_registry() {
        assert_eq!(
            split_term(DEFAULT_INDEX, "busybox"),
            (DEFAULT_INDEX, "busybox")
        );
        assert_eq!(
            split_term(DEFAULT_INDEX, "user/app"),
            (DEFAULT_INDEX, "user/app")
        );
        assert_eq!(
            split_term(DEFAULT_INDEX, "127.0.0.1:5000/app"),
            ("127.0.0.1:5000", "app")
        );
        assert_eq!(
            split_term(DEFAULT_INDEX, "docker.io/library/x"),
            (DEFAULT_INDEX, "library/x")
        );
    }

    #[tokio::test]
    async fn limits_over_a_hundred_are_refused_with_dockers_message() {
        let r = Registry::new(crate::RegistryConfig::default());
        let err = r.search("", "x", 101, None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "limit 101 is outside the range of [1, 100]"
        );
    }
}
