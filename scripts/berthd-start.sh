#!/usr/bin/env bash
# Starts berthd in the background (no systemd here) unless it already runs, and waits for
# its socket. Log: /var/log/berthd.log; pid file: /run/berth/berthd.pid.
set -euo pipefail
pidfile=/run/berth/berthd.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "berthd is already running (pid $(cat "$pidfile"))"
  exit 0
fi
nohup berthd "$@" >>/var/log/berthd.log 2>&1 &
for _ in $(seq 100); do
  if berth version >/dev/null 2>&1; then echo "berthd started (pid $(cat "$pidfile"))"; exit 0; fi
  sleep 0.1
done
echo "berthd did not come up; see /var/log/berthd.log" >&2
tail -n 20 /var/log/berthd.log >&2 || true
exit 1
