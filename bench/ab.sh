#!/usr/bin/env bash
# Before/after: the same KV workloads against two builds of meridian, one
# after the other on the same machine (3 servers; GET 16 and 64 clients,
# PUT 64 clients, 128 B; then 1,000 writes/s open loop for STEADY after
# PREFILL of 4 KiB writes at 64 and 256 clients, enough to cross a Raft
# snapshot as bench/kv_vs_etcd.sh does before its steady run; then one
# node: GET, health-service (10 instances) and DNS A/SRV, 64 clients).
#
#   bash bench/ab.sh OLD_BINARY NEW_BINARY      (DURATION=10s PREFILL=10s STEADY=60s)
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || { echo "usage: bench/ab.sh OLD_BINARY NEW_BINARY"; exit 2; }
OLD=$(realpath "$1"); NEW=$(realpath "$2")
DURATION=${DURATION:-10s}
PREFILL=${PREFILL:-10s}
STEADY=${STEADY:-60s}
OUT=${OUT:-$ROOT/target/bench/ab}
mkdir -p "$OUT"
for side in old new; do
  if [ $side = old ]; then BIN=$OLD; else BIN=$NEW; fi
  meridian_cluster 3
  bench "$side-three-get-c16" -workload kv-get -addr "$(meridian_addrs 3)" -c 16 -duration "$DURATION" -pids "$(meridian_pids 3)"
  bench "$side-three-get-c64" -workload kv-get -addr "$(meridian_addrs 3)" -c 64 -duration "$DURATION" -pids "$(meridian_pids 3)"
  bench "$side-three-put-c64" -workload kv-put -addr "$(meridian_addrs 3)" -c 64 -duration "$DURATION" -pids "$(meridian_pids 3)"
  for c in 64 256; do
    bench "$side-prefill-c$c" -workload kv-put -addr "$(meridian_addrs 3)" -c $c -value-size 4096 -duration "$PREFILL" -pids "$(meridian_pids 3)"
  done
  bench "$side-three-steady" -workload kv-put -addr "$(meridian_addrs 3)" -rate 1000 -duration "$STEADY" -pids "$(meridian_pids 3)"
  stop_all
  meridian_cluster 1
  bench "$side-single-get-c64" -workload kv-get -addr "$(meridian_addrs 1)" -c 64 -duration "$DURATION" -pids "$(meridian_pids 1)"
  # health-service registers the instances the DNS run then looks up.
  bench "$side-single-health-c64" -workload health-service -instances 10 -addr "$(meridian_addrs 1)" -c 64 -duration "$DURATION" -pids "$(meridian_pids 1)"
  bench "$side-single-dns-c64" -workload dns -dns-addr 127.0.0.1:$((PB + 11)) -c 64 -duration "$DURATION" -pids "$(meridian_pids 1)"
  stop_all
done
python3 - "$OUT" <<'PY'
import json, sys
d = sys.argv[1]
print("| run | before ops/s | after ops/s | change | before p50 / p99 ms | after p50 / p99 ms | CPU % before / after |")
print("|---|---|---|---|---|---|---|")
for run in ("three-get-c16", "three-get-c64", "three-put-c64", "three-steady", "single-get-c64",
            "single-health-c64", "single-dns-c64"):
    o, n = (json.load(open(f"{d}/{s}-{run}.json")) for s in ("old", "new"))
    cpu = lambda r: sum(p["cpu_percent"] for p in r["processes"])
    lat = lambda r: f"{r['latency']['p50_ms']:.2f} / {r['latency']['p99_ms']:.2f}"
    print(f"| {run} | {o['throughput_ops_s']:.0f} | {n['throughput_ops_s']:.0f} | "
          f"{n['throughput_ops_s'] / o['throughput_ops_s']:.2f}x | {lat(o)} | {lat(n)} | {cpu(o):.0f} / {cpu(n):.0f} |")
print()
print("Open loop, 1,000 writes/s (three servers, after the prefill):")
print()
print("| build | ops | ok | errors | p50 ms | p99 ms | p99.9 ms | max ms | longest gap ms |")
print("|---|---|---|---|---|---|---|---|---|")
for side, label in (("old", "before"), ("new", "after")):
    r = json.load(open(f"{d}/{side}-three-steady.json"))
    l = r["latency"]
    print(f"| {label} | {r['ops']} | {r['ok']} | {r['ops'] - r['ok']} | {l['p50_ms']:.2f} | {l['p99_ms']:.2f} | "
          f"{l['p999_ms']:.2f} | {l['max_ms']:.2f} | {r['longest_gap_ms']:.0f} |")
PY
