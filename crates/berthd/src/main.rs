//! `berthd`: the berth daemon. Flags are named like dockerd's; `--config-file` takes
//! daemon.json keys. Containers outlive the daemon (live restore is always on).

mod config;

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::sync::Arc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let flags = config::Flags::parse();
    if let Err(e) = run(flags).await {
        eprintln!("berthd: {e:#}");
        std::process::exit(1);
    }
}

async fn run(flags: config::Flags) -> Result<()> {
    let cfg = config::DaemonConfig::load(flags)?;
    init_logging(&cfg.log_level)?;
    let _pid = PidFile::create(&cfg.pidfile)?;
    let mut listeners = Vec::new();
    for host in &cfg.hosts {
        listeners.push(bind(host, &cfg).await?);
    }
    let engine = berth_engine::Engine::open(cfg.engine.clone())
        .await
        .context("starting the engine")?;
    let app = berth_api::router(Arc::new(berth_api::EngineBackend(engine)));
    tracing::info!(hosts = ?cfg.hosts, data_root = %cfg.engine.data_root.display(), "berthd is ready");
    let sockets: Vec<std::path::PathBuf> = listeners
        .iter()
        .filter_map(|l| match l {
            berth_api::server::Bound::Unix(_, p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    tokio::select! {
        _ = berth_api::server::serve(app, listeners) => {}
        _ = shutdown_signal() => tracing::info!("shutting down; containers keep running"),
    }
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn init_logging(level: &str) -> Result<()> {
    let filter = match level {
        "debug" | "info" | "warn" | "error" | "trace" => level.to_string(),
        "fatal" | "panic" => "error".to_string(),
        other => bail!("invalid log level {other:?} (use debug, info, warn, error or fatal)"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    Ok(())
}

async fn bind(host: &str, cfg: &config::DaemonConfig) -> Result<berth_api::server::Bound> {
    if let Some(path) = host.strip_prefix("unix://") {
        return Ok(berth_api::server::bind_unix(std::path::Path::new(path))?);
    }
    if let Some(addr) = host.strip_prefix("tcp://") {
        let sock: std::net::SocketAddr = tokio::net::lookup_host(addr)
            .await
            .with_context(|| format!("resolving {host}"))?
            .next()
            .with_context(|| format!("no address for {host}"))?;
        let tls = cfg.tls_settings()?;
        if tls.is_none() && !sock.ip().is_loopback() {
            if !cfg.allow_insecure_tcp {
                bail!(
                    "refusing to serve plain TCP on {host}: anyone who reaches it gets root on this machine. Use --tlsverify with --tlscacert/--tlscert/--tlskey, bind a loopback address, or pass --allow-insecure-tcp"
                );
            }
            eprintln!("WARNING: serving the API on {host} without TLS. Anyone who can reach this address controls this machine as root.");
        }
        return Ok(berth_api::server::bind_tcp(sock, tls.as_ref()).await?);
    }
    bail!("invalid host {host:?}: use unix:///path or tcp://host:port")
}

/// The pid file, removed when the daemon ends normally.
struct PidFile(std::path::PathBuf);

/// A killed daemon stays a zombie until its parent reaps it: it no longer runs.
fn is_exiting(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')').and_then(|(_, rest)| {
                rest.split_whitespace()
                    .next()
                    .map(|st| st == "Z" || st == "X")
            })
        })
        .unwrap_or(true)
}

impl PidFile {
    fn create(path: &std::path::Path) -> Result<Self> {
        if let Ok(old) = std::fs::read_to_string(path) {
            if let Ok(pid) = old.trim().parse::<i32>() {
                let alive = rustix::process::Pid::from_raw(pid)
                    .map(|p| rustix::process::test_kill_process(p).is_ok())
                    .unwrap_or(false)
                    && !is_exiting(pid);
                if alive && pid != std::process::id() as i32 {
                    bail!(
                        "pid file found, ensure berthd is not running or delete {}",
                        path.display()
                    );
                }
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Self(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
