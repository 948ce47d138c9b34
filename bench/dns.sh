#!/usr/bin/env bash
# DNS: dnsperf (Debian) against a Meridian server holding 100 services x
# 10 instances, then against nsd (Debian) serving the same A and SRV
# records from a zone file; queries/s and latency, same query list, same
# dnsperf settings. Installs dnsperf and nsd if missing.
#
# Two runs per server: at saturation (100 queries outstanding: the
# latency there is mostly time queued behind the others, and a server
# that drops queries shows less of it), and at a fixed RATE both sustain
# (the latency of one answer). PROFILE=1 records Meridian with perf
# during its saturation run ($OUT/meridian.perf.txt).
#
#   bash bench/dns.sh            (SECONDS_EACH=10 CLIENTS=8 RATE=10000 to change)
source "$(dirname "$0")/lib.sh"
SECONDS_EACH=${SECONDS_EACH:-10}
CLIENTS=${CLIENTS:-8}
RATE=${RATE:-10000}
OUT=${OUT:-$ROOT/target/bench/dns}
mkdir -p "$OUT"
if ! command -v dnsperf >/dev/null || ! command -v nsd >/dev/null || ! command -v dig >/dev/null; then
  log "installing dnsperf, nsd and dig"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq dnsperf nsd dnsutils >/dev/null
fi
build

meridian_cluster 1
HTTP=127.0.0.1:$((PB + 10)); DNS_PORT=$((PB + 11))
log "registering 100 services x 10 instances"
python3 - "$HTTP" "$WORK" <<'PY'
import json, sys, urllib.request
http, work = sys.argv[1], sys.argv[2]
zone = ["$ORIGIN consul.", "$TTL 0",
        "@ IN SOA ns.consul. hostmaster.consul. 1 3600 600 86400 0", "@ IN NS ns.consul.", "ns IN A 127.0.0.1"]
queries = []
for s in range(100):
    for i in range(10):
        node, addr, port = f"n{s}-{i}", f"10.{s}.{i}.1", 20000 + s
        body = {"Node": node, "Address": addr,
                "Service": {"ID": f"svc{s}-{i}", "Service": f"svc{s}", "Port": port},
                "Check": {"CheckID": "up", "Name": "up", "Status": "passing", "ServiceID": f"svc{s}-{i}"}}
        req = urllib.request.Request(f"http://{http}/v1/catalog/register", data=json.dumps(body).encode(), method="PUT")
        urllib.request.urlopen(req).read()
        zone.append(f"svc{s}.service IN A {addr}")
        zone.append(f"svc{s}.service IN SRV 1 1 {port} {node}.node.dc1")
        zone.append(f"{node}.node.dc1 IN A {addr}")
    queries += [f"svc{s}.service.consul A", f"svc{s}.service.consul SRV"]
open(f"{work}/consul.zone", "w").write("\n".join(zone) + "\n")
open(f"{work}/queries.txt", "w").write("\n".join(queries) + "\n")
PY
# Anti-entropy and the DNS cache are not in the way: answers come from
# the catalog on every query. Check one answer before measuring.
dig @127.0.0.1 -p $DNS_PORT svc7.service.consul +short | grep -q 10.7. || { echo "Meridian does not answer"; exit 1; }

dnsperf_run() { # name port [pid to profile]
  # A short warm-up first: queries lost while a server starts hold
  # dnsperf's slots for its 5 s timeout and would count against it.
  dnsperf -s 127.0.0.1 -p "$2" -d "$WORK/queries.txt" -l 2 -c "$CLIENTS" -q 100 -t 1 >/dev/null 2>&1 || true
  local rec=""
  if [ -n "${3:-}" ] && [ "${PROFILE:-0}" = 1 ] && command -v perf >/dev/null; then
    perf record -F 499 -g -o "$WORK/perf.data" -p "$3" -- sleep "$SECONDS_EACH" >/dev/null 2>&1 &
    rec=$!
  fi
  dnsperf -s 127.0.0.1 -p "$2" -d "$WORK/queries.txt" -l "$SECONDS_EACH" -c "$CLIENTS" -q 100 -t 1 >"$OUT/$1.txt" 2>&1 || true
  if [ -n "$rec" ]; then
    wait "$rec" || true
    perf report -i "$WORK/perf.data" --no-children --percent-limit 0.5 --stdio >"$OUT/$1.perf.txt" 2>/dev/null || true
  fi
  dnsperf -s 127.0.0.1 -p "$2" -d "$WORK/queries.txt" -l "$SECONDS_EACH" -c "$CLIENTS" -q 100 -t 1 -Q "$RATE" >"$OUT/$1-rate.txt" 2>&1 || true
  grep -E "Queries per second|Average Latency|Queries lost" "$OUT/$1.txt" "$OUT/$1-rate.txt" | sed "s/^/  [$1] /" >&2
}
log "dnsperf against Meridian"
dnsperf_run meridian $DNS_PORT "${MPID[1]}"
MRSS=$(awk '/VmRSS/ {print $2}' /proc/"${MPID[1]}"/status)

NSD_PORT=19653
cat >"$WORK/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1
  port: $NSD_PORT
  username: ""
  zonesdir: "$WORK"
  pidfile: "$WORK/nsd.pid"
  database: ""
  xfrdfile: "$WORK/xfrd.state"
  zonelistfile: "$WORK/zone.list"
  verbosity: 0
  # Both cores, as Meridian may use them.
  server-count: 2
remote-control:
  control-enable: no
zone:
  name: consul
  zonefile: consul.zone
CONF
nsd -c "$WORK/nsd.conf" -d >"$WORK/nsd.log" 2>&1 &
PIDS+=($!)
ready=no
for _ in $(seq 1 100); do
  if dig @127.0.0.1 -p $NSD_PORT svc7.service.consul +short +time=1 +tries=1 2>/dev/null | grep -q 10.7. &&
     dig @127.0.0.1 -p $NSD_PORT svc7.service.consul SRV +short +time=1 +tries=1 2>/dev/null | grep -q 20007; then
    ready=yes; break
  fi
  sleep 0.1
done
[ $ready = yes ] || { echo "nsd does not answer:"; cat "$WORK/nsd.log"; exit 1; }
log "dnsperf against nsd"
dnsperf_run nsd $NSD_PORT

{
  echo "# DNS: Meridian vs nsd, 100 services x 10 instances ($(date -u +%F))"
  echo
  machine
  echo
  python3 - "$OUT" "$CLIENTS" "$SECONDS_EACH" "$MRSS" "$RATE" <<'PY'
import re, sys
d, clients, secs, rss, rate = sys.argv[1:6]
def get(name):
    t = open(f"{d}/{name}.txt").read()
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", t).group(1))
    avg = float(re.search(r"Average Latency \(s\):\s+([\d.]+)", t).group(1)) * 1000
    lost = re.search(r"Queries lost:\s+(\d+)", t).group(1)
    return qps, avg, lost
m, n = get("meridian"), get("nsd")
mr, nr = get("meridian-rate"), get("nsd-rate")
print(f"dnsperf -c {clients} -q 100 -t 1 -l {secs}, queries alternating A and SRV over 100 names; nsd with server-count 2;")
print(f"then the same at a fixed {rate} queries/s (-Q {rate}).")
print()
print("| server | queries/s | avg latency ms | lost | avg latency ms at {rate}/s | lost |".replace("{rate}", rate))
print("|---|---|---|---|---|---|")
print(f"| Meridian | {m[0]:.0f} | {m[1]:.3f} | {m[2]} | {mr[1]:.3f} | {mr[2]} |")
print(f"| nsd (static zone) | {n[0]:.0f} | {n[1]:.3f} | {n[2]} | {nr[1]:.3f} | {nr[2]} |")
print()
print(f"Meridian / nsd: {m[0] / n[0]:.2f}x queries/s; latency at {rate}/s {mr[1] / nr[1]:.2f}x nsd's. Meridian's RSS after the run: {int(rss) / 1024:.0f} MiB.")
PY
} | tee "$OUT/report.md"
