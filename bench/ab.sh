#!/usr/bin/env bash
# Before/after: the same KV workloads against two builds of meridian, one
# after the other on the same machine (3 servers; GET 16 and 64 clients,
# PUT 64 clients, 128 B; then one node, GET 64 clients).
#
#   bash bench/ab.sh OLD_BINARY NEW_BINARY      (DURATION=10s)
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || { echo "usage: bench/ab.sh OLD_BINARY NEW_BINARY"; exit 2; }
OLD=$(realpath "$1"); NEW=$(realpath "$2")
DURATION=${DURATION:-10s}
OUT=${OUT:-$ROOT/target/bench/ab}
mkdir -p "$OUT"
for side in old new; do
  if [ $side = old ]; then BIN=$OLD; else BIN=$NEW; fi
  meridian_cluster 3
  bench "$side-three-get-c16" -workload kv-get -addr "$(meridian_addrs 3)" -c 16 -duration "$DURATION" -pids "$(meridian_pids 3)"
  bench "$side-three-get-c64" -workload kv-get -addr "$(meridian_addrs 3)" -c 64 -duration "$DURATION" -pids "$(meridian_pids 3)"
  bench "$side-three-put-c64" -workload kv-put -addr "$(meridian_addrs 3)" -c 64 -duration "$DURATION" -pids "$(meridian_pids 3)"
  stop_all
  meridian_cluster 1
  bench "$side-single-get-c64" -workload kv-get -addr "$(meridian_addrs 1)" -c 64 -duration "$DURATION" -pids "$(meridian_pids 1)"
  stop_all
done
python3 - "$OUT" <<'PY'
import json, sys
d = sys.argv[1]
print("| run | before ops/s | after ops/s | change | before p50 / p99 ms | after p50 / p99 ms | CPU % before / after |")
print("|---|---|---|---|---|---|---|")
for run in ("three-get-c16", "three-get-c64", "three-put-c64", "single-get-c64"):
    o, n = (json.load(open(f"{d}/{s}-{run}.json")) for s in ("old", "new"))
    cpu = lambda r: sum(p["cpu_percent"] for p in r["processes"])
    lat = lambda r: f"{r['latency']['p50_ms']:.2f} / {r['latency']['p99_ms']:.2f}"
    print(f"| {run} | {o['throughput_ops_s']:.0f} | {n['throughput_ops_s']:.0f} | "
          f"{n['throughput_ops_s'] / o['throughput_ops_s']:.2f}x | {lat(o)} | {lat(n)} | {cpu(o):.0f} / {cpu(n):.0f} |")
PY
