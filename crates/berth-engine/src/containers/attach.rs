//! Attach sessions: a client's stdin and the container's output, through the shim.
//!
//! The API layer turns an [`AttachStreams`] into a hijacked HTTP stream. A session made
//! before the container starts waits for the start (the shim then holds output until the
//! session is connected, so nothing is lost), which is how `docker run` attaches.

use super::shim_client::{self, ShimReader, ShimWriter};
use super::ContainerEntry;
use crate::Engine;
use berth_core::{Error, Result};
use berth_shim::proto::{Event, Frame, Request};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Follow live output (else only `logs`).
    pub stream: bool,
    /// Replay the log first.
    pub logs: bool,
    /// `ctrl-p,ctrl-q` style; `None` for the default.
    pub detach_keys: Option<String>,
}

/// A chunk for the client: stream 1 is stdout, 2 stderr.
#[derive(Debug, Clone)]
pub struct OutputChunk {
    pub stream: u8,
    pub data: Bytes,
}

/// What the client sends.
#[derive(Debug, Clone)]
pub enum Input {
    Data(Bytes),
    /// The client closed its stdin.
    Eof,
}

/// The two directions of an attach or exec session.
pub struct AttachStreams {
    pub tty: bool,
    pub output: mpsc::Receiver<OutputChunk>,
    /// Present when stdin is attached.
    pub input: Option<mpsc::Sender<Input>>,
}

/// Parses Docker's detach-key syntax (`ctrl-p,ctrl-q`, `a,ctrl-@`).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for key in s.split(',') {
        let k = key.trim();
        let lower = k.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [x] if x.is_ascii_lowercase() => x - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => {
                    return Err(Error::invalid(format!(
                        "Invalid escape keys ({s}) provided"
                    )))
                }
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(Error::invalid(format!(
                "Invalid escape keys ({s}) provided"
            )));
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(format!(
            "Invalid escape keys ({s}) provided"
        )));
    }
    Ok(out)
}

pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// Finds the detach sequence in a stdin stream, holding back bytes that may start it.
pub struct DetachMatcher {
    keys: Vec<u8>,
    held: Vec<u8>,
}

impl DetachMatcher {
    pub fn new(keys: Vec<u8>) -> Self {
        Self {
            keys,
            held: Vec::new(),
        }
    }
    /// Returns the bytes to pass on and whether the sequence was completed.
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if b == self.keys[self.held.len()] {
                self.held.push(b);
                if self.held.len() == self.keys.len() {
                    self.held.clear();
                    return (out, true);
                }
            } else {
                out.append(&mut self.held);
                if b == self.keys[0] {
                    self.held.push(b);
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// What a pump needs to know about the process it serves.
pub(crate) struct PumpConfig {
    pub key: String,
    pub want_stdout: bool,
    pub want_stderr: bool,
    pub tty: bool,
    /// Close the process's stdin when the client's ends.
    pub stdin_once: bool,
    pub detach: Option<Vec<u8>>,
}

/// Moves output from the shim to the client and the client's stdin to the shim until the
/// process's output ends, the client detaches or goes away. Returns the exit code the shim
/// reported on this connection, if any.
pub(crate) async fn pump(
    mut r: ShimReader,
    mut w: ShimWriter,
    cfg: PumpConfig,
    out: mpsc::Sender<OutputChunk>,
    mut input: Option<mpsc::Receiver<Input>>,
    mut on_exit: impl FnMut(berth_shim::proto::ExitInfo) + Send,
) {
    let mut matcher = cfg.detach.clone().map(DetachMatcher::new);
    loop {
        tokio::select! {
            frame = r.next() => match frame {
                Ok(Some(Frame::Output { stream, data, .. })) => {
                    let wanted = if cfg.tty || stream == berth_shim::proto::STREAM_STDOUT { cfg.want_stdout } else { cfg.want_stderr };
                    if wanted && out.send(OutputChunk { stream, data: Bytes::from(data) }).await.is_err() {
                        break;
                    }
                }
                Ok(Some(Frame::Event(Event::Exited { exit, .. }))) => on_exit(exit),
                Ok(Some(Frame::Event(Event::Eof { .. }))) | Ok(None) | Err(_) => break,
                Ok(Some(_)) => {}
            },
            msg = async { match input.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => match msg {
                Some(Input::Data(d)) => {
                    let (pass, detached) = match matcher.as_mut() {
                        Some(m) => m.feed(&d),
                        None => (d.to_vec(), false),
                    };
                    if !pass.is_empty() && w.stdin(&cfg.key, &pass).await.is_err() {
                        break;
                    }
                    if detached {
                        break;
                    }
                }
                Some(Input::Eof) | None => {
                    // As Docker: with a tty the client going away (or detaching) ends the
                    // session and leaves the process's stdin open; without one, StdinOnce
                    // closes it and the output keeps flowing.
                    if cfg.tty {
                        break;
                    }
                    input = None;
                    if cfg.stdin_once {
                        let _ = w.send(&Request::CloseStdin { key: cfg.key.clone() }).await;
                    }
                }
            },
        }
    }
    let _ = w
        .send(&Request::Detach {
            key: cfg.key.clone(),
        })
        .await;
}

/// Decrements the pending-attach count when a waiting session ends, however it ends.
struct PendingGuard(Arc<ContainerEntry>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.pending_attach.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Engine {
    /// `POST /containers/{id}/attach`.
    pub async fn attach_container(
        self: &Arc<Self>,
        name: &str,
        opts: AttachOptions,
    ) -> Result<AttachStreams> {
        let entry = self.container(name)?;
        let (tty, open_stdin, stdin_once, id) = entry.read(|c| {
            (
                c.config.tty,
                c.config.open_stdin,
                c.config.stdin_once,
                c.id.clone(),
            )
        });
        let log = if opts.logs {
            self.log_settings(&entry.snapshot())?
        } else {
            None
        };
        let detach = if tty && opts.stdin {
            Some(
                match opts.detach_keys.as_deref().filter(|s| !s.is_empty()) {
                    Some(s) => parse_detach_keys(s)?,
                    None => DEFAULT_DETACH_KEYS.to_vec(),
                },
            )
        } else {
            None
        };
        let (out_tx, out_rx) = mpsc::channel(64);
        let (in_tx, in_rx) = if opts.stdin && open_stdin {
            let (t, r) = mpsc::channel(64);
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        if opts.stream {
            self.container_event(&entry, "attach", &[]);
        }
        // Register before returning, so a start that follows holds output for us.
        let pending = if opts.stream && !entry.read(|c| c.state.is_running()) {
            entry.pending_attach.fetch_add(1, Ordering::SeqCst);
            Some(PendingGuard(entry.clone()))
        } else {
            None
        };
        let engine = self.clone();
        tokio::spawn(async move {
            if let Some(log) = log {
                let lines = tokio::task::spawn_blocking(move || {
                    super::logs::read_log_file_all(log.format, &log.path)
                })
                .await
                .unwrap_or_default();
                for l in lines {
                    let wanted = if l.stream == 2 {
                        opts.stderr
                    } else {
                        opts.stdout
                    };
                    if wanted
                        && out_tx
                            .send(OutputChunk {
                                stream: l.stream,
                                data: Bytes::from(l.data),
                            })
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
            }
            if !opts.stream {
                return;
            }
            let mut rx = entry.lifecycle();
            if pending.is_some() {
                loop {
                    let l = rx.borrow_and_update().clone();
                    if l.removed {
                        return;
                    }
                    if l.status == berth_core::container::Status::Running {
                        break;
                    }
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }
            let sock = engine.shim_socket(&id);
            let Ok((r, mut w)) = shim_client::connect(&sock).await else {
                return;
            };
            if w.send(&Request::Attach {
                key: berth_shim::proto::INIT.to_string(),
            })
            .await
            .is_err()
            {
                return;
            }
            drop(pending);
            let cfg = PumpConfig {
                key: berth_shim::proto::INIT.to_string(),
                want_stdout: opts.stdout,
                want_stderr: opts.stderr,
                tty,
                stdin_once,
                detach,
            };
            pump(r, w, cfg, out_tx, in_rx, |_| {}).await;
        });
        Ok(AttachStreams {
            tty,
            output: out_rx,
            input: in_tx,
        })
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize_container(&self, name: &str, height: u16, width: u16) -> Result<()> {
        let entry = self.container(name)?;
        let (running, id) = entry.read(|c| (c.state.is_running(), c.id.clone()));
        if !running {
            return Err(Error::conflict(format!("Container {id} is not running")));
        }
        let sock = self.shim_socket(&id);
        shim_client::command(
            &sock,
            &Request::Resize {
                key: berth_shim::proto::INIT.to_string(),
                height,
                width,
            },
        )
        .await
        .map_err(|e| Error::internal(format!("resizing tty: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("a,ctrl-@").unwrap(), vec![b'a', 0]);
        assert!(parse_detach_keys("ctrl-pp").is_err());
    }

    #[test]
    fn matcher_passes_bytes_and_finds_the_sequence() {
        let mut m = DetachMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(m.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(m.feed(b"x\x10\x11y"), (b"x".to_vec(), true));
    }
}
