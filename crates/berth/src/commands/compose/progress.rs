//! Per-resource progress as Docker Compose v2 prints it, on stderr.
//!
//! On a terminal the block is redrawn in place: a `[+] Running 2/2` header and one line per
//! resource (` ✔ Network p_default  Created  0.1s`), with a spinner while it is under way.
//! Off a terminal (`--progress plain`) each change is one line (` Container p-web-1  Started`),
//! which is what scripts and tests read.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Tty,
    Plain,
    Quiet,
}

impl ProgressMode {
    pub fn parse(flag: &str, ansi: &str) -> anyhow::Result<Self> {
        Ok(match flag {
            "" | "auto" => {
                let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
                if tty && ansi != "never" {
                    ProgressMode::Tty
                } else {
                    ProgressMode::Plain
                }
            }
            "tty" => ProgressMode::Tty,
            "plain" | "json" => ProgressMode::Plain,
            "quiet" => ProgressMode::Quiet,
            other => anyhow::bail!("unsupported --progress value {other:?}"),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Working,
    Done,
    Error,
}

struct Task {
    id: String,
    status: String,
    state: State,
    start: Instant,
    end: Option<Instant>,
}

struct Inner {
    tasks: Vec<Task>,
    /// Lines drawn last time (TTY), to move back over them.
    drawn: usize,
    frame: usize,
}

/// A progress display shared by concurrent tasks.
#[derive(Clone)]
pub struct Progress {
    mode: ProgressMode,
    inner: Arc<Mutex<Inner>>,
    ticker: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

const SPINNER: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

impl Progress {
    pub fn new(mode: ProgressMode) -> Self {
        let p = Progress {
            mode,
            inner: Arc::new(Mutex::new(Inner {
                tasks: Vec::new(),
                drawn: 0,
                frame: 0,
            })),
            ticker: Arc::new(Mutex::new(None)),
        };
        if mode == ProgressMode::Tty {
            let q = p.clone();
            let handle = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    q.draw(false);
                }
            });
            *p.ticker.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        }
        p
    }

    /// A resource is being worked on (`Creating`).
    pub fn working(&self, id: &str, status: &str) {
        self.event(id, status, State::Working);
    }

    /// A resource reached its final state (`Created`, `Started`).
    pub fn done(&self, id: &str, status: &str) {
        self.event(id, status, State::Done);
    }

    pub fn error(&self, id: &str, status: &str) {
        self.event(id, status, State::Error);
    }

    fn event(&self, id: &str, status: &str, state: State) {
        {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            match inner.tasks.iter_mut().find(|t| t.id == id) {
                Some(t) => {
                    // A new phase (Created, then Starting) restarts the clock.
                    if state == State::Working && t.state != State::Working {
                        t.start = Instant::now();
                    }
                    t.status = status.to_string();
                    t.state = state;
                    t.end = (state != State::Working).then(Instant::now);
                }
                None => inner.tasks.push(Task {
                    id: id.to_string(),
                    status: status.to_string(),
                    state,
                    start: Instant::now(),
                    end: (state != State::Working).then(Instant::now),
                }),
            }
        }
        match self.mode {
            ProgressMode::Plain => {
                let mut e = std::io::stderr().lock();
                let _ = writeln!(e, " {id}  {status}");
            }
            ProgressMode::Tty => self.draw(false),
            ProgressMode::Quiet => {}
        }
    }

    fn draw(&self, last: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.tasks.is_empty() {
            return;
        }
        inner.frame = inner.frame.wrapping_add(1);
        let width = crate::term::size()
            .map(|(_, w)| w as usize)
            .unwrap_or(80)
            .max(40);
        let done = inner
            .tasks
            .iter()
            .filter(|t| t.state != State::Working)
            .count();
        let total = inner.tasks.len();
        let id_w = inner
            .tasks
            .iter()
            .map(|t| t.id.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        if inner.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", inner.drawn));
        }
        let header = format!("[+] Running {done}/{total}");
        out.push_str(&format!("\x1b[2K{header}\n"));
        let frame = inner.frame;
        for t in &inner.tasks {
            let icon = match t.state {
                State::Working => format!("\x1b[34m{}\x1b[0m", SPINNER[frame % SPINNER.len()]),
                State::Done => "\x1b[32m✔\x1b[0m".to_string(),
                State::Error => "\x1b[31m✘\x1b[0m".to_string(),
            };
            let elapsed = t.end.unwrap_or_else(Instant::now).duration_since(t.start);
            let time = format!("{:.1}s", elapsed.as_secs_f64());
            let left = format!(" {icon} {:<id_w$}  {}", t.id, t.status);
            let visible = 3 + id_w + 2 + t.status.chars().count();
            let pad = width.saturating_sub(visible + time.len() + 1).max(1);
            out.push_str(&format!("\x1b[2K{left}{}{time} \n", " ".repeat(pad)));
        }
        inner.drawn = inner.tasks.len() + 1;
        if last {
            inner.drawn = 0;
        }
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(out.as_bytes());
        let _ = e.flush();
    }

    /// Stops redrawing and leaves the final block on screen.
    pub fn finish(&self) {
        if let Some(h) = self.ticker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            h.abort();
        }
        if self.mode == ProgressMode::Tty {
            self.draw(true);
        }
    }
}
