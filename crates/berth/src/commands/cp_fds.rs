//! `cp` with a daemon on this machine without pushing the files' bytes through the
//! socket: the tar carries headers only, and each regular file's content goes as its open
//! descriptor (SCM_RIGHTS) for the other side to copy inside the kernel. See
//! `berth_storage::fdpass` for the stream's rules. Against a daemon without these
//! endpoints (dockerd) the callers fall back to the plain archive requests.

use super::cp::{CopyInfo, PathStat};
use berth_storage::fdpass::{FdReader, FdSender};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Sends the upgrade request; the response head when the daemon switched protocols,
/// `None` when it does not have the endpoint (or refused it).
fn upgrade(sock: &UnixStream, method: &str, target: &str) -> io::Result<Option<String>> {
    write!(
        &*sock,
        "{method} {target} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth-cli\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
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
    let head = String::from_utf8_lossy(&head).into_owned();
    let switched = head
        .lines()
        .next()
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("101"));
    Ok(switched.then_some(head))
}

/// The outcome of a copy with descriptors.
pub enum Sent {
    /// The daemon does not know the endpoint: copy the plain way.
    Unsupported,
    /// Done; the size the plain tar stream would have had (for `Successfully copied`).
    Done(u64),
}

/// Uploads `src` (named `top` in the tar when given) over a new connection to `socket`;
/// `api_path` carries the destination directory and options.
pub fn upload(
    socket: &Path,
    api_path: &str,
    src: &CopyInfo,
    top: Option<&str>,
) -> anyhow::Result<Sent> {
    let sock = UnixStream::connect(socket)?;
    if upgrade(&sock, "POST", api_path)?.is_none() {
        return Ok(Sent::Unsupported);
    }
    let reply = sock.try_clone()?;
    let (dir, base) = super::cp::split_dir_entry(&src.path);
    let top = match top {
        Some(t) => t.to_string(),
        None if src.rebase_name.is_empty() => base.clone(),
        None => src.rebase_name.clone(),
    };
    let mut b = tar::Builder::new(FdSender::new(sock.try_clone()?));
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    // What the plain stream would have held beyond what goes on the wire.
    let mut extra = 0i64;
    let sent = berth_storage::copy::walk_tree(
        &mut b,
        &Path::new(&dir).join(&base),
        &top,
        &mut |b, fs, name, meta| {
            extra += FdSender::append_file(b, std::fs::File::open(fs)?, name, meta)?;
            Ok(())
        },
    )
    .map_err(anyhow::Error::from)
    .and_then(|()| {
        let mut w = b.into_inner()?;
        w.flush()?;
        Ok(w.written())
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
    Ok(Sent::Done(wire.saturating_add_signed(extra)))
}

/// Starts a download over a new connection to `socket`: the path's stat and a reader of
/// the tar with the queue its descriptors arrive in. `None` when the daemon does not
/// have the endpoint or refused it (an error the plain request reports as docker's).
pub fn download(socket: &Path, api_path: &str) -> anyhow::Result<Option<(PathStat, FdReader)>> {
    let sock = UnixStream::connect(socket)?;
    let Some(head) = upgrade(&sock, "GET", api_path)? else {
        return Ok(None);
    };
    let stat = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("X-Docker-Container-Path-Stat")
                .then(|| v.trim().to_string())
        })
        .map(|v| PathStat::from_header(&v))
        .transpose()?
        .unwrap_or_default();
    Ok(Some((stat, FdReader::new(sock, Vec::new()))))
}
