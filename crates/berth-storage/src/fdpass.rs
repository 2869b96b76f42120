//! `cp` without copying through the socket: when the client is on this machine (a unix
//! socket), it sends the tar stream's headers as usual, but the content of each regular
//! file as an open descriptor (SCM_RIGHTS) next to the header bytes; the content is then
//! copied file to file inside the kernel.
//!
//! An entry whose content comes that way has the PAX record [`PAX_FROM_FD`] and a size of
//! zero in its header. Its descriptor travels in the same `sendmsg` as bytes that precede
//! the entry's header, so it has arrived by the time the reader parses the header.
//! Descriptors are used in the order they arrive.

use crate::apply::{apply_tar_with, WhiteoutMode};
use crate::error::Result;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::rc::Rc;

/// The PAX record that marks an entry whose content is a passed descriptor.
pub const PAX_FROM_FD: &str = "BERTH.fd";

/// Descriptors received and not used yet, in order.
pub(crate) type FdQueue = Rc<RefCell<VecDeque<OwnedFd>>>;

/// Most descriptors one `recvmsg` takes (the kernel's limit per message is 253).
const MAX_FDS: usize = 253;

/// Reads a stream socket, keeping the descriptors that come with the bytes.
struct FdReader {
    sock: UnixStream,
    fds: FdQueue,
    prefix: Vec<u8>,
    at: usize,
}

impl Read for FdReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at < self.prefix.len() {
            let n = out.len().min(self.prefix.len() - self.at);
            out[..n].copy_from_slice(&self.prefix[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(
            &self.sock,
            &mut [IoSliceMut::new(out)],
            &mut control,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        )?;
        for m in control.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(fds) = m {
                self.fds.borrow_mut().extend(fds);
            }
        }
        if msg.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
            return Err(io::Error::other("too many descriptors in one message"));
        }
        Ok(msg.bytes)
    }
}

/// Unpacks the tar arriving on `sock` (after the bytes already read, `prefix`) into the
/// directory `dest`, as [`crate::copy::extract_into`] does, taking marked files' content
/// from the descriptors that arrive with it.
pub fn extract_from_socket(
    sock: UnixStream,
    prefix: Vec<u8>,
    dest: &Path,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    let fds: FdQueue = Rc::default();
    let reader = FdReader {
        sock,
        fds: fds.clone(),
        prefix,
        at: 0,
    };
    apply_tar_with(
        reader,
        dest,
        WhiteoutMode::Plain,
        None,
        owner,
        false,
        Some(fds),
    )?;
    Ok(())
}

/// Copies everything `src` holds from its start into `dst`, in the kernel where it can:
/// `copy_file_range`, else `sendfile`, else through `buf`. Only regular files are read.
pub fn copy_contents(src: &OwnedFd, dst: &File, buf: &mut [u8]) -> io::Result<u64> {
    let st = rustix::fs::fstat(src)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(io::Error::other(
            "the passed descriptor is not a regular file",
        ));
    }
    let chunk = 1usize << 30;
    let mut total = 0u64;
    let mut off = 0u64;
    let mut in_kernel = true;
    while in_kernel {
        let mut o = off;
        match rustix::fs::copy_file_range(src, Some(&mut o), dst.as_fd(), None, chunk) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                total += n as u64;
                off = o;
            }
            Err(_) if total == 0 => in_kernel = false,
            Err(e) => return Err(e.into()),
        }
    }
    // Different filesystems (overlayfs and the host's): sendfile copies in the kernel too.
    let mut in_kernel = true;
    while in_kernel {
        let mut o = off;
        match rustix::fs::sendfile(dst.as_fd(), src, Some(&mut o), chunk) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                total += n as u64;
                off = o;
            }
            Err(_) if total == 0 => in_kernel = false,
            Err(e) => return Err(e.into()),
        }
    }
    let mut dst = dst;
    loop {
        let n = rustix::io::pread(src, &mut *buf, off)?;
        if n == 0 {
            return Ok(total);
        }
        dst.write_all(&buf[..n])?;
        off += n as u64;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that sends buffered bytes with the descriptors attached to them.
    fn send(sock: &UnixStream, bytes: &[u8], fds: &[OwnedFd]) {
        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        if !borrowed.is_empty() {
            assert!(control.push(rustix::net::SendAncillaryMessage::ScmRights(&borrowed)));
        }
        let n = rustix::net::sendmsg(
            sock,
            &[io::IoSlice::new(bytes)],
            &mut control,
            rustix::net::SendFlags::empty(),
        )
        .unwrap();
        (&*sock).write_all(&bytes[n..]).unwrap();
    }

    fn pax(key: &str, value: &str) -> Vec<u8> {
        let rest = format!(" {key}={value}\n");
        let mut len = rest.len() + 1;
        while format!("{len}{rest}").len() != len {
            len += 1;
        }
        format!("{len}{rest}").into_bytes()
    }

    #[test]
    fn marked_entries_take_their_content_from_passed_descriptors() {
        let tmp = crate::testutil::temp_dir();
        let dir = tmp.path().to_path_buf();
        let src = dir.join("src");
        std::fs::write(&src, b"content that never went through the socket").unwrap();
        let dest = dir.join("dest");
        std::fs::create_dir(&dest).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        let rec = pax(PAX_FROM_FD, "1");
        h.set_size(rec.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "PaxHeaders/passed", &rec[..])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o640);
        h.set_mtime(1_000_000);
        b.append_data(&mut h, "passed", io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o644);
        b.append_data(&mut h, "inline", &b"inline"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let (a, z) = UnixStream::pair().unwrap();
        let fd: OwnedFd = File::open(&src).unwrap().into();
        let d2 = dest.clone();
        let t = std::thread::spawn(move || extract_from_socket(z, Vec::new(), &d2, None));
        send(&a, &bytes, &[fd]);
        drop(a);
        t.join().unwrap().unwrap();
        assert_eq!(
            std::fs::read(dest.join("passed")).unwrap(),
            b"content that never went through the socket"
        );
        assert_eq!(std::fs::read(dest.join("inline")).unwrap(), b"inline");
        use std::os::unix::fs::PermissionsExt as _;
        let m = std::fs::metadata(dest.join("passed")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o640);
    }

    #[test]
    fn a_marked_entry_without_a_descriptor_is_an_error() {
        let tmp = crate::testutil::temp_dir();
        let dir = tmp.path().to_path_buf();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        let rec = pax(PAX_FROM_FD, "1");
        h.set_size(rec.len() as u64);
        b.append_data(&mut h, "PaxHeaders/x", &rec[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        b.append_data(&mut h, "x", io::empty()).unwrap();
        let bytes = b.into_inner().unwrap();
        let (a, z) = UnixStream::pair().unwrap();
        let d2 = dir.clone();
        let t = std::thread::spawn(move || extract_from_socket(z, Vec::new(), &d2, None));
        (&a).write_all(&bytes).unwrap();
        drop(a);
        let err = t.join().unwrap().unwrap_err().to_string();
        assert!(err.contains("no descriptor was passed for x"), "{err}");
    }
}
