#!/usr/bin/env bash
# Installs the system packages berth needs at run time and for its tests. Idempotent.
set -euo pipefail
need=(runc crun tini busybox-static iptables nftables iproute2 procps psmisc util-linux openssl skopeo
      gzip bzip2 xz-utils zstd ca-certificates curl sqlite3 libseccomp-dev pkg-config)
# Real peers for the end-to-end tests and benchmarks.
need+=(docker.io docker-registry apache2-utils docker-compose hyperfine iperf3 python3)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# docker.io's package must never leave a daemon running on the host.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q docker 2>/dev/null; then
  systemctl stop docker docker.socket || true
fi
