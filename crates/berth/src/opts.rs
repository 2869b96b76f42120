//! `run`/`create` flags and how they become a create request, as docker's `opts.go` maps
//! them: `-p` to `ExposedPorts` + `PortBindings`, `-v` to `Binds` or `Volumes`, `--restart
//! on-failure:3`, `-e VAR` from the client environment, `--env-file`, `--ulimit`, sizes.
//!
//! [`container_flags`] lists the flags; [`build_create`] turns parsed flags into the JSON
//! body of `POST /containers/create` (Config fields plus `HostConfig` and
//! `NetworkingConfig`). Validation errors carry docker's wording.

use crate::flags::{b, hidden, l, v, vd, Flag, Parsed};
use crate::units;
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Flags shared by `run` and `create` (docker's `addFlags`).
pub fn container_flags() -> Vec<Flag> {
    vec![
        l("attach", Some('a'), "Attach to STDIN, STDOUT or STDERR"),
        l("device", None, "Add a host device to the container"),
        l("device-cgroup-rule", None, "Add a rule to the cgroup allowed devices list"),
        l("env", Some('e'), "Set environment variables"),
        l("env-file", None, "Read in a file of environment variables"),
        v("entrypoint", None, "string", "Overwrite the default ENTRYPOINT of the image"),
        l("group-add", None, "Add additional groups to join"),
        v("hostname", Some('h'), "string", "Container host name"),
        v("domainname", None, "string", "Container NIS domain name"),
        b("interactive", Some('i'), "Keep STDIN open even if not attached"),
        l("label", Some('l'), "Set meta data on a container"),
        l("label-file", None, "Read in a line delimited file of labels"),
        b("read-only", None, "Mount the container's root filesystem as read only"),
        vd("restart", None, "string", "no", "Restart policy to apply when a container exits"),
        v("stop-signal", None, "string", "Signal to stop the container"),
        vd("stop-timeout", None, "int", "0", "Timeout (in seconds) to stop a container"),
        l("sysctl", None, "Sysctl options"),
        b("tty", Some('t'), "Allocate a pseudo-TTY"),
        l("ulimit", None, "Ulimit options"),
        v("user", Some('u'), "string", "Username or UID (format: <name|uid>[:<group|gid>])"),
        v("workdir", Some('w'), "string", "Working directory inside the container"),
        b("rm", None, "Automatically remove the container and its associated anonymous volumes when it exits"),
        l("cap-add", None, "Add Linux capabilities"),
        l("cap-drop", None, "Drop Linux capabilities"),
        b("privileged", None, "Give extended privileges to this container"),
        l("security-opt", None, "Security Options"),
        v("userns", None, "string", "User namespace to use"),
        v("cgroupns", None, "string", "Cgroup namespace to use (host|private)"),
        l("add-host", None, "Add a custom host-to-IP mapping (host:ip)"),
        l("dns", None, "Set custom DNS servers"),
        hidden(l("dns-opt", None, "Set DNS options")),
        l("dns-option", None, "Set DNS options"),
        l("dns-search", None, "Set custom DNS search domains"),
        l("expose", None, "Expose a port or a range of ports"),
        v("ip", None, "string", "IPv4 address (e.g., 172.30.100.104)"),
        v("ip6", None, "string", "IPv6 address (e.g., 2001:db8::33)"),
        l("link", None, "Add link to another container"),
        l("link-local-ip", None, "Container IPv4/IPv6 link-local addresses"),
        v("mac-address", None, "string", "Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
        l("publish", Some('p'), "Publish a container's port(s) to the host"),
        b("publish-all", Some('P'), "Publish all exposed ports to random ports"),
        hidden(l("net", None, "Connect a container to a network")),
        Flag { typ: "network", ..l("network", None, "Connect a container to a network") },
        hidden(l("net-alias", None, "Add network-scoped alias for the container")),
        l("network-alias", None, "Add network-scoped alias for the container"),
        v("log-driver", None, "string", "Logging driver for the container"),
        v("volume-driver", None, "string", "Optional volume driver for the container"),
        l("log-opt", None, "Log driver options"),
        l("storage-opt", None, "Storage driver options for the container"),
        l("tmpfs", None, "Mount a tmpfs directory"),
        l("blkio-weight-device", None, "Block IO weight (relative device weight)"),
        l("device-read-bps", None, "Limit read rate (bytes per second) from a device"),
        l("device-read-iops", None, "Limit read rate (IO per second) from a device"),
        l("device-write-bps", None, "Limit write rate (bytes per second) to a device"),
        l("device-write-iops", None, "Limit write rate (IO per second) to a device"),
        l("volumes-from", None, "Mount volumes from the specified container(s)"),
        l("volume", Some('v'), "Bind mount a volume"),
        Flag { typ: "mount", ..l("mount", None, "Attach a filesystem mount to the container") },
        v("health-cmd", None, "string", "Command to run to check health"),
        v("health-interval", None, "duration", "Time between running the check (ms|s|m|h) (default 0s)"),
        vd("health-retries", None, "int", "0", "Consecutive failures needed to report unhealthy"),
        v("health-timeout", None, "duration", "Maximum time to allow one check to run (ms|s|m|h) (default 0s)"),
        v("health-start-period", None, "duration", "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)"),
        v("health-start-interval", None, "duration", "Time between running the check during the start period (ms|s|m|h) (default 0s)"),
        b("no-healthcheck", None, "Disable any container-specified HEALTHCHECK"),
        vd("blkio-weight", None, "uint16", "0", "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)"),
        v("cidfile", None, "string", "Write the container ID to the file"),
        v("cpuset-cpus", None, "string", "CPUs in which to allow execution (0-3, 0,1)"),
        v("cpuset-mems", None, "string", "MEMs in which to allow execution (0-3, 0,1)"),
        vd("cpu-period", None, "int", "0", "Limit CPU CFS (Completely Fair Scheduler) period"),
        vd("cpu-quota", None, "int", "0", "Limit CPU CFS (Completely Fair Scheduler) quota"),
        vd("cpu-rt-period", None, "int", "0", "Limit CPU real-time period in microseconds"),
        vd("cpu-rt-runtime", None, "int", "0", "Limit CPU real-time runtime in microseconds"),
        vd("cpu-shares", Some('c'), "int", "0", "CPU shares (relative weight)"),
        v("cpus", None, "decimal", "Number of CPUs"),
        v("kernel-memory", None, "bytes", "Kernel memory limit"),
        v("memory", Some('m'), "bytes", "Memory limit"),
        v("memory-reservation", None, "bytes", "Memory soft limit"),
        v("memory-swap", None, "bytes", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap"),
        vd("memory-swappiness", None, "int", "-1", "Tune container memory swappiness (0 to 100)"),
        b("oom-kill-disable", None, "Disable OOM Killer"),
        vd("oom-score-adj", None, "int", "0", "Tune host's OOM preferences (-1000 to 1000)"),
        vd("pids-limit", None, "int", "0", "Tune container pids limit (set -1 for unlimited)"),
        v("cgroup-parent", None, "string", "Optional parent cgroup for the container"),
        v("ipc", None, "string", "IPC mode to use"),
        v("isolation", None, "string", "Container isolation technology"),
        v("pid", None, "string", "PID namespace to use"),
        v("shm-size", None, "bytes", "Size of /dev/shm"),
        v("uts", None, "string", "UTS namespace to use"),
        v("runtime", None, "string", "Runtime to use for this container"),
        b("init", None, "Run an init inside the container that forwards signals and reaps processes"),
        l("annotation", None, "Add an annotation to the container (passed through to the OCI runtime)"),
        v("platform", None, "string", "Set platform if server is multi-platform capable"),
        vd("pull", None, "string", "missing", "Pull image before creating (\"always\", \"missing\", \"never\")"),
        b("quiet", Some('q'), "Suppress the pull output"),
        v("name", None, "string", "Assign a name to the container"),
        b("disable-content-trust", None, "Skip image verification"),
    ]
}

/// A flag value that failed its own validation; printed like pflag's `invalid argument`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidArgument(pub String);

fn invalid(flag: &str, val: &str, reason: impl std::fmt::Display) -> anyhow::Error {
    let spec = crate::flags::Spec {
        usage: "",
        about: "",
        aliases: "",
        flags: container_flags(),
        stop_at_positional: false,
        no_short_help: true,
    };
    InvalidArgument(crate::flags::invalid_argument(
        &spec,
        flag,
        val,
        &reason.to_string(),
    ))
    .into()
}

fn int_flag(p: &Parsed, name: &str) -> anyhow::Result<i64> {
    let s = p.string(name);
    s.parse::<i64>().map_err(|_| {
        invalid(
            name,
            &s,
            format!("strconv.ParseInt: parsing \"{s}\": invalid syntax"),
        )
    })
}

fn size_flag(p: &Parsed, name: &str) -> anyhow::Result<i64> {
    if !p.changed(name) {
        return Ok(0);
    }
    let s = p.string(name);
    let f = if name == "memory-swap" {
        units::mem_swap(&s)
    } else {
        units::ram_in_bytes(&s)
    };
    f.map_err(|e| invalid(name, &s, e))
}

fn duration_flag(p: &Parsed, name: &str) -> anyhow::Result<i64> {
    if !p.changed(name) {
        return Ok(0);
    }
    let s = p.string(name);
    units::parse_go_duration(&s).map_err(|e| invalid(name, &s, e))
}

/// `-e` value: `VAR` alone takes its value from the client's environment when it has one.
pub fn validate_env(val: &str) -> anyhow::Result<String> {
    let (k, has_value) = match val.split_once('=') {
        Some((k, _)) => (k, true),
        None => (val, false),
    };
    if k.is_empty() {
        anyhow::bail!("invalid environment variable: {val}");
    }
    if has_value {
        return Ok(val.to_string());
    }
    Ok(match std::env::var(k) {
        Ok(v) => format!("{k}={v}"),
        Err(_) => val.to_string(),
    })
}

/// Looks a variable up in the client environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// docker's `kvfile.Parse`: `KEY=value` lines, comments, and bare names looked up with
/// `lookup` (environment files) or dropped (label files).
pub fn parse_kv_file(path: &str, lookup: Option<EnvLookup<'_>>) -> anyhow::Result<Vec<String>> {
    let data =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("open {path}: {}", io_reason(&e)))?;
    let text = String::from_utf8(data)
        .map_err(|_| anyhow::anyhow!("invalid env file ({path}): invalid utf8 bytes"))?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = if i == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, has_value) = match line.split_once('=') {
            Some((k, _)) => (k, true),
            None => (line, false),
        };
        if key.is_empty() {
            anyhow::bail!("invalid env file ({path}): no variable name on line '{line}'");
        }
        if key.contains([' ', '\t']) {
            anyhow::bail!("invalid env file ({path}): variable '{key}' contains whitespaces");
        }
        if has_value {
            out.push(line.to_string());
        } else if let Some(f) = lookup {
            if let Some(v) = f(line) {
                out.push(format!("{key}={v}"));
            }
        }
    }
    Ok(out)
}

/// Go's wording of an I/O error (`no such file or directory`).
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_lowercase()
        }
    }
}

fn split_proto_port(raw: &str) -> (String, String) {
    match raw.split_once('/') {
        Some((p, "")) => ("tcp".to_string(), p.to_string()),
        Some((p, proto)) => (proto.to_string(), p.to_string()),
        None => ("tcp".to_string(), raw.to_string()),
    }
}

fn parse_port_range(r: &str) -> Result<(u32, u32), String> {
    let parse = |s: &str| -> Result<u32, String> {
        let n: u32 = s
            .parse()
            .map_err(|_| format!("strconv.ParseUint: parsing \"{s}\": invalid syntax"))?;
        if n > 65535 {
            return Err(format!(
                "strconv.ParseUint: parsing \"{s}\": value out of range"
            ));
        }
        Ok(n)
    };
    match r.split_once('-') {
        None => {
            let n = parse(r)?;
            Ok((n, n))
        }
        Some((a, b)) => {
            let (s, e) = (parse(a)?, parse(b)?);
            if e < s {
                return Err(format!("invalid range specified for port: {r}"));
            }
            Ok((s, e))
        }
    }
}

/// Port bindings: container port (`80/tcp`) to host bindings.
pub type PortMap = BTreeMap<String, Vec<(String, String)>>;

/// docker's `nat.ParsePortSpecs` for one `-p` value.
pub fn parse_port_spec(
    raw: &str,
    exposed: &mut BTreeMap<String, ()>,
    bindings: &mut PortMap,
) -> anyhow::Result<()> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (mut ip, host_port) = match n {
        1 => (String::new(), String::new()),
        2 => (String::new(), parts[0].to_string()),
        3 => (parts[0].to_string(), parts[1].to_string()),
        _ => (parts[..n - 2].join(":"), parts[n - 2].to_string()),
    };
    let (proto, container) = split_proto_port(container);
    if ip.len() >= 2 && ip.starts_with('[') && ip.ends_with(']') {
        ip = ip[1..ip.len() - 1].to_string();
    }
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        anyhow::bail!("invalid IP address: {ip}");
    }
    if container.is_empty() {
        anyhow::bail!("no port specified: {raw}<empty>");
    }
    let (start, end) = parse_port_range(&container)
        .map_err(|_| anyhow::anyhow!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host_port.is_empty() {
        (0, 0)
    } else {
        parse_port_range(&host_port)
            .map_err(|_| anyhow::anyhow!("invalid hostPort: {host_port}"))?
    };
    if !host_port.is_empty()
        && (end - start) != (hend - hstart)
        && !(end == start && hend != hstart)
    {
        anyhow::bail!(
            "invalid ranges specified for container and host Ports: {container} and {host_port}"
        );
    }
    if !matches!(proto.to_lowercase().as_str(), "tcp" | "udp" | "sctp") {
        anyhow::bail!("invalid proto: {proto}");
    }
    for i in 0..=(end - start) {
        let port = format!("{}/{}", start + i, proto.to_lowercase());
        let hp = if host_port.is_empty() {
            String::new()
        } else if end == start && hend != hstart {
            format!("{hstart}-{hend}")
        } else {
            (hstart + i).to_string()
        };
        exposed.insert(port.clone(), ());
        bindings.entry(port).or_default().push((ip.clone(), hp));
    }
    Ok(())
}

/// `--publish` long syntax (`published=8080,target=80`) to the short one.
fn standard_port_notation(p: &str) -> anyhow::Result<String> {
    if !p.contains('=') {
        return Ok(p.to_string());
    }
    let mut params: BTreeMap<&str, &str> = BTreeMap::from([("protocol", "tcp")]);
    for param in p.split(',') {
        match param.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                params.insert(k, v);
            }
            _ => anyhow::bail!(
                "invalid publish opts format (should be name=value but got '{param}')"
            ),
        }
    }
    Ok(format!(
        "{}:{}/{}",
        params.get("published").unwrap_or(&""),
        params.get("target").unwrap_or(&""),
        params["protocol"]
    ))
}

/// `--ulimit nofile=1024:2048` (docker's `units.ParseUlimit`).
pub fn parse_ulimit(val: &str) -> anyhow::Result<Json> {
    let (name, limits) = val
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("invalid ulimit argument: {val}"))?;
    const NAMES: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    if !NAMES.contains(&name) {
        anyhow::bail!("invalid ulimit type: {name}");
    }
    let parse = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| anyhow::anyhow!("invalid ulimit soft value: {s}"))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (
            parse(s)?,
            h.parse::<i64>()
                .map_err(|_| anyhow::anyhow!("invalid ulimit hard value: {h}"))?,
        ),
        None => {
            let s = parse(limits)?;
            (s, s)
        }
    };
    if soft > hard {
        anyhow::bail!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        );
    }
    Ok(json!({"Name": name, "Hard": hard, "Soft": soft}))
}

/// `--restart` as docker's `opts.ParseRestartPolicy`.
pub fn parse_restart(policy: &str) -> anyhow::Result<Json> {
    if policy.is_empty() {
        return Ok(json!({"Name": "", "MaximumRetryCount": 0}));
    }
    let (k, v) = match policy.split_once(':') {
        Some((k, v)) => (k, v),
        None => (policy, ""),
    };
    if policy.contains(':') && k.is_empty() {
        anyhow::bail!("invalid restart policy format: no policy provided before colon");
    }
    let count = if v.is_empty() {
        0
    } else {
        v.parse::<i64>().map_err(|_| {
            anyhow::anyhow!("invalid restart policy format: maximum retry count must be an integer")
        })?
    };
    Ok(json!({"Name": k, "MaximumRetryCount": count}))
}

/// `--mount type=bind,source=/a,target=/b,readonly`.
pub fn parse_mount(val: &str) -> anyhow::Result<Json> {
    let mut m = Map::new();
    let mut typ = "volume".to_string();
    let mut bind = Map::new();
    let mut vol = Map::new();
    let mut tmpfs = Map::new();
    let mut labels = Map::new();
    let mut driver_opts = Map::new();
    for field in val.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
            None => (field.to_lowercase(), None),
        };
        let boolv = |v: &Option<String>| -> anyhow::Result<bool> {
            match v {
                None => Ok(true),
                Some(s) => crate::flags::parse_go_bool(s)
                    .ok_or_else(|| anyhow::anyhow!("invalid value for {k}: {s}")),
            }
        };
        match (k.as_str(), &v) {
            ("readonly" | "ro", _) => {
                m.insert("ReadOnly".into(), Json::Bool(boolv(&v)?));
            }
            ("volume-nocopy", _) => {
                vol.insert("NoCopy".into(), Json::Bool(boolv(&v)?));
            }
            ("bind-recursive", Some(_)) => {}
            (_, None) => anyhow::bail!("invalid field '{field}' must be a key=value pair"),
            ("type", Some(t)) => typ = t.clone(),
            ("source" | "src", Some(s)) => {
                m.insert("Source".into(), Json::String(s.clone()));
            }
            ("target" | "dst" | "destination", Some(s)) => {
                m.insert("Target".into(), Json::String(s.clone()));
            }
            ("consistency", Some(s)) => {
                m.insert("Consistency".into(), Json::String(s.clone()));
            }
            ("bind-propagation", Some(s)) => {
                bind.insert("Propagation".into(), Json::String(s.clone()));
            }
            ("bind-nonrecursive", Some(s)) => {
                bind.insert(
                    "NonRecursive".into(),
                    Json::Bool(crate::flags::parse_go_bool(s).unwrap_or(false)),
                );
            }
            ("volume-driver", Some(s)) => {
                vol.insert("DriverConfig".into(), json!({"Name": s}));
            }
            ("volume-label", Some(s)) => {
                let (a, b) = s.split_once('=').unwrap_or((s, ""));
                labels.insert(a.into(), Json::String(b.into()));
            }
            ("volume-opt", Some(s)) => {
                let (a, b) = s.split_once('=').unwrap_or((s, ""));
                driver_opts.insert(a.into(), Json::String(b.into()));
            }
            ("volume-subpath", Some(s)) => {
                vol.insert("Subpath".into(), Json::String(s.clone()));
            }
            ("tmpfs-size", Some(s)) => {
                let n = units::ram_in_bytes(s)
                    .map_err(|e| anyhow::anyhow!("invalid value for {k}: {e}"))?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            ("tmpfs-mode", Some(s)) => {
                let n = u32::from_str_radix(s, 8)
                    .map_err(|_| anyhow::anyhow!("invalid value for {k}: {s}"))?;
                tmpfs.insert("Mode".into(), json!(n));
            }
            _ => anyhow::bail!("unexpected key '{k}' in '{field}'"),
        }
    }
    if !m.contains_key("Target") {
        anyhow::bail!("target is required");
    }
    if !labels.is_empty() {
        vol.insert("Labels".into(), Json::Object(labels));
    }
    if !driver_opts.is_empty() {
        let dc = vol
            .entry("DriverConfig")
            .or_insert_with(|| json!({"Name": ""}));
        dc["Options"] = Json::Object(driver_opts);
    }
    m.insert("Type".into(), Json::String(typ.clone()));
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Json::Object(bind));
    }
    if !vol.is_empty() {
        m.insert("VolumeOptions".into(), Json::Object(vol));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Json::Object(tmpfs));
    }
    Ok(Json::Object(m))
}

fn parse_device(dev: &str) -> anyhow::Result<Json> {
    let valid_mode = |m: &str| {
        !m.is_empty()
            && m.chars().all(|c| "rwm".contains(c))
            && m.chars().collect::<std::collections::HashSet<_>>().len() == m.len()
    };
    let arr: Vec<&str> = dev.splitn(4, ':').collect();
    let src = arr[0];
    let (mut dst, mut perms) = ("", "rwm");
    match arr.len() {
        1 => {}
        2 => {
            if valid_mode(arr[1]) {
                perms = arr[1];
            } else {
                dst = arr[1];
            }
        }
        3 => {
            dst = arr[1];
            perms = arr[2];
        }
        _ => anyhow::bail!("invalid device specification: {dev}"),
    }
    if src.is_empty() || (arr.len() == 3 && !valid_mode(perms)) {
        anyhow::bail!("bad format for path: {dev}");
    }
    let dst = if dst.is_empty() { src } else { dst };
    Ok(json!({"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}))
}

fn valid_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
}

fn kv_map(items: &[String]) -> Json {
    let mut m = Map::new();
    for i in items {
        let (k, v) = i.split_once('=').unwrap_or((i.as_str(), ""));
        m.insert(k.to_string(), Json::String(v.to_string()));
    }
    Json::Object(m)
}

fn strs(v: &[String]) -> Json {
    Json::Array(v.iter().map(|s| Json::String(s.clone())).collect())
}

fn strs_or_null(v: &[String]) -> Json {
    if v.is_empty() {
        Json::Null
    } else {
        strs(v)
    }
}

/// Everything `run`/`create` send, and what the CLI itself needs to know.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The JSON body: Config fields with `HostConfig` and `NetworkingConfig`.
    pub body: Json,
    pub image: String,
    pub name: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub auto_remove: bool,
    pub cidfile: String,
    pub platform: String,
    pub pull: String,
    pub quiet: bool,
}

/// Maps parsed flags (with `args` = IMAGE [COMMAND] [ARG...]) to a create request, as
/// docker's `parse` does. `console` is the local terminal size for `ConsoleSize`.
pub fn build_create(p: &Parsed, console: (u16, u16)) -> anyhow::Result<CreateRequest> {
    let image = p.args.first().cloned().unwrap_or_default();
    let cmd: Vec<String> = p.args.iter().skip(1).cloned().collect();

    let attach: Vec<String> = p.list("attach");
    for a in &attach {
        if !matches!(a.to_lowercase().as_str(), "stdin" | "stdout" | "stderr") {
            return Err(invalid(
                "attach",
                a,
                "valid streams are STDIN, STDOUT and STDERR",
            ));
        }
    }
    let has = |s: &str| attach.iter().any(|a| a.eq_ignore_ascii_case(s));
    let mut attach_stdin = has("stdin");
    let (mut attach_stdout, mut attach_stderr) = (has("stdout"), has("stderr"));
    let mac = p.string("mac-address");
    if !mac.is_empty() && !valid_mac(&mac) {
        anyhow::bail!("{mac} is not a valid mac address");
    }
    let open_stdin = p.bool("interactive");
    if open_stdin {
        attach_stdin = true;
    }
    if attach.is_empty() {
        attach_stdout = true;
        attach_stderr = true;
    }
    let swappiness = int_flag(p, "memory-swappiness")?;
    if swappiness != -1 && !(0..=100).contains(&swappiness) {
        anyhow::bail!("invalid value: {swappiness}. Valid memory swappiness range is 0-100");
    }

    // -v: sources make binds, bare targets anonymous volumes.
    let mut binds = Vec::new();
    let mut volumes = Map::new();
    for vol in p.list("volume") {
        let parts: Vec<&str> = vol.split(':').collect();
        if vol.is_empty() || parts.len() > 3 || parts.iter().take(2).any(|x| x.is_empty()) {
            anyhow::bail!(
                "invalid spec: {vol}: {}",
                if vol.is_empty() {
                    "empty section between colons"
                } else {
                    "too many colons"
                }
            );
        }
        if parts.len() == 1 {
            volumes.insert(vol.clone(), json!({}));
            continue;
        }
        let mut host = parts[0].to_string();
        if host.starts_with('.') {
            if let Ok(cwd) = std::env::current_dir() {
                host = cwd.join(&host).to_string_lossy().to_string();
                host = normalize_path(&host);
            }
        }
        binds.push(format!("{host}:{}", parts[1..].join(":")));
    }

    let mut tmpfs = Map::new();
    for t in p.list("tmpfs") {
        let (k, v) = t.split_once(':').unwrap_or((t.as_str(), ""));
        tmpfs.insert(k.to_string(), Json::String(v.to_string()));
    }

    let entrypoint = if !p.string("entrypoint").is_empty() {
        json!([p.string("entrypoint")])
    } else if p.changed("entrypoint") {
        json!([""])
    } else {
        Json::Null
    };

    let mut exposed = BTreeMap::new();
    let mut bindings = PortMap::new();
    for spec in p.list("publish") {
        parse_port_spec(&standard_port_notation(&spec)?, &mut exposed, &mut bindings)?;
    }
    for e in p.list("expose") {
        if e.contains(':') {
            anyhow::bail!("invalid port format for --expose: {e}");
        }
        let (proto, port) = split_proto_port(&e);
        let (s, end) = parse_port_range(&port).map_err(|err| {
            anyhow::anyhow!("invalid range format for --expose: {e}, error: {err}")
        })?;
        for i in s..=end {
            exposed.insert(format!("{i}/{proto}"), ());
        }
    }

    let mut devices = Vec::new();
    for d in p.list("device") {
        devices.push(parse_device(&d)?);
    }

    let mut env_lookup = |k: &str| std::env::var(k).ok();
    let lookup: &dyn Fn(&str) -> Option<String> = &mut env_lookup;
    let mut env = Vec::new();
    for f in p.list("env-file") {
        env.extend(parse_kv_file(&f, Some(lookup))?);
    }
    for e in p.list("env") {
        env.push(validate_env(&e).map_err(|err| invalid("env", &e, err))?);
    }
    let mut labels = Vec::new();
    for f in p.list("label-file") {
        labels.extend(parse_kv_file(&f, None)?);
    }
    for lbl in p.list("label") {
        if lbl.starts_with('=') {
            return Err(invalid(
                "label",
                &lbl,
                format!("invalid label '{lbl}': empty name"),
            ));
        }
        labels.push(lbl);
    }

    for (flag, name) in [
        ("pid", "PID"),
        ("uts", "UTS"),
        ("userns", "USER"),
        ("cgroupns", "CGROUP"),
    ] {
        let v = p.string(flag);
        let ok = match flag {
            "pid" => {
                v.is_empty()
                    || v == "host"
                    || v.strip_prefix("container:").is_some_and(|c| !c.is_empty())
            }
            "uts" => v.is_empty() || v == "host",
            "userns" => v.is_empty() || v == "host",
            _ => v.is_empty() || v == "host" || v == "private",
        };
        if !ok {
            anyhow::bail!("--{flag}: invalid {name} mode");
        }
    }

    let restart = parse_restart(&p.string("restart"))?;
    let log_driver = p.string("log-driver");
    let log_opts = p.list("log-opt");
    if log_driver == "none" && !log_opts.is_empty() {
        anyhow::bail!("invalid logging opts for driver {log_driver}");
    }

    let mut security = Vec::new();
    let mut masked_paths = Json::Null;
    let mut readonly_paths = Json::Null;
    for opt in p.list("security-opt") {
        let (k, v) = match opt.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None if opt == "no-new-privileges" => (opt.clone(), None),
            None => match opt.split_once(':') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (opt.clone(), None),
            },
        };
        if k != "no-new-privileges" && v.as_deref().unwrap_or("").is_empty() {
            anyhow::bail!("Invalid --security-opt: {opt:?}");
        }
        if opt == "systempaths=unconfined" {
            masked_paths = json!([]);
            readonly_paths = json!([]);
            continue;
        }
        if k == "seccomp" {
            let v = v.unwrap_or_default();
            if v != "unconfined" && v != "builtin" {
                let data = std::fs::read(&v).map_err(|e| {
                    anyhow::anyhow!(
                        "opening seccomp profile ({v}) failed: open {v}: {}",
                        io_reason(&e)
                    )
                })?;
                let parsed: Json = serde_json::from_slice(&data).map_err(|e| {
                    anyhow::anyhow!("compacting json for seccomp profile ({v}) failed: {e}")
                })?;
                security.push(format!("seccomp={parsed}"));
                continue;
            }
        }
        security.push(opt);
    }

    let mut storage = Map::new();
    for o in p.list("storage-opt") {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("invalid storage option"))?;
        storage.insert(k.into(), Json::String(v.into()));
    }

    // Healthcheck
    let health_cmd = p.string("health-cmd");
    let interval = duration_flag(p, "health-interval")?;
    let timeout = duration_flag(p, "health-timeout")?;
    let start_period = duration_flag(p, "health-start-period")?;
    let start_interval = duration_flag(p, "health-start-interval")?;
    let retries = int_flag(p, "health-retries")?;
    let have_health = !health_cmd.is_empty()
        || interval != 0
        || timeout != 0
        || start_period != 0
        || retries != 0
        || start_interval != 0;
    let healthcheck = if p.bool("no-healthcheck") {
        if have_health {
            anyhow::bail!("--no-healthcheck conflicts with --health-* options");
        }
        json!({"Test": ["NONE"]})
    } else if have_health {
        for (v, n) in [
            (interval, "interval"),
            (timeout, "timeout"),
            (retries, "retries"),
            (start_period, "start-period"),
            (start_interval, "start-interval"),
        ] {
            if v < 0 {
                anyhow::bail!("--health-{n} cannot be negative");
            }
        }
        let mut h = Map::new();
        if !health_cmd.is_empty() {
            h.insert("Test".into(), json!(["CMD-SHELL", health_cmd]));
        }
        for (k, v) in [
            ("Interval", interval),
            ("Timeout", timeout),
            ("StartPeriod", start_period),
            ("StartInterval", start_interval),
        ] {
            if v != 0 {
                h.insert(k.into(), json!(v));
            }
        }
        if retries != 0 {
            h.insert("Retries".into(), json!(retries));
        }
        Json::Object(h)
    } else {
        Json::Null
    };

    let nano_cpus = if p.changed("cpus") {
        let s = p.string("cpus");
        units::nano_cpus(&s).map_err(|e| invalid("cpus", &s, e))?
    } else {
        0
    };
    let mut ulimits = Vec::new();
    for u in p.list("ulimit") {
        ulimits.push(parse_ulimit(&u).map_err(|e| invalid("ulimit", &u, e))?);
    }
    ulimits.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    let blkio_weight = {
        let s = p.string("blkio-weight");
        s.parse::<u16>().map_err(|_| {
            invalid(
                "blkio-weight",
                &s,
                format!("strconv.ParseUint: parsing \"{s}\": invalid syntax"),
            )
        })?
    };

    let mut dns = Vec::new();
    for d in p.list("dns") {
        if d.parse::<IpAddr>().is_err() {
            return Err(invalid(
                "dns",
                &d,
                format!("IP address is not correctly formatted: {d}"),
            ));
        }
        dns.push(d);
    }
    let mut extra_hosts = Vec::new();
    for h in p.list("add-host") {
        extra_hosts.push(validate_extra_host(&h).map_err(|e| invalid("add-host", &h, e))?);
    }
    let mut dns_options = p.list("dns-opt");
    dns_options.extend(p.list("dns-option"));

    let mut networks = p.list("net");
    networks.extend(p.list("network"));
    let network_mode = networks
        .first()
        .cloned()
        .unwrap_or_else(|| "default".to_string());
    let mut aliases = p.list("net-alias");
    aliases.extend(p.list("network-alias"));
    let user_defined = |n: &str| {
        !matches!(n, "default" | "bridge" | "host" | "none") && !n.starts_with("container:")
    };
    if !aliases.is_empty() && !user_defined(&network_mode) {
        anyhow::bail!("network-scoped aliases are only supported for user-defined networks");
    }
    let mut endpoint = Map::new();
    if !aliases.is_empty() {
        endpoint.insert("Aliases".into(), strs(&aliases));
    }
    if user_defined(&network_mode) && !p.list("link").is_empty() {
        endpoint.insert("Links".into(), strs(&p.list("link")));
    }
    let (ip4, ip6, lla) = (p.string("ip"), p.string("ip6"), p.list("link-local-ip"));
    if !ip4.is_empty() || !ip6.is_empty() || !lla.is_empty() {
        let mut ipam = Map::new();
        if !ip4.is_empty() {
            ipam.insert("IPv4Address".into(), Json::String(ip4));
        }
        if !ip6.is_empty() {
            ipam.insert("IPv6Address".into(), Json::String(ip6));
        }
        if !lla.is_empty() {
            ipam.insert("LinkLocalIPs".into(), strs(&lla));
        }
        endpoint.insert("IPAMConfig".into(), Json::Object(ipam));
    }
    if !mac.is_empty() {
        endpoint.insert("MacAddress".into(), Json::String(mac.clone()));
    }
    let mut endpoints = Map::new();
    if networks.is_empty() || !endpoint.is_empty() {
        endpoints.insert(network_mode.clone(), Json::Object(endpoint));
    }
    for extra in networks.iter().skip(1) {
        if endpoints.contains_key(extra) || *extra == network_mode {
            anyhow::bail!("network {extra:?} is specified multiple times");
        }
        endpoints.insert(extra.clone(), json!({}));
    }

    let mut mounts = Vec::new();
    for m in p.list("mount") {
        mounts.push(parse_mount(&m).map_err(|e| invalid("mount", &m, e))?);
    }

    let auto_remove = p.bool("rm");
    let restart_none = matches!(restart["Name"].as_str(), Some("") | Some("no"));
    if auto_remove && !restart_none {
        anyhow::bail!("conflicting options: cannot specify both --restart and --rm");
    }

    let tty = p.bool("tty");
    let mut host_config = json!({
        "Binds": strs_or_null(&binds),
        "ContainerIDFile": p.string("cidfile"),
        "LogConfig": {"Type": log_driver, "Config": kv_map(&log_opts)},
        "NetworkMode": network_mode,
        "PortBindings": Json::Object(bindings.iter().map(|(k, v)| (k.clone(), Json::Array(v.iter().map(|(ip, hp)| json!({"HostIp": ip, "HostPort": hp})).collect()))).collect()),
        "RestartPolicy": restart,
        "AutoRemove": auto_remove,
        "VolumeDriver": p.string("volume-driver"),
        "VolumesFrom": strs_or_null(&p.list("volumes-from")),
        "ConsoleSize": [console.0, console.1],
        "Annotations": if p.list("annotation").is_empty() { Json::Null } else { kv_map(&p.list("annotation")) },
        "CapAdd": strs_or_null(&p.list("cap-add")),
        "CapDrop": strs_or_null(&p.list("cap-drop")),
        "CgroupnsMode": p.string("cgroupns"),
        "Dns": strs(&dns),
        "DnsOptions": strs(&dns_options),
        "DnsSearch": strs(&p.list("dns-search")),
        "ExtraHosts": strs_or_null(&extra_hosts),
        "GroupAdd": strs_or_null(&p.list("group-add")),
        "IpcMode": p.string("ipc"),
        "Cgroup": "",
        "Links": strs_or_null(&p.list("link")),
        "OomScoreAdj": int_flag(p, "oom-score-adj")?,
        "PidMode": p.string("pid"),
        "Privileged": p.bool("privileged"),
        "PublishAllPorts": p.bool("publish-all"),
        "ReadonlyRootfs": p.bool("read-only"),
        "SecurityOpt": strs_or_null(&security),
        "StorageOpt": if storage.is_empty() { Json::Null } else { Json::Object(storage) },
        "Tmpfs": if tmpfs.is_empty() { Json::Null } else { Json::Object(tmpfs) },
        "UTSMode": p.string("uts"),
        "UsernsMode": p.string("userns"),
        "ShmSize": size_flag(p, "shm-size")?,
        "Sysctls": if p.list("sysctl").is_empty() { Json::Null } else { kv_map(&p.list("sysctl")) },
        "Runtime": p.string("runtime"),
        "Isolation": p.string("isolation"),
        "CpuShares": int_flag(p, "cpu-shares")?,
        "Memory": size_flag(p, "memory")?,
        "NanoCpus": nano_cpus,
        "CgroupParent": p.string("cgroup-parent"),
        "BlkioWeight": blkio_weight,
        "CpuPeriod": int_flag(p, "cpu-period")?,
        "CpuQuota": int_flag(p, "cpu-quota")?,
        "CpuRealtimePeriod": int_flag(p, "cpu-rt-period")?,
        "CpuRealtimeRuntime": int_flag(p, "cpu-rt-runtime")?,
        "CpusetCpus": p.string("cpuset-cpus"),
        "CpusetMems": p.string("cpuset-mems"),
        "Devices": Json::Array(devices),
        "DeviceCgroupRules": strs_or_null(&p.list("device-cgroup-rule")),
        "KernelMemory": size_flag(p, "kernel-memory")?,
        "MemoryReservation": size_flag(p, "memory-reservation")?,
        "MemorySwap": size_flag(p, "memory-swap")?,
        "MemorySwappiness": swappiness,
        "OomKillDisable": p.bool("oom-kill-disable"),
        "PidsLimit": int_flag(p, "pids-limit")?,
        "Ulimits": Json::Array(ulimits),
        "BlkioWeightDevice": blkio_devices(p, "blkio-weight-device")?,
        "BlkioDeviceReadBps": blkio_devices(p, "device-read-bps")?,
        "BlkioDeviceWriteBps": blkio_devices(p, "device-write-bps")?,
        "BlkioDeviceReadIOps": blkio_devices(p, "device-read-iops")?,
        "BlkioDeviceWriteIOps": blkio_devices(p, "device-write-iops")?,
        "Mounts": if mounts.is_empty() { Json::Null } else { Json::Array(mounts) },
        "MaskedPaths": masked_paths,
        "ReadonlyPaths": readonly_paths,
    });
    if p.changed("init") {
        host_config["Init"] = Json::Bool(p.bool("init"));
    }

    let stdin_once = open_stdin && attach_stdin;
    let mut body = json!({
        "Hostname": p.string("hostname"),
        "Domainname": p.string("domainname"),
        "User": p.string("user"),
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
        "ExposedPorts": if exposed.is_empty() { Json::Null } else { Json::Object(exposed.keys().map(|k| (k.clone(), json!({}))).collect()) },
        "Tty": tty,
        "OpenStdin": open_stdin,
        "StdinOnce": stdin_once,
        "Env": strs_or_null(&env),
        "Cmd": strs_or_null(&cmd),
        "Healthcheck": healthcheck,
        "Image": image,
        "Volumes": if volumes.is_empty() { Json::Null } else { Json::Object(volumes) },
        "WorkingDir": p.string("workdir"),
        "Entrypoint": entrypoint,
        "MacAddress": mac,
        "OnBuild": Json::Null,
        "Labels": kv_map(&labels),
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    });
    if !p.string("stop-signal").is_empty() {
        body["StopSignal"] = Json::String(p.string("stop-signal"));
    }
    if p.changed("stop-timeout") {
        body["StopTimeout"] = json!(int_flag(p, "stop-timeout")?);
    }
    let pull = p.string("pull");
    if !matches!(pull.as_str(), "always" | "missing" | "never") {
        anyhow::bail!(
            "invalid pull option: '{pull}': must be one of \"always\", \"missing\" or \"never\""
        );
    }
    Ok(CreateRequest {
        body,
        image: p.args.first().cloned().unwrap_or_default(),
        name: p.string("name"),
        tty,
        attach_stdin,
        attach_stdout,
        attach_stderr,
        auto_remove,
        cidfile: p.string("cidfile"),
        platform: p.string("platform"),
        pull,
        quiet: p.bool("quiet"),
    })
}

/// `--blkio-weight-device` and `--device-{read,write}-{bps,iops}` values, validated as
/// docker's `ValidateWeightDevice` / `ValidateThrottle*Device` do; always a list.
fn blkio_devices(p: &Parsed, flag: &str) -> anyhow::Result<Json> {
    let mut out = Vec::new();
    for val in p.list(flag) {
        let bad = |msg: String| invalid(flag, &val, msg);
        let (dev, v) = match val.split_once(':') {
            Some((k, v)) if !k.is_empty() => (k, v),
            _ => return Err(bad(format!("bad format: {val}"))),
        };
        if !dev.starts_with("/dev/") {
            return Err(bad(format!("bad format for device path: {val}")));
        }
        let entry = match flag {
            "blkio-weight-device" => {
                let w: u16 = v
                    .parse()
                    .map_err(|_| bad(format!("invalid weight for device: {val}")))?;
                if w > 0 && !(10..=1000).contains(&w) {
                    return Err(bad(format!("invalid weight for device: {val}")));
                }
                json!({"Path": dev, "Weight": w})
            }
            "device-read-bps" | "device-write-bps" => {
                let rate = units::ram_in_bytes(v).ok().filter(|r| *r >= 0).ok_or_else(|| {
                    bad(format!("invalid rate for device: {val}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb"))
                })?;
                json!({"Path": dev, "Rate": rate})
            }
            _ => {
                let rate: u64 = v.parse().map_err(|_| {
                    bad(format!("invalid rate for device: {val}. The correct format is <device-path>:<number>. Number must be a positive integer"))
                })?;
                json!({"Path": dev, "Rate": rate})
            }
        };
        out.push(entry);
    }
    Ok(Json::Array(out))
}

/// `--add-host host:ip` or `host=ip`, sent as `host:ip`.
pub fn validate_extra_host(val: &str) -> anyhow::Result<String> {
    let (k, v) = match val.split_once('=') {
        Some(kv) => kv,
        None => val
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("bad format for add-host: {val:?}"))?,
    };
    if k.is_empty() || k.contains(':') {
        anyhow::bail!("bad format for add-host: {val:?}");
    }
    let mut v = v;
    if v != "host-gateway" {
        if v.len() > 2 && v.starts_with('[') && v.ends_with(']') {
            v = &v[1..v.len() - 1];
        }
        if v.parse::<IpAddr>().is_err() {
            anyhow::bail!("invalid IP address in add-host: {v:?}");
        }
    }
    Ok(format!("{k}:{v}"))
}

fn normalize_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::{parse, Spec};

    fn create(args: &str) -> anyhow::Result<CreateRequest> {
        let spec = Spec {
            usage: "",
            about: "",
            aliases: "",
            flags: container_flags(),
            stop_at_positional: true,
            no_short_help: true,
        };
        let argv = shell_words::split(args).unwrap();
        let p = parse(&spec, &argv).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        build_create(&p, (0, 0))
    }

    #[test]
    fn publish_flags_fill_exposed_ports_and_bindings() {
        let r =
            create("-p 8080:80 -p 127.0.0.1:53:53/udp -p 9000 --expose 7000-7001 busybox").unwrap();
        let b = &r.body;
        assert_eq!(
            b["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "9000/tcp": {}, "7000/tcp": {}, "7001/tcp": {}})
        );
        assert_eq!(
            b["HostConfig"]["PortBindings"]["80/tcp"],
            json!([{"HostIp": "", "HostPort": "8080"}])
        );
        assert_eq!(
            b["HostConfig"]["PortBindings"]["53/udp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "53"}])
        );
        assert_eq!(
            b["HostConfig"]["PortBindings"]["9000/tcp"],
            json!([{"HostIp": "", "HostPort": ""}])
        );
    }

    #[test]
    fn port_ranges_map_one_to_one() {
        let r = create("-p 8000-8001:80-81 busybox").unwrap();
        assert_eq!(
            r.body["HostConfig"]["PortBindings"]["81/tcp"],
            json!([{"HostIp": "", "HostPort": "8001"}])
        );
        assert_eq!(
            create("-p 8000-8002:80-81 busybox")
                .unwrap_err()
                .to_string(),
            "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"
        );
        assert_eq!(
            create("-p 1.2.3:80:80 busybox").unwrap_err().to_string(),
            "invalid IP address: 1.2.3"
        );
    }

    #[test]
    fn restart_policies_carry_retry_counts() {
        let r = create("--restart on-failure:3 busybox").unwrap();
        assert_eq!(
            r.body["HostConfig"]["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        let r = create("busybox").unwrap();
        assert_eq!(
            r.body["HostConfig"]["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
        assert_eq!(
            create("--rm --restart=always busybox")
                .unwrap_err()
                .to_string(),
            "conflicting options: cannot specify both --restart and --rm"
        );
        assert!(create("--restart on-failure:x busybox").is_err());
    }

    #[test]
    fn env_without_value_comes_from_the_client_environment() {
        std::env::set_var("BERTH_TEST_FROM_ENV", "hello");
        let r = create("-e A=1 -e BERTH_TEST_FROM_ENV -e BERTH_TEST_UNSET_VAR busybox").unwrap();
        assert_eq!(
            r.body["Env"],
            json!(["A=1", "BERTH_TEST_FROM_ENV=hello", "BERTH_TEST_UNSET_VAR"])
        );
    }

    #[test]
    fn env_files_skip_comments_and_come_before_flags() {
        let dir = std::env::temp_dir().join(format!("berth-envfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("env");
        std::fs::write(&f, "# comment\n\n  X=1\nY=a b\nBERTH_TEST_SURELY_UNSET\n").unwrap();
        let r = create(&format!("--env-file {} -e Z=2 busybox", f.display())).unwrap();
        assert_eq!(r.body["Env"], json!(["X=1", "Y=a b", "Z=2"]));
        std::fs::write(&f, "BAD KEY=1\n").unwrap();
        assert!(create(&format!("--env-file {} busybox", f.display()))
            .unwrap_err()
            .to_string()
            .contains("contains whitespaces"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn blkio_device_limits_are_lists_even_when_empty() {
        let r = create("busybox").unwrap();
        assert_eq!(r.body["HostConfig"]["BlkioDeviceReadBps"], json!([]));
        assert_eq!(r.body["HostConfig"]["Ulimits"], json!([]));
        let r = create("--device-read-bps /dev/sda:1mb --device-write-iops /dev/sda:100 --blkio-weight-device /dev/sda:200 busybox").unwrap();
        let h = &r.body["HostConfig"];
        assert_eq!(
            h["BlkioDeviceReadBps"],
            json!([{"Path": "/dev/sda", "Rate": 1048576}])
        );
        assert_eq!(
            h["BlkioDeviceWriteIOps"],
            json!([{"Path": "/dev/sda", "Rate": 100}])
        );
        assert_eq!(
            h["BlkioWeightDevice"],
            json!([{"Path": "/dev/sda", "Weight": 200}])
        );
        assert!(create("--blkio-weight-device /dev/sda:5 busybox").is_err());
        assert!(create("--device-read-bps sda:1 busybox").is_err());
    }

    #[test]
    fn ulimits_memory_and_cpus_use_docker_units() {
        let r = create("--ulimit nofile=1024:2048 --ulimit nproc=10 -m 512m --memory-swap -1 --cpus 1.5 --shm-size 64m --pids-limit 100 busybox").unwrap();
        let h = &r.body["HostConfig"];
        assert_eq!(
            h["Ulimits"],
            json!([{"Name": "nofile", "Hard": 2048, "Soft": 1024}, {"Name": "nproc", "Hard": 10, "Soft": 10}])
        );
        assert_eq!(h["Memory"], json!(536870912));
        assert_eq!(h["MemorySwap"], json!(-1));
        assert_eq!(h["NanoCpus"], json!(1_500_000_000i64));
        assert_eq!(h["ShmSize"], json!(64 << 20));
        assert_eq!(h["PidsLimit"], json!(100));
        assert_eq!(
            create("-m 12x busybox").unwrap_err().to_string(),
            "invalid argument \"12x\" for \"-m, --memory\" flag: invalid suffix: 'x'"
        );
    }

    #[test]
    fn interactive_runs_attach_stdin_once() {
        let r = create("-it busybox sh").unwrap();
        assert_eq!(r.body["OpenStdin"], json!(true));
        assert_eq!(r.body["StdinOnce"], json!(true));
        assert_eq!(r.body["AttachStdin"], json!(true));
        assert_eq!(r.body["Tty"], json!(true));
        assert_eq!(r.body["Cmd"], json!(["sh"]));
        let r = create("-a stdout busybox").unwrap();
        assert_eq!(
            (r.attach_stdout, r.attach_stderr, r.attach_stdin),
            (true, false, false)
        );
    }

    #[test]
    fn volumes_split_into_binds_and_anonymous_volumes() {
        let r = create("-v /data -v /host:/ctr:ro -v named:/n busybox").unwrap();
        assert_eq!(r.body["Volumes"], json!({"/data": {}}));
        assert_eq!(
            r.body["HostConfig"]["Binds"],
            json!(["/host:/ctr:ro", "named:/n"])
        );
    }

    #[test]
    fn mounts_tmpfs_and_labels_are_mapped() {
        let r = create("--mount type=bind,source=/a,target=/b,readonly --tmpfs /run:rw,size=1m -l a=b -l c --entrypoint= busybox").unwrap();
        assert_eq!(
            r.body["HostConfig"]["Mounts"],
            json!([{"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true}])
        );
        assert_eq!(r.body["HostConfig"]["Tmpfs"], json!({"/run": "rw,size=1m"}));
        assert_eq!(r.body["Labels"], json!({"a": "b", "c": ""}));
        assert_eq!(r.body["Entrypoint"], json!([""]));
    }

    #[test]
    fn healthcheck_flags_build_a_health_config() {
        let r =
            create("--health-cmd 'true' --health-interval 5s --health-retries 2 busybox").unwrap();
        assert_eq!(
            r.body["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64, "Retries": 2})
        );
        let r = create("--no-healthcheck busybox").unwrap();
        assert_eq!(r.body["Healthcheck"], json!({"Test": ["NONE"]}));
        assert!(create("--no-healthcheck --health-retries 1 busybox").is_err());
    }

    #[test]
    fn networking_options_land_on_the_endpoint() {
        let r = create("--network mynet --ip 10.0.0.5 --network-alias web --add-host db=1.2.3.4 --dns 8.8.8.8 busybox").unwrap();
        assert_eq!(r.body["HostConfig"]["NetworkMode"], json!("mynet"));
        assert_eq!(
            r.body["NetworkingConfig"]["EndpointsConfig"]["mynet"],
            json!({"Aliases": ["web"], "IPAMConfig": {"IPv4Address": "10.0.0.5"}})
        );
        assert_eq!(r.body["HostConfig"]["ExtraHosts"], json!(["db:1.2.3.4"]));
        assert_eq!(r.body["HostConfig"]["Dns"], json!(["8.8.8.8"]));
        let r = create("busybox").unwrap();
        assert_eq!(r.body["HostConfig"]["NetworkMode"], json!("default"));
        assert_eq!(
            r.body["NetworkingConfig"]["EndpointsConfig"],
            json!({"default": {}})
        );
    }

    #[test]
    fn stop_timeout_and_init_are_sent_only_when_given() {
        let r = create("busybox").unwrap();
        assert!(r.body.get("StopTimeout").is_none());
        assert!(r.body["HostConfig"].get("Init").is_none());
        let r = create("--stop-timeout 3 --init --stop-signal SIGUSR1 busybox").unwrap();
        assert_eq!(r.body["StopTimeout"], json!(3));
        assert_eq!(r.body["HostConfig"]["Init"], json!(true));
        assert_eq!(r.body["StopSignal"], json!("SIGUSR1"));
    }
}
