//! `ps` and `images`: rows built as docker's formatter contexts compute their fields, then
//! rendered through the template engine and the tabwriter.

use super::{filters_json, Ctx};
use crate::flags::Parsed;
use crate::template::{map, render_rows, str_value, Format};
use crate::units::human_size_precision;
use chrono::{DateTime, Local, TimeZone, Utc};
use gotmpl::Value;
use serde_json::Value as Json;

/// docker's `stringid.TruncateID`: drop an algorithm prefix, keep 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map(|x| x.1).unwrap_or(id);
    id.chars().take(12).collect()
}

/// docker's `formatter.Ellipsis` (display width aware).
pub fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let chars: Vec<char> = s.chars().collect();
    if max == 1 {
        return chars.first().map(|c| c.to_string()).unwrap_or_default();
    }
    if crate::tabwriter::display_width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in chars {
        let cw = crate::tabwriter::display_width(&c.to_string());
        if w + cw > max - 1 {
            break;
        }
        w += cw;
        out.push(c);
    }
    out.push('…');
    out
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.Time.String()` in the local zone: `2024-01-02 15:04:05 +0000 UTC`.
pub fn go_time_string(unix: i64) -> String {
    let t: DateTime<Local> = Local.timestamp_opt(unix, 0).single().unwrap_or_else(|| {
        Utc.timestamp_opt(0, 0)
            .single()
            .unwrap_or_default()
            .with_timezone(&Local)
    });
    let off = t.offset().local_minus_utc();
    let zone = if off == 0 {
        "UTC".to_string()
    } else {
        t.format("%z").to_string()
    };
    format!("{} {}", t.format("%Y-%m-%d %H:%M:%S %z"), zone)
}

pub fn since(unix: i64) -> String {
    let d =
        Utc::now().signed_duration_since(Utc.timestamp_opt(unix, 0).single().unwrap_or_default());
    format!("{} ago", berth_core::event::human_duration(d))
}

/// docker's `DisplayablePorts`: consecutive ports grouped into ranges.
pub fn displayable_ports(ports: &[Json]) -> String {
    struct P {
        ip: String,
        private: u32,
        public: u32,
        typ: String,
    }
    let mut ps: Vec<P> = ports
        .iter()
        .map(|p| P {
            ip: p["IP"].as_str().unwrap_or("").to_string(),
            private: p["PrivatePort"].as_u64().unwrap_or(0) as u32,
            public: p["PublicPort"].as_u64().unwrap_or(0) as u32,
            typ: p["Type"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    ps.sort_by(|a, b| {
        a.private
            .cmp(&b.private)
            .then(a.ip.cmp(&b.ip))
            .then(a.public.cmp(&b.public))
            .then(a.typ.cmp(&b.typ))
    });
    let join = |ip: &str, port: &str| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    let form = |key: &str, first: u32, last: u32| {
        let (ip, typ) = match key.rsplit_once('/') {
            Some((ip, t)) => (ip.to_string(), t.to_string()),
            None => (String::new(), key.to_string()),
        };
        let mut group = first.to_string();
        if first != last {
            group = format!("{group}-{last}");
        }
        if !ip.is_empty() {
            group = format!("{}->{group}", join(&ip, &group));
        }
        format!("{group}/{typ}")
    };
    let mut groups: Vec<(String, u32, u32)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in &ps {
        let mut key = p.typ.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join(&p.ip, &p.public.to_string()),
                    p.private,
                    p.typ
                ));
                continue;
            }
            key = format!("{}/{}", p.ip, p.typ);
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) if p.private == g.2 + 1 => g.2 = p.private,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                g.1 = p.private;
                g.2 = p.private;
            }
        }
    }
    for g in &groups {
        result.push(form(&g.0, g.1, g.2));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn container_image(c: &Json, trunc: bool) -> String {
    let image = c["Image"].as_str().unwrap_or("");
    if image.is_empty() {
        return "<no image>".to_string();
    }
    if trunc {
        let image_id = c["ImageID"].as_str().unwrap_or("");
        let t = truncate_id(image_id);
        if t == truncate_id(image) {
            return t;
        }
        if let Ok(r) = berth_core::reference::Reference::parse(image) {
            if r.digest().is_none() || r.tag().is_some() {
                return match r.tag() {
                    Some(tag) => format!("{}:{tag}", r.familiar_repository()),
                    None => r.familiar_repository(),
                };
            }
            return r.familiar_repository();
        }
    }
    image.to_string()
}

/// One `ps` row as template data.
pub fn container_row(c: &Json, trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
        .collect();
    let names = if trunc {
        names
            .iter()
            .find(|n| !n.contains('/'))
            .map(|n| vec![n.clone()])
            .unwrap_or(names)
    } else {
        names
    };
    let command = c["Command"].as_str().unwrap_or("");
    let command = go_quote(&if trunc {
        ellipsis(command, 20)
    } else {
        command.to_string()
    });
    let created = c["Created"].as_i64().unwrap_or(0);
    let labels_obj = c["Labels"].as_object();
    let mut labels: Vec<String> = labels_obj
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    labels.sort();
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let n = m["Name"]
                .as_str()
                .filter(|s| !s.is_empty())
                .or(m["Source"].as_str())
                .unwrap_or("");
            if trunc {
                ellipsis(n, 15)
            } else {
                n.to_string()
            }
        })
        .collect();
    let local_volumes = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Driver"].as_str() == Some("local"))
        .count();
    let networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let srw = c["SizeRw"].as_f64().unwrap_or(0.0);
    let srootfs = c["SizeRootFs"].as_f64().unwrap_or(0.0);
    let size = if srootfs > 0.0 {
        format!(
            "{} (virtual {})",
            human_size_precision(srw, 3),
            human_size_precision(srootfs, 3)
        )
    } else {
        human_size_precision(srw, 3)
    };
    let label_map = map(labels_obj
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), str_value(v.as_str().unwrap_or("")))));
    map([
        (
            "ID",
            str_value(if trunc {
                truncate_id(id)
            } else {
                id.to_string()
            }),
        ),
        ("Names", str_value(names.join(","))),
        ("Image", str_value(container_image(c, trunc))),
        ("Command", str_value(command)),
        ("CreatedAt", str_value(go_time_string(created))),
        ("RunningFor", str_value(since(created))),
        (
            "Ports",
            str_value(displayable_ports(
                c["Ports"].as_array().map(Vec::as_slice).unwrap_or(&[]),
            )),
        ),
        ("State", str_value(c["State"].as_str().unwrap_or(""))),
        ("Status", str_value(c["Status"].as_str().unwrap_or(""))),
        ("Size", str_value(size)),
        ("Labels", str_value(labels.join(","))),
        ("Mounts", str_value(mounts.join(","))),
        ("LocalVolumes", str_value(local_volumes.to_string())),
        ("Networks", str_value(networks.join(","))),
        ("Platform", Value::Nil),
        ("__labels", label_map),
    ])
}

fn container_headers() -> Value {
    map([
        ("ID", "CONTAINER ID"),
        ("Names", "NAMES"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Networks", "NETWORKS"),
        ("Platform", "PLATFORM"),
    ]
    .map(|(k, v)| (k, str_value(v))))
}

/// The `--format` docker uses for `ps` given -q, -s and a user format.
pub fn ps_format(user: &str, quiet: bool, size: bool) -> String {
    match user {
        "" | "table" if quiet => "{{.ID}}".to_string(),
        "" | "table" => {
            let mut f = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".to_string();
            if size {
                f.push_str("\t{{.Size}}");
            }
            f
        }
        _ if quiet => "{{.ID}}".to_string(),
        f => f.to_string(),
    }
}

pub async fn ps(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let n: i64 = {
        let s = p.string("last");
        s.parse().map_err(|_| crate::opts::InvalidArgument(format!("invalid argument \"{s}\" for \"-n, --last\" flag: strconv.ParseInt: parsing \"{s}\": invalid syntax")))?
    };
    let user_format = p.string("format");
    let quiet = p.bool("quiet");
    let size = p.bool("size") || (!quiet && user_format.contains(".Size"));
    let format = ps_format(&user_format, quiet, p.bool("size"));
    let mut q = Vec::new();
    let limit = if p.bool("latest") { 1 } else { n };
    if p.bool("all") || limit > 0 {
        q.push(("all", "1".to_string()));
    }
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    if size {
        q.push(("size", "1".to_string()));
    }
    if let Some(f) = filters_json(&p.list("filter"))? {
        q.push(("filters", f));
    }
    let client = ctx.client().await?.clone();
    let list = client.get_json("/containers/json", &q).await?;
    let trunc = !p.bool("no-trunc");
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| container_row(c, trunc))
        .collect();
    print!(
        "{}",
        render_rows(&Format::new(&format), &container_headers(), &rows)?
    );
    Ok(())
}

/// One `images` row.
struct ImageRow<'a> {
    img: &'a Json,
    repo: String,
    tag: String,
    digest: String,
}

fn image_rows(img: &Json) -> Vec<ImageRow<'_>> {
    let tags: Vec<&str> = img["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .filter(|t| *t != "<none>:<none>")
        .collect();
    let digests: Vec<&str> = img["RepoDigests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .filter(|t| *t != "<none>@<none>")
        .collect();
    if tags.is_empty() && digests.is_empty() {
        return vec![ImageRow {
            img,
            repo: "<none>".into(),
            tag: "<none>".into(),
            digest: "<none>".into(),
        }];
    }
    let mut repos: Vec<String> = Vec::new();
    let mut by_repo_tags: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut by_repo_digests: std::collections::HashMap<String, Vec<String>> = Default::default();
    for t in &tags {
        let (repo, tag) = match t.rfind(':') {
            Some(i) if !t[i..].contains('/') => (&t[..i], &t[i + 1..]),
            _ => (*t, ""),
        };
        if !repos.iter().any(|r| r == repo) {
            repos.push(repo.to_string());
        }
        by_repo_tags
            .entry(repo.to_string())
            .or_default()
            .push(tag.to_string());
    }
    for d in &digests {
        if let Some((repo, dg)) = d.split_once('@') {
            if !repos.iter().any(|r| r == repo) {
                repos.push(repo.to_string());
            }
            by_repo_digests
                .entry(repo.to_string())
                .or_default()
                .push(dg.to_string());
        }
    }
    let mut rows = Vec::new();
    for repo in repos {
        let ds = by_repo_digests.get(&repo).cloned().unwrap_or_default();
        let digest = ds.first().cloned().unwrap_or_else(|| "<none>".into());
        match by_repo_tags.get(&repo) {
            Some(ts) => {
                for t in ts {
                    rows.push(ImageRow {
                        img,
                        repo: repo.clone(),
                        tag: t.clone(),
                        digest: digest.clone(),
                    });
                }
            }
            None => {
                for d in if ds.is_empty() {
                    vec!["<none>".to_string()]
                } else {
                    ds
                } {
                    rows.push(ImageRow {
                        img,
                        repo: repo.clone(),
                        tag: "<none>".into(),
                        digest: d,
                    });
                }
            }
        }
    }
    rows
}

fn image_value(r: &ImageRow, trunc: bool) -> Value {
    let id = r.img["Id"].as_str().unwrap_or("");
    let created = r.img["Created"].as_i64().unwrap_or(0);
    let size = r.img["Size"].as_f64().unwrap_or(0.0);
    let containers = r.img["Containers"].as_i64().unwrap_or(-1);
    let shared = r.img["SharedSize"].as_f64().unwrap_or(-1.0);
    let na = |v: f64, s: String| if v < 0.0 { "N/A".to_string() } else { s };
    map([
        (
            "ID",
            str_value(if trunc {
                truncate_id(id)
            } else {
                id.to_string()
            }),
        ),
        ("Repository", str_value(r.repo.clone())),
        ("Tag", str_value(r.tag.clone())),
        ("Digest", str_value(r.digest.clone())),
        ("CreatedSince", str_value(since(created))),
        ("CreatedAt", str_value(go_time_string(created))),
        ("Size", str_value(human_size_precision(size, 3))),
        (
            "Containers",
            str_value(if containers < 0 {
                "N/A".to_string()
            } else {
                containers.to_string()
            }),
        ),
        ("VirtualSize", str_value(crate::units::human_size(size))),
        (
            "SharedSize",
            str_value(na(shared, crate::units::human_size(shared))),
        ),
        (
            "UniqueSize",
            str_value(na(shared, crate::units::human_size(size - shared))),
        ),
        (
            "__labels",
            map(r.img["Labels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), str_value(v.as_str().unwrap_or(""))))),
        ),
    ])
}

fn image_headers() -> Value {
    map([
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("VirtualSize", "VIRTUAL SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
    ]
    .map(|(k, v)| (k, str_value(v))))
}

pub async fn images(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let mut filters = p.list("filter");
    if let Some(r) = p.args.first() {
        filters.push(format!("reference={r}"));
    }
    let mut q = Vec::new();
    if p.bool("all") {
        q.push(("all", "1".to_string()));
    }
    if let Some(f) = filters_json(&filters)? {
        q.push(("filters", f));
    }
    let client = ctx.client().await?.clone();
    let list = client.get_json("/images/json", &q).await?;
    let user = p.string("format");
    let quiet = p.bool("quiet");
    let digests = p.bool("digests");
    let format = match user.as_str() {
        _ if quiet => "{{.ID}}".to_string(),
        "" | "table" if digests => {
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                .to_string()
        }
        "" | "table" => {
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".to_string()
        }
        f => f.to_string(),
    };
    let trunc = !p.bool("no-trunc");
    let mut rows = Vec::new();
    for img in list.as_array().into_iter().flatten() {
        for r in image_rows(img) {
            rows.push(image_value(&r, trunc));
        }
    }
    print!(
        "{}",
        render_rows(&Format::new(&format), &image_headers(), &rows)?
    );
    Ok(())
}

/// `berth history IMAGE`: one row per layer or metadata step, newest first.
pub async fn history(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let name = &p.args[0];
    let client = ctx.client().await?.clone();
    let rows = client
        .get_json(&format!("/images/{}/history", super::esc(name)), &[])
        .await?;
    let human = p.bool("human");
    let trunc = !p.bool("no-trunc");
    let user = p.string("format");
    let format = match user.as_str() {
        _ if p.bool("quiet") => "{{.ID}}".to_string(),
        "" | "table" if human => {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".to_string()
        }
        "" | "table" => {
            "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".to_string()
        }
        f => f.to_string(),
    };
    let values: Vec<Value> = rows
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| history_value(h, human, trunc))
        .collect();
    let headers = map([
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ]
    .map(|(k, v)| (k, str_value(v))));
    print!("{}", render_rows(&Format::new(&format), &headers, &values)?);
    Ok(())
}

fn history_value(h: &Json, human: bool, trunc: bool) -> Value {
    let id = h["Id"].as_str().unwrap_or("");
    let created = h["Created"].as_i64().unwrap_or(0);
    let size = h["Size"].as_i64().unwrap_or(0);
    let created_by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
    let id = if id == "<missing>" || !trunc {
        id.to_string()
    } else {
        truncate_id(id)
    };
    // Go's time.RFC3339 in the local zone, as docker's history prints it.
    let created_at = chrono::TimeZone::timestamp_opt(&chrono::Local, created, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let created_since = if human {
        since(created)
    } else {
        created_at.clone()
    };
    map([
        ("ID", str_value(id)),
        ("CreatedSince", str_value(created_since)),
        ("CreatedAt", str_value(created_at)),
        (
            "CreatedBy",
            str_value(if trunc {
                ellipsis(&created_by, 45)
            } else {
                created_by
            }),
        ),
        (
            "Size",
            str_value(if human {
                human_size_precision(size as f64, 3)
            } else {
                size.to_string()
            }),
        ),
        (
            "Comment",
            str_value(h["Comment"].as_str().unwrap_or("").to_string()),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_truncate_to_twelve_without_prefix() {
        assert_eq!(
            truncate_id("sha256:8a198f02fe3d704f5cf89209cc768c0069753f96fd1e3b60c703bfb6a843ba12"),
            "8a198f02fe3d"
        );
        assert_eq!(truncate_id("abc"), "abc");
    }

    #[test]
    fn commands_are_truncated_and_quoted_like_docker() {
        assert_eq!(
            go_quote(&ellipsis("sh -c 'echo hello world'", 20)),
            "\"sh -c 'echo hello w…\""
        );
        assert_eq!(go_quote(&ellipsis("sh", 20)), "\"sh\"");
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }

    #[test]
    fn ports_group_into_ranges() {
        let ports = vec![
            json!({"PrivatePort": 80, "Type": "tcp"}),
            json!({"PrivatePort": 81, "Type": "tcp"}),
            json!({"IP": "0.0.0.0", "PrivatePort": 443, "PublicPort": 8443, "Type": "tcp"}),
            json!({"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 53, "Type": "udp"}),
        ];
        assert_eq!(
            displayable_ports(&ports),
            "0.0.0.0:53->53/udp, 80-81/tcp, 0.0.0.0:8443->443/tcp"
        );
    }

    #[test]
    fn ps_rows_render_in_docker_table_layout() {
        let c = json!({
            "Id": "0123456789abcdef0123", "Names": ["/web"], "Image": "busybox", "ImageID": "sha256:ffff",
            "Command": "sleep 1000", "Created": Utc::now().timestamp() - 120, "Ports": [], "State": "running", "Status": "Up 2 minutes",
        });
        let out = render_rows(
            &Format::new(&ps_format("", false, false)),
            &container_headers(),
            &[container_row(&c, true)],
        )
        .unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE     COMMAND        CREATED         STATUS         PORTS     NAMES\n0123456789ab   busybox   \"sleep 1000\"   2 minutes ago   Up 2 minutes             web\n"
        );
    }

    #[test]
    fn image_rows_split_tags_and_mark_dangling_images() {
        let img = json!({"Id": "sha256:abc", "RepoTags": ["busybox:latest", "busybox:1", "localhost:5000/x:y"], "RepoDigests": []});
        let rows = image_rows(&img);
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r.repo.clone(), r.tag.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("busybox".into(), "latest".into()),
                ("busybox".into(), "1".into()),
                ("localhost:5000/x".into(), "y".into())
            ]
        );
        let dangling = json!({"Id": "sha256:abc", "RepoTags": null, "RepoDigests": null});
        assert_eq!(image_rows(&dangling)[0].tag, "<none>");
    }

    #[test]
    fn quiet_and_size_change_the_ps_format() {
        assert_eq!(ps_format("", true, false), "{{.ID}}");
        assert_eq!(ps_format("{{.Names}}", true, false), "{{.ID}}");
        assert!(ps_format("", false, true).ends_with("\t{{.Size}}"));
    }
}
