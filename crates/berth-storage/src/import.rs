//! `docker import`: a root filesystem tarball (plain, gzip or zstd) as a single layer.
//!
//! The engine makes the image config around the returned [`Layer`]; this only unpacks.

use crate::error::Result;
use crate::{Layer, Storage};
use std::io::Read;

/// Unpacks a rootfs tarball as a layer without parent.
pub fn import_tar(storage: &Storage, r: impl Read) -> Result<Layer> {
    storage.apply_layer(None, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{require_root, temp_dir, TestStore};
    use crate::DriverChoice;
    use std::fs;
    use std::process::Command;

    fn run(cmd: &str) {
        let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
        assert!(st.success(), "{cmd}");
    }

    #[test]
    fn rootfs_tarballs_import_from_every_compression_with_one_diff_id() {
        if !require_root("rootfs_tarballs_import_from_every_compression_with_one_diff_id") {
            return;
        }
        let work = temp_dir();
        let w = work.path().display();
        run(&format!(
            "mkdir -p {w}/rootfs/bin {w}/rootfs/etc && echo hi > {w}/rootfs/etc/motd && ln -s /bin/true {w}/rootfs/bin/sh \
             && tar --numeric-owner -C {w}/rootfs -cf {w}/root.tar . \
             && gzip -k {w}/root.tar && bzip2 -k {w}/root.tar && xz -k {w}/root.tar"
        ));
        let plain = fs::read(work.path().join("root.tar")).unwrap();
        fs::write(
            work.path().join("root.tar.zst"),
            crate::testutil::zstd(&plain),
        )
        .unwrap();
        let s = TestStore::new(DriverChoice::Overlay);
        for ext in ["tar", "tar.gz", "tar.bz2", "tar.xz", "tar.zst"] {
            let f = fs::File::open(work.path().join(format!("root.{ext}"))).unwrap();
            let layer = import_tar(&s, f).unwrap();
            assert_eq!(layer.diff_id, berth_core::Digest::of(&plain), "{ext}");
            assert_eq!(layer.parent, None);
        }
        assert_eq!(s.layers().len(), 1);
        let l = &s.layers()[0];
        s.create_rw("imported", Some(&l.chain_id)).unwrap();
        let root = s.mount_rw("imported").unwrap();
        assert_eq!(fs::read(root.join("etc/motd")).unwrap(), b"hi\n");
        assert_eq!(
            fs::read_link(root.join("bin/sh")).unwrap(),
            std::path::Path::new("/bin/true")
        );
    }
}
