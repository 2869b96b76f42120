//! `/version` and `/info` in Docker's shape.

use crate::version::{API_VERSION, MIN_API_VERSION};
use berth_engine::system::SystemFacts;
use serde_json::{json, Value};

pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

fn go_arch(a: &str) -> &str {
    match a {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn version_out(kernel: &str) -> Value {
    let arch = go_arch(std::env::consts::ARCH);
    json!({
        "Platform": {"Name": "berth"},
        "Components": [{
            "Name": "Engine",
            "Version": ENGINE_VERSION,
            "Details": {
                "ApiVersion": API_VERSION, "Arch": arch, "BuildTime": "", "Experimental": "false",
                "GitCommit": "", "GoVersion": "", "KernelVersion": kernel, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
            },
        }],
        "Version": ENGINE_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel,
        "BuildTime": "",
    })
}

pub fn info_out(f: &SystemFacts, now: chrono::DateTime<chrono::Utc>) -> Value {
    let runtimes: serde_json::Map<String, Value> = f
        .runtimes
        .iter()
        .map(|(n, p)| (n.clone(), json!({"path": p})))
        .collect();
    json!({
        "ID": "",
        "Containers": f.containers,
        "ContainersRunning": f.running,
        "ContainersPaused": f.paused,
        "ContainersStopped": f.stopped,
        "Images": f.images,
        "Driver": f.storage_driver,
        "DriverStatus": [["Backing Filesystem", f.backing_filesystem], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": f.log_drivers},
        "MemoryLimit": f.cgroup_support.memory_limit,
        "SwapLimit": f.cgroup_support.swap_limit,
        "CpuCfsPeriod": f.cgroup_support.cpu_cfs,
        "CpuCfsQuota": f.cgroup_support.cpu_cfs,
        "CPUShares": f.cgroup_support.cpu_shares,
        "CPUSet": f.cgroup_support.cpuset,
        "PidsLimit": f.cgroup_support.pids_limit,
        "IPv4Forwarding": f.ipv4_forwarding,
        "Debug": false,
        "NFd": 0,
        "OomKillDisable": f.cgroup_support.oom_kill_disable,
        "NGoroutines": 0,
        "SystemTime": now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": f.logging_driver,
        "CgroupDriver": f.cgroup_driver,
        "CgroupVersion": f.cgroup_version,
        "NEventsListener": 0,
        "KernelVersion": f.kernel_version,
        "OperatingSystem": f.operating_system,
        "OSVersion": "",
        "OSType": f.os_type,
        "Architecture": f.architecture,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": registry_config_out(&f.insecure_registries, &f.registry_mirrors),
        "NCPU": f.ncpu,
        "MemTotal": f.mem_total,
        "GenericResources": null,
        "DockerRootDir": f.data_root,
        "HttpProxy": std::env::var("HTTP_PROXY").unwrap_or_default(),
        "HttpsProxy": std::env::var("HTTPS_PROXY").unwrap_or_default(),
        "NoProxy": std::env::var("NO_PROXY").unwrap_or_default(),
        "Name": f.hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": super::system::ENGINE_VERSION,
        "Runtimes": runtimes,
        "DefaultRuntime": f.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": f.init_binary,
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "CDISpecDirs": [],
        "Warnings": if f.warnings.is_empty() { Value::Null } else { json!(f.warnings) },
    })
}

/// `Info.RegistryConfig` as dockerd fills it: loopback and the CIDRs of
/// `insecure-registries` in `InsecureRegistryCIDRs`, the named insecure registries (and
/// Docker Hub with its mirrors) in `IndexConfigs`.
pub fn registry_config_out(insecure: &[String], mirrors: &[String]) -> serde_json::Value {
    let mut cidrs = vec!["::1/128".to_string(), "127.0.0.0/8".to_string()];
    let mut indexes = serde_json::Map::new();
    for entry in insecure {
        let is_cidr = entry.split_once('/').is_some_and(|(ip, bits)| {
            ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok()
        });
        if is_cidr {
            if !cidrs.contains(entry) {
                cidrs.push(entry.clone());
            }
        } else {
            indexes.insert(
                entry.clone(),
                json!({"Name": entry, "Mirrors": [], "Secure": false, "Official": false}),
            );
        }
    }
    let mirrors: Vec<String> = mirrors
        .iter()
        .map(|m| format!("{}/", m.trim_end_matches('/')))
        .collect();
    indexes.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": mirrors, "Secure": true, "Official": true}),
    );
    json!({
        "AllowNondistributableArtifactsCIDRs": null,
        "AllowNondistributableArtifactsHostnames": null,
        "InsecureRegistryCIDRs": cidrs,
        "IndexConfigs": indexes,
        "Mirrors": mirrors,
    })
}
