//! `version`, `info` and `system df`.

use super::Ctx;
use crate::client::Client;
use crate::flags::Parsed;
use crate::tabwriter::TabWriter;
use crate::template::{from_serde, Format, Renderer};
use serde_json::{json, Value as Json};

/// docker's `reformatDate`: RFC 3339 build times shown as ANSI C dates.
pub fn reformat_date(s: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t
            .with_timezone(&chrono::Local)
            .format("%a %b %e %H:%M:%S %Y")
            .to_string(),
        Err(_) => s.to_string(),
    }
}

fn client_section(api: &str) -> Json {
    json!({
        "Platform": {"Name": ""},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api,
        "DefaultAPIVersion": Client::client_version(),
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown"),
        "Os": std::env::consts::OS,
        "Arch": if std::env::consts::ARCH == "x86_64" { "amd64" } else if std::env::consts::ARCH == "aarch64" { "arm64" } else { std::env::consts::ARCH },
        "Context": "default",
    })
}

pub fn render_version(client: &Json, server: Option<&Json>) -> String {
    let s = |v: &Json| {
        v.as_str().map(str::to_string).unwrap_or_else(|| {
            if v.is_null() {
                String::new()
            } else {
                v.to_string()
            }
        })
    };
    let mut tw = TabWriter::new(20, 1);
    tw.write("Client:\n");
    tw.write(&format!(" Version:\t{}\n", s(&client["Version"])));
    let api = s(&client["ApiVersion"]);
    let def = s(&client["DefaultAPIVersion"]);
    let down = if api != def {
        format!(" (downgraded from {def})")
    } else {
        String::new()
    };
    tw.write(&format!(" API version:\t{api}{down}\n"));
    tw.write(&format!(" Git commit:\t{}\n", s(&client["GitCommit"])));
    tw.write(&format!(
        " OS/Arch:\t{}/{}\n",
        s(&client["Os"]),
        s(&client["Arch"])
    ));
    tw.write(&format!(" Context:\t{}", s(&client["Context"])));
    if let Some(server) = server {
        let name = s(&server["Platform"]["Name"]);
        tw.write(&format!(
            "\n\nServer:{}",
            if name.is_empty() {
                String::new()
            } else {
                format!(" {name}")
            }
        ));
        for c in server["Components"].as_array().into_iter().flatten() {
            let cname = s(&c["Name"]);
            tw.write(&format!("\n {cname}:"));
            let d = &c["Details"];
            if cname == "Engine" {
                tw.write(&format!("\n  Version:\t{}", s(&c["Version"])));
                tw.write(&format!(
                    "\n  API version:\t{} (minimum version {})",
                    s(&d["ApiVersion"]),
                    s(&d["MinAPIVersion"])
                ));
                tw.write(&format!("\n  Go version:\t{}", s(&d["GoVersion"])));
                tw.write(&format!("\n  Git commit:\t{}", s(&d["GitCommit"])));
                tw.write(&format!(
                    "\n  Built:\t{}",
                    reformat_date(&s(&d["BuildTime"]))
                ));
                tw.write(&format!("\n  OS/Arch:\t{}/{}", s(&d["Os"]), s(&d["Arch"])));
                tw.write(&format!("\n  Experimental:\t{}", s(&d["Experimental"])));
            } else {
                tw.write(&format!("\n  Version:\t{}", s(&c["Version"])));
                let mut keys: Vec<&String> = d
                    .as_object()
                    .map(|m| m.keys().collect())
                    .unwrap_or_default();
                keys.sort();
                for k in keys {
                    tw.write(&format!("\n  {k}:\t{}", s(&d[k])));
                }
            }
        }
    }
    tw.write("\n");
    tw.finish()
}

pub async fn version(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let format = p.string("format");
    let server = match ctx.client().await {
        Ok(c) => Some((c.version().to_string(), c.get_json("/version", &[]).await)),
        Err(e) => {
            let client = client_section(&Client::client_version());
            if format.is_empty() {
                print!("{}", render_version(&client, None));
                println!();
            }
            return Err(e);
        }
    };
    let (api, server) = server.expect("server is set");
    let client = client_section(&api);
    let server = server.ok();
    if !format.is_empty() {
        // docker's templates use Go field names: {{.Server.APIVersion}}.
        let alias = |mut v: Json| {
            if let Some(o) = v.as_object_mut() {
                if let Some(a) = o.get("ApiVersion").cloned() {
                    o.insert("APIVersion".to_string(), a);
                }
            }
            v
        };
        let data = json!({"Client": alias(client), "Server": server.map(alias)});
        let f = Format::new(&format);
        println!("{}", Renderer::new(&f.text)?.render(&from_serde(&data))?);
        return Ok(());
    }
    print!("{}", render_version(&client, server.as_ref()));
    Ok(())
}

pub async fn info(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let format = p.string("format");
    let client = ctx.client().await?.clone();
    let info = client.get_json("/info", &[]).await?;
    if !format.is_empty() {
        let mut data = info.clone();
        data["ClientInfo"] = json!({"Debug": ctx.debug, "Version": env!("CARGO_PKG_VERSION"), "Context": "default", "Plugins": [], "Warnings": null});
        let f = Format::new(&format);
        println!("{}", Renderer::new(&f.text)?.render(&from_serde(&data))?);
        return Ok(());
    }
    print!("{}", render_info(&info, ctx.debug));
    Ok(())
}

/// The human `info` output (the commonly read fields, in docker's order and wording).
pub fn render_info(i: &Json, debug: bool) -> String {
    let s = |v: &Json| {
        v.as_str().map(str::to_string).unwrap_or_else(|| {
            if v.is_null() {
                String::new()
            } else {
                v.to_string()
            }
        })
    };
    let mut o = String::new();
    o.push_str(&format!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: {debug}\n\n",
        env!("CARGO_PKG_VERSION")
    ));
    o.push_str("Server:\n");
    o.push_str(&format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n",
        s(&i["Containers"]),
        s(&i["ContainersRunning"]),
        s(&i["ContainersPaused"]),
        s(&i["ContainersStopped"])
    ));
    o.push_str(&format!(" Images: {}\n", s(&i["Images"])));
    o.push_str(&format!(" Server Version: {}\n", s(&i["ServerVersion"])));
    o.push_str(&format!(" Storage Driver: {}\n", s(&i["Driver"])));
    for pair in i["DriverStatus"].as_array().into_iter().flatten() {
        if let Some(a) = pair.as_array() {
            o.push_str(&format!(
                "  {}: {}\n",
                s(&a[0]),
                a.get(1).map(s).unwrap_or_default()
            ));
        }
    }
    o.push_str(&format!(" Logging Driver: {}\n", s(&i["LoggingDriver"])));
    o.push_str(&format!(" Cgroup Driver: {}\n", s(&i["CgroupDriver"])));
    o.push_str(&format!(" Cgroup Version: {}\n", s(&i["CgroupVersion"])));
    let list = |k: &str| {
        i["Plugins"][k]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect::<Vec<_>>()
            .join(" ")
    };
    o.push_str(&format!(
        " Plugins:\n  Volume: {}\n  Network: {}\n  Log: {}\n",
        list("Volume"),
        list("Network"),
        list("Log")
    ));
    let mut runtimes: Vec<&String> = i["Runtimes"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    runtimes.sort();
    o.push_str(&format!(" Swarm: {}\n", s(&i["Swarm"]["LocalNodeState"])));
    o.push_str(&format!(
        " Runtimes: {}\n",
        runtimes
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    o.push_str(&format!(" Default Runtime: {}\n", s(&i["DefaultRuntime"])));
    o.push_str(&format!(" Init Binary: {}\n", s(&i["InitBinary"])));
    o.push_str(&format!(
        " containerd version: {}\n",
        s(&i["ContainerdCommit"]["ID"])
    ));
    o.push_str(&format!(" runc version: {}\n", s(&i["RuncCommit"]["ID"])));
    o.push_str(&format!(" init version: {}\n", s(&i["InitCommit"]["ID"])));
    o.push_str(&format!(" Kernel Version: {}\n", s(&i["KernelVersion"])));
    o.push_str(&format!(
        " Operating System: {}\n",
        s(&i["OperatingSystem"])
    ));
    o.push_str(&format!(" OSType: {}\n", s(&i["OSType"])));
    o.push_str(&format!(" Architecture: {}\n", s(&i["Architecture"])));
    o.push_str(&format!(" CPUs: {}\n", s(&i["NCPU"])));
    o.push_str(&format!(
        " Total Memory: {}\n",
        bytes_size(i["MemTotal"].as_f64().unwrap_or(0.0))
    ));
    o.push_str(&format!(" Name: {}\n", s(&i["Name"])));
    o.push_str(&format!(" ID: {}\n", s(&i["ID"])));
    o.push_str(&format!(" Docker Root Dir: {}\n", s(&i["DockerRootDir"])));
    o.push_str(&format!(" Debug Mode: {}\n", s(&i["Debug"])));
    o.push_str(&format!(" Experimental: {}\n", s(&i["ExperimentalBuild"])));
    o.push_str(" Insecure Registries:\n");
    for r in i["RegistryConfig"]["InsecureRegistryCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        o.push_str(&format!("  {}\n", s(r)));
    }
    o.push_str(&format!(
        " Live Restore Enabled: {}\n",
        s(&i["LiveRestoreEnabled"])
    ));
    let warnings: Vec<String> = i["Warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    if !warnings.is_empty() {
        o.push('\n');
        for w in warnings {
            o.push_str(&w);
            o.push('\n');
        }
    }
    o
}

/// `units.BytesSize`: binary units with four significant digits (`1.944GiB`).
pub fn bytes_size(size: f64) -> String {
    const ABBRS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = size;
    let mut i = 0;
    while size >= 1024.0 && i < ABBRS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{}{}", crate::units::go_g(size, 4), ABBRS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_output_aligns_like_docker() {
        let client = json!({"Version": "0.1.0", "ApiVersion": "1.41", "DefaultAPIVersion": "1.50", "GitCommit": "abc", "Os": "linux", "Arch": "amd64", "Context": "default"});
        let out = render_version(&client, None);
        assert!(out.starts_with("Client:\n Version:           0.1.0\n API version:       1.41 (downgraded from 1.50)\n"), "{out}");
    }

    #[test]
    fn memory_is_shown_in_binary_units() {
        assert_eq!(bytes_size(2_087_000_000.0), "1.944GiB");
    }
}

/// `system df`: the summary table, or with `-v` the per-object tables.
pub mod df {
    use crate::commands::list::{container_row, since, truncate_id};
    use crate::commands::volume::volume_row;
    use crate::template::{map, render_rows, str_value, Format, Renderer};
    use crate::units::{human_size, human_size_precision};
    use gotmpl::Value;
    use serde_json::Value as Json;

    fn ratio(reclaimable: i64, total: i64) -> String {
        if total > 0 {
            format!(
                "{} ({}%)",
                human_size(reclaimable as f64),
                reclaimable * 100 / total
            )
        } else {
            human_size(reclaimable as f64)
        }
    }

    fn arr(v: &Json, k: &str) -> Vec<Json> {
        v[k].as_array().cloned().unwrap_or_default()
    }

    /// The four summary rows (docker's disk usage contexts).
    pub fn summary_rows(du: &Json) -> Vec<Value> {
        let i64_of = |v: &Json| v.as_i64().unwrap_or(0);
        let images = arr(du, "Images");
        let layers = i64_of(&du["LayersSize"]);
        let used: i64 = images
            .iter()
            .filter(|i| i64_of(&i["Containers"]) != 0)
            .filter(|i| i64_of(&i["Size"]) != -1 && i64_of(&i["SharedSize"]) != -1)
            .map(|i| i64_of(&i["Size"]) - i64_of(&i["SharedSize"]))
            .sum();
        let active = |c: &Json| {
            matches!(
                c["State"].as_str(),
                Some("running" | "paused" | "restarting")
            )
        };
        let containers = arr(du, "Containers");
        let csize: i64 = containers.iter().map(|c| i64_of(&c["SizeRw"])).sum();
        let creclaim: i64 = containers
            .iter()
            .filter(|c| !active(c))
            .map(|c| i64_of(&c["SizeRw"]))
            .sum();
        let volumes = arr(du, "Volumes");
        let vsize_of = |v: &Json| i64_of(&v["UsageData"]["Size"]);
        let vrefs = |v: &Json| i64_of(&v["UsageData"]["RefCount"]);
        let vtotal: i64 = volumes.iter().map(vsize_of).filter(|s| *s != -1).sum();
        let vreclaim: i64 = volumes
            .iter()
            .filter(|v| vsize_of(v) != -1 && vrefs(v) == 0)
            .map(vsize_of)
            .sum();
        let cache = arr(du, "BuildCache");
        let bool_of = |v: &Json, k: &str| v[k].as_bool().unwrap_or(false);
        let bsize: i64 = cache
            .iter()
            .filter(|c| !bool_of(c, "Shared"))
            .map(|c| i64_of(&c["Size"]))
            .sum();
        let in_use: i64 = cache
            .iter()
            .filter(|c| bool_of(c, "InUse") && !bool_of(c, "Shared"))
            .map(|c| i64_of(&c["Size"]))
            .sum();
        let builder = du["BuilderSize"].as_i64().unwrap_or(bsize);
        let row = |t: &str, total: usize, active: usize, size: String, rec: String| {
            map([
                ("Type", str_value(t)),
                ("TotalCount", str_value(total.to_string())),
                ("Active", str_value(active.to_string())),
                ("Size", str_value(size)),
                ("Reclaimable", str_value(rec)),
            ])
        };
        vec![
            row(
                "Images",
                images.len(),
                images
                    .iter()
                    .filter(|i| i64_of(&i["Containers"]) > 0)
                    .count(),
                human_size(layers as f64),
                ratio(layers - used, layers),
            ),
            row(
                "Containers",
                containers.len(),
                containers.iter().filter(|c| active(c)).count(),
                human_size(csize as f64),
                ratio(creclaim, csize),
            ),
            row(
                "Local Volumes",
                volumes.len(),
                volumes.iter().filter(|v| vrefs(v) > 0).count(),
                human_size(vtotal as f64),
                ratio(vreclaim, vtotal),
            ),
            row(
                "Build Cache",
                cache.len(),
                cache.iter().filter(|c| bool_of(c, "InUse")).count(),
                human_size(bsize as f64),
                human_size((builder - in_use) as f64),
            ),
        ]
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> Value {
        map(pairs.iter().map(|(k, v)| (*k, str_value(*v))))
    }

    fn image_row(i: &Json, trunc: bool) -> Value {
        let i64_of = |k: &str| i[k].as_i64().unwrap_or(0);
        let (mut repo, mut tag) = ("<none>".to_string(), "<none>".to_string());
        if let Some(t) = i["RepoTags"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(Json::as_str)
            .filter(|t| *t != "<none>:<none>")
        {
            if let Ok(r) = berth_core::reference::Reference::parse(t) {
                if let Some(tg) = r.tag() {
                    repo = r.familiar_repository();
                    tag = tg.to_string();
                }
            }
        }
        let id = i["Id"].as_str().unwrap_or("");
        let (size, shared) = (i64_of("Size"), i64_of("SharedSize"));
        map([
            ("Repository", str_value(repo)),
            ("Tag", str_value(tag)),
            (
                "ID",
                str_value(if trunc {
                    truncate_id(id)
                } else {
                    id.to_string()
                }),
            ),
            ("CreatedSince", str_value(since(i64_of("Created")))),
            ("Size", str_value(human_size_precision(size as f64, 3))),
            (
                "SharedSize",
                str_value(if shared == -1 {
                    "N/A".to_string()
                } else {
                    human_size(shared as f64)
                }),
            ),
            (
                "UniqueSize",
                str_value(if size == -1 || shared == -1 {
                    "N/A".to_string()
                } else {
                    human_size((size - shared) as f64)
                }),
            ),
            (
                "Containers",
                str_value(match i64_of("Containers") {
                    -1 => "N/A".to_string(),
                    n => n.to_string(),
                }),
            ),
        ])
    }

    fn cache_row(c: &Json, trunc: bool) -> Value {
        let id = c["ID"].as_str().unwrap_or("");
        let t = |k: &str| {
            c[k].as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|d| since(d.timestamp()))
                .unwrap_or_default()
        };
        map([
            (
                "ID",
                str_value(if trunc {
                    truncate_id(id)
                } else {
                    id.to_string()
                }),
            ),
            ("CacheType", str_value(c["Type"].as_str().unwrap_or(""))),
            (
                "Size",
                str_value(human_size_precision(c["Size"].as_f64().unwrap_or(0.0), 3)),
            ),
            ("CreatedSince", str_value(t("CreatedAt"))),
            ("LastUsedSince", str_value(t("LastUsedAt"))),
            (
                "UsageCount",
                str_value(c["UsageCount"].as_i64().unwrap_or(0).to_string()),
            ),
            (
                "Shared",
                str_value(c["Shared"].as_bool().unwrap_or(false).to_string()),
            ),
        ])
    }

    /// `system df -v` as tables.
    pub fn verbose_table(du: &Json) -> anyhow::Result<String> {
        let mut out = String::from("Images space usage:\n\n");
        let rows: Vec<Value> = arr(du, "Images")
            .iter()
            .map(|i| image_row(i, true))
            .collect();
        out.push_str(&render_rows(
            &Format::new("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"),
            &headers(&[("Repository", "REPOSITORY"), ("Tag", "TAG"), ("ID", "IMAGE ID"), ("CreatedSince", "CREATED"), ("Size", "SIZE"), ("SharedSize", "SHARED SIZE"), ("UniqueSize", "UNIQUE SIZE"), ("Containers", "CONTAINERS")]),
            &rows,
        )?);
        out.push_str("\nContainers space usage:\n\n");
        let rows: Vec<Value> = arr(du, "Containers")
            .into_iter()
            .map(|mut c| {
                c["SizeRootFs"] = Json::from(0);
                container_row(&c, true)
            })
            .collect();
        out.push_str(&render_rows(
            &Format::new("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}"),
            &headers(&[("ID", "CONTAINER ID"), ("Image", "IMAGE"), ("Command", "COMMAND"), ("LocalVolumes", "LOCAL VOLUMES"), ("Size", "SIZE"), ("RunningFor", "CREATED"), ("Status", "STATUS"), ("Names", "NAMES")]),
            &rows,
        )?);
        out.push_str("\nLocal Volumes space usage:\n\n");
        let rows: Vec<Value> = arr(du, "Volumes").iter().map(volume_row).collect();
        out.push_str(&render_rows(
            &Format::new("table {{.Name}}\t{{.Links}}\t{{.Size}}"),
            &headers(&[
                ("Name", "VOLUME NAME"),
                ("Links", "LINKS"),
                ("Size", "SIZE"),
            ]),
            &rows,
        )?);
        let builder = du["BuilderSize"].as_f64().unwrap_or(0.0);
        out.push_str(&format!("\nBuild cache usage: {}\n\n", human_size(builder)));
        let rows: Vec<Value> = arr(du, "BuildCache")
            .iter()
            .map(|c| cache_row(c, true))
            .collect();
        out.push_str(&render_rows(
            &Format::new("table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}"),
            &headers(&[("ID", "CACHE ID"), ("CacheType", "CACHE TYPE"), ("Size", "SIZE"), ("CreatedSince", "CREATED"), ("LastUsedSince", "LAST USED"), ("UsageCount", "USAGE"), ("Shared", "SHARED")]),
            &rows,
        )?);
        Ok(out)
    }

    /// `system df -v --format T`: the template runs once over all four lists.
    pub fn verbose_template(du: &Json, format: &str) -> anyhow::Result<String> {
        let trunc = format.starts_with("table");
        let list = |rows: Vec<Value>| Value::List(rows.into());
        let data = map([
            (
                "Images",
                list(
                    arr(du, "Images")
                        .iter()
                        .map(|i| image_row(i, trunc))
                        .collect(),
                ),
            ),
            (
                "Containers",
                list(
                    arr(du, "Containers")
                        .iter()
                        .map(|c| container_row(c, trunc))
                        .collect(),
                ),
            ),
            (
                "Volumes",
                list(arr(du, "Volumes").iter().map(volume_row).collect()),
            ),
            (
                "BuildCache",
                list(
                    arr(du, "BuildCache")
                        .iter()
                        .map(|c| cache_row(c, trunc))
                        .collect(),
                ),
            ),
        ]);
        let f = Format::new(format);
        Renderer::new(&f.text)?.render(&data)
    }

    pub fn summary(du: &Json, format: &str) -> anyhow::Result<String> {
        let format = match format {
            "" | "table" => {
                "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
            }
            f => f,
        };
        render_rows(
            &Format::new(format),
            &headers(&[
                ("Type", "TYPE"),
                ("TotalCount", "TOTAL"),
                ("Active", "ACTIVE"),
                ("Size", "SIZE"),
                ("Reclaimable", "RECLAIMABLE"),
            ]),
            &summary_rows(du),
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use serde_json::json;

        #[test]
        fn summary_matches_docker_for_a_small_daemon() {
            let du = json!({
                "LayersSize": 1_982_000,
                "Images": [{"Id": "sha256:c7b8f3bc8f3c", "Size": 1_982_000, "SharedSize": 0, "Containers": 2, "RepoTags": ["busybox:latest"], "Created": 0}],
                "Containers": [{"State": "exited", "SizeRw": 2}, {"State": "created", "SizeRw": 0}],
                "Volumes": [],
                "BuildCache": []
            });
            assert_eq!(
                summary(&du, "").unwrap(),
                "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
                 Images          1         1         1.982MB   0B (0%)\n\
                 Containers      2         0         2B        2B (100%)\n\
                 Local Volumes   0         0         0B        0B\n\
                 Build Cache     0         0         0B        0B\n"
            );
            assert_eq!(
                summary(&du, "json").unwrap().lines().next().unwrap(),
                r#"{"Active":"1","Reclaimable":"0B (0%)","Size":"1.982MB","TotalCount":"1","Type":"Images"}"#
            );
        }
    }
}

pub async fn df(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let du = client.get_json("/system/df", &[]).await?;
    let format = p.string("format");
    let out = if p.bool("verbose") {
        if format.is_empty() || format == "table" {
            df::verbose_table(&du)?
        } else {
            df::verbose_template(&du, &format)?
        }
    } else {
        df::summary(&du, &format)?
    };
    print!("{out}");
    Ok(())
}
