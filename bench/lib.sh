# Shared helpers for the benchmarks: a private berthd and a private dockerd, side by side.
# Sourced by bench/run.sh. Both daemons use their own roots and sockets under $BENCH_DIR;
# dockerd runs inside its own network and mount namespaces so it never touches the host's
# network (no docker0, no iptables chains).

BENCH_DIR=${BENCH_DIR:-/var/tmp/berth-bench}
# Execution state goes on tmpfs, as the daemons' defaults (/run/berth, /var/run/docker) do.
RUN_DIR=${RUN_DIR:-/run/berth-bench}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BERTH_BIN:-$REPO/target/release}
BERTH_SOCK=$BENCH_DIR/berth/berth.sock
DOCKER_SOCK=$BENCH_DIR/docker/docker.sock
DOCKER_CLI=${DOCKER_CLI:-/usr/local/bin/docker}

# BENCH_NET=1: both daemons with their bridge networking (dockerd's inside its own network
# namespace, with its iptables rules and userland proxy as installed); otherwise neither
# has a default bridge (containers get an empty network namespace), for the scenarios
# that measure the engine itself.
BENCH_NET=${BENCH_NET:-0}
# Names and addresses of this run's resources; override them to run beside another bench.
BERTH_BRIDGE=${BERTH_BRIDGE:-bbench0}
BENCH_BIP=${BENCH_BIP:-10.213.0.1/24}
BENCH_POOL=${BENCH_POOL:-10.214.0.0/16}
BERTH_CGROUP=${BERTH_CGROUP:-berth-bench}
DOCKER_CGROUP=${DOCKER_CGROUP:-docker-bench}
BERTH_TABLE=berth_$(printf %s "$RUN_DIR/berth" | sha256sum | cut -c1-12)

berth() { "$BIN/berth" -H "unix://$BERTH_SOCK" "$@"; }
dock() { "$DOCKER_CLI" -H "unix://$DOCKER_SOCK" "$@"; }

start_berthd() {
  mkdir -p "$BENCH_DIR/berth"
  local net=(--bridge none)
  if [ "$BENCH_NET" = 1 ]; then
    net=(--bridge "$BERTH_BRIDGE" --bip "$BENCH_BIP")
    echo "{\"default-address-pools\":[{\"base\":\"$BENCH_POOL\",\"size\":24}]}" > "$BENCH_DIR/berth/daemon.json"
  else
    echo '{}' > "$BENCH_DIR/berth/daemon.json"
  fi
  "$BIN/berthd" -H "unix://$BERTH_SOCK" --data-root "$BENCH_DIR/berth/data" --exec-root "$RUN_DIR/berth" \
    --pidfile "$BENCH_DIR/berth/berthd.pid" --config-file "$BENCH_DIR/berth/daemon.json" \
    --cgroup-parent "$BERTH_CGROUP" --shim-path "$BIN/berth-shim" --log-level ${BERTHD_LOG:-warn} \
    "${net[@]}" >"$BENCH_DIR/berth/berthd.log" 2>&1 &
  for _ in $(seq 200); do berth version >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "berthd did not start" >&2; cat "$BENCH_DIR/berth/berthd.log" >&2; return 1
}

start_dockerd() {
  mkdir -p "$BENCH_DIR/docker"
  # A private dockerd: own data/exec roots and socket, in its own network namespace (its
  # bridge and iptables rules, when networking is on, live there and die with it).
  local net="--bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false"
  [ "$BENCH_NET" = 1 ] && net="--ip6tables=false"
  unshare --net --mount --fork --kill-child sh -c "
    mount --make-rprivate /
    ip link set lo up
    exec dockerd --data-root '$BENCH_DIR/docker/data' --exec-root '$RUN_DIR/docker' \
      -H 'unix://$DOCKER_SOCK' --pidfile '$BENCH_DIR/docker/dockerd.pid' $net \
      --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent '$DOCKER_CGROUP' \
      --log-level ${BERTHD_LOG:-warn}
    " >"$BENCH_DIR/docker/dockerd.log" 2>&1 &
  echo $! > "$BENCH_DIR/docker/unshare.pid"
  for _ in $(seq 300); do dock version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "dockerd did not start" >&2; tail -20 "$BENCH_DIR/docker/dockerd.log" >&2; return 1
}

stop_daemons() {
  berth rm -f $(berth ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  dock rm -f $(dock ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  berth network prune -f >/dev/null 2>&1 || true
  [ -f "$BENCH_DIR/berth/berthd.pid" ] && kill "$(cat "$BENCH_DIR/berth/berthd.pid")" 2>/dev/null || true
  [ -f "$BENCH_DIR/docker/dockerd.pid" ] && kill "$(cat "$BENCH_DIR/docker/dockerd.pid")" 2>/dev/null || true
  sleep 2
  [ -f "$BENCH_DIR/docker/unshare.pid" ] && kill "$(cat "$BENCH_DIR/docker/unshare.pid")" 2>/dev/null || true
  pkill -f "$BENCH_DIR" 2>/dev/null || true
  pkill -f "$RUN_DIR" 2>/dev/null || true
  sleep 0.5
  { grep -oE "($BENCH_DIR|$RUN_DIR)[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for h in /sys/fs/cgroup/*/; do
    for p in "$BERTH_CGROUP" "$DOCKER_CGROUP" berth-bench-bare; do
      [ -d "$h$p" ] && find "$h$p" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
  done
  ip link del "$BERTH_BRIDGE" 2>/dev/null || true
  nft delete table ip "$BERTH_TABLE" 2>/dev/null || true
  rm -rf "$BENCH_DIR" "$RUN_DIR"
}

# The network namespace of the private dockerd (for clients of its published ports).
in_dockerd_netns() { nsenter --net="/proc/$(cat "$BENCH_DIR/docker/dockerd.pid")/ns/net" "$@"; }

# busybox plus the host's iperf3 and its libraries, as image `netbench` in both daemons.
load_netbench() {
  local root=$BENCH_DIR/netbench-root
  rm -rf "$root"; mkdir -p "$root"
  tar -C "$root" -xf "$BENCH_DIR/busybox.tar"
  for f in /usr/bin/iperf3 $(ldd /usr/bin/iperf3 | grep -oE '/[^ ]+'); do
    mkdir -p "$root$(dirname "$f")"; cp -L "$f" "$root$f"
  done
  tar -C "$root" -cf "$BENCH_DIR/netbench.tar" .
  berth import -c 'CMD ["sh"]' - netbench < "$BENCH_DIR/netbench.tar" >/dev/null
  dock import -c 'CMD ["sh"]' - netbench < "$BENCH_DIR/netbench.tar" >/dev/null
}

# Loads the same busybox image into both daemons.
load_busybox() {
  "$REPO/scripts/mkimage-busybox.sh" > "$BENCH_DIR/busybox.tar"
  berth import -c 'CMD ["sh"]' - busybox:latest < "$BENCH_DIR/busybox.tar" >/dev/null
  dock import -c 'CMD ["sh"]' - busybox:latest < "$BENCH_DIR/busybox.tar" >/dev/null
}

# Resident set size (KiB) of the processes matching a pattern, summed.
rss_kib() { ps -eo rss=,args= | grep -E "$1" | grep -v grep | awk '{s+=$1} END {print s+0}'; }
