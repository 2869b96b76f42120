//! A service's container as the Engine API's `POST /containers/create` body, with Docker
//! Compose's labels and network aliases. Bind mounts that may be created go in `Binds` (the
//! daemon makes a missing host directory, as Compose's short syntax promises); mounts with
//! options `Binds` cannot say go in `Mounts`.

use crate::load::Project;
use crate::model::{Service, ServiceVolume};
use crate::names;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// What the body depends on beyond the service itself.
pub struct ContainerContext<'a> {
    pub service: &'a str,
    pub number: u64,
    pub name: String,
    /// A `run` container (`oneoff=True`, no service aliases).
    pub oneoff: bool,
    /// The image reference to create from.
    pub image: String,
    /// The id of that image, for the `com.docker.compose.image` label.
    pub image_id: Option<String>,
    /// A service's running container name (for `network_mode: service:x`,
    /// `volumes_from`, `links`).
    pub container_of: &'a dyn Fn(&str) -> Option<String>,
    /// Anonymous volumes of the container being replaced, by target, kept on recreate.
    pub anonymous_volumes: BTreeMap<String, String>,
}

/// A create body, and the networks to connect after create when the daemon only takes
/// one endpoint at create (API < 1.44).
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub body: Value,
    /// Engine network names in connect order, the first being `NetworkMode`.
    pub networks: Vec<(String, Value)>,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: service {service:?}: {key}: {message}")]
pub struct SpecError {
    pub file: String,
    pub service: String,
    pub key: String,
    pub message: String,
}

fn strs(v: &[String]) -> Value {
    json!(v)
}

fn port_key(target: impl std::fmt::Display, proto: &str) -> String {
    format!("{target}/{proto}")
}

/// `expose` entries (`3000`, `3000-3002/udp`) as `ExposedPorts` keys.
fn exposed(expose: &str) -> Vec<String> {
    let (ports, proto) = expose.split_once('/').unwrap_or((expose, "tcp"));
    match ports.split_once('-') {
        Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
            (Ok(a), Ok(b)) if a <= b => (a..=b).map(|p| port_key(p, proto)).collect(),
            _ => vec![port_key(ports, proto)],
        },
        None => vec![port_key(ports, proto)],
    }
}

fn bind_string(source: &str, v: &ServiceVolume) -> String {
    let mut opts: Vec<&str> = Vec::new();
    if v.read_only {
        opts.push("ro");
    }
    if let Some(b) = &v.bind {
        if let Some(z) = &b.selinux {
            opts.push(z);
        }
        if let Some(p) = &b.propagation {
            opts.push(p);
        }
    }
    if v.volume.as_ref().is_some_and(|o| o.nocopy) {
        opts.push("nocopy");
    }
    if opts.is_empty() {
        format!("{source}:{}", v.target)
    } else {
        format!("{source}:{}:{}", v.target, opts.join(","))
    }
}

impl Project {
    /// Every label Docker Compose puts on a service's container.
    pub fn container_labels(
        &self,
        service: &str,
        s: &Service,
        number: u64,
        oneoff: bool,
    ) -> BTreeMap<String, String> {
        let mut l = s.labels.clone();
        l.insert(names::PROJECT.into(), self.name.clone());
        l.insert(names::SERVICE.into(), service.into());
        l.insert(names::NUMBER.into(), number.to_string());
        l.insert(
            names::ONEOFF.into(),
            if oneoff { "True" } else { "False" }.into(),
        );
        l.insert(names::CONFIG_HASH.into(), names::config_hash(s));
        l.insert(
            names::WORKING_DIR.into(),
            self.working_dir.display().to_string(),
        );
        l.insert(
            names::CONFIG_FILES.into(),
            self.config_files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        l.insert(names::VERSION.into(), names::COMPOSE_VERSION.into());
        let deps: Vec<String> = s
            .depends_on
            .iter()
            .map(|(n, d)| format!("{n}:{}:{}", d.condition, d.restart))
            .collect();
        l.insert(names::DEPENDS_ON.into(), deps.join(","));
        l
    }

    /// The engine name of a network key (`default` → `PROJECT_default`).
    pub fn network_name(&self, key: &str) -> String {
        self.networks
            .get(key)
            .and_then(|n| n.name.clone())
            .unwrap_or_else(|| format!("{}_{key}", self.name))
    }

    /// The engine name of a volume key.
    pub fn volume_name(&self, key: &str) -> String {
        self.volumes
            .get(key)
            .and_then(|v| v.name.clone())
            .unwrap_or_else(|| format!("{}_{key}", self.name))
    }

    /// A service's networks in the order they are connected: by `priority` (highest
    /// first), then by key.
    pub fn service_networks(
        &self,
        s: &Service,
    ) -> Vec<(String, Option<crate::model::ServiceNetwork>)> {
        let mut nets: Vec<_> = s
            .networks
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        nets.sort_by_key(|(k, v)| {
            (
                std::cmp::Reverse(v.as_ref().and_then(|n| n.priority).unwrap_or(0)),
                k.clone(),
            )
        });
        nets
    }

    /// The create body of one container of a service.
    pub fn create_spec(&self, s: &Service, cx: &ContainerContext) -> Result<CreateSpec, SpecError> {
        let err = |key: &str, message: String| SpecError {
            file: s.source_file.clone(),
            service: cx.service.to_string(),
            key: key.to_string(),
            message,
        };
        let container_of = |svc: &str, key: &str| {
            (cx.container_of)(svc)
                .ok_or_else(|| err(key, format!("service {svc:?} has no container")))
        };
        let mut labels = self.container_labels(cx.service, s, cx.number, cx.oneoff);
        if let Some(id) = &cx.image_id {
            labels.insert(names::IMAGE.into(), id.clone());
        }

        let mut exposed_ports = Map::new();
        let mut bindings: Map<String, Value> = Map::new();
        for p in &s.ports {
            let key = port_key(p.target, &p.protocol);
            exposed_ports.insert(key.clone(), json!({}));
            let entry = bindings.entry(key).or_insert_with(|| json!([]));
            if let Value::Array(a) = entry {
                a.push(json!({
                    "HostIp": p.host_ip.clone().unwrap_or_default(),
                    "HostPort": p.published.clone().unwrap_or_default(),
                }));
            }
        }
        for e in &s.expose {
            for k in exposed(e) {
                exposed_ports.insert(k, json!({}));
            }
        }

        let mut binds: Vec<String> = Vec::new();
        let mut mounts: Vec<Value> = Vec::new();
        let mut anonymous = Map::new();
        for v in &s.volumes {
            match v.kind.as_str() {
                "bind" => {
                    let src = v.source.clone().ok_or_else(|| {
                        err(
                            "volumes",
                            format!("bind mount on {} has no source", v.target),
                        )
                    })?;
                    let create = v
                        .bind
                        .as_ref()
                        .and_then(|b| b.create_host_path)
                        .unwrap_or(false);
                    if create {
                        binds.push(bind_string(&src, v));
                    } else {
                        let mut m = json!({"Type": "bind", "Source": src, "Target": v.target, "ReadOnly": v.read_only});
                        if let Some(p) = v.bind.as_ref().and_then(|b| b.propagation.clone()) {
                            m["BindOptions"] = json!({"Propagation": p});
                        }
                        mounts.push(m);
                    }
                }
                "volume" => match &v.source {
                    Some(key) => {
                        let name = self.volume_name(key);
                        match v.volume.as_ref().and_then(|o| o.subpath.clone()) {
                            Some(sub) => mounts.push(json!({
                                "Type": "volume", "Source": name, "Target": v.target, "ReadOnly": v.read_only,
                                "VolumeOptions": {"NoCopy": v.volume.as_ref().is_some_and(|o| o.nocopy), "Subpath": sub},
                            })),
                            None => binds.push(bind_string(&name, v)),
                        }
                    }
                    None => match cx.anonymous_volumes.get(&v.target) {
                        Some(name) => binds.push(bind_string(name, v)),
                        None => {
                            anonymous.insert(v.target.clone(), json!({}));
                        }
                    },
                },
                "tmpfs" => {
                    let mut m =
                        json!({"Type": "tmpfs", "Target": v.target, "ReadOnly": v.read_only});
                    if let Some(t) = &v.tmpfs {
                        let mut o = Map::new();
                        if let Some(size) = t.size {
                            o.insert("SizeBytes".into(), json!(size));
                        }
                        if let Some(mode) = t.mode {
                            o.insert("Mode".into(), json!(mode));
                        }
                        m["TmpfsOptions"] = Value::Object(o);
                    }
                    mounts.push(m);
                }
                other => {
                    return Err(err(
                        "volumes",
                        format!("volume type {other:?} is not supported"),
                    ))
                }
            }
        }
        for (key, refs, defined, dir) in [
            ("secrets", &s.secrets, &self.secrets, "/run/secrets/"),
            ("configs", &s.configs, &self.configs, "/"),
        ] {
            for r in refs {
                let obj = defined.get(&r.source).cloned().unwrap_or_default();
                let file = obj.file.ok_or_else(|| {
                    err(
                        key,
                        format!("{:?}: only file-based {key} are supported", r.source),
                    )
                })?;
                let target = match &r.target {
                    Some(t) if t.starts_with('/') => t.clone(),
                    Some(t) => format!("{dir}{t}"),
                    None => format!("{dir}{}", r.source),
                };
                mounts.push(
                    json!({"Type": "bind", "Source": file, "Target": target, "ReadOnly": true}),
                );
            }
        }
        let mut tmpfs = Map::new();
        for t in &s.tmpfs {
            let (path, opts) = t.split_once(':').unwrap_or((t, ""));
            tmpfs.insert(path.to_string(), json!(opts));
        }

        let restart = match (
            &s.restart,
            s.deploy.as_ref().and_then(|d| d.restart_policy.as_ref()),
        ) {
            (Some(r), _) => {
                let (name, count) = match r.split_once(':') {
                    Some((n, c)) => (n.to_string(), c.parse::<i64>().unwrap_or(0)),
                    None => (r.clone(), 0),
                };
                let name = if name == "no" { String::new() } else { name };
                json!({"Name": name, "MaximumRetryCount": count})
            }
            (None, Some(p)) => {
                let name = match p.condition.as_deref() {
                    Some("none") => "",
                    Some("on-failure") => "on-failure",
                    _ => "always",
                };
                json!({"Name": name, "MaximumRetryCount": p.max_attempts.unwrap_or(0)})
            }
            (None, None) => json!({"Name": "", "MaximumRetryCount": 0}),
        };

        let limits = s
            .deploy
            .as_ref()
            .and_then(|d| d.resources.as_ref())
            .and_then(|r| r.limits.as_ref());
        let reservations = s
            .deploy
            .as_ref()
            .and_then(|d| d.resources.as_ref())
            .and_then(|r| r.reservations.as_ref());
        let memory = s.mem_limit.or(limits.and_then(|l| l.memory)).unwrap_or(0);
        let cpus = s.cpus.or(limits.and_then(|l| l.cpus)).unwrap_or(0.0);
        let reservation = s
            .mem_reservation
            .or(reservations.and_then(|r| r.memory))
            .unwrap_or(0);
        let pids = s.pids_limit.or(limits.and_then(|l| l.pids));

        let mut host = Map::new();
        host.insert("Binds".into(), strs(&binds));
        if !mounts.is_empty() {
            host.insert("Mounts".into(), json!(mounts));
        }
        host.insert("PortBindings".into(), Value::Object(bindings));
        host.insert("RestartPolicy".into(), restart);
        host.insert("CapAdd".into(), strs(&s.cap_add));
        host.insert("CapDrop".into(), strs(&s.cap_drop));
        host.insert("Dns".into(), strs(&s.dns));
        host.insert("DnsSearch".into(), strs(&s.dns_search));
        host.insert("DnsOptions".into(), strs(&s.dns_opt));
        host.insert("ExtraHosts".into(), strs(&s.extra_hosts));
        host.insert("Privileged".into(), json!(s.privileged.unwrap_or(false)));
        host.insert("ReadonlyRootfs".into(), json!(s.read_only.unwrap_or(false)));
        if let Some(shm) = s.shm_size {
            host.insert("ShmSize".into(), json!(shm));
        }
        if !tmpfs.is_empty() {
            host.insert("Tmpfs".into(), Value::Object(tmpfs));
        }
        host.insert(
            "Ulimits".into(),
            json!(s
                .ulimits
                .iter()
                .map(|(n, u)| json!({"Name": n, "Soft": u.soft, "Hard": u.hard}))
                .collect::<Vec<_>>()),
        );
        if let Some(i) = s.init {
            host.insert("Init".into(), json!(i));
        }
        host.insert("Memory".into(), json!(memory));
        host.insert("MemoryReservation".into(), json!(reservation));
        if let Some(sw) = s.memswap_limit {
            host.insert("MemorySwap".into(), json!(sw));
        }
        host.insert("NanoCpus".into(), json!((cpus * 1e9) as i64));
        host.insert("CpuShares".into(), json!(s.cpu_shares.unwrap_or(0)));
        host.insert("CpuPeriod".into(), json!(s.cpu_period.unwrap_or(0)));
        host.insert("CpuQuota".into(), json!(s.cpu_quota.unwrap_or(0)));
        host.insert(
            "CpusetCpus".into(),
            json!(s.cpuset.clone().unwrap_or_default()),
        );
        if let Some(p) = pids {
            host.insert("PidsLimit".into(), json!(p));
        }
        if let Some(l) = &s.logging {
            host.insert(
                "LogConfig".into(),
                json!({"Type": l.driver.clone().unwrap_or_default(), "Config": l.options}),
            );
        }
        if !s.sysctls.is_empty() {
            host.insert("Sysctls".into(), json!(s.sysctls));
        }
        host.insert("SecurityOpt".into(), strs(&s.security_opt));
        let devices: Vec<Value> = s
            .devices
            .iter()
            .map(|d| {
                let parts: Vec<&str> = d.split(':').collect();
                let (host_path, ctr, perms) = match parts.as_slice() {
                    [h] => (*h, *h, "rwm"),
                    [h, c] => (*h, *c, "rwm"),
                    [h, c, p, ..] => (*h, *c, *p),
                    [] => ("", "", "rwm"),
                };
                json!({"PathOnHost": host_path, "PathInContainer": ctr, "CgroupPermissions": perms})
            })
            .collect();
        host.insert("Devices".into(), json!(devices));
        for (field, value) in [("PidMode", &s.pid), ("IpcMode", &s.ipc)] {
            if let Some(v) = value {
                let v = match v.strip_prefix("service:") {
                    Some(svc) => format!("container:{}", container_of(svc, &field.to_lowercase())?),
                    None => v.clone(),
                };
                host.insert(field.into(), json!(v));
            }
        }
        host.insert("GroupAdd".into(), strs(&s.group_add));
        let mut links = Vec::new();
        for l in &s.links {
            let (svc, alias) = l.split_once(':').unwrap_or((l, l));
            links.push(format!("{}:{alias}", container_of(svc, "links")?));
        }
        for l in &s.external_links {
            let (c, alias) = l.split_once(':').unwrap_or((l, l));
            links.push(format!("{c}:{alias}"));
        }
        host.insert("Links".into(), json!(links));
        let mut volumes_from = Vec::new();
        for vf in &s.volumes_from {
            if let Some(c) = vf.strip_prefix("container:") {
                volumes_from.push(c.to_string());
            } else {
                let (svc, mode) = match vf.split_once(':') {
                    Some((a, m)) => (a, Some(m)),
                    None => (vf.as_str(), None),
                };
                let c = container_of(svc, "volumes_from")?;
                volumes_from.push(match mode {
                    Some(m) => format!("{c}:{m}"),
                    None => c,
                });
            }
        }
        host.insert("VolumesFrom".into(), json!(volumes_from));
        for (field, value) in [
            ("Runtime", &s.runtime),
            ("UsernsMode", &s.userns_mode),
            ("CgroupParent", &s.cgroup_parent),
            ("CgroupnsMode", &s.cgroup),
            ("UTSMode", &s.uts),
        ] {
            if let Some(v) = value {
                host.insert(field.into(), json!(v));
            }
        }
        if let Some(o) = s.oom_score_adj {
            host.insert("OomScoreAdj".into(), json!(o));
        }

        // Networks: network_mode, or the service's networks with their aliases.
        let mut networks = Vec::new();
        let mode = match &s.network_mode {
            Some(m) => match m.strip_prefix("service:") {
                Some(svc) => format!("container:{}", container_of(svc, "network_mode")?),
                None => m.clone(),
            },
            None => {
                for (key, cfg) in self.service_networks(s) {
                    let mut ep = Map::new();
                    let mut aliases: Vec<String> = Vec::new();
                    if !cx.oneoff {
                        aliases.push(cx.service.to_string());
                    }
                    if let Some(c) = &cfg {
                        aliases.extend(c.aliases.iter().cloned());
                        let mut ipam = Map::new();
                        if let Some(ip) = &c.ipv4_address {
                            ipam.insert("IPv4Address".into(), json!(ip));
                        }
                        if let Some(ip) = &c.ipv6_address {
                            ipam.insert("IPv6Address".into(), json!(ip));
                        }
                        if !c.link_local_ips.is_empty() {
                            ipam.insert("LinkLocalIPs".into(), json!(c.link_local_ips));
                        }
                        if !ipam.is_empty() {
                            ep.insert("IPAMConfig".into(), Value::Object(ipam));
                        }
                        if let Some(m) = &c.mac_address {
                            ep.insert("MacAddress".into(), json!(m));
                        }
                        if !c.driver_opts.is_empty() {
                            ep.insert("DriverOpts".into(), json!(c.driver_opts));
                        }
                        if let Some(p) = c.gw_priority {
                            ep.insert("GwPriority".into(), json!(p));
                        }
                    }
                    if !aliases.is_empty() {
                        ep.insert("Aliases".into(), json!(aliases));
                    }
                    networks.push((self.network_name(&key), Value::Object(ep)));
                }
                networks.first().map(|(n, _)| n.clone()).unwrap_or_default()
            }
        };
        host.insert("NetworkMode".into(), json!(mode));

        let mut body = Map::new();
        body.insert(
            "Hostname".into(),
            json!(s.hostname.clone().unwrap_or_default()),
        );
        body.insert(
            "Domainname".into(),
            json!(s.domainname.clone().unwrap_or_default()),
        );
        body.insert("User".into(), json!(s.user.clone().unwrap_or_default()));
        body.insert("AttachStdin".into(), json!(false));
        body.insert("AttachStdout".into(), json!(false));
        body.insert("AttachStderr".into(), json!(false));
        if !exposed_ports.is_empty() {
            body.insert("ExposedPorts".into(), Value::Object(exposed_ports));
        }
        body.insert("Tty".into(), json!(s.tty.unwrap_or(false)));
        body.insert("OpenStdin".into(), json!(s.stdin_open.unwrap_or(false)));
        body.insert("StdinOnce".into(), json!(false));
        body.insert(
            "Env".into(),
            json!(s
                .environment
                .iter()
                .map(|(k, v)| format!("{k}={}", v.clone().unwrap_or_default()))
                .collect::<Vec<_>>()),
        );
        if let Some(c) = &s.command {
            body.insert("Cmd".into(), json!(c));
        }
        if let Some(e) = &s.entrypoint {
            body.insert("Entrypoint".into(), json!(e));
        }
        if let Some(h) = &s.healthcheck {
            let mut hc = Map::new();
            let test = if h.disable.unwrap_or(false) {
                Some(vec!["NONE".to_string()])
            } else {
                h.test.clone()
            };
            if let Some(t) = test {
                hc.insert("Test".into(), json!(t));
            }
            for (k, d) in [
                ("Interval", h.interval),
                ("Timeout", h.timeout),
                ("StartPeriod", h.start_period),
                ("StartInterval", h.start_interval),
            ] {
                if let Some(d) = d {
                    hc.insert(k.into(), json!(d.0));
                }
            }
            if let Some(r) = h.retries {
                hc.insert("Retries".into(), json!(r));
            }
            body.insert("Healthcheck".into(), Value::Object(hc));
        }
        body.insert("Image".into(), json!(cx.image));
        if !anonymous.is_empty() {
            body.insert("Volumes".into(), Value::Object(anonymous));
        }
        body.insert(
            "WorkingDir".into(),
            json!(s.working_dir.clone().unwrap_or_default()),
        );
        body.insert("Labels".into(), json!(labels));
        if let Some(sig) = &s.stop_signal {
            body.insert("StopSignal".into(), json!(sig));
        }
        if let Some(g) = s.stop_grace_period {
            body.insert("StopTimeout".into(), json!(g.as_secs()));
        }
        if let Some(m) = &s.mac_address {
            body.insert("MacAddress".into(), json!(m));
        }
        body.insert("HostConfig".into(), Value::Object(host));
        let endpoints: Map<String, Value> = networks.iter().cloned().collect();
        body.insert(
            "NetworkingConfig".into(),
            json!({"EndpointsConfig": endpoints}),
        );
        Ok(CreateSpec {
            body: Value::Object(body),
            networks,
        })
    }
}
