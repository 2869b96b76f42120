//! `--sysctl`: which keys a container may set given its namespaces (the rules and messages
//! runc applies, checked here so the error comes at create time with the same words), and
//! the network sysctls Docker sets by default in a container's own network namespace.

use super::SpecError;
use crate::host::HostFacts;
use std::collections::BTreeMap;

/// Which of the namespaces that make sysctls safe a container has of its own (or shares with
/// another container rather than the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SysctlNamespaces {
    pub ipc: bool,
    pub net: bool,
    pub uts: bool,
}

const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Checks every key of `sysctls` against the container's namespaces.
pub(crate) fn validate(
    sysctls: &BTreeMap<String, String>,
    ns: SysctlNamespaces,
) -> Result<(), SpecError> {
    for raw in sysctls.keys() {
        // runc accepts `net/ipv4/ip_forward` for `net.ipv4.ip_forward`.
        let key = if raw.contains('/') && !raw.contains('.') {
            raw.replace('/', ".")
        } else {
            raw.clone()
        };
        if IPC_SYSCTLS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            if !ns.ipc {
                return Err(SpecError::SysctlHostIpc { key });
            }
            continue;
        }
        if key.starts_with("net.") {
            if !ns.net {
                return Err(SpecError::SysctlHostNetwork { key });
            }
            continue;
        }
        if ns.uts {
            match key.as_str() {
                "kernel.domainname" => continue,
                "kernel.hostname" => return Err(SpecError::SysctlHostname { key }),
                _ => {}
            }
        }
        return Err(SpecError::SysctlNotNamespaced { key });
    }
    Ok(())
}

/// Docker's defaults for a container with its own network namespace: unprivileged ICMP echo
/// sockets and binding to any port without `CAP_NET_BIND_SERVICE`. Only keys the host kernel
/// has, since the runtime fails on unknown ones.
pub(crate) fn network_defaults(facts: &HostFacts) -> BTreeMap<String, String> {
    [
        ("net.ipv4.ping_group_range", "0 2147483647"),
        ("net.ipv4.ip_unprivileged_port_start", "0"),
    ]
    .into_iter()
    .filter(|(k, _)| facts.sysctl_exists(k))
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(keys: &[&str]) -> BTreeMap<String, String> {
        keys.iter()
            .map(|k| (k.to_string(), "1".to_string()))
            .collect()
    }

    const PRIVATE: SysctlNamespaces = SysctlNamespaces {
        ipc: true,
        net: true,
        uts: true,
    };

    #[test]
    fn namespaced_sysctls_pass_with_private_namespaces() {
        validate(
            &map(&[
                "net.ipv4.ip_forward",
                "kernel.shmmax",
                "fs.mqueue.msg_max",
                "kernel.domainname",
            ]),
            PRIVATE,
        )
        .unwrap();
        validate(&map(&["net/ipv4/ip_forward"]), PRIVATE).unwrap();
    }

    #[test]
    fn net_sysctls_are_refused_in_the_host_network_namespace() {
        let ns = SysctlNamespaces {
            net: false,
            ..PRIVATE
        };
        let err = validate(&map(&["net.ipv4.ip_forward"]), ns).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"sysctl "net.ipv4.ip_forward" not allowed in host network namespace"#
        );
    }

    #[test]
    fn ipc_sysctls_are_refused_in_the_host_ipc_namespace() {
        let ns = SysctlNamespaces {
            ipc: false,
            ..PRIVATE
        };
        let err = validate(&map(&["kernel.msgmax"]), ns).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"sysctl "kernel.msgmax" is not allowed in the hosts ipc namespace"#
        );
        assert!(validate(&map(&["fs.mqueue.queues_max"]), ns).is_err());
    }

    #[test]
    fn global_sysctls_are_refused() {
        let err = validate(&map(&["vm.max_map_count"]), PRIVATE).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"sysctl "vm.max_map_count" is not in a separate kernel namespace"#
        );
        let err = validate(&map(&["kernel.hostname"]), PRIVATE).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field"#
        );
        let host_uts = SysctlNamespaces {
            uts: false,
            ..PRIVATE
        };
        assert!(matches!(
            validate(&map(&["kernel.domainname"]), host_uts),
            Err(SpecError::SysctlNotNamespaced { .. })
        ));
    }
}
