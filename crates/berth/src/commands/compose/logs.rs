//! Container output with Docker Compose's prefixes: `web-1  | line`, each container in its
//! own colour on a terminal. Used by `logs` and by attached `up`, which also reports
//! `web-1 exited with code 0` and stops the project on Ctrl-C or, with
//! `--abort-on-container-exit`, when the first container exits.

use super::up::{stop_container, Ready, Session};
use super::{ctr_path, Compose};
use crate::client::{next_chunk, Client};
use crate::flags::Parsed;
use crate::stream::{Channel, Demuxer};
use std::io::Write;
use std::sync::Arc;

/// Colours of container prefixes, in turn (cyan, yellow, green, magenta, blue, then
/// their bright forms).
const COLORS: &[u8] = &[36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

/// Writes prefixed lines to stdout, one whole line at a time.
pub struct LogPrinter {
    width: usize,
    color: bool,
    no_prefix: bool,
}

impl LogPrinter {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>, color: bool, no_prefix: bool) -> Self {
        let width = names
            .into_iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            + 1;
        LogPrinter {
            width,
            color,
            no_prefix,
        }
    }

    fn paint(&self, idx: usize, text: &str) -> String {
        if self.color {
            format!("\x1b[{}m{text}\x1b[0m", COLORS[idx % COLORS.len()])
        } else {
            text.to_string()
        }
    }

    /// The prefix of a container's lines: the name padded, then `|`.
    pub fn prefix(&self, idx: usize, name: &str) -> String {
        if self.no_prefix {
            return String::new();
        }
        let w = self.width;
        format!("{} ", self.paint(idx, &format!("{name:<w$} |")))
    }

    pub fn line(&self, idx: usize, name: &str, text: &str) {
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{}{text}", self.prefix(idx, name));
        let _ = o.flush();
    }

    /// A message in the container's colour (`web-1 exited with code 0`).
    pub fn note(&self, idx: usize, text: &str) {
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{}", self.paint(idx, text));
        let _ = o.flush();
    }
}

/// Splits a byte stream into lines, keeping a partial last line for the next chunk.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    fn feed(&mut self, data: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            out.push(text.trim_end_matches('\r').to_string());
        }
        out
    }

    fn rest(&mut self) -> Option<String> {
        if self.buf.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&self.buf)
            .trim_end_matches('\r')
            .to_string();
        self.buf.clear();
        Some(text)
    }
}

/// Streams one container's logs through the printer until the daemon ends the stream.
pub async fn stream_logs(
    client: &Client,
    id: &str,
    query: &[(&str, String)],
    printer: &LogPrinter,
    idx: usize,
    name: &str,
) -> anyhow::Result<()> {
    let info = client.get_json(&ctr_path(id, "json"), &[]).await?;
    let tty = info["Config"]["Tty"] == serde_json::json!(true);
    let mut query = query.to_vec();
    // `since=start`: the output of the container's current run only.
    if let Some(i) = query
        .iter()
        .position(|(k, v)| *k == "since" && v == "start")
    {
        let started = info["State"]["StartedAt"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        match started {
            Some(t) => {
                let t = t - chrono::Duration::microseconds(1);
                query[i].1 = format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos());
            }
            None => {
                query.remove(i);
            }
        }
    }
    let res = client
        .send(
            hyper::Method::GET,
            &ctr_path(id, "logs"),
            &query,
            crate::client::empty_body(),
            &[],
        )
        .await?;
    let mut body = res.into_body();
    let mut demux = Demuxer::default();
    let (mut out, mut err) = (Lines::default(), Lines::default());
    while let Some(chunk) = next_chunk(&mut body).await {
        let Ok(chunk) = chunk else { break };
        let frames = if tty {
            vec![(Channel::Stdout, chunk.to_vec())]
        } else {
            demux.feed(&chunk)
        };
        for (ch, data) in frames {
            let lines = match ch {
                Channel::Stderr => err.feed(&data),
                _ => out.feed(&data),
            };
            for l in lines {
                printer.line(idx, name, &l);
            }
        }
    }
    for l in [out.rest(), err.rest()].into_iter().flatten() {
        printer.line(idx, name, &l);
    }
    Ok(())
}

pub struct AttachOptions {
    pub abort: bool,
    pub exit_code_from: String,
    pub no_prefix: bool,
    pub color: bool,
    pub timeout: Vec<(&'static str, String)>,
}

/// Attached `up`: prints the containers' output until they all exit (or one does, with
/// `--abort-on-container-exit`), or Ctrl-C stops the project. Returns the exit code.
pub async fn attach_until_done(
    c: &Compose,
    session: &Arc<Session>,
    ctrs: Vec<Ready>,
    opts: AttachOptions,
) -> anyhow::Result<i32> {
    if ctrs.is_empty() {
        return Ok(0);
    }
    let names: Vec<&str> = ctrs.iter().map(|r| r.name.as_str()).collect();
    println!("Attaching to {}", names.join(", "));
    let printer = Arc::new(LogPrinter::new(
        names.iter().copied(),
        opts.color,
        opts.no_prefix,
    ));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String, i64)>();
    let service_of = |name: &str| {
        let ready = session.ready.lock().unwrap_or_else(|e| e.into_inner());
        ready
            .iter()
            .find(|(_, list)| list.iter().any(|r| r.name == name))
            .map(|(s, _)| s.clone())
            .unwrap_or_default()
    };
    for (idx, r) in ctrs.iter().enumerate() {
        let client = c.client.clone();
        let printer = printer.clone();
        let tx = tx.clone();
        let r = r.clone();
        let svc = service_of(&r.name);
        tokio::spawn(async move {
            let since = match r
                .started
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            {
                Some(d) => format!("{}.{:09}", d.as_secs(), d.subsec_nanos()),
                None => "start".to_string(),
            };
            let q = [
                ("stdout", "1".to_string()),
                ("stderr", "1".to_string()),
                ("follow", "1".to_string()),
                ("since", since),
            ];
            let _ = stream_logs(&client, &r.id, &q, &printer, idx, &r.name).await;
            let code = super::up::wait_exit(&client, &r.id).await.unwrap_or(-1);
            printer.note(idx, &format!("{} exited with code {code}", r.name));
            let _ = tx.send((svc, r.name.clone(), code));
        });
    }
    drop(tx);
    let mut remaining = ctrs.len();
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut exit_code_from: Option<i32> = None;
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some((svc, _name, code)) = ev else { return Ok(exit_code_from.unwrap_or(0)) };
                remaining -= 1;
                if !opts.exit_code_from.is_empty() && svc == opts.exit_code_from {
                    exit_code_from = Some(code as i32);
                }
                if opts.abort {
                    println!("Aborting on container exit...");
                    stop_all(c, session, &opts.timeout).await?;
                    if opts.exit_code_from.is_empty() {
                        return Ok(code as i32);
                    }
                    if let Some(code) = exit_code_from {
                        return Ok(code);
                    }
                    // The selected service was stopped by the abort: its code is the one it
                    // exited with then.
                    let ready = session.ready.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let mut code = 0;
                    for r in ready.get(&opts.exit_code_from).into_iter().flatten() {
                        code = super::up::wait_exit(&c.client, &r.id).await.unwrap_or(-1) as i32;
                    }
                    return Ok(code);
                }
                if remaining == 0 {
                    return Ok(exit_code_from.unwrap_or(0));
                }
            }
            _ = interrupt.recv() => {
                println!("Gracefully stopping... (press Ctrl+C again to force)");
                stop_all(c, session, &opts.timeout).await?;
                return Ok(130);
            }
            _ = terminate.recv() => {
                stop_all(c, session, &opts.timeout).await?;
                return Ok(143);
            }
        }
    }
}

/// Stops every container `up` made or kept, dependents first.
async fn stop_all(
    c: &Compose,
    session: &Arc<Session>,
    timeout: &[(&'static str, String)],
) -> anyhow::Result<()> {
    let progress = c.progress();
    let ready = session
        .ready
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let names: std::collections::BTreeSet<String> = ready.keys().cloned().collect();
    let order = super::dependents_among(&c.project, &names);
    let client = c.client.clone();
    let timeout: Vec<(&'static str, String)> = timeout.to_vec();
    let progress2 = progress.clone();
    let r = super::in_dependency_order(order, move |svc| {
        let list = ready.get(&svc).cloned().unwrap_or_default();
        let client = client.clone();
        let progress = progress2.clone();
        let timeout = timeout.clone();
        async move {
            let jobs = list
                .iter()
                .map(|r| stop_container(&client, &progress, &r.id, &r.name, &timeout));
            futures_util::future::try_join_all(jobs).await.map(|_| ())
        }
    })
    .await;
    progress.finish();
    r
}

/// `logs [SERVICE...]`.
pub async fn logs_command(c: &Compose, p: &Parsed) -> anyhow::Result<()> {
    let mut ctrs = c.service_containers(&p.args, true).await?;
    let index = p.string("index");
    if !index.is_empty() {
        let n: u64 = index
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid --index {index:?}"))?;
        ctrs.retain(|x| x.number == n);
    }
    let mut q = vec![("stdout", "1".to_string()), ("stderr", "1".to_string())];
    let follow = p.bool("follow");
    if follow {
        q.push(("follow", "1".into()));
    }
    if p.bool("timestamps") {
        q.push(("timestamps", "1".into()));
    }
    q.push(("tail", p.string("tail")));
    for (flag, key) in [("since", "since"), ("until", "until")] {
        let v = p.string(flag);
        if !v.is_empty() {
            q.push((key, crate::commands::container::timestamp_param(&v)?));
        }
    }
    let printer = LogPrinter::new(
        ctrs.iter().map(|x| x.name.as_str()),
        c.out.color && !p.bool("no-color"),
        p.bool("no-log-prefix"),
    );
    if !follow {
        for (idx, x) in ctrs.iter().enumerate() {
            stream_logs(&c.client, &x.id, &q, &printer, idx, &x.name).await?;
        }
        return Ok(());
    }
    let printer = Arc::new(printer);
    let jobs = ctrs.iter().enumerate().map(|(idx, x)| {
        let printer = printer.clone();
        let q = q.clone();
        async move { stream_logs(&c.client, &x.id, &q, &printer, idx, &x.name).await }
    });
    futures_util::future::try_join_all(jobs).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_padded_like_compose() {
        let p = LogPrinter::new(["web-1", "db-1"], false, false);
        assert_eq!(p.prefix(0, "web-1"), "web-1  | ");
        assert_eq!(p.prefix(1, "db-1"), "db-1   | ");
        let p = LogPrinter::new(["a-1"], true, false);
        assert_eq!(p.prefix(0, "a-1"), "\x1b[36ma-1  |\x1b[0m ");
        assert_eq!(LogPrinter::new(["a"], false, true).prefix(0, "a"), "");
    }

    #[test]
    fn lines_are_split_across_chunks() {
        let mut l = Lines::default();
        assert_eq!(l.feed(b"one\ntw"), vec!["one"]);
        assert_eq!(l.feed(b"o\r\nthree"), vec!["two"]);
        assert_eq!(l.rest().as_deref(), Some("three"));
        assert_eq!(l.rest(), None);
    }
}
