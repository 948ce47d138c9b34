#!/usr/bin/env bash
# Federation cost curve (issue 18): N datacenters of one server each
# (N in SIZES: 2, 5, 10), all on loopback, joined over the WAN to dc1's
# server (-retry-join-wan). For each N, on fresh servers:
#
# - WAN convergence: every server started at once (dc1 first); from the
#   launch of the last one until every server's /v1/catalog/datacenters
#   lists all N datacenters (in the same sweep over the servers). The time
#   the last server's HTTP first answered is given beside it: the rest is
#   the WAN join and gossip.
# - Ordering: from convergence, dc1's /v1/catalog/datacenters polled every
#   POLL_MS; the order settles (nearest first by WAN coordinates, ties and
#   unmeasured datacenters by name) when it has not changed for STABLE_S
#   seconds (polling stops then, or after ORDER_MAX_S). Reported: the time
#   of its last change after convergence, the number of changes, and when
#   dc1's /v1/coordinate/datacenters first had a coordinate for every
#   datacenter's server. dc1's server CPU over that idle window (WAN gossip
#   and coordinate updates only) is given per second.
# - /v1/catalog/datacenters itself: LAT_N sequential requests from one
#   client on a kept-alive connection, p50 / p99.
# - `?dc=` cost: `meridian bench -workload cross-dc -dc dcN` against dc1
#   (dc1 forwards every read to dcN's server) beside the same `kv-get` in
#   dc1 itself, at 1 and 16 clients, KEYS keys, DURATION each.
# - dc1's server RSS when idle after convergence and after the runs.
#
# Ports: server K (dcK) uses PORT_BASE + K*10 .. +4 (lib.sh's scheme,
# carried on past five servers), so 10 datacenters take PORT_BASE+10 ..
# PORT_BASE+104.
#
#   bash bench/federation_scale.sh   (SIZES="2 5 10" DURATION=5s; ~5 min)
source "$(dirname "$0")/lib.sh"
SIZES=${SIZES:-"2 5 10"}
DURATION=${DURATION:-5s}
CLIENTS=${CLIENTS:-"1 16"}
KEYS=${KEYS:-100}
POLL_MS=${POLL_MS:-100}
STABLE_S=${STABLE_S:-5}
ORDER_MAX_S=${ORDER_MAX_S:-45}
LAT_N=${LAT_N:-500}
OUT=${OUT:-$ROOT/target/bench/federation_scale}
mkdir -p "$OUT"
rm -rf "$OUT"/n*-*.json "$OUT"/n*-*.txt "$OUT/logs" "$OUT/report.md"
build

http_of() { echo "127.0.0.1:$((PB + $1 * 10))"; }

# fed_server K: dcK's only server; every server but dc1's joins dc1's
# WAN port, retrying every second while dc1 is still binding.
fed_server() {
  local k=$1 base=$((PB + $1 * 10)) dir=$WORK/m$1
  mkdir -p "$dir"
  local join=()
  [ "$k" -gt 1 ] && join=(-retry-join-wan "127.0.0.1:$((PB + 13))" -retry-interval-wan 1s)
  "$BIN" agent -server -bootstrap-expect 1 -datacenter "dc$k" -node "s$k" -bind 127.0.0.1 -client 127.0.0.1 \
    -data-dir "$dir" -http-port $base -dns-port $((base + 1)) -serf-lan-port $((base + 2)) \
    -serf-wan-port $((base + 3)) -server-port $((base + 4)) "${join[@]}" \
    >>"$WORK/m$k.log" 2>&1 &
  MPID[$k]=$!
  PIDS+=($!)
}

rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' /proc/"$1"/status; }

cat >"$WORK/fed.py" <<'PY'
import http.client, json, sys, time

def get(addr, path, timeout=2):
    h, p = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(h, int(p), timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return json.loads(body) if r.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        c.close()

def converge(t0, n, timeout, *addrs):
    """Seconds from t0 until one sweep finds all n datacenters on every server."""
    t0, n, deadline = float(t0), int(n), float(t0) + float(timeout)
    first_http, first_full = {}, {}
    while time.time() < deadline:
        full = 0
        for a in addrs:
            dcs = get(a, "/v1/catalog/datacenters")
            if dcs is not None:
                first_http.setdefault(a, time.time() - t0)
                if len(dcs) >= n:
                    first_full.setdefault(a, time.time() - t0)
                    full += 1
        if full == len(addrs):
            print(json.dumps({"converged_s": round(time.time() - t0, 2),
                              "last_http_s": round(max(first_http.values()), 2),
                              "slowest_server_s": round(max(first_full.values()), 2),
                              "timed_out": False}))
            return
        time.sleep(0.05)
    print(json.dumps({"converged_s": None, "last_http_s": round(max(first_http.values(), default=-1), 2),
                      "servers_full": len(first_full), "timed_out": True}))

def ticks(pid):
    f = open(f"/proc/{pid}/stat").read()
    f = f[f.rfind(")") + 2:].split()
    return int(f[11]) + int(f[12])

def order(addr, n, poll_ms, stable_s, max_s, pid):
    """dc1's answer polled until it has not changed for stable_s (and every
    datacenter has a WAN coordinate), or max_s passed."""
    n, poll, stable_s, max_s = int(n), float(poll_ms) / 1000, float(stable_s), float(max_s)
    t0 = time.time()
    c0 = ticks(pid)
    last, last_change, changes, coords_s, history = None, 0.0, 0, None, []
    while True:
        now = time.time() - t0
        dcs = get(addr, "/v1/catalog/datacenters")
        if dcs is not None and dcs != last:
            if last is not None:
                changes += 1
                last_change = now
            last = dcs
            history.append([round(now, 2), dcs])
        if coords_s is None:
            maps = get(addr, "/v1/coordinate/datacenters") or []
            if sum(1 for m in maps if m.get("Coordinates")) >= n:
                coords_s = now
        if (coords_s is not None and now - last_change >= stable_s) or now >= max_s:
            break
        time.sleep(poll)
    took = time.time() - t0
    cpu_ms_s = (ticks(pid) - c0) * 1000 / 100 / took  # USER_HZ 100
    # The Vivaldi estimates from dc1's server to each other datacenter's at
    # the end: how far apart the distances being sorted are.
    maps = get(addr, "/v1/coordinate/datacenters") or []
    coord = {m["Datacenter"]: m["Coordinates"][0]["Coord"] for m in maps if m.get("Coordinates")}
    def dist(a, b):
        d = sum((x - y) ** 2 for x, y in zip(a["Vec"], b["Vec"])) ** 0.5 + a["Height"] + b["Height"]
        adj = d + a["Adjustment"] + b["Adjustment"]
        return (adj if adj > 0 else d) * 1000
    try:
        est = sorted(dist(coord["dc1"], c) for dc, c in coord.items() if dc != "dc1")
    except (KeyError, TypeError):
        est = []
    print(json.dumps({"last_change_s": round(last_change, 2), "changes": changes,
                      "stable": time.time() - t0 - last_change >= stable_s,
                      "coords_all_s": None if coords_s is None else round(coords_s, 2),
                      "watched_s": round(took, 1), "final": last, "history": history[-12:],
                      "dc1_cpu_ms_per_s": round(cpu_ms_s, 1),
                      "rtt_est_ms": [round(x, 3) for x in est]}))

def lat(addr, path, count):
    h, p = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(h, int(p), timeout=10)
    ms, size = [], 0
    for _ in range(int(count)):
        t = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        ms.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            sys.exit(f"{path}: HTTP {r.status}")
        size = len(body)
    ms.sort()
    pct = lambda q: ms[min(len(ms) - 1, int(round(q * (len(ms) - 1))))]
    print(json.dumps({"n": len(ms), "p50_ms": round(pct(0.5), 3), "p99_ms": round(pct(0.99), 3),
                      "max_ms": round(ms[-1], 3), "bytes": size}))

cmd, args = sys.argv[1], sys.argv[2:]
{"converge": lambda t0, n, to, *a: converge(t0, n, to, *a), "order": order, "lat": lat}[cmd](*args)
PY
FED="python3 $WORK/fed.py"

for N in $SIZES; do
  log "$N datacenters: starting $N servers"
  for k in $(seq 1 "$N"); do fed_server "$k"; done
  t0=$(date +%s.%N)
  addrs=(); for k in $(seq 1 "$N"); do addrs+=("$(http_of "$k")"); done
  $FED converge "$t0" "$N" 120 "${addrs[@]}" >"$OUT/n$N-converge.json"
  cat "$OUT/n$N-converge.json" >&2
  grep -q '"timed_out": false' "$OUT/n$N-converge.json" || { log "$N datacenters did not converge"; stop_all; continue; }

  log "$N datacenters: watching dc1's order (stable ${STABLE_S}s, at most ${ORDER_MAX_S}s)"
  $FED order "$(http_of 1)" "$N" "$POLL_MS" "$STABLE_S" "$ORDER_MAX_S" "${MPID[1]}" >"$OUT/n$N-order.json" || true
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("history"); print(json.dumps(d))' "$OUT/n$N-order.json" >&2 || true
  RSS_IDLE=$(rss "${MPID[1]}")

  $FED lat "$(http_of 1)" /v1/catalog/datacenters "$LAT_N" >"$OUT/n$N-dcs-lat.json" || true
  cat "$OUT/n$N-dcs-lat.json" >&2

  for k in $(seq 1 "$N"); do wait_http "$(http_of "$k")/v1/status/leader" 127 30; done
  PIDS_BENCH="${MPID[1]},${MPID[$N]}"
  for c in $CLIENTS; do
    bench "n$N-local-c$c" -workload kv-get -addr "$(http_of 1)" -c "$c" -keys "$KEYS" \
      -duration "$DURATION" -pids "$PIDS_BENCH"
    bench "n$N-cross-c$c" -workload cross-dc -dc "dc$N" -addr "$(http_of 1)" -c "$c" -keys "$KEYS" \
      -duration "$DURATION" -pids "$PIDS_BENCH"
  done
  echo "{\"idle\": $RSS_IDLE, \"end\": $(rss "${MPID[1]}")}" >"$OUT/n$N-rss.json"
  stop_all
done

{
  echo "# Federation: 2, 5, 10 datacenters of one server each ($(date -u +%F))"
  echo
  machine
  echo "- every server on 127.0.0.1, joined over the WAN to dc1's; reads $DURATION a run, $KEYS keys of 128 B; order stable = unchanged for ${STABLE_S}s (polled every ${POLL_MS} ms, at most ${ORDER_MAX_S}s)"
  echo
  python3 - "$OUT" "$SIZES" "$CLIENTS" <<'PY'
import json, sys
out, sizes, clients = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def load(f):
    try:
        return json.load(open(f"{out}/{f}"))
    except (OSError, ValueError):
        return {}
f = lambda v, fmt="{:.2f}": "-" if v is None else fmt.format(v)
print("| datacenters | WAN converged s (last server's HTTP up s) | dc1 order settled s after convergence (changes) | every WAN coordinate in dc1 s | dc1's RTT estimates to the others, min / max ms | dc1 CPU ms/s while idle | `/v1/catalog/datacenters` p50 / p99 ms | dc1 RSS MiB idle / after runs |")
print("|---|---|---|---|---|---|---|---|")
for n in sizes:
    c, o, l, r = load(f"n{n}-converge.json"), load(f"n{n}-order.json"), load(f"n{n}-dcs-lat.json"), load(f"n{n}-rss.json")
    settled = f"{f(o.get('last_change_s'))} ({o.get('changes', '-')})" + ("" if o.get("stable", True) else f", still changing at {o.get('watched_s')} s")
    est = o.get("rtt_est_ms") or []
    est = f"{min(est):.3f} / {max(est):.3f}" if est else "-"
    print(f"| {n} | {f(c.get('converged_s'))} ({f(c.get('last_http_s'))}) | {settled} | {f(o.get('coords_all_s'))} | {est} "
          f"| {f(o.get('dc1_cpu_ms_per_s'), '{:.1f}')} | {f(l.get('p50_ms'), '{:.3f}')} / {f(l.get('p99_ms'), '{:.3f}')} "
          f"| {r.get('idle', '-')} / {r.get('end', '-')} |")
print()
print("| datacenters | clients | dc1 kv-get ops/s | p50 / p99 ms | `?dc=dcN` ops/s | p50 / p99 ms | added p50 / p99 ms | errors local / ?dc= | CPU ms per read dc1 + dcN: local / ?dc= |")
print("|---|---|---|---|---|---|---|---|---|")
for n in sizes:
    for c in clients:
        a, b = load(f"n{n}-local-c{c}.json"), load(f"n{n}-cross-c{c}.json")
        if not a or not b:
            print(f"| {n} | {c} | - | - | - | - | - | run failed | - |")
            continue
        la, lb = a.get("latency") or {}, b.get("latency") or {}
        cpu = lambda x: 10 * sum(p["cpu_percent"] for p in x["processes"]) / max(x["throughput_ops_s"], 1)
        print(f"| {n} | {c} | {a['throughput_ops_s']:.0f} | {la.get('p50_ms', 0):.2f} / {la.get('p99_ms', 0):.2f} "
              f"| {b['throughput_ops_s']:.0f} | {lb.get('p50_ms', 0):.2f} / {lb.get('p99_ms', 0):.2f} "
              f"| {lb.get('p50_ms', 0) - la.get('p50_ms', 0):+.2f} / {lb.get('p99_ms', 0) - la.get('p99_ms', 0):+.2f} "
              f"| {sum(a['errors'].values())} / {sum(b['errors'].values())} | {cpu(a):.2f} / {cpu(b):.2f} |")
print()
for n in sizes:
    o = load(f"n{n}-order.json")
    if o.get("final"):
        print(f"- {n} datacenters, dc1's final order: {', '.join(o['final'])}")
PY
} | tee "$OUT/report.md"
