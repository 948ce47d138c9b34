"""Helpers of the cost-curve scripts (bench/kv_scale.sh, bench/catalog_scale.sh):
bulk loading through /v1/txn from parallel workers, waiting for a server
to catch up, sequential latency loops (HTTP and DNS) and the tables.

    python3 bench/scale.py load-kv ADDR N WORKERS
    python3 bench/scale.py load-catalog ADDR NODES WORKERS WEB [register|txn]
    python3 bench/scale.py wait ADDR LEADER KEY T0 TIMEOUT
    python3 bench/scale.py http-lat ADDR PATH SECONDS
    python3 bench/scale.py dns-lat HOST PORT NAME SECONDS
    python3 bench/scale.py kv-report OUT  |  catalog-report OUT

Each prints one JSON object (the reports a markdown table).
"""
import base64
import http.client
import json
import os
import random
import socket
import struct
import sys
import threading
import time

OPS = 64  # Consul's and Meridian's limit of operations per transaction


def conn(addr):
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=60)


def request(c, method, path, body=None):
    c.request(method, path, body=body)
    r = c.getresponse()
    return r.status, r.read()


def parallel(addr, batches, workers, deadline):
    """PUTs each JSON body of `batches` (a list of op lists) to /v1/txn,
    `workers` at a time; returns the seconds it took."""
    lock = threading.Lock()
    it = iter(batches)
    errors = []
    no_leader = [0]

    def work():
        c = conn(addr)
        while not errors:
            with lock:
                ops = next(it, None)
            if ops is None:
                return
            if time.time() > deadline:
                errors.append("deadline passed")
                return
            body = json.dumps(ops)
            # A lost connection is tried 3 times; an election (no leader
            # for a moment) for up to 30 s, counted, since the report must
            # say when a load cost the cluster its leader.
            given_up = time.time() + 30
            attempt = 0
            while True:
                attempt += 1
                try:
                    status, text = request(c, "PUT", "/v1/txn", body)
                except (OSError, http.client.HTTPException) as e:
                    c.close()
                    c = conn(addr)
                    status, text = 0, str(e).encode()
                    if attempt < 3:
                        time.sleep(0.2)
                        continue
                    break
                if status in (500, 503) and b"leader" in text.lower() and time.time() < given_up:
                    with lock:
                        no_leader[0] += 1
                    time.sleep(0.1)
                    continue
                break
            if status != 200:
                errors.append(f"HTTP {status}: {text[:200]!r}")

    start = time.time()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"load failed: {errors[0]}")
    return time.time() - start, no_leader[0]


def load_kv(addr, n, workers, timeout=3600):
    """Keys bench/k0..k{n-1} (the load generator's names), 128 random bytes each."""
    def batches():
        for start in range(0, n, OPS):
            yield [{"KV": {"Verb": "set", "Key": f"bench/k{i}",
                           "Value": base64.b64encode(os.urandom(128)).decode()}}
                   for i in range(start, min(start + OPS, n))]
    took, no_leader = parallel(addr, batches(), workers, time.time() + timeout)
    print(json.dumps({"keys": n, "load_s": round(took, 2), "load_keys_s": round(n / took),
                      "no_leader_retries": no_leader}))


def register_all(addr, jobs, workers, deadline):
    """PUTs each body of each job (a list of bodies) to /v1/catalog/register."""
    lock = threading.Lock()
    it = iter(jobs)
    errors = []

    def work():
        c = conn(addr)
        while not errors:
            with lock:
                bodies = next(it, None)
            if bodies is None:
                return
            if time.time() > deadline:
                errors.append("deadline passed")
                return
            for b in bodies:
                status, text = request(c, "PUT", "/v1/catalog/register", json.dumps(b))
                if status != 200:
                    errors.append(f"HTTP {status}: {text[:200]!r}")
                    return

    start = time.time()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"load failed: {errors[0]}")
    return time.time() - start


def load_catalog(addr, nodes, workers, web, how="register", timeout=3600):
    """`nodes` nodes with 10 services each (svc0..svc9); on the first `web`
    nodes svc0 is replaced by an instance of `web` with a passing check."""
    per_txn = 5  # 1 node + 10 services (+ 1 check) = 12 operations each, node0 13

    def node_ops(n):
        name = f"node{n}"
        ops = [{"Node": {"Verb": "set", "Node": {
            "Node": name, "Address": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"}}}]
        for s in range(10):
            svc = "web" if s == 0 and n < web else f"svc{s}"
            ops.append({"Service": {"Verb": "set", "Node": name, "Service": {
                "ID": f"{svc}-{n}", "Service": svc, "Port": 8000 + s}}})
        if n == 0:  # a one-instance service: what a DNS answer costs without 1,000 to pick from
            ops.append({"Service": {"Verb": "set", "Node": name, "Service": {
                "ID": "solo", "Service": "solo", "Port": 9000}}})
        if n < web:
            ops.append({"Check": {"Verb": "set", "Check": {
                "Node": name, "CheckID": f"web-{n}", "Name": "web alive", "Status": "passing",
                "ServiceID": f"web-{n}", "ServiceName": "web"}}})
        return ops

    def batches():
        for start in range(0, nodes, per_txn):
            yield [op for n in range(start, min(start + per_txn, nodes)) for op in node_ops(n)]

    def registrations():
        """The same, one /v1/catalog/register body per service (its check with it)."""
        for n in range(nodes):
            ops = node_ops(n)
            node = ops[0]["Node"]["Node"]
            checks = {o["Check"]["Check"]["ServiceID"]: o["Check"]["Check"] for o in ops if "Check" in o}
            bodies = []
            for o in ops:
                if "Service" in o:
                    svc = o["Service"]["Service"]
                    b = {"Node": node["Node"], "Address": node["Address"], "Service": svc}
                    if svc["ID"] in checks:
                        b["Check"] = checks[svc["ID"]]
                    bodies.append(b)
            yield bodies
    if how == "txn":
        took, _ = parallel(addr, batches(), workers, time.time() + timeout)
    else:
        took = register_all(addr, registrations(), workers, time.time() + timeout)
    print(json.dumps({"nodes": nodes, "services": nodes * 10, "load_s": round(took, 2),
                      "load_nodes_s": round(nodes / took)}))


def applied(addr):
    c = conn(addr)
    c.timeout = 1
    try:
        status, body = request(c, "GET", "/v1/agent/self")
        if status != 200:
            return None
        return int(json.loads(body)["Stats"]["raft"]["applied_index"])
    except (OSError, http.client.HTTPException, ValueError, KeyError):
        return None
    finally:
        c.close()


def wait(addr, leader, key, t0, timeout):
    """From t0 (epoch seconds, taken before the server was started): when its
    HTTP first answered, when it first served `key` with ?stale, and when its
    applied index first reached the leader's (read at the same moment)."""
    t0 = float(t0)
    deadline = t0 + float(timeout)
    seen = {}
    leader_index = target = None
    while time.time() < deadline and len(seen) < 3:
        c = conn(addr)
        c.timeout = 1
        try:
            status, _ = request(c, "GET", f"/v1/kv/{key}?stale")
            seen.setdefault("http_s", time.time() - t0)
            if status == 200:
                seen.setdefault("serves_key_s", time.time() - t0)
        except (OSError, http.client.HTTPException):
            pass
        finally:
            c.close()
        if "http_s" in seen:
            mine, leader_index = applied(addr), applied(leader)
            if mine is not None and leader_index is not None and mine >= leader_index:
                seen.setdefault("caught_up_s", time.time() - t0)
                target = leader_index
        time.sleep(0.02)
    out = {k: round(v, 2) for k, v in seen.items()}
    out["leader_index"] = target or leader_index
    out["timed_out"] = len(seen) < 3
    print(json.dumps(out))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(lat_s, took, extra):
    ms = [x * 1000 for x in lat_s]
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 3), "p99_ms": round(pct(ms, 99), 3),
            "max_ms": round(max(ms), 3), "ops_s": round(len(ms) / took), **extra}


def http_lat(addr, path, seconds):
    """One client, one request at a time, a kept-alive connection."""
    c = conn(addr)
    lat, size = [], 0
    end = time.time() + float(seconds)
    start = time.time()
    while time.time() < end:
        t = time.perf_counter()
        status, body = request(c, "GET", path)
        lat.append(time.perf_counter() - t)
        if status != 200:
            sys.exit(f"{path}: HTTP {status}")
        size = len(body)
    print(json.dumps(summary(lat, time.time() - start, {"bytes": size})))


def dns_query(name, qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 33, 1)  # SRV, IN


def dns_lat(host, port, name, seconds):
    """SRV queries over UDP, one at a time; the answer count of the last."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    lat, answers, errors = [], 0, 0
    end = time.time() + float(seconds)
    start = time.time()
    qid = random.randrange(65536)
    while time.time() < end:
        qid = (qid + 1) & 0xFFFF
        t = time.perf_counter()
        s.sendto(dns_query(name, qid), (host, int(port)))
        try:
            while True:
                data = s.recv(65535)
                if struct.unpack(">H", data[:2])[0] == qid:
                    break
        except socket.timeout:
            errors += 1
            continue
        lat.append(time.perf_counter() - t)
        rcode = data[3] & 0xF
        answers = struct.unpack(">H", data[6:8])[0]
        if rcode != 0 or answers == 0:
            errors += 1
    print(json.dumps(summary(lat, time.time() - start, {"answers": answers, "errors": errors})))


def rows(out, prefix):
    for f in sorted(os.listdir(out), key=lambda f: (len(f), f)):
        if f.startswith(prefix) and f.endswith(".json"):
            yield json.load(open(os.path.join(out, f)))


def g(d, *path, fmt="{}"):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return "-"
        d = d[p]
    return fmt.format(d)


def kv_report(out):
    print("| keys | load s (keys/s) | elections during the load (writes retried for want of a leader) | GET ops/s (keys read) | GET p50 / p99 ms | PUT ops/s | PUT p50 / p99 ms "
          "| RSS MiB per server | snapshot save s | snapshot file / state MiB | Raft snapshot MiB, build ms "
          "| follower restart: HTTP / serves last key / caught up s | 4th server caught up s (InstallSnapshot) "
          "| 4th server RSS MiB |")
    print("|" + "---|" * 14)
    for r in rows(out, "size-"):
        lat = lambda b: (f'{b["latency"]["p50_ms"]:.2f} / {b["latency"]["p99_ms"]:.2f}'
                         if b.get("latency") else "-")
        get, put, rs, j = r.get("get", {}), r.get("put", {}), r.get("restart", {}), r.get("join", {})
        mib = lambda b: f"{b / 1048576:.1f}" if isinstance(b, (int, float)) else "-"
        print(f'| {r["keys"]} | {g(r, "load", "load_s")} ({g(r, "load", "load_keys_s")}) '
              f'| {g(r, "load", "elections")} ({g(r, "load", "no_leader_retries")}) '
              f'| {get.get("throughput_ops_s", 0):.0f} ({r.get("get_keys", "-")}) | {lat(get)} '
              f'| {put.get("throughput_ops_s", 0):.0f} | {lat(put)} '
              f'| {" / ".join(str(x) for x in r.get("rss_mib", []))} '
              f'| {g(r, "snapshot", "save_s")} | {mib(r["snapshot"].get("file_bytes"))} / {mib(r["snapshot"].get("state_bytes"))} '
              f'| {mib(r["snapshot"].get("raft_bytes"))}, {g(r, "snapshot", "raft_build_ms")} '
              f'| {g(rs, "http_s")} / {g(rs, "serves_key_s")} / {g(rs, "caught_up_s")}{" (timed out)" if rs.get("timed_out") else ""} '
              f'| {g(j, "caught_up_s")}{" (timed out)" if j.get("timed_out") else ""} ({"yes" if r.get("join_installed_snapshot") else "no"}) '
              f'| {r.get("join_rss_mib", "-")} |')


def catalog_report(out):
    print("| nodes | services (instances) | load s (nodes/s) | /v1/health/service/web p50 / p99 ms (KiB) "
          "| /v1/catalog/services p50 / p99 ms (KiB) | DNS SRV web p50 / p99 ms (answers) | DNS SRV web QPS (dnsperf, 16 outstanding) "
          "| DNS SRV solo (1 instance) p50 / p99 ms "
          "| server RSS MiB |")
    print("|" + "---|" * 9)
    for r in rows(out, "nodes-"):
        lat = lambda b: f'{b["p50_ms"]:.2f} / {b["p99_ms"]:.2f}' if b else "-"
        h, c, d, o = r.get("health", {}), r.get("services", {}), r.get("dns", {}), r.get("dns_solo", {})
        print(f'| {r["nodes"]} | {r["nodes"] * 10} | {g(r, "load", "load_s")} ({g(r, "load", "load_nodes_s")}) '
              f'| {lat(h)} ({h.get("bytes", 0) / 1024:.0f}) | {lat(c)} ({c.get("bytes", 0) / 1024:.0f}) '
              f'| {lat(d)} ({d.get("answers", "-")}) | {r.get("dnsperf_qps", "-")} | {lat(o)} | {r.get("rss_mib", "-")} |')


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"load-kv": lambda a, n, w: load_kv(a, int(n), int(w)),
     "load-catalog": lambda a, n, w, web, how="register": load_catalog(a, int(n), int(w), int(web), how),
     "wait": wait, "http-lat": http_lat, "dns-lat": dns_lat,
     "kv-report": kv_report, "catalog-report": catalog_report}[cmd](*args)
