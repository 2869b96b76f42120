//! The init layer: between the image and a container's writable layer, it holds the mount
//! points berth always uses (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, `/dev`,
//! `/proc`, `/sys`, ...), as Docker's `-init` layer does. So the runtime never has to make
//! them in the writable layer, and `docker diff` shows only what the container changed.
//! Its content is the same for every container, so one init layer per image is shared.

use std::sync::OnceLock;

const DIRS: &[&str] = &["dev", "dev/pts", "dev/shm", "etc", "proc", "sys"];
const FILES: &[&str] = &[
    ".dockerenv",
    "dev/console",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
];

/// The layer's tar, built once (deterministic: same bytes, same diff_id).
pub(crate) fn tar() -> &'static [u8] {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(|| {
        let mut b = tar::Builder::new(Vec::new());
        let entry = |b: &mut tar::Builder<Vec<u8>>, path: &str, dir: bool| {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(if dir {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            h.set_mode(if dir { 0o755 } else { 0o644 });
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(0);
            let name = if dir {
                format!("{path}/")
            } else {
                path.to_string()
            };
            // Writing into a Vec cannot fail.
            let _ = b.append_data(&mut h, name, std::io::empty());
        };
        for d in DIRS {
            entry(&mut b, d, true);
        }
        for f in FILES {
            entry(&mut b, f, false);
        }
        b.into_inner().unwrap_or_default()
    })
}

/// The layer's diff_id: with it, a container of an image whose init layer exists already
/// finds it without unpacking the tar again.
pub(crate) fn diff_id() -> &'static berth_core::Digest {
    static DIFF_ID: OnceLock<berth_core::Digest> = OnceLock::new();
    DIFF_ID.get_or_init(|| berth_core::Digest::of(tar()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_init_layer_is_the_same_bytes_every_time() {
        let a = super::tar().to_vec();
        assert_eq!(a, super::tar());
        let names: Vec<String> = tar::Archive::new(&a[..])
            .entries()
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path().unwrap().display().to_string();
                p.trim_end_matches('/').to_string()
            })
            .collect();
        assert!(names.contains(&"etc/hosts".to_string()) && names.contains(&"dev/pts".to_string()));
    }
}
