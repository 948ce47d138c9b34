#!/usr/bin/env bash
# Builds the demo image `meridian:local` from a static release binary:
# no base image is pulled (the image is FROM scratch).
set -euo pipefail
cd "$(dirname "$0")/.."
# Without the release profile's fat LTO: the image is the demo's and
# CI's end-to-end check, and one codegen unit through LTO adds ~5 minutes
# to a fresh build on two cores (LTO buys a smaller resident set, which
# bench/memory.sh measures on the host build).
RUSTFLAGS='-C target-feature=+crt-static' \
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  cargo build --release --bin meridian --target x86_64-unknown-linux-gnu
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp target/x86_64-unknown-linux-gnu/release/meridian docker/Dockerfile "$ctx/"
docker build -q -t meridian:local "$ctx" >/dev/null
echo "built meridian:local ($(du -h "$ctx/meridian" | cut -f1) binary)"
