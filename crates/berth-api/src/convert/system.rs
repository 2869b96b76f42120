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
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": null, "AllowNondistributableArtifactsHostnames": null, "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"], "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}}, "Mirrors": null},
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
