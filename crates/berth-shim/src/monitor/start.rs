//! Starting the container (and exec processes) through the OCI runtime binary.

use berth_shim::launch::{ShimOptions, PID_FILE, RUNTIME_LOG};
use rustix::fd::OwnedFd;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};

/// The shim's ends of a process's stdio.
pub struct Stdio3 {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// The process's ends: what the runtime gets as its own stdio.
pub struct ChildStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

fn devnull() -> io::Result<Stdio> {
    Ok(Stdio::from(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?,
    ))
}

/// Pipes for a non-tty process; with `tty` the runtime gets /dev/null and the pty comes
/// through the console socket instead.
pub fn make_stdio(tty: bool, stdin: bool) -> io::Result<(Stdio3, ChildStdio)> {
    if tty {
        return Ok((
            Stdio3 {
                stdin: None,
                stdout: None,
                stderr: None,
            },
            ChildStdio {
                stdin: devnull()?,
                stdout: devnull()?,
                stderr: devnull()?,
            },
        ));
    }
    let (in_ours, in_theirs) = if stdin {
        let (r, w) = pipe()?;
        set_nonblocking(&w)?;
        (Some(w), Stdio::from(r))
    } else {
        (None, devnull()?)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    set_nonblocking(&out_r)?;
    set_nonblocking(&err_r)?;
    Ok((
        Stdio3 {
            stdin: in_ours,
            stdout: Some(out_r),
            stderr: Some(err_r),
        },
        ChildStdio {
            stdin: in_theirs,
            stdout: Stdio::from(out_w),
            stderr: Stdio::from(err_w),
        },
    ))
}

/// A console socket the runtime connects to and sends the pty master over.
pub fn console_listener(path: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path)
}

/// Accepts the runtime's connection on the console socket and receives the pty master.
pub fn receive_pty_master(listener: &UnixListener) -> io::Result<OwnedFd> {
    let (conn, _) = listener.accept()?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    rustix::net::recvmsg(&conn, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg {
            if let Some(fd) = fds.next() {
                set_nonblocking(&fd)?;
                return Ok(fd);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "runtime sent no pty master on the console socket",
    ))
}

/// `runc --root R --log L --log-format json <args...>` with the given stdio.
pub fn runtime_command(
    opts: &ShimOptions,
    log: &Path,
    args: &[&str],
    stdio: ChildStdio,
) -> Command {
    let mut cmd = Command::new(&opts.runtime);
    cmd.arg("--root")
        .arg(&opts.runtime_root)
        .arg("--log")
        .arg(log)
        .arg("--log-format")
        .arg("json");
    cmd.args(args);
    cmd.stdin(stdio.stdin)
        .stdout(stdio.stdout)
        .stderr(stdio.stderr);
    cmd
}

/// The last error the runtime logged (its JSON log lines carry `level` and `msg`).
pub fn runtime_error(log: &Path, fallback: &str) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut last = None;
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if matches!(v["level"].as_str(), Some("error") | Some("fatal")) {
                if let Some(m) = v["msg"].as_str() {
                    last = Some(m.to_string());
                }
            }
        } else if !line.trim().is_empty() {
            last = Some(line.trim().to_string());
        }
    }
    last.unwrap_or_else(|| fallback.to_string())
}

pub fn read_pid(path: &Path) -> io::Result<i32> {
    let s = std::fs::read_to_string(path)?;
    s.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad pid file {}", path.display()),
        )
    })
}

/// Starts the container with `runtime run -d` and returns its init pid and stdio.
pub fn start_container(opts: &ShimOptions) -> Result<(i32, Stdio3, Option<OwnedFd>), String> {
    let log = opts.bundle.join(RUNTIME_LOG);
    let pid_file = opts.bundle.join(PID_FILE);
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&pid_file);
    let (ours, theirs) =
        make_stdio(opts.tty, opts.stdin).map_err(|e| format!("creating stdio pipes: {e}"))?;
    let console_path = opts.console_path("");
    let console = if opts.tty {
        Some(console_listener(&console_path).map_err(|e| format!("creating console socket: {e}"))?)
    } else {
        None
    };
    let bundle = opts.bundle.display().to_string();
    let pid_arg = pid_file.display().to_string();
    let console_arg = console_path.display().to_string();
    let mut args = vec!["run", "-d", "--pid-file", &pid_arg, "--bundle", &bundle];
    if opts.tty {
        args.extend(["--console-socket", &console_arg]);
    }
    args.push(&opts.id);
    let mut cmd = runtime_command(opts, &log, &args, theirs);
    let status = cmd
        .status()
        .map_err(|e| format!("running {}: {e}", opts.runtime.display()))?;
    drop(cmd);
    if !status.success() {
        let _ = std::fs::remove_file(&console_path);
        return Err(runtime_error(
            &log,
            &format!("{} run failed: {status}", opts.runtime.display()),
        ));
    }
    let pty = match &console {
        Some(l) => Some(receive_pty_master(l).map_err(|e| format!("receiving the pty: {e}"))?),
        None => None,
    };
    let _ = std::fs::remove_file(&console_path);
    let pid = read_pid(&pid_file).map_err(|e| format!("reading the container pid: {e}"))?;
    Ok((pid, ours, pty))
}
