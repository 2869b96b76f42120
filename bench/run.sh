#!/usr/bin/env bash
# berth vs Docker on this machine, in one run. Prints a table of medians and ratios and
# writes bench/results/latest.json. Needs root and release binaries:
#   cargo build --release -p berthd -p berth
#   cargo rustc --release -p berth-shim --bin berth-shim -- -C target-feature=+crt-static
#   bench/run.sh [scenario...]  (scenarios: run exec ps memory stats logs health push pull files
#                                net build compose; default all)
# push/pull: an image of REG_LAYERS (3) layers of REG_LAYER_MIB (64) MiB of random bytes,
# through the same docker CLI, to and from a local docker-registry per daemon; REG_RUNS
# (3) timed runs each, medians. pull also times a pull of the image already present.
# `files`: `cp` of a 1 GiB tree of 10,000 files into and out of a running container, and
# `commit` of a container with 200 MB of changes. Each cp run starts after a `sync`, so
# neither side pays for the previous run's writeback (the disk, not the copy, is the
# bottleneck otherwise: a plain `cp -r` of the tree takes 2.3 s on a flushed disk and up to
# 6 s right after another gigabyte was written).
# `net` restarts both daemons with bridge networking (see lib.sh) and measures
# container-to-container and host-to-published-port throughput (iperf3), connect latency
# through a published port, and `run --rm` on a user-defined network.
# `compose`: `compose up -d` and `down -v` of a 10-service project (one user network, a
# volume each), berth compose against docker-compose 1.29 on dockerd.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
OUT=$REPO/bench/results
mkdir -p "$OUT"
scenarios=("$@"); [ ${#scenarios[@]} -gt 0 ] || scenarios=(run exec ps memory stats logs health push pull files net build compose)
STATS_CONTAINERS=${STATS_CONTAINERS:-50}
LOG_MB=${LOG_MB:-100}
HEALTH_CONTAINERS=${HEALTH_CONTAINERS:-50}
REG_RUNS=${REG_RUNS:-3}
IPERF_SECS=${IPERF_SECS:-5}
trap stop_daemons EXIT
[ -n "${BENCH_KEEP:-}" ] && trap - EXIT
stop_daemons
mkdir -p "$BENCH_DIR"
start_berthd
start_dockerd
load_busybox
results=()
add() { results+=("$1"); }

# Every timed run of one command (ms), for the few-run scenarios where the spread matters.
runs_ms() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps([round(t*1000,1) for t in d['results'][int(sys.argv[2])]['times']]))" "$@"; }
median_ms() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('%.1f' % (d['results'][int(sys.argv[2])]['median']*1000))" "$@"; }

bench() { # name, berth command, docker command [, extra command label, extra command]
  local name=$1; shift
  local json=$BENCH_DIR/$name.json
  hyperfine -N -w "$WARMUP" -r "$RUNS" --export-json "$json" "$@" >/dev/null
  local b d; b=$(median_ms "$json" 0); d=$(median_ms "$json" 1)
  local crun="" runc=""
  if [ $# -ge 3 ]; then crun=$(median_ms "$json" 2); fi
  if [ $# -ge 4 ]; then runc=$(median_ms "$json" 3); fi
  add "{\"scenario\":\"$name\",\"berth_ms\":$b,\"docker_ms\":$d,\"bare_crun_ms\":${crun:-null},\"bare_runc_ms\":${runc:-null}}"
  printf '%-28s berth %8s ms   docker %8s ms   ratio %5.2f   %s\n' "$name" "$b" "$d" "$(python3 -c "print($b/$d)")" "${crun:+bare crun $crun ms, bare runc $runc ms}"
}

bench_prepared() { # name, berth command, docker command, berth prepare, docker prepare
  local json=$BENCH_DIR/$1.json
  hyperfine -N -w 1 -r "$RUNS" --export-json "$json" \
    --prepare "$4" "$2" --prepare "$5" "$3" >/dev/null
  local b d; b=$(median_ms "$json" 0); d=$(median_ms "$json" 1)
  add "{\"scenario\":\"$1\",\"berth_ms\":$b,\"docker_ms\":$d,\"berth_runs_ms\":$(runs_ms "$json" 0),\"docker_runs_ms\":$(runs_ms "$json" 1)}"
  printf '%-28s berth %8s ms   docker %8s ms   ratio %5.2f\n' "$1" "$b" "$d" "$(python3 -c "print($b/$d)")"
}

# Both daemons again, with their bridge networking (see lib.sh), and busybox.
restart_with_networking() {
  stop_daemons
  BENCH_NET=1
  mkdir -p "$BENCH_DIR"
  start_berthd
  start_dockerd
  load_busybox
}

for s in "${scenarios[@]}"; do
  case $s in
    run)
      # The bare OCI runtime on the same bundle berth generates (same spec, its rootfs
      # extracted to a plain directory), for reference: crun (berth's default here, run with
      # the hybrid cgroup2 mount hidden as berth's shim does) and runc.
      rb=$BENCH_DIR/bare-bundle; mkdir -p "$rb/rootfs"; tar -C "$rb/rootfs" -xf "$BENCH_DIR/busybox.tar"
      cid=$(berth create busybox true); berth start "$cid" >/dev/null
      python3 - "$RUN_DIR/berth/containers/$cid/config.json" "$rb" "$BERTH_CGROUP" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); rb = sys.argv[2]
c["root"]["path"] = rb + "/rootfs"
c["linux"]["cgroupsPath"] = "/" + sys.argv[3] + "-bare/c"
for m in c["mounts"]:
    if m["destination"] in ("/etc/resolv.conf", "/etc/hostname", "/etc/hosts"):
        m["source"] = "/etc/hostname"
json.dump(c, open(rb + "/config.json", "w"))
PY
      berth rm "$cid" >/dev/null
      hide=$(python3 -c "import os; print('/sys/fs/cgroup/unified' if os.path.exists('/sys/fs/cgroup/unified/cgroup.controllers') and open('/sys/fs/cgroup/unified/cgroup.controllers').read().strip() else '')")
      crun_cmd="crun --root $RUN_DIR/bare-crun run -b $rb bare-crun"
      [ -n "$hide" ] && crun_cmd="$BIN/berth-shim runtime-exec --hide-cgroup2 $hide -- $crun_cmd"
      bench run-rm-true \
        "$BIN/berth -H unix://$BERTH_SOCK run --rm busybox true" \
        "$DOCKER_CLI -H unix://$DOCKER_SOCK run --rm busybox true" \
        "$crun_cmd" \
        "runc --root $RUN_DIR/bare-runc run -b $rb bare-runc"
      ;;
    exec)
      berth run -d --name bexec busybox sleep 100000 >/dev/null
      dock run -d --name bexec busybox sleep 100000 >/dev/null
      bench exec-true "$BIN/berth -H unix://$BERTH_SOCK exec bexec true" "$DOCKER_CLI -H unix://$DOCKER_SOCK exec bexec true"
      berth rm -f bexec >/dev/null; dock rm -f bexec >/dev/null
      ;;
    ps)
      for i in $(seq 200); do berth create busybox true >/dev/null; dock create busybox true >/dev/null; done
      bench ps-a-200 "$BIN/berth -H unix://$BERTH_SOCK ps -a" "$DOCKER_CLI -H unix://$DOCKER_SOCK ps -a"
      berth container prune -f >/dev/null; dock container prune -f >/dev/null
      ;;
    memory)
      sleep 2
      bd=$(rss_kib "$BIN/berthd")
      dd=$(( $(rss_kib "dockerd --data-root $BENCH_DIR") + $(rss_kib "containerd.*berth-bench|containerd --config $BENCH_DIR|containerd.*$BENCH_DIR") ))
      for i in 1 2 3 4 5; do berth run -d busybox sleep 100000 >/dev/null; dock run -d busybox sleep 100000 >/dev/null; done
      sleep 2
      bs=$(( $(rss_kib "berth-shim run .*$BENCH_DIR") / 5 ))
      ds=$(( $(rss_kib "containerd-shim") / 5 ))
      add "{\"scenario\":\"memory\",\"berthd_idle_kib\":$bd,\"dockerd_containerd_idle_kib\":$dd,\"berth_shim_kib\":$bs,\"docker_shim_kib\":$ds}"
      printf '%-28s berthd %6s KiB   dockerd+containerd %6s KiB\n' "idle daemon RSS" "$bd" "$dd"
      printf '%-28s berth-shim %6s KiB   containerd-shim %6s KiB\n' "per-container monitor RSS" "$bs" "$ds"
      berth rm -f $(berth ps -q) >/dev/null; dock rm -f $(dock ps -q) >/dev/null
      ;;
    stats)
      # `stats --no-stream` over many running containers: each CLI against its daemon, and
      # the docker CLI against berthd (whose own ticker makes it wait 500 ms at least).
      for i in $(seq "$STATS_CONTAINERS"); do
        berth run -d busybox sleep 100000 >/dev/null; dock run -d busybox sleep 100000 >/dev/null
      done
      sleep 2
      json=$BENCH_DIR/stats.json
      hyperfine -N -w 1 -r "${STATS_RUNS:-5}" --export-json "$json" \
        "$BIN/berth -H unix://$BERTH_SOCK stats --no-stream" \
        "$DOCKER_CLI -H unix://$DOCKER_SOCK stats --no-stream" \
        "$DOCKER_CLI -H unix://$BERTH_SOCK stats --no-stream" >/dev/null
      b=$(median_ms "$json" 0); d=$(median_ms "$json" 1); db=$(median_ms "$json" 2)
      add "{\"scenario\":\"stats-no-stream-$STATS_CONTAINERS\",\"berth_ms\":$b,\"docker_ms\":$d,\"docker_cli_on_berthd_ms\":$db}"
      printf '%-28s berth %8s ms   docker %8s ms   ratio %5.2f   (docker CLI on berthd %s ms)\n' \
        "stats-no-stream-$STATS_CONTAINERS" "$b" "$d" "$(python3 -c "print($b/$d)")" "$db"
      berth rm -f $(berth ps -q) >/dev/null; dock rm -f $(dock ps -q) >/dev/null
      ;;
    logs)
      # A container writes LOG_MB of 100-byte lines to stdout (json-file on both, rotation
      # large enough to keep it all); then `logs` reads it back.
      line=$(printf 'x%.0s' $(seq 99))
      mbps() { python3 -c "print('%.1f' % ($LOG_MB * 1e6 / 1048576 / $1))"; }
      for who in berth dock; do
        start=$(date +%s.%N)
        $who run -d --name logw --log-opt max-size=4g busybox sh -c "yes $line | head -c $((LOG_MB * 1000000))" >/dev/null
        $who wait logw >/dev/null
        end=$(date +%s.%N)
        write=$(python3 -c "print($end - $start)")
        bytes=$($who logs logw 2>/dev/null | wc -c)
        [ "$bytes" -eq $((LOG_MB * 1000000)) ] || { echo "logs: $who read back $bytes bytes" >&2; exit 1; }
        start=$(date +%s.%N); $who logs logw >/dev/null 2>&1; end=$(date +%s.%N)
        read=$(python3 -c "print($end - $start)")
        eval "${who}_write=$write ${who}_read=$read"
        $who rm -f logw >/dev/null
      done
      bw=$(mbps "$berth_write"); dw=$(mbps "$dock_write"); br=$(mbps "$berth_read"); dr=$(mbps "$dock_read")
      add "{\"scenario\":\"logs-${LOG_MB}mb\",\"berth_write_mib_s\":$bw,\"docker_write_mib_s\":$dw,\"berth_read_mib_s\":$br,\"docker_read_mib_s\":$dr}"
      printf '%-28s berth %8s MiB/s docker %8s MiB/s ratio %5.2f\n' "logs: write end to end" "$bw" "$dw" "$(python3 -c "print($bw/$dw)")"
      printf '%-28s berth %8s MiB/s docker %8s MiB/s ratio %5.2f\n' "logs: read back" "$br" "$dr" "$(python3 -c "print($br/$dr)")"
      ;;
    health)
      # Daemon memory per container with a health check (every second), after a warm-up
      # round. Two figures: RSS
      # with HEALTH_CONTAINERS checked containers minus RSS with as many unchecked ones
      # (includes fixed costs the probes bring, such as the daemon's bounded ring of recent
      # events filling with exec events); and the slope between n/2 and n checked
      # containers (fixed costs cancel out).
      # The rounds run in the order plain, half, full, full, half, plain and each figure
      # uses the mean of its two rounds, which cancels a steady drift: both daemons' RSS
      # creeps up from round to round whatever the round holds (berthd's six rounds in one
      # run: 28432 28492 28672 28860 28984 29036 KiB), and the one-way order plain, half,
      # full charged that drift to the checked rounds (berthd's figure then moved between
      # 8 and 48 KiB from one run to the next of the same binary).
      n=$HEALTH_CONTAINERS
      rss_with() { # count, flags...
        local count=$1; shift
        for i in $(seq "$count"); do berth run -d "$@" busybox sleep 100000 >/dev/null; dock run -d "$@" busybox sleep 100000 >/dev/null; done
        sleep 8
        echo "$(rss_kib "$BIN/berthd") $(rss_kib "dockerd --data-root $BENCH_DIR/")"
        berth rm -f $(berth ps -q) >/dev/null; dock rm -f $(dock ps -q) >/dev/null 2>&1 || true
      }
      check=(--health-cmd true --health-interval 1s)
      # Warm-up: one round of checked containers first, so that both daemons' heaps have
      # grown to what n containers need; the rounds below then measure what stays in use
      # rather than the allocator's high-water mark.
      rss_with "$n" "${check[@]}" >/dev/null
      read -r b0a d0a < <(rss_with "$n")
      read -r bha dha < <(rss_with $((n / 2)) "${check[@]}")
      read -r b1a d1a < <(rss_with "$n" "${check[@]}")
      read -r b1b d1b < <(rss_with "$n" "${check[@]}")
      read -r bhb dhb < <(rss_with $((n / 2)) "${check[@]}")
      read -r b0b d0b < <(rss_with "$n")
      mean() { echo $((($1 + $2) / 2)); }
      b0=$(mean "$b0a" "$b0b"); bh=$(mean "$bha" "$bhb"); b1=$(mean "$b1a" "$b1b")
      d0=$(mean "$d0a" "$d0b"); dh=$(mean "$dha" "$dhb"); d1=$(mean "$d1a" "$d1b")
      kib() { python3 -c "print('%.1f' % (($1) / $2))"; }
      bk=$(kib "$b1 - $b0" "$n"); dk=$(kib "$d1 - $d0" "$n")
      bs=$(kib "$b1 - $bh" "$((n - n / 2))"); ds=$(kib "$d1 - $dh" "$((n - n / 2))")
      rounds="\"berthd_kib_rounds\":[$b0a,$bha,$b1a,$b1b,$bhb,$b0b],\"dockerd_kib_rounds\":[$d0a,$dha,$d1a,$d1b,$dhb,$d0b]"
      add "{\"scenario\":\"health-daemon-kib-per-container\",\"berth\":$bk,\"docker\":$dk,\"berth_slope\":$bs,\"docker_slope\":$ds,\"berthd_kib_plain\":$b0,\"berthd_kib_half_checked\":$bh,\"berthd_kib_checked\":$b1,\"dockerd_kib_plain\":$d0,\"dockerd_kib_half_checked\":$dh,\"dockerd_kib_checked\":$d1,$rounds}"
      printf '%-28s berthd %6s KiB   dockerd %6s KiB   (per checked container vs unchecked, %s containers)\n' "health check daemon memory" "$bk" "$dk" "$n"
      printf '%-28s berthd %6s KiB   dockerd %6s KiB   (slope from %s to %s checked containers)\n' "health check daemon memory" "$bs" "$ds" "$((n / 2))" "$n"
      ;;
    push)
      # Cold: the image as loaded, its layers gzipped while uploading (what dockerd does on
      # every push). Warm (berth only): again to an empty registry, with the gzip berth
      # kept from the cold push. Each push goes to a fresh, empty registry.
      make_big_image
      bc=(); bw=(); dc=()
      for _ in $(seq "$REG_RUNS"); do
        dockb rmi -f bench/big:latest "$RB/bench/big:latest" >/dev/null 2>&1 || true
        dockb load -i "$BENCH_DIR/big.tar" >/dev/null
        dockb tag bench/big:latest "$RB/bench/big:latest"
        start_registry berth; bc+=("$(time_ms dockb push "$RB/bench/big:latest")")
        start_registry berth; bw+=("$(time_ms dockb push "$RB/bench/big:latest")")
        dock image inspect bench/big:latest >/dev/null 2>&1 || dock load -i "$BENCH_DIR/big.tar" >/dev/null
        dock tag bench/big:latest "$RD/bench/big:latest"
        start_registry docker; dc+=("$(time_ms dock push "$RD/bench/big:latest")")
      done
      bytes=$(big_blob_bytes)
      b=$(median "${bc[@]}"); w=$(median "${bw[@]}"); d=$(median "${dc[@]}")
      bm=$(mbps "$bytes" "$b"); wm=$(mbps "$bytes" "$w"); dm=$(mbps "$bytes" "$d")
      add "{\"scenario\":\"push\",\"bytes\":$bytes,\"berth_ms\":$b,\"berth_mbps\":$bm,\"berth_warm_ms\":$w,\"berth_warm_mbps\":$wm,\"docker_ms\":$d,\"docker_mbps\":$dm}"
      printf '%-28s berth %6s MB/s (warm %s MB/s)   docker %6s MB/s   ratio %5.2f\n' "push $((bytes / 1000000)) MB" "$bm" "$wm" "$dm" "$(python3 -c "print($bm/$dm)")"
      ;;
    pull)
      make_big_image
      [ -f "$BENCH_DIR/reg-berth/pid" ] || start_registry berth
      [ -f "$BENCH_DIR/reg-docker/pid" ] || start_registry docker
      seed_registry berth; seed_registry docker
      bp=(); dp=()
      for _ in $(seq "$REG_RUNS"); do
        dockb rmi -f bench/big:latest "$RB/bench/big:latest" >/dev/null 2>&1 || true
        bp+=("$(time_ms dockb pull "$RB/bench/big:latest")")
        dock rmi -f bench/big:latest "$RD/bench/big:latest" >/dev/null 2>&1 || true
        dp+=("$(time_ms dock pull "$RD/bench/big:latest")")
      done
      bytes=$(big_blob_bytes)
      b=$(median "${bp[@]}"); d=$(median "${dp[@]}")
      bm=$(mbps "$bytes" "$b"); dm=$(mbps "$bytes" "$d")
      add "{\"scenario\":\"pull\",\"bytes\":$bytes,\"berth_ms\":$b,\"berth_mbps\":$bm,\"docker_ms\":$d,\"docker_mbps\":$dm}"
      printf '%-28s berth %6s MB/s   docker %6s MB/s   ratio %5.2f\n' "pull $((bytes / 1000000)) MB" "$bm" "$dm" "$(python3 -c "print($bm/$dm)")"
      # Already present: through the docker CLI, and the API call alone.
      bench pull-present \
        "$DOCKER_CLI -H unix://$BERTH_SOCK pull $RB/bench/big:latest" \
        "$DOCKER_CLI -H unix://$DOCKER_SOCK pull $RD/bench/big:latest"
      b=$(api_post_ms "$BERTH_SOCK" "/images/create?fromImage=$RB/bench/big&tag=latest" "$RUNS")
      d=$(api_post_ms "$DOCKER_SOCK" "/images/create?fromImage=$RD/bench/big&tag=latest" "$RUNS")
      add "{\"scenario\":\"pull-present-api\",\"berth_ms\":$b,\"docker_ms\":$d}"
      printf '%-28s berth %8s ms   docker %8s ms   ratio %5.2f\n' "pull-present-api" "$b" "$d" "$(python3 -c "print($b/$d)")"
      ;;
    files)
      tree=$BENCH_DIR/tree
      python3 - "$tree" <<'PY'
import os, sys
root = sys.argv[1]
block = os.urandom(1 << 20)
for d in range(100):
    os.makedirs(f"{root}/d{d:02}", exist_ok=True)
    for f in range(100):
        n = 107374  # 10,000 files of ~105 KiB: 1 GiB
        off = (d * 100 + f) * 7919 % ((1 << 20) - n)
        with open(f"{root}/d{d:02}/f{f:02}", "wb") as fh:
            fh.write(block[off:off + n])
PY
      berth run -d --name cpt busybox sleep 100000 >/dev/null
      dock run -d --name cpt busybox sleep 100000 >/dev/null
      # Every run copies to a destination of its own (/data1, /data2, ... in the container,
      # out-berth1, ... on the host), and nothing is deleted until all runs are done. This
      # disk is ext4 without a journal: there, creating files within minutes of deleting many
      # costs several times more CPU (the inode allocator looks at and skips each recently
      # deleted inode, ext4's recently_deleted()), so a run prepared by `rm -rf` of the last
      # copy measures the deletion rather than cp (seen: plain `cp -r` of the tree 1.0-1.3 s
      # fresh, 3.9-8.9 s right after deleting a copy). The prepare step moves a counter and
      # flushes the disk; runs need (FILE_RUNS + 1) GiB per daemon and direction.
      files_bench() { RUNS=${FILE_RUNS:-3} bench_prepared "$@"; }
      next() { echo "sh -c 'echo \$((\$(cat $BENCH_DIR/n-$1 2>/dev/null || echo 0) + 1)) > $BENCH_DIR/n-$1 && sync'"; }
      nth() { echo "\$(cat $BENCH_DIR/n-$1)"; }
      files_bench cp-in-1gib-10k-files \
        "sh -c 'exec $BIN/berth -H unix://$BERTH_SOCK cp $tree cpt:/data$(nth bin)'" \
        "sh -c 'exec $DOCKER_CLI -H unix://$DOCKER_SOCK cp $tree cpt:/data$(nth din)'" \
        "$(next bin)" "$(next din)"
      files_bench cp-out-1gib-10k-files \
        "sh -c 'exec $BIN/berth -H unix://$BERTH_SOCK cp cpt:/data1 $BENCH_DIR/out-berth$(nth bout)'" \
        "sh -c 'exec $DOCKER_CLI -H unix://$DOCKER_SOCK cp cpt:/data1 $BENCH_DIR/out-docker$(nth dout)'" \
        "$(next bout)" "$(next dout)"
      berth rm -f cpt >/dev/null; dock rm -f cpt >/dev/null
      rm -rf "$tree" "$BENCH_DIR"/out-berth* "$BENCH_DIR"/out-docker* "$BENCH_DIR"/n-*
      berth run -d --name cm busybox sh -c 'head -c 209715200 /dev/urandom > /big; sleep 100000' >/dev/null
      dock run -d --name cm busybox sh -c 'head -c 209715200 /dev/urandom > /big; sleep 100000' >/dev/null
      until [ "$(berth exec cm stat -c %s /big 2>/dev/null)" = 209715200 ] && [ "$(dock exec cm stat -c %s /big 2>/dev/null)" = 209715200 ]; do sleep 0.5; done
      sleep 1
      files_bench commit-200mb \
        "$BIN/berth -H unix://$BERTH_SOCK commit cm bench-commit" \
        "$DOCKER_CLI -H unix://$DOCKER_SOCK commit cm bench-commit" \
        "sh -c '$BIN/berth -H unix://$BERTH_SOCK rmi bench-commit >/dev/null 2>&1; true'" \
        "sh -c '$DOCKER_CLI -H unix://$DOCKER_SOCK rmi bench-commit >/dev/null 2>&1; true'"
      berth rm -f cm >/dev/null; dock rm -f cm >/dev/null
      ;;
    net)
      restart_with_networking
      load_netbench
      berth network create benchnet >/dev/null; dock network create benchnet >/dev/null
      gbits() { python3 -c "import json,sys; print('%.2f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9))"; }
      ratio() { python3 -c "print('%.2f' % ($1/$2))"; }
      # Container to container on one user-defined network.
      berth run -d --name ipsrv --network benchnet netbench iperf3 -s >/dev/null
      dock run -d --name ipsrv --network benchnet netbench iperf3 -s >/dev/null
      sleep 1
      b=$(berth run --rm --network benchnet netbench iperf3 -c ipsrv -t "$IPERF_SECS" -J | gbits)
      d=$(dock run --rm --network benchnet netbench iperf3 -c ipsrv -t "$IPERF_SECS" -J | gbits)
      add "{\"scenario\":\"net-c2c-gbits\",\"berth\":$b,\"docker\":$d}"
      printf '%-28s berth %8s Gb/s docker %8s Gb/s ratio %5s\n' "container->container tcp" "$b" "$d" "$(ratio "$b" "$d")"
      # The host to a port published on all addresses, through 127.0.0.1.
      berth run -d --name ippub -p 15201:5201 netbench iperf3 -s >/dev/null
      dock run -d --name ippub -p 15201:5201 netbench iperf3 -s >/dev/null
      sleep 1
      b=$(iperf3 -c 127.0.0.1 -p 15201 -t "$IPERF_SECS" -J | gbits)
      d=$(in_dockerd_netns iperf3 -c 127.0.0.1 -p 15201 -t "$IPERF_SECS" -J | gbits)
      add "{\"scenario\":\"net-published-loopback-gbits\",\"berth\":$b,\"docker\":$d}"
      printf '%-28s berth %8s Gb/s docker %8s Gb/s ratio %5s\n' "host->127.0.0.1:published" "$b" "$d" "$(ratio "$b" "$d")"
      # Connect and read a short answer through the published port.
      berth run -d --name echo -p 15007:7 busybox nc -ll -p 7 -e /bin/echo ok >/dev/null
      dock run -d --name echo -p 15007:7 busybox nc -ll -p 7 -e /bin/echo ok >/dev/null
      sleep 1
      b=$(python3 "$REPO/bench/connlat.py" 15007 1000)
      d=$(in_dockerd_netns python3 "$REPO/bench/connlat.py" 15007 1000)
      add "{\"scenario\":\"net-published-connect-us\",\"berth\":$b,\"docker\":$d}"
      printf '%-28s berth %8s us   docker %8s us   ratio %5s\n' "connect+answer via port" "$b" "$d" "$(ratio "$b" "$d")"
      bench run-rm-user-network \
        "$BIN/berth -H unix://$BERTH_SOCK run --rm --network benchnet busybox true" \
        "$DOCKER_CLI -H unix://$DOCKER_SOCK run --rm --network benchnet busybox true"
      ;;
    build)
      # The classic builder on both sides (the docker CLI here has no buildx).
      export DOCKER_BUILDKIT=0
      ctx=$BENCH_DIR/build-ctx; mkdir -p "$ctx"
      head -c 20M /dev/urandom > "$ctx/data.bin"
      cat > "$ctx/Dockerfile" <<'DF'
FROM busybox
COPY data.bin /data/
RUN echo built > /built
ENV APP=bench
WORKDIR /app
CMD ["sh"]
DF
      berth build -t bench-build "$ctx" >/dev/null; dock build -t bench-build "$ctx" >/dev/null 2>&1
      bench build-cached-5-steps \
        "$BIN/berth -H unix://$BERTH_SOCK build -t bench-build $ctx" \
        "$DOCKER_CLI -H unix://$DOCKER_SOCK build -t bench-build $ctx"
      RUNS=${BUILD_RUNS:-5} WARMUP=1 bench build-cold-5-steps \
        "$BIN/berth -H unix://$BERTH_SOCK build --no-cache -t bench-cold $ctx" \
        "$DOCKER_CLI -H unix://$DOCKER_SOCK build --no-cache -t bench-cold $ctx"
      par=$BENCH_DIR/build-par; mkdir -p "$par"
      cat > "$par/Dockerfile" <<'DF'
FROM busybox AS a
RUN sleep 2 && echo a > /a
FROM busybox AS b
RUN sleep 2 && echo b > /b
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
DF
      RUNS=${BUILD_RUNS:-3} WARMUP=0 bench build-two-2s-stages \
        "$BIN/berth -H unix://$BERTH_SOCK build --no-cache -t bench-par $par" \
        "$DOCKER_CLI -H unix://$DOCKER_SOCK build --no-cache -t bench-par $par"
      echo "  (two independent 2 s stages: the sum is 4000 ms)"
      ;;
    compose)
      # `up -d` and `down -v` of 10 services, each on one user network with a named volume,
      # from images present. The docker side is Debian's docker-compose 1.29 (Python; this
      # machine has no compose v2 plugin) against the private dockerd.
      restart_with_networking
      proj=$BENCH_DIR/composebench; mkdir -p "$proj"
      {
        echo "services:"
        for i in $(seq 0 9); do
          printf '  svc%s:\n    image: busybox\n    command: sleep 100000\n    stop_signal: SIGKILL\n' "$i"
          printf '    networks: [appnet]\n    volumes: ["data%s:/data"]\n' "$i"
        done
        printf 'networks:\n  appnet:\nvolumes:\n'
        for i in $(seq 0 9); do printf '  data%s:\n' "$i"; done
      } > "$proj/compose.yaml"
      bc="$BIN/berth -H unix://$BERTH_SOCK compose -f $proj/compose.yaml"
      dc="env DOCKER_HOST=unix://$DOCKER_SOCK docker-compose -f $proj/compose.yaml"
      RUNS=${COMPOSE_RUNS:-10} bench_prepared compose-up-10-services \
        "$bc up -d" "$dc up -d" "$bc down -v" "$dc down -v"
      RUNS=${COMPOSE_RUNS:-10} bench_prepared compose-down-10-services \
        "$bc down -v" "$dc down -v" "$bc up -d" "$dc up -d"
      $bc down -v >/dev/null 2>&1; $dc down -v >/dev/null 2>&1
      ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
printf '[%s]\n' "$(IFS=,; echo "${results[*]}")" | python3 -m json.tool > "$OUT/latest.json"
echo "results: $OUT/latest.json"
