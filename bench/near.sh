#!/usr/bin/env bash
# `?near=_agent` on /v1/catalog/nodes with 1,000 nodes, each with a
# network coordinate, against the same read without `near`: requests/s
# and latency from the same client, alternating rounds so that machine
# noise falls on both. The coordinates go in through
# PUT /v1/coordinate/update, as agents send them, and reach the catalog
# through the leader's batches (128 per Raft entry).
#
#   bash bench/near.sh     (NODES=1000 SECONDS_EACH=5 CLIENTS=4 ROUNDS=3 to change)
source "$(dirname "$0")/lib.sh"
NODES=${NODES:-1000}
SECONDS_EACH=${SECONDS_EACH:-5}
CLIENTS=${CLIENTS:-4}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$ROOT/target/bench/near}
mkdir -p "$OUT"
build

# A 1 s batch period instead of Consul's 5 s: only the loading is faster.
export MERIDIAN_COORDINATE_UPDATE_PERIOD=1s
meridian_cluster 1
HTTP=127.0.0.1:19510
log "registering $NODES nodes with coordinates"
python3 - "$HTTP" "$NODES" "$SECONDS_EACH" "$CLIENTS" "$ROUNDS" "$OUT" <<'PY'
import http.client, json, random, sys, threading, time
host, nodes, secs, clients, rounds, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
h, p = host.split(":")

def req(method, path, body=None, conn=None):
    c = conn or http.client.HTTPConnection(h, int(p), timeout=30)
    c.request(method, path, body=None if body is None else json.dumps(body))
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
    return data

me = json.loads(req("GET", "/v1/agent/self"))["Config"]["NodeName"]
rng = random.Random(7)
conn = http.client.HTTPConnection(h, int(p), timeout=30)
def coord():
    return {"Vec": [rng.uniform(-0.05, 0.05) for _ in range(8)], "Error": 0.2,
            "Adjustment": 0.0, "Height": rng.uniform(1e-5, 0.002)}
for i in range(nodes):
    req("PUT", "/v1/catalog/register", {"Node": f"n{i:04d}", "Address": f"10.{i // 250}.{i % 250}.1"}, conn)
for i in range(nodes):
    req("PUT", "/v1/coordinate/update", {"Node": f"n{i:04d}", "Coord": coord()}, conn)
# The agent's own node, so that `_agent` has a place to measure from.
req("PUT", "/v1/coordinate/update", {"Node": me, "Coord": coord()}, conn)
deadline = time.time() + 60
while len(json.loads(req("GET", "/v1/coordinate/nodes", conn=conn))) < nodes + 1:
    if time.time() > deadline:
        raise SystemExit("coordinates not all stored within 60 s")
    time.sleep(0.5)
sorted_body = json.loads(req("GET", "/v1/catalog/nodes?near=_agent", conn=conn))
plain_body = json.loads(req("GET", "/v1/catalog/nodes", conn=conn))
assert len(sorted_body) == len(plain_body) == nodes + 1
assert [n["Node"] for n in sorted_body] != [n["Node"] for n in plain_body], "near did not sort"
print(f"==> {nodes} nodes with coordinates stored; answer {len(req('GET', '/v1/catalog/nodes', conn=conn)) // 1024} KiB", file=sys.stderr)

def run(path):
    lat, stop, lock = [], time.time() + secs, threading.Lock()
    def worker():
        c = http.client.HTTPConnection(h, int(p), timeout=30)
        mine = []
        while time.time() < stop:
            t = time.perf_counter()
            req("GET", path, conn=c)
            mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)
    ts = [threading.Thread(target=worker) for _ in range(clients)]
    for t in ts: t.start()
    for t in ts: t.join()
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    return len(lat) / secs, pct(0.5), pct(0.99)

results = {"plain": [], "near": []}
for r in range(rounds):
    for name, path in (("plain", "/v1/catalog/nodes"), ("near", "/v1/catalog/nodes?near=_agent")):
        results[name].append(run(path))
        rps, p50, p99 = results[name][-1]
        print(f"  [round {r + 1} {name}] {rps:.0f} req/s p50 {p50:.2f} ms p99 {p99:.2f} ms", file=sys.stderr)
json.dump(results, open(f"{out}/near.json", "w"))
med = lambda xs: sorted(xs)[len(xs) // 2]
print(f"`GET /v1/catalog/nodes` with {nodes + 1} nodes, {clients} keep-alive clients, {rounds} alternating rounds of {secs:.0f} s; medians of the rounds.")
print()
print("| query | req/s | p50 ms | p99 ms |")
print("|---|---|---|---|")
for name, label in (("plain", "no `near`"), ("near", "`?near=_agent`")):
    rs = results[name]
    print(f"| {label} | {med([x[0] for x in rs]):.0f} | {med([x[1] for x in rs]):.2f} | {med([x[2] for x in rs]):.2f} |")
print()
ratio = med([x[0] for x in results["near"]]) / med([x[0] for x in results["plain"]])
print(f"near / plain throughput: {ratio:.2f}x")
PY
