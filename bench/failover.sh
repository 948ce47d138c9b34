#!/usr/bin/env bash
# Failover: while 8 clients write, SIGKILL the leader; the time until the
# next acknowledged write is the longest gap between successes in the
# writers' record. Clients give up on a request after 1 s and retry on the
# next server, as cluster clients do (a request stuck on a dead leader
# would otherwise hold its client for etcd's 7 s request timeout). TRIALS (10) per system, Meridian (3 servers) and etcd (3
# members), each killed leader restarted before the next trial.
#
#   bash bench/failover.sh            (TRIALS=10 to change)
source "$(dirname "$0")/lib.sh"
TRIALS=${TRIALS:-10}
OUT=${OUT:-$ROOT/target/bench/failover}
mkdir -p "$OUT"
need_etcd
build

meridian_leader() { # -> N
  local l; l=$(curl -sf -m 2 "127.0.0.1:19510/v1/status/leader" || curl -sf -m 2 "127.0.0.1:19520/v1/status/leader" || curl -sf -m 2 "127.0.0.1:19530/v1/status/leader")
  l=${l//\"/}; local port=${l##*:}
  echo $(( (port - 19504) / 10 ))
}

etcd_leader() { # -> N
  for n in 1 2 3; do
    local s; s=$(curl -sf -m 2 -X POST "127.0.0.1:$((23790 + n))/v3/maintenance/status" -d '{}') || continue
    python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(1 if s["header"]["member_id"]==s["leader"] else 0)' "$s" | grep -q 1 && { echo "$n"; return; }
  done
  echo 0
}

trial() { # system n
  local system=$1 t=$2 leader addr
  if [ "$system" = meridian ]; then addr=$(meridian_addrs 3); leader=$(meridian_leader); else addr=$(etcd_addrs 3); leader=$(etcd_leader); fi
  [ "$leader" -ge 1 ] || { echo "no leader" >&2; return 1; }
  local target=(); [ "$system" = etcd ] && target=(-target etcd)
  "$BIN" bench -quiet -workload kv-put "${target[@]}" -addr "$addr" -c 8 -duration 10s -timeout 1s -json "$OUT/$system-$t.json" >"$OUT/$system-$t.txt" 2>&1 &
  local writer=$!
  sleep 3
  if [ "$system" = meridian ]; then kill -9 "${MPID[$leader]}"; else kill -9 "${EPID[$leader]}"; fi
  wait "$writer" 2>/dev/null || true
  if [ "$system" = meridian ]; then meridian_server "$leader" 3; else etcd_member "$leader" 3 existing; fi
  # Everyone back and agreeing before the next kill.
  for n in 1 2 3; do
    if [ "$system" = meridian ]; then wait_http "127.0.0.1:$((19500 + n * 10))/v1/status/leader" 127 30
    else wait_http "127.0.0.1:$((23790 + n))/health" true 30; fi
  done
  sleep 1
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); g=r["longest_gap_ms"]; f=r["ops"]-r["ok"]; print(f"  {sys.argv[2]} trial {sys.argv[3]}: leader {sys.argv[4]} killed, longest gap {g:.0f} ms, {f} failed attempts")' \
    "$OUT/$system-$t.json" "$system" "$t" "$leader" >&2
}

meridian_cluster 3
for t in $(seq 1 "$TRIALS"); do trial meridian "$t"; done
stop_all
etcd_cluster 3
for t in $(seq 1 "$TRIALS"); do trial etcd "$t"; done
stop_all

{
  echo "# Failover: SIGKILL of the leader under 8 writers ($(date -u +%F))"
  echo
  machine
  echo
  python3 - "$OUT" "$TRIALS" <<'PY'
import json, statistics, sys
d, n = sys.argv[1], int(sys.argv[2])
print("| system | trials | median ms | max ms | min ms | failed attempts (all trials) |")
print("|---|---|---|---|---|---|")
for system in ("meridian", "etcd"):
    runs = [json.load(open(f"{d}/{system}-{t}.json")) for t in range(1, n + 1)]
    gaps = [r["longest_gap_ms"] for r in runs]
    failed = sum(r["ops"] - r["ok"] for r in runs)
    print(f"| {system} | {n} | {statistics.median(gaps):.0f} | {max(gaps):.0f} | {min(gaps):.0f} | {failed} |")
print()
print("The gap runs from the last write acknowledged before the kill to the first after it "
      "(any writer; writers move to the next server on an error).")
PY
} | tee "$OUT/report.md"
