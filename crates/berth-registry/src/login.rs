//! Login: check credentials against a registry, as the daemon's `POST /auth` does.
//!
//! `GET /v2/` answers `200` (no auth needed), or `401` with a challenge: for `Basic` the
//! request is repeated with the credentials; for `Bearer` a token is fetched with offline
//! access (so the token server may hand out a refresh token, returned as the identity
//! token the CLI stores) and `/v2/` is asked again with it. Failures use Docker's words
//! (`login attempt to https://host/v2/ failed with status: 401 Unauthorized`,
//! `Get "https://host/v2/": unauthorized: incorrect username or password`).

use crate::auth::{self, Challenge, Credentials};
use crate::error::{RegistryError, Result};
use crate::transport::{transport_error, Endpoint, Transport, DOCKER_HUB_REGISTRY};
use crate::Registry;
use reqwest::StatusCode;

/// What a successful login returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginResult {
    /// `Login Succeeded`.
    pub status: String,
    /// A refresh token to store instead of the password, when the registry gave one.
    pub identity_token: Option<String>,
}

/// The registry host a login address names: Docker Hub for an empty address, `docker.io`
/// or `https://index.docker.io/v1/`; else the address without scheme and path.
pub fn login_host(server: &str) -> Result<String> {
    let s = server.trim();
    let no_scheme = s.split_once("://").map(|(_, r)| r).unwrap_or(s);
    let host = no_scheme.split('/').next().unwrap_or("").to_lowercase();
    match host.as_str() {
        ""
        | "docker.io"
        | "index.docker.io"
        | "registry-1.docker.io"
        | "registry.hub.docker.com" => Ok(DOCKER_HUB_REGISTRY.to_string()),
        h if h.contains(char::is_whitespace) => Err(RegistryError::InvalidAddress {
            input: server.to_string(),
            reason: "contains whitespace".into(),
        }),
        h => Ok(h.to_string()),
    }
}

impl Registry {
    /// Verifies `creds` against `server` (a host, a URL, or empty for Docker Hub).
    pub async fn login(&self, server: &str, creds: &Credentials) -> Result<LoginResult> {
        let host = login_host(server)?;
        let alternatives = self.transport.alternatives(&host, false).await?;
        let mut last = None;
        for ep in &alternatives {
            match login_at(&self.transport, ep, creds).await {
                Ok(r) => return Ok(r),
                Err(e @ RegistryError::Transport { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::internal("login", "no endpoints")))
    }
}

async fn login_at(
    transport: &Transport,
    ep: &Endpoint,
    creds: &Credentials,
) -> Result<LoginResult> {
    let client = transport.client(&ep.host, ep.verify_tls)?;
    let url = ep.base.join("v2/").expect("static path joins");
    let get = |auth: Option<String>| {
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
    let succeeded = |identity_token| LoginResult {
        status: "Login Succeeded".to_string(),
        identity_token,
    };
    let failed = |status: StatusCode| RegistryError::LoginFailed {
        url: url.to_string(),
        status: format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim()
        .to_string(),
    };
    let resp = get(None).await?;
    match resp.status() {
        StatusCode::OK => return Ok(succeeded(None)),
        StatusCode::UNAUTHORIZED => {}
        s => return Err(failed(s)),
    }
    let challenges: Vec<&str> = resp
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let challenge = auth::parse_challenges(challenges).into_iter().next();
    match challenge {
        None => Err(failed(StatusCode::UNAUTHORIZED)),
        Some(Challenge::Basic) => {
            if creds.username.is_empty() {
                return Err(RegistryError::NoBasicCredentials);
            }
            let header = format!(
                "Basic {}",
                auth::encode_basic(&creds.username, &creds.password)
            );
            let resp = get(Some(header)).await?;
            match resp.status() {
                StatusCode::OK => Ok(succeeded(None)),
                s => Err(failed(s)),
            }
        }
        Some(Challenge::Bearer { realm, service, .. }) => {
            let realm_url =
                reqwest::Url::parse(&realm).map_err(|e| RegistryError::InvalidAddress {
                    input: realm.clone(),
                    reason: e.to_string(),
                })?;
            let realm_host = match (realm_url.host_str(), realm_url.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => ep.host.clone(),
            };
            let token_client = transport.client(&realm_host, ep.verify_tls)?;
            let token = auth::fetch_token(&token_client, &realm, &service, &[], Some(creds), true)
                .await
                .map_err(|e| match e {
                    RegistryError::TokenFetch { cause, .. } => RegistryError::TokenFetch {
                        method: "Get".into(),
                        url: url.to_string(),
                        cause,
                    },
                    other => other,
                })?;
            let resp = get(Some(format!("Bearer {}", token.value))).await?;
            match resp.status() {
                StatusCode::OK => Ok(succeeded(token.refresh_token)),
                s => Err(failed(s)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_addresses_normalise_to_registry_hosts() {
        for hub in [
            "",
            "docker.io",
            "https://index.docker.io/v1/",
            "index.docker.io",
        ] {
            assert_eq!(login_host(hub).unwrap(), DOCKER_HUB_REGISTRY, "{hub:?}");
        }
        assert_eq!(
            login_host("http://127.0.0.1:5000/v2/").unwrap(),
            "127.0.0.1:5000"
        );
        assert_eq!(
            login_host("Registry.Example:443").unwrap(),
            "registry.example:443"
        );
    }
}
