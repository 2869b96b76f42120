//! Registry authentication: [`Credentials`] (Docker's `AuthConfig`, as sent in the
//! `X-Registry-Auth` header), `WWW-Authenticate` challenges, and the bearer token flow of
//! the distribution spec with a per-scope token cache.
//!
//! A request that comes back `401` carries a challenge: `Basic` means the credentials go
//! on every request; `Bearer realm=..,service=..,scope=..` means a token is fetched from
//! the realm (basic credentials on a GET, or an identity token as an OAuth2 refresh token
//! on a POST) for the scopes the operation needs, and sent as `Authorization: Bearer`.
//! `TokenCache` keeps tokens per realm, service, scopes and identity until they expire,
//! so a pull of an image already present costs one request.

use crate::error::{errcode_text, RegistryError, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Credentials for one registry (Docker's `AuthConfig`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// An OAuth2 refresh token returned by a previous login (`IdentityToken`).
    #[serde(
        default,
        rename = "identitytoken",
        skip_serializing_if = "String::is_empty"
    )]
    pub identity_token: String,
    /// A bearer token to send as is (`RegistryToken`).
    #[serde(
        default,
        rename = "registrytoken",
        skip_serializing_if = "String::is_empty"
    )]
    pub registry_token: String,
    #[serde(
        default,
        rename = "serveraddress",
        skip_serializing_if = "String::is_empty"
    )]
    pub server_address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &str| if s.is_empty() { "" } else { "<hidden>" };
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("identity_token", &hidden(&self.identity_token))
            .field("registry_token", &hidden(&self.registry_token))
            .field("server_address", &self.server_address)
            .finish()
    }
}

impl Credentials {
    pub fn basic(username: &str, password: &str) -> Self {
        Self {
            username: username.to_string(),
            password: password.to_string(),
            ..Self::default()
        }
    }

    /// No username, password or token: anonymous access.
    pub fn is_empty(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identity_token.is_empty()
            && self.registry_token.is_empty()
    }

    /// Decodes an `X-Registry-Auth` header: base64url (padding optional; standard base64
    /// accepted too) of the JSON `AuthConfig`. Keys match case-insensitively, as Go's JSON
    /// decoder does; an `auth` field (`base64(user:password)`) fills username and password.
    /// An empty header, or `{}`, is anonymous.
    pub fn from_x_registry_auth(header: &str) -> Result<Self> {
        let header = header.trim();
        if header.is_empty() {
            return Ok(Self::default());
        }
        let raw = decode_base64(header).ok_or_else(|| RegistryError::InvalidAuthHeader {
            reason: "not base64".into(),
        })?;
        Self::from_auth_config_json(&raw)
    }

    /// Reads Docker's `AuthConfig` JSON (the body of `POST /auth`, or a decoded
    /// `X-Registry-Auth` header), with the same rules as [`Self::from_x_registry_auth`].
    pub fn from_auth_config_json(raw: &[u8]) -> Result<Self> {
        let invalid = |reason: String| RegistryError::InvalidAuthHeader { reason };
        let value: serde_json::Value =
            serde_json::from_slice(raw).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            if value.is_null() {
                return Ok(Self::default());
            }
            return Err(invalid("not a JSON object".into()));
        };
        Self::from_json_map(&map).map_err(invalid)
    }

    /// Reads a Docker `AuthConfig`-shaped JSON object (keys case-insensitive).
    pub(crate) fn from_json_map(
        map: &serde_json::Map<String, serde_json::Value>,
    ) -> std::result::Result<Self, String> {
        let mut c = Self::default();
        let mut auth = String::new();
        for (k, v) in map {
            let Some(s) = v.as_str() else { continue };
            let s = s.to_string();
            match k.to_lowercase().as_str() {
                "username" => c.username = s,
                "password" => c.password = s,
                "auth" => auth = s,
                "identitytoken" => c.identity_token = s,
                "registrytoken" => c.registry_token = s,
                "serveraddress" => c.server_address = s,
                "email" => c.email = s,
                _ => {}
            }
        }
        if !auth.is_empty() && c.username.is_empty() && c.password.is_empty() {
            let (u, p) = decode_basic(&auth).ok_or("invalid auth field")?;
            c.username = u;
            c.password = p;
        }
        Ok(c)
    }

    /// Encodes as the docker CLI does for `X-Registry-Auth` (base64url of the JSON).
    pub fn to_x_registry_auth(&self) -> String {
        let json = serde_json::to_vec(self).expect("credentials serialise");
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }

    /// A key identifying these credentials in caches (never the secret itself).
    pub(crate) fn cache_key(&self) -> String {
        let secret = format!(
            "{}\0{}\0{}\0{}",
            self.username, self.password, self.identity_token, self.registry_token
        );
        berth_core::Digest::of(secret.as_bytes()).hex()[..16].to_string()
    }
}

/// Credentials for several registries at once: the `X-Registry-Config` header of
/// `POST /build` (base64url JSON of `{server: AuthConfig}`), which the docker CLI fills
/// from its config.json so a build can pull the images of its `FROM` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryAuths(std::collections::BTreeMap<String, Credentials>);

impl RegistryAuths {
    /// Decodes the header; an empty one is no credentials. Servers are keyed by registry
    /// domain (`https://index.docker.io/v1/` is `docker.io`).
    pub fn from_x_registry_config(header: &str) -> Result<Self> {
        let header = header.trim();
        if header.is_empty() {
            return Ok(Self::default());
        }
        let invalid = |reason: String| RegistryError::InvalidAuthHeader { reason };
        let raw = decode_base64(header).ok_or_else(|| invalid("not base64".into()))?;
        let value: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let mut out = std::collections::BTreeMap::new();
        for (server, v) in value.as_object().into_iter().flatten() {
            let Some(map) = v.as_object() else { continue };
            out.insert(
                server_domain(server),
                Credentials::from_json_map(map).map_err(invalid)?,
            );
        }
        Ok(Self(out))
    }

    /// The credentials for a registry domain (`docker.io`, `host:port`); anonymous when
    /// there are none.
    pub fn for_domain(&self, domain: &str) -> Credentials {
        self.0.get(domain).cloned().unwrap_or_default()
    }
}

/// The registry domain of a config.json server key: scheme and path dropped, Docker
/// Hub's index names folded into `docker.io`.
fn server_domain(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [URL_SAFE, URL_SAFE_NO_PAD, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// Decodes `base64(user:password)` as stored in config.json's `auth`.
pub(crate) fn decode_basic(auth: &str) -> Option<(String, String)> {
    let raw = decode_base64(auth.trim())?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.trim_end_matches('\n').to_string()))
}

pub(crate) fn encode_basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: String,
        /// The scope the registry asked for, if it said.
        scope: Option<String>,
        /// OAuth error (`insufficient_scope`, `invalid_token`) when the challenge carries one.
        error: Option<String>,
    },
}

/// Parses the challenges of `WWW-Authenticate` header values; `Bearer` first.
pub fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for v in values {
        for (scheme, params) in split_challenges(v) {
            match scheme.to_lowercase().as_str() {
                "basic" => out.push(Challenge::Basic),
                "bearer" => {
                    let get = |k: &str| params.get(k).cloned();
                    if let Some(realm) = get("realm") {
                        out.push(Challenge::Bearer {
                            realm,
                            service: get("service").unwrap_or_default(),
                            scope: get("scope"),
                            error: get("error"),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    out.sort_by_key(|c| matches!(c, Challenge::Basic));
    out
}

/// Splits `Bearer realm="a",service="b", Basic realm="c"` into schemes with parameters.
fn split_challenges(header: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut out: Vec<(String, HashMap<String, String>)> = Vec::new();
    let b = header.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        // A token: either a scheme (followed by space) or a param name (followed by '=').
        let start = i;
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'=' | b',') {
            i += 1;
        }
        let token = &header[start..i];
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch_len = utf8_len(b[i]);
                    v.push_str(&header[i..(i + ch_len).min(b.len())]);
                    i += ch_len;
                }
                i += 1; // closing quote
                v
            } else {
                let vs = i;
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                header[vs..i].trim().to_string()
            };
            if let Some(last) = out.last_mut() {
                last.1.insert(token.to_lowercase(), value);
            }
        } else if !token.is_empty() {
            out.push((token.to_string(), HashMap::new()));
        } else {
            i += 1;
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// A bearer token and when it stops being usable.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
    /// The OAuth2 refresh token, when the server gave one (login with offline access).
    pub refresh_token: Option<String>,
}

/// What a token endpoint answers.
#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Tokens per (realm, service, scopes, identity), until they expire.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<String, Token>>,
}

/// Docker's minimum token lifetime when a server says less (or nothing).
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are renewed this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

impl TokenCache {
    fn key(realm: &str, service: &str, scopes: &[String], creds: Option<&Credentials>) -> String {
        let mut scopes = scopes.to_vec();
        scopes.sort();
        format!(
            "{realm}\n{service}\n{}\n{}",
            scopes.join(" "),
            creds.map(|c| c.cache_key()).unwrap_or_default()
        )
    }

    fn get(&self, key: &str) -> Option<Token> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(key)
            .filter(|t| t.expires > Instant::now() + EXPIRY_MARGIN)
            .cloned()
    }

    fn put(&self, key: String, token: Token) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.retain(|_, t| t.expires > Instant::now());
        tokens.insert(key, token);
    }

    /// Drops every cached token (one was refused: expired early or revoked).
    pub(crate) fn forget_all(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// A token for `scopes` from the realm of `challenge`, cached or fetched.
    pub(crate) async fn token(
        &self,
        client: &reqwest::Client,
        realm: &str,
        service: &str,
        scopes: &[String],
        creds: Option<&Credentials>,
    ) -> Result<Token> {
        if let Some(c) = creds.filter(|c| !c.registry_token.is_empty()) {
            return Ok(Token {
                value: c.registry_token.clone(),
                expires: Instant::now() + Duration::from_secs(3600),
                refresh_token: None,
            });
        }
        let key = Self::key(realm, service, scopes, creds);
        if let Some(t) = self.get(&key) {
            return Ok(t);
        }
        let t = fetch_token(client, realm, service, scopes, creds, false).await?;
        self.put(key, t.clone());
        Ok(t)
    }
}

/// Fetches a token: an OAuth2 refresh-token POST when an identity token is known, else a
/// GET with basic credentials (anonymous without). `offline` asks for a refresh token
/// (what `docker login` does, so the daemon can return it as the identity token).
pub(crate) async fn fetch_token(
    client: &reqwest::Client,
    realm: &str,
    service: &str,
    scopes: &[String],
    creds: Option<&Credentials>,
    offline: bool,
) -> Result<Token> {
    let url = reqwest::Url::parse(realm).map_err(|e| RegistryError::InvalidAddress {
        input: realm.to_string(),
        reason: format!("token realm: {e}"),
    })?;
    let creds = creds.filter(|c| !c.is_empty());
    if let Some(c) = creds.filter(|c| !c.identity_token.is_empty()) {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", &c.identity_token),
            ("service", service),
            ("client_id", "docker"),
        ];
        let scope = scopes.join(" ");
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        if offline {
            form.push(("access_type", "offline"));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let resp = client
            .post(url.clone())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| crate::transport::transport_error("POST", url.as_str(), &e))?;
        // Servers without OAuth2 POST support get the basic GET instead, as Docker does.
        if resp.status() != reqwest::StatusCode::NOT_FOUND
            && resp.status() != reqwest::StatusCode::METHOD_NOT_ALLOWED
        {
            return token_from_response("Post", url.as_str(), resp).await;
        }
    }
    let mut get = url.clone();
    {
        let mut q = get.query_pairs_mut();
        if !service.is_empty() {
            q.append_pair("service", service);
        }
        for s in scopes {
            q.append_pair("scope", s);
        }
        if let Some(c) = creds.filter(|c| !c.username.is_empty()) {
            q.append_pair("account", &c.username);
        }
        if offline {
            q.append_pair("offline_token", "true");
            q.append_pair("client_id", "docker");
        }
    }
    let mut req = client.get(get.clone());
    if let Some(c) = creds.filter(|c| !c.username.is_empty()) {
        req = req.basic_auth(&c.username, Some(&c.password));
    }
    let resp = req
        .send()
        .await
        .map_err(|e| crate::transport::transport_error("GET", get.as_str(), &e))?;
    token_from_response("Get", get.as_str(), resp).await
}

async fn token_from_response(method: &str, url: &str, resp: reqwest::Response) -> Result<Token> {
    let status = resp.status();
    if !status.is_success() {
        let cause = crate::transport::error_from_response(method, url, resp).await;
        return Err(RegistryError::TokenFetch {
            method: method.to_string(),
            url: url.to_string(),
            cause: Box::new(cause),
        });
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| crate::transport::transport_error(method, url, &e))?;
    let parsed: TokenResponse =
        serde_json::from_slice(&body).map_err(|e| RegistryError::TokenFetch {
            method: method.to_string(),
            url: url.to_string(),
            cause: Box::new(RegistryError::internal("decoding token response", e)),
        })?;
    let value = if parsed.access_token.is_empty() {
        parsed.token
    } else {
        parsed.access_token
    };
    if value.is_empty() {
        return Err(RegistryError::TokenFetch {
            method: method.to_string(),
            url: url.to_string(),
            cause: Box::new(RegistryError::Remote {
                status: 401,
                code: errcode_text("UNAUTHORIZED"),
                message: "authorization server did not include a token in the response".into(),
            }),
        });
    }
    let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60)).max(MIN_TOKEN_LIFETIME);
    Ok(Token {
        value,
        expires: Instant::now() + lifetime,
        refresh_token: parsed.refresh_token.filter(|t| !t.is_empty()),
    })
}

/// Percent-encodes a form or query component.
pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The scope string for repository access: `repository:library/busybox:pull,push`.
pub fn repository_scope(path: &str, actions: &[&str]) -> String {
    format!("repository:{path}:{}", actions.join(","))
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_configs_key_credentials_by_registry_domain() {
        let header = base64::engine::general_purpose::URL_SAFE.encode(
            serde_json::json!({
                "https://index.docker.io/v1/": {"username": "hub", "password": "a"},
                "127.0.0.1:5000": {"auth": super::encode_basic("alice", "pw")},
                "http://reg.local:5001/v2/": {"username": "bob", "password": "b"},
            })
            .to_string(),
        );
        let auths = super::RegistryAuths::from_x_registry_config(&header).unwrap();
        assert_eq!(auths.for_domain("docker.io").username, "hub");
        assert_eq!(
            auths.for_domain("127.0.0.1:5000"),
            super::Credentials::basic("alice", "pw")
        );
        assert_eq!(auths.for_domain("reg.local:5001").username, "bob");
        assert!(auths.for_domain("other:1").is_empty());
        assert!(super::RegistryAuths::from_x_registry_config("")
            .unwrap()
            .for_domain("docker.io")
            .is_empty());
        assert!(super::RegistryAuths::from_x_registry_config("!!").is_err());
    }

    use super::*;

    #[test]
    fn x_registry_auth_decodes_urlsafe_and_standard_base64_with_any_key_case() {
        let json = r#"{"username":"bob","password":"s3/cr?t>","serveraddress":"127.0.0.1:5000"}"#;
        let url = base64::engine::general_purpose::URL_SAFE.encode(json);
        let c = Credentials::from_x_registry_auth(&url).unwrap();
        assert_eq!(c.username, "bob");
        assert_eq!(c.password, "s3/cr?t>");
        assert_eq!(c.server_address, "127.0.0.1:5000");
        let std = base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(r#"{"Username":"al","Password":"pw","IdentityToken":"tok"}"#);
        let c = Credentials::from_x_registry_auth(&std).unwrap();
        assert_eq!(
            (
                c.username.as_str(),
                c.password.as_str(),
                c.identity_token.as_str()
            ),
            ("al", "pw", "tok")
        );
    }

    #[test]
    fn x_registry_auth_auth_field_fills_username_and_password() {
        let json = format!(r#"{{"auth":"{}"}}"#, encode_basic("u", "p:q"));
        let header = base64::engine::general_purpose::URL_SAFE.encode(json);
        let c = Credentials::from_x_registry_auth(&header).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:q"));
    }

    #[test]
    fn empty_or_null_x_registry_auth_is_anonymous_and_garbage_is_refused() {
        assert!(Credentials::from_x_registry_auth("").unwrap().is_empty());
        let null = base64::engine::general_purpose::URL_SAFE.encode("null");
        assert!(Credentials::from_x_registry_auth(&null).unwrap().is_empty());
        let empty = base64::engine::general_purpose::URL_SAFE.encode("{}");
        assert!(Credentials::from_x_registry_auth(&empty)
            .unwrap()
            .is_empty());
        assert!(Credentials::from_x_registry_auth("!!!").is_err());
    }

    #[test]
    fn credentials_round_trip_through_the_header_and_hide_secrets_in_debug() {
        let c = Credentials::basic("me", "secret");
        let back = Credentials::from_x_registry_auth(&c.to_x_registry_auth()).unwrap();
        assert_eq!(back, c);
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn bearer_challenges_are_parsed_with_quoted_params() {
        let c = parse_challenges([
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        ]);
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: "registry.docker.io".into(),
                scope: Some("repository:library/busybox:pull".into()),
                error: None,
            }]
        );
        let c = parse_challenges([r#"Basic realm="Registry Realm""#]);
        assert_eq!(c, vec![Challenge::Basic]);
        let c = parse_challenges([
            r#"Basic realm="x", Bearer realm="http://127.0.0.1:1/t",service=svc,error="insufficient_scope""#,
        ]);
        assert!(
            matches!(&c[0], Challenge::Bearer { service, error: Some(e), .. } if service == "svc" && e == "insufficient_scope")
        );
        assert_eq!(c[1], Challenge::Basic);
    }

    #[test]
    fn repository_scopes_join_actions() {
        assert_eq!(
            repository_scope("library/busybox", &["pull", "push"]),
            "repository:library/busybox:pull,push"
        );
    }
}
