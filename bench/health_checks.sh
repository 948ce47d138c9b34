#!/usr/bin/env bash
# CPU and memory of one agent running N HTTP checks at a 1 s interval
# (default 1,000), and the time from an endpoint going down to DNS leaving
# its instance out. Everything on loopback; stops by itself.
#
#   bash bench/health_checks.sh [CHECKS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKS=${1:-1000}
SECONDS_MEASURED=${2:-30}
command -v dig >/dev/null || { echo "needs dig (dnsutils)"; exit 1; }
cargo build --release --bin meridian >/dev/null
BIN=$PWD/target/release/meridian
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
agent() { # name http dns extra...
  local name=$1 http=$2 dns=$3; shift 3
  "$BIN" agent -dev -node "$name" -http-port "$http" -dns-port "$dns" -server-port "$(port)" \
    -serf-lan-port "$(port)" -serf-wan-port "$(port)" "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -sf "127.0.0.1:$http/v1/status/leader" | grep -q 127 && return; sleep 0.1; done
  echo "agent $name did not start"; cat "$WORK/$name.log"; exit 1
}

# The checked endpoints: another agent's status API (a fast Rust server,
# so the target is not what limits the figures).
THTTP=$(port); agent target "$THTTP" "$(port)"
mkdir -p "$WORK/conf"
python3 - "$WORK/conf/checks.json" "$CHECKS" "$THTTP" <<'PY'
import json, sys
path, n, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
per = 10
services = [{"name": f"svc{i}", "port": 10000 + i, "checks": [
    {"http": f"http://127.0.0.1:{port}/v1/status/leader", "interval": "1s", "name": f"c{i}-{j}"}
    for j in range(min(per, n - i * per))]} for i in range((n + per - 1) // per)]
json.dump({"services": services}, open(path, "w"))
PY
HTTP=$(port); DNS=$(port)
agent checker "$HTTP" "$DNS" -config-dir "$WORK/conf"
PID=${PIDS[-1]}
echo "warming up: $CHECKS HTTP checks at 1 s"
for _ in $(seq 1 60); do
  n=$(curl -s "127.0.0.1:$HTTP/v1/health/state/passing" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$n" -ge "$CHECKS" ] && break; sleep 1
done
echo "passing checks: $n"
ticks() { awk '{print $14+$15}' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s.%N)
sleep "$SECONDS_MEASURED"
t1=$(ticks); s1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
cpu=$(python3 -c "print(f'{100*($t1-$t0)/$HZ/($s1-$s0):.1f}')")
echo "checking agent: CPU ${cpu}% of one core, RSS $((rss/1024)) MiB, over ${SECONDS_MEASURED} s"

# One instance whose endpoint goes away: how long until DNS leaves it out.
SPORT=$(port)
python3 -m http.server "$SPORT" --bind 127.0.0.1 >/dev/null 2>&1 & SRV=$!; PIDS+=($SRV)
curl -s -X PUT "127.0.0.1:$HTTP/v1/agent/service/register" -d "{\"Name\":\"probe\",\"Port\":$SPORT,\"Check\":{\"HTTP\":\"http://127.0.0.1:$SPORT/\",\"Interval\":\"1s\"}}"
for _ in $(seq 1 100); do dig +short @127.0.0.1 -p "$DNS" probe.service.consul | grep -q 127 && break; sleep 0.1; done
kill "$SRV"; down=$(date +%s.%N)
while dig +short @127.0.0.1 -p "$DNS" probe.service.consul | grep -q 127; do sleep 0.05; done
gone=$(date +%s.%N)
python3 -c "print(f'endpoint down to DNS without the instance: {$gone-$down:.2f} s (interval 1 s)')"
