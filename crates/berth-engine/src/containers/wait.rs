//! `docker wait` / `POST /containers/{id}/wait` with Docker's three conditions.

use crate::Engine;
use berth_core::{Error, Result};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// Return at once if not running, else at the exit.
    #[default]
    NotRunning,
    /// Wait for the next exit, even if not running now.
    NextExit,
    /// Wait until the container is removed.
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "" | "not-running" => Ok(Self::NotRunning),
            "next-exit" => Ok(Self::NextExit),
            "removed" => Ok(Self::Removed),
            other => Err(Error::invalid(format!("invalid condition: \"{other}\""))),
        }
    }
}

/// The wait result: exit code and the error the last start left, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitResult {
    pub status_code: i64,
    pub error: Option<String>,
}

impl Engine {
    /// Resolves the container now (so a missing one fails at once) and returns a future
    /// that completes when the condition is met.
    pub fn wait_container(
        self: &Arc<Self>,
        name: &str,
        cond: WaitCondition,
    ) -> Result<impl std::future::Future<Output = WaitResult> + Send + 'static> {
        let entry = self.container(name)?;
        let mut rx = entry.lifecycle();
        let start = rx.borrow().clone();
        Ok(async move {
            loop {
                let now = rx.borrow_and_update().clone();
                let done = match cond {
                    WaitCondition::NotRunning => {
                        !super::is_running(now.status) || now.exits > start.exits
                    }
                    WaitCondition::NextExit => now.exits > start.exits || now.removed,
                    WaitCondition::Removed => now.removed,
                };
                if done || rx.changed().await.is_err() {
                    // The record gets the exit code in the same step as the status.
                    let (status_code, error) =
                        entry.read(|c| (c.state.exit_code, c.state.error.clone()));
                    return WaitResult {
                        status_code,
                        // A removed container reports only its code, as Docker's does.
                        error: (!error.is_empty() && !now.removed).then_some(error),
                    };
                }
            }
        })
    }
}
