//! The docker CLI's `config.json`: stored registry credentials, shared by berth's CLI
//! (login, logout, and the `X-Registry-Auth` header it sends) and the daemon.
//!
//! Credentials live under `auths` keyed by registry (`https://index.docker.io/v1/` for
//! Docker Hub, `host[:port]` otherwise, see [`registry_key`]) with `auth` =
//! `base64(user:password)` and an optional `identitytoken`; or, when `credHelpers` names a
//! helper for the registry or `credsStore` names a default one, in the external program
//! `docker-credential-<name>` (its `get`/`store`/`erase` protocol: server URL or JSON on
//! stdin, JSON on stdout). Unknown fields of the file are kept when it is written back.

use crate::auth::{self, Credentials};
use crate::error::{RegistryError, Result};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Docker Hub's key in `auths`.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// What a credential helper says when it has nothing for a server.
const HELPER_NOT_FOUND: &str = "credentials not found in native keychain";
/// Username a helper stores for an identity token.
const TOKEN_USERNAME: &str = "<token>";

/// The `auths` key for a server address, as the docker CLI normalises it.
pub fn registry_key(server: &str) -> String {
    let s = server.trim();
    let no_scheme = s.split_once("://").map(|(_, r)| r).unwrap_or(s);
    let host = no_scheme.split('/').next().unwrap_or("").to_lowercase();
    match host.as_str() {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.into(),
        _ => host,
    }
}

/// A loaded `config.json`.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
    /// Where `docker-credential-*` programs are looked for first (else `PATH`).
    helper_dir: Option<PathBuf>,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn default_path() -> PathBuf {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("config.json");
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        home.join(".docker").join("config.json")
    }

    /// Reads the file at `path`; a missing file is an empty config.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let doc = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(RegistryError::DockerConfig {
                        path,
                        reason: "not a JSON object".into(),
                    })
                }
                Err(e) => {
                    return Err(RegistryError::DockerConfig {
                        path,
                        reason: e.to_string(),
                    })
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => {
                return Err(RegistryError::Io {
                    action: "reading",
                    path,
                    source: e,
                })
            }
        };
        Ok(Self {
            path,
            doc,
            helper_dir: None,
        })
    }

    /// Loads [`default_path`](Self::default_path).
    pub fn load_default() -> Result<Self> {
        Self::load(Self::default_path())
    }

    /// Looks for credential helpers in `dir` before `PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the file back atomically, mode 0600, creating its directory.
    pub fn save(&self) -> Result<()> {
        let io = |action: &'static str, path: &Path, e: std::io::Error| RegistryError::Io {
            action,
            path: path.to_path_buf(),
            source: e,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| io("creating temp file in", dir, e))?;
        let text = serde_json::to_string_pretty(&Value::Object(self.doc.clone()))
            .expect("config serialises");
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.write_all(b"\n"))
            .map_err(|e| io("writing", tmp.path(), e))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io("setting mode of", &self.path, e))?;
        }
        tmp.persist(&self.path)
            .map_err(|e| io("writing", &self.path, e.error))?;
        Ok(())
    }

    /// `credsStore`, the default helper.
    pub fn creds_store(&self) -> Option<&str> {
        self.doc
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The helper for a registry key: `credHelpers[key]`, else `credsStore`.
    pub fn helper_for(&self, key: &str) -> Option<String> {
        self.doc
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| self.creds_store())
            .map(str::to_string)
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.doc.get("auths").and_then(Value::as_object)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let entry = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        entry.as_object_mut().expect("just made an object")
    }

    /// The `auths` entry for `key`, matching keys written in other forms
    /// (`http://host:5000`, `host:5000/v1/`).
    fn auth_entry(&self, key: &str) -> Option<(&String, &Value)> {
        let auths = self.auths()?;
        auths
            .get_key_value(key)
            .or_else(|| auths.iter().find(|(k, _)| registry_key(k) == key))
    }

    /// The stored credentials for `server`, from its helper or from `auths`.
    pub fn get(&self, server: &str) -> Result<Option<Credentials>> {
        let key = registry_key(server);
        if let Some(helper) = self.helper_for(&key) {
            return self.helper_get(&helper, &key);
        }
        let Some((_, Value::Object(entry))) = self.auth_entry(&key) else {
            return Ok(None);
        };
        let mut c =
            Credentials::from_json_map(entry).map_err(|reason| RegistryError::DockerConfig {
                path: self.path.clone(),
                reason: format!("auths[{key}]: {reason}"),
            })?;
        if c.is_empty() {
            return Ok(None);
        }
        c.server_address = key;
        Ok(Some(c))
    }

    /// The `X-Registry-Auth` header value for `server` (anonymous `{}` when none stored).
    pub fn x_registry_auth(&self, server: &str) -> Result<String> {
        Ok(self.get(server)?.unwrap_or_default().to_x_registry_auth())
    }

    /// Stores credentials for `server` (in its helper when one is configured; `auths`
    /// then keeps an empty entry, as the docker CLI does). Call [`save`](Self::save) after.
    pub fn store(&mut self, server: &str, creds: &Credentials) -> Result<()> {
        let key = registry_key(server);
        if let Some(helper) = self.helper_for(&key) {
            self.helper_store(&helper, &key, creds)?;
            self.auths_mut().insert(key, json!({}));
            return Ok(());
        }
        let mut entry = Map::new();
        let password = if creds.identity_token.is_empty() {
            creds.password.as_str()
        } else {
            ""
        };
        entry.insert(
            "auth".into(),
            Value::String(auth::encode_basic(&creds.username, password)),
        );
        if !creds.identity_token.is_empty() {
            entry.insert(
                "identitytoken".into(),
                Value::String(creds.identity_token.clone()),
            );
        }
        let auths = self.auths_mut();
        let stale: Vec<String> = auths
            .keys()
            .filter(|k| **k != key && registry_key(k) == key)
            .cloned()
            .collect();
        for k in stale {
            auths.remove(&k);
        }
        auths.insert(key, Value::Object(entry));
        Ok(())
    }

    /// Removes the credentials for `server` (`logout`); true when there were any.
    pub fn erase(&mut self, server: &str) -> Result<bool> {
        let key = registry_key(server);
        let mut found = false;
        if let Some(helper) = self.helper_for(&key) {
            found |= self.helper_erase(&helper, &key)?;
        }
        let auths = self.auths_mut();
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| registry_key(k) == key)
            .cloned()
            .collect();
        for k in keys {
            auths.remove(&k);
            found = true;
        }
        Ok(found)
    }

    fn helper_command(&self, helper: &str) -> Command {
        let name = format!("docker-credential-{helper}");
        let program = self
            .helper_dir
            .as_ref()
            .map(|d| d.join(&name))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from(&name));
        Command::new(program)
    }

    /// Runs `docker-credential-<helper> <action>` with `input` on stdin.
    fn run_helper(&self, helper: &str, action: &str, input: &[u8]) -> Result<(bool, String)> {
        let fail = |message: String| RegistryError::CredentialHelper {
            helper: helper.to_string(),
            message,
        };
        let mut child = self
            .helper_command(helper)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("{action}: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input)
                .map_err(|e| fail(format!("{action}: writing to it: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("{action}: {e}")))?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let text = if text.is_empty() {
            String::from_utf8_lossy(&out.stderr).trim().to_string()
        } else {
            text
        };
        Ok((out.status.success(), text))
    }

    fn helper_get(&self, helper: &str, key: &str) -> Result<Option<Credentials>> {
        let (ok, out) = self.run_helper(helper, "get", key.as_bytes())?;
        if !ok {
            if out.contains(HELPER_NOT_FOUND) {
                return Ok(None);
            }
            return Err(RegistryError::CredentialHelper {
                helper: helper.to_string(),
                message: out,
            });
        }
        let v: Value = serde_json::from_str(&out).map_err(|e| RegistryError::CredentialHelper {
            helper: helper.to_string(),
            message: format!("get: invalid answer: {e}"),
        })?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (username, secret) = (s("Username"), s("Secret"));
        if username.is_empty() && secret.is_empty() {
            return Ok(None);
        }
        let mut c = Credentials {
            server_address: key.to_string(),
            ..Credentials::default()
        };
        if username == TOKEN_USERNAME {
            c.identity_token = secret;
        } else {
            c.username = username;
            c.password = secret;
        }
        Ok(Some(c))
    }

    fn helper_store(&self, helper: &str, key: &str, creds: &Credentials) -> Result<()> {
        let (username, secret) = if creds.identity_token.is_empty() {
            (creds.username.as_str(), creds.password.as_str())
        } else {
            (TOKEN_USERNAME, creds.identity_token.as_str())
        };
        let input = json!({"ServerURL": key, "Username": username, "Secret": secret});
        let (ok, out) = self.run_helper(helper, "store", input.to_string().as_bytes())?;
        if !ok {
            return Err(RegistryError::CredentialHelper {
                helper: helper.to_string(),
                message: out,
            });
        }
        Ok(())
    }

    fn helper_erase(&self, helper: &str, key: &str) -> Result<bool> {
        let (ok, out) = self.run_helper(helper, "erase", key.as_bytes())?;
        if !ok {
            if out.contains(HELPER_NOT_FOUND) {
                return Ok(false);
            }
            return Err(RegistryError::CredentialHelper {
                helper: helper.to_string(),
                message: out,
            });
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_addresses_share_one_key() {
        for s in [
            "",
            "docker.io",
            "index.docker.io",
            "https://index.docker.io/v1/",
            "registry-1.docker.io",
        ] {
            assert_eq!(registry_key(s), DOCKER_HUB_KEY, "{s:?}");
        }
        assert_eq!(registry_key("http://LocalHost:5000/v2/"), "localhost:5000");
    }

    #[test]
    fn stored_credentials_round_trip_and_keep_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, r#"{"psFormat":"table {{.ID}}","auths":{"http://127.0.0.1:5000":{"auth":"b2xkOm9sZA=="}}}"#).unwrap();
        let mut cfg = DockerConfig::load(&path).unwrap();
        let old = cfg.get("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            (old.username.as_str(), old.password.as_str()),
            ("old", "old")
        );
        cfg.store("127.0.0.1:5000", &Credentials::basic("me", "pw"))
            .unwrap();
        cfg.store("docker.io", &Credentials::basic("hub", "x"))
            .unwrap();
        cfg.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("psFormat"), "{text}");
        assert!(text.contains(DOCKER_HUB_KEY));
        assert!(
            !text.contains("http://127.0.0.1:5000"),
            "old spelling replaced"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let cfg = DockerConfig::load(&path).unwrap();
        let c = cfg.get("http://127.0.0.1:5000/").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("me", "pw"));
        let header = cfg.x_registry_auth("index.docker.io").unwrap();
        let back = Credentials::from_x_registry_auth(&header).unwrap();
        assert_eq!(back.username, "hub");
    }

    #[test]
    fn identity_tokens_are_stored_instead_of_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = DockerConfig::load(dir.path().join("config.json")).unwrap();
        let creds = Credentials {
            username: "me".into(),
            password: "pw".into(),
            identity_token: "refresh".into(),
            ..Credentials::default()
        };
        cfg.store("reg.example", &creds).unwrap();
        let got = cfg.get("reg.example").unwrap().unwrap();
        assert_eq!(got.identity_token, "refresh");
        assert_eq!(got.password, "");
        assert!(cfg.erase("reg.example").unwrap());
        assert!(cfg.get("reg.example").unwrap().is_none());
        assert!(!cfg.erase("reg.example").unwrap());
    }

    #[test]
    fn credential_helpers_are_used_for_get_store_and_erase() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store.json");
        // A helper keeping one credential in a file, speaking the helper protocol.
        let script = format!(
            r#"#!/bin/sh
input=$(cat)
case "$1" in
  store) printf '%s' "$input" > {s} ;;
  get) if [ -f {s} ]; then cat {s}; else echo "{nf}"; exit 1; fi ;;
  erase) if [ -f {s} ]; then rm {s}; else echo "{nf}"; exit 1; fi ;;
esac
"#,
            s = store.display(),
            nf = HELPER_NOT_FOUND
        );
        let helper = dir.path().join("docker-credential-testhelper");
        std::fs::write(&helper, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"credHelpers":{"reg.example:5000":"testhelper"}}"#,
        )
        .unwrap();
        let mut cfg = DockerConfig::load(&path)
            .unwrap()
            .with_helper_dir(dir.path());
        assert!(cfg.get("reg.example:5000").unwrap().is_none());
        cfg.store("reg.example:5000", &Credentials::basic("u", "secret"))
            .unwrap();
        assert!(std::fs::read_to_string(&store).unwrap().contains("secret"));
        let got = cfg.get("https://reg.example:5000").unwrap().unwrap();
        assert_eq!(
            (got.username.as_str(), got.password.as_str()),
            ("u", "secret")
        );
        cfg.save().unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains("secret"));
        assert!(cfg.erase("reg.example:5000").unwrap());
        assert!(cfg.get("reg.example:5000").unwrap().is_none());
        // Other registries do not go through the helper.
        cfg.store("other:1", &Credentials::basic("a", "b")).unwrap();
        assert_eq!(cfg.get("other:1").unwrap().unwrap().username, "a");
    }
}
