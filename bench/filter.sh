#!/usr/bin/env bash
# `?filter=` on /v1/health/service/<s> with INSTANCES instances (default
# 1,000, each on its own node, one passing check) against the same read
# unfiltered: one server, C clients (default 16), DURATION each (default
# 10s). Three runs: no filter (every instance in the answer), a filter
# that keeps 1% (`Node.Node matches "-[0-9]$"`: bench-node-0..9), and one
# that keeps every instance (the filter's whole cost with no smaller
# answer to make up for it). Prints a Markdown table.
#
#   bash bench/filter.sh      (INSTANCES=1000 C=16 DURATION=10s; MERIDIAN_BIN to skip the build)
source "$(dirname "$0")/lib.sh"
INSTANCES=${INSTANCES:-1000}
C=${C:-16}
DURATION=${DURATION:-10s}
OUT=${OUT:-$ROOT/target/bench/filter}
mkdir -p "$OUT"
build
meridian_cluster 1
run() { # NAME [filter]
  local name=$1; shift
  local filter=()
  [ $# -gt 0 ] && filter=(-filter "$1")
  bench "$name" -workload health-service -instances "$INSTANCES" -addr "$(meridian_addrs 1)" \
    -c "$C" -duration "$DURATION" -pids "$(meridian_pids 1)" "${filter[@]}"
}
run unfiltered
run keeps-1pct 'Node.Node matches "-[0-9]$"'
run keeps-all 'Checks.Status == passing and Service.Port == 8080'
# What each answer weighs.
size() { curl -s -G "http://$(meridian_addrs 1)/v1/health/service/bench-svc?passing" ${1:+--data-urlencode "filter=$1"} | wc -c; }
{ echo "unfiltered $(size '')"; echo "keeps-1pct $(size 'Node.Node matches "-[0-9]$"')"; } >"$OUT/sizes.txt"
stop_all
python3 - "$OUT" "$INSTANCES" "$C" <<'PY'
import json, sys
d, n, c = sys.argv[1], sys.argv[2], sys.argv[3]
print(f"`/v1/health/service/bench-svc?passing`, {n} instances, one server, {c} clients:")
print()
print("| run | answer | bytes | req/s | p50 ms | p99 ms | errors | server CPU % |")
print("|---|---|---|---|---|---|---|---|")
size = dict(l.split() for l in open(f"{d}/sizes.txt"))
size["keeps-all"] = size["unfiltered"]
rows = (("unfiltered", f"{n} instances"), ("keeps-1pct", "10 instances"), ("keeps-all", f"{n} instances"))
for run, answer in rows:
    r = json.load(open(f"{d}/{run}.json"))
    cpu = sum(p["cpu_percent"] for p in r["processes"])
    print(f"| {run} | {answer} | {size[run]} | {r['throughput_ops_s']:.0f} | {r['latency']['p50_ms']:.2f} | "
          f"{r['latency']['p99_ms']:.2f} | {r['ops'] - r['ok']} | {cpu:.0f} |")
PY
