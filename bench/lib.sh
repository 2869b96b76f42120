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
  # Patterns end with `/`: another bench's dirs may start with the same name
  # (/var/tmp/berth-bench-h beside /var/tmp/berth-bench).
  pkill -f "$BENCH_DIR/" 2>/dev/null || true
  pkill -f "$RUN_DIR/" 2>/dev/null || true
  sleep 0.5
  { grep -oE "($BENCH_DIR|$RUN_DIR)/[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  for h in /sys/fs/cgroup/*/; do
    for p in "$BERTH_CGROUP" "$DOCKER_CGROUP" "$BERTH_CGROUP-bare"; do
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

# --- Registries for the pull/push scenarios -------------------------------------------
# One docker-registry per daemon, each on loopback where its daemon can reach it (so both
# speak plain HTTP, as daemons do with loopback registries): berth's on the host, dockerd's
# inside dockerd's network namespace (entered with nsenter). Each has its own storage.
REG_LAYERS=${REG_LAYERS:-3}
REG_LAYER_MIB=${REG_LAYER_MIB:-64}
REG_BERTH_PORT=${REG_BERTH_PORT:-5055}
REG_DOCKER_PORT=5000
RB=127.0.0.1:$REG_BERTH_PORT
RD=127.0.0.1:$REG_DOCKER_PORT
# The docker CLI against berthd (same client for both daemons).
dockb() { "$DOCKER_CLI" -H "unix://$BERTH_SOCK" "$@"; }
in_docker_ns() { nsenter -t "$(cat "$BENCH_DIR/docker/dockerd.pid")" -n "$@"; }

# start_registry berth|docker: a fresh, empty registry.
start_registry() {
  local which=$1 dir=$BENCH_DIR/reg-$1 port
  stop_registry "$which"
  rm -rf "$dir"; mkdir -p "$dir/data"
  if [ "$which" = berth ]; then port=$REG_BERTH_PORT; else port=$REG_DOCKER_PORT; fi
  cat > "$dir/config.yml" <<CFG
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$port
CFG
  if [ "$which" = berth ]; then
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  else
    in_docker_ns docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  fi
  echo $! > "$dir/pid"
  for _ in $(seq 100); do
    if [ "$which" = berth ]; then curl -sf "http://$RB/v2/" >/dev/null && return 0
    else in_docker_ns curl -sf "http://$RD/v2/" >/dev/null && return 0; fi
    sleep 0.1
  done
  echo "registry for $which did not start" >&2; cat "$dir/log" >&2; return 1
}

stop_registry() {
  local pidf=$BENCH_DIR/reg-$1/pid
  if [ -f "$pidf" ]; then kill "$(cat "$pidf")" 2>/dev/null || true; rm -f "$pidf"; sleep 0.2; fi
}

# A docker-archive of bench/big:latest: REG_LAYERS layers of REG_LAYER_MIB MiB of random
# bytes each, loaded into both daemons.
make_big_image() {
  [ -f "$BENCH_DIR/big.tar" ] && return 0
  python3 - "$BENCH_DIR/big.tar" "$REG_LAYERS" "$REG_LAYER_MIB" <<'PY'
import hashlib, io, json, os, sys, tarfile
out, layers, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def add(t, name, data):
    i = tarfile.TarInfo(name); i.size = len(data); i.mtime = 1700000000; i.mode = 0o644
    t.addfile(i, io.BytesIO(data))
diff_ids, names = [], []
with tarfile.open(out, "w") as arc:
    for n in range(layers):
        b = io.BytesIO()
        with tarfile.open(fileobj=b, mode="w") as lt:
            add(lt, f"layer{n}/random.bin", os.urandom(mib << 20))
        data = b.getvalue()
        d = hashlib.sha256(data).hexdigest()
        diff_ids.append("sha256:" + d); names.append(f"{d}/layer.tar")
        add(arc, names[-1], data)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    cfg = json.dumps({"architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
                      "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                      "history": [{"created_by": f"layer {n}"} for n in range(layers)]}).encode()
    cid = hashlib.sha256(cfg).hexdigest()
    add(arc, cid + ".json", cfg)
    add(arc, "manifest.json", json.dumps([{"Config": cid + ".json", "RepoTags": ["bench/big:latest"], "Layers": names}]).encode())
PY
}

# Milliseconds a command takes (its output discarded).
time_ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }

# Bytes of the layer blobs of bench/big in berth's registry.
big_blob_bytes() {
  curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$RB/v2/bench/big/manifests/latest" | python3 -c "import json,sys; print(sum(l['size'] for l in json.load(sys.stdin)['layers']))"
}

# Puts bench/big into a registry that lacks it (untimed), for pulls without a push first.
seed_registry() {
  local which=$1
  if [ "$which" = berth ]; then
    curl -sf "http://$RB/v2/bench/big/manifests/latest" >/dev/null 2>&1 && return 0
    dockb image inspect bench/big:latest >/dev/null 2>&1 || dockb load -i "$BENCH_DIR/big.tar" >/dev/null
    dockb tag bench/big:latest "$RB/bench/big:latest"; dockb push "$RB/bench/big:latest" >/dev/null
  else
    in_docker_ns curl -sf "http://$RD/v2/bench/big/manifests/latest" >/dev/null 2>&1 && return 0
    dock image inspect bench/big:latest >/dev/null 2>&1 || dock load -i "$BENCH_DIR/big.tar" >/dev/null
    dock tag bench/big:latest "$RD/bench/big:latest"; dock push "$RD/bench/big:latest" >/dev/null
  fi
}

# median of the arguments
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
# MB/s (10^6 bytes) for BYTES in MS milliseconds
mbps() { python3 -c "import sys; print('%.1f' % (int(sys.argv[1]) / 1e6 / (float(sys.argv[2]) / 1000)))" "$1" "$2"; }

# Median milliseconds of N POSTs of PATH on the unix socket SOCK, each on a new connection,
# timed from connecting to the end of the response (no client start-up in the figure).
api_post_ms() {
  python3 - "$1" "$2" "${3:-20}" <<'PY'
import socket, statistics, sys, time
sock, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def once():
    t = time.perf_counter()
    s = socket.socket(socket.AF_UNIX); s.connect(sock)
    s.sendall(f"POST {path} HTTP/1.0\r\nHost: d\r\nContent-Length: 0\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    assert b" 200 " in data.split(b"\r\n", 1)[0], data[:200]
    return (time.perf_counter() - t) * 1000
for _ in range(3):
    once()
print("%.1f" % statistics.median(once() for _ in range(n)))
PY
}
