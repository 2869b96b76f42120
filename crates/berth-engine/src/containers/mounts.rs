//! A container's mounts: `-v` binds and volumes, `--mount`, the image's `VOLUME`s and
//! `--volumes-from`, planned at create (volumes created and filled from the image), turned
//! into OCI mounts at start, and cleaned with `rm -v`.

use crate::volumes::CreateVolume;
use crate::Engine;
use berth_core::container::{
    Container, ContainerConfig, HostConfig, MountPoint, MountSpec, MountType,
};
use berth_core::volume::validate_name;
use berth_core::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

/// A mount decided at create, before its volume exists.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub point: MountPoint,
    /// For volumes: create it with these labels/options when missing (name empty: anonymous).
    pub volume: Option<CreateVolume>,
    /// `-v /host:/c` creates a missing host directory; `--mount type=bind` does not.
    pub create_host_dir: bool,
    /// Do not fill a new volume from the image.
    pub nocopy: bool,
}

fn invalid_spec(raw: &str, why: &str) -> Error {
    Error::invalid(format!("invalid volume specification: '{raw}': {why}"))
}

fn check_destination(raw: &str, dst: &str) -> Result<()> {
    if !dst.starts_with('/') {
        return Err(invalid_spec(raw, &format!("invalid mount config for type \"volume\": invalid mount path: '{dst}' mount path must be absolute")));
    }
    if dst == "/" {
        return Err(invalid_spec(
            raw,
            "invalid mount config: destination can't be '/'",
        ));
    }
    Ok(())
}

fn clean(p: &str) -> String {
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        if let std::path::Component::Normal(n) = c {
            out.push(n);
        }
    }
    out.display().to_string()
}

/// Parses one `-v` / `HostConfig.Binds` entry: `SRC:DST[:MODE]` or `DST`.
pub(crate) fn parse_bind(raw: &str) -> Result<Planned> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, mode] => (*src, *dst, *mode),
        _ => return Err(invalid_spec(raw, "too many colons")),
    };
    if dst.is_empty() {
        return Err(invalid_spec(raw, "empty destination"));
    }
    check_destination(raw, dst)?;
    let mut read_only = false;
    let mut propagation = String::new();
    let mut nocopy = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" | "consistent" | "cached" | "delegated" => {}
            "nocopy" => nocopy = true,
            p if PROPAGATIONS.contains(&p) => propagation = p.to_string(),
            other => return Err(invalid_spec(raw, &format!("invalid mode: {other}"))),
        }
    }
    let destination = clean(dst);
    if src.starts_with('/') {
        if nocopy {
            return Err(invalid_spec(raw, "invalid mode: nocopy"));
        }
        let point = MountPoint {
            typ: MountType::Bind,
            source: clean(src),
            destination,
            mode: mode.to_string(),
            rw: !read_only,
            propagation: if propagation.is_empty() {
                "rprivate".into()
            } else {
                propagation
            },
            ..Default::default()
        };
        return Ok(Planned {
            point,
            volume: None,
            create_host_dir: true,
            nocopy: false,
        });
    }
    if !propagation.is_empty() {
        return Err(invalid_spec(raw, &format!("invalid mode: {propagation}")));
    }
    if !src.is_empty() {
        validate_name(src)?;
    }
    let point = MountPoint {
        typ: MountType::Volume,
        name: src.to_string(),
        destination,
        driver: "local".into(),
        mode: if mode.is_empty() {
            "z".into()
        } else {
            mode.to_string()
        },
        rw: !read_only,
        ..Default::default()
    };
    let volume = Some(CreateVolume {
        name: src.to_string(),
        driver: "local".into(),
        ..Default::default()
    });
    Ok(Planned {
        point,
        volume,
        create_host_dir: false,
        nocopy,
    })
}

/// Turns a `--mount` (HostConfig.Mounts) entry into a plan.
pub(crate) fn from_spec(m: &MountSpec) -> Result<Planned> {
    let raw = format!("type={:?},target={}", m.typ, m.target).to_lowercase();
    if m.target.is_empty() {
        return Err(Error::invalid(
            "invalid mount config: Target must not be empty",
        ));
    }
    check_destination(&raw, &m.target)?;
    let destination = clean(&m.target);
    match m.typ {
        MountType::Bind => {
            if m.source.is_empty() {
                return Err(Error::invalid(
                    "invalid mount config for type \"bind\": field Source must not be empty"
                        .to_string(),
                ));
            }
            if !m.source.starts_with('/') {
                return Err(Error::invalid(format!("invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute", m.source)));
            }
            if !m.bind_create_mountpoint && !Path::new(&m.source).exists() {
                return Err(Error::invalid(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    m.source
                )));
            }
            if !m.bind_propagation.is_empty()
                && !PROPAGATIONS.contains(&m.bind_propagation.as_str())
            {
                return Err(Error::invalid(format!(
                    "invalid propagation mode: {}",
                    m.bind_propagation
                )));
            }
            let point = MountPoint {
                typ: MountType::Bind,
                source: clean(&m.source),
                destination,
                rw: !m.read_only,
                propagation: if m.bind_propagation.is_empty() {
                    "rprivate".into()
                } else {
                    m.bind_propagation.clone()
                },
                ..Default::default()
            };
            Ok(Planned {
                point,
                volume: None,
                create_host_dir: m.bind_create_mountpoint,
                nocopy: false,
            })
        }
        MountType::Volume => {
            if !m.source.is_empty() {
                validate_name(&m.source)?;
            }
            let point = MountPoint {
                typ: MountType::Volume,
                name: m.source.clone(),
                destination,
                driver: if m.volume_driver.is_empty() {
                    "local".into()
                } else {
                    m.volume_driver.clone()
                },
                rw: !m.read_only,
                ..Default::default()
            };
            let volume = Some(CreateVolume {
                name: m.source.clone(),
                driver: m.volume_driver.clone(),
                options: m.volume_options.clone(),
                labels: m.volume_labels.clone(),
            });
            Ok(Planned {
                point,
                volume,
                create_host_dir: false,
                nocopy: m.volume_no_copy,
            })
        }
        MountType::Tmpfs => {
            if !m.source.is_empty() {
                return Err(Error::invalid(
                    "invalid mount config for type \"tmpfs\": field Source must not be specified",
                ));
            }
            let point = MountPoint {
                typ: MountType::Tmpfs,
                destination,
                rw: !m.read_only,
                ..Default::default()
            };
            Ok(Planned {
                point,
                volume: None,
                create_host_dir: false,
                nocopy: true,
            })
        }
    }
}

/// `--tmpfs` options from a `--mount type=tmpfs`.
pub(crate) fn tmpfs_options(m: &MountSpec) -> String {
    let mut opts = Vec::new();
    if m.read_only {
        opts.push("ro".to_string());
    }
    if m.tmpfs_size > 0 {
        opts.push(format!("size={}", m.tmpfs_size));
    }
    if m.tmpfs_mode != 0 {
        opts.push(format!("mode={:o}", m.tmpfs_mode));
    }
    opts.join(",")
}

impl Engine {
    /// Docker's order: `--volumes-from` first, then the image's and config's `VOLUME`s,
    /// then `-v` and `--mount`, later ones replacing earlier ones at the same destination.
    pub(crate) fn plan_mounts(
        &self,
        cfg: &ContainerConfig,
        host: &mut HostConfig,
    ) -> Result<Vec<Planned>> {
        let mut by_dest: BTreeMap<String, Planned> = BTreeMap::new();
        for from in &host.volumes_from {
            let (name, mode) = match from.rsplit_once(':') {
                Some((n, m)) if m == "ro" || m == "rw" => (n, Some(m)),
                Some(_) => {
                    return Err(Error::invalid(format!(
                        "invalid mode for volumes-from: {from}"
                    )))
                }
                None => (from.as_str(), None),
            };
            let other = self.container(name)?;
            for mut p in other.read(|c| c.mounts.clone()) {
                if let Some(m) = mode {
                    p.rw = m == "rw";
                    p.mode = m.to_string();
                }
                by_dest.insert(
                    p.destination.clone(),
                    Planned {
                        point: p,
                        volume: None,
                        create_host_dir: false,
                        nocopy: true,
                    },
                );
            }
        }
        for v in &cfg.volumes {
            let dest = clean(v);
            if by_dest.contains_key(&dest) {
                continue;
            }
            let point = MountPoint {
                typ: MountType::Volume,
                destination: dest.clone(),
                driver: "local".into(),
                rw: true,
                ..Default::default()
            };
            let volume = Some(CreateVolume {
                driver: "local".into(),
                ..Default::default()
            });
            by_dest.insert(
                dest,
                Planned {
                    point,
                    volume,
                    create_host_dir: false,
                    nocopy: false,
                },
            );
        }
        let mut user: Vec<Planned> = Vec::new();
        for b in &host.binds {
            user.push(parse_bind(b)?);
        }
        for m in &host.mounts {
            let p = from_spec(m)?;
            if m.typ == MountType::Tmpfs {
                host.tmpfs
                    .insert(p.point.destination.clone(), tmpfs_options(m));
            }
            user.push(p);
        }
        let mut seen = std::collections::HashSet::new();
        for p in user {
            if !seen.insert(p.point.destination.clone()) {
                return Err(Error::invalid(format!(
                    "Duplicate mount point: {}",
                    p.point.destination
                )));
            }
            by_dest.insert(p.point.destination.clone(), p);
        }
        for t in host.tmpfs.keys() {
            if seen.contains(t) {
                continue;
            }
            by_dest.remove(t);
        }
        Ok(by_dest.into_values().collect())
    }

    /// Makes what the plan needs exist: volumes (created, and filled from the image's
    /// content at their destination when new or empty), host directories for `-v` binds.
    /// `rootfs` is the container's mounted filesystem. Returns the mount points.
    pub(crate) fn realize_mounts(
        &self,
        plans: Vec<Planned>,
        rootfs: Option<&Path>,
    ) -> Result<Vec<MountPoint>> {
        let mut out = Vec::new();
        let mut created: Vec<String> = Vec::new();
        let result = (|| -> Result<()> {
            for mut p in plans {
                if let Some(req) = p.volume.take() {
                    let existed = !req.name.is_empty() && self.volumes.get(&req.name).is_some();
                    let v = self.create_volume(req)?;
                    if !existed {
                        created.push(v.name.clone());
                    }
                    p.point.name = v.name.clone();
                    p.point.source = v.mountpoint.clone();
                    let data = Path::new(&v.mountpoint);
                    let empty = std::fs::read_dir(data)
                        .map(|mut r| r.next().is_none())
                        .unwrap_or(false);
                    if empty && !p.nocopy && !v.options.contains_key("type") {
                        if let Some(root) = rootfs {
                            let src =
                                crate::fsutil::secure_join(root, Path::new(&p.point.destination))?;
                            if src.is_dir() {
                                berth_storage::copy::copy_dir_contents(&src, data).map_err(
                                    |e| {
                                        Error::internal(format!(
                                            "copying image content into volume {}: {e}",
                                            v.name
                                        ))
                                    },
                                )?;
                            }
                        }
                    }
                } else if p.point.typ == MountType::Bind
                    && p.create_host_dir
                    && !Path::new(&p.point.source).exists()
                {
                    std::fs::create_dir_all(&p.point.source).map_err(|e| {
                        Error::invalid(format!(
                            "error while creating mount source path '{}': {e}",
                            p.point.source
                        ))
                    })?;
                }
                out.push(p.point);
            }
            Ok(())
        })();
        if let Err(e) = result {
            // No half-made container: volumes made for it go too.
            for name in created {
                let _ = self.remove_volume(&name, true);
            }
            return Err(e);
        }
        Ok(out)
    }

    /// The OCI mounts of a container's mount points, parents before children.
    pub(crate) fn oci_mounts(&self, c: &Container) -> Result<Vec<oci_spec::runtime::Mount>> {
        let mut points: Vec<&MountPoint> = c
            .mounts
            .iter()
            .filter(|m| m.typ != MountType::Tmpfs)
            .collect();
        points.sort_by_key(|m| Path::new(&m.destination).components().count());
        let mut out = Vec::new();
        for m in points {
            let mut options = vec!["rbind".to_string()];
            options.push(if m.propagation.is_empty() {
                "rprivate".to_string()
            } else {
                m.propagation.clone()
            });
            options.push(if m.rw {
                "rw".to_string()
            } else {
                "ro".to_string()
            });
            if m.typ == MountType::Bind && !Path::new(&m.source).exists() {
                return Err(Error::invalid(format!(
                    "error while mounting bind source: {} does not exist",
                    m.source
                )));
            }
            let mount = oci_spec::runtime::MountBuilder::default()
                .destination(&m.destination)
                .typ("bind")
                .source(&m.source)
                .options(options)
                .build()
                .map_err(|e| Error::internal(e.to_string()))?;
            out.push(mount);
        }
        Ok(out)
    }

    /// Mounts the driver sources of the container's volumes (tmpfs/device volumes).
    pub(crate) fn mount_volume_sources(&self, c: &Container) -> Result<()> {
        let mut done = Vec::new();
        for m in c.mounts.iter().filter(|m| m.typ == MountType::Volume) {
            let Some(v) = self.volumes.get(&m.name) else {
                continue;
            };
            if let Err(e) = self.mount_volume_source(&v) {
                for d in done {
                    self.release_volume_source(&d);
                }
                return Err(e);
            }
            done.push(v);
        }
        Ok(())
    }

    pub(crate) fn release_volume_sources(&self, c: &Container) {
        for m in c.mounts.iter().filter(|m| m.typ == MountType::Volume) {
            if let Some(v) = self.volumes.get(&m.name) {
                self.release_volume_source(&v);
            }
        }
    }

    /// `rm -v`: the container's anonymous volumes that no other container uses.
    pub(crate) fn remove_anonymous_volumes(&self, mounts: &[MountPoint]) {
        for m in mounts.iter().filter(|m| m.typ == MountType::Volume) {
            let Some(v) = self.volumes.get(&m.name) else {
                continue;
            };
            if v.is_anonymous() && self.volume_users(&v.name).is_empty() {
                let _ = self.remove_volume(&v.name, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_named_and_anonymous_volumes_parse_like_docker() {
        let p = parse_bind("/host/dir:/c/dir:ro").unwrap();
        assert_eq!(
            (
                p.point.typ,
                p.point.source.as_str(),
                p.point.rw,
                p.point.mode.as_str(),
                p.point.propagation.as_str()
            ),
            (MountType::Bind, "/host/dir", false, "ro", "rprivate")
        );
        let p = parse_bind("data:/var/lib/data").unwrap();
        assert_eq!(
            (
                p.point.typ,
                p.point.name.as_str(),
                p.point.mode.as_str(),
                p.point.rw
            ),
            (MountType::Volume, "data", "z", true)
        );
        let p = parse_bind("/only/dest").unwrap();
        assert_eq!(
            (p.point.typ, p.point.name.as_str()),
            (MountType::Volume, "")
        );
        let p = parse_bind("/h:/c:Z,rshared").unwrap();
        assert_eq!(p.point.propagation, "rshared");
    }

    #[test]
    fn bad_specs_get_dockers_errors() {
        assert!(parse_bind("./rel:/c")
            .unwrap_err()
            .to_string()
            .contains("use absolute path"));
        assert!(parse_bind("/h:rel")
            .unwrap_err()
            .to_string()
            .contains("mount path must be absolute"));
        assert!(parse_bind("/h:/c:bogus")
            .unwrap_err()
            .to_string()
            .contains("invalid mode: bogus"));
        assert!(parse_bind("/h:/")
            .unwrap_err()
            .to_string()
            .contains("destination can't be '/'"));
        assert!(parse_bind("a:b:c:d").is_err());
    }
}
