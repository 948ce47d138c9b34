#!/usr/bin/env bash
# Builds the fuzz binary once, then runs each target (one per directory of
# fuzz/corpus/) for SECONDS (default 10) from its committed corpus (read
# only: inputs found on the way go to a scratch directory). Prints each
# target's executions; stops at the first crash, printing its input
# (fuzz/artifacts/<target>/) and how to replay it, and exits 1.
#
# Needs only the toolchain that builds meridian and a C++ compiler (for
# libFuzzer). The build shares target/ with the main build and reuses its
# compiled dependencies: after `cargo build --tests`, only meridian's
# library (instrumented, see fuzz/rustc-wrapper.sh), libFuzzer and the one
# binary are compiled. Debug assertions are on (overflow checks included);
# no sanitizer: the crate is safe Rust and a panic is the finding.
# MERIDIAN_FUZZ_ARGS adds libFuzzer flags (after run.sh's own, so they
# win), e.g. "-only_ascii=1 -max_len=512".
set -euo pipefail

SECONDS_EACH="${1:-10}"
FUZZ_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$FUZZ_DIR")"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
bin="$CARGO_TARGET_DIR/debug/meridian-fuzz"

start=$(date +%s)
RUSTC_WRAPPER="$FUZZ_DIR/rustc-wrapper.sh" \
    cargo build --manifest-path "$FUZZ_DIR/Cargo.toml" --bin meridian-fuzz
built=$(date +%s)
echo "build: $((built - start)) s"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for dir in "$FUZZ_DIR"/corpus/*/; do
    t="$(basename "$dir")"
    mkdir -p "$scratch/$t" "$FUZZ_DIR/artifacts/$t"
    log="$scratch/$t.log"
    if ! MERIDIAN_FUZZ_TARGET="$t" "$bin" "$scratch/$t" "$dir" \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$FUZZ_DIR/artifacts/$t/" ${MERIDIAN_FUZZ_ARGS:-} >"$log" 2>&1; then
        tail -n 40 "$log"
        input=$(grep -o 'Test unit written to .*' "$log" | tail -n 1 | sed 's/Test unit written to //')
        echo "$t: CRASH, input: ${input:-see the log above}"
        echo "replay: MERIDIAN_FUZZ_TARGET=$t $bin ${input:-<input>}"
        exit 1
    fi
    runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -n 1 | grep -o '[0-9]*' || echo '?')
    echo "$t: $runs executions in ${SECONDS_EACH} s, no crash"
done
echo "total: $(($(date +%s) - start)) s"
