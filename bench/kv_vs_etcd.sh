#!/usr/bin/env bash
# KV side by side: a 3-server Meridian cluster against a 3-member etcd
# cluster (Debian's etcd-server 3.4, installed if missing), both with their
# default durability (fsync on), on loopback, same machine, same run.
# PUT and GET (Meridian's default mode vs etcd's linearizable range) at 1,
# 16, 64 and 256 clients with 128 B and 4 KiB values; then one node against
# one node; then open-loop 1,000 writes/s for 60 s. etcd is driven through
# its HTTP/JSON gateway so that both see HTTP clients.
#
#   bash bench/kv_vs_etcd.sh            (DURATION=10s STEADY=60s to change;
#   CLIENTS="1" ONLY_THREE=1 runs one client's rows on three servers only)
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-10s}
STEADY=${STEADY:-60s}
CLIENTS=${CLIENTS:-1 16 64 256}
ONLY_THREE=${ONLY_THREE:-0}
OUT=${OUT:-$ROOT/target/bench/kv}
mkdir -p "$OUT"
need_etcd
build

run_matrix() { # label meridian-addrs etcd-addrs mpids epids clients... 
  local label=$1 maddr=$2 eaddr=$3 mp=$4 ep=$5; shift 5
  for c in "$@"; do
    for v in 128 4096; do
      bench "$label-put-meridian-c$c-v$v" -workload kv-put -addr "$maddr" -c "$c" -value-size "$v" -duration "$DURATION" -pids "$mp"
      bench "$label-put-etcd-c$c-v$v" -workload kv-put -target etcd -addr "$eaddr" -c "$c" -value-size "$v" -duration "$DURATION" -pids "$ep"
      bench "$label-get-meridian-c$c-v$v" -workload kv-get -addr "$maddr" -c "$c" -value-size "$v" -duration "$DURATION" -pids "$mp"
      bench "$label-get-etcd-c$c-v$v" -workload kv-get -target etcd -addr "$eaddr" -c "$c" -value-size "$v" -duration "$DURATION" -pids "$ep"
    done
  done
}

log "three servers against three members"
meridian_cluster 3
etcd_cluster 3
# shellcheck disable=SC2086 # the list splits into its counts
run_matrix three "$(meridian_addrs 3)" "$(etcd_addrs 3)" "$(meridian_pids 3)" "$(etcd_pids 3)" $CLIENTS
if [ "$ONLY_THREE" != 1 ]; then
  log "steady 1,000 writes/s for $STEADY"
  bench "steady-put-meridian" -workload kv-put -addr "$(meridian_addrs 3)" -rate 1000 -duration "$STEADY" -pids "$(meridian_pids 3)"
  bench "steady-put-etcd" -workload kv-put -target etcd -addr "$(etcd_addrs 3)" -rate 1000 -duration "$STEADY" -pids "$(etcd_pids 3)"
fi
stop_all

if [ "$ONLY_THREE" != 1 ]; then
  log "one node against one node"
  meridian_cluster 1
  etcd_cluster 1
  run_matrix single "$(meridian_addrs 1)" "$(etcd_addrs 1)" "$(meridian_pids 1)" "$(etcd_pids 1)" 64
  stop_all
fi

{
  echo "# KV: Meridian vs etcd ($(date -u +%F))"
  echo
  machine
  echo
  python3 "$ROOT/bench/report.py" "$OUT"
} | tee "$OUT/report.md"
