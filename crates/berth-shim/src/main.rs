//! `berth-shim`: the per-container monitor binary. See the library docs for the contract.

mod monitor;

use berth_shim::launch::{ShimOptions, StartResult};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("runtime-exec") {
        runtime_exec(&args[1..]);
    }
    let opts = match ShimOptions::parse(&args) {
        Ok(o) => o,
        Err(message) => {
            report(&StartResult::Failed { message });
            std::process::exit(2);
        }
    };
    std::process::exit(monitor::run(opts));
}

/// `berth-shim runtime-exec [--hide-cgroup2 MOUNT] -- PROGRAM ARGS...`: runs the OCI runtime
/// for the daemon's short commands (pause, update, delete, ...) in the same view of the
/// cgroup mounts as the shims give it.
fn runtime_exec(args: &[String]) -> ! {
    use std::os::unix::process::CommandExt;
    let mut rest = args;
    if rest.first().map(String::as_str) == Some("--hide-cgroup2") {
        let Some(mount) = rest.get(1) else {
            eprintln!("berth-shim runtime-exec: --hide-cgroup2 needs a mount point");
            std::process::exit(2);
        };
        if let Err(e) = berth_shim::launch::hide_cgroup2(std::path::Path::new(mount)) {
            eprintln!("berth-shim runtime-exec: hiding {mount}: {e}");
            std::process::exit(2);
        }
        rest = &rest[2..];
    }
    if rest.first().map(String::as_str) == Some("--") {
        rest = &rest[1..];
    }
    let Some((program, program_args)) = rest.split_first() else {
        eprintln!("usage: berth-shim runtime-exec [--hide-cgroup2 MOUNT] -- PROGRAM ARGS...");
        std::process::exit(2);
    };
    let err = std::process::Command::new(program)
        .args(program_args)
        .exec();
    eprintln!("berth-shim runtime-exec: running {program}: {err}");
    std::process::exit(127);
}

/// Writes the start result line to stdout, which the daemon reads.
pub(crate) fn report(result: &StartResult) {
    let mut line = serde_json::to_vec(result).unwrap_or_default();
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&line);
    let _ = out.flush();
}
