#!/usr/bin/env bash
# Before/after for the write path: one client's PUT on one server and on
# three, and 16 clients on three, alternating the two builds ROUNDS times
# (each round starts fresh clusters) so that drift on the machine falls on
# both; the table gives each side's median and every round.
#
#   bash bench/ab_write.sh OLD_BINARY NEW_BINARY   (ROUNDS=3 DURATION=8s)
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || { echo "usage: bench/ab_write.sh OLD_BINARY NEW_BINARY"; exit 2; }
OLD=$(realpath "$1"); NEW=$(realpath "$2")
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
OUT=${OUT:-$ROOT/target/bench/ab_write}
mkdir -p "$OUT"
for r in $(seq 1 "$ROUNDS"); do
  for side in old new; do
    if [ $side = old ]; then BIN=$OLD; else BIN=$NEW; fi
    meridian_cluster 1
    bench "$side-$r-one-put-c1" -workload kv-put -addr "$(meridian_addrs 1)" -c 1 -duration "$DURATION" -pids "$(meridian_pids 1)"
    stop_all
    meridian_cluster 3
    bench "$side-$r-three-put-c1" -workload kv-put -addr "$(meridian_addrs 3)" -c 1 -duration "$DURATION" -pids "$(meridian_pids 3)"
    bench "$side-$r-three-put-c16" -workload kv-put -addr "$(meridian_addrs 3)" -c 16 -duration "$DURATION" -pids "$(meridian_pids 3)"
    stop_all
  done
done
python3 - "$OUT" "$ROUNDS" <<'PY' | tee "$OUT/report.md"
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
print("| run | before ops/s (median) | after ops/s (median) | change | before p50 / p99 ms | after p50 / p99 ms | CPU ms per write before / after | rounds before ; after |")
print("|---|---|---|---|---|---|---|---|")
for run in ("one-put-c1", "three-put-c1", "three-put-c16"):
    side = {s: [json.load(open(f"{d}/{s}-{r}-{run}.json")) for r in range(1, rounds + 1)] for s in ("old", "new")}
    def med(rs):
        return sorted(rs, key=lambda x: x["throughput_ops_s"])[len(rs) // 2]
    o, n = med(side["old"]), med(side["new"])
    lat = lambda x: f"{x['latency']['p50_ms']:.2f} / {x['latency']['p99_ms']:.2f}"
    cpu = lambda x: 10 * sum(p["cpu_percent"] for p in x["processes"]) / max(x["throughput_ops_s"], 1)
    rr = lambda s: " ".join(f"{x['throughput_ops_s']:.0f}" for x in side[s])
    print(f"| {run} | {o['throughput_ops_s']:.0f} | {n['throughput_ops_s']:.0f} | {n['throughput_ops_s'] / o['throughput_ops_s']:.2f}x | "
          f"{lat(o)} | {lat(n)} | {cpu(o):.2f} / {cpu(n):.2f} | {rr('old')} ; {rr('new')} |")
PY
