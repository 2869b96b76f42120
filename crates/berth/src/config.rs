//! Docker's client configuration file (`config.json`) and its credential stores.
//!
//! berth shares docker's file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`)
//! so a `docker login` serves berth and the other way round. [`ConfigFile`] keeps the whole
//! JSON document and rewrites only `auths`, so settings berth does not know survive a save.
//! Credentials live in one of three places, chosen per registry as docker chooses:
//! `credHelpers[registry]`, else `credsStore`, else the file itself (`auths.<key>.auth`,
//! base64 of `user:password`). Helpers are the `docker-credential-<name>` programs and
//! speak their JSON protocol on stdin/stdout ([`HelperStore`]).

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::{json, Value as Json};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Docker Hub's credentials key.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// Credentials for one registry: docker's `AuthConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    pub server_address: String,
    pub identity_token: String,
    pub registry_token: String,
}

impl AuthConfig {
    /// The JSON docker sends, in Go's field order with `omitempty` on every field, for
    /// `/auth` and `X-Registry-Auth`.
    pub fn to_json_string(&self) -> String {
        let fields: Vec<String> = [
            ("username", &self.username),
            ("password", &self.password),
            ("serveraddress", &self.server_address),
            ("identitytoken", &self.identity_token),
            ("registrytoken", &self.registry_token),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("\"{k}\":{}", Json::String(v.to_string())))
        .collect();
        format!("{{{}}}", fields.join(","))
    }

    /// `X-Registry-Auth`: base64url (padded) of the JSON; `e30=` (`{}`) when empty.
    pub fn encode_header(&self) -> String {
        base64::engine::general_purpose::URL_SAFE.encode(self.to_json_string())
    }
}

/// The credentials key for a registry domain (docker's `getAuthConfigKey`).
pub fn auth_config_key(domain: &str) -> String {
    match domain {
        "docker.io" | "index.docker.io" => INDEX_SERVER.to_string(),
        d => d.to_string(),
    }
}

/// docker's `credentials.ConvertToHostname`: `https://host:5000/v2/` → `host:5000`.
pub fn convert_to_hostname(url: &str) -> String {
    let s = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    s.split('/').next().unwrap_or(s).to_string()
}

/// The config directory: `--config`, `$DOCKER_CONFIG`, or `~/.docker`.
pub fn config_dir(flag: Option<&str>) -> PathBuf {
    if let Some(f) = flag.filter(|s| !s.is_empty()) {
        return PathBuf::from(f);
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|s| !s.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".docker")
}

/// A loaded `config.json`.
pub struct ConfigFile {
    path: PathBuf,
    doc: Json,
}

impl ConfigFile {
    /// Loads `dir/config.json`; a missing file is an empty configuration.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("config.json");
        let doc = match std::fs::read(&path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => json!({}),
            Ok(b) => serde_json::from_slice(&b).with_context(|| {
                format!("loading config file: {}: invalid JSON", path.display())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
            Err(e) => {
                return Err(e).with_context(|| format!("loading config file {}", path.display()))
            }
        };
        Ok(Self { path, doc })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the file as docker does: tab-indented JSON, replaced atomically, mode 0600.
    pub fn save(&self) -> anyhow::Result<()> {
        use std::os::unix::fs::OpenOptionsExt as _;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        serde::Serialize::serialize(&docker_key_order(&self.doc), &mut ser)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&buf)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    fn auths(&self) -> Option<&serde_json::Map<String, Json>> {
        self.doc.get("auths").and_then(Json::as_object)
    }

    fn auths_mut(&mut self) -> &mut serde_json::Map<String, Json> {
        if !self.doc.is_object() {
            self.doc = json!({});
        }
        let obj = self
            .doc
            .as_object_mut()
            .expect("config document is an object");
        let auths = obj.entry("auths").or_insert_with(|| json!({}));
        if !auths.is_object() {
            *auths = json!({});
        }
        auths.as_object_mut().expect("auths is an object")
    }

    /// The helper program suffix that stores `server`'s credentials, if any.
    pub fn helper_for(&self, server: &str) -> Option<String> {
        let helper = self
            .doc
            .get("credHelpers")
            .and_then(|h| h.get(server))
            .and_then(Json::as_str)
            .or_else(|| self.doc.get("credsStore").and_then(Json::as_str))?;
        (!helper.is_empty()).then(|| helper.to_string())
    }

    /// Credentials from the file itself (`auths`), matching legacy URL keys by hostname.
    pub fn file_get(&self, server: &str) -> AuthConfig {
        let Some(auths) = self.auths() else {
            return AuthConfig::default();
        };
        let entry = auths.get(server).map(|e| (server, e)).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| convert_to_hostname(k) == server)
                .map(|(k, e)| (k.as_str(), e))
        });
        let Some((key, e)) = entry else {
            return AuthConfig::default();
        };
        let mut ac = AuthConfig {
            server_address: key.to_string(),
            identity_token: e["identitytoken"].as_str().unwrap_or("").to_string(),
            registry_token: e["registrytoken"].as_str().unwrap_or("").to_string(),
            ..Default::default()
        };
        if let Some(auth) = e["auth"].as_str().filter(|s| !s.is_empty()) {
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(auth) {
                let raw = String::from_utf8_lossy(&raw).into_owned();
                if let Some((u, p)) = raw.split_once(':') {
                    ac.username = u.to_string();
                    ac.password = p.trim_end_matches('\0').to_string();
                }
            }
        }
        ac
    }

    /// Stores credentials in the file: `auth` (and `identitytoken`), nothing in the clear.
    pub fn file_store(&mut self, ac: &AuthConfig) {
        let mut e = serde_json::Map::new();
        if !ac.username.is_empty() || !ac.password.is_empty() {
            let raw = format!("{}:{}", ac.username, ac.password);
            e.insert(
                "auth".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(raw)),
            );
        }
        if !ac.identity_token.is_empty() {
            e.insert("identitytoken".into(), json!(ac.identity_token));
        }
        if !ac.registry_token.is_empty() {
            e.insert("registrytoken".into(), json!(ac.registry_token));
        }
        self.auths_mut()
            .insert(ac.server_address.clone(), Json::Object(e));
    }

    /// Removes a server's entry from the file; false when there was none.
    pub fn file_erase(&mut self, server: &str) -> bool {
        self.auths_mut().remove(server).is_some()
    }

    /// docker's `GetAuthConfig`: the credentials for a key from its store.
    pub fn get_auth(&self, server: &str) -> anyhow::Result<AuthConfig> {
        match self.helper_for(server) {
            Some(h) => HelperStore::new(&h).get(server),
            None => Ok(self.file_get(server)),
        }
    }

    /// Stores credentials where docker would; the file keeps an empty entry for helpers.
    pub fn store_auth(&mut self, ac: &AuthConfig) -> anyhow::Result<()> {
        match self.helper_for(&ac.server_address) {
            Some(h) => {
                HelperStore::new(&h).store(ac)?;
                self.auths_mut()
                    .insert(ac.server_address.clone(), json!({}));
            }
            None => self.file_store(ac),
        }
        self.save()
    }

    /// Erases a server's credentials from its store and the file.
    pub fn erase_auth(&mut self, server: &str) -> anyhow::Result<()> {
        if let Some(h) = self.helper_for(server) {
            HelperStore::new(&h).erase(server)?;
        }
        self.file_erase(server);
        self.save()
    }

    /// Whether credentials for `server` are kept in the file itself.
    pub fn stores_in_file(&self, server: &str) -> bool {
        self.helper_for(server).is_none()
    }
}

/// The docker CLI writes its config struct's fields in declaration order; keys it does not
/// know follow in the order they were read.
const DOCKER_CONFIG_KEYS: &[&str] = &[
    "auths",
    "HttpHeaders",
    "psFormat",
    "imagesFormat",
    "networksFormat",
    "pluginsFormat",
    "volumesFormat",
    "statsFormat",
    "detachKeys",
    "credsStore",
    "credHelpers",
    "serviceInspectFormat",
    "servicesFormat",
    "tasksFormat",
    "secretFormat",
    "configFormat",
    "nodesFormat",
    "pruneFilters",
    "proxies",
    "experimental",
    "currentContext",
    "cliPluginsExtraDirs",
    "plugins",
    "aliases",
    "features",
];

fn docker_key_order(doc: &Json) -> Json {
    let Some(obj) = doc.as_object() else {
        return doc.clone();
    };
    let mut out = serde_json::Map::new();
    for k in DOCKER_CONFIG_KEYS {
        if let Some(v) = obj.get(*k) {
            out.insert((*k).to_string(), v.clone());
        }
    }
    for (k, v) in obj {
        if !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    Json::Object(out)
}

/// A `docker-credential-<name>` helper.
pub struct HelperStore {
    program: String,
}

impl HelperStore {
    pub fn new(suffix: &str) -> Self {
        Self {
            program: format!("docker-credential-{suffix}"),
        }
    }

    fn run(&self, action: &str, input: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut child = std::process::Command::new(&self.program)
            .arg(action)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "error getting credentials - err: exec: \"{}\": {}, out: ``",
                    self.program,
                    if e.kind() == std::io::ErrorKind::NotFound {
                        "executable file not found in $PATH".to_string()
                    } else {
                        e.to_string()
                    }
                )
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input)?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
            anyhow::bail!("{msg}");
        }
        Ok(out.stdout)
    }

    /// `get`: a helper that knows nothing returns empty credentials, as docker treats it.
    pub fn get(&self, server: &str) -> anyhow::Result<AuthConfig> {
        let out = match self.run("get", server.as_bytes()) {
            Ok(o) => o,
            Err(e) if e.to_string().contains("credentials not found") => {
                return Ok(AuthConfig {
                    server_address: server.to_string(),
                    ..Default::default()
                })
            }
            Err(e) => return Err(e),
        };
        let v: Json = serde_json::from_slice(&out)?;
        let user = v["Username"].as_str().unwrap_or("").to_string();
        let secret = v["Secret"].as_str().unwrap_or("").to_string();
        let mut ac = AuthConfig {
            server_address: server.to_string(),
            ..Default::default()
        };
        if user == "<token>" {
            ac.identity_token = secret;
        } else {
            ac.username = user;
            ac.password = secret;
        }
        Ok(ac)
    }

    pub fn store(&self, ac: &AuthConfig) -> anyhow::Result<()> {
        let (user, secret) = if ac.identity_token.is_empty() {
            (ac.username.as_str(), ac.password.as_str())
        } else {
            ("<token>", ac.identity_token.as_str())
        };
        let body = json!({"ServerURL": ac.server_address, "Username": user, "Secret": secret});
        self.run("store", &serde_json::to_vec(&body)?)?;
        Ok(())
    }

    pub fn erase(&self, server: &str) -> anyhow::Result<()> {
        self.run("erase", server.as_bytes())?;
        Ok(())
    }
}

/// The `X-Registry-Auth` value docker sends for pulling or pushing `reference`.
pub fn registry_auth_header(cfg: &ConfigFile, domain: &str) -> anyhow::Result<String> {
    let ac = cfg.get_auth(&auth_config_key(domain))?;
    Ok(AuthConfig {
        username: ac.username,
        password: ac.password,
        server_address: ac.server_address,
        identity_token: ac.identity_token,
        registry_token: ac.registry_token,
    }
    .encode_header())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn empty_auth_encodes_as_an_empty_object() {
        assert_eq!(AuthConfig::default().encode_header(), "e30=");
    }

    #[test]
    fn auth_header_is_base64url_json_with_omitted_empties() {
        let ac = AuthConfig {
            username: "u".into(),
            password: "p?>".into(),
            server_address: "127.0.0.1:5000".into(),
            ..Default::default()
        };
        let h = ac.encode_header();
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(&h)
            .unwrap();
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            r#"{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}"#
        );
        assert!(!h.contains('+') && !h.contains('/'));
    }

    #[test]
    fn hub_domains_share_the_index_key() {
        assert_eq!(auth_config_key("docker.io"), INDEX_SERVER);
        assert_eq!(auth_config_key("index.docker.io"), INDEX_SERVER);
        assert_eq!(auth_config_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            convert_to_hostname("https://registry.example:5000/v2/"),
            "registry.example:5000"
        );
    }

    #[test]
    fn stored_credentials_round_trip_through_the_file() {
        let d = tmpdir("roundtrip");
        std::fs::write(
            d.join("config.json"),
            "{\"psFormat\": \"table {{.ID}}\", \"auths\": {}}",
        )
        .unwrap();
        let mut cfg = ConfigFile::load(&d).unwrap();
        let ac = AuthConfig {
            username: "user".into(),
            password: "pass".into(),
            server_address: "127.0.0.1:5000".into(),
            ..Default::default()
        };
        cfg.store_auth(&ac).unwrap();
        let text = std::fs::read_to_string(d.join("config.json")).unwrap();
        assert_eq!(
            text,
            "{\n\t\"auths\": {\n\t\t\"127.0.0.1:5000\": {\n\t\t\t\"auth\": \"dXNlcjpwYXNz\"\n\t\t}\n\t},\n\t\"psFormat\": \"table {{.ID}}\"\n}"
        );
        let cfg = ConfigFile::load(&d).unwrap();
        assert_eq!(cfg.get_auth("127.0.0.1:5000").unwrap(), ac);
        let mut cfg = cfg;
        cfg.erase_auth("127.0.0.1:5000").unwrap();
        assert_eq!(
            ConfigFile::load(&d).unwrap().file_get("127.0.0.1:5000"),
            AuthConfig::default()
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn legacy_url_keys_match_by_hostname() {
        let d = tmpdir("legacy");
        std::fs::write(
            d.join("config.json"),
            r#"{"auths": {"https://reg.example/v1/": {"auth": "YTpi"}}}"#,
        )
        .unwrap();
        let ac = ConfigFile::load(&d).unwrap().file_get("reg.example");
        assert_eq!((ac.username.as_str(), ac.password.as_str()), ("a", "b"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn cred_helpers_win_over_creds_store() {
        let d = tmpdir("helpers");
        std::fs::write(
            d.join("config.json"),
            r#"{"credsStore": "desktop", "credHelpers": {"gcr.io": "gcloud"}}"#,
        )
        .unwrap();
        let cfg = ConfigFile::load(&d).unwrap();
        assert_eq!(cfg.helper_for("gcr.io").as_deref(), Some("gcloud"));
        assert_eq!(cfg.helper_for("other").as_deref(), Some("desktop"));
        assert!(!cfg.stores_in_file("other"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn helpers_speak_the_credential_helper_protocol() {
        let d = tmpdir("proto");
        let store = d.join("store");
        let helper = d.join("docker-credential-berthtest");
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\ncase $1 in\nstore) cat > {s};;\nget) read server; if [ -f {s} ]; then sed 's/\"ServerURL\":\"[^\"]*\",//' {s}; else echo 'credentials not found in native keychain'; exit 1; fi;;\nerase) rm -f {s};;\nesac\n",
                s = store.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let h = HelperStore {
            program: helper.display().to_string(),
        };
        assert_eq!(h.get("r.example").unwrap().username, "");
        let ac = AuthConfig {
            username: "u".into(),
            password: "s".into(),
            server_address: "r.example".into(),
            ..Default::default()
        };
        h.store(&ac).unwrap();
        assert_eq!(
            std::fs::read_to_string(&store).unwrap(),
            r#"{"ServerURL":"r.example","Username":"u","Secret":"s"}"#
        );
        assert_eq!(h.get("r.example").unwrap(), ac);
        h.erase("r.example").unwrap();
        assert!(!store.exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
