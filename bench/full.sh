#!/usr/bin/env bash
# The full run BENCHMARKS.md reports: every bench/ script in turn against
# one release build of one commit, each with its own reference (etcd, nsd,
# Serf's model) from the same run. Each script's report lands in
# target/bench/<script>/report.md and is gathered into
# target/bench/full/report.md with the commit, the machine and each
# script's wall time; a script that fails is named there and the run goes
# on with the next.
#
#   bash bench/full.sh              (ONLY="dns steady" runs a subset; ~60-80 min in all)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
OUT=$ROOT/target/bench/full
mkdir -p "$OUT"
SCRIPTS=${ONLY:-"kv_vs_etcd steady failover dns memory cluster_size watchers catalog_scale kv_scale gossip_scale federation_scale"}
if [ -z "${MERIDIAN_BIN:-}" ]; then
  cargo build --release --bin meridian >/dev/null || exit 1
  export MERIDIAN_BIN=$ROOT/target/release/meridian
fi
COMMIT=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo "+local changes")
{
  echo "# Full run at $COMMIT ($(date -u '+%F %H:%M UTC'))"
  echo
  echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo
} >"$OUT/report.md"
for s in $SCRIPTS; do
  echo "==> $s" >&2
  rm -rf "target/bench/$s"
  start=$(date +%s)
  if OUT=$ROOT/target/bench/$s bash "bench/$s.sh" >"$OUT/$s.log" 2>&1; then
    status=ok
  else
    status="FAILED (exit $?; see target/bench/full/$s.log)"
  fi
  secs=$(($(date +%s) - start))
  {
    echo "## $s: $status, ${secs} s"
    echo
    [ -f "target/bench/$s/report.md" ] && cat "target/bench/$s/report.md"
    echo
  } >>"$OUT/report.md"
  echo "    $status in ${secs} s" >&2
done
cat "$OUT/report.md"
