//! Docker's JSON message streams (pull, push, load, import) rendered byte for byte as the
//! docker CLI's `jsonmessage.DisplayJSONMessagesStream` renders them.
//!
//! Off a terminal every message is a plain line and progress updates are dropped. On a
//! terminal each layer id owns one line: a new id adds a line, and an update moves the
//! cursor up to its line (`ESC[nA`), erases it (`ESC[2K`), rewrites it ending in `\r`, and
//! moves back down (`ESC[nB`). A message without progress forgets those lines, so the
//! next operation (`pull -a`, the next tag) starts below them. [`JsonMessages`] keeps that
//! state and writes to any `Write`, so tests can read the exact bytes.

use hyper::body::Incoming;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::io::Write;

/// An error the daemon reported inside the stream (`errorDetail`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StreamError(pub String);

/// Go's `time.Duration.String()` for whole seconds: `0s`, `45s`, `1m30s`, `2h0m5s`.
fn go_seconds(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// docker's `JSONProgress.String()`: `[==>   ]  1.2MB/3.4MB 5s` (the bar only on terminals
/// wider than 110 columns, the time left only with a start time).
pub fn progress_string(p: &Json, width: usize, now_unix: i64) -> String {
    let current = p.get("current").and_then(Json::as_i64).unwrap_or(0);
    let total = p.get("total").and_then(Json::as_i64).unwrap_or(0);
    let units = p.get("units").and_then(Json::as_str).unwrap_or("");
    let start = p.get("start").and_then(Json::as_i64).unwrap_or(0);
    let hide_counts = p.get("hidecounts").and_then(Json::as_bool).unwrap_or(false);
    if current <= 0 && total <= 0 {
        return String::new();
    }
    if total <= 0 {
        return if units.is_empty() {
            format!("{:>8}", crate::units::human_size(current as f64))
        } else {
            format!("{current} {units}")
        };
    }
    let percentage = (((current as f64 / total as f64) * 100.0) as i64 / 2).min(50);
    let mut bar = String::new();
    if width > 110 {
        let spaces = (50 - percentage).max(0) as usize;
        bar = format!(
            "[{}>{}] ",
            "=".repeat(percentage.max(0) as usize),
            " ".repeat(spaces)
        );
    }
    let numbers = if hide_counts {
        String::new()
    } else if units.is_empty() {
        let c = crate::units::human_size(current as f64);
        if current > total {
            format!("{c:>8}")
        } else {
            format!("{c:>8}/{}", crate::units::human_size(total as f64))
        }
    } else if current > total {
        format!("{current} {units}")
    } else {
        format!("{current}/{total} {units}")
    };
    let mut left = String::new();
    if current > 0 && start > 0 && percentage < 50 && width > 50 {
        let elapsed_ns = (now_unix - start).max(0) as i128 * 1_000_000_000;
        let per_entry = elapsed_ns / current as i128;
        let remaining = (total - current) as i128 * per_entry / 1_000_000_000;
        left = format!(" {}", go_seconds(remaining as i64));
    }
    format!("{bar}{numbers}{left}")
}

/// Go's `RFC3339NanoFixed` in the local zone, as messages with a `time` print it.
fn fixed_time(nanos: i64) -> String {
    use chrono::TimeZone;
    let t = chrono::Local.timestamp_nanos(nanos);
    t.format("%Y-%m-%dT%H:%M:%S%.9f%:z")
        .to_string()
        .replace("+00:00", "Z")
}

/// The state of one rendered stream (docker's `ids` map of layer lines).
pub struct JsonMessages {
    terminal: bool,
    width: usize,
    ids: HashMap<String, usize>,
    /// `aux` objects seen (pushed digests, build results).
    pub aux: Vec<Json>,
}

impl JsonMessages {
    pub fn new(terminal: bool, width: usize) -> Self {
        Self {
            terminal,
            width,
            ids: HashMap::new(),
            aux: Vec::new(),
        }
    }

    /// Renders one message; an `errorDetail` ends the stream with its message.
    pub fn display(&mut self, m: &Json, out: &mut dyn Write) -> anyhow::Result<()> {
        if let Some(a) = m.get("aux").filter(|a| !a.is_null()) {
            self.aux.push(a.clone());
            return Ok(());
        }
        let id = m.get("id").and_then(Json::as_str).unwrap_or("");
        let progress = m.get("progressDetail").filter(|p| p.is_object());
        let progress_msg = m.get("progress").and_then(Json::as_str).unwrap_or("");
        let mut diff = 0;
        if !id.is_empty() && (progress.is_some() || !progress_msg.is_empty()) {
            let line = match self.ids.get(id) {
                Some(l) => *l,
                None => {
                    let l = self.ids.len();
                    self.ids.insert(id.to_string(), l);
                    if self.terminal {
                        out.write_all(b"\n")?;
                    }
                    l
                }
            };
            diff = self.ids.len() - line;
            if self.terminal && diff > 0 {
                write!(out, "\x1b[{diff}A")?;
            }
        } else {
            self.ids.clear();
        }
        let res = self.display_one(m, id, progress, progress_msg, out);
        if !id.is_empty() && self.terminal && diff > 0 {
            write!(out, "\x1b[{diff}B")?;
        }
        res
    }

    fn display_one(
        &self,
        m: &Json,
        id: &str,
        progress: Option<&Json>,
        progress_msg: &str,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        if let Some(err) = m.get("errorDetail").filter(|e| e.is_object()) {
            let msg = err.get("message").and_then(Json::as_str).unwrap_or("");
            return Err(StreamError(msg.to_string()).into());
        }
        let stream = m.get("stream").and_then(Json::as_str).unwrap_or("");
        let status = m.get("status").and_then(Json::as_str).unwrap_or("");
        let now = chrono::Utc::now().timestamp();
        let prog = progress
            .map(|p| progress_string(p, self.width, now))
            .unwrap_or_default();
        let mut endl = "";
        if self.terminal && stream.is_empty() && progress.is_some() {
            out.write_all(b"\x1b[2K\r")?;
            endl = "\r";
        } else if progress.is_some() && !prog.is_empty() {
            // Progress bars are not drawn off a terminal.
            return Ok(());
        }
        if let Some(n) = m.get("timeNano").and_then(Json::as_i64).filter(|n| *n != 0) {
            write!(out, "{} ", fixed_time(n))?;
        } else if let Some(t) = m.get("time").and_then(Json::as_i64).filter(|t| *t != 0) {
            write!(out, "{} ", fixed_time(t * 1_000_000_000))?;
        }
        if !id.is_empty() {
            write!(out, "{id}: ")?;
        }
        if let Some(from) = m
            .get("from")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
        {
            write!(out, "(from {from}) ")?;
        }
        if progress.is_some() && self.terminal {
            write!(out, "{status} {prog}{endl}")?;
        } else if !progress_msg.is_empty() {
            write!(out, "{status} {progress_msg}{endl}")?;
        } else if !stream.is_empty() {
            write!(out, "{stream}{endl}")?;
        } else {
            writeln!(out, "{status}{endl}")?;
        }
        Ok(())
    }
}

/// Feeds a JSON message stream through `msgs`, writing each rendering to `out` as it comes.
pub async fn render_body(
    body: &mut Incoming,
    msgs: &mut JsonMessages,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    // Messages are newline-delimited in practice; what follows the last newline may still
    // hold whole messages.
    let rest = crate::client::for_each_line(body, |line| {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if !text.is_empty() {
            msgs.display(&serde_json::from_str(text)?, out)?;
            out.flush()?;
        }
        Ok(())
    })
    .await?;
    let rest = String::from_utf8_lossy(&rest).trim().to_string();
    for m in serde_json::Deserializer::from_str(&rest).into_iter::<Json>() {
        msgs.display(&m?, out)?;
    }
    out.flush()?;
    Ok(())
}

/// Renders a message stream to stdout (or stderr), as a terminal when `terminal`; `quiet`
/// discards the output but still fails on stream errors. Returns the `aux` objects seen.
pub async fn display(
    body: &mut Incoming,
    to_stderr: bool,
    terminal: bool,
    quiet: bool,
) -> anyhow::Result<Vec<Json>> {
    // docker asks the terminal for its width and assumes 200 columns when it cannot.
    let width = crate::term::size().map(|s| s.1 as usize).unwrap_or(200);
    let mut msgs = JsonMessages::new(terminal && !quiet, width);
    let mut out: Box<dyn Write> = if quiet {
        Box::new(std::io::sink())
    } else if to_stderr {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    render_body(body, &mut msgs, &mut out).await?;
    Ok(msgs.aux)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(terminal: bool, width: usize, msgs: &[Json]) -> String {
        let mut r = JsonMessages::new(terminal, width);
        let mut out = Vec::new();
        for m in msgs {
            r.display(m, &mut out).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    fn pull_stream() -> Vec<Json> {
        vec![
            json!({"status": "Pulling from library/busybox", "id": "latest"}),
            json!({"status": "Pulling fs layer", "progressDetail": {}, "id": "a1b2c3d4e5f6"}),
            json!({"status": "Downloading", "progressDetail": {"current": 12_300_000, "total": 45_600_000}, "progress": "[=>  ]", "id": "a1b2c3d4e5f6"}),
            json!({"status": "Pull complete", "progressDetail": {}, "id": "a1b2c3d4e5f6"}),
            json!({"status": "Digest: sha256:abc"}),
            json!({"status": "Status: Downloaded newer image for busybox:latest"}),
        ]
    }

    #[test]
    fn plain_output_drops_progress_updates() {
        assert_eq!(
            render(false, 200, &pull_stream()),
            "latest: Pulling from library/busybox\n\
             a1b2c3d4e5f6: Pulling fs layer\n\
             a1b2c3d4e5f6: Pull complete\n\
             Digest: sha256:abc\n\
             Status: Downloaded newer image for busybox:latest\n"
        );
    }

    #[test]
    fn terminal_output_redraws_each_layer_line_in_place() {
        let out = render(true, 200, &pull_stream());
        assert_eq!(
            out,
            "latest: Pulling from library/busybox\n\
             \n\x1b[1A\x1b[2K\ra1b2c3d4e5f6: Pulling fs layer \r\x1b[1B\
             \x1b[1A\x1b[2K\ra1b2c3d4e5f6: Downloading [=============>                                     ]   12.3MB/45.6MB\r\x1b[1B\
             \x1b[1A\x1b[2K\ra1b2c3d4e5f6: Pull complete \r\x1b[1B\
             Digest: sha256:abc\n\
             Status: Downloaded newer image for busybox:latest\n"
        );
    }

    #[test]
    fn second_layer_updates_move_up_by_their_distance() {
        let out = render(
            true,
            80,
            &[
                json!({"status": "Waiting", "progressDetail": {}, "id": "aaa"}),
                json!({"status": "Waiting", "progressDetail": {}, "id": "bbb"}),
                json!({"status": "Done", "progressDetail": {}, "id": "aaa"}),
            ],
        );
        assert!(
            out.ends_with("\x1b[2A\x1b[2K\raaa: Done \r\x1b[2B"),
            "{out:?}"
        );
    }

    #[test]
    fn narrow_terminals_get_no_bar() {
        assert_eq!(
            progress_string(&json!({"current": 1_000_000, "total": 2_000_000}), 80, 0),
            "     1MB/2MB"
        );
        assert_eq!(
            progress_string(&json!({"current": 5_000}), 200, 0),
            "     5kB"
        );
    }

    #[test]
    fn time_left_shows_with_a_start_time() {
        let s = progress_string(
            &json!({"current": 50, "total": 150, "start": 100}),
            120,
            110,
        );
        assert!(s.ends_with(" 20s"), "{s}");
    }

    #[test]
    fn stream_errors_end_rendering_with_the_daemon_message() {
        let mut r = JsonMessages::new(false, 80);
        let e = r
            .display(
                &json!({"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"}),
                &mut Vec::new(),
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "manifest unknown");
    }

    #[test]
    fn aux_messages_are_collected_not_printed() {
        let mut r = JsonMessages::new(false, 80);
        let mut out = Vec::new();
        r.display(
            &json!({"aux": {"Tag": "latest", "Digest": "sha256:1"}}),
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        assert_eq!(r.aux.len(), 1);
    }
}
