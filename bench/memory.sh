#!/usr/bin/env bash
# Memory: RSS of an idle client agent, an idle server, and a server
# holding 10,000 services and 100,000 keys (written through /v1/txn, 64
# operations a transaction, and /v1/catalog/register).
#
#   bash bench/memory.sh
source "$(dirname "$0")/lib.sh"
OUT=${OUT:-$ROOT/target/bench/memory}
mkdir -p "$OUT"
build
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' /proc/"$1"/status; }

meridian_cluster 1
"$BIN" agent -node c1 -bind 127.0.0.2 -client 127.0.0.2 -data-dir "$WORK/c1" -join 127.0.0.1:19512 \
  -http-port 19590 -dns-port 19591 -serf-lan-port 19592 >"$WORK/c1.log" 2>&1 &
CPID=$!; PIDS+=($CPID)
wait_http 127.0.0.2:19590/v1/agent/self NodeName 30
log "idle for 10 s"
sleep 10
IDLE_SERVER=$(rss "${MPID[1]}"); IDLE_CLIENT=$(rss $CPID)

log "writing 100,000 keys and 10,000 services"
python3 - 127.0.0.1:19510 <<'PY'
import base64, json, sys, urllib.request
http = sys.argv[1]
def put(path, body):
    req = urllib.request.Request(f"http://{http}{path}", data=json.dumps(body).encode(), method="PUT")
    return urllib.request.urlopen(req, timeout=30).read()
value = base64.b64encode(b"v" * 100).decode()
for start in range(0, 100_000, 64):
    put("/v1/txn", [{"KV": {"Verb": "set", "Key": f"mem/key{i:06d}", "Value": value}}
                    for i in range(start, min(start + 64, 100_000))])
for n in range(1000):
    for s in range(10):
        put("/v1/catalog/register", {"Node": f"node{n}", "Address": f"10.{n // 256}.{n % 256}.1",
                                     "Service": {"ID": f"svc{s}", "Service": f"svc{s}", "Port": 8000 + s}})
PY
sleep 2
KEYS=$(curl -sf "127.0.0.1:19510/v1/kv/mem/?keys" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
LOADED=$(rss "${MPID[1]}")
{
  echo "# Memory ($(date -u +%F))"
  echo
  machine
  echo
  echo "| agent | RSS MiB |"
  echo "|---|---|"
  echo "| idle client (joined, no services) | $IDLE_CLIENT |"
  echo "| idle server (1-server cluster) | $IDLE_SERVER |"
  echo "| server with 10,000 services (1,000 nodes x 10) and $KEYS keys of 100 B | $LOADED |"
  echo
  echo "Target: idle client under 20 MB."
} | tee "$OUT/report.md"
