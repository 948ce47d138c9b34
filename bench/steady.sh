#!/usr/bin/env bash
# Tail latency under a steady write rate: open-loop PUTs (128 B, a new
# request every 1/RATE s whether or not the last one answered, so a stall
# shows as queued latency rather than as a slower client) for STEADY on a
# three-server Meridian cluster and a three-member etcd cluster, same
# machine, same run. Each rate gets fresh clusters, first loaded with
# WARM of closed-loop writes (64 clients) so that the measured window
# crosses Raft snapshots and log purges as a long-running cluster does.
# Systems alternate within each rate, ROUNDS times. Each run's JSON lists
# its 20 slowest writes with when they ended, to line up with the logs.
#
#   bash bench/steady.sh        (RATES="1000 5000" STEADY=60s WARM=20s ROUNDS=1)
source "$(dirname "$0")/lib.sh"
RATES=${RATES:-"1000 5000"}
STEADY=${STEADY:-60s}
WARM=${WARM:-20s}
ROUNDS=${ROUNDS:-1}
OUT=${OUT:-$ROOT/target/bench/steady}
mkdir -p "$OUT"
need_etcd
build
# An open loop that falls behind opens more connections, all from one IP:
# Consul's default of 200 per client would answer 429 where etcd, which
# has no such limit, queues.
cat >"$WORK/steady.hcl" <<HCL
limits { http_max_conns_per_client = 4096 }
HCL

for r in $(seq 1 "$ROUNDS"); do
  for rate in $RATES; do
    log "round $r: $rate writes/s for $STEADY"
    meridian_cluster 3 -config-file "$WORK/steady.hcl"
    bench "warm-meridian-$rate-$r" -workload kv-put -addr "$(meridian_addrs 3)" -c 64 -duration "$WARM" -pids "$(meridian_pids 3)"
    bench "steady-meridian-$rate-$r" -workload kv-put -addr "$(meridian_addrs 3)" -rate "$rate" -duration "$STEADY" -pids "$(meridian_pids 3)"
    stop_all
    etcd_cluster 3
    bench "warm-etcd-$rate-$r" -workload kv-put -target etcd -addr "$(etcd_addrs 3)" -c 64 -duration "$WARM" -pids "$(etcd_pids 3)"
    bench "steady-etcd-$rate-$r" -workload kv-put -target etcd -addr "$(etcd_addrs 3)" -rate "$rate" -duration "$STEADY" -pids "$(etcd_pids 3)"
    stop_all
  done
done

python3 - "$OUT" "$RATES" "$ROUNDS" <<'PY' | tee "$OUT/report.md"
import json, sys
d, rates, rounds = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
print("| rate/s | system | round | ops | ok | errors | p50 ms | p99 ms | p99.9 ms | max ms | p99.9 / p99 | server CPU % | peak RSS MiB per server |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for rate in rates:
    for r in range(1, rounds + 1):
        for system in ("meridian", "etcd"):
            x = json.load(open(f"{d}/steady-{system}-{rate}-{r}.json"))
            l = x.get("latency") or {}
            errs = sum(x.get("errors", {}).values())
            cpu = sum(p["cpu_percent"] for p in x["processes"])
            rss = " / ".join(f"{p['rss_max_mib']:.0f}" for p in x["processes"])
            tail = l["p999_ms"] / l["p99_ms"] if l.get("p99_ms") else float("nan")
            print(f"| {rate} | {system} | {r} | {x['ops']} | {x['ok']} | {errs} | {l.get('p50_ms', 0):.2f} | "
                  f"{l.get('p99_ms', 0):.2f} | {l.get('p999_ms', 0):.2f} | {l.get('max_ms', 0):.2f} | {tail:.2f} | {cpu:.0f} | {rss} |")
PY
