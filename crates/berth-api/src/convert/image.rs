//! Images on the wire: `images` rows, inspect and history.

use super::time::rfc3339;
use berth_core::image::{Image, RunConfig};
use berth_core::reference::Reference;
use berth_engine::images::HistoryRow;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn familiar(refs: &std::collections::BTreeSet<String>) -> Vec<String> {
    refs.iter()
        .map(|r| {
            Reference::parse(r)
                .map(|x| x.familiar())
                .unwrap_or_else(|_| r.clone())
        })
        .collect()
}

fn keys_map(m: &Option<BTreeMap<String, berth_core::image::Empty>>) -> Value {
    match m {
        Some(m) if !m.is_empty() => {
            Value::Object(m.keys().map(|k| (k.clone(), json!({}))).collect())
        }
        _ => Value::Null,
    }
}

/// The `Config` of an image, in the shape Docker prints it.
pub fn run_config_out(c: &RunConfig) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("Hostname".into(), json!(c.hostname));
    m.insert("Domainname".into(), json!(c.domainname));
    m.insert("User".into(), json!(c.user));
    m.insert("AttachStdin".into(), json!(c.attach_stdin));
    m.insert("AttachStdout".into(), json!(c.attach_stdout));
    m.insert("AttachStderr".into(), json!(c.attach_stderr));
    if c.exposed_ports.as_ref().is_some_and(|p| !p.is_empty()) {
        m.insert("ExposedPorts".into(), keys_map(&c.exposed_ports));
    }
    m.insert("Tty".into(), json!(c.tty));
    m.insert("OpenStdin".into(), json!(c.open_stdin));
    m.insert("StdinOnce".into(), json!(c.stdin_once));
    m.insert("Env".into(), json!(c.env));
    m.insert("Cmd".into(), json!(c.cmd));
    if let Some(h) = &c.healthcheck {
        m.insert("Healthcheck".into(), json!(h));
    }
    if c.args_escaped {
        m.insert("ArgsEscaped".into(), json!(true));
    }
    m.insert("Image".into(), json!(c.image));
    m.insert("Volumes".into(), keys_map(&c.volumes));
    m.insert("WorkingDir".into(), json!(c.working_dir));
    m.insert("Entrypoint".into(), json!(c.entrypoint));
    m.insert("OnBuild".into(), json!(c.on_build));
    m.insert("Labels".into(), json!(c.labels));
    if !c.stop_signal.is_empty() {
        m.insert("StopSignal".into(), json!(c.stop_signal));
    }
    if let Some(s) = &c.shell {
        m.insert("Shell".into(), json!(s));
    }
    Value::Object(m)
}

/// `GET /images/{name}/json`.
pub fn inspect_out(img: &Image, driver: &str, graph: BTreeMap<String, String>) -> Value {
    let cfg = &img.config;
    json!({
        "Id": img.id.to_string(),
        "RepoTags": familiar(&img.repo_tags),
        "RepoDigests": familiar(&img.repo_digests),
        "Parent": cfg.parent,
        "Comment": cfg.comment,
        "Created": rfc3339(cfg.created),
        "DockerVersion": cfg.docker_version,
        "Author": cfg.author,
        "Config": run_config_out(&cfg.config),
        "Architecture": cfg.architecture,
        "Os": cfg.os,
        "Size": img.size,
        "GraphDriver": {"Data": graph, "Name": driver},
        "RootFS": {"Type": if cfg.rootfs.typ.is_empty() { "layers" } else { &cfg.rootfs.typ }, "Layers": cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "Metadata": {"LastTagTime": rfc3339(Some(img.loaded_at))},
    })
}

/// One `GET /images/json` row.
pub fn summary_out(img: &Image, containers: i64) -> Value {
    let created = img.config.created.map(|t| t.timestamp()).unwrap_or(0);
    json!({
        "Containers": containers,
        "Created": created,
        "Id": img.id.to_string(),
        "Labels": img.config.config.labels.clone().unwrap_or_default(),
        "ParentId": img.config.parent,
        "RepoDigests": familiar(&img.repo_digests),
        "RepoTags": familiar(&img.repo_tags),
        "SharedSize": -1,
        "Size": img.size,
    })
}

/// `GET /images/{name}/history`.
pub fn history_out(rows: &[HistoryRow]) -> Value {
    json!(rows
        .iter()
        .map(|r| json!({
            "Id": r.id,
            "Created": r.created.map(|t| t.timestamp()).unwrap_or(0),
            "CreatedBy": r.created_by,
            "Tags": if r.tags.is_empty() { Value::Null } else { json!(r.tags) },
            "Size": r.size,
            "Comment": r.comment,
        }))
        .collect::<Vec<_>>())
}

/// One `GET /images/search` result, in dockerd's field order.
pub fn search_result_out(r: &berth_engine::images::SearchResult) -> Value {
    json!({
        "star_count": r.star_count,
        "is_official": r.is_official,
        "name": r.name,
        "is_automated": r.is_automated,
        "description": r.description,
    })
}
