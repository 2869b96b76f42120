//! `GET /containers/{id}/stats` in Docker's shape (`StatsResponse`): `cpu_stats` and
//! `precpu_stats`, `memory_stats` with the raw `memory.stat`, `blkio_stats`, `pids_stats`,
//! `networks` per interface, `read`/`preread`. A container that is not running gets
//! Docker's empty answer (zeros, Go's zero times).

use super::time::rfc3339;
use berth_engine::containers::stats::{BlkioEntry, CgroupStats, ContainerStats, CpuSample};
use serde_json::{json, Map, Value};

fn blkio_list(entries: &[BlkioEntry]) -> Value {
    if entries.is_empty() {
        return Value::Null;
    }
    Value::Array(
        entries
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect(),
    )
}

fn empty_cpu() -> Value {
    json!({
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

fn cpu_out(c: &CgroupStats) -> Value {
    let mut usage = Map::new();
    usage.insert("total_usage".into(), json!(c.cpu_usage_ns));
    if !c.per_cpu_ns.is_empty() {
        usage.insert("percpu_usage".into(), json!(c.per_cpu_ns));
    }
    usage.insert("usage_in_kernelmode".into(), json!(c.cpu_system_ns));
    usage.insert("usage_in_usermode".into(), json!(c.cpu_user_ns));
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": c.system_cpu_ns,
        "online_cpus": c.online_cpus,
        "throttling_data": {
            "periods": c.throttling.periods,
            "throttled_periods": c.throttling.throttled_periods,
            "throttled_time": c.throttling.throttled_time_ns,
        },
    })
}

fn precpu_out(p: &CpuSample) -> Value {
    json!({
        "cpu_usage": {"total_usage": p.usage_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "system_cpu_usage": p.system_ns,
        "online_cpus": p.online_cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

fn memory_out(c: &CgroupStats, host_memory: u64) -> Value {
    let mut m = Map::new();
    m.insert("usage".into(), json!(c.memory_usage));
    if let Some(max) = c.memory_max_usage {
        m.insert("max_usage".into(), json!(max));
    }
    m.insert("stats".into(), json!(c.memory_stat));
    if let Some(f) = c.memory_failcnt {
        m.insert("failcnt".into(), json!(f));
    }
    // Docker shows the host's memory for a container without a (smaller) limit.
    let limit = match c.memory_limit {
        Some(l) if host_memory == 0 || l < host_memory => l,
        _ => host_memory,
    };
    m.insert("limit".into(), json!(limit));
    Value::Object(m)
}

/// One stats message.
pub fn stats_out(s: &ContainerStats) -> Value {
    let name = format!("/{}", s.name);
    let Some(c) = &s.cgroup else {
        return json!({
            "name": name,
            "id": s.id,
            "read": rfc3339(None),
            "preread": rfc3339(None),
            "pids_stats": {},
            "blkio_stats": {
                "io_service_bytes_recursive": null, "io_serviced_recursive": null,
                "io_queue_recursive": null, "io_service_time_recursive": null,
                "io_wait_time_recursive": null, "io_merged_recursive": null,
                "io_time_recursive": null, "sectors_recursive": null,
            },
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": empty_cpu(),
            "precpu_stats": empty_cpu(),
            "memory_stats": {},
        });
    };
    let mut pids = Map::new();
    pids.insert("current".into(), json!(c.pids_current));
    if let Some(l) = c.pids_limit {
        pids.insert("limit".into(), json!(l));
    }
    let mut out = json!({
        "name": name,
        "id": s.id,
        "read": rfc3339(s.read),
        "preread": rfc3339(s.pre.map(|p| p.at)),
        "pids_stats": pids,
        "blkio_stats": {
            "io_service_bytes_recursive": blkio_list(&c.blkio),
            "io_serviced_recursive": blkio_list(&c.blkio_serviced),
            "io_queue_recursive": null, "io_service_time_recursive": null,
            "io_wait_time_recursive": null, "io_merged_recursive": null,
            "io_time_recursive": null, "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_out(c),
        "precpu_stats": s.pre.as_ref().map(precpu_out).unwrap_or_else(empty_cpu),
        "memory_stats": memory_out(c, s.host_memory),
    });
    if !s.networks.is_empty() {
        let nets: Map<String, Value> = s
            .networks
            .iter()
            .map(|(name, n)| {
                (
                    name.clone(),
                    json!({
                        "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets,
                        "rx_errors": n.rx_errors, "rx_dropped": n.rx_dropped,
                        "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets,
                        "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
                    }),
                )
            })
            .collect();
        out["networks"] = Value::Object(nets);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_engine::containers::stats::NetDevStats;

    #[test]
    fn a_stopped_container_gets_dockers_empty_stats() {
        let v = stats_out(&ContainerStats {
            id: "abc".into(),
            name: "web".into(),
            ..Default::default()
        });
        assert_eq!(v["name"], "/web");
        assert_eq!(v["read"], "0001-01-01T00:00:00Z");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert!(v["memory_stats"].as_object().unwrap().is_empty());
        assert!(v.get("networks").is_none());
    }

    #[test]
    fn a_running_container_carries_cgroup_figures_and_networks() {
        let now = chrono::Utc::now();
        let c = CgroupStats {
            cpu_usage_ns: 500,
            per_cpu_ns: vec![200, 300],
            system_cpu_ns: 10_000,
            online_cpus: 2,
            memory_usage: 4096,
            memory_limit: None,
            pids_current: 3,
            pids_limit: Some(50),
            blkio: vec![BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 7,
            }],
            ..Default::default()
        };
        let v = stats_out(&ContainerStats {
            id: "abc".into(),
            name: "web".into(),
            read: Some(now),
            cgroup: Some(c),
            pre: Some(CpuSample {
                at: now,
                usage_ns: 100,
                system_ns: 5000,
                online_cpus: 2,
            }),
            host_memory: 1 << 30,
            networks: vec![(
                "eth0".into(),
                NetDevStats {
                    rx_bytes: 9,
                    ..Default::default()
                },
            )],
        });
        assert_eq!(v["cpu_stats"]["cpu_usage"]["percpu_usage"][1], 300);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 100);
        assert_eq!(v["precpu_stats"]["system_cpu_usage"], 5000);
        assert_eq!(
            v["memory_stats"]["limit"],
            1u64 << 30,
            "host memory when unlimited"
        );
        assert_eq!(v["pids_stats"]["limit"], 50);
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"][0]["op"],
            "Read"
        );
        assert_eq!(v["networks"]["eth0"]["rx_bytes"], 9);
    }
}
