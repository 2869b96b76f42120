//! `volume create|ls|inspect|rm|prune`: requests to `/volumes`, rows as docker's volume
//! formatter computes them (`DRIVER    VOLUME NAME`, names in natural order).

use super::{
    confirm, filters_json, inspect, kv_options, labels_map, labels_string, labels_value,
    list_format, sort_natural_by, Ctx,
};
use crate::client::{version_lt, ClientError};
use crate::flags::Parsed;
use crate::template::{map, render_rows, str_value, Format};
use crate::StatusError;
use gotmpl::Value;
use serde_json::{json, Value as Json};

/// The body of `POST /volumes/create` for `volume create` flags.
pub fn create_body(p: &Parsed) -> anyhow::Result<Json> {
    let name = match (p.args.first(), p.string("name")) {
        (Some(a), n) if !n.is_empty() && *a != n => anyhow::bail!(
            "conflicting options: either specify --name or provide positional arg, not both"
        ),
        (Some(a), _) => a.clone(),
        (None, n) => n,
    };
    let mut body = serde_json::Map::new();
    body.insert("Driver".into(), json!(p.string("driver")));
    let opts = kv_options(&p.list("opt"));
    if opts.as_object().is_some_and(|m| !m.is_empty()) {
        body.insert("DriverOpts".into(), opts);
    }
    body.insert("Labels".into(), labels_map(&p.list("label"), "--label")?);
    body.insert("Name".into(), json!(name));
    Ok(Json::Object(body))
}

pub async fn create(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let body = create_body(p)?;
    let client = ctx.client().await?.clone();
    let v = client
        .post_json("/volumes/create", &[], Some(&body))
        .await?;
    println!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(())
}

/// One `volume ls` row.
pub fn volume_row(v: &Json) -> Value {
    let usage = &v["UsageData"];
    let na = |present: bool, f: &dyn Fn() -> String| {
        if present {
            f()
        } else {
            "N/A".to_string()
        }
    };
    let cluster = &v["ClusterVolume"];
    let has_usage = usage.is_object();
    let has_cluster = cluster.is_object();
    map([
        ("Name", str_value(v["Name"].as_str().unwrap_or(""))),
        ("Driver", str_value(v["Driver"].as_str().unwrap_or(""))),
        ("Scope", str_value(v["Scope"].as_str().unwrap_or(""))),
        (
            "Mountpoint",
            str_value(v["Mountpoint"].as_str().unwrap_or("")),
        ),
        ("Labels", str_value(labels_string(&v["Labels"]))),
        (
            "Links",
            str_value(na(has_usage, &|| {
                usage["RefCount"].as_i64().unwrap_or(0).to_string()
            })),
        ),
        (
            "Size",
            str_value(na(has_usage, &|| {
                crate::units::human_size(usage["Size"].as_f64().unwrap_or(0.0))
            })),
        ),
        (
            "Group",
            str_value(na(has_cluster, &|| {
                cluster["Spec"]["Group"].as_str().unwrap_or("").to_string()
            })),
        ),
        (
            "Availability",
            str_value(na(has_cluster, &|| {
                cluster["Spec"]["AccessMode"]["Availability"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })),
        ),
        (
            "Status",
            str_value(na(has_cluster, &|| {
                cluster["Info"]["AccessibleTopology"]
                    .as_array()
                    .map_or("pending creation", |_| "created")
                    .to_string()
            })),
        ),
        ("__labels", labels_value(&v["Labels"])),
    ])
}

fn volume_headers() -> Value {
    map([
        ("Name", "VOLUME NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Labels", "LABELS"),
        ("Links", "LINKS"),
        ("Size", "SIZE"),
        ("Group", "GROUP"),
        ("Availability", "AVAILABILITY"),
        ("Status", "STATUS"),
    ]
    .map(|(k, v)| (k, str_value(v))))
}

/// Renders `volume ls` output for the daemon's volume list.
pub fn render_list(volumes: &[Json], user_format: &str, quiet: bool) -> anyhow::Result<String> {
    let mut vols = volumes.to_vec();
    sort_natural_by(&mut vols, "Name");
    let format = list_format(
        user_format,
        quiet,
        "table {{.Driver}}\t{{.Name}}",
        "{{.Name}}",
        if quiet {
            "name: {{.Name}}"
        } else {
            "name: {{.Name}}\ndriver: {{.Driver}}\n"
        },
    );
    let rows: Vec<Value> = vols.iter().map(volume_row).collect();
    render_rows(&Format::new(&format), &volume_headers(), &rows)
}

pub async fn ls(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let mut q = Vec::new();
    if let Some(f) = filters_json(&p.list("filter"))? {
        q.push(("filters", f));
    }
    let client = ctx.client().await?.clone();
    let v = client.get_json("/volumes", &q).await?;
    let vols = v["Volumes"].as_array().cloned().unwrap_or_default();
    print!(
        "{}",
        render_list(&vols, &p.string("format"), p.bool("quiet"))?
    );
    Ok(())
}

pub async fn rm(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let q = if p.bool("force") {
        vec![("force", "1".to_string())]
    } else {
        vec![]
    };
    let mut errs = Vec::new();
    for name in &p.args {
        match client
            .delete(&format!("/volumes/{}", super::esc(name)), &q)
            .await
        {
            Ok(_) => println!("{name}"),
            Err(e @ (ClientError::Connect { .. } | ClientError::Permission { .. })) => {
                return Err(e.into())
            }
            Err(e) => errs.push(e.to_string()),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(StatusError::exit(1, errs.join("\n")))
    }
}

const UNUSED_WARNING: &str = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?";
const ALL_WARNING: &str = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?";

/// The prune filters and the warning docker shows for `volume prune` at an API version.
pub fn prune_plan(
    filters: &[String],
    all: bool,
    api: &str,
) -> anyhow::Result<(Vec<String>, &'static str)> {
    let mut filters = filters.to_vec();
    let mut warning = UNUSED_WARNING;
    if version_lt(api, "1.42") {
        if all {
            anyhow::bail!(
                "\"--all\" requires API version 1.42, but the Docker daemon API version is {api}"
            );
        }
        warning = ALL_WARNING;
    }
    if all {
        if filters.iter().any(|f| f.starts_with("all=")) {
            anyhow::bail!("conflicting options: cannot specify both --all and --filter all=1");
        }
        filters.push("all=true".into());
        warning = ALL_WARNING;
    }
    Ok((filters, warning))
}

/// Prints a prune report: the deleted list (when any) and the reclaimed space.
pub fn print_prune_report(title: &str, deleted: &[String], space: Option<f64>) {
    if !deleted.is_empty() {
        let mut out = format!("{title}:\n");
        for d in deleted {
            out.push_str(d);
            out.push('\n');
        }
        println!("{out}");
    }
    if let Some(space) = space {
        println!("Total reclaimed space: {}", crate::units::human_size(space));
    }
}

pub async fn prune(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let client = ctx.client().await?.clone();
    let (filters, warning) = prune_plan(&p.list("filter"), p.bool("all"), client.version())?;
    let filters = filters_json(&filters)?;
    if !p.bool("force") && !confirm(warning) {
        return Ok(());
    }
    let q: Vec<(&str, String)> = filters.map(|f| vec![("filters", f)]).unwrap_or_default();
    let v = client.post_json("/volumes/prune", &q, None).await?;
    let deleted: Vec<String> = v["VolumesDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    print_prune_report(
        "Deleted Volumes",
        &deleted,
        Some(v["SpaceReclaimed"].as_f64().unwrap_or(0.0)),
    );
    Ok(())
}

pub async fn inspect_cmd(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    inspect::inspect_typed(
        ctx,
        &p.args,
        &p.string("format"),
        inspect::Kind::Volume,
        false,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str], flags: &[(&'static str, &str)]) -> Parsed {
        let mut p = Parsed::default();
        p.args = args.iter().map(|s| s.to_string()).collect();
        p.set("driver", "local");
        for (k, v) in flags {
            p.set(k, v);
        }
        p
    }

    #[test]
    fn create_sends_driver_labels_and_name_and_omits_empty_options() {
        let b = create_body(&parsed(&["v1"], &[("label", "a=b")])).unwrap();
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"Driver":"local","Labels":{"a":"b"},"Name":"v1"}"#
        );
        let b = create_body(&parsed(&[], &[("opt", "type=tmpfs"), ("opt", "o")])).unwrap();
        assert_eq!(b["DriverOpts"], json!({"type": "tmpfs", "o": ""}));
        assert_eq!(b["Name"], "");
    }

    #[test]
    fn create_refuses_a_name_flag_that_differs_from_the_argument() {
        let e = create_body(&parsed(&["a"], &[("name", "b")])).unwrap_err();
        assert!(e.to_string().starts_with("conflicting options"));
        assert!(create_body(&parsed(&["a"], &[("name", "a")])).is_ok());
    }

    #[test]
    fn ls_prints_a_driver_and_name_table_in_natural_order() {
        let vols = vec![
            json!({"Name": "v10", "Driver": "local"}),
            json!({"Name": "v9", "Driver": "local"}),
        ];
        assert_eq!(
            render_list(&vols, "", false).unwrap(),
            "DRIVER    VOLUME NAME\nlocal     v9\nlocal     v10\n"
        );
        assert_eq!(render_list(&vols, "", true).unwrap(), "v9\nv10\n");
    }

    #[test]
    fn ls_json_rows_carry_docker_field_names() {
        let vols = vec![json!({"Name": "v1", "Driver": "local", "Scope": "local",
            "Mountpoint": "/m", "Labels": {"b": "2", "a": "1"}})];
        assert_eq!(
            render_list(&vols, "json", false).unwrap(),
            "{\"Availability\":\"N/A\",\"Driver\":\"local\",\"Group\":\"N/A\",\"Labels\":\"a=1,b=2\",\"Links\":\"N/A\",\"Mountpoint\":\"/m\",\"Name\":\"v1\",\"Scope\":\"local\",\"Size\":\"N/A\",\"Status\":\"N/A\"}\n"
        );
    }

    #[test]
    fn prune_warns_about_anonymous_volumes_on_new_daemons_only() {
        let (f, w) = prune_plan(&[], false, "1.50").unwrap();
        assert!(f.is_empty());
        assert!(w.contains("anonymous local volumes"));
        let (f, w) = prune_plan(&[], true, "1.50").unwrap();
        assert_eq!(f, vec!["all=true".to_string()]);
        assert!(w.contains("all local volumes"));
        assert!(prune_plan(&[], false, "1.41")
            .unwrap()
            .1
            .contains("all local"));
        assert!(prune_plan(&[], true, "1.41").is_err());
        assert!(prune_plan(&["all=1".into()], true, "1.50").is_err());
    }
}
