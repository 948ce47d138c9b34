#!/usr/bin/env bash
# Before/after for DNS: bench/dns.sh (Meridian and nsd, saturation and a
# fixed rate) against two builds, alternating ROUNDS times, so that drift
# on the machine falls on both; each round's nsd run is the yardstick of
# that round. The table gives every round and each side's median.
#
#   bash bench/ab_dns.sh OLD_BINARY NEW_BINARY   (ROUNDS=3 SECONDS_EACH=10)
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bench/ab_dns.sh OLD_BINARY NEW_BINARY"; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD=$(realpath "$1"); NEW=$(realpath "$2")
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$ROOT/target/bench/ab_dns}
rm -rf "$OUT"; mkdir -p "$OUT"
for r in $(seq 1 "$ROUNDS"); do
  for side in old new; do
    if [ $side = old ]; then bin=$OLD; else bin=$NEW; fi
    MERIDIAN_BIN=$bin OUT=$OUT/$side-$r bash "$ROOT/bench/dns.sh" >/dev/null
  done
done
python3 - "$OUT" "$ROUNDS" <<'PY' | tee "$OUT/report.md"
import re, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
def get(path):
    t = open(path).read()
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", t).group(1))
    avg = float(re.search(r"Average Latency \(s\):\s+([\d.]+)", t).group(1)) * 1000
    return qps, avg
rows = {s: [] for s in ("old", "new")}
print("| build | round | Meridian q/s | nsd q/s | Meridian / nsd | Meridian ms at fixed rate | nsd ms at fixed rate | ratio |")
print("|---|---|---|---|---|---|---|---|")
for r in range(1, rounds + 1):
    for s in ("old", "new"):
        m, n = get(f"{d}/{s}-{r}/meridian.txt"), get(f"{d}/{s}-{r}/nsd.txt")
        mr, nr = get(f"{d}/{s}-{r}/meridian-rate.txt"), get(f"{d}/{s}-{r}/nsd-rate.txt")
        rows[s].append((m[0], m[0] / n[0], mr[1], mr[1] / nr[1]))
        print(f"| {s} | {r} | {m[0]:.0f} | {n[0]:.0f} | {m[0] / n[0]:.2f}x | {mr[1]:.3f} | {nr[1]:.3f} | {mr[1] / nr[1]:.1f}x |")
for s in ("old", "new"):
    med = [statistics.median(x[i] for x in rows[s]) for i in range(4)]
    print(f"| {s} | median | {med[0]:.0f} | | {med[1]:.2f}x | {med[2]:.3f} | | {med[3]:.1f}x |")
PY
