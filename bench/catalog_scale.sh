#!/usr/bin/env bash
# Catalog cost curve (issue 18): one server holding NODES nodes of 10
# services each, registered through /v1/catalog/register, a service a
# request, LOADERS parallel workers (LOAD=txn: through /v1/txn instead, 5
# nodes a transaction; a transaction with catalog operations copies the
# whole state store first, so that load slows as the catalog grows: 33
# nodes/s at 10,000 nodes against 540 at 1,000). On the first 1,000 nodes the
# first service is an instance of `web` with a passing check, so `web` has
# 1,000 instances at every size; the rest are svc0..svc9, and node0 also
# has `solo`, a service of one instance (no check).
#
# Then, one client and one request at a time for SECONDS each (a latency,
# not a throughput): /v1/health/service/web, /v1/catalog/services, DNS
# SRV web.service.consul over UDP and, to tell the catalog's size from the
# instance count, solo.service.consul; dnsperf's SRV queries a second for
# web with 16 outstanding; the server's RSS.
#
# The load generator's health-service workload reads only its own service
# (bench-svc, which it registers first), hence the timing loops of scale.py.
#
#   bash bench/catalog_scale.sh    (NODES="1000 10000" SECONDS_EACH=5 LOADERS=8 LOAD=register|txn)
source "$(dirname "$0")/lib.sh"
NODES=${NODES:-"1000 10000"}
SECONDS_EACH=${SECONDS_EACH:-5}
LOADERS=${LOADERS:-8}
LOAD=${LOAD:-register}
WEB=${WEB:-1000}
OUT=${OUT:-$ROOT/target/bench/catalog_scale}
SCALE="python3 $ROOT/bench/scale.py"
mkdir -p "$OUT"
rm -rf "$OUT"/nodes-*.json "$OUT/logs" "$OUT/report.md"
build

HTTP=127.0.0.1:19510
rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' /proc/"$1"/status; }

for N in $NODES; do
  R=$WORK/r$N; mkdir -p "$R"
  log "$N nodes: one server"
  meridian_cluster 1
  log "$N nodes: registering $((N * 10)) services ($LOAD, $LOADERS workers)"
  $SCALE load-catalog "$HTTP" "$N" "$LOADERS" "$WEB" "$LOAD" >"$R/load.json"
  cat "$R/load.json" >&2
  got=$(curl -sf "$HTTP/v1/catalog/service/web" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$got" = "$(( N < WEB ? N : WEB ))" ] || { log "web has $got instances"; exit 1; }

  log "$N nodes: latencies, ${SECONDS_EACH}s each"
  $SCALE http-lat "$HTTP" /v1/health/service/web "$SECONDS_EACH" >"$R/health.json"
  $SCALE http-lat "$HTTP" /v1/catalog/services "$SECONDS_EACH" >"$R/services.json"
  $SCALE dns-lat 127.0.0.1 19511 web.service.consul "$SECONDS_EACH" >"$R/dns.json"
  $SCALE dns-lat 127.0.0.1 19511 solo.service.consul "$SECONDS_EACH" >"$R/dns-solo.json"
  cat "$R/health.json" "$R/services.json" "$R/dns.json" "$R/dns-solo.json" >&2
  echo "web.service.consul SRV" >"$R/queries"
  dnsperf -s 127.0.0.1 -p 19511 -d "$R/queries" -l "$SECONDS_EACH" -q 16 >"$R/dnsperf.txt" 2>&1 || true
  QPS=$(awk '/Queries per second/ {printf "%.0f", $4}' "$R/dnsperf.txt")
  LOST=$(awk '/Queries lost/ {print $3}' "$R/dnsperf.txt")
  log "dnsperf: $QPS queries/s, $LOST lost"

  python3 - "$OUT/nodes-$N.json" <<PY
import json, sys
load = lambda f: json.load(open(f))
json.dump({"nodes": $N, "web": $WEB, "load": load("$R/load.json"),
           "health": load("$R/health.json"), "services": load("$R/services.json"),
           "dns": load("$R/dns.json"), "dns_solo": load("$R/dns-solo.json"),"dnsperf_qps": "${QPS:--}", "dnsperf_lost": "${LOST:--}",
           "rss_mib": $(rss "${MPID[1]}")}, open(sys.argv[1], "w"), indent=1)
PY
  stop_all
done

{
  echo "# Catalog cost curve ($(date -u +%F))"
  echo
  machine
  echo "- 1 server; loaded through $LOAD; latencies: one client, one request at a time, ${SECONDS_EACH}s each; \`web\` has $WEB instances (a passing check each)"
  echo
  $SCALE catalog-report "$OUT"
} | tee "$OUT/report.md"
