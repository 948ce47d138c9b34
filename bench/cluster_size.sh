#!/usr/bin/env bash
# Cluster-size cost curve (issue 18): three servers against five. KV PUT
# and GET (128 B values, the load generator's default consistency: a GET
# is answered by the leader, a follower forwards it) at each of CLIENTS
# clients, the clients spread over every server of the cluster, followers
# first (one client talks to a follower, which forwards to the leader:
# otherwise a 1-client run measures whichever server happened to win the
# election, a local read when it is the first address). A fresh
# cluster for each size in each round, the sizes alternating over ROUNDS
# rounds so that drift on the machine falls on both; the table gives the
# median round by ops/s (of an even number, the upper one: of 2, the
# faster) and every round's ops/s. CPU is the servers'
# together (user + system) per operation; RSS the largest server's peak
# during the run and all servers' together. The Raft term of every server
# is read when the cluster is up and again before it stops: a term that
# moved means an election during the runs.
#
#   bash bench/cluster_size.sh   (SIZES="3 5" CLIENTS="1 16 64" ROUNDS=2 DURATION=5s; ~5 min)
source "$(dirname "$0")/lib.sh"
SIZES=${SIZES:-"3 5"}
CLIENTS=${CLIENTS:-"1 16 64"}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-5s}
KEYS=${KEYS:-1000}
OUT=${OUT:-$ROOT/target/bench/cluster_size}
mkdir -p "$OUT"
rm -rf "$OUT"/s*-r*.json "$OUT"/s*-r*.txt "$OUT"/terms-*.json "$OUT/logs" "$OUT/report.md"
build

terms() { # COUNT -> {"m1": term, ...} from each server's /v1/agent/self
  local out=() n t
  for n in $(seq 1 "$1"); do
    t=$(curl -sf -m 2 "127.0.0.1:$((PB + n * 10))/v1/agent/self" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["Stats"]["raft"]["term"])' 2>/dev/null || echo null)
    out+=("\"m$n\": ${t:-null}")
  done
  (IFS=,; echo "{${out[*]}}")
}

leader_n() { # the number of the server that leads (its RPC port is PORT_BASE + N*10 + 4)
  local a; a=$(curl -sf -m 2 "127.0.0.1:$((PB + 10))/v1/status/leader" | tr -d '"')
  echo $(( (${a##*:} - PB - 4) / 10 ))
}

followers_first() { # COUNT LEADER -> HTTP addresses, the leader's last
  local out=() n
  for n in $(seq 1 "$1"); do [ "$n" != "$2" ] && out+=("127.0.0.1:$((PB + n * 10))"); done
  out+=("127.0.0.1:$((PB + $2 * 10))")
  (IFS=,; echo "${out[*]}")
}

for r in $(seq 1 "$ROUNDS"); do
  for s in $SIZES; do
    log "round $r: $s servers"
    meridian_cluster "$s"
    before=$(terms "$s")
    L=$(leader_n)
    ADDRS=$(followers_first "$s" "$L")
    log "leader: server $L; clients over $ADDRS"
    for op in put get; do
      for c in $CLIENTS; do
        bench "s$s-r$r-$op-c$c" -workload "kv-$op" -addr "$ADDRS" -c "$c" \
          -keys "$KEYS" -duration "$DURATION" -pids "$(meridian_pids "$s")"
      done
    done
    echo "{\"leader\": $L, \"before\": $before, \"after\": $(terms "$s")}" >"$OUT/terms-s$s-r$r.json"
    stop_all
  done
done

{
  echo "# Cluster size: 3 against 5 servers ($(date -u +%F))"
  echo
  machine
  echo "- KV PUT and GET, 128 B values, $KEYS keys, $DURATION a run, clients spread over every server, followers first (1 client: a follower); $ROUNDS rounds alternating the sizes, median round shown (of 2: the faster)"
  echo
  python3 - "$OUT" "$ROUNDS" "$SIZES" "$CLIENTS" <<'PY'
import json, sys
out, rounds, sizes, clients = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
print("| servers | op | clients | ops/s (median) | p50 / p99 ms | server CPU ms per op | RSS MiB: largest server / all | errors | ops/s every round |")
print("|---|---|---|---|---|---|---|---|---|")
for s in sizes:
    for op in ("put", "get"):
        for c in clients:
            runs = []
            for r in range(1, rounds + 1):
                try:
                    runs.append(json.load(open(f"{out}/s{s}-r{r}-{op}-c{c}.json")))
                except (OSError, ValueError):
                    pass
            if not runs:
                print(f"| {s} | {op.upper()} | {c} | - | - | - | - | run failed | - |")
                continue
            m = sorted(runs, key=lambda x: x["throughput_ops_s"])[len(runs) // 2]
            lat = m.get("latency") or {}
            cpu = 10 * sum(p["cpu_percent"] for p in m["processes"]) / max(m["throughput_ops_s"], 1)
            rss = [p["rss_max_mib"] for p in m["processes"]]
            errs = sum(sum(x["errors"].values()) for x in runs)
            every = " ".join(f"{x['throughput_ops_s']:.0f}" for x in runs)
            print(f"| {s} | {op.upper()} | {c} | {m['throughput_ops_s']:.0f} "
                  f"| {lat.get('p50_ms', 0):.2f} / {lat.get('p99_ms', 0):.2f} | {cpu:.2f} "
                  f"| {max(rss):.0f} / {sum(rss):.0f} | {errs} | {every} |")
print()
moved, leaders = [], []
for s in sizes:
    for r in range(1, rounds + 1):
        try:
            t = json.load(open(f"{out}/terms-s{s}-r{r}.json"))
        except (OSError, ValueError):
            continue
        b, a = t["before"], t["after"]
        leaders.append(f"{s} servers round {r}: m{t.get('leader', '?')}")
        if any(a.get(k) != b.get(k) for k in b):
            moved.append(f"{s} servers round {r}: terms {b} -> {a}")
print("Leaders: " + "; ".join(leaders) + ".")
print()
print("Raft terms: " + ("; ".join(moved) if moved else "no election during any run (every server's term unchanged)"))
PY
} | tee "$OUT/report.md"
