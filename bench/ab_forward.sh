#!/usr/bin/env bash
# Before/after for requests a follower forwards to the leader (Consul's
# default-consistency reads and every write sent to a follower): three
# servers, one client's GET through a follower and at the leader (the
# control), 16 clients' GETs through both followers, one client's PUT
# through a follower, and one client's GET through a client agent (the
# usual way in: a client agent sends it to a server, which forwards it
# when it does not lead). Builds alternate, ROUNDS times; each run also
# counts the context switches of the agents per operation.
#
#   bash bench/ab_forward.sh OLD_BINARY NEW_BINARY     (ROUNDS=3 DURATION=10s)
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || { echo "usage: bench/ab_forward.sh OLD_BINARY NEW_BINARY"; exit 2; }
OLD=$(realpath "$1"); NEW=$(realpath "$2")
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
OUT=${OUT:-$ROOT/target/bench/ab_forward}
mkdir -p "$OUT"

# Context switches so far of every thread of the given processes.
switches() {
  local total=0 p f
  for p in "$@"; do
    for f in /proc/"$p"/task/*/status; do
      total=$((total + $(awk '/ctxt_switches/ {s += $2} END {print s + 0}' "$f" 2>/dev/null || echo 0)))
    done
  done
  echo "$total"
}

# measured NAME ARGS...: `bench`, with the servers' switches kept beside it.
measured() {
  local name=$1; shift
  local before; before=$(switches "${MPID[@]}" "$CPID")
  bench "$name" "$@" -pids "$(meridian_pids 3),$CPID"
  echo $(( $(switches "${MPID[@]}" "$CPID") - before )) >"$OUT/$name.cs"
}

for round in $(seq 1 "$ROUNDS"); do
  for side in old new; do
    if [ $side = old ]; then BIN=$OLD; else BIN=$NEW; fi
    meridian_cluster 3
    "$BIN" agent -node c1 -bind 127.0.0.2 -client 127.0.0.2 -data-dir "$WORK/m-client" \
      -join 127.0.0.1:$((PB + 12)) -http-port $((PB + 90)) -dns-port $((PB + 91)) \
      -serf-lan-port $((PB + 92)) >>"$WORK/m-client.log" 2>&1 &
    CPID=$!; PIDS+=("$CPID")
    wait_http 127.0.0.2:$((PB + 90))/v1/agent/self NodeName 30
    leader=$(curl -sf 127.0.0.1:$((PB + 10))/v1/status/leader | tr -d '"')
    ln=$(( (${leader##*:} - PB - 4) / 10 ))
    followers=()
    for n in 1 2 3; do [ "$n" != "$ln" ] && followers+=("127.0.0.1:$((PB + n * 10))"); done
    log "round $round, $side: leader m$ln"
    pre="r$round-$side"
    measured "$pre-get-c1-follower" -workload kv-get -addr "${followers[0]}" -c 1 -duration "$DURATION"
    measured "$pre-get-c1-leader" -workload kv-get -addr "127.0.0.1:$((PB + ln * 10))" -c 1 -duration "$DURATION"
    measured "$pre-get-c16-followers" -workload kv-get -addr "$(IFS=,; echo "${followers[*]}")" -c 16 -duration "$DURATION"
    measured "$pre-put-c1-follower" -workload kv-put -addr "${followers[0]}" -c 1 -duration "$DURATION"
    measured "$pre-get-c1-client" -workload kv-get -addr "127.0.0.2:$((PB + 90))" -c 1 -duration "$DURATION"
    stop_all
  done
done

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
runs = ("get-c1-follower", "get-c1-leader", "get-c16-followers", "put-c1-follower", "get-c1-client")
print("| run | round | build | ops/s | p50 / p99 / p99.9 ms | agents' CPU ms per op | context switches per op |")
print("|---|---|---|---|---|---|---|")
summary = {}
for run in runs:
    for r in range(1, rounds + 1):
        for side, label in (("old", "before"), ("new", "after")):
            j = json.load(open(f"{d}/r{r}-{side}-{run}.json"))
            cs = int(open(f"{d}/r{r}-{side}-{run}.cs").read())
            ok = max(j["ok"], 1)
            cpu_ms = sum(p["cpu_percent"] for p in j["processes"]) / 100 * j["duration_s"] * 1000 / ok
            l = j["latency"]
            print(f"| {run} | {r} | {label} | {j['throughput_ops_s']:.0f} | {l['p50_ms']:.3f} / {l['p99_ms']:.3f} / "
                  f"{l['p999_ms']:.3f} | {cpu_ms:.3f} | {cs / ok:.2f} |")
            summary.setdefault((run, label), []).append((j["throughput_ops_s"], l["p50_ms"], cs / ok))
print()
print("Medians over the rounds:")
print()
print("| run | build | ops/s | p50 ms | context switches per op |")
print("|---|---|---|---|---|")
for run in runs:
    for label in ("before", "after"):
        v = summary[(run, label)]
        med = lambda i: statistics.median(x[i] for x in v)
        print(f"| {run} | {label} | {med(0):.0f} | {med(1):.3f} | {med(2):.2f} |")
PY
