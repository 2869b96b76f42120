//! Containers on the wire: the create body in, inspect and `ps` rows out.
//!
//! Input is parsed with bollard-stubs' models (generated from Docker's swagger). Output is
//! built as JSON in Docker's field order with Docker's nulls, since clients print it as is.

use super::time::rfc3339;
use crate::error::{bad_request, ApiResult};
use crate::version::ApiVersion;
use berth_core::container::{
    Container, ContainerConfig, DeviceMapping, HealthConfig, HostConfig, LogConfig, MountPoint,
    MountSpec, MountType, PortBinding, Resources, RestartPolicy, RestartPolicyName, ThrottleDevice,
    Ulimit, WeightDevice,
};
use berth_core::network::{Attachment, EndpointRequest, DEFAULT_BRIDGE};
use berth_engine::containers::{ContainerListing, CreateContainer};
use bollard_stubs::models as wire;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

fn map_of(m: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    m.unwrap_or_default().into_iter().collect()
}

fn health_in(h: wire::HealthConfig) -> HealthConfig {
    HealthConfig {
        test: h.test.unwrap_or_default(),
        interval: h.interval.unwrap_or(0),
        timeout: h.timeout.unwrap_or(0),
        retries: h.retries.unwrap_or(0),
        start_period: h.start_period.unwrap_or(0),
        start_interval: h.start_interval.unwrap_or(0),
    }
}

fn restart_in(r: Option<wire::RestartPolicy>) -> RestartPolicy {
    let Some(r) = r else {
        return RestartPolicy::default();
    };
    let name = match r.name {
        Some(wire::RestartPolicyNameEnum::ALWAYS) => RestartPolicyName::Always,
        Some(wire::RestartPolicyNameEnum::UNLESS_STOPPED) => RestartPolicyName::UnlessStopped,
        Some(wire::RestartPolicyNameEnum::ON_FAILURE) => RestartPolicyName::OnFailure,
        _ => RestartPolicyName::No,
    };
    RestartPolicy {
        name,
        maximum_retry_count: r.maximum_retry_count.unwrap_or(0),
    }
}

fn throttle_in(v: Option<Vec<wire::ThrottleDevice>>) -> Vec<ThrottleDevice> {
    v.unwrap_or_default()
        .into_iter()
        .map(|t| ThrottleDevice {
            path: t.path.unwrap_or_default(),
            rate: t.rate.unwrap_or(0).max(0) as u64,
        })
        .collect()
}

fn mount_in(m: wire::Mount) -> ApiResult<MountSpec> {
    let typ = match m.typ {
        Some(wire::MountType::BIND) => MountType::Bind,
        Some(wire::MountType::VOLUME) | None => MountType::Volume,
        Some(wire::MountType::TMPFS) => MountType::Tmpfs,
        Some(other) => {
            return Err(bad_request(format!(
                "mount type {other:?} is not supported"
            )))
        }
    };
    let bind = m.bind_options.unwrap_or_default();
    let vol = m.volume_options.unwrap_or_default();
    let tmp = m.tmpfs_options.unwrap_or_default();
    let driver = vol.driver_config.unwrap_or_default();
    Ok(MountSpec {
        typ,
        source: m.source.unwrap_or_default(),
        target: m.target.unwrap_or_default(),
        read_only: m.read_only.unwrap_or(false),
        consistency: m.consistency.unwrap_or_default(),
        bind_propagation: bind.propagation.map(|p| p.to_string()).unwrap_or_default(),
        bind_create_mountpoint: bind.create_mountpoint.unwrap_or(false),
        volume_no_copy: vol.no_copy.unwrap_or(false),
        volume_labels: map_of(vol.labels),
        volume_driver: driver.name.unwrap_or_default(),
        volume_options: map_of(driver.options),
        tmpfs_size: tmp.size_bytes.unwrap_or(0),
        tmpfs_mode: tmp.mode.unwrap_or(0) as u32,
    })
}

/// The domain host config of a create or update request.
pub fn host_config_in(h: wire::HostConfig) -> ApiResult<HostConfig> {
    let resources = Resources {
        cgroup_parent: h.cgroup_parent.unwrap_or_default(),
        cpu_shares: h.cpu_shares.unwrap_or(0),
        memory: h.memory.unwrap_or(0),
        memory_reservation: h.memory_reservation.unwrap_or(0),
        memory_swap: h.memory_swap.unwrap_or(0),
        // -1 is "unset"; other values are checked by the engine.
        memory_swappiness: h.memory_swappiness.filter(|v| *v != -1),
        kernel_memory: 0,
        nano_cpus: h.nano_cpus.unwrap_or(0),
        cpu_period: h.cpu_period.unwrap_or(0),
        cpu_quota: h.cpu_quota.unwrap_or(0),
        cpu_realtime_period: h.cpu_realtime_period.unwrap_or(0),
        cpu_realtime_runtime: h.cpu_realtime_runtime.unwrap_or(0),
        cpuset_cpus: h.cpuset_cpus.unwrap_or_default(),
        cpuset_mems: h.cpuset_mems.unwrap_or_default(),
        blkio_weight: h.blkio_weight.unwrap_or(0),
        blkio_weight_device: h
            .blkio_weight_device
            .unwrap_or_default()
            .into_iter()
            .map(|w| WeightDevice {
                path: w.path.unwrap_or_default(),
                weight: w.weight.unwrap_or(0) as u16,
            })
            .collect(),
        blkio_device_read_bps: throttle_in(h.blkio_device_read_bps),
        blkio_device_write_bps: throttle_in(h.blkio_device_write_bps),
        blkio_device_read_iops: throttle_in(h.blkio_device_read_iops),
        blkio_device_write_iops: throttle_in(h.blkio_device_write_iops),
        devices: h
            .devices
            .unwrap_or_default()
            .into_iter()
            .map(|d| DeviceMapping {
                path_on_host: d.path_on_host.unwrap_or_default(),
                path_in_container: d.path_in_container.unwrap_or_default(),
                cgroup_permissions: d.cgroup_permissions.unwrap_or_default(),
            })
            .collect(),
        device_cgroup_rules: h.device_cgroup_rules.unwrap_or_default(),
        oom_kill_disable: h.oom_kill_disable,
        // 0 and below mean no limit, as in Docker (unlimited, shown as null).
        pids_limit: h.pids_limit.filter(|p| *p > 0),
        ulimits: h
            .ulimits
            .unwrap_or_default()
            .into_iter()
            .map(|u| Ulimit {
                name: u.name.unwrap_or_default(),
                soft: u.soft.unwrap_or(0),
                hard: u.hard.unwrap_or(0),
            })
            .collect(),
    };
    let mut port_bindings = BTreeMap::new();
    for (port, binds) in h.port_bindings.unwrap_or_default() {
        let port = if port.contains('/') {
            port
        } else {
            format!("{port}/tcp")
        };
        let binds = binds
            .unwrap_or_default()
            .into_iter()
            .map(|b| PortBinding {
                host_ip: b.host_ip.unwrap_or_default(),
                host_port: b.host_port.unwrap_or_default(),
            })
            .collect();
        port_bindings.insert(port, binds);
    }
    let mounts = h
        .mounts
        .unwrap_or_default()
        .into_iter()
        .map(mount_in)
        .collect::<ApiResult<Vec<_>>>()?;
    let log = h.log_config.unwrap_or_default();
    let console_size = h
        .console_size
        .filter(|c| c.len() == 2 && (c[0] > 0 || c[1] > 0))
        .map(|c| [c[0] as u16, c[1] as u16]);
    Ok(HostConfig {
        binds: h.binds.unwrap_or_default(),
        container_id_file: h.container_id_file.unwrap_or_default(),
        log_config: LogConfig {
            driver: log.typ.unwrap_or_default(),
            options: map_of(log.config),
        },
        network_mode: h.network_mode.unwrap_or_default(),
        port_bindings,
        restart_policy: restart_in(h.restart_policy),
        auto_remove: h.auto_remove.unwrap_or(false),
        volume_driver: h.volume_driver.unwrap_or_default(),
        volumes_from: h.volumes_from.unwrap_or_default(),
        cap_add: h.cap_add.unwrap_or_default(),
        cap_drop: h.cap_drop.unwrap_or_default(),
        cgroupns_mode: h.cgroupns_mode.map(|m| m.to_string()).unwrap_or_default(),
        dns: h.dns.unwrap_or_default(),
        dns_options: h.dns_options.unwrap_or_default(),
        dns_search: h.dns_search.unwrap_or_default(),
        extra_hosts: h.extra_hosts.unwrap_or_default(),
        group_add: h.group_add.unwrap_or_default(),
        ipc_mode: h.ipc_mode.unwrap_or_default(),
        cgroup: h.cgroup.unwrap_or_default(),
        links: h.links.unwrap_or_default(),
        oom_score_adj: h.oom_score_adj.unwrap_or(0),
        pid_mode: h.pid_mode.unwrap_or_default(),
        privileged: h.privileged.unwrap_or(false),
        publish_all_ports: h.publish_all_ports.unwrap_or(false),
        readonly_rootfs: h.readonly_rootfs.unwrap_or(false),
        security_opt: h.security_opt.unwrap_or_default(),
        storage_opt: map_of(h.storage_opt),
        tmpfs: map_of(h.tmpfs),
        uts_mode: h.uts_mode.unwrap_or_default(),
        userns_mode: h.userns_mode.unwrap_or_default(),
        shm_size: h.shm_size.unwrap_or(0),
        sysctls: map_of(h.sysctls),
        runtime: h.runtime.unwrap_or_default(),
        isolation: h.isolation.map(|i| i.to_string()).unwrap_or_default(),
        resources,
        mounts,
        masked_paths: h.masked_paths,
        readonly_paths: h.readonly_paths,
        init: h.init,
        console_size,
    })
}

/// `POST /containers/create` body to the domain command.
pub fn create_in(
    body: wire::ContainerCreateBody,
    name: String,
    platform: String,
) -> ApiResult<CreateContainer> {
    let host_config = host_config_in(body.host_config.unwrap_or_default())?;
    let config = ContainerConfig {
        hostname: body.hostname.unwrap_or_default(),
        domainname: body.domainname.unwrap_or_default(),
        user: body.user.unwrap_or_default(),
        attach_stdin: body.attach_stdin.unwrap_or(false),
        attach_stdout: body.attach_stdout.unwrap_or(false),
        attach_stderr: body.attach_stderr.unwrap_or(false),
        exposed_ports: body
            .exposed_ports
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                if p.contains('/') {
                    p
                } else {
                    format!("{p}/tcp")
                }
            })
            .collect(),
        tty: body.tty.unwrap_or(false),
        open_stdin: body.open_stdin.unwrap_or(false),
        stdin_once: body.stdin_once.unwrap_or(false),
        env: body.env.unwrap_or_default(),
        cmd: body.cmd.filter(|c| !c.is_empty()),
        healthcheck: body.healthcheck.map(health_in),
        args_escaped: body.args_escaped.unwrap_or(false),
        image: body.image.unwrap_or_default(),
        volumes: body.volumes.unwrap_or_default().into_iter().collect(),
        working_dir: body.working_dir.unwrap_or_default(),
        entrypoint: body.entrypoint,
        network_disabled: body.network_disabled.unwrap_or(false),
        mac_address: String::new(),
        on_build: body.on_build.unwrap_or_default(),
        labels: map_of(body.labels),
        stop_signal: body.stop_signal.filter(|s| !s.is_empty()),
        stop_timeout: body.stop_timeout,
        shell: body.shell,
    };
    let endpoints = body
        .networking_config
        .and_then(|n| n.endpoints_config)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, endpoint_request_in(v)))
        .collect();
    Ok(CreateContainer {
        name,
        config,
        host_config,
        platform,
        endpoints,
    })
}

/// What a client asks for on one network (`EndpointsConfig` entries, `network connect`).
pub fn endpoint_request_in(e: wire::EndpointSettings) -> EndpointRequest {
    EndpointRequest {
        aliases: e.aliases.unwrap_or_default(),
        ipv4_address: e
            .ipam_config
            .and_then(|i| i.ipv4_address)
            .unwrap_or_default(),
        mac_address: e.mac_address.unwrap_or_default(),
        links: e.links.unwrap_or_default(),
    }
}

fn list_or_null<T: serde::Serialize>(v: &[T]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

fn ports_map(exposed: &std::collections::BTreeSet<String>) -> Value {
    let m: serde_json::Map<String, Value> =
        exposed.iter().map(|p| (p.clone(), json!({}))).collect();
    Value::Object(m)
}

fn health_out(h: &HealthConfig) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("Test".into(), json!(h.test));
    for (k, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
        ("Retries", h.retries),
    ] {
        if v != 0 {
            m.insert(k.into(), json!(v));
        }
    }
    Value::Object(m)
}

/// Docker's `Config` object.
pub fn config_out(c: &ContainerConfig) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("Hostname".into(), json!(c.hostname));
    m.insert("Domainname".into(), json!(c.domainname));
    m.insert("User".into(), json!(c.user));
    m.insert("AttachStdin".into(), json!(c.attach_stdin));
    m.insert("AttachStdout".into(), json!(c.attach_stdout));
    m.insert("AttachStderr".into(), json!(c.attach_stderr));
    if !c.exposed_ports.is_empty() {
        m.insert("ExposedPorts".into(), ports_map(&c.exposed_ports));
    }
    m.insert("Tty".into(), json!(c.tty));
    m.insert("OpenStdin".into(), json!(c.open_stdin));
    m.insert("StdinOnce".into(), json!(c.stdin_once));
    m.insert("Env".into(), list_or_null(&c.env));
    m.insert(
        "Cmd".into(),
        c.cmd.as_ref().map(|v| json!(v)).unwrap_or(Value::Null),
    );
    if let Some(h) = &c.healthcheck {
        m.insert("Healthcheck".into(), health_out(h));
    }
    if c.args_escaped {
        m.insert("ArgsEscaped".into(), json!(true));
    }
    m.insert("Image".into(), json!(c.image));
    m.insert(
        "Volumes".into(),
        if c.volumes.is_empty() {
            Value::Null
        } else {
            ports_map(&c.volumes)
        },
    );
    m.insert("WorkingDir".into(), json!(c.working_dir));
    m.insert(
        "Entrypoint".into(),
        c.entrypoint
            .as_ref()
            .filter(|e| !e.is_empty())
            .map(|v| json!(v))
            .unwrap_or(Value::Null),
    );
    m.insert("OnBuild".into(), list_or_null(&c.on_build));
    m.insert("Labels".into(), json!(c.labels));
    if let Some(s) = &c.stop_signal {
        m.insert("StopSignal".into(), json!(s));
    }
    if let Some(t) = c.stop_timeout {
        m.insert("StopTimeout".into(), json!(t));
    }
    if let Some(s) = &c.shell {
        m.insert("Shell".into(), json!(s));
    }
    Value::Object(m)
}

fn throttle_out(v: &[ThrottleDevice]) -> Value {
    json!(v
        .iter()
        .map(|t| json!({"Path": t.path, "Rate": t.rate}))
        .collect::<Vec<_>>())
}

fn mount_spec_out(m: &MountSpec) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("Type".into(), json!(mount_type(m.typ)));
    if !m.source.is_empty() {
        o.insert("Source".into(), json!(m.source));
    }
    o.insert("Target".into(), json!(m.target));
    if m.read_only {
        o.insert("ReadOnly".into(), json!(true));
    }
    if m.typ == MountType::Bind && (!m.bind_propagation.is_empty() || m.bind_create_mountpoint) {
        o.insert(
            "BindOptions".into(),
            json!({"Propagation": m.bind_propagation}),
        );
    }
    if m.typ == MountType::Volume
        && (m.volume_no_copy || !m.volume_labels.is_empty() || !m.volume_driver.is_empty())
    {
        o.insert("VolumeOptions".into(), json!({"NoCopy": m.volume_no_copy, "Labels": m.volume_labels, "DriverConfig": {"Name": m.volume_driver, "Options": m.volume_options}}));
    }
    if m.typ == MountType::Tmpfs && (m.tmpfs_size != 0 || m.tmpfs_mode != 0) {
        o.insert(
            "TmpfsOptions".into(),
            json!({"SizeBytes": m.tmpfs_size, "Mode": m.tmpfs_mode}),
        );
    }
    Value::Object(o)
}

fn mount_type(t: MountType) -> &'static str {
    match t {
        MountType::Bind => "bind",
        MountType::Volume => "volume",
        MountType::Tmpfs => "tmpfs",
    }
}

fn port_bindings_out(pb: &BTreeMap<String, Vec<PortBinding>>) -> Value {
    let m: serde_json::Map<String, Value> = pb
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!(v
                    .iter()
                    .map(|b| json!({"HostIp": b.host_ip, "HostPort": b.host_port}))
                    .collect::<Vec<_>>()),
            )
        })
        .collect();
    Value::Object(m)
}

/// Docker's `HostConfig` object as inspect shows it.
pub fn host_config_out(h: &HostConfig) -> Value {
    let r = &h.resources;
    json!({
        "Binds": list_or_null(&h.binds),
        "ContainerIDFile": h.container_id_file,
        "LogConfig": {"Type": h.log_config.driver, "Config": h.log_config.options},
        "NetworkMode": h.network_mode,
        "PortBindings": port_bindings_out(&h.port_bindings),
        "RestartPolicy": {"Name": h.restart_policy.name.as_str(), "MaximumRetryCount": h.restart_policy.maximum_retry_count},
        "AutoRemove": h.auto_remove,
        "VolumeDriver": h.volume_driver,
        "VolumesFrom": list_or_null(&h.volumes_from),
        "ConsoleSize": h.console_size.map(|c| json!([c[0], c[1]])).unwrap_or(json!([0, 0])),
        "CapAdd": list_or_null(&h.cap_add),
        "CapDrop": list_or_null(&h.cap_drop),
        "CgroupnsMode": h.cgroupns_mode,
        "Dns": json!(h.dns),
        "DnsOptions": json!(h.dns_options),
        "DnsSearch": json!(h.dns_search),
        "ExtraHosts": list_or_null(&h.extra_hosts),
        "GroupAdd": list_or_null(&h.group_add),
        "IpcMode": h.ipc_mode,
        "Cgroup": h.cgroup,
        "Links": list_or_null(&h.links),
        "OomScoreAdj": h.oom_score_adj,
        "PidMode": h.pid_mode,
        "Privileged": h.privileged,
        "PublishAllPorts": h.publish_all_ports,
        "ReadonlyRootfs": h.readonly_rootfs,
        "SecurityOpt": list_or_null(&h.security_opt),
        "Tmpfs": if h.tmpfs.is_empty() { Value::Null } else { json!(h.tmpfs) },
        "UTSMode": h.uts_mode,
        "UsernsMode": h.userns_mode,
        "ShmSize": h.shm_size,
        "Sysctls": if h.sysctls.is_empty() { Value::Null } else { json!(h.sysctls) },
        "Runtime": h.runtime,
        "Isolation": h.isolation,
        "CpuShares": r.cpu_shares,
        "Memory": r.memory,
        "NanoCpus": r.nano_cpus,
        "CgroupParent": r.cgroup_parent,
        "BlkioWeight": r.blkio_weight,
        "BlkioWeightDevice": json!(r.blkio_weight_device.iter().map(|w| json!({"Path": w.path, "Weight": w.weight})).collect::<Vec<_>>()),
        "BlkioDeviceReadBps": throttle_out(&r.blkio_device_read_bps),
        "BlkioDeviceWriteBps": throttle_out(&r.blkio_device_write_bps),
        "BlkioDeviceReadIOps": throttle_out(&r.blkio_device_read_iops),
        "BlkioDeviceWriteIOps": throttle_out(&r.blkio_device_write_iops),
        "CpuPeriod": r.cpu_period,
        "CpuQuota": r.cpu_quota,
        "CpuRealtimePeriod": r.cpu_realtime_period,
        "CpuRealtimeRuntime": r.cpu_realtime_runtime,
        "CpusetCpus": r.cpuset_cpus,
        "CpusetMems": r.cpuset_mems,
        "Devices": json!(r.devices.iter().map(|d| json!({"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container, "CgroupPermissions": d.cgroup_permissions})).collect::<Vec<_>>()),
        "DeviceCgroupRules": list_or_null(&r.device_cgroup_rules),
        "DeviceRequests": Value::Null,
        "MemoryReservation": r.memory_reservation,
        "MemorySwap": r.memory_swap,
        "MemorySwappiness": r.memory_swappiness,
        "OomKillDisable": r.oom_kill_disable,
        "PidsLimit": r.pids_limit,
        "Ulimits": json!(r.ulimits.iter().map(|u| json!({"Name": u.name, "Hard": u.hard, "Soft": u.soft})).collect::<Vec<_>>()),
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "Mounts": if h.mounts.is_empty() { Value::Null } else { json!(h.mounts.iter().map(mount_spec_out).collect::<Vec<_>>()) },
        "Init": h.init,
        "MaskedPaths": h.masked_paths,
        "ReadonlyPaths": h.readonly_paths,
    })
}

pub fn mount_point_out(m: &MountPoint) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("Type".into(), json!(mount_type(m.typ)));
    if !m.name.is_empty() {
        o.insert("Name".into(), json!(m.name));
    }
    o.insert("Source".into(), json!(m.source));
    o.insert("Destination".into(), json!(m.destination));
    if !m.driver.is_empty() {
        o.insert("Driver".into(), json!(m.driver));
    }
    o.insert("Mode".into(), json!(m.mode));
    o.insert("RW".into(), json!(m.rw));
    o.insert("Propagation".into(), json!(m.propagation));
    Value::Object(o)
}

fn health_state_out(c: &Container) -> Option<Value> {
    let h = c.state.health.as_ref()?;
    Some(json!({
        "Status": h.status,
        "FailingStreak": h.failing_streak,
        "Log": h.log.iter().map(|l| json!({"Start": rfc3339(l.start), "End": rfc3339(l.end), "ExitCode": l.exit_code, "Output": l.output})).collect::<Vec<_>>(),
    }))
}

/// One `NetworkSettings.Networks` entry (Docker's `EndpointSettings`).
fn endpoint_out(a: &Attachment) -> Value {
    let ep = a.endpoint.as_ref();
    let field = |f: fn(&berth_core::network::Endpoint) -> &str| ep.map(f).unwrap_or("");
    let ipam = if a.request.ipv4_address.is_empty() {
        Value::Null
    } else {
        json!({ "IPv4Address": a.request.ipv4_address })
    };
    let mac = ep
        .map(|e| e.mac.as_str())
        .unwrap_or(a.request.mac_address.as_str());
    json!({
        "IPAMConfig": ipam,
        "Links": list_or_null(&a.request.links),
        "Aliases": list_or_null(&a.request.aliases),
        "MacAddress": mac,
        "DriverOpts": null,
        "GwPriority": 0,
        "NetworkID": a.network_id,
        "EndpointID": field(|e| &e.endpoint_id),
        "Gateway": field(|e| &e.gateway),
        "IPAddress": field(|e| &e.ip),
        "IPPrefixLen": ep.map(|e| e.prefix_len).unwrap_or(0),
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": ep.map(|e| list_or_null(&e.dns_names)).unwrap_or(Value::Null),
    })
}

/// `NetworkSettings.Networks`: one endpoint per network the container is on.
pub fn networks_out(c: &Container) -> Value {
    let mut networks = serde_json::Map::new();
    for (name, a) in &c.networks.attachments {
        networks.insert(name.clone(), endpoint_out(a));
    }
    Value::Object(networks)
}

/// `NetworkSettings.Ports`: every exposed port (null when not published) and every
/// published one with its host bindings, while the container runs.
fn ports_out(c: &Container) -> Value {
    let mut ports = serde_json::Map::new();
    if !c.state.is_running() || c.networks.sandbox_key.is_empty() {
        return Value::Object(ports);
    }
    for p in &c.config.exposed_ports {
        ports.insert(p.clone(), Value::Null);
    }
    for p in &c.networks.ports {
        let entry = ports
            .entry(p.container_port.clone())
            .or_insert_with(|| json!([]));
        if !entry.is_array() {
            *entry = json!([]);
        }
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
        }
    }
    Value::Object(ports)
}

/// `NetworkSettings`: the sandbox, ports, the default bridge's endpoint in the legacy
/// top-level fields, and every network's endpoint.
pub fn network_settings_out(c: &Container) -> Value {
    let n = &c.networks;
    let bridge = n.get(DEFAULT_BRIDGE).and_then(|a| a.endpoint.as_ref());
    let f = |g: fn(&berth_core::network::Endpoint) -> &str| bridge.map(g).unwrap_or("");
    json!({
        "Bridge": "",
        "SandboxID": n.sandbox_id,
        "SandboxKey": n.sandbox_key,
        "Ports": ports_out(c),
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": f(|e| &e.endpoint_id),
        "Gateway": f(|e| &e.gateway),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": f(|e| &e.ip),
        "IPPrefixLen": bridge.map(|e| e.prefix_len).unwrap_or(0),
        "IPv6Gateway": "",
        "MacAddress": f(|e| &e.mac),
        "Networks": networks_out(c),
    })
}

/// `GET /containers/{id}/json`.
pub fn inspect_out(
    c: &Container,
    sizes: Option<(i64, i64)>,
    graph: BTreeMap<String, String>,
    _v: ApiVersion,
) -> Value {
    let mut state = json!({
        "Status": c.state.status.as_str(),
        "Running": c.state.is_running(),
        "Paused": c.state.status == berth_core::container::Status::Paused,
        "Restarting": c.state.status == berth_core::container::Status::Restarting,
        "OOMKilled": c.state.oom_killed,
        "Dead": c.state.dead,
        "Pid": c.state.pid,
        "ExitCode": c.state.exit_code,
        "Error": c.state.error,
        "StartedAt": rfc3339(c.state.started_at),
        "FinishedAt": rfc3339(c.state.finished_at),
    });
    if let Some(h) = health_state_out(c) {
        state["Health"] = h;
    }
    let mut out = json!({
        "Id": c.id,
        "Created": rfc3339(c.created),
        "Path": c.path,
        "Args": c.args,
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": c.resolv_conf_path,
        "HostnamePath": c.hostname_path,
        "HostsPath": c.hosts_path,
        "LogPath": c.log_path,
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": c.driver,
        "Platform": c.platform,
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": list_or_null(&c.exec_ids),
        "HostConfig": host_config_out(&c.host_config),
        "GraphDriver": {"Data": graph, "Name": c.driver},
    });
    if let Some((rw, root)) = sizes {
        out["SizeRw"] = json!(rw);
        out["SizeRootFs"] = json!(root);
    }
    out["Mounts"] = json!(c.mounts.iter().map(mount_point_out).collect::<Vec<_>>());
    out["Config"] = config_out(&c.config);
    out["NetworkSettings"] = network_settings_out(c);
    out
}

/// Docker's `Command` column source: the path and the arguments, those with spaces in
/// single quotes.
pub fn command_line(c: &Container) -> String {
    let mut parts = vec![c.path.clone()];
    parts.extend(c.args.iter().map(|a| {
        if a.contains(' ') {
            format!("'{a}'")
        } else {
            a.clone()
        }
    }));
    parts.join(" ")
}

/// A published or exposed port in a `ps` row.
#[derive(serde::Serialize)]
pub struct PortOut<'a> {
    #[serde(rename = "IP", skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    #[serde(rename = "PrivatePort")]
    private_port: u16,
    #[serde(rename = "PublicPort", skip_serializing_if = "Option::is_none")]
    public_port: Option<u16>,
    #[serde(rename = "Type")]
    typ: &'a str,
}

/// One `GET /containers/json` row, serialised straight from the container (no
/// intermediate JSON tree: `ps` over hundreds of containers stays cheap).
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryOut<'a> {
    id: &'a str,
    names: [String; 1],
    image: String,
    #[serde(rename = "ImageID")]
    image_id: &'a str,
    command: String,
    created: i64,
    ports: Vec<PortOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_root_fs: Option<i64>,
    labels: &'a BTreeMap<String, String>,
    state: &'static str,
    status: String,
    host_config: HostConfigSummary<'a>,
    network_settings: Value,
    mounts: Vec<Value>,
}

#[derive(serde::Serialize)]
pub struct HostConfigSummary<'a> {
    #[serde(rename = "NetworkMode")]
    network_mode: &'a str,
}

pub fn summary_out<'a>(
    l: &'a ContainerListing,
    image_name: String,
    now: chrono::DateTime<chrono::Utc>,
) -> SummaryOut<'a> {
    let c = &l.container;
    let running = c.state.is_running();
    let mut ports = Vec::new();
    let published = if running {
        c.networks.ports.as_slice()
    } else {
        &[]
    };
    for p in published {
        let (num, proto) = p
            .container_port
            .split_once('/')
            .unwrap_or((&p.container_port, "tcp"));
        ports.push(PortOut {
            ip: Some(&p.host_ip),
            private_port: num.parse().unwrap_or(0),
            public_port: Some(p.host_port),
            typ: proto,
        });
    }
    for port in &c.config.exposed_ports {
        if published.iter().any(|p| &p.container_port == port) {
            continue;
        }
        let (num, proto) = port.split_once('/').unwrap_or((port, "tcp"));
        ports.push(PortOut {
            ip: None,
            private_port: num.parse().unwrap_or(0),
            public_port: None,
            typ: proto,
        });
    }
    SummaryOut {
        id: &c.id,
        names: [format!("/{}", c.name)],
        image: image_name,
        image_id: &c.image_id,
        command: command_line(c),
        created: c.created.map(|t| t.timestamp()).unwrap_or(0),
        ports,
        size_rw: l.size_rw,
        size_root_fs: l.size_root_fs,
        labels: &c.config.labels,
        state: c.state.status.as_str(),
        status: berth_core::container::describe_status(&c.state, now),
        host_config: HostConfigSummary {
            network_mode: &c.host_config.network_mode,
        },
        network_settings: json!({ "Networks": networks_out(c) }),
        mounts: c.mounts.iter().map(mount_point_out).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_cli_create_body_parses() {
        // What docker 28's CLI sends for `docker run --rm -p 8080:80 -e A=1 busybox echo hi`.
        let body = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"ExposedPorts":{"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=1"],"Cmd":["echo","hi"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}"#;
        let parsed: wire::ContainerCreateBody = serde_json::from_str(body).unwrap();
        let req = create_in(parsed, "web".into(), String::new()).unwrap();
        assert_eq!(req.config.cmd.unwrap(), vec!["echo", "hi"]);
        assert!(req.host_config.auto_remove);
        assert_eq!(req.host_config.port_bindings["80/tcp"][0].host_port, "8080");
        assert_eq!(req.host_config.resources.memory_swappiness, None);
        assert_eq!(req.host_config.resources.pids_limit, None);
        assert!(req.config.exposed_ports.contains("80/tcp"));
    }

    #[test]
    fn inspect_keeps_dockers_nulls_and_name_slash() {
        let mut c = Container {
            name: "web".into(),
            ..Default::default()
        };
        c.config.cmd = Some(vec!["sh".into()]);
        let v = inspect_out(&c, None, BTreeMap::new(), ApiVersion::current());
        assert_eq!(v["Name"], "/web");
        assert!(v["ExecIDs"].is_null());
        assert!(v["Config"]["Entrypoint"].is_null());
        assert_eq!(v["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "Id");
        assert_eq!(keys.last().unwrap().as_str(), "NetworkSettings");
    }
}
