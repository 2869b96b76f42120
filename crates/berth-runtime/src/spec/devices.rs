//! Devices: the device cgroup rules Docker allows by default, `--device`,
//! `--device-cgroup-rule`, and every host device under `--privileged`.
//!
//! The default device nodes themselves (`null`, `zero`, `full`, `random`, `urandom`, `tty`,
//! `console` with a terminal, and `ptmx` from the container's devpts) are created by the
//! runtime, as the runtime spec requires; the spec only lists extra devices.

use super::SpecError;
use berth_core::container::HostConfig;
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access(access.to_string());
    if let Some(t) = typ {
        b = b.typ(t);
    }
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().expect("every device rule field is optional")
}

/// Docker's default device cgroup: deny everything, then allow the standard character
/// devices (`null`, `zero`, `full`, `random`, `urandom`, `tty`, `console`) and refuse
/// `/dev/fuse`. The runtime appends its own defaults (ptys, `ptmx`, `tun`, mknod of any).
pub(crate) fn default_rules() -> Vec<LinuxDeviceCgroup> {
    let c = Some(LinuxDeviceType::C);
    vec![
        rule(false, None, None, None, "rwm"),
        rule(true, c, Some(1), Some(5), "rwm"),
        rule(true, c, Some(1), Some(3), "rwm"),
        rule(true, c, Some(1), Some(9), "rwm"),
        rule(true, c, Some(1), Some(8), "rwm"),
        rule(true, c, Some(5), Some(0), "rwm"),
        rule(true, c, Some(5), Some(1), "rwm"),
        rule(false, c, Some(10), Some(229), "rwm"),
    ]
}

/// `c 42:* rmw`, `b *:* m`, `a *:* rwm` → a device cgroup allow rule.
pub(crate) fn parse_cgroup_rule(text: &str) -> Result<LinuxDeviceCgroup, SpecError> {
    let bad = || SpecError::InvalidDeviceCgroupRule {
        rule: text.to_string(),
    };
    let parts: Vec<&str> = text.split(' ').collect();
    let [typ, numbers, access] = parts.as_slice() else {
        return Err(bad());
    };
    let typ = match *typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |s: &str| -> Result<Option<i64>, SpecError> {
        if s == "*" {
            Ok(None)
        } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map(Some).map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (major, minor) = (number(major)?, number(minor)?);
    if access.is_empty() || access.len() > 3 || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(bad());
    }
    Ok(rule(true, Some(typ), major, minor, access))
}

fn device_from(container_path: PathBuf, meta: &std::fs::Metadata) -> Option<LinuxDevice> {
    let file_type = meta.file_type();
    let typ = if file_type.is_char_device() {
        LinuxDeviceType::C
    } else if file_type.is_block_device() {
        LinuxDeviceType::B
    } else {
        return None;
    };
    let rdev = meta.rdev();
    LinuxDeviceBuilder::default()
        .path(container_path)
        .typ(typ)
        .major(i64::from(rustix::fs::major(rdev)))
        .minor(i64::from(rustix::fs::minor(rdev)))
        .file_mode(meta.mode() & 0o7777)
        .uid(meta.uid())
        .gid(meta.gid())
        .build()
        .ok()
}

fn allow_device(device: &LinuxDevice, permissions: &str) -> LinuxDeviceCgroup {
    rule(
        true,
        Some(device.typ()),
        Some(device.major()),
        Some(device.minor()),
        permissions,
    )
}

/// `--device HOST[:CONTAINER[:PERMS]]`: one device node, or every device under a directory.
pub(crate) fn from_path(
    host_path: &str,
    container_path: &str,
    permissions: &str,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    let permissions = if permissions.is_empty() {
        "rwm"
    } else {
        permissions
    };
    if !permissions.chars().all(|c| "rwm".contains(c)) || permissions.len() > 3 {
        return Err(SpecError::InvalidDevicePermissions {
            permissions: permissions.to_string(),
        });
    }
    let container_path = if container_path.is_empty() {
        host_path
    } else {
        container_path
    };
    let gathering = |reason: String| SpecError::Device {
        path: host_path.to_string(),
        reason,
    };
    let meta = std::fs::metadata(host_path).map_err(|e| gathering(e.to_string()))?;
    if let Some(device) = device_from(PathBuf::from(container_path), &meta) {
        let rule = allow_device(&device, permissions);
        return Ok((vec![device], vec![rule]));
    }
    if meta.is_dir() {
        let resolved = std::fs::canonicalize(host_path).map_err(|e| gathering(e.to_string()))?;
        let mut devices = Vec::new();
        walk_devices(&resolved, &mut |path, meta| {
            let rel = path.strip_prefix(&resolved).unwrap_or(path);
            if let Some(d) = device_from(Path::new(container_path).join(rel), meta) {
                devices.push(d);
            }
        });
        if !devices.is_empty() {
            let rules = devices
                .iter()
                .map(|d| allow_device(d, permissions))
                .collect();
            return Ok((devices, rules));
        }
    }
    Err(gathering("not a device node".to_string()))
}

/// Calls `f` for every non-directory entry below `dir` (symlinks not followed), skipping
/// unreadable entries.
fn walk_devices(dir: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk_devices(&path, f);
        } else {
            f(&path, &meta);
        }
    }
}

/// Every device node under `dev_root` (the host's `/dev`), as `--privileged` gets them,
/// minus what the runtime sets up itself (`pts`, `shm`, `mqueue`, `console`, ...).
pub(crate) fn host_devices(dev_root: &Path) -> Vec<LinuxDevice> {
    let mut devices = Vec::new();
    collect_host_devices(dev_root, dev_root, &mut devices);
    devices.sort_by(|a, b| a.path().cmp(b.path()));
    devices
}

fn collect_host_devices(dev_root: &Path, dir: &Path, out: &mut Vec<LinuxDevice>) {
    const SKIPPED_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                collect_host_devices(dev_root, &path, out);
            }
        } else if name != "console" {
            let rel = path.strip_prefix(dev_root).unwrap_or(&path);
            out.extend(device_from(Path::new("/dev").join(rel), &meta));
        }
    }
}

/// The devices and device cgroup rules of a container.
pub(crate) fn build(
    host: &HostConfig,
    dev_root: &Path,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    let mut devices = Vec::new();
    let mut rules;
    if host.privileged {
        devices.extend(host_devices(dev_root));
        for mapping in &host.resources.devices {
            if mapping.path_on_host == mapping.path_in_container
                || mapping.path_in_container.is_empty()
            {
                continue; // already there with the rest of /dev
            }
            let (d, _) = from_path(&mapping.path_on_host, &mapping.path_in_container, "rwm")?;
            devices.extend(d);
        }
        rules = vec![rule(true, None, None, None, "rwm")];
    } else {
        rules = default_rules();
        for mapping in &host.resources.devices {
            let (d, r) = from_path(
                &mapping.path_on_host,
                &mapping.path_in_container,
                &mapping.cgroup_permissions,
            )?;
            devices.extend(d);
            rules.extend(r);
        }
        for text in &host.resources.device_cgroup_rules {
            rules.push(parse_cgroup_rule(text)?);
        }
    }
    Ok((devices, rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_deny_all_then_allow_the_standard_devices() {
        let rules = default_rules();
        assert!(!rules[0].allow() && rules[0].typ().is_none());
        let allowed: Vec<(i64, i64)> = rules
            .iter()
            .filter(|r| r.allow())
            .map(|r| (r.major().unwrap(), r.minor().unwrap()))
            .collect();
        assert_eq!(
            allowed,
            vec![(1, 5), (1, 3), (1, 9), (1, 8), (5, 0), (5, 1)]
        );
        assert!(!rules.last().unwrap().allow());
    }

    #[test]
    fn device_cgroup_rules_parse_like_dockers() {
        let r = parse_cgroup_rule("c 42:* rmw").unwrap();
        assert_eq!(
            (r.typ(), r.major(), r.minor(), r.access().as_deref()),
            (Some(LinuxDeviceType::C), Some(42), None, Some("rmw"))
        );
        let r = parse_cgroup_rule("b *:* m").unwrap();
        assert_eq!((r.major(), r.minor()), (None, None));
        for bad in ["c 42 rwm", "x 1:2 rwm", "c 1:2 rwx", "c 1:2", "c a:2 r"] {
            let err = parse_cgroup_rule(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid device cgroup rule format: '{bad}'")
            );
        }
    }

    #[test]
    fn device_mapping_reads_the_host_node() {
        let (devices, rules) = from_path("/dev/null", "/dev/mynull", "rw").unwrap();
        assert_eq!(devices[0].path(), Path::new("/dev/mynull"));
        assert_eq!(
            (devices[0].typ(), devices[0].major(), devices[0].minor()),
            (LinuxDeviceType::C, 1, 3)
        );
        assert_eq!(rules[0].access().as_deref(), Some("rw"));
    }

    #[test]
    fn device_mapping_of_a_non_device_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "").unwrap();
        let err = from_path(file.to_str().unwrap(), "/dev/x", "rwm").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("error gathering device information while adding custom device"));
        assert!(from_path(dir.path().to_str().unwrap(), "/dev/x", "rwm").is_err());
    }

    #[test]
    fn privileged_gets_the_host_devices_and_allows_all() {
        let host = HostConfig {
            privileged: true,
            ..Default::default()
        };
        let (devices, rules) = build(&host, Path::new("/dev")).unwrap();
        assert!(devices
            .iter()
            .any(|d| d.path() == Path::new("/dev/null") && d.major() == 1 && d.minor() == 3));
        assert!(!devices.iter().any(|d| d.path().starts_with("/dev/pts")));
        assert_eq!(rules.len(), 1);
        assert!(rules[0].allow() && rules[0].typ().is_none());
    }
}
