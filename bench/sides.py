"""The report of an off/on comparison (bench/acl.sh, bench/tls.sh): each
side's median round of kv-get-c64 and kv-put-c64, read from the JSON
reports OUT/<side>-<run>-<round>.json, with every round's ops/s so the
spread shows beside the difference.

    python3 bench/sides.py OUT ROUNDS LABEL
"""
import json
import sys

out, rounds, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def median(side, run):
    rs = sorted((json.load(open(f"{out}/{side}-{run}-{i}.json")) for i in range(1, rounds + 1)),
                key=lambda r: r["throughput_ops_s"])
    return rs[len(rs) // 2], [r["throughput_ops_s"] for r in rs]


def cpu(r):
    return sum(p["cpu_percent"] for p in r["processes"])


def rss(r):
    return max(p["rss_max_mib"] for p in r["processes"])


def lat(r):
    return f"{r['latency']['p50_ms']:.2f} / {r['latency']['p99_ms']:.2f}"


def err(r):
    return r["ops"] - r["ok"]


print(f"Median of {rounds} alternating rounds per side; every round's ops/s in the last column.")
print()
print(f"| run | {label} off ops/s | {label} on ops/s | on / off | off p50 / p99 ms | on p50 / p99 ms "
      "| errors off / on | CPU % off / on | RSS MiB off / on | rounds off ; on |")
print("|---|---|---|---|---|---|---|---|---|---|")
for run in ("get-c64", "put-c64"):
    (o, oall), (n, nall) = median("off", run), median("on", run)
    print(f"| kv-{run} | {o['throughput_ops_s']:.0f} | {n['throughput_ops_s']:.0f} | "
          f"{n['throughput_ops_s'] / o['throughput_ops_s']:.2f}x | {lat(o)} | {lat(n)} | {err(o)} / {err(n)} | "
          f"{cpu(o):.0f} / {cpu(n):.0f} | {rss(o):.0f} / {rss(n):.0f} | "
          f"{' '.join(f'{x:.0f}' for x in oall)} ; {' '.join(f'{x:.0f}' for x in nall)} |")
