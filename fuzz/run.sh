#!/usr/bin/env bash
# Builds the fuzz targets once, then runs each for SECONDS (default 10)
# from the committed corpus (fuzz/corpus/<target>, read only: inputs found
# on the way go to a scratch directory). Prints each target's executions;
# stops with the failing target's crash input (fuzz/artifacts/<target>/)
# when one panics.
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Debug assertions are on (overflow checks included); no sanitizer: the
# crate is safe Rust and a panic is the finding, and without ASan each
# target runs several times faster on a small machine.
set -euo pipefail

SECONDS_EACH="${1:-10}"
FUZZ_DIR="$(cd "$(dirname "$0")" && pwd)"
cd "$FUZZ_DIR/.."
FLAGS=(--sanitizer none --debug-assertions)
TARGETS=(config rpc_frame dns_query gossip snapshot http_json acl_rules)

start=$(date +%s)
cargo +nightly fuzz build "${FLAGS[@]}"
built=$(date +%s)
echo "build: $((built - start)) s"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in "${TARGETS[@]}"; do
    mkdir -p "$scratch/$t"
    log="$scratch/$t.log"
    if ! cargo +nightly fuzz run "${FLAGS[@]}" "$t" "$scratch/$t" "$FUZZ_DIR/corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "$t: CRASH (input under fuzz/artifacts/$t/)"
        exit 1
    fi
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -n 1 | grep -o '[0-9]*' || echo '?')
    echo "$t: $runs executions in ${SECONDS_EACH} s, no crash"
done
echo "total: $(($(date +%s) - start)) s"
