#!/usr/bin/env bash
# The fault workloads for a long while: register (tests/linearizability.rs),
# set, txn, watch, lock and lock under kills only (tests/workloads.rs), each
# under the seeded leader kill/restart and SIGSTOP/SIGCONT schedule
# (tests/fault/schedule.rs), the time split evenly
# between them and cut into runs of at most CHUNK seconds (seed, seed+1, ...
# so each run is replayable on its own), one after the other. Prints one
# report from the runs' FAULT-SUMMARY lines: operations by kind and outcome,
# faults by kind, verdicts, recovery times, workload figures, and where the
# histories of failing runs were kept.
#
#   scripts/fault-long.sh [MINUTES] [SEED]     (default: 30 minutes, a random seed)
#
# lock-paused-clients (SIGSTOPped lock clients, a fixed ~90 s whatever
# the share) and failpoints (servers failing at their storage failpoints)
# run once per share like the rest.
#
# The register runs twice: on loopback (kills, pauses) and, as root, with
# its servers in network namespaces (partitions too). The other workloads
# run on loopback unless MERIDIAN_FAULT_KINDS names kinds
# (isolate,halves,ring,kill,stop), which puts them in namespaces too
# (MERIDIAN_FAULT_SERVERS of them, default 5); lock-kills stays kills only.
#
# Replay one run: MERIDIAN_FAULT_SEED=<seed> MERIDIAN_FAULT_SECS=<secs> \
#   cargo test --test <binary> <test> -- --nocapture
set -uo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-30}
seed=${2:-$(( (RANDOM << 15 | RANDOM) % 1000000 ))}
chunk=${CHUNK:-90}
case "$minutes$seed$chunk" in *[!0-9]*) echo "usage: $0 [MINUTES] [SEED]" >&2; exit 2;; esac

# workload, test binary, test name
workloads=(
  "register linearizability register_is_linearizable_under_leader_kills_and_pauses"
  "register-partitions linearizability register_is_linearizable_under_partitions"
  "set workloads set_keeps_every_acknowledged_item_once_under_leader_kills_and_pauses"
  "txn workloads txn_is_all_or_nothing_under_leader_kills_and_pauses"
  "watch workloads watchers_never_go_back_and_settle_on_the_last_write_under_leader_kills_and_pauses"
  "lock workloads lock_overlaps_under_leader_kills_and_pauses_are_measured"
  "lock-kills workloads lock_has_one_holder_at_a_time_under_leader_kills_with_a_lock_delay"
  "lock-paused-clients workloads lock_holders_paused_past_their_session_ttl_overlap_measured"
  "failpoints linearizability register_is_linearizable_when_storage_fails_at_failpoints"
)

logs="target/fault-long/$(date -u +%Y%m%dT%H%M%SZ)-seed$seed"
mkdir -p "$logs"
echo "fault-long: $minutes min, seed $seed, logs in $logs"
cargo build -q --bin meridian --test linearizability --test workloads || exit 1

per_workload=$(( minutes * 60 / ${#workloads[@]} ))
# Each run spends ~10 s starting its cluster and checking: that comes out of
# the workload's share, so the whole takes about MINUTES.
runs=$(( (per_workload + chunk + 9) / (chunk + 10) ))
(( runs < 1 )) && runs=1
secs=$(( per_workload / runs - 10 ))
(( secs < 10 )) && secs=10
failed=0
for w in "${workloads[@]}"; do
  read -r name bin test <<<"$w"
  for (( i = 0; i < runs; i++ )); do
    s=$(( seed + i ))
    log="$logs/$name-seed$s.log"
    echo "  $name: seed $s, $secs s ($(date -u +%H:%M:%S))"
    if ! MERIDIAN_FAULT_SEED=$s MERIDIAN_FAULT_SECS=$secs \
      cargo test -q --test "$bin" "$test" -- --exact --nocapture --test-threads=1 --include-ignored >"$log" 2>&1; then
      failed=$(( failed + 1 ))
      echo "    FAILED (log: $log)"
      grep -q FAULT-SUMMARY "$log" || echo "FAULT-SUMMARY {\"workload\":\"$name\",\"seed\":$s,\"secs\":$secs,\"verdict\":\"failed before its summary (see $log)\"}" >>"$log"
    fi
  done
done

python3 - "$logs" "$minutes" "$seed" <<'EOF'
import json, pathlib, statistics, sys
from collections import Counter, defaultdict

logs, minutes, seed = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
runs = []
for f in sorted(logs.glob("*.log")):
    for line in f.read_text(errors="replace").splitlines():
        if line.startswith("FAULT-SUMMARY "):
            r = json.loads(line[len("FAULT-SUMMARY "):])
            r["log"] = str(f)
            runs.append(r)

def stats(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return "none"
    p90 = xs[min(len(xs) - 1, int(0.9 * len(xs)))]
    return f"n={len(xs)} median {statistics.median(xs):.0f} ms, p90 {p90:.0f} ms, max {xs[-1]:.0f} ms"

print(f"\n===== fault-long report: {minutes} min, seed {seed}, {len(runs)} runs =====")
by = defaultdict(list)
for r in runs:
    by[r["workload"]].append(r)
faults = Counter()
to_write, heal_leader, no_write = defaultdict(list), [], 0
# Every recovery with its workload and seed: an outlier names its run.
each = []
for name, rs in by.items():
    ops = Counter()
    figures = defaultdict(float)
    for r in rs:
        ops.update(r.get("ops", {}))
        for k, v in r.get("figures", {}).items():
            if k.endswith("max_ms") or k.startswith("worst"):
                figures[k] = max(figures[k], v)
            else:
                figures[k] += v
    secs = sum(r.get("secs", 0) for r in rs)
    print(f"\n[{name}] {len(rs)} runs, {secs} s under faults")
    for k in sorted(ops):
        print(f"  {k:<30} {ops[k]}")
    for k in sorted(figures):
        print(f"  {k:<30} {figures[k]:.0f}")
    for r in rs:
        mark = "ok" if r.get("verdict") == "ok" else "FAILED"
        print(f"  verdict seed {r['seed']}: {mark}" + ("" if mark == "ok" else f": {r.get('verdict')}"))
        if r.get("history"):
            print(f"    history kept: {r['history']}")
    for f in (x for r in rs for x in r.get("faults", [])):
        faults[(f["kind"], f["was_leader"])] += 1
        w = f.get("kill_to_write_ms")
        to_write[f["kind"]].append(w)
        if w is not None:
            each.append((w, f["kind"], name, r["seed"]))
        no_write += w is None
        heal_leader.append(f.get("heal_to_leader_ms"))

print("\n[faults]")
for (kind, leader), n in sorted(faults.items()):
    print(f"  {kind:<5} of {'the leader' if leader else 'a follower (no leader)'}: {n}")
print("\n[recovery]")
for kind in sorted(to_write):
    print(f"  {kind} -> next acknowledged write: {stats(to_write[kind])}")
for name in sorted(by):
    for kind in sorted({k for (_, k, n, _) in each if n == name}):
        print(f"  {name:<20} {kind:<5} {stats([w for (w, k, n, _) in each if n == name and k == kind])}")
print("  slowest: " + "; ".join(f"{w:.0f} ms ({k}, {n} seed {s})" for (w, k, n, s) in sorted(each, reverse=True)[:5]))
print(f"  faults with no acknowledged write after them: {no_write}")
print(f"  heal -> leader seen:              {stats(heal_leader)}")
bad = [r for r in runs if r.get("verdict") != "ok"]
print(f"\n[verdicts] {len(runs) - len(bad)} of {len(runs)} runs passed")
for r in bad:
    print(f"  FAILED {r['workload']} seed {r['seed']} ({r['secs']} s): {r.get('verdict')}")
    print(f"    replay: MERIDIAN_FAULT_SEED={r['seed']} MERIDIAN_FAULT_SECS={r['secs']}; log {r['log']}; history {r.get('history')}")
print(f"\nlogs: {logs}")
EOF
exit $(( failed > 0 ))
