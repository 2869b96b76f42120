//! Read-only commands: `ps`, `ls`, `images`, `top`, `port`, `config`, `version` and
//! `events`, in Docker Compose v2's table layouts.

use super::{ctr_path, Compose, Ctr, OneOff};
use crate::client::Client;
use crate::commands::esc;
use crate::commands::list::container_row;
use crate::flags::Parsed;
use crate::template::{map, render_rows, str_value, Format};
use berth_compose::names;
use gotmpl::Value;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

/// A container row: `ps`'s fields plus Compose's `Name`, `Service` and `Project`.
fn ps_row(x: &Ctr, trunc: bool) -> Value {
    let base = container_row(&x.raw, trunc);
    let mut m: BTreeMap<Arc<str>, Value> = match base {
        Value::Map(m) => (*m).clone(),
        _ => BTreeMap::new(),
    };
    m.remove("__labels");
    m.insert("Name".into(), str_value(x.name.as_str()));
    m.insert("Service".into(), str_value(x.service.as_str()));
    m.insert("Project".into(), str_value(x.label(names::PROJECT)));
    let exit = x.raw["Status"]
        .as_str()
        .and_then(|s| s.strip_prefix("Exited ("))
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    m.insert("ExitCode".into(), Value::Int(exit));
    let health = x.raw["Status"]
        .as_str()
        .and_then(|s| {
            s.rsplit_once('(')
                .map(|(_, h)| h.trim_end_matches(')').to_string())
        })
        .filter(|h| matches!(h.as_str(), "healthy" | "unhealthy" | "health: starting"))
        .unwrap_or_default();
    m.insert("Health".into(), str_value(health));
    Value::Map(Arc::new(m))
}

fn ps_headers() -> Value {
    map([
        ("ID", "CONTAINER ID"),
        ("Name", "NAME"),
        ("Names", "NAMES"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("Service", "SERVICE"),
        ("Project", "PROJECT"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("State", "STATE"),
        ("Health", "HEALTH"),
        ("ExitCode", "EXIT CODE"),
        ("Ports", "PORTS"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("Networks", "NETWORKS"),
        ("Size", "SIZE"),
    ]
    .map(|(k, v)| (k, str_value(v))))
}

pub async fn ps(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    c.check_services(&p.args)?;
    let all = p.bool("all");
    let mut list = c
        .containers(
            all,
            if all {
                OneOff::Include
            } else {
                OneOff::Exclude
            },
        )
        .await?;
    list.retain(|x| p.args.is_empty() || p.args.contains(&x.service));
    if !p.bool("orphans") && !c.project.config_files.is_empty() {
        list.retain(|x| {
            c.project.services.contains_key(&x.service)
                || c.project.disabled.contains_key(&x.service)
        });
    }
    let mut statuses = p.list("status");
    for f in p.list("filter") {
        match f.split_once('=') {
            Some(("status", v)) => statuses.push(v.to_string()),
            _ => anyhow::bail!("invalid filter {f:?}: only status=... is supported"),
        }
    }
    if !statuses.is_empty() {
        list.retain(|x| statuses.contains(&x.state));
    }
    if p.bool("services") {
        let mut seen = Vec::new();
        for x in &list {
            if !seen.contains(&x.service) {
                seen.push(x.service.clone());
            }
        }
        for s in seen {
            println!("{s}");
        }
        return Ok(());
    }
    if p.bool("quiet") {
        for x in &list {
            println!("{}", x.id);
        }
        return Ok(());
    }
    let trunc = !p.bool("no-trunc");
    let format = match p.string("format").as_str() {
        "" | "table" => "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}".to_string(),
        f => f.to_string(),
    };
    let rows: Vec<Value> = list.iter().map(|x| ps_row(x, trunc)).collect();
    print!(
        "{}",
        render_rows(&Format::new(&format), &ps_headers(), &rows)?
    );
    Ok(())
}

/// `ls`: projects by their containers' labels.
pub async fn ls(client: &Client, p: &Parsed) -> anyhow::Result<()> {
    let filters = json!({"label": [names::PROJECT]}).to_string();
    let mut q = vec![("filters", filters)];
    if p.bool("all") {
        q.push(("all", "1".into()));
    }
    let list = client.get_json("/containers/json", &q).await?;
    let mut projects: BTreeMap<String, (BTreeMap<String, usize>, String)> = BTreeMap::new();
    for c in list.as_array().into_iter().flatten() {
        let name = c["Labels"][names::PROJECT]
            .as_str()
            .unwrap_or("")
            .to_string();
        let entry = projects.entry(name).or_default();
        *entry
            .0
            .entry(c["State"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
        if entry.1.is_empty() {
            entry.1 = c["Labels"][names::CONFIG_FILES]
                .as_str()
                .unwrap_or("")
                .to_string();
        }
    }
    for f in p.list("filter") {
        match f.split_once('=') {
            Some(("name", n)) => projects.retain(|k, _| k.contains(n)),
            _ => anyhow::bail!("invalid filter {f:?}: only name=... is supported"),
        }
    }
    if p.bool("quiet") {
        for k in projects.keys() {
            println!("{k}");
        }
        return Ok(());
    }
    let rows: Vec<(String, String, String)> = projects
        .into_iter()
        .map(|(name, (states, files))| {
            let status: Vec<String> = states.iter().map(|(s, n)| format!("{s}({n})")).collect();
            (name, status.join(", "), files)
        })
        .collect();
    if p.string("format") == "json" {
        let v: Vec<Json> = rows
            .iter()
            .map(|(n, s, f)| json!({"Name": n, "Status": s, "ConfigFiles": f}))
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    let mut tw = crate::tabwriter::TabWriter::docker();
    tw.write("NAME\tSTATUS\tCONFIG FILES\n");
    for (n, s, f) in rows {
        tw.write(&format!("{n}\t{s}\t{f}\n"));
    }
    print!("{}", tw.finish());
    Ok(())
}

pub async fn images(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    let list = c.service_containers(&p.args, true).await?;
    let mut rows = Vec::new();
    let mut cache: BTreeMap<String, Json> = BTreeMap::new();
    for x in &list {
        let image_id = x.raw["ImageID"].as_str().unwrap_or("").to_string();
        if !cache.contains_key(&image_id) {
            let info = c
                .client
                .get_json(&format!("/images/{}/json", esc(&image_id)), &[])
                .await
                .unwrap_or(Json::Null);
            cache.insert(image_id.clone(), info);
        }
        let info = &cache[&image_id];
        let reference = x.raw["Image"].as_str().unwrap_or("").to_string();
        let tagged = info["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .find(|t| t.starts_with(&reference) || reference.starts_with("sha256:"))
            .or_else(|| info["RepoTags"][0].as_str())
            .unwrap_or("<none>:<none>")
            .to_string();
        let (repo, tag) = tagged.rsplit_once(':').unwrap_or((&tagged, "<none>"));
        let size = info["Size"].as_f64().unwrap_or(0.0);
        rows.push((
            x.name.clone(),
            repo.to_string(),
            tag.to_string(),
            image_id,
            size,
        ));
    }
    if p.bool("quiet") {
        let mut seen = Vec::new();
        for r in &rows {
            if !seen.contains(&r.3) {
                println!("{}", r.3);
                seen.push(r.3.clone());
            }
        }
        return Ok(());
    }
    if p.string("format") == "json" {
        let v: Vec<Json> = rows
            .iter()
            .map(|r| json!({"ContainerName": r.0, "Repository": r.1, "Tag": r.2, "ID": r.3, "Size": r.4}))
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    let mut tw = crate::tabwriter::TabWriter::docker();
    tw.write("CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE\n");
    for (name, repo, tag, id, size) in rows {
        let short = id
            .strip_prefix("sha256:")
            .unwrap_or(&id)
            .chars()
            .take(12)
            .collect::<String>();
        tw.write(&format!(
            "{name}\t{repo}\t{tag}\t{short}\t{}\n",
            crate::units::human_size_precision(size, 3)
        ));
    }
    print!("{}", tw.finish());
    Ok(())
}

pub async fn top(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    let list: Vec<Ctr> = c
        .service_containers(&p.args, false)
        .await?
        .into_iter()
        .filter(|x| x.state == "running")
        .collect();
    let mut out = String::new();
    for x in &list {
        let v = c.client.get_json(&ctr_path(&x.id, "top"), &[]).await?;
        out.push_str(&format!("{}\n", x.name));
        out.push_str(&crate::commands::container::top_table(&v, 4));
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

pub async fn port(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    if p.args.len() != 2 {
        anyhow::bail!("\"berth compose port\" requires 2 arguments: SERVICE PRIVATE_PORT");
    }
    let (svc, private) = (&p.args[0], &p.args[1]);
    let index: u64 = p.string("index").parse().unwrap_or(0);
    let list = c
        .service_containers(std::slice::from_ref(svc), false)
        .await?;
    let x = list
        .iter()
        .find(|x| index == 0 || x.number == index)
        .ok_or_else(|| anyhow::anyhow!("service {svc:?} is not running"))?;
    let info = c.client.get_json(&ctr_path(&x.id, "json"), &[]).await?;
    let key = format!("{private}/{}", p.string("protocol"));
    let binding = info["NetworkSettings"]["Ports"][&key]
        .as_array()
        .and_then(|b| b.first().cloned())
        .ok_or_else(|| anyhow::anyhow!("no port {key} for container {}", x.name))?;
    let ip = binding["HostIp"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("0.0.0.0");
    println!("{ip}:{}", binding["HostPort"].as_str().unwrap_or(""));
    Ok(())
}

/// `config`: the resolved project, or parts of it.
pub fn config(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    let project = &c.project;
    let mut lines: Option<Vec<String>> = None;
    if p.bool("services") {
        lines = Some(project.services.keys().cloned().collect());
    } else if p.bool("volumes") {
        lines = Some(project.volumes.keys().cloned().collect());
    } else if p.bool("networks") {
        lines = Some(project.networks.keys().cloned().collect());
    } else if p.bool("profiles") {
        let mut all: Vec<String> = project
            .services
            .values()
            .chain(project.disabled.values())
            .flat_map(|s| s.profiles.clone())
            .collect();
        all.sort();
        all.dedup();
        lines = Some(all);
    } else if p.bool("images") {
        lines = Some(
            project
                .services
                .iter()
                .map(|(n, s)| names::image_name(&project.name, n, s))
                .collect(),
        );
    } else if !p.string("hash").is_empty() {
        let want = p.string("hash");
        lines = Some(
            project
                .services
                .iter()
                .filter(|(n, _)| want == "*" || want.split(',').any(|w| w == n.as_str()))
                .map(|(n, s)| format!("{n} {}", names::config_hash(s)))
                .collect(),
        );
    }
    if p.bool("quiet") {
        return Ok(());
    }
    let text = match lines {
        Some(l) => l.iter().map(|x| format!("{x}\n")).collect::<String>(),
        None => {
            let mut file = project.to_compose_file();
            if !p.args.is_empty() {
                file.services.retain(|n, _| p.args.contains(n));
            }
            match p.string("format").as_str() {
                "json" => format!("{}\n", serde_json::to_string_pretty(&file)?),
                "yaml" | "" => yaml_serde::to_string(&file)?,
                other => anyhow::bail!("unsupported format {other:?}"),
            }
        }
    };
    let output = p.string("output");
    if output.is_empty() {
        print!("{text}");
    } else {
        std::fs::write(&output, text)?;
    }
    Ok(())
}

pub fn version(p: &Parsed) -> anyhow::Result<()> {
    let v = env!("CARGO_PKG_VERSION");
    if p.bool("short") {
        println!("{v}");
    } else if p.string("format") == "json" {
        println!("{}", json!({"version": v}));
    } else {
        println!("berth compose version {v}");
    }
    Ok(())
}

/// One event in Compose's line format.
fn event_line(e: &Json) -> String {
    let nanos = e["timeNano"].as_i64().unwrap_or(0);
    let t = chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string()
        })
        .unwrap_or_default();
    let mut attrs: Vec<String> = e["Actor"]["Attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() == "image" || k.as_str() == "name")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    attrs.sort();
    format!(
        "{t} container {} {} ({})",
        e["Action"].as_str().unwrap_or(""),
        e["Actor"]["ID"].as_str().unwrap_or(""),
        attrs.join(", ")
    )
}

pub async fn events(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    c.check_services(&p.args)?;
    let filters = json!({"label": [names::project_filter(&c.project.name)], "type": ["container"]})
        .to_string();
    let res = c
        .client
        .send(
            hyper::Method::GET,
            "/events",
            &[("filters", filters)],
            crate::client::empty_body(),
            &[],
        )
        .await?;
    let mut body = res.into_body();
    let mut out = std::io::stdout();
    crate::client::for_each_line(&mut body, |line| {
        let Ok(e) = serde_json::from_slice::<Json>(line) else {
            return Ok(());
        };
        let service = e["Actor"]["Attributes"][names::SERVICE]
            .as_str()
            .unwrap_or("")
            .to_string();
        if !p.args.is_empty() && !p.args.contains(&service) {
        return Ok(());
        }
        if p.bool("json") {
            let j = json!({
                "time": e["timeNano"].as_i64().map(|n| chrono::DateTime::from_timestamp(n / 1_000_000_000, (n % 1_000_000_000) as u32).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)).unwrap_or_default()),
                "type": "container",
                "action": e["Action"],
                "id": e["Actor"]["ID"],
                "service": service,
                "attributes": e["Actor"]["Attributes"],
            });
            writeln!(out, "{j}")?;
        } else {
            writeln!(out, "{}", event_line(&e))?;
        }
        out.flush()?;
        Ok(())
    })
    .await?;
    Ok(())
}
