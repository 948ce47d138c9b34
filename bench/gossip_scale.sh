#!/usr/bin/env bash
# LAN gossip's cost curve (issue 18, gossip row): N real gossip members in
# one process on loopback (`meridian bench -workload gossip`), for each N
# in MEMBERS: convergence after N-1 join one seed, one more join, a crash
# and a graceful leave seen by all, UDP bytes and datagrams per member in
# the steady state, RSS per member; with Serf's convergence model beside.
#
# All the members share this machine's cores (a real pool has a machine
# each), so past some N the process runs out of CPU: the table's CPU and
# false-failure columns say when that happened, and the later phases of
# such a run measure a pool busy with false failures.
#
#   bash bench/gossip_scale.sh   (MEMBERS="100 500 1000" DEADLINE=120s
#                                 JOIN_RATE=0 (all at once) SEEDS=1
#                                 MAX_TRANSMISSIONS=0 (the LAN default))
source "$(dirname "$0")/lib.sh"
OUT=${OUT:-$ROOT/target/bench/gossip_scale}
MEMBERS=${MEMBERS:-"100 500 1000"}
DEADLINE=${DEADLINE:-120s}
JOIN_RATE=${JOIN_RATE:-0}
SEEDS=${SEEDS:-1}
MAX_TRANSMISSIONS=${MAX_TRANSMISSIONS:-0}
mkdir -p "$OUT"
build

# One UDP socket per member, plus the process's own.
max=0; for n in $MEMBERS; do [ "$n" -gt "$max" ] && max=$n; done
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((max + 64)) ]; then
  ulimit -n $((max + 64)) 2>/dev/null || { echo "ulimit -n $(ulimit -n) is below $((max + 64))" >&2; exit 1; }
fi

for n in $MEMBERS; do
  log "gossip: $n members (join rate $JOIN_RATE, deadline $DEADLINE)"
  "$BIN" bench -workload gossip -members "$n" -seeds "$SEEDS" -deadline "$DEADLINE" \
    -join-rate "$JOIN_RATE" -max-transmissions "$MAX_TRANSMISSIONS" \
    -json "$OUT/gossip-$n.json" >"$OUT/gossip-$n.txt" 2>&1 || true
  sed "s/^/  [$n] /" "$OUT/gossip-$n.txt" >&2
done

{
machine
echo
python3 - "$OUT" $MEMBERS <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = []
for n in sys.argv[2:]:
    f = out / f"gossip-{n}.json"
    if f.exists():
        rows.append(json.loads(f.read_text()))
if not rows:
    sys.exit("no results")

def s(v, d=2):
    return "—" if v is None else f"{v:.{d}f}"

def mark(r, k):
    j = r["join"]
    v = j["reached_s"].get(k)
    return s(v) if v is not None else f'not in {r["deadline_s"]:.0f} s'

def spread(sp):
    if sp["all_s"] is not None:
        l = sp["latency"]
        return f'{l["p50_ms"] / 1000:.2f} / {l["max_ms"] / 1000:.2f}'
    l = sp["latency"]
    p50 = f'{l["p50_ms"] / 1000:.2f}' if l else "—"
    return f'{p50} / not all ({sp["seen"]} of {sp["observers"]})'

r0 = rows[0]
t = r0["timings"]
rate = r0["join"]["join_rate"]
print(f'Timings (LAN defaults, `lan_config(32)`): probe every {t["probe_period_ms"]} ms '
      f'(ack within {t["probe_rtt_ms"]} ms), suspect to down {t["suspect_to_down_ms"]} ms, '
      f'gossip every {t["gossip_interval_ms"]} ms to {t["gossip_fanout"]} members, each update sent '
      f'{t["max_transmissions"]} times, {t["max_packet_size"]} B packets. '
      f'Joins: {"all at once" if not rate else f"{rate} a second"}, {r0["seeds"]} seed(s); '
      f'{r0["arbiters"]} arbiter threads on {r0["cores"]} cores.')
print()
print("| members | joins: 99 % / 99.99 % / 100 % of pairs alive, s | one join seen by all, s | failure seen by all p50 / max, s | leave seen by all p50 / max, s | sent B/s per member | datagrams/s per member | RSS MiB total / KiB per member | CPU during joins, s (cores) | false failures (all phases) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    j, st = r["join"], r["steady"]
    oj = r["one_join"]
    one = s(oj["all_s"]) if oj["all_s"] is not None else f'not all ({oj["seen"]} of {oj["observers"]})'
    ff = j["false_failures"] + oj["false_failures"] + st["false_failures"] + r["failure"]["false_failures"] + r["leave"]["false_failures"]
    final = "" if "1" in j["reached_s"] else f' (final {j["final_fraction"]:.4f})'
    print(f'| {r["members"]} | {mark(r, "0.99")} / {mark(r, "0.9999")} / {mark(r, "1")}{final} | {one} '
          f'| {spread(r["failure"])} | {spread(r["leave"])} '
          f'| {st["sent_bytes_per_member_s"]:.0f} | {st["sent_packets_per_member_s"]:.1f} '
          f'| {r["rss_converged_kib"] / 1024:.0f} / {r["rss_per_member_kib"]:.0f} '
          f'| {j["cpu_s"]:.0f} ({j["cpu_cores"]:.2f}) | {ff} |')
print()
print("Serf's convergence simulator (one piece of news; 200 ms, fanout 3) beside ours (the same model at our 100 ms, fanout 3) and the one join measured:")
print()
print("| members | Serf model 99 % / 99.99 %, s | model at our timings 99 % / 99.99 %, s | one join measured: p99 / all, s |")
print("|---|---|---|---|")
for r in rows:
    m, oj = r["serf_model"], r["one_join"]
    l = oj["latency"]
    p99 = f'{l["p99_ms"] / 1000:.2f}' if l else "—"
    print(f'| {r["members"]} | {m["serf_99_s"]:.1f} / {m["serf_9999_s"]:.1f} '
          f'| {s(m["ours_99_s"], 1)} / {s(m["ours_9999_s"], 1)} | {p99} / {s(oj["all_s"])} |')
notes = sorted({n for r in rows for n in r["notes"]})
if notes:
    print()
    for n in notes:
        print(f"- {n}")
PY
} | tee "$OUT/report.md"
