//! Docker's JSON message streams (pull, push, load, import) rendered as the docker CLI
//! renders them: plain lines when the output is not a terminal (progress bars dropped),
//! one live line per layer with indicatif when it is.

use crate::client::next_chunk;
use hyper::body::Incoming;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::io::Write;

/// An error the daemon reported inside the stream (`errorDetail`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StreamError(pub String);

/// docker's `Progress.String()` for the terminal: `[==>   ]  1.2MB/3.4MB`.
pub fn progress_string(p: &Json, width: usize) -> String {
    let current = p.get("current").and_then(Json::as_i64).unwrap_or(0);
    let total = p.get("total").and_then(Json::as_i64).unwrap_or(0);
    if current <= 0 && total <= 0 {
        return String::new();
    }
    let hcur = crate::units::human_size(current as f64);
    if total <= 0 {
        return format!("{hcur:>8}");
    }
    let htot = crate::units::human_size(total as f64);
    let pct = ((current as f64 / total as f64) * 100.0).clamp(0.0, 100.0) as usize;
    let bar_w = if width > 110 {
        50
    } else {
        110usize.saturating_sub(60).max(10)
    };
    let filled = pct * bar_w / 100;
    let arrow = if filled < bar_w { ">" } else { "" };
    let bar = format!(
        "[{}{}{}]",
        "=".repeat(filled),
        arrow,
        " ".repeat(bar_w.saturating_sub(filled + arrow.len()))
    );
    format!("{bar} {:>8}/{}", hcur, htot)
}

/// A plain (non-terminal) line for one message, or `None` when docker prints nothing.
pub fn plain_line(m: &Json) -> Option<String> {
    if m.get("progressDetail")
        .and_then(|p| p.get("current"))
        .and_then(Json::as_i64)
        .unwrap_or(0)
        > 0
    {
        return None;
    }
    let mut s = String::new();
    if let Some(id) = m.get("id").and_then(Json::as_str).filter(|s| !s.is_empty()) {
        s.push_str(&format!("{id}: "));
    }
    if let Some(from) = m
        .get("from")
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
    {
        s.push_str(&format!("(from {from}) "));
    }
    if let Some(stream) = m
        .get("stream")
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
    {
        s.push_str(stream);
        return Some(s);
    }
    let status = m.get("status").and_then(Json::as_str).unwrap_or("");
    if let Some(pm) = m
        .get("progress")
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
    {
        if m.get("progressDetail").is_none() {
            s.push_str(&format!("{status} {pm}\n"));
            return Some(s);
        }
    }
    s.push_str(status);
    s.push('\n');
    Some(s)
}

/// Renders a message stream to `out` (stdout or stderr); returns the `aux` objects seen.
pub async fn display(
    body: &mut Incoming,
    to_stderr: bool,
    terminal: bool,
    quiet: bool,
) -> anyhow::Result<Vec<Json>> {
    let mut buf = Vec::new();
    let mut aux = Vec::new();
    let multi = MultiProgress::with_draw_target(if terminal && !quiet {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    if terminal && !quiet && !to_stderr {
        multi.set_draw_target(ProgressDrawTarget::stdout());
    }
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let width = crate::term::size().map(|s| s.1 as usize).unwrap_or(80);
    let style =
        ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut handle = |m: Json| -> anyhow::Result<()> {
        if let Some(err) = m
            .get("errorDetail")
            .and_then(|e| e.get("message"))
            .and_then(Json::as_str)
            .or_else(|| m.get("error").and_then(Json::as_str))
        {
            return Err(StreamError(err.to_string()).into());
        }
        if let Some(a) = m.get("aux") {
            aux.push(a.clone());
        }
        if quiet {
            return Ok(());
        }
        let id = m.get("id").and_then(Json::as_str).unwrap_or("").to_string();
        if terminal && !id.is_empty() && m.get("stream").is_none() {
            let status = m.get("status").and_then(Json::as_str).unwrap_or("");
            let prog = m
                .get("progressDetail")
                .map(|p| progress_string(p, width))
                .unwrap_or_default();
            let line = if prog.is_empty() {
                format!("{id}: {status}")
            } else {
                format!("{id}: {status} {prog}")
            };
            let bar = bars.entry(id).or_insert_with(|| {
                let b = multi.add(ProgressBar::new_spinner());
                b.set_style(style.clone());
                b
            });
            bar.set_message(line);
            bar.tick();
            return Ok(());
        }
        if let Some(line) = plain_line(&m) {
            let r = if terminal && !bars.is_empty() {
                multi
                    .println(line.trim_end_matches('\n'))
                    .map_err(anyhow::Error::from)
            } else if to_stderr {
                std::io::stderr()
                    .write_all(line.as_bytes())
                    .map_err(anyhow::Error::from)
            } else {
                let mut o = std::io::stdout().lock();
                o.write_all(line.as_bytes())
                    .and_then(|_| o.flush())
                    .map_err(anyhow::Error::from)
            };
            r?;
        }
        Ok(())
    };
    while let Some(chunk) = next_chunk(body).await {
        buf.extend_from_slice(&chunk?);
        while let Some(pos) = buf.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            handle(serde_json::from_str(line)?)?;
        }
    }
    let rest = String::from_utf8_lossy(&buf).trim().to_string();
    if !rest.is_empty() {
        for m in serde_json::Deserializer::from_str(&rest).into_iter::<Json>() {
            handle(m?)?;
        }
    }
    for b in bars.values() {
        b.finish();
    }
    Ok(aux)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_lines_show_id_and_status() {
        assert_eq!(
            plain_line(&json!({"status": "Pulling fs layer", "id": "abc"})).unwrap(),
            "abc: Pulling fs layer\n"
        );
        assert_eq!(
            plain_line(&json!({"stream": "Loaded image: busybox:latest\n"})).unwrap(),
            "Loaded image: busybox:latest\n"
        );
        assert_eq!(
            plain_line(&json!({"status": "sha256:1234"})).unwrap(),
            "sha256:1234\n"
        );
    }

    #[test]
    fn progress_updates_are_dropped_off_a_terminal() {
        assert!(plain_line(&json!({"status": "Downloading", "id": "abc", "progressDetail": {"current": 5, "total": 10}})).is_none());
    }

    #[test]
    fn progress_bars_show_sizes() {
        let s = progress_string(&json!({"current": 1_000_000, "total": 2_000_000}), 200);
        assert!(s.starts_with("[=========================>"), "{s}");
        assert!(s.ends_with("1MB/2MB"), "{s}");
    }
}
