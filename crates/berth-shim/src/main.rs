//! `berth-shim`: the per-container monitor binary. See the library docs for the contract.

mod monitor;

use berth_shim::launch::{ShimOptions, StartResult};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match ShimOptions::parse(&args) {
        Ok(o) => o,
        Err(message) => {
            report(&StartResult::Failed { message });
            std::process::exit(2);
        }
    };
    std::process::exit(monitor::run(opts));
}

/// Writes the start result line to stdout, which the daemon reads.
pub(crate) fn report(result: &StartResult) {
    let mut line = serde_json::to_vec(result).unwrap_or_default();
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&line);
    let _ = out.flush();
}
