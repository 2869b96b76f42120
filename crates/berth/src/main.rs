//! The berth command-line client: the docker CLI's commands, flags, output and exit codes,
//! spoken to any Docker Engine API daemon (berthd or dockerd).
//!
//! `main` parses the global options ([`global_spec`]), picks the command (management forms
//! like `container ls` map onto the same implementations), parses that command's flags with
//! [`flags`], and runs it in [`commands`]. Errors become docker's messages and exit codes:
//! [`StatusError`] carries an explicit code (125 for run's daemon failures, 126/127 for
//! start failures, the container's own code), anything else exits 1.

#![recursion_limit = "256"]

mod client;
mod commands;
mod config;
mod flags;
mod opts;
mod progress;
mod stream;
mod tabwriter;
mod template;
mod term;
mod units;

use client::ClientError;
use flags::{b, v, FlagError, Spec};

/// An error with the exit code docker would use; an empty message prints nothing.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StatusError {
    pub message: String,
    pub code: i32,
}

impl StatusError {
    pub fn exit(code: i32, message: impl Into<String>) -> anyhow::Error {
        StatusError {
            message: message.into(),
            code,
        }
        .into()
    }
}

fn global_spec() -> Spec {
    Spec {
        usage: "[OPTIONS] COMMAND",
        about: "A self-sufficient runtime for containers",
        aliases: "",
        flags: vec![
            v("config", None, "string", "Location of client config files"),
            v(
                "context",
                Some('c'),
                "string",
                "Name of the context to use to connect to the daemon",
            ),
            b("debug", Some('D'), "Enable debug mode"),
            flags::l("host", Some('H'), "Daemon socket to connect to"),
            flags::vd(
                "log-level",
                Some('l'),
                "string",
                "info",
                "Set the logging level (\"debug\", \"info\", \"warn\", \"error\", \"fatal\")",
            ),
            b("tls", None, "Use TLS; implied by --tlsverify"),
            v(
                "tlscacert",
                None,
                "string",
                "Trust certs signed only by this CA",
            ),
            v("tlscert", None, "string", "Path to TLS certificate file"),
            v("tlskey", None, "string", "Path to TLS key file"),
            b("tlsverify", None, "Use TLS and verify the remote"),
            b("version", Some('v'), "Print version information and quit"),
        ],
        stop_at_positional: true,
        no_short_help: false,
    }
}

fn root_help() -> String {
    let mut s = flags::help("berth", &global_spec());
    s.push_str("\nCommands:\n");
    let mut summary = commands::SUMMARY.to_vec();
    summary.sort();
    for (name, about) in summary {
        s.push_str(&format!("  {name:<11} {about}\n"));
    }
    s.push_str("\nManagement Commands:\n");
    let mut groups: Vec<_> = commands::GROUPS.iter().collect();
    groups.sort_by_key(|g| g.0);
    for (name, about, _) in groups {
        s.push_str(&format!("  {name:<11} {about}\n"));
    }
    s.push_str("\nRun 'berth COMMAND --help' for more information on a command.\n");
    s
}

fn exit_with(err: anyhow::Error) -> ! {
    term::restore();
    if let Some(se) = err.downcast_ref::<StatusError>() {
        if !se.message.is_empty() {
            eprintln!("{}", se.message);
        }
        std::process::exit(se.code);
    }
    let msg = format!("{err:#}");
    if !msg.is_empty() {
        eprintln!("{msg}");
    }
    std::process::exit(1);
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let g = match flags::parse(&global_spec(), &argv) {
        Ok(g) => g,
        Err(FlagError::Help) => {
            print!("{}", root_help());
            return;
        }
        Err(FlagError::Message(m)) => {
            exit_with(StatusError::exit(125, format!("{m}\nSee 'berth --help'.")))
        }
    };
    if g.bool("version") {
        println!(
            "berth version {}, build {}",
            env!("CARGO_PKG_VERSION"),
            option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown")
        );
        return;
    }
    let Some(cmd) = g.args.first().cloned() else {
        print!("{}", root_help());
        return;
    };
    let rest: Vec<String> = g.args[1..].to_vec();

    let tls_verify = g.bool("tlsverify")
        || std::env::var("BERTH_TLS_VERIFY")
            .map(|v| !v.is_empty())
            .unwrap_or(false);
    let tls = if g.bool("tls") || tls_verify {
        let dir = std::env::var("DOCKER_CERT_PATH")
            .ok()
            .filter(|s| !s.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
                std::path::Path::new(&home).join(".docker")
            });
        let pick = |flag: &str, file: &str| {
            let given = g.string(flag);
            if !given.is_empty() {
                return Some(std::path::PathBuf::from(given));
            }
            let p = dir.join(file);
            p.exists().then_some(p)
        };
        Some(client::TlsOptions {
            verify: tls_verify,
            ca: pick("tlscacert", "ca.pem"),
            cert: pick("tlscert", "cert.pem"),
            key: pick("tlskey", "key.pem"),
        })
    } else {
        None
    };
    let hosts = g.list("host");
    if hosts.len() > 1 {
        exit_with(StatusError::exit(1, "Specify only one -H"));
    }
    let host = hosts
        .first()
        .cloned()
        .or_else(|| std::env::var("BERTH_HOST").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| client::DEFAULT_HOST.to_string());

    let mut ctx = commands::Ctx::new(host, tls, g.bool("debug"));
    ctx.config_dir = g.string("config");
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => exit_with(e.into()),
    };
    let result = rt.block_on(commands::dispatch(ctx, &cmd, rest));
    term::restore();
    match result {
        Ok(()) => {
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::process::exit(0);
        }
        Err(e) => {
            // Connection failures read the same in every command.
            if let Some(ce) = e.downcast_ref::<ClientError>() {
                if matches!(
                    ce,
                    ClientError::Connect { .. } | ClientError::Permission { .. }
                ) {
                    exit_with(StatusError::exit(1, ce.to_string()));
                }
            }
            exit_with(e)
        }
    }
}
