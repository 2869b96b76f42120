//! Frames on the shim socket.
//!
//! Every frame is `u32 length (big endian) | u8 tag | payload`, where length counts the tag
//! and the payload. Control messages are JSON ([`Request`], [`Event`]); the two hot paths
//! carry raw bytes: [`TAG_STDIN`] (`u8 key length | key | data`) and [`TAG_OUTPUT`]
//! (`u8 key length | key | u8 stream | data`). A process key is `""` for the container's
//! init process and the exec id for exec processes.

use serde::{Deserialize, Serialize};
use std::io;

pub const TAG_JSON: u8 = 1;
pub const TAG_STDIN: u8 = 2;
pub const TAG_OUTPUT: u8 = 3;

/// Largest frame accepted; output is sent in chunks well below it.
pub const MAX_FRAME: usize = 4 << 20;

pub const STREAM_STDOUT: u8 = 1;
pub const STREAM_STDERR: u8 = 2;

/// Key of the container's init process.
pub const INIT: &str = "";

/// What the daemon asks of the shim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Receive the output of process `key` on this connection until its end (then `Eof`).
    Attach { key: String },
    /// Stop receiving output of `key`.
    Detach { key: String },
    /// Close the stdin of `key`.
    CloseStdin { key: String },
    /// Set the pty size of `key`.
    Resize {
        key: String,
        height: u16,
        width: u16,
    },
    /// Send a signal to process `key` (init: the container's pid 1).
    Signal { key: String, signal: i32 },
    /// Start an exec process through the runtime; answered by `ExecStarted`/`ExecFailed`.
    Exec(ExecRequest),
    /// Answered by `Status`.
    Status,
    /// Receive `Exited` events for every process on this connection.
    Watch,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecRequest {
    pub key: String,
    /// Path of the OCI process JSON for `runc exec --process`.
    pub process_path: String,
    pub tty: bool,
    pub stdin: bool,
    /// Hold the process's output until a client attaches (or a few seconds pass).
    pub wait_attach: bool,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Docker's exit code: the status, or 128 + signal when killed by one.
    pub code: i32,
    pub signal: Option<i32>,
    /// Unix time in nanoseconds when the shim reaped it.
    pub finished_at_ns: i64,
    /// The kernel's OOM killer killed a process of the container during this run.
    #[serde(default)]
    pub oom_killed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStatus {
    pub key: String,
    pub pid: i32,
    pub exit: Option<ExitInfo>,
}

/// What the shim tells the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// The output of `key` has ended (both streams closed).
    Eof {
        key: String,
    },
    Exited {
        key: String,
        exit: ExitInfo,
    },
    ExecStarted {
        key: String,
        pid: i32,
    },
    ExecFailed {
        key: String,
        message: String,
    },
    Status {
        processes: Vec<ProcessStatus>,
    },
    /// The container's memory cgroup ran out of memory (a process was OOM-killed, or waits
    /// with the OOM killer disabled). Sent to watchers.
    Oom,
    /// A request without another answer (signal, resize, close stdin) was carried out.
    Ok,
    /// A request could not be carried out.
    Error {
        message: String,
    },
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Request(Request),
    Event(Event),
    Stdin {
        key: String,
        data: Vec<u8>,
    },
    Output {
        key: String,
        stream: u8,
        data: Vec<u8>,
    },
}

fn header(out: &mut Vec<u8>, tag: u8, payload_len: usize) {
    out.extend_from_slice(&((payload_len + 1) as u32).to_be_bytes());
    out.push(tag);
}

/// Appends a JSON control frame.
pub fn encode_json<T: Serialize>(out: &mut Vec<u8>, msg: &T) {
    let body = serde_json::to_vec(msg).unwrap_or_default();
    header(out, TAG_JSON, body.len());
    out.extend_from_slice(&body);
}

/// Appends a stdin frame.
pub fn encode_stdin(out: &mut Vec<u8>, key: &str, data: &[u8]) {
    let key = &key.as_bytes()[..key.len().min(255)];
    header(out, TAG_STDIN, 1 + key.len() + data.len());
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    out.extend_from_slice(data);
}

/// Appends an output frame.
pub fn encode_output(out: &mut Vec<u8>, key: &str, stream: u8, data: &[u8]) {
    let key = &key.as_bytes()[..key.len().min(255)];
    header(out, TAG_OUTPUT, 2 + key.len() + data.len());
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    out.push(stream);
    out.extend_from_slice(data);
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("shim protocol: {what}"))
}

/// Splits one complete frame off the front of `buf`, if there is one. `from_daemon` says
/// how JSON frames are read: requests on the shim's side, events on the daemon's.
pub fn decode(buf: &mut Vec<u8>, from_daemon: bool) -> io::Result<Option<Frame>> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(bad("frame length out of range"));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let tag = buf[4];
    let payload = &buf[5..4 + len];
    let frame = match tag {
        TAG_JSON if from_daemon => {
            Frame::Request(serde_json::from_slice(payload).map_err(|e| bad(&e.to_string()))?)
        }
        TAG_JSON => Frame::Event(serde_json::from_slice(payload).map_err(|e| bad(&e.to_string()))?),
        TAG_STDIN | TAG_OUTPUT => {
            let klen = *payload.first().ok_or_else(|| bad("empty payload"))? as usize;
            let key = payload.get(1..1 + klen).ok_or_else(|| bad("short key"))?;
            let key = String::from_utf8(key.to_vec()).map_err(|_| bad("key is not utf-8"))?;
            let rest = &payload[1 + klen..];
            if tag == TAG_STDIN {
                Frame::Stdin {
                    key,
                    data: rest.to_vec(),
                }
            } else {
                let (&stream, data) = rest.split_first().ok_or_else(|| bad("missing stream"))?;
                Frame::Output {
                    key,
                    stream,
                    data: data.to_vec(),
                }
            }
        }
        _ => return Err(bad("unknown tag")),
    };
    buf.drain(..4 + len);
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_partial_frames_wait() {
        let mut buf = Vec::new();
        encode_json(&mut buf, &Request::Attach { key: INIT.into() });
        encode_stdin(&mut buf, "abc", b"hello");
        let mut partial = buf[..3].to_vec();
        assert_eq!(decode(&mut partial, true).unwrap(), None);
        assert_eq!(
            decode(&mut buf, true).unwrap(),
            Some(Frame::Request(Request::Attach { key: String::new() }))
        );
        assert_eq!(
            decode(&mut buf, true).unwrap(),
            Some(Frame::Stdin {
                key: "abc".into(),
                data: b"hello".to_vec()
            })
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn output_and_events_decode_on_the_daemon_side() {
        let mut buf = Vec::new();
        encode_output(&mut buf, "", STREAM_STDERR, b"oops");
        let exit = ExitInfo {
            code: 137,
            signal: Some(9),
            finished_at_ns: 1,
            oom_killed: true,
        };
        encode_json(
            &mut buf,
            &Event::Exited {
                key: "".into(),
                exit,
            },
        );
        assert_eq!(
            decode(&mut buf, false).unwrap(),
            Some(Frame::Output {
                key: "".into(),
                stream: 2,
                data: b"oops".to_vec()
            })
        );
        assert_eq!(
            decode(&mut buf, false).unwrap(),
            Some(Frame::Event(Event::Exited {
                key: "".into(),
                exit
            }))
        );
    }

    #[test]
    fn exits_recorded_before_oom_tracking_still_read() {
        let e: ExitInfo =
            serde_json::from_str(r#"{"code":0,"signal":null,"finished_at_ns":5}"#).unwrap();
        assert!(!e.oom_killed);
    }

    #[test]
    fn oversized_frames_are_refused() {
        let mut buf = vec![0xff, 0xff, 0xff, 0xff, 1];
        assert!(decode(&mut buf, true).is_err());
    }
}
