#!/usr/bin/env bash
# KV cost curve (issue 18): what a 3-server cluster costs as its KV store
# grows. For each size N of SIZES: a fresh cluster; N keys of 128 random
# bytes loaded through /v1/txn (64 operations a transaction, LOADERS
# parallel workers against the leader); GET and PUT throughput (the load
# generator, CLIENTS clients, DURATION each, spread over the three
# servers); each server's RSS; `meridian snapshot save` time and size and
# the last Raft snapshot the leader built (its log line); a follower killed
# with -9 and restarted on its data directory (time until its HTTP answers,
# until it serves the last key with ?stale, until its applied index reaches
# the leader's); a fourth server joining (time until its applied index
# reaches the leader's, and whether it got there through InstallSnapshot).
#
# Keys are bench/k0..k{N-1}, the load generator's names: PUTs overwrite
# keys of the whole loaded set (-keys N). GETs read the first GET_KEYS of
# them (1,000): kv-get first writes every key it will read, one PUT at a
# time, so a larger key space would spend minutes preparing.
#
# The servers snapshot every SNAP_THRESHOLD log entries (1,024) and keep
# TRAILING_LOGS entries behind one (256), so the leader's log no longer
# starts at 1 and a new server needs InstallSnapshot. Consul's defaults
# (16,384 and 10,240) would leave every size here without a snapshot: the
# leader batches concurrent writes into one entry, and a whole run (load,
# GET's 1,000 writes, 5 s of PUTs) is a few thousand entries. They check
# for a snapshot every SNAP_INTERVAL to twice that (10s; Consul's 30s
# would leave the smaller sizes' runs, under half a minute each, without
# one before the fourth server joins).
#
#   bash bench/kv_scale.sh     (SIZES="1000 100000 1000000" DURATION=5s CLIENTS=16 LOADERS=4 LOAD_ONLY=)
source "$(dirname "$0")/lib.sh"
SIZES=${SIZES:-"1000 100000 1000000"}
DURATION=${DURATION:-5s}
CLIENTS=${CLIENTS:-16}
LOADERS=${LOADERS:-4}
GET_KEYS=${GET_KEYS:-1000}
SNAP_THRESHOLD=${SNAP_THRESHOLD:-1024}
SNAP_INTERVAL=${SNAP_INTERVAL:-10s}
TRAILING_LOGS=${TRAILING_LOGS:-256}
LOAD_ONLY=${LOAD_ONLY:-}   # set: stop after the load, GET, PUT and RSS (A/B runs of the load)
WAIT=${WAIT:-600}   # seconds a restart or a join may take before it counts as timed out
OUT=${OUT:-$ROOT/target/bench/kv_scale}
SCALE="python3 $ROOT/bench/scale.py"
mkdir -p "$OUT"
rm -rf "$OUT"/size-*.json "$OUT"/n*-*.json "$OUT"/n*-*.txt "$OUT/logs" "$OUT/report.md"
build

cat >"$WORK/scale.hcl" <<HCL
raft_snapshot_threshold = $SNAP_THRESHOLD
raft_snapshot_interval = "$SNAP_INTERVAL"
raft_trailing_logs = $TRAILING_LOGS
HCL

rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' /proc/"$1"/status; }
http_of() { echo "127.0.0.1:$((19500 + $1 * 10))"; }
leader_n() { # the number of the server that leads (its RPC port is 195N4)
  local a; a=$(curl -sf -m 2 "$(http_of 1)/v1/status/leader" | tr -d '"')
  echo $(( (${a##*:} - 19504) / 10 ))
}
raft_term() { curl -sf -m 5 "$1/v1/agent/self" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Stats"]["raft"]["term"])'; }
# The last "Raft snapshot built" line of server N's log: bytes and total_ms.
raft_snapshot() {
  sed 's/\x1b\[[0-9;]*m//g' "$WORK/m$1.log" | { grep 'Raft snapshot built' || true; } | tail -1 |
    sed -n 's/.*bytes=\([0-9]*\).*total_ms=\([0-9]*\).*/{"raft_bytes": \1, "raft_build_ms": \2}/p'
}

for N in $SIZES; do
  R=$WORK/r$N; mkdir -p "$R"
  log "$N keys: three servers"
  meridian_cluster 3 -config-file "$WORK/scale.hcl"
  L=$(leader_n)
  LEADER=$(http_of "$L")

  log "$N keys: loading through /v1/txn ($LOADERS workers)"
  TERM0=$(raft_term "$LEADER")
  $SCALE load-kv "$LEADER" "$N" "$LOADERS" >"$R/load.json"
  # Each election raises the term: a load that costs the leader shows here.
  python3 - "$R/load.json" "$TERM0" "$(raft_term "$(http_of "$(leader_n)")")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["elections"] = int(sys.argv[3]) - int(sys.argv[2])
json.dump(r, open(sys.argv[1], "w"))
PY
  cat "$R/load.json" >&2
  curl -sf "$LEADER/v1/kv/bench/k$((N - 1))" >/dev/null || { log "last key missing"; exit 1; }

  gk=$(( N < GET_KEYS ? N : GET_KEYS ))
  bench "n$N-get" -workload kv-get -addr "$(meridian_addrs 3)" -c "$CLIENTS" -keys "$gk" \
    -duration "$DURATION" -pids "$(meridian_pids 3)"
  bench "n$N-put" -workload kv-put -addr "$(meridian_addrs 3)" -c "$CLIENTS" -keys "$N" \
    -duration "$DURATION" -pids "$(meridian_pids 3)"
  RSS="[$(rss "${MPID[1]}"), $(rss "${MPID[2]}"), $(rss "${MPID[3]}")]"

  SAVE_S=0 FILE_BYTES=0 STATE_BYTES=0 RAFT="{}" JOIN_RSS=0 INSTALLED=false
  if [ -z "$LOAD_ONLY" ]; then
  log "$N keys: snapshot save"
  t=$(date +%s.%N)
  "$BIN" snapshot save -http-addr "$LEADER" "$WORK/s.snap" >/dev/null
  SAVE_S=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}')
  FILE_BYTES=$(stat -c %s "$WORK/s.snap")
  STATE_BYTES=$("$BIN" snapshot inspect "$WORK/s.snap" | awk '$1 == "Size" {print $2}')
  rm -f "$WORK/s.snap"
  RAFT=$(raft_snapshot "$L"); RAFT=${RAFT:-"{}"}

  # A follower that joins through m1 when restarted (not m1 itself).
  F=3; [ "$L" = 3 ] && F=2
  log "$N keys: kill -9 server $F (leader: $L), restart it on its data directory"
  { kill -9 "${MPID[$F]}"; wait "${MPID[$F]}"; } 2>/dev/null || true
  sleep 1
  t0=$(date +%s.%N)
  meridian_server "$F" 3 -config-file "$WORK/scale.hcl"
  $SCALE wait "$(http_of "$F")" "$LEADER" "bench/k$((N - 1))" "$t0" "$WAIT" >"$R/restart.json"
  cat "$R/restart.json" >&2

  log "$N keys: a fourth server joins"
  t0=$(date +%s.%N)
  meridian_server 4 3 -config-file "$WORK/scale.hcl"
  $SCALE wait "$(http_of 4)" "$LEADER" "bench/k$((N - 1))" "$t0" "$WAIT" >"$R/join.json"
  cat "$R/join.json" >&2
  JOIN_RSS=$(rss "${MPID[4]}")
  INSTALLED=false
  grep -q 'Raft snapshot installed from the leader' "$WORK/m4.log" && INSTALLED=true
  fi
  # What each server's Raft thread was spared: entries applied off it
  # while a snapshot's copy held the store.
  OFF_THREAD=$(cat "$WORK"/m[123].log | { grep -c 'applied off the Raft thread' || true; })

  python3 - "$OUT/size-$N.json" <<PY
import json, os, sys
# A step that failed (its report says why) leaves its cell empty.
load = lambda f: json.load(open(f)) if os.path.exists(f) else {}
json.dump({
    "keys": $N, "load": load("$R/load.json"), "get_keys": $gk,
    "get": load("$OUT/n$N-get.json"), "put": load("$OUT/n$N-put.json"),
    "rss_mib": $RSS,
    "snapshot": {"save_s": round($SAVE_S, 2), "file_bytes": $FILE_BYTES, "state_bytes": ${STATE_BYTES:-0}, **$RAFT},
    "restart": load("$R/restart.json"), "join": load("$R/join.json"),
    "join_installed_snapshot": "$INSTALLED" == "true", "join_rss_mib": $JOIN_RSS,
    "applies_off_raft_thread": $OFF_THREAD,
    "snap_threshold": $SNAP_THRESHOLD, "trailing_logs": $TRAILING_LOGS,
}, open(sys.argv[1], "w"), indent=1)
PY
  stop_all
done

{
  echo "# KV cost curve ($(date -u +%F))"
  echo
  machine
  echo "- 3 servers; GET and PUT: $CLIENTS clients, $DURATION, 128 B values; snapshot threshold $SNAP_THRESHOLD (checked every $SNAP_INTERVAL to twice that), trailing logs $TRAILING_LOGS"
  echo
  $SCALE kv-report "$OUT"
} | tee "$OUT/report.md"
