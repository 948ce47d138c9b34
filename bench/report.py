"""Side-by-side tables from `meridian bench -json` reports named
`<label>-<op>-<system>-c<clients>-v<bytes>.json` and `steady-put-<system>`."""

import json
import os
import sys


def load(d):
    runs = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".json"):
            with open(os.path.join(d, f)) as fh:
                runs[f[:-5]] = json.load(fh)
    return runs


def lat(r, k):
    return r["latency"][k] if r.get("latency") else float("nan")


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "-"


def pairs(runs, label):
    """(op, clients, bytes, Meridian's report, etcd's) for every run both made."""
    for name, m in runs.items():
        parts = name.split("-")
        if parts[0] != label or parts[2] != "meridian":
            continue
        e = runs.get(name.replace("-meridian-", "-etcd-"))
        if e:
            yield parts[1], parts[3][1:], parts[4][1:], m, e


def matrix(runs, label):
    rows = []
    for op, c, v, m, e in pairs(runs, label):
        rows.append((op, int(c), int(v), m, e))
    rows.sort(key=lambda r: (r[0] != "put", r[2], r[1]))
    out = ["| op | clients | value | Meridian ops/s | etcd ops/s | ratio | Meridian p50 / p99 ms | etcd p50 / p99 ms | errors M / E |",
           "|---|---|---|---|---|---|---|---|---|"]
    for op, c, v, m, e in rows:
        out.append(
            f"| {op} | {c} | {v} B | {m['throughput_ops_s']:.0f} | {e['throughput_ops_s']:.0f} | "
            f"{ratio(m['throughput_ops_s'], e['throughput_ops_s'])} | "
            f"{lat(m, 'p50_ms'):.2f} / {lat(m, 'p99_ms'):.2f} | {lat(e, 'p50_ms'):.2f} / {lat(e, 'p99_ms'):.2f} | "
            f"{m['ops'] - m['ok']} / {e['ops'] - e['ok']} |")
    return "\n".join(out)


def resources(runs, label):
    out = ["| run | Meridian CPU % (sum) | Meridian RSS max MiB (each) | etcd CPU % (sum) | etcd RSS max MiB (each) |",
           "|---|---|---|---|---|"]
    for op, c, v, m, e in pairs(runs, label):
        def cpu(r):
            return sum(p["cpu_percent"] for p in r["processes"])
        def rss(r):
            return " / ".join(f"{p['rss_max_mib']:.0f}" for p in r["processes"])
        out.append(f"| {op} c{c} {v} B | {cpu(m):.0f} | {rss(m)} | {cpu(e):.0f} | {rss(e)} |")
    return "\n".join(out)


def steady(runs):
    m, e = runs.get("steady-put-meridian"), runs.get("steady-put-etcd")
    if not (m and e):
        return ""
    out = ["| system | ops | ok | p50 ms | p99 ms | p99.9 ms | max ms |", "|---|---|---|---|---|---|---|"]
    for n, r in (("Meridian", m), ("etcd", e)):
        out.append(f"| {n} | {r['ops']} | {r['ok']} | {lat(r, 'p50_ms'):.2f} | {lat(r, 'p99_ms'):.2f} | "
                   f"{lat(r, 'p999_ms'):.2f} | {lat(r, 'max_ms'):.2f} |")
    return "\n".join(out)


def main():
    runs = load(sys.argv[1])
    for label, title in (("three", "Three servers vs three members"), ("single", "One node vs one node")):
        t = matrix(runs, label)
        if t.count("\n") > 1:
            print(f"## {title}\n\n{t}\n\n{resources(runs, label)}\n")
    s = steady(runs)
    if s:
        print(f"## Open loop, 1,000 writes/s (three nodes each)\n\n{s}\n")
    print("etcd is driven through its HTTP/JSON gateway (`/v3/kv/put`, `/v3/kv/range`); "
          "Meridian's GET is its default mode (served by the leader), etcd's a linearizable range.")


main()
