//! `cp` into a container of a daemon on this machine without pushing the files' bytes
//! through the socket: the tar carries headers only, and each regular file's content goes
//! as its open descriptor (SCM_RIGHTS) for the daemon to copy inside the kernel. See
//! `berth_storage::fdpass` for the stream's rules. Against a daemon without this endpoint
//! (dockerd) the caller falls back to the plain archive upload.

use super::cp::{walk_local, CopyInfo};
use std::io::{self, BufRead, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// The PAX record daemon and client agree on (`berth_storage::fdpass::PAX_FROM_FD`).
const PAX_FROM_FD: &str = "BERTH.fd";
/// Descriptors sent with one message at most (well under the kernel's 253 and the
/// in-flight limit of RLIMIT_NOFILE).
const FDS_PER_MESSAGE: usize = 64;
const BUFFER: usize = 256 * 1024;

/// Buffers the tar bytes; descriptors attached to the next send go with its first byte.
struct FdWriter {
    sock: UnixStream,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    /// Bytes of the tar sent so far.
    written: u64,
}

impl FdWriter {
    fn attach(&mut self, fd: OwnedFd) -> io::Result<()> {
        if self.fds.len() >= FDS_PER_MESSAGE {
            self.send()?;
        }
        self.fds.push(fd);
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let borrowed: Vec<_> = self.fds.iter().map(|f| f.as_fd()).collect();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_PER_MESSAGE))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        if !borrowed.is_empty()
            && !control.push(rustix::net::SendAncillaryMessage::ScmRights(&borrowed))
        {
            return Err(io::Error::other("too many descriptors for one message"));
        }
        let n = rustix::net::sendmsg(
            &self.sock,
            &[io::IoSlice::new(&self.buf)],
            &mut control,
            rustix::net::SendFlags::NOSIGNAL,
        )?;
        drop(borrowed);
        self.fds.clear();
        (&self.sock).write_all(&self.buf[n..])?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

impl Write for FdWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= BUFFER {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// One PAX record, `"<len> key=value\n"`, its length counting itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let rest = format!(" {key}={value}\n");
    let mut len = rest.len() + 1;
    while format!("{len}{rest}").len() != len {
        len += 1;
    }
    format!("{len}{rest}").into_bytes()
}

fn padded(n: u64) -> u64 {
    n.div_ceil(512) * 512
}

/// Sends the upgrade request; `Ok(None)` when the daemon does not have the endpoint.
fn upgrade(sock: &UnixStream, target: &str) -> io::Result<Option<()>> {
    write!(
        &*sock,
        "POST {target} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth-cli\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )?;
    // Read the response head byte by byte: nothing after it may be consumed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if (&*sock).read(&mut byte)? == 0 || head.len() > 64 * 1024 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head);
    Ok(status
        .lines()
        .next()
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("101"))
        .then_some(()))
}

/// The outcome of an upload with descriptors.
pub enum Sent {
    /// The daemon does not know the endpoint: upload the plain way.
    Unsupported,
    /// Done; the size the plain tar stream would have had (for `Successfully copied`).
    Done(u64),
}

/// Uploads `src` (named `top` in the tar when given) into the directory `dst_dir` of the
/// container, over a new connection to `socket`.
pub fn upload(
    socket: &Path,
    api_path: &str,
    src: &CopyInfo,
    top: Option<&str>,
) -> anyhow::Result<Sent> {
    let sock = UnixStream::connect(socket)?;
    if upgrade(&sock, api_path)?.is_none() {
        return Ok(Sent::Unsupported);
    }
    let reply = sock.try_clone()?;
    let w = FdWriter {
        sock: sock.try_clone()?,
        buf: Vec::with_capacity(BUFFER),
        fds: Vec::new(),
        written: 0,
    };
    let (dir, base) = super::cp::split_dir_entry(&src.path);
    let top = match top {
        Some(t) => t.to_string(),
        None if src.rebase_name.is_empty() => base.clone(),
        None => src.rebase_name.clone(),
    };
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    let record = pax_record(PAX_FROM_FD, "1");
    // What the plain stream would have held beyond what goes on the wire.
    let mut content = 0u64;
    let mut pax_bytes = 0u64;
    let sent = walk_local(
        &mut b,
        &Path::new(&dir).join(&base),
        &top,
        &mut |b, fs, name, meta| {
            let f = std::fs::File::open(fs)?;
            b.get_mut().attach(OwnedFd::from(f))?;
            let mut x = tar::Header::new_ustar();
            x.set_entry_type(tar::EntryType::XHeader);
            x.set_mode(0o644);
            x.set_size(record.len() as u64);
            b.append_data(&mut x, "PaxHeaders/berth", &record[..])?;
            let mut h = tar::Header::new_gnu();
            h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
            h.set_size(0);
            b.append_data(&mut h, name, io::empty())?;
            content += padded(meta.len());
            pax_bytes += 512 + padded(record.len() as u64);
            Ok(())
        },
    )
    .and_then(|()| {
        let mut w = b.into_inner()?;
        w.flush()?;
        Ok(w.written)
    });
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let mut line = String::new();
    io::BufReader::new(reply).read_line(&mut line)?;
    if line.trim().is_empty() {
        sent?;
        anyhow::bail!("the daemon closed the connection without an answer");
    }
    let v: serde_json::Value = serde_json::from_str(line.trim())?;
    if let Some(msg) = v["message"].as_str() {
        let status = v["status"].as_u64().unwrap_or(500) as u16;
        return Err(crate::client::ClientError::Api {
            status,
            message: msg.to_string(),
        }
        .into());
    }
    let wire = sent?;
    Ok(Sent::Done(wire - pax_bytes + content))
}
