//! The shim's event loop: one thread, `poll(2)` over the container's stdio, the shim socket,
//! its clients and a signalfd for SIGCHLD.

mod start;

use berth_shim::launch::{ShimOptions, StartResult, EXIT_FILE};
use berth_shim::logfile::{self, LogFormat, LogWriter, Rotation};
use berth_shim::oom::OomSource;
use berth_shim::proto::{self, Event, ExecRequest, ExitInfo, Frame, ProcessStatus, Request, INIT};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::OwnedFd;
use rustix::process::WaitOptions;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Child;
use std::time::{Duration, Instant};

/// Output is held at most this long waiting for the daemon to attach.
const HOLD_LIMIT: Duration = Duration::from_secs(5);
/// After a process exits, its output is drained at most this long (a grandchild may keep
/// the pipe open).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// A client buffering more than this stops the reading of the output it is attached to.
const CLIENT_HIGH_WATER: usize = 1 << 20;
const READ_CHUNK: usize = 64 * 1024;

struct Proc {
    key: String,
    pid: i32,
    stdin: Option<OwnedFd>,
    stdin_pending: Vec<u8>,
    close_stdin_when_flushed: bool,
    /// stdout, stderr pipes (non-tty).
    out: [Option<OwnedFd>; 2],
    pty: Option<OwnedFd>,
    exit: Option<ExitInfo>,
    exited_at: Option<Instant>,
    hold_until: Option<Instant>,
    log: bool,
    done: bool,
}

impl Proc {
    fn output_open(&self) -> bool {
        self.out.iter().any(Option::is_some) || self.pty.is_some()
    }
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    attached: Vec<String>,
    watch: bool,
    /// The client closed its side; answers can still be written.
    read_closed: bool,
    /// Writing failed: the client is gone.
    dead: bool,
}

impl Client {
    fn send(&mut self, ev: &Event) {
        proto::encode_json(&mut self.outbuf, ev);
    }
    fn flush(&mut self) {
        while !self.outbuf.is_empty() && !self.dead {
            match self.stream.write(&self.outbuf) {
                Ok(0) => self.dead = true,
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.dead = true,
            }
        }
    }
}

/// An exec whose `runtime exec -d` is still running.
struct PendingExec {
    req: ExecRequest,
    client: usize,
    child: Child,
    stdio: start::Stdio3,
    console: Option<UnixListener>,
    log: std::path::PathBuf,
    pid_file: std::path::PathBuf,
}

struct Monitor {
    opts: ShimOptions,
    procs: Vec<Proc>,
    clients: HashMap<usize, Client>,
    next_client: usize,
    pending: Vec<PendingExec>,
    /// Exit statuses of pids reaped before we knew them (an exec that ended at once).
    early_exits: HashMap<i32, ExitInfo>,
    log: Option<LogWriter>,
    log_dirty: bool,
    oom: Option<OomWatcher>,
    listener: UnixListener,
    sigfd: SignalFd,
}

/// Follows OOM kills in the container's memory cgroup.
struct OomWatcher {
    source: OomSource,
    /// Readable on OOM activity; dropped once the cgroup is gone.
    notifier: Option<OwnedFd>,
    /// Kills counted before this run's processes started, and at the last notification.
    baseline: u64,
    seen: u64,
}

impl OomWatcher {
    fn new(source: OomSource) -> OomWatcher {
        let baseline = source.kills().unwrap_or(0);
        // Without a notifier OOMs are still found at exit, from the counter.
        let notifier = source.notifier().ok();
        OomWatcher {
            source,
            notifier,
            baseline,
            seen: baseline,
        }
    }

    /// Whether the notification just drained reports a new OOM.
    fn fresh_oom(&mut self) -> bool {
        if let Some(fd) = &self.notifier {
            berth_shim::oom::drain(fd);
        }
        if !self.source.exists() {
            self.notifier = None;
            return false;
        }
        let kills = self.source.kills().unwrap_or(self.seen);
        let fresh = kills > self.seen || self.source.under_oom();
        self.seen = self.seen.max(kills);
        fresh
    }

    fn killed_any(&self) -> bool {
        self.source.kills().unwrap_or(self.seen) > self.baseline
    }
}

/// Runs the shim; returns the process exit code.
pub fn run(opts: ShimOptions) -> i32 {
    if let Some(mount) = &opts.hide_cgroup2 {
        if let Err(e) = berth_shim::launch::hide_cgroup2(mount) {
            crate::report(&StartResult::Failed {
                message: format!("hiding {} from the runtime: {e}", mount.display()),
            });
            return 1;
        }
    }
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        crate::report(&StartResult::Failed {
            message: format!("becoming subreaper: {e}"),
        });
        return 1;
    }
    // SIGCHLD arrives through the signalfd; the termination signals are held so a stray
    // SIGTERM or SIGHUP cannot orphan the container. Children get an empty mask from std.
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        mask.add(s);
    }
    if let Err(e) = mask.thread_block() {
        crate::report(&StartResult::Failed {
            message: format!("blocking signals: {e}"),
        });
        return 1;
    }
    let sigfd = match SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => fd,
        Err(e) => {
            crate::report(&StartResult::Failed {
                message: format!("creating signalfd: {e}"),
            });
            return 1;
        }
    };
    let socket = opts.socket_path();
    let _ = std::fs::remove_file(&socket);
    let listener =
        match UnixListener::bind(&socket).and_then(|l| l.set_nonblocking(true).map(|_| l)) {
            Ok(l) => l,
            Err(e) => {
                crate::report(&StartResult::Failed {
                    message: format!("listening on {}: {e}", socket.display()),
                });
                return 1;
            }
        };
    let log = match LogFormat::of_driver(&opts.log_driver) {
        None => None,
        Some(format) => {
            let rotation = Rotation {
                max_size: opts.log_max_size,
                max_files: opts.log_max_files.max(1),
                compress: opts.log_compress,
            };
            match LogWriter::open(&opts.log_path, format, rotation) {
                Ok(w) => Some(w),
                Err(e) => {
                    crate::report(&StartResult::Failed {
                        message: format!("opening log file {}: {e}", opts.log_path.display()),
                    });
                    let _ = std::fs::remove_file(&socket);
                    return 1;
                }
            }
        }
    };
    let (pid, stdio, pty) = match start::start_container(&opts) {
        Ok(x) => x,
        Err(message) => {
            crate::report(&StartResult::Failed { message });
            let _ = std::fs::remove_file(&socket);
            return 1;
        }
    };
    // The runtime has made the cgroup by now.
    let oom = opts
        .oom_watch
        .as_deref()
        .and_then(OomSource::parse)
        .map(OomWatcher::new);
    crate::report(&StartResult::Started { pid });
    // The daemon has its answer: stop holding its pipe and anything else inherited.
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
    }
    let hold_until = opts.wait_attach.then(|| Instant::now() + HOLD_LIMIT);
    let init = Proc {
        key: INIT.to_string(),
        pid,
        stdin: stdio.stdin,
        stdin_pending: Vec::new(),
        close_stdin_when_flushed: false,
        out: [stdio.stdout, stdio.stderr],
        pty,
        exit: None,
        exited_at: None,
        hold_until,
        log: true,
        done: false,
    };
    let mut m = Monitor {
        opts,
        procs: vec![init],
        clients: HashMap::new(),
        next_client: 0,
        pending: Vec::new(),
        early_exits: HashMap::new(),
        log,
        log_dirty: false,
        oom,
        listener,
        sigfd,
    };
    m.event_loop();
    m.finish();
    0
}

#[derive(Clone, Copy)]
enum Token {
    Signal,
    Oom,
    Listener,
    Client(usize),
    Out(usize, usize),
    Pty(usize),
    Stdin(usize),
}

impl Monitor {
    fn init(&self) -> &Proc {
        &self.procs[0]
    }

    fn event_loop(&mut self) {
        let mut buf = vec![0u8; READ_CHUNK];
        while !self.init().done {
            let timeout = self.next_timeout();
            let ready = match self.poll_once(timeout) {
                Ok(r) => r,
                Err(_) => continue,
            };
            for (token, flags) in ready {
                match token {
                    Token::Signal => self.on_signal(),
                    Token::Oom => self.on_oom(),
                    Token::Listener => self.accept_clients(),
                    Token::Client(id) => self.on_client(id, flags),
                    Token::Out(p, s) => self.on_output(p, Some(s), &mut buf),
                    Token::Pty(p) => self.on_output(p, None, &mut buf),
                    Token::Stdin(p) => self.flush_stdin(p),
                }
            }
            self.housekeeping();
        }
    }

    fn next_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut t: Option<Duration> = None;
        let mut consider = |d: Duration| t = Some(t.map_or(d, |x| x.min(d)));
        for p in &self.procs {
            if let Some(h) = p.hold_until {
                consider(h.saturating_duration_since(now));
            }
            if let Some(e) = p.exited_at {
                consider((e + DRAIN_LIMIT).saturating_duration_since(now));
            }
        }
        t
    }

    fn poll_once(&mut self, timeout: Option<Duration>) -> io::Result<Vec<(Token, PollFlags)>> {
        let mut tokens = Vec::new();
        let mut fds: Vec<PollFd<'_>> = Vec::new();
        fds.push(PollFd::new(&self.sigfd, PollFlags::IN));
        tokens.push(Token::Signal);
        fds.push(PollFd::new(&self.listener, PollFlags::IN));
        tokens.push(Token::Listener);
        if let Some(fd) = self.oom.as_ref().and_then(|o| o.notifier.as_ref()) {
            fds.push(PollFd::new(fd, PollFlags::IN));
            tokens.push(Token::Oom);
        }
        for (id, c) in &self.clients {
            let mut f = if c.read_closed {
                PollFlags::empty()
            } else {
                PollFlags::IN
            };
            if !c.outbuf.is_empty() {
                f |= PollFlags::OUT;
            }
            fds.push(PollFd::new(&c.stream, f));
            tokens.push(Token::Client(*id));
        }
        for (i, p) in self.procs.iter().enumerate() {
            let blocked = p.hold_until.is_some()
                || self
                    .clients
                    .values()
                    .any(|c| c.outbuf.len() > CLIENT_HIGH_WATER && c.attached.contains(&p.key));
            if !blocked {
                for (s, fd) in p.out.iter().enumerate() {
                    if let Some(fd) = fd {
                        fds.push(PollFd::new(fd, PollFlags::IN));
                        tokens.push(Token::Out(i, s));
                    }
                }
                if let Some(fd) = &p.pty {
                    fds.push(PollFd::new(fd, PollFlags::IN));
                    tokens.push(Token::Pty(i));
                }
            }
            if !p.stdin_pending.is_empty() {
                if let Some(fd) = p.stdin.as_ref().filter(|_| p.pty.is_none()) {
                    fds.push(PollFd::new(fd, PollFlags::OUT));
                    tokens.push(Token::Stdin(i));
                }
            }
        }
        let ts = timeout.map(|d| rustix::event::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: d.subsec_nanos() as i64,
        });
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
        Ok(fds
            .iter()
            .zip(tokens)
            .filter(|(fd, _)| !fd.revents().is_empty())
            .map(|(fd, t)| (t, fd.revents()))
            .collect())
    }

    fn on_signal(&mut self) {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        while let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::NOHANG) {
            self.on_reaped(pid.as_raw_nonzero().get(), exit_info(status));
        }
    }

    fn on_oom(&mut self) {
        let Some(w) = self.oom.as_mut() else { return };
        if !w.fresh_oom() {
            return;
        }
        for c in self.clients.values_mut().filter(|c| c.watch) {
            c.send(&Event::Oom);
            c.flush();
        }
    }

    fn on_reaped(&mut self, pid: i32, mut exit: ExitInfo) {
        if pid == self.procs[0].pid {
            exit.oom_killed = self.oom.as_ref().is_some_and(OomWatcher::killed_any);
        }
        if let Some(i) = self.pending.iter().position(|p| p.child.id() as i32 == pid) {
            let pending = self.pending.swap_remove(i);
            self.exec_runtime_done(pending, exit);
            return;
        }
        if let Some(p) = self
            .procs
            .iter_mut()
            .find(|p| p.pid == pid && p.exit.is_none())
        {
            p.exit = Some(exit);
            p.exited_at = Some(Instant::now());
            return;
        }
        if self.early_exits.len() < 1024 {
            self.early_exits.insert(pid, exit);
        }
    }

    fn accept_clients(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let id = self.next_client;
            self.next_client += 1;
            self.clients.insert(
                id,
                Client {
                    stream,
                    inbuf: Vec::new(),
                    outbuf: Vec::new(),
                    attached: Vec::new(),
                    watch: false,
                    read_closed: false,
                    dead: false,
                },
            );
        }
    }

    fn on_client(&mut self, id: usize, flags: PollFlags) {
        if flags.contains(PollFlags::OUT) {
            if let Some(c) = self.clients.get_mut(&id) {
                c.flush();
            }
        }
        if !flags.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            return;
        }
        let mut frames = Vec::new();
        if let Some(c) = self.clients.get_mut(&id) {
            if c.read_closed {
                if flags.intersects(PollFlags::HUP | PollFlags::ERR) {
                    c.dead = true;
                }
                return;
            }
            let mut tmp = [0u8; 16 * 1024];
            loop {
                match c.stream.read(&mut tmp) {
                    Ok(0) => {
                        c.read_closed = true;
                        break;
                    }
                    Ok(n) => c.inbuf.extend_from_slice(&tmp[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        c.dead = true;
                        break;
                    }
                }
            }
            loop {
                match proto::decode(&mut c.inbuf, true) {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(_) => {
                        c.dead = true;
                        break;
                    }
                }
            }
        }
        for f in frames {
            self.on_frame(id, f);
        }
    }

    fn on_frame(&mut self, client: usize, frame: Frame) {
        match frame {
            Frame::Stdin { key, data } => {
                if let Some(i) = self.proc_index(&key) {
                    self.procs[i].stdin_pending.extend_from_slice(&data);
                    self.flush_stdin(i);
                }
            }
            Frame::Request(req) => self.on_request(client, req),
            Frame::Event(_) | Frame::Output { .. } => {}
        }
    }

    fn proc_index(&self, key: &str) -> Option<usize> {
        self.procs.iter().position(|p| p.key == key)
    }

    fn reply(&mut self, client: usize, ev: Event) {
        if let Some(c) = self.clients.get_mut(&client) {
            c.send(&ev);
            c.flush();
        }
    }

    fn on_request(&mut self, client: usize, req: Request) {
        match req {
            Request::Attach { key } => {
                let Some(i) = self.proc_index(&key) else {
                    // Unknown or long finished: the stream is simply over.
                    self.reply(client, Event::Eof { key });
                    return;
                };
                self.procs[i].hold_until = None;
                if self.procs[i].done {
                    if let Some(exit) = self.procs[i].exit {
                        self.reply(
                            client,
                            Event::Exited {
                                key: key.clone(),
                                exit,
                            },
                        );
                    }
                    self.reply(client, Event::Eof { key });
                } else if let Some(c) = self.clients.get_mut(&client) {
                    if !c.attached.contains(&key) {
                        c.attached.push(key);
                    }
                }
            }
            Request::Detach { key } => {
                if let Some(c) = self.clients.get_mut(&client) {
                    c.attached.retain(|k| *k != key);
                }
            }
            Request::CloseStdin { key } => {
                if let Some(i) = self.proc_index(&key) {
                    self.procs[i].close_stdin_when_flushed = true;
                    self.flush_stdin(i);
                }
                self.reply(client, Event::Ok);
            }
            Request::Resize { key, height, width } => {
                let result = match self
                    .proc_index(&key)
                    .and_then(|i| self.procs[i].pty.as_ref())
                {
                    Some(fd) => {
                        let ws = rustix::termios::Winsize {
                            ws_row: height,
                            ws_col: width,
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        rustix::termios::tcsetwinsize(fd, ws).map_err(|e| e.to_string())
                    }
                    None => Err(format!("process {key:?} has no tty")),
                };
                self.reply(
                    client,
                    result.map_or_else(|message| Event::Error { message }, |_| Event::Ok),
                );
            }
            Request::Signal { key, signal } => {
                let result = match self.proc_index(&key) {
                    Some(i) if self.procs[i].exit.is_none() => {
                        berth_sys::send_signal(self.procs[i].pid, signal).map_err(|e| e.to_string())
                    }
                    _ => Err(format!("process {key:?} is not running")),
                };
                self.reply(
                    client,
                    result.map_or_else(|message| Event::Error { message }, |_| Event::Ok),
                );
            }
            Request::Exec(req) => self.start_exec(client, req),
            Request::Status => {
                let processes = self
                    .procs
                    .iter()
                    .map(|p| ProcessStatus {
                        key: p.key.clone(),
                        pid: p.pid,
                        exit: p.exit.filter(|_| p.done),
                    })
                    .collect();
                self.reply(client, Event::Status { processes });
            }
            Request::Watch => {
                if let Some(c) = self.clients.get_mut(&client) {
                    c.watch = true;
                }
                // A process that finished before the watcher came is announced at once.
                let done: Vec<(String, ExitInfo)> = self
                    .procs
                    .iter()
                    .filter(|p| p.done)
                    .filter_map(|p| p.exit.map(|e| (p.key.clone(), e)))
                    .collect();
                for (key, exit) in done {
                    self.reply(client, Event::Exited { key, exit });
                }
            }
        }
    }

    fn start_exec(&mut self, client: usize, req: ExecRequest) {
        if self.init().exit.is_some() {
            self.reply(
                client,
                Event::ExecFailed {
                    key: req.key,
                    message: "container is not running".into(),
                },
            );
            return;
        }
        let safe_key: String = req
            .key
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let log = self.opts.bundle.join(format!("exec-{safe_key}.log"));
        let pid_file = self.opts.bundle.join(format!("exec-{safe_key}.pid"));
        let console_path = self.opts.console_path(&req.key);
        let result = (|| -> io::Result<PendingExec> {
            let (ours, theirs) = start::make_stdio(req.tty, req.stdin)?;
            let console = if req.tty {
                Some(start::console_listener(&console_path)?)
            } else {
                None
            };
            let pid_arg = pid_file.display().to_string();
            let console_arg = console_path.display().to_string();
            let mut args = vec![
                "exec",
                "-d",
                "--pid-file",
                &pid_arg,
                "--process",
                &req.process_path,
            ];
            if req.tty {
                args.extend(["--console-socket", &console_arg]);
            }
            args.push(&self.opts.id);
            let mut cmd = start::runtime_command(&self.opts, &log, &args, theirs);
            let child = cmd.spawn()?;
            Ok(PendingExec {
                req: req.clone(),
                client,
                child,
                stdio: ours,
                console,
                log: log.clone(),
                pid_file: pid_file.clone(),
            })
        })();
        match result {
            Ok(p) => self.pending.push(p),
            Err(e) => self.reply(
                client,
                Event::ExecFailed {
                    key: req.key,
                    message: format!("starting exec: {e}"),
                },
            ),
        }
    }

    fn exec_runtime_done(&mut self, p: PendingExec, runtime_exit: ExitInfo) {
        let key = p.req.key.clone();
        let cleanup = |p: &PendingExec| {
            let _ = std::fs::remove_file(&p.log);
            let _ = std::fs::remove_file(&p.pid_file);
            if let Some(l) = &p.console {
                if let Ok(addr) = l.local_addr() {
                    if let Some(path) = addr.as_pathname() {
                        let _ = std::fs::remove_file(path);
                    }
                }
            }
        };
        if runtime_exit.code != 0 {
            let message = start::runtime_error(&p.log, "exec failed");
            cleanup(&p);
            self.reply(p.client, Event::ExecFailed { key, message });
            return;
        }
        let pid = match start::read_pid(&p.pid_file) {
            Ok(pid) => pid,
            Err(e) => {
                cleanup(&p);
                self.reply(
                    p.client,
                    Event::ExecFailed {
                        key,
                        message: e.to_string(),
                    },
                );
                return;
            }
        };
        let pty = match &p.console {
            Some(l) => match start::receive_pty_master(l) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    cleanup(&p);
                    self.reply(
                        p.client,
                        Event::ExecFailed {
                            key,
                            message: e.to_string(),
                        },
                    );
                    return;
                }
            },
            None => None,
        };
        cleanup(&p);
        let exit = self.early_exits.remove(&pid);
        self.procs.push(Proc {
            key: key.clone(),
            pid,
            stdin: p.stdio.stdin,
            stdin_pending: Vec::new(),
            close_stdin_when_flushed: false,
            out: [p.stdio.stdout, p.stdio.stderr],
            pty,
            exit,
            exited_at: exit.map(|_| Instant::now()),
            hold_until: p.req.wait_attach.then(|| Instant::now() + HOLD_LIMIT),
            log: false,
            done: false,
        });
        self.reply(p.client, Event::ExecStarted { key, pid });
    }

    fn on_output(&mut self, i: usize, stream: Option<usize>, buf: &mut [u8]) {
        let p = &mut self.procs[i];
        let fd = match stream {
            Some(s) => p.out[s].as_ref(),
            None => p.pty.as_ref(),
        };
        let Some(fd) = fd else { return };
        let stream_id = match stream {
            Some(1) => proto::STREAM_STDERR,
            _ => proto::STREAM_STDOUT,
        };
        let n = match rustix::io::read(fd, &mut *buf) {
            Ok(0) | Err(rustix::io::Errno::IO) => 0,
            Ok(n) => n,
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => return,
            Err(_) => 0,
        };
        if n == 0 {
            match stream {
                Some(s) => p.out[s] = None,
                None => p.pty = None,
            }
            if p.log {
                if let Some(w) = self.log.as_mut() {
                    let _ = w.finish_stream(stream_id);
                    self.log_dirty = true;
                }
            }
            return;
        }
        let data = &buf[..n];
        if p.log {
            if let Some(w) = self.log.as_mut() {
                let _ = w.write(stream_id, data);
                self.log_dirty = true;
            }
        }
        let key = p.key.clone();
        for c in self.clients.values_mut() {
            if c.attached.contains(&key) {
                proto::encode_output(&mut c.outbuf, &key, stream_id, data);
                c.flush();
            }
        }
    }

    fn flush_stdin(&mut self, i: usize) {
        let p = &mut self.procs[i];
        let target = if p.pty.is_some() {
            p.pty.as_ref()
        } else {
            p.stdin.as_ref()
        };
        if let Some(fd) = target {
            while !p.stdin_pending.is_empty() {
                match rustix::io::write(fd, &p.stdin_pending) {
                    Ok(n) => {
                        p.stdin_pending.drain(..n);
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(rustix::io::Errno::AGAIN) => break,
                    Err(_) => {
                        p.stdin_pending.clear();
                        p.stdin = None;
                        break;
                    }
                }
            }
        } else {
            p.stdin_pending.clear();
        }
        if p.close_stdin_when_flushed && p.stdin_pending.is_empty() {
            if p.pty.is_some() {
                // A pty has no separate stdin; send EOF (^D) as a terminal would.
                if let Some(fd) = p.pty.as_ref() {
                    let _ = rustix::io::write(fd, &[4u8]);
                }
            }
            p.stdin = None;
            p.close_stdin_when_flushed = false;
        }
    }

    /// Releases held output, ends drains that took too long, announces finished processes,
    /// drops dead clients and flushes the log.
    fn housekeeping(&mut self) {
        let now = Instant::now();
        let mut finished = Vec::new();
        for (i, p) in self.procs.iter_mut().enumerate() {
            if p.hold_until.is_some_and(|h| now >= h) {
                p.hold_until = None;
            }
            if p.done {
                continue;
            }
            if p.hold_until.is_some() {
                // Held output is not drained yet; its drain time starts when released.
                if p.exited_at.is_some() {
                    p.exited_at = Some(now);
                }
                continue;
            }
            if let Some(at) = p.exited_at {
                let drained = !p.output_open();
                if drained || now >= at + DRAIN_LIMIT {
                    p.out = [None, None];
                    p.pty = None;
                    p.stdin = None;
                    p.done = true;
                    finished.push(i);
                }
            }
        }
        if let Some(w) = self.log.as_mut() {
            if finished.contains(&0) {
                // The log is complete (rotations compressed) before the exit is announced.
                let _ = w.finish_stream(proto::STREAM_STDOUT);
                let _ = w.finish_stream(proto::STREAM_STDERR);
                let _ = w.close();
                self.log_dirty = false;
            } else if self.log_dirty {
                let _ = w.flush();
                self.log_dirty = false;
            }
        }
        for i in finished {
            let key = self.procs[i].key.clone();
            let Some(exit) = self.procs[i].exit else {
                continue;
            };
            if i == 0 {
                self.write_exit_file(exit);
            }
            for c in self.clients.values_mut() {
                let attached = c.attached.contains(&key);
                if c.watch || attached {
                    c.send(&Event::Exited {
                        key: key.clone(),
                        exit,
                    });
                }
                if attached {
                    c.send(&Event::Eof { key: key.clone() });
                    c.attached.retain(|k| *k != key);
                }
                c.flush();
            }
        }
        // Finished exec processes are forgotten once announced; init stays until the end.
        let mut idx = 0;
        self.procs.retain(|p| {
            idx += 1;
            idx == 1 || !p.done
        });
        // A client stays while it can still be written to and may still want something.
        self.clients.retain(|_, c| {
            let finished =
                c.read_closed && c.outbuf.is_empty() && c.attached.is_empty() && !c.watch;
            !(c.dead || finished)
        });
    }

    fn write_exit_file(&self, exit: ExitInfo) {
        let path = self.opts.bundle.join(EXIT_FILE);
        let tmp = self.opts.bundle.join(format!("{EXIT_FILE}.tmp"));
        if let Ok(bytes) = serde_json::to_vec(&exit) {
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &path);
            }
        }
    }

    /// After init is done: deliver what clients still buffer, clean the runtime's state,
    /// and leave.
    fn finish(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self
            .clients
            .values()
            .any(|c| !c.outbuf.is_empty() && !c.dead)
            && Instant::now() < deadline
        {
            for c in self.clients.values_mut() {
                c.flush();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(w) = self.log.as_mut() {
            let _ = w.close();
        }
        // The bundle may already be gone (the daemon removes it with the container).
        let log = std::path::Path::new("/dev/null");
        let _ = start::runtime_command(
            &self.opts,
            log,
            &["delete", "--force", &self.opts.id],
            start::ChildStdio {
                stdin: std::process::Stdio::null(),
                stdout: std::process::Stdio::null(),
                stderr: std::process::Stdio::null(),
            },
        )
        .status();
        let _ = std::fs::remove_file(self.opts.socket_path());
    }
}

fn exit_info(status: rustix::process::WaitStatus) -> ExitInfo {
    let (code, signal) = match (status.exit_status(), status.terminating_signal()) {
        (Some(c), _) => (c, None),
        (None, Some(s)) => (128 + s, Some(s)),
        _ => (255, None),
    };
    ExitInfo {
        code,
        signal,
        finished_at_ns: logfile::now_ns(),
        oom_killed: false,
    }
}
