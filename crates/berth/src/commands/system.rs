//! `version` and `info`.

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
