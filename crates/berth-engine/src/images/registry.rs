//! `docker login` (`POST /auth`) and `docker search`, through the engine's distribution
//! client (so both honour `insecure-registries` and certs.d as pulls do).

use crate::Engine;
use berth_core::filters::Filters;
use berth_core::{Error, Result};
use berth_registry::{Credentials, SearchResult};

pub use berth_registry::LoginResult;

/// What `GET /images/search` asks for.
#[derive(Debug, Clone, Default)]
pub struct SearchImages {
    /// `TERM` or `HOST[:PORT]/TERM` (another index than Docker Hub's).
    pub term: String,
    /// 1 to 100; 0 for Docker's default (25).
    pub limit: usize,
    /// `stars=N`, `is-official=BOOL`, `is-automated=BOOL`.
    pub filters: Filters,
    pub credentials: Credentials,
}

impl Engine {
    /// Checks credentials against the registry they name (`serveraddress`; Docker Hub
    /// when empty). The credentials are not kept: clients store them.
    pub async fn login(&self, creds: Credentials) -> Result<LoginResult> {
        let server = creds.server_address.clone();
        Ok(self.registry.login(&server, &creds).await?)
    }

    /// Searches an index with Docker's filters, applied to what it returns.
    pub async fn search_images(&self, req: SearchImages) -> Result<Vec<SearchResult>> {
        let f = &req.filters;
        f.validate(&["is-automated", "is-official", "stars"])?;
        let automated = f.bool_value("is-automated")?;
        let official = f.bool_value("is-official")?;
        let mut min_stars = 0u64;
        for v in f.get("stars") {
            let n: u64 = v
                .parse()
                .map_err(|_| Error::invalid(format!("invalid filter 'stars={v}'")))?;
            min_stars = min_stars.max(n);
        }
        if req.term.contains("://") {
            return Err(Error::invalid(format!(
                "invalid repository name: repository name ({}) should not have a scheme",
                req.term
            )));
        }
        // "is-automated" is deprecated: dockerd 25+ answers `true` with nothing.
        if automated == Some(true) {
            return Ok(Vec::new());
        }
        let creds = Some(&req.credentials).filter(|c| !c.is_empty());
        let results = self
            .registry
            .search("", &req.term, req.limit, creds)
            .await?;
        Ok(results
            .into_iter()
            .filter(|r| official.is_none_or(|o| r.is_official == o))
            .filter(|r| r.star_count >= min_stars)
            .collect())
    }
}
