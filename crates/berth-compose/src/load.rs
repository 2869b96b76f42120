//! From files on disk to a [`Project`]: find the files, read `.env`, parse YAML (anchors
//! and `<<` merge keys included), interpolate, drop `x-` extensions, read into the model
//! (unknown keys are errors naming the file and path), resolve `extends`, merge the files,
//! make paths absolute, apply profiles, fill in the implied `default` network and the
//! names of networks and volumes, and validate references between services. Nothing here
//! talks to a daemon: a project that loads is one that can be planned.

use crate::error::{Error, Result};
use crate::interpolate::{interpolate_tree, InterpolationError};
use crate::merge::merge_value;
use crate::model::{ComposeFile, External, NetworkConfig, Service, VolumeConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The file names looked for, in order, in the working directory and its parents.
pub const FILE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
const OVERRIDE_NAMES: &[&str] = &[
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// What the command line and environment say about where the project is.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files in order (`-` is standard input); empty means look for them.
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `--env-file` (several allowed); empty means `.env` in the project directory.
    pub env_files: Vec<PathBuf>,
    /// `--profile`.
    pub profiles: Vec<String>,
    /// The directory relative paths on the command line are relative to.
    pub working_dir: PathBuf,
    /// The process environment (interpolation reads it before `.env`).
    pub environ: BTreeMap<String, String>,
    /// What `-f -` reads.
    pub stdin: Option<String>,
}

/// A loaded, validated project.
#[derive(Debug, Clone, Default)]
pub struct Project {
    pub name: String,
    /// The project directory: relative paths in the files are relative to it.
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    /// Services enabled by the active profiles.
    pub services: BTreeMap<String, Service>,
    /// Services whose profiles are not active.
    pub disabled: BTreeMap<String, Service>,
    /// Networks by key, each with its engine-side `name` filled in.
    pub networks: BTreeMap<String, NetworkConfig>,
    pub volumes: BTreeMap<String, VolumeConfig>,
    pub secrets: BTreeMap<String, crate::model::FileObject>,
    pub configs: BTreeMap<String, crate::model::FileObject>,
    /// Variables for interpolation: the process environment over the `.env` files.
    pub environment: BTreeMap<String, String>,
    /// Things the user should know (unset variables), printed as warnings.
    pub warnings: Vec<String>,
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// serde's unknown-field message in the specification's words.
pub(crate) fn unknown_key_message(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some(end) = rest.find('`') {
            return format!("additional property '{}' is not allowed", &rest[..end]);
        }
    }
    msg.to_string()
}

/// Compose's project name rule: lowercase letters, digits, `-` and `_`, starting with a
/// letter or digit.
pub fn valid_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A directory name made into a project name: lowercased, other characters dropped.
pub fn normalize_project_name(name: &str) -> String {
    let s: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    s.trim_start_matches(['-', '_']).to_string()
}

fn find_files(start: &Path) -> Option<Vec<PathBuf>> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        if let Some(base) = FILE_NAMES.iter().map(|n| d.join(n)).find(|p| p.is_file()) {
            let mut files = vec![base];
            if let Some(o) = OVERRIDE_NAMES
                .iter()
                .map(|n| d.join(n))
                .find(|p| p.is_file())
            {
                files.push(o);
            }
            return Some(files);
        }
        dir = d.parent();
    }
    None
}

fn read_env_file(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        file: display(path),
        source,
    })?;
    crate::dotenv::parse(&text, lookup).map_err(|message| Error::Yaml {
        file: display(path),
        message,
    })
}

/// Keys that may carry `x-` extensions: the top level and the model's objects.
fn strip_extensions(doc: &mut yaml_serde::Value) {
    fn strip(m: &mut yaml_serde::Value) {
        if let yaml_serde::Value::Mapping(map) = m {
            map.retain(|k, _| !k.as_str().is_some_and(|s| s.starts_with("x-")));
        }
    }
    strip(doc);
    for section in ["services", "networks", "volumes", "secrets", "configs"] {
        if let Some(yaml_serde::Value::Mapping(items)) = doc.get_mut(section) {
            for (_, item) in items.iter_mut() {
                strip(item);
                if section == "services" {
                    for sub in ["build", "deploy", "logging", "healthcheck"] {
                        if let Some(s) = item.get_mut(sub) {
                            strip(s);
                        }
                    }
                }
            }
        }
    }
}

/// State shared while loading the files of one project.
struct Loader<'a> {
    env: &'a BTreeMap<String, String>,
    unset: BTreeSet<String>,
    stdin: Option<String>,
}

impl Loader<'_> {
    /// Reads, interpolates and parses one file.
    fn parse_file(&mut self, path: &Path) -> Result<ComposeFile> {
        let file = display(path);
        let text = if path == Path::new("-") {
            self.stdin.take().unwrap_or_default()
        } else {
            std::fs::read_to_string(path).map_err(|source| Error::Io {
                file: file.clone(),
                source,
            })?
        };
        let mut doc: yaml_serde::Value = yaml_serde::from_str(&text).map_err(|e| Error::Yaml {
            file: file.clone(),
            message: e.to_string(),
        })?;
        doc.apply_merge().map_err(|e| Error::Yaml {
            file: file.clone(),
            message: e.to_string(),
        })?;
        match &doc {
            yaml_serde::Value::Mapping(_) => {}
            yaml_serde::Value::Null => {
                return Err(Error::Yaml {
                    file,
                    message: "empty compose file".into(),
                })
            }
            _ => {
                return Err(Error::Yaml {
                    file,
                    message: "top-level object must be a mapping".into(),
                })
            }
        }
        let env = self.env;
        let lookup = |k: &str| env.get(k).cloned();
        let unset = &mut self.unset;
        interpolate_tree(&mut doc, "", &lookup, &mut |k| {
            unset.insert(k.to_string());
        })
        .map_err(|(path, e)| Error::Interpolation {
            file: file.clone(),
            path,
            message: match e {
                InterpolationError::Syntax { .. } => e.to_string(),
                InterpolationError::Required { .. } => e.to_string(),
            },
        })?;
        strip_extensions(&mut doc);
        let parsed: ComposeFile = serde_path_to_error::deserialize(doc).map_err(|e| {
            let path = e.path().to_string();
            Error::Invalid {
                file: file.clone(),
                path: if path == "." { "(root)".into() } else { path },
                message: unknown_key_message(&e.inner().to_string()),
            }
        })?;
        let mut parsed = parsed;
        for s in parsed.services.values_mut() {
            s.source_file = file.clone();
        }
        Ok(parsed)
    }

    /// Resolves `extends` in every service of `file` (read from `path`, paths already
    /// absolute against `dir`).
    fn resolve_extends(&mut self, file: &mut ComposeFile, path: &Path, dir: &Path) -> Result<()> {
        let names: Vec<String> = file.services.keys().cloned().collect();
        for name in names {
            let mut stack = Vec::new();
            let resolved = self.extended(file, path, dir, &name, &mut stack)?;
            file.services.insert(name, resolved);
        }
        Ok(())
    }

    fn extended(
        &mut self,
        file: &ComposeFile,
        path: &Path,
        dir: &Path,
        name: &str,
        stack: &mut Vec<String>,
    ) -> Result<Service> {
        let svc = file
            .services
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NoSuchService {
                name: name.to_string(),
            })?;
        let Some(ext) = svc.extends.clone() else {
            return Ok(svc);
        };
        let key = format!("{}:{name}", display(path));
        if stack.contains(&key) {
            stack.push(key);
            return Err(Error::Service {
                file: display(path),
                service: name.to_string(),
                key: "extends".into(),
                message: format!("circular reference: {}", stack.join(" -> ")),
            });
        }
        stack.push(key);
        let base = match &ext.file {
            None => {
                if !file.services.contains_key(&ext.service) {
                    return Err(Error::Service {
                        file: display(path),
                        service: name.to_string(),
                        key: "extends".into(),
                        message: format!("cannot extend undefined service {:?}", ext.service),
                    });
                }
                self.extended(file, path, dir, &ext.service, stack)?
            }
            Some(other) => {
                let other_path = dir.join(other);
                let other_dir = other_path.parent().unwrap_or(dir).to_path_buf();
                let mut other_file = self.parse_file(&other_path)?;
                for s in other_file.services.values_mut() {
                    absolutize(s, &other_dir, self.env);
                }
                if !other_file.services.contains_key(&ext.service) {
                    return Err(Error::Service {
                        file: display(path),
                        service: name.to_string(),
                        key: "extends".into(),
                        message: format!(
                            "cannot extend service {:?}: not defined in {}",
                            ext.service,
                            display(&other_path)
                        ),
                    });
                }
                self.extended(&other_file, &other_path, &other_dir, &ext.service, stack)?
            }
        };
        stack.pop();
        let mut merged = to_json(&base);
        let mut over = svc.clone();
        over.extends = None;
        merge_value(&mut merged, to_json(&over), "");
        let mut out: Service = from_json(merged, path, &format!("services.{name}"))?;
        out.source_file = svc.source_file.clone();
        Ok(out)
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn from_json<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
    file: &Path,
    path: &str,
) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::Invalid {
        file: display(file),
        path: path.to_string(),
        message: unknown_key_message(&e.to_string()),
    })
}

fn expand_home(p: &str, env: &BTreeMap<String, String>) -> String {
    match p.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            format!(
                "{}{rest}",
                env.get("HOME").map(String::as_str).unwrap_or("/root")
            )
        }
        _ => p.to_string(),
    }
}

/// Lexically cleans `a/./b/../c` into `a/c` (no symlinks resolved, as compose does).
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn abs(dir: &Path, p: &str, env: &BTreeMap<String, String>) -> String {
    let p = expand_home(p, env);
    display(&clean(&dir.join(p)))
}

/// Makes the paths of a service absolute against `dir`: build context, env files, bind
/// sources.
fn absolutize(s: &mut Service, dir: &Path, env: &BTreeMap<String, String>) {
    if let Some(b) = &mut s.build {
        let ctx = b.context.clone().unwrap_or_else(|| ".".into());
        // A URL context is left to the daemon.
        if !ctx.contains("://") && !ctx.starts_with("git@") {
            b.context = Some(abs(dir, &ctx, env));
        }
    }
    for f in &mut s.env_file {
        f.path = abs(dir, &f.path, env);
    }
    for v in &mut s.volumes {
        if v.kind == "bind" {
            if let Some(src) = &v.source {
                v.source = Some(abs(dir, src, env));
            }
        }
    }
}

impl Project {
    /// Loads the project the options describe.
    pub fn load(opts: &LoadOptions) -> Result<Project> {
        let cwd = &opts.working_dir;
        // `.env` in the working directory may name the files (`COMPOSE_FILE`).
        let mut env: BTreeMap<String, String> = opts.environ.clone();
        let early_dir = opts
            .project_directory
            .as_ref()
            .map(|d| cwd.join(d))
            .unwrap_or_else(|| cwd.clone());
        let mut dotenv: BTreeMap<String, String> = BTreeMap::new();
        let env_files: Vec<PathBuf> = if opts.env_files.is_empty() {
            let p = early_dir.join(".env");
            if p.is_file() {
                vec![p]
            } else {
                vec![]
            }
        } else {
            opts.env_files.iter().map(|f| cwd.join(f)).collect()
        };
        for f in &env_files {
            let lookup = |k: &str| {
                opts.environ
                    .get(k)
                    .cloned()
                    .or_else(|| dotenv.get(k).cloned())
            };
            let entries = read_env_file(f, &lookup)?;
            for (k, v) in entries {
                if let Some(v) = v {
                    dotenv.insert(k, v);
                }
            }
        }
        for (k, v) in &dotenv {
            env.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let files: Vec<PathBuf> = if !opts.files.is_empty() {
            opts.files
                .iter()
                .map(|f| {
                    if f == Path::new("-") {
                        f.clone()
                    } else {
                        cwd.join(f)
                    }
                })
                .collect()
        } else if let Some(list) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
            let sep = env
                .get("COMPOSE_PATH_SEPARATOR")
                .and_then(|s| s.chars().next())
                .unwrap_or(':');
            list.split(sep).map(|f| early_dir.join(f)).collect()
        } else {
            find_files(&early_dir).ok_or_else(|| Error::NoFile {
                dir: early_dir.clone(),
            })?
        };
        let files: Vec<PathBuf> = files
            .iter()
            .map(|f| {
                if f == Path::new("-") {
                    f.clone()
                } else {
                    clean(f)
                }
            })
            .collect();
        let first_dir = files
            .iter()
            .find(|f| *f != Path::new("-"))
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| cwd.clone());
        let project_dir = opts
            .project_directory
            .as_ref()
            .map(|d| clean(&cwd.join(d)))
            .unwrap_or(first_dir);
        // The project's `.env` when the files live elsewhere than the working directory.
        if opts.env_files.is_empty() && opts.project_directory.is_none() && project_dir != *cwd {
            let p = project_dir.join(".env");
            if p.is_file() {
                let lookup = |k: &str| opts.environ.get(k).cloned();
                for (k, v) in read_env_file(&p, &lookup)? {
                    if let Some(v) = v {
                        env.entry(k).or_insert(v);
                    }
                }
            }
        }

        let mut loader = Loader {
            env: &env,
            unset: BTreeSet::new(),
            stdin: opts.stdin.clone(),
        };
        let mut merged: Option<serde_json::Value> = None;
        let mut service_files: BTreeMap<String, String> = BTreeMap::new();
        for path in &files {
            let mut file = loader.parse_file(path)?;
            for s in file.services.values_mut() {
                absolutize(s, &project_dir, &env);
            }
            let dir = if path == Path::new("-") {
                project_dir.clone()
            } else {
                path.parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| project_dir.clone())
            };
            loader.resolve_extends(&mut file, path, &dir)?;
            for (name, s) in &file.services {
                service_files
                    .entry(name.clone())
                    .or_insert_with(|| s.source_file.clone());
            }
            let json = to_json(&file);
            match &mut merged {
                None => merged = Some(json),
                Some(m) => merge_value(m, json, ""),
            }
        }
        let first_file = files.first().cloned().unwrap_or_default();
        let mut doc: ComposeFile = from_json(merged.unwrap_or_default(), &first_file, "(root)")?;
        for (name, s) in doc.services.iter_mut() {
            s.source_file = service_files.get(name).cloned().unwrap_or_default();
        }
        let mut warnings: Vec<String> = loader
            .unset
            .iter()
            .map(|k| format!("The \"{k}\" variable is not set. Defaulting to a blank string."))
            .collect();

        // The name: -p, COMPOSE_PROJECT_NAME, the files' `name`, the directory.
        let name = if let Some(n) = opts.project_name.clone().filter(|n| !n.is_empty()) {
            if !valid_project_name(&n) {
                return Err(Error::ProjectName { name: n });
            }
            n
        } else if let Some(n) = env.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
            if !valid_project_name(n) {
                return Err(Error::ProjectName { name: n.clone() });
            }
            n.clone()
        } else if let Some(n) = doc.name.clone().filter(|n| !n.is_empty()) {
            if !valid_project_name(&n) {
                return Err(Error::ProjectName { name: n });
            }
            n
        } else {
            let base = project_dir
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let n = normalize_project_name(&base);
            if n.is_empty() {
                return Err(Error::ProjectName { name: base });
            }
            n
        };

        // Profiles.
        let mut active: BTreeSet<String> = opts.profiles.iter().cloned().collect();
        if let Some(p) = env.get("COMPOSE_PROFILES") {
            active.extend(
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
        }
        let mut services = BTreeMap::new();
        let mut disabled = BTreeMap::new();
        for (n, s) in std::mem::take(&mut doc.services) {
            let on = s.profiles.is_empty()
                || active.contains("*")
                || s.profiles.iter().any(|p| active.contains(p));
            if on {
                services.insert(n, s);
            } else {
                disabled.insert(n, s);
            }
        }

        let mut project = Project {
            name,
            working_dir: project_dir,
            config_files: files,
            services,
            disabled,
            networks: doc.networks,
            volumes: doc.volumes,
            secrets: doc.secrets,
            configs: doc.configs,
            environment: env,
            warnings: Vec::new(),
        };
        project.normalize()?;
        project.warnings.append(&mut warnings);
        project.validate()?;
        Ok(project)
    }

    /// Fills in what the files leave implicit.
    fn normalize(&mut self) -> Result<()> {
        let env = self.environment.clone();
        let mut needs_default = false;
        for (name, s) in self.services.iter_mut().chain(self.disabled.iter_mut()) {
            if s.networks.is_empty() && s.network_mode.is_none() {
                s.networks.insert("default".into(), None);
            }
            if s.networks.contains_key("default") {
                needs_default = true;
            }
            // env_file entries under `environment` (which wins), then bare names from the
            // environment.
            let mut from_files: BTreeMap<String, Option<String>> = BTreeMap::new();
            for f in &s.env_file {
                let p = Path::new(&f.path);
                if !p.exists() {
                    if f.required {
                        return Err(Error::Service {
                            file: s.source_file.clone(),
                            service: name.clone(),
                            key: "env_file".into(),
                            message: format!("env file {} not found", f.path),
                        });
                    }
                    continue;
                }
                let lookup = |k: &str| env.get(k).cloned();
                for (k, v) in read_env_file(p, &lookup)? {
                    from_files.insert(k, v);
                }
            }
            for (k, v) in std::mem::take(&mut s.environment) {
                from_files.insert(k, v);
            }
            s.environment = from_files
                .into_iter()
                .filter_map(|(k, v)| match v {
                    Some(v) => Some((k, Some(v))),
                    None => env.get(&k).map(|v| (k, Some(v.clone()))),
                })
                .collect();
            s.env_file.clear();
        }
        if needs_default {
            self.networks.entry("default".into()).or_default();
        }
        for (key, n) in self.networks.iter_mut() {
            if let Some(External::Named { name }) = &n.external {
                n.name = Some(name.clone());
                n.external = Some(External::Flag(true));
            }
            if n.name.is_none() {
                n.name = Some(if External::is_external(&n.external) {
                    key.clone()
                } else {
                    format!("{}_{key}", self.name)
                });
            }
        }
        for (key, v) in self.volumes.iter_mut() {
            if let Some(External::Named { name }) = &v.external {
                v.name = Some(name.clone());
                v.external = Some(External::Flag(true));
            }
            if v.name.is_none() {
                v.name = Some(if External::is_external(&v.external) {
                    key.clone()
                } else {
                    format!("{}_{key}", self.name)
                });
            }
        }
        let dir = self.working_dir.clone();
        for o in self.secrets.values_mut().chain(self.configs.values_mut()) {
            if let Some(f) = &o.file {
                o.file = Some(abs(&dir, f, &env));
            }
        }
        Ok(())
    }

    fn service_error(s: &Service, name: &str, key: &str, message: String) -> Error {
        Error::Service {
            file: s.source_file.clone(),
            service: name.to_string(),
            key: key.to_string(),
            message,
        }
    }

    /// References between services and to networks, volumes, secrets; dependency cycles.
    fn validate(&self) -> Result<()> {
        for (name, s) in &self.services {
            let err = |key: &str, message: String| Self::service_error(s, name, key, message);
            if s.image.is_none() && s.build.is_none() {
                return Err(err(
                    "image",
                    "has neither an image nor a build context specified".into(),
                ));
            }
            for dep in s.depends_on.keys() {
                if !self.services.contains_key(dep) {
                    let why = if self.disabled.contains_key(dep) {
                        format!("depends on service {dep:?}, which is disabled by its profiles")
                    } else {
                        format!("depends on undefined service {dep:?}")
                    };
                    if s.depends_on[dep].required || !self.disabled.contains_key(dep) {
                        return Err(err("depends_on", why));
                    }
                }
            }
            for net in s.networks.keys() {
                if !self.networks.contains_key(net) {
                    return Err(err(
                        "networks",
                        format!("refers to undefined network {net:?}"),
                    ));
                }
            }
            if let Some(mode) = &s.network_mode {
                if let Some(other) = mode.strip_prefix("service:") {
                    if !self.services.contains_key(other) {
                        return Err(err(
                            "network_mode",
                            format!("refers to undefined service {other:?}"),
                        ));
                    }
                }
                if !s.networks.is_empty() {
                    return Err(err(
                        "network_mode",
                        "network_mode and networks cannot be combined".into(),
                    ));
                }
            }
            for v in &s.volumes {
                if v.kind == "volume" {
                    if let Some(src) = &v.source {
                        if !self.volumes.contains_key(src) {
                            return Err(err(
                                "volumes",
                                format!("refers to undefined volume {src}"),
                            ));
                        }
                    }
                }
            }
            for vf in &s.volumes_from {
                let target = vf.split(':').next().unwrap_or("");
                if !vf.starts_with("container:") && !self.services.contains_key(target) {
                    return Err(err(
                        "volumes_from",
                        format!("refers to undefined service {target:?}"),
                    ));
                }
            }
            for l in &s.links {
                let target = l.split(':').next().unwrap_or("");
                if !self.services.contains_key(target) {
                    return Err(err(
                        "links",
                        format!("refers to undefined service {target:?}"),
                    ));
                }
            }
            for (key, refs, defined) in [
                ("secrets", &s.secrets, &self.secrets),
                ("configs", &s.configs, &self.configs),
            ] {
                for r in refs {
                    if !defined.contains_key(&r.source) {
                        return Err(err(
                            key,
                            format!(
                                "refers to undefined {} {:?}",
                                &key[..key.len() - 1],
                                r.source
                            ),
                        ));
                    }
                }
            }
            if s.container_name.is_some() && s.replicas() > 1 {
                return Err(err(
                    "container_name",
                    format!(
                        "a service with a container_name cannot be scaled to {}",
                        s.replicas()
                    ),
                ));
            }
            if let Some(r) = &s.restart {
                let ok = matches!(
                    r.as_str(),
                    "no" | "always" | "unless-stopped" | "on-failure"
                ) || r
                    .strip_prefix("on-failure:")
                    .is_some_and(|n| n.parse::<u32>().is_ok());
                if !ok {
                    return Err(err("restart", format!("invalid restart policy {r:?}")));
                }
            }
            if let Some(c) = &s.container_name {
                let valid = c
                    .chars()
                    .next()
                    .is_some_and(|ch| ch.is_ascii_alphanumeric())
                    && c.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch));
                if !valid {
                    return Err(err(
                        "container_name",
                        format!("invalid container name {c:?}"),
                    ));
                }
            }
        }
        crate::graph::order(self).map(|_| ())
    }

    /// Enables services named on the command line even if their profiles are off (as
    /// Docker Compose does), with the services they depend on.
    pub fn enable(&mut self, names: &[String]) -> Result<()> {
        let mut todo: Vec<String> = names.to_vec();
        while let Some(n) = todo.pop() {
            if self.services.contains_key(&n) {
                continue;
            }
            match self.disabled.remove(&n) {
                Some(s) => {
                    todo.extend(s.depends_on.keys().cloned());
                    self.services.insert(n, s);
                }
                None => return Err(Error::NoSuchService { name: n }),
            }
        }
        self.validate()
    }

    /// The file a project-wide message should name.
    pub fn main_file(&self) -> String {
        self.config_files
            .first()
            .map(|p| display(p))
            .unwrap_or_default()
    }

    /// The project as `config` prints it.
    pub fn to_compose_file(&self) -> ComposeFile {
        ComposeFile {
            version: None,
            name: Some(self.name.clone()),
            services: self.services.clone(),
            networks: self.networks.clone(),
            volumes: self.volumes.clone(),
            secrets: self.secrets.clone(),
            configs: self.configs.clone(),
        }
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
