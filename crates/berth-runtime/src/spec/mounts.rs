//! The mounts of a container, laid out as Docker lays them out: the default filesystems
//! (`/proc`, `/dev`, `/dev/pts`, `/sys`, `/sys/fs/cgroup`, `/dev/mqueue`, `/dev/shm`), the
//! `--init` binary, then the "user" mounts sorted parents first: the `/etc/hostname`,
//! `/etc/hosts` and `/etc/resolv.conf` files, a shared `/dev/shm`, `--tmpfs` and
//! `--mount type=tmpfs`, and the volumes and binds the engine adds.
//!
//! A user mount replaces a default mount at the same place (and one at `/dev` replaces all
//! of `/dev/*`). `--read-only` makes the non-user mounts read-only too (but the ones a
//! process needs to write: `/proc`, `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue`);
//! `--privileged` makes `/sys` writable, and cgroups writable unless
//! `writable-cgroups=false` says otherwise.

use super::{SpecError, SpecRequest, INIT_PATH_IN_CONTAINER};
use berth_core::container::MountType;
use oci_spec::runtime::Mount;
use std::path::{Component, Path, PathBuf};

/// Docker's default `/dev/shm` size, 64 MiB.
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

fn bind(source: &Path, destination: &str, options: Vec<String>) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some("bind".to_string()));
    m.set_source(Some(source.to_path_buf()));
    m.set_options(Some(options));
    m
}

/// Docker's default mounts, in Docker's order, `/dev/shm` sized `shm_size` bytes.
fn default_mounts(shm_size: i64) -> Vec<Mount> {
    let shm_size = format!("size={shm_size}");
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
    ]
}

/// Docker's default masked paths.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's default read-only paths.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Masked and read-only paths: Docker's defaults, none under `--privileged`, and whatever
/// the host config says when it says something.
pub(crate) fn masked_and_readonly_paths(req: &SpecRequest) -> (Vec<String>, Vec<String>) {
    let defaults = |list: &[&str]| {
        if req.host.privileged {
            Vec::new()
        } else {
            list.iter().map(|s| s.to_string()).collect()
        }
    };
    let masked = req
        .host
        .masked_paths
        .clone()
        .unwrap_or_else(|| defaults(DEFAULT_MASKED_PATHS));
    let readonly = req
        .host
        .readonly_paths
        .clone()
        .unwrap_or_else(|| defaults(DEFAULT_READONLY_PATHS));
    (masked, readonly)
}

/// Flag options that cancel each other (`exec`/`noexec`) share a family; the last one wins.
fn flag_family(option: &str) -> Option<&'static str> {
    Some(match option {
        "ro" | "rw" => "ro",
        "suid" | "nosuid" => "suid",
        "dev" | "nodev" => "dev",
        "exec" | "noexec" => "exec",
        "sync" | "async" => "sync",
        "dirsync" => "dirsync",
        "remount" => "remount",
        "mand" | "nomand" => "mand",
        "atime" | "noatime" => "atime",
        "diratime" | "nodiratime" => "diratime",
        "relatime" | "norelatime" => "relatime",
        "strictatime" | "nostrictatime" => "strictatime",
        "bind" | "rbind" | "unbindable" | "runbindable" | "private" | "rprivate" | "shared"
        | "rshared" | "slave" | "rslave" => "propagation",
        _ => return None,
    })
}

/// Docker's tmpfs option merge: later options override earlier ones of the same family or
/// key; only tmpfs data options (`size`, `mode`, `uid`, `gid`, `nr_inodes`, `nr_blocks`,
/// `mpol`) are accepted besides mount flags.
pub(crate) fn merge_tmpfs_options(options: &[String]) -> Result<Vec<String>, SpecError> {
    const DATA_KEYS: &[&str] = &[
        "",
        "size",
        "mode",
        "uid",
        "gid",
        "nr_inodes",
        "nr_blocks",
        "mpol",
    ];
    let mut seen: Vec<String> = Vec::new();
    let mut merged: Vec<String> = Vec::new();
    for option in options.iter().rev() {
        if option == "defaults" {
            continue;
        }
        let key = match flag_family(option) {
            Some(family) => format!("flag:{family}"),
            None => {
                let Some((key, _)) = option
                    .split_once('=')
                    .filter(|(k, _)| DATA_KEYS.contains(k))
                else {
                    return Err(SpecError::InvalidTmpfsOption {
                        option: option.clone(),
                    });
                };
                format!("data:{key}")
            }
        };
        if !seen.contains(&key) {
            seen.push(key);
            merged.insert(0, option.clone());
        }
    }
    Ok(merged)
}

fn tmpfs_mount(destination: &str, data: &[String]) -> Result<Mount, SpecError> {
    if !destination.starts_with('/') {
        return Err(SpecError::InvalidMountPath {
            path: destination.to_string(),
        });
    }
    if Path::new(destination)
        .components()
        .all(|c| c == Component::RootDir)
    {
        return Err(SpecError::MountOnRoot);
    }
    let mut options: Vec<String> = ["noexec", "nosuid", "nodev", "rprivate"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    options.extend(data.iter().filter(|s| !s.is_empty()).cloned());
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some("tmpfs".to_string()));
    m.set_source(Some(PathBuf::from("tmpfs")));
    m.set_options(Some(merge_tmpfs_options(&options)?));
    Ok(m)
}

/// Path depth, for Docker's "parents first" ordering of user mounts.
fn depth(m: &Mount) -> usize {
    m.destination()
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

fn clear_read_only(m: &mut Mount) {
    if let Some(options) = m.options().clone() {
        m.set_options(Some(options.into_iter().filter(|o| o != "ro").collect()));
    }
}

/// The full mount list of a container (module docs).
pub(crate) fn build(
    req: &SpecRequest,
    writable_cgroups: Option<bool>,
) -> Result<Vec<Mount>, SpecError> {
    let host = req.host;
    let readonly_root = host.readonly_rootfs;

    // User mounts: everything that is not a default filesystem.
    let mut user: Vec<Mount> = req.extra_mounts.clone();
    let taken =
        |dest: &str, user: &[Mount]| user.iter().any(|m| m.destination() == Path::new(dest));
    for (dest, path) in [
        ("/etc/resolv.conf", &req.etc_files.resolv_conf),
        ("/etc/hostname", &req.etc_files.hostname),
        ("/etc/hosts", &req.etc_files.hosts),
    ] {
        if let Some(path) = path {
            if !taken(dest, &user) {
                let mut options = vec!["rbind".to_string()];
                if readonly_root {
                    options.push("ro".to_string());
                }
                options.push("rprivate".to_string());
                user.push(bind(path, dest, options));
            }
        }
    }
    let ipc_none = host.ipc_mode == "none";
    if let Some(shm) = &req.shm_path {
        if !ipc_none && !taken("/dev/shm", &user) {
            user.push(bind(
                shm,
                "/dev/shm",
                vec!["rbind".to_string(), "rprivate".to_string()],
            ));
        }
    }
    for (dest, data) in &host.tmpfs {
        let data: Vec<String> = data.split(',').map(str::to_string).collect();
        user.push(tmpfs_mount(dest, &data)?);
    }
    for spec in host.mounts.iter().filter(|m| m.typ == MountType::Tmpfs) {
        let mut data = Vec::new();
        if spec.read_only {
            data.push("ro".to_string());
        }
        if spec.tmpfs_mode != 0 {
            data.push(format!("mode={:o}", spec.tmpfs_mode));
        }
        if spec.tmpfs_size > 0 {
            data.push(format!("size={}", spec.tmpfs_size));
        }
        user.push(tmpfs_mount(&spec.target, &data)?);
    }
    user.sort_by_key(depth);

    // Default mounts, minus those a user mount replaces.
    let shm_size = if host.shm_size > 0 {
        host.shm_size
    } else {
        DEFAULT_SHM_SIZE
    };
    let dev_replaced = taken("/dev", &user);
    let mut mounts: Vec<Mount> = default_mounts(shm_size)
        .into_iter()
        .filter(|m| {
            let dest = m.destination();
            let replaced = user.iter().any(|u| u.destination() == dest)
                || (dev_replaced && dest.starts_with("/dev/"))
                || (ipc_none && dest == Path::new("/dev/shm"));
            !replaced
        })
        .collect();
    if let (Some(init), true) = (&req.init, req.pid.is_private()) {
        mounts.push(bind(
            init,
            INIT_PATH_IN_CONTAINER,
            vec!["bind".to_string(), "ro".to_string()],
        ));
    }

    if readonly_root {
        const STAY_WRITABLE: &[&str] = &["/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"];
        for m in &mut mounts {
            let writable = STAY_WRITABLE
                .iter()
                .any(|d| m.destination() == Path::new(d));
            let options = m.options().clone().unwrap_or_default();
            if !writable && !options.iter().any(|o| o == "ro") {
                m.set_options(Some(
                    options.into_iter().chain(["ro".to_string()]).collect(),
                ));
            }
        }
    }
    if host.privileged {
        for m in mounts
            .iter_mut()
            .filter(|m| m.destination() == Path::new("/sys"))
        {
            clear_read_only(m);
        }
    }
    if writable_cgroups.unwrap_or(host.privileged) {
        for m in mounts
            .iter_mut()
            .filter(|m| m.typ().as_deref() == Some("cgroup"))
        {
            clear_read_only(m);
        }
    }
    mounts.extend(user);
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tmpfs_options_merge_with_the_last_one_winning() {
        let merged = merge_tmpfs_options(&strings(&[
            "noexec", "nosuid", "nodev", "rprivate", "exec", "size=1m", "size=2m",
        ]))
        .unwrap();
        assert_eq!(
            merged,
            strings(&["nosuid", "nodev", "rprivate", "exec", "size=2m"])
        );
    }

    #[test]
    fn unknown_tmpfs_options_are_refused() {
        let err = merge_tmpfs_options(&strings(&["color=blue"])).unwrap_err();
        assert_eq!(err.to_string(), r#"Invalid tmpfs option "color=blue""#);
    }

    #[test]
    fn tmpfs_destinations_must_be_absolute_and_not_root() {
        assert!(matches!(
            tmpfs_mount("relative", &[]),
            Err(SpecError::InvalidMountPath { .. })
        ));
        assert!(matches!(tmpfs_mount("/", &[]), Err(SpecError::MountOnRoot)));
    }
}
