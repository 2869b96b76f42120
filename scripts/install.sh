#!/usr/bin/env bash
# README's first command: install what berth needs, build and install berth, start berthd,
# make a local busybox image and run a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (berthd manages namespaces, mounts and cgroups)" >&2; exit 1; }
scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p berthd -p berth
# The shim runs once per container: build it static and small (about 1 MiB resident).
cargo rustc --release --locked -p berth-shim --bin berth-shim -- -C target-feature=+crt-static
install -m 0755 target/release/berthd target/release/berth target/release/berth-shim /usr/local/bin/
scripts/berthd-start.sh
if ! berth image inspect busybox:latest >/dev/null 2>&1; then
  scripts/mkimage-busybox.sh | berth import -c 'CMD ["sh"]' - busybox:latest >/dev/null
fi
berth run --rm busybox echo hello from berth
