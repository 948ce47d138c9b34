#!/usr/bin/env bash
# RUSTC_WRAPPER of the fuzz build (fuzz/run.sh): adds libFuzzer's coverage
# instrumentation (cargo-fuzz's flags) to meridian's library, and only to
# the copy built with the `fuzz-coverage` feature, whose file name differs
# from the plain library's. Every other crate compiles exactly as in the
# main build, so the fuzz build reuses them from target/ instead of
# compiling and instrumenting the whole dependency tree again; the cost is
# that coverage guides the fuzzer through meridian's code only.
# (Cargo does not fingerprint the wrapper: that is what makes the reuse
# possible, and why the feature, not the wrapper, must tell the copies apart.)
set -euo pipefail
rustc="$1"
shift
args=" $* "
if [[ "$args" == *" --crate-name meridian "* && "$args" == *'feature="fuzz-coverage"'* ]]; then
    exec "$rustc" "$@" \
        -Cpasses=sancov-module \
        -Cllvm-args=-sanitizer-coverage-level=4 \
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
        -Cllvm-args=-sanitizer-coverage-pc-table \
        -Cllvm-args=-sanitizer-coverage-trace-compares
fi
exec "$rustc" "$@"
