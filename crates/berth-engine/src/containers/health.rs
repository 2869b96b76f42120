//! Health checks: the image's `HEALTHCHECK` or `--health-*`, run as an exec in the container
//! through its shim, with Docker's rules (`daemon/health.go`): probes every `interval` (every
//! `start_interval` while starting within the start period), a probe taking longer than
//! `timeout` fails, `retries` failures in a row make the container unhealthy, failures in the
//! start period do not count, the last five results are kept, and every change of status is
//! a `health_status: <status>` event.
//!
//! One small task per checked container sleeps between probes; it ends when the container
//! stops or pauses (the status then reads `unhealthy`, as Docker's does) and a new one
//! starts with the container. The state lives in the container's record, so it survives a
//! daemon restart, after which checking resumes where it was.

use super::exec::ExecConfig;
use super::{shim_client, ContainerEntry};
use crate::Engine;
use berth_core::container::{Health, HealthConfig, HealthLogEntry, Status};
use berth_shim::proto::{Event, ExecRequest, Frame, Request};
use chrono::Utc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// Results kept in `State.Health.Log`.
const MAX_LOG_ENTRIES: usize = 5;
/// Probe output kept per result; longer output is cut and marked with `...`.
const MAX_OUTPUT: usize = 4096;
/// How long starting a probe may take before it counts as failed (not part of `timeout`).
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

fn duration_or(ns: i64, default: Duration) -> Duration {
    if ns <= 0 {
        default
    } else {
        Duration::from_nanos(ns as u64)
    }
}

/// The command a health check runs, or `None` when there is no check (`NONE`, no test, or
/// an unknown test type).
pub fn probe_command(h: &HealthConfig, shell: Option<&[String]>) -> Option<Vec<String>> {
    let (kind, rest) = h.test.split_first()?;
    match kind.as_str() {
        "CMD" if !rest.is_empty() => Some(rest.to_vec()),
        "CMD-SHELL" if !rest.is_empty() => {
            let mut cmd: Vec<String> = match shell.filter(|s| !s.is_empty()) {
                Some(s) => s.to_vec(),
                None => vec!["/bin/sh".into(), "-c".into()],
            };
            cmd.extend(rest.iter().cloned());
            Some(cmd)
        }
        _ => None,
    }
}

/// Docker's `handleProbeResult`: records `result` in the log and updates the status and
/// the failing streak.
pub fn record_result(
    health: &mut Health,
    config: &HealthConfig,
    result: HealthLogEntry,
    started_at: Option<chrono::DateTime<Utc>>,
) {
    let retries = if config.retries <= 0 {
        DEFAULT_RETRIES
    } else {
        config.retries
    };
    let probe_start = result.start;
    let healthy = result.exit_code == 0;
    if health.log.len() >= MAX_LOG_ENTRIES {
        health.log.drain(..=health.log.len() - MAX_LOG_ENTRIES);
    }
    health.log.push(result);
    if healthy {
        health.failing_streak = 0;
        health.status = HEALTHY.to_string();
        return;
    }
    let mut count = true;
    if health.status == STARTING {
        let period = chrono::Duration::nanoseconds(config.start_period.max(0));
        if let (Some(start), Some(started)) = (probe_start, started_at) {
            if start - started < period {
                count = false;
            }
        }
    }
    if count {
        health.failing_streak += 1;
        if health.failing_streak >= retries {
            health.status = UNHEALTHY.to_string();
        }
    }
}

/// Collects at most [`MAX_OUTPUT`] bytes.
#[derive(Default)]
struct LimitedOutput {
    buf: Vec<u8>,
    truncated: bool,
}

impl LimitedOutput {
    fn push(&mut self, data: &[u8]) {
        let keep = (MAX_OUTPUT - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    fn into_string(self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

impl Engine {
    /// A container started (or restarted): its health goes back to `starting` and checking
    /// begins. Without a check, nothing happens.
    pub(crate) fn init_health(self: &Arc<Self>, entry: &Arc<ContainerEntry>) {
        if !entry.read(has_probe) {
            return;
        }
        entry.update(|c| {
            let h = c.state.health.get_or_insert_with(Health::default);
            h.status = STARTING.to_string();
            h.failing_streak = 0;
        });
        let _ = self.persist(entry);
        self.resume_health(entry);
    }

    /// Starts checking again (after unpause, or at daemon start) without resetting the status.
    pub(crate) fn resume_health(self: &Arc<Self>, entry: &Arc<ContainerEntry>) {
        if !entry.read(has_probe) {
            return;
        }
        let generation = entry.health_gen.fetch_add(1, Ordering::SeqCst) + 1;
        let weak = Arc::downgrade(self);
        let entry = entry.clone();
        tokio::spawn(async move { health_loop(weak, entry, generation).await });
    }

    /// The container stopped or paused: checking stops and, as in Docker, the status reads
    /// `unhealthy` until the next start.
    pub(crate) fn stop_health(&self, entry: &ContainerEntry) {
        entry.health_gen.fetch_add(1, Ordering::SeqCst);
        let changed = entry.update(|c| match c.state.health.as_mut() {
            Some(h) if h.status != UNHEALTHY => {
                h.status = UNHEALTHY.to_string();
                true
            }
            _ => false,
        });
        if changed {
            let _ = self.persist(entry);
        }
    }

    /// Runs one probe: an exec of `cmd` in the container, its output collected, killed
    /// after `timeout`. Emits the exec events Docker emits for probes.
    async fn run_probe(
        &self,
        entry: &ContainerEntry,
        cmd: Vec<String>,
        process: &mut Option<Vec<u8>>,
        timeout: Duration,
    ) -> HealthLogEntry {
        let start = Utc::now();
        let (output, exit_code) = match self.probe_exec(entry, cmd, process, timeout).await {
            Ok(r) => r,
            Err(message) => (message, -1),
        };
        HealthLogEntry {
            start: Some(start),
            end: Some(Utc::now()),
            exit_code,
            output,
        }
    }

    /// `process` keeps the probe's exec process (its JSON) from one probe to the next.
    async fn probe_exec(
        &self,
        entry: &ContainerEntry,
        cmd: Vec<String>,
        process: &mut Option<Vec<u8>>,
        timeout: Duration,
    ) -> std::result::Result<(String, i64), String> {
        let exec_id = berth_core::id::new_id();
        let (cid, user, working_dir) = entry.read(|c| {
            (
                c.id.clone(),
                c.config.user.clone(),
                c.config.working_dir.clone(),
            )
        });
        let line = cmd.join(" ");
        self.container_event(
            entry,
            &format!("exec_create: {line}"),
            &[("execID", exec_id.clone())],
        );
        let cfg = ExecConfig {
            user,
            working_dir,
            cmd,
            attach_stdout: true,
            attach_stderr: true,
            ..Default::default()
        };
        let bundle = self.bundle_dir(&cid);
        let process_path = bundle.join(format!("exec-{exec_id}.json"));
        // Every probe of a run execs the same process, so it is built once (building means
        // parsing the container's spec, tens of KiB with its seccomp profile, on a blocking
        // thread); a named user is looked up in the rootfs at each probe, as Docker does.
        let json = match process.take() {
            Some(json) if cfg.user.is_empty() => json,
            _ => Self::blocking(move || super::exec::process_json(&bundle, &cfg))
                .await
                .map_err(|e| e.to_string())?,
        };
        // A small write to the exec root (a tmpfs, as /run/berth is).
        let written = std::fs::write(&process_path, &json);
        *process = Some(json);
        written.map_err(|e| format!("container is not running: {e}"))?;
        let sock = self.shim_socket(&cid);
        let started = tokio::time::timeout(START_TIMEOUT, async {
            let (mut r, mut w) = shim_client::connect(&sock)
                .await
                .map_err(|e| format!("container {cid} is not running: {e}"))?;
            w.send(&Request::Exec(ExecRequest {
                key: exec_id.clone(),
                process_path: process_path.display().to_string(),
                tty: false,
                stdin: false,
                wait_attach: true,
            }))
            .await
            .map_err(|e| e.to_string())?;
            loop {
                match r.next().await {
                    Ok(Some(Frame::Event(Event::ExecStarted { .. }))) => break,
                    Ok(Some(Frame::Event(Event::ExecFailed { message, .. }))) => {
                        return Err(format!("OCI runtime exec failed: {message}: unknown"))
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return Err("the container's shim went away".to_string()),
                    Err(e) => return Err(e.to_string()),
                }
            }
            w.send(&Request::Attach {
                key: exec_id.clone(),
            })
            .await
            .map_err(|e| e.to_string())?;
            Ok((r, w))
        })
        .await;
        let _ = std::fs::remove_file(&process_path);
        let (mut r, _w) = match started {
            Ok(Ok(conn)) => conn,
            Ok(Err(message)) => {
                self.exec_died(entry, &exec_id, 126);
                return Err(message);
            }
            Err(_) => {
                self.exec_died(entry, &exec_id, 126);
                return Err(format!(
                    "timed out starting health check for container {cid}"
                ));
            }
        };
        self.container_event(
            entry,
            &format!("exec_start: {line}"),
            &[("execID", exec_id.clone())],
        );
        let mut output = LimitedOutput::default();
        let mut code: Option<i32> = None;
        let collect = async {
            loop {
                match r.next().await {
                    Ok(Some(Frame::Output { data, .. })) => output.push(&data),
                    Ok(Some(Frame::Event(Event::Exited { exit, .. }))) => code = Some(exit.code),
                    Ok(Some(Frame::Event(Event::Eof { .. }))) | Ok(None) | Err(_) => break,
                    Ok(Some(_)) => {}
                }
            }
        };
        let timed_out = tokio::time::timeout(timeout, collect).await.is_err();
        if timed_out {
            let _ = shim_client::command(
                &sock,
                &Request::Signal {
                    key: exec_id.clone(),
                    signal: 9,
                },
            )
            .await;
            self.exec_died(entry, &exec_id, 137);
            return Ok((
                format!("Health check exceeded timeout ({})", go_duration(timeout)),
                -1,
            ));
        }
        let code = code.unwrap_or(-1);
        self.exec_died(entry, &exec_id, code);
        Ok((output.into_string(), i64::from(code)))
    }
}

fn has_probe(c: &berth_core::container::Container) -> bool {
    c.config
        .healthcheck
        .as_ref()
        .and_then(|h| probe_command(h, None))
        .is_some()
}

/// Go's `time.Duration` string for whole and fractional seconds (`30s`, `1.5s`, `500ms`).
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

async fn health_loop(engine: std::sync::Weak<Engine>, entry: Arc<ContainerEntry>, generation: u64) {
    let current = |e: &ContainerEntry| {
        e.health_gen.load(Ordering::SeqCst) == generation
            && e.read(|c| c.state.status == Status::Running)
    };
    let mut life = entry.lifecycle();
    let mut process = None;
    loop {
        let (config, shell, started_at, status) = entry.read(|c| {
            (
                c.config.healthcheck.clone().unwrap_or_default(),
                c.config.shell.clone(),
                c.state.started_at,
                c.state
                    .health
                    .as_ref()
                    .map(|h| h.status.clone())
                    .unwrap_or_default(),
            )
        });
        let Some(cmd) = probe_command(&config, shell.as_deref()) else {
            return;
        };
        let interval = duration_or(config.interval, DEFAULT_INTERVAL);
        let start_period = Duration::from_nanos(config.start_period.max(0) as u64);
        let since_start = started_at
            .and_then(|s| (Utc::now() - s).to_std().ok())
            .unwrap_or_default();
        let wait = if since_start < start_period && status == STARTING {
            duration_or(config.start_interval, DEFAULT_START_INTERVAL)
        } else {
            interval
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                changed = life.changed() => {
                    if changed.is_err() || !current(&entry) {
                        return;
                    }
                }
            }
        }
        if !current(&entry) {
            return;
        }
        let Some(e) = engine.upgrade() else { return };
        let timeout = duration_or(config.timeout, DEFAULT_TIMEOUT);
        let result = e.run_probe(&entry, cmd, &mut process, timeout).await;
        if !current(&entry) {
            return;
        }
        let (old, new) = entry.update(|c| {
            let started = c.state.started_at;
            let h = c.state.health.get_or_insert_with(Health::default);
            let old = h.status.clone();
            record_result(h, &config, result, started);
            (old, h.status.clone())
        });
        let _ = e.persist(&entry);
        if old != new {
            e.container_event(&entry, &format!("health_status: {new}"), &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64, secs_after_start: i64, started: chrono::DateTime<Utc>) -> HealthLogEntry {
        let t = started + chrono::Duration::seconds(secs_after_start);
        HealthLogEntry {
            start: Some(t),
            end: Some(t),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn probes_are_commands_or_shell_lines() {
        let h = |t: &[&str]| HealthConfig {
            test: t.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(
            probe_command(&h(&["CMD", "true"]), None),
            Some(vec!["true".to_string()])
        );
        assert_eq!(
            probe_command(&h(&["CMD-SHELL", "exit 1"]), None),
            Some(vec!["/bin/sh".into(), "-c".into(), "exit 1".into()])
        );
        let shell = ["/bin/bash".to_string(), "-ec".to_string()];
        assert_eq!(
            probe_command(&h(&["CMD-SHELL", "x"]), Some(&shell)).unwrap()[0],
            "/bin/bash"
        );
        assert_eq!(probe_command(&h(&["NONE"]), None), None);
        assert_eq!(probe_command(&h(&[]), None), None);
        assert_eq!(probe_command(&h(&["CMD"]), None), None);
    }

    #[test]
    fn failures_count_after_the_start_period_up_to_retries() {
        let started = Utc::now();
        let config = HealthConfig {
            retries: 2,
            start_period: 10_000_000_000,
            ..Default::default()
        };
        let mut h = Health {
            status: STARTING.into(),
            ..Default::default()
        };
        record_result(&mut h, &config, result(1, 1, started), Some(started));
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        record_result(&mut h, &config, result(1, 11, started), Some(started));
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 1));
        record_result(&mut h, &config, result(1, 12, started), Some(started));
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        record_result(&mut h, &config, result(0, 13, started), Some(started));
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
    }

    #[test]
    fn the_log_keeps_the_last_five_results() {
        let started = Utc::now();
        let mut h = Health::default();
        for i in 0..8 {
            record_result(
                &mut h,
                &HealthConfig::default(),
                result(i, i, started),
                Some(started),
            );
        }
        assert_eq!(h.log.len(), 5);
        assert_eq!(h.log[0].exit_code, 3);
        assert_eq!(h.log[4].exit_code, 7);
    }

    /// One task per checked container lives as long as the container: its future is what
    /// a check costs the daemon between probes (a read buffer in it once made that 65 KiB).
    #[test]
    fn a_health_task_is_small() {
        fn future_size<F, Fut>(_: F) -> usize
        where
            F: FnOnce(std::sync::Weak<Engine>, Arc<ContainerEntry>, u64) -> Fut,
        {
            std::mem::size_of::<Fut>()
        }
        let size = future_size(health_loop);
        assert!(size < 4096, "health task future is {size} bytes");
    }

    #[test]
    fn long_output_is_cut_like_dockers() {
        let mut o = LimitedOutput::default();
        o.push(&vec![b'a'; 5000]);
        let s = o.into_string();
        assert_eq!(s.len(), MAX_OUTPUT + 3);
        assert!(s.ends_with("a..."));
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(200)), "200ms");
    }
}
