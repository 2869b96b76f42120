//! The local terminal: is it one, its size, and raw mode that is restored on every exit.
//!
//! [`RawMode`] restores the saved settings when dropped; a copy is also kept in a global so
//! that [`restore`] can run before `process::exit`, which skips destructors.

use rustix::termios::{self, OptionalActions, Termios};
use std::sync::Mutex;

static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

pub fn stdin_is_tty() -> bool {
    termios::isatty(std::io::stdin())
}

pub fn stdout_is_tty() -> bool {
    termios::isatty(std::io::stdout())
}

/// The terminal size of stdout as (height, width), if it is a terminal.
pub fn size() -> Option<(u16, u16)> {
    let ws = termios::tcgetwinsize(std::io::stdout()).ok()?;
    if ws.ws_row == 0 && ws.ws_col == 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// Raw mode on stdin for the lifetime of the value.
pub struct RawMode;

impl RawMode {
    pub fn enable() -> anyhow::Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
        Ok(Self)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Echo off on stdin for the lifetime of the value (password prompts).
pub struct NoEcho;

impl NoEcho {
    pub fn enable() -> anyhow::Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(termios::LocalModes::ECHO);
        termios::tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
        *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
        Ok(Self)
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back as it was, if raw mode is on. Safe to call more than once.
pub fn restore() {
    if let Some(saved) = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = termios::tcsetattr(std::io::stdin(), OptionalActions::Now, &saved);
    }
}
