#!/usr/bin/env bash
# README's second command: the whole test suite (unit, API, root and end-to-end tests).
# Needs root: the end-to-end tests start real daemons, containers, mounts and cgroups.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (or set BERTH_SKIP_ROOT_TESTS=1 to skip root tests loudly)" >&2; [ "${BERTH_SKIP_ROOT_TESTS:-}" = 1 ] || exit 1; }
if [ "$(id -u)" = 0 ]; then scripts/deps.sh; fi
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || { echo "test.sh: cargo not found (install a Rust toolchain with rustup first)" >&2; exit 1; }
# The end-to-end tests drive the real binaries: build them first, in the test profile's dir.
cargo build --locked --workspace --bins
cargo test --locked --workspace --no-fail-fast -- "$@"
